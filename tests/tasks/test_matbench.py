"""The matbench adapter: matbench's own MatbenchTask underneath, offline on ../shared/data."""
from __future__ import annotations

import gzip
import json
import logging
import shutil

import numpy as np
import pytest

from tests.helpers import SHARED_DATA

pytest.importorskip("matbench")
pytest.importorskip("matminer")

from zoo import tasks  # noqa: E402
from zoo.tasks.base import Task  # noqa: E402
from zoo.tasks.files import read_json_any  # noqa: E402
from zoo.tasks.matbench import STRUCTURE_TASKS, load_submission, matbench_spec, write_submission  # noqa: E402

DATA = SHARED_DATA
JDFT2D = DATA / "matbench_jdft2d"
FOLDS = DATA / "matbench_v0.1_metadata" / "matbench_v0.1_test_folds.json.gz"
TARGETS = DATA / "matbench_v0.1_targets" / "matbench_jdft2d.json.bz2"
NAME = "matbench_jdft2d"
INFO = {"authors": "crystal-zoo tests", "algorithm": "offset", "algorithm_long": "truth + fixed offsets",
        "bibtex_refs": "", "notes": "test submission"}

needs_data = pytest.mark.skipif(not (JDFT2D / "matbench_jdft2d.json.gz").exists(),
                                reason="../shared/data/matbench_jdft2d not available")
pytestmark = pytest.mark.data


def _record_offsets(task, seed=0):
    """Record truth + a per-entry offset on every fold; returns the offsets by fold."""
    rng = np.random.default_rng(seed)
    out = {}
    for f in task.folds:
        _, y = task.get_test_data(f, include_target=True)
        off = rng.normal(0.0, 5.0, len(y))
        task.record(f, y.to_numpy() + off, params={"seed": seed})
        out[f] = (y.to_numpy(), off)
    return out


@pytest.fixture(scope="module")
def jdft2d():
    if not (JDFT2D / "matbench_jdft2d.json.gz").exists():
        pytest.skip("../shared/data/matbench_jdft2d not available")
    t = tasks.get(NAME, data_dir=JDFT2D, reference_targets=TARGETS if TARGETS.exists() else None)
    t.load()
    return t


def test_specs_come_from_matbench_metadata():
    assert set(STRUCTURE_TASKS) <= set(tasks.list())
    s = tasks.spec(NAME)
    assert (s.version, s.target.name, s.target.unit, s.target.kind, s.task_type) == \
        ("matbench_v0.1", "exfoliation_en", "meV/atom", "scalar", "regression")
    assert s.metrics == ("mae", "rmse", "mape", "max_error") and s.n_folds == 5
    assert s.extra["n_samples"] == 636 and s.extra["url"].endswith("matbench_jdft2d.json.gz")
    g = matbench_spec("matbench_log_gvrh")
    # matbench's targets are already log10(GPa): transform says so, the unit is that of the values.
    assert (g.target.name, g.target.transform, g.target.unit) == ("log10(G_VRH)", "log10", "log10(GPa)")
    assert g.target.inverse(np.array([2.0]))[0] == pytest.approx(100.0)
    assert "already log10" in g.extra["note"]
    m = matbench_spec("matbench_mp_is_metal")
    assert (m.target.kind, m.task_type, m.metrics[0]) == ("class", "classification", "accuracy")
    assert matbench_spec("matbench_dielectric").target.name == "n"


