"""One home for cache/data folders and for provenance records."""
from __future__ import annotations

from pathlib import Path

from zoo.core import paths, provenance


def test_cache_root_and_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zc"))
    assert paths.cache_root() == tmp_path / "zc"
    monkeypatch.delenv("ZOO_CACHE")
    assert "crystal-zoo" in str(paths.cache_root())
    monkeypatch.setenv("MATMINER_DATA", str(tmp_path))
    assert paths.resolve_data_dir(None) == (tmp_path, "the MATMINER_DATA environment variable")
    assert paths.resolve_data_dir(str(tmp_path / "x")) == (tmp_path / "x", "the data_dir argument")
    monkeypatch.delenv("MATMINER_DATA")
    assert paths.resolve_data_dir(None)[0] is None


def test_environment_record_has_versions_git_and_machine():
    env = provenance.environment(device="cpu", seeds={"seed": 0})
    assert env["packages"]["numpy"] and env["packages"]["python"]
    assert set(env["git"]) == {"commit", "dirty"}
    m = env["machine"]
    assert m["cpu_count"] >= 1 and len(m["load_average_1_5_15"]) == 3 and "OMP_WAIT_POLICY" in m["threads"]
    assert Path(__file__).exists()
