"""``zoo list --pretrained``, ``zoo download`` and ``zoo predict`` in-process (``zoo.cli.main``)."""
from __future__ import annotations

import json

import numpy as np

from tests.pretrained.record_golden import DATA, GOLDEN
from zoo.pretrained import get_entry, list_pretrained

DEFAULT = "cgcnn.embedded_dielectric_iso_v1"


def run(argv, capsys):
    from zoo.cli import main

    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_pretrained(capsys):
    code, out, _ = run(["list", "--pretrained", "--json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == list_pretrained()
    assert {"task", "task_version", "unit", "split", "metrics", "n_params", "size"} <= set(rows[0])
    code, out, _ = run(["list", "--pretrained"], capsys)
    assert code == 0 and DEFAULT in out and "parameters" in out


def test_predict_equals_the_golden_record(capsys):
    # The jax backend is the same zoo.load call (test_load.py checks both backends against this record).
    record = json.loads(GOLDEN.read_text())[DEFAULT]
    files = [DATA / f for f in record["files"]]
    code, out, err = run(["predict", "cgcnn", *files, "--dtype", "float64", "--json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["model"] == DEFAULT and doc["target"] == get_entry(DEFAULT)["task"]["target"]["name"]
    want = np.asarray(record["predictions"])
    got = np.array([doc["predictions"][str(f)] for f in files])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())
    code, out, _ = run(["predict", DEFAULT, files[0]], capsys)  # the plain form, training dtype
    assert code == 0 and str(files[0]) in out and f"{want[0]:.3g}"[:3] in out


def test_download_offline_uses_the_package_copy(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    code, out, _ = run(["download", DEFAULT], capsys)
    assert code == 0 and str(get_entry(DEFAULT).package_folder) in out


def test_user_errors_are_one_line(capsys, tmp_path):
    code, _, err = run(["predict", "cgcnn.embedded_dielectric_iso_v0", DATA / "crystal_0.cif"], capsys)
    assert code == 2 and f"did you mean '{DEFAULT}'" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["predict", DEFAULT, tmp_path / "missing.cif"], capsys)
    assert code == 2 and "missing.cif" in err
    code, _, err = run(["download"], capsys)
    assert code == 2 and "--all" in err
