"""Reading data files: nothing a file names is imported, truncated files are named, offline failures say
which file to put where, and the file read travels with the task (its sha256)."""
from __future__ import annotations

import gzip
import json
import sys

import pytest

from tests.helpers import SHARED_DATA
from zoo.core.safejson import UnsafeDataError
from zoo.tasks.files import DataFileError, read_dataframe_json, read_json_any

JDFT2D = SHARED_DATA / "matbench_jdft2d" / "matbench_jdft2d.json.gz"
DIELECTRIC = SHARED_DATA / "matminer_dielectric_constant" / "dielectric_constant.json.gz"
needs_data = pytest.mark.skipif(not JDFT2D.exists(), reason="../shared/data absent")


@pytest.fixture
def payload(tmp_path, monkeypatch):
    """A module that leaves a file behind if anything imports it."""
    (tmp_path / "zoo_test_payload2.py").write_text(f"open({str(tmp_path / 'RAN')!r}, 'w').write('x')\nclass X: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / "RAN"
    sys.modules.pop("zoo_test_payload2", None)


def tampered_copy(tmp_path, name="matbench_jdft2d.json.gz"):
    with gzip.open(JDFT2D, "rt") as fh:
        d = json.load(fh)
    d["data"][5][0]["sites"][0]["properties"] = {"x": {"@module": "zoo_test_payload2", "@class": "X"}}
    folder = tmp_path / "data"
    folder.mkdir()
    with gzip.open(folder / name, "wt") as fh:
        json.dump(d, fh)
    return folder


@needs_data
@pytest.mark.parametrize("path", [JDFT2D, DIELECTRIC])
def test_the_allow_list_reader_gives_matminers_frame(path):
    from matminer.utils.io import load_dataframe_from_json

    if not path.exists():
        pytest.skip(f"{path} absent")
    ours, theirs = read_dataframe_json(path), load_dataframe_from_json(str(path), pbar=False)
    assert list(ours.columns) == list(theirs.columns) and list(ours.index) == list(theirs.index)
    for col in ours.columns:
        for a, b in zip(ours[col], theirs[col]):
            if hasattr(a, "lattice"):
                assert a == b and a.as_dict() == b.as_dict()
            else:
                assert a == b or (a != a and b != b)


@needs_data
def test_a_data_file_that_names_a_module_is_refused_without_importing_it(tmp_path, payload):
    """The probe: a matbench file whose entry named a module made `zoo train` run that module's code."""
    pytest.importorskip("matbench")
    from zoo import tasks

    folder = tampered_copy(tmp_path)
    with pytest.raises(UnsafeDataError, match="zoo_test_payload2.X"):
        read_dataframe_json(folder / "matbench_jdft2d.json.gz")
    task = tasks.get("matbench_jdft2d", data_dir=str(folder))
    with pytest.raises(UnsafeDataError, match="matbench_jdft2d.json.gz.*zoo_test_payload2.X"):
        task.load()
    assert not payload.exists() and "zoo_test_payload2" not in sys.modules


def test_truncated_and_non_json_files_are_named(tmp_path):
    good = {"index": [0], "columns": ["a"], "data": [[1.0]]}
    raw = gzip.compress(json.dumps(good).encode())
    (tmp_path / "cut.json.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFileError, match="cut.json.gz: cannot be read.*truncated or corrupt"):
        read_json_any(tmp_path / "cut.json.gz")
    (tmp_path / "text.json").write_text("not json at all")
    with pytest.raises(DataFileError, match="text.json: cannot be read"):
        read_json_any(tmp_path / "text.json")
    (tmp_path / "other.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(DataFileError, match="not a matminer data-frame file"):
        read_dataframe_json(tmp_path / "other.json")
    with pytest.raises(FileNotFoundError):
        read_json_any(tmp_path / "missing.json")


@needs_data
def test_a_truncated_matbench_file_is_named_when_training_reads_it(tmp_path):
    pytest.importorskip("matbench")
    from zoo import tasks

    folder = tmp_path / "cut"
    folder.mkdir()
    (folder / "matbench_jdft2d.json.gz").write_bytes(JDFT2D.read_bytes()[:100_000])
    with pytest.raises(DataFileError, match="matbench_jdft2d.json.gz: cannot be read"):
        tasks.get("matbench_jdft2d", data_dir=str(folder)).load()


@needs_data
def test_the_data_file_and_its_hash_travel_with_the_task():
    pytest.importorskip("matbench")
    from zoo import tasks
    from zoo.core.io import sha256_file

    task = tasks.get("matbench_jdft2d", data_dir=str(JDFT2D.parent))
    task.load()
    assert task.data_files == {str(JDFT2D.resolve()): sha256_file(JDFT2D)}


def test_no_network_and_no_local_copy_says_which_file_to_put_where(monkeypatch, tmp_path):
    pytest.importorskip("matbench")
    from matbench.task import MatbenchTask

    from zoo import tasks

    def offline(self):
        raise ConnectionError("Failed to resolve 'ml.materialsproject.org'")

    monkeypatch.delenv("MATMINER_DATA", raising=False)
    monkeypatch.setattr(MatbenchTask, "load", offline)
    with pytest.raises(FileNotFoundError, match="matbench_jdft2d.json.gz from https://.*--data-dir FOLDER"):
        tasks.get("matbench_jdft2d").load()


def test_results_files_may_name_only_matbenchs_classes(tmp_path, payload):
    pytest.importorskip("matbench")
    from zoo.tasks.matbench import load_submission

    path = tmp_path / "results.json"
    path.write_text(json.dumps({"@module": "zoo_test_payload2", "@class": "X", "tasks": {}}))
    with pytest.raises(UnsafeDataError, match="zoo_test_payload2.X"):
        load_submission(path)
    assert not payload.exists()