def test_missing_file_error_names_file_folder_and_url(tmp_path):
    t = tasks.get(NAME, data_dir=tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        t.load()
    msg = str(err.value)
    assert "matbench_jdft2d.json.gz" in msg and str(tmp_path.resolve()) in msg
    assert "https://ml.materialsproject.org/projects/matbench_jdft2d.json.gz" in msg
    assert "data_dir" in msg


def test_matminer_data_env_is_the_offline_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MATMINER_DATA", str(tmp_path))
    t = tasks.get(NAME)
    with pytest.raises(FileNotFoundError, match="MATMINER_DATA"):
        t.get_train_and_val_data(0)  # loads on first use


@needs_data
def test_offline_load_verified_and_logged(caplog):
    with caplog.at_level(logging.INFO, logger="zoo.tasks.matbench"):
        t = tasks.get(NAME, data_dir=JDFT2D, reference_targets=TARGETS if TARGETS.exists() else None)
        t.load()
    line = [r.getMessage() for r in caplog.records if r.name == "zoo.tasks.matbench"][-1]
    assert "not the official file" in line and "636 rows" in line and "official ids" in line
    if TARGETS.exists():
        assert "targets and compositions equal the official artifact" in line
    assert list(t.df.columns) == ["structure", "exfoliation_en"] and t.df.index[0] == "mb-jdft2d-001"


@needs_data
def test_wrong_data_is_refused(tmp_path):
    d = json.load(gzip.open(JDFT2D / "matbench_jdft2d.json.gz", "rt"))
    d["data"], d["index"] = d["data"][:10], d["index"][:10]
    with gzip.open(tmp_path / "matbench_jdft2d.json.gz", "wt") as fh:
        json.dump(d, fh)
    with pytest.raises(ValueError, match="10 rows"):
        tasks.get(NAME, data_dir=tmp_path).load()
    # Full data but one target changed: caught by the official targets artifact.
    if TARGETS.exists():
        d = json.load(gzip.open(JDFT2D / "matbench_jdft2d.json.gz", "rt"))
        d["data"][5][1] += 1.0
        with gzip.open(tmp_path / "matbench_jdft2d.json.gz", "wt") as fh:
            json.dump(d, fh)
        with pytest.raises(ValueError, match="mb-jdft2d-006"):
            tasks.get(NAME, data_dir=tmp_path, reference_targets=TARGETS).load()


@needs_data
def test_folds_identical_to_official(jdft2d):
    if not FOLDS.exists():
        pytest.skip("matbench_v0.1_test_folds.json.gz not available")
    official = json.load(gzip.open(FOLDS, "rt"))["test_mbids"][NAME]
    assert jdft2d.folds == [0, 1, 2, 3, 4]
    for f in jdft2d.folds:
        key = f"fold_{f}"
        test_ids = list(jdft2d.get_test_data(f).index)
        assert sorted(test_ids) == sorted(official[key])
        train_ids = set(jdft2d.get_train_and_val_data(f)[0].index)
        assert train_ids == set(jdft2d.df.index) - set(official[key])
        assert jdft2d.get_validation_ids(f) is None  # matbench leaves validation to the user


@needs_data
def test_is_matbench_task_and_scores_equal_plain_matbench(jdft2d, tmp_path):
    from matbench.task import MatbenchTask

    t = tasks.get(NAME, data_dir=JDFT2D)
    assert isinstance(t, MatbenchTask) and isinstance(t, Task)
    t.df = jdft2d.df  # share the loaded data (loading is what the other tests check)
    plain = MatbenchTask(NAME, autoload=False)
    plain.df = jdft2d.df
    offs = _record_offsets(t, seed=1)
    _record_offsets(plain, seed=1)
    assert t.scores == plain.scores
    assert t.as_dict() == plain.as_dict()
    mae = [np.mean(np.abs(off)) for _, off in offs.values()]
    assert t.scores["mae"]["mean"] == pytest.approx(np.mean(mae), rel=1e-12)

    # to_file / from_file: gzip, matbench's layout (plain MatbenchTask.from_dict reads it).
    path = tmp_path / "task.json.gz"
    t.to_file(path)
    with open(path, "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"
    back = type(t).from_file(path)
    assert back.scores == t.scores and back.all_folds_recorded
    assert MatbenchTask.from_dict(read_json_any(path)).scores == t.scores


@needs_data
def test_record_refuses_nan_and_wrong_length(jdft2d):
    t = tasks.get(NAME, data_dir=JDFT2D)
    t.df = jdft2d.df
    ids = list(t.get_test_data(2).index)
    pred = np.full(len(ids), 50.0)
    pred[7] = np.nan
    with pytest.raises(ValueError, match=ids[7]):
        t.record(2, pred)
    with pytest.raises(ValueError, match="same length"):
        t.record(2, np.ones(len(ids) - 1))
    assert not t.is_recorded[2]


@needs_data
def test_write_submission_loads_back_in_matbench(jdft2d, tmp_path):
    from matbench.bench import MatbenchBenchmark

    t = tasks.get(NAME, data_dir=JDFT2D)
    t.df = jdft2d.df
    with pytest.raises(ValueError, match="not recorded"):
        write_submission(t, tmp_path / "sub", INFO)
    _record_offsets(t, seed=2)
    with pytest.raises(ValueError, match="algorithm_long"):
        write_submission(t, tmp_path / "sub", {k: v for k, v in INFO.items() if k != "algorithm_long"})
    paths = write_submission(t, tmp_path / "sub", INFO)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["info.json", "results.json.gz"]
    with open(paths["results"], "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"
    info = json.loads(paths["info"].read_text())
    assert set(info) == {"authors", "algorithm", "algorithm_long", "bibtex_refs", "notes", "requirements"}
    assert any(r.startswith("matbench==") for r in info["requirements"]["python"])

    mb = load_submission(paths["results"])
    assert mb.is_recorded and mb.is_valid
    assert mb.scores[NAME] == t.scores
    # matbench 0.6's own from_file reads the (decompressed) file too: its hash check passes.
    plain = tmp_path / "results.json"
    with gzip.open(paths["results"], "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert MatbenchBenchmark.from_file(str(plain)).scores[NAME] == t.scores
