"""Task registry, the matbench-style Task interface (ArrayTask), splits, and the embedded data set."""
from __future__ import annotations

import gzip
import json
import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from zoo import tasks
from zoo.tasks.base import ArrayTask, Task, regression_scores
from zoo.tasks.folds import check_split, make_split, read_split
from zoo.tasks.spec import TargetSpec, TaskSpec



def _structure(a: float):
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _frame(n: int, seed: int = 0, tensor: bool = False) -> pd.DataFrame:
    """Synthetic rows (rock-salt cells of random size, random targets): data for the bookkeeping
    tests, not physics."""
    rng = np.random.default_rng(seed)
    ids = [f"x-{i:03d}" for i in range(n)]
    a = rng.uniform(4.0, 6.0, n)
    if tensor:
        y = []
        for _ in range(n):
            m = rng.normal(size=(3, 3))
            y.append(m + m.T + 6 * np.eye(3))
    else:
        y = rng.normal(3.0, 1.0, n)
    return pd.DataFrame({"structure": [_structure(x) for x in a], "y": list(y), "other": a}, index=ids)


SCALAR = TaskSpec(name="test_scalar", version="t1", target=TargetSpec(name="y", unit="eV"))
TENSOR = TaskSpec(name="test_tensor", version="t1",
                  target=TargetSpec(name="y", kind="tensor", rank=2, formula="ij=ji"))


# --------------------------------------------------------------------------------------------- registry
def test_registry_lists_and_builds_embedded_tasks():
    names = tasks.list()
    assert {"embedded_dielectric", "embedded_dielectric_iso"} <= set(names)
    assert "embedded_elastic" in names
    from zoo.tasks.embedded import DEFAULT_TASK

    assert DEFAULT_TASK == "embedded_dielectric_iso"
    iso = tasks.spec("embedded_dielectric_iso")
    assert iso.target.kind == "scalar" and iso.target.unit == "" and iso.version
    diel = tasks.spec("embedded_dielectric")
    assert (diel.target.kind, diel.target.rank, diel.target.formula, diel.target.shape) == \
        ("tensor", 2, "ij=ji", (3, 3))
    t = tasks.get("embedded_dielectric_iso", n_crystals=10, progress=False, cache=False)
    # The factory does not build the data: only load() / get_*_data do.
    assert isinstance(t, Task) and t.df is None and t.folds == [0, 1, 2, 3, 4]
    assert t.spec == iso


def test_registry_unknown_task_names_the_available_ones():
    with pytest.raises(KeyError, match="embedded_dielectric_iso"):
        tasks.get("no_such_task")
    with pytest.raises(TypeError, match="n_crystals"):
        tasks.get("embedded_dielectric_iso", data_dir="/nowhere")


def test_registry_refuses_a_conflicting_spec():
    with pytest.raises(ValueError, match="registered twice"):
        tasks.register(TaskSpec(name="embedded_dielectric", version="other", target=TargetSpec("x")), dict)


# --------------------------------------------------------------------------------------------- splits
@pytest.mark.parametrize("n", [5, 103, 640])
def test_kfold_split_disjoint_covering_and_seeded(n):
    ids = [f"i{k}" for k in range(n)]
    folds = make_split(ids, "kfold", 5, seed=3)
    tests = [set(f["test"]) for f in folds.values()]
    assert sum(len(t) for t in tests) == n and set().union(*tests) == set(ids)  # disjoint and covering
    assert sorted(len(t) for t in tests) == sorted([n // 5 + (k < n % 5) for k in range(5)])
    for f in folds.values():
        assert set(f["train"]) == set(ids) - set(f["test"])
        assert set(f["validation"]) <= set(f["train"])
        assert len(f["validation"]) == min(round(0.1 * n), len(f["train"]) - 1)
        assert f["test"] == sorted(f["test"], key=ids.index)  # data-set order, as matbench
    check_split(folds, ids)
    assert make_split(ids, "kfold", 5, seed=3) == folds
    if n > 5:
        assert make_split(ids, "kfold", 5, seed=4) != folds


def test_kfold_matches_matbench_construction():
    """Same construction as matbench v0.1: RandomState(seed).permutation blocks == KFold(shuffle)."""
    sklearn = pytest.importorskip("sklearn.model_selection")
    ids = [f"i{k}" for k in range(636)]
    folds = make_split(ids, "kfold", 5, seed=18012019)
    kf = sklearn.KFold(n_splits=5, shuffle=True, random_state=18012019)
    for k, (_, test) in enumerate(kf.split(np.arange(636))):
        assert folds[f"fold_{k}"]["test"] == [ids[i] for i in test]


def test_holdout_split_80_10_10():
    ids = [f"i{k}" for k in range(200)]
    folds = make_split(ids, "holdout", seed=0)
    f = folds["fold_0"]
    assert list(folds) == ["fold_0"]
    assert (len(f["test"]), len(f["validation"]), len(f["train"]) - len(f["validation"])) == (20, 20, 160)
    assert not set(f["test"]) & set(f["train"]) and set(f["test"]) | set(f["train"]) == set(ids)
    assert set(f["validation"]) <= set(f["train"])


def test_check_split_rejects_overlap_and_unknown_ids():
    ids = [f"i{k}" for k in range(20)]
    folds = make_split(ids, "kfold", 5, seed=0)
    bad = json.loads(json.dumps(folds))
    bad["fold_1"]["test"].append(bad["fold_0"]["test"][0])
    with pytest.raises(ValueError, match="overlap|both train and test"):
        check_split(bad, ids)
    with pytest.raises(ValueError, match="not in the data"):
        check_split(folds, ids[:-1])


def test_split_file_written_then_reused(tmp_path):
    df = _frame(30)
    path = tmp_path / "split.json"
    t1 = ArrayTask.from_dataframe(SCALAR, df, seed=7, split_file=path)
    assert path.exists()
    folds, meta = read_split(path)
    assert meta["seed"] == 7 and folds == t1.fold_ids
    # A different seed with the same file gives the file's folds: the file is the source of truth.
    t2 = ArrayTask.from_dataframe(SCALAR, df, seed=8, split_file=path)
    assert t2.fold_ids == t1.fold_ids
    with pytest.raises(ValueError, match="not in the data"):
        ArrayTask.from_dataframe(SCALAR, df.iloc[1:], seed=7, split_file=path)


# --------------------------------------------------------------------------------------------- ArrayTask
def test_array_task_interface_matches_matbench_vocabulary():
    df = _frame(50)
    t = ArrayTask.from_dataframe(SCALAR, df, seed=0)
    assert t.folds == [0, 1, 2, 3, 4] and t.folds_map[2] == "fold_2"
    assert list(t.df.columns) == ["structure", "y"] and list(t.meta.columns) == ["other"]
    X, y = t.get_train_and_val_data(0)
    Xt = t.get_test_data(0)
    Xt2, yt = t.get_test_data(0, include_target=True)
    assert len(X) + len(Xt) == 50 and not set(X.index) & set(Xt.index)
    assert list(Xt.index) == list(Xt2.index) == list(yt.index)
    assert set(t.get_validation_ids(0)) <= set(X.index)
    dtest = t.get_test_data(0, as_type="df")
    assert list(dtest.columns) == ["structure"]
    assert list(t.get_train_and_val_data(0, as_type="df").columns) == ["structure", "y"]
    np.testing.assert_array_equal(yt.to_numpy(), df.loc[Xt.index, "y"].to_numpy())


def test_scalar_record_scores_and_file_round_trip(tmp_path):
    df = _frame(60)
    t = ArrayTask.from_dataframe(SCALAR, df, seed=1, config={"note": "x"})
    rng = np.random.default_rng(0)
    offsets = {}
    for f in t.folds:
        _, y = t.get_test_data(f, include_target=True)
        err = rng.normal(0, 0.3, len(y))
        offsets[f] = err
        t.record(f, y.to_numpy() + err, params={"lr": 1e-3, "arr": np.arange(2)})
        fold_scores = t.results[t.folds_map[f]]["scores"]
        assert fold_scores["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-12)
        assert fold_scores["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-12)
        assert fold_scores["max_error"] == pytest.approx(np.max(np.abs(err)), rel=1e-12)
    assert t.all_folds_recorded
    scores = t.scores
    maes = [np.mean(np.abs(offsets[f])) for f in t.folds]
    assert scores["mae"]["mean"] == pytest.approx(np.mean(maes), rel=1e-12)
    assert scores["mae"]["std"] == pytest.approx(np.std(maes), rel=1e-12)
    assert set(scores["mae"]) == {"mean", "max", "min", "std"}

    for name in ("results.json.gz", "results.json"):
        path = t.to_file(tmp_path / name)
        if name.endswith(".gz"):
            with gzip.open(path, "rt") as fh:
                d = json.load(fh)
        else:
            d = json.loads(path.read_text())
        assert {"@module", "@class", "benchmark_name", "dataset_name", "results", "version", "spec"} <= set(d)
        assert set(d["results"]["fold_0"]) == {"data", "parameters", "scores", "uncertainty"}
        back = Task.from_file(path)
        assert back.scores == scores  # exact: floats survive JSON
        assert back.spec == SCALAR and back.is_recorded == t.is_recorded
        assert back.results == t.results
        assert back.config["note"] == "x"
        ids, pred = back.predictions(2)
        assert ids == t.get_test_ids(2)
        with pytest.raises(ValueError, match="no data"):
            back.load()


def test_record_rejects_nan_wrong_length_shape_and_double_record():
    t = ArrayTask.from_dataframe(SCALAR, _frame(25), seed=0)
    ids = t.get_test_ids(0)
    pred = np.ones(len(ids))
    pred[2] = np.nan
    with pytest.raises(ValueError, match=ids[2]):
        t.record(0, pred)
    assert not t.is_recorded[0]
    with pytest.raises(ValueError, match="predictions for"):
        t.record(0, np.ones(len(ids) + 1))
    with pytest.raises(ValueError, match="shape"):
        t.record(0, np.ones((len(ids), 2)))
    with pytest.raises(TypeError, match="params"):
        t.record(0, np.ones(len(ids)), params=[1])
    t.record(0, np.ones(len(ids)))
    with pytest.raises(ValueError, match="already recorded"):
        t.record(0, np.ones(len(ids)))
    with pytest.raises(ValueError, match="not recorded"):
        t.scores


def test_nan_targets_are_dropped_with_a_warning_naming_them(caplog):
    df = _frame(30)
    df.loc["x-004", "y"] = np.nan
    df.loc["x-017", "y"] = np.inf
    with caplog.at_level(logging.WARNING, logger="zoo.tasks.base"):
        t = ArrayTask.from_dataframe(SCALAR, df, seed=0)
    assert "x-004" in caplog.text and "x-017" in caplog.text
    assert t.dropped_ids == ["x-004", "x-017"]
    assert len(t.df) == 28
    all_test = set().union(*(t.get_test_ids(f) for f in t.folds))
    assert all_test == set(t.df.index) and "x-004" not in all_test


def test_regression_scores_equal_matbench():
    data_ops = pytest.importorskip("matbench.data_ops")
    rng = np.random.default_rng(5)
    y = rng.normal(size=200)
    y[:3] = [0.0, 1e-7, -2e-6]  # below matbench's MAPE threshold: masked out by both
    p = y + rng.normal(scale=0.2, size=200)
    ours = regression_scores(y, p)
    theirs = data_ops.score_array(y, p, "regression")
    assert set(ours) == set(theirs)
    for k in ours:
        assert ours[k] == pytest.approx(float(theirs[k]), rel=1e-12, abs=0)


def test_tensor_task_shapes_and_nan():
    t = ArrayTask.from_dataframe(TENSOR, _frame(20, tensor=True), seed=0)
    ids = t.get_test_ids(0)
    assert t.targets_array(ids).shape == (len(ids), 3, 3)
    with pytest.raises(ValueError, match=r"shape"):
        t.record(0, np.zeros((len(ids), 3)))
    bad = t.targets_array(ids).copy()
    bad[1, 0, 2] = np.nan
    with pytest.raises(ValueError, match=ids[1]):
        t.record(0, bad)


def test_tensor_record_round_trip(tmp_path):
    t = ArrayTask.from_dataframe(TENSOR, _frame(20, tensor=True), seed=0, config={"score_symmetry": False})
    rng = np.random.default_rng(1)
    for f in t.folds:
        _, y = t.get_test_data(f, include_target=True)
        truth = np.stack(y.to_list())
        t.record(f, [m + 0.1 * rng.normal(size=(3, 3)) for m in truth])
    back = Task.from_file(t.to_file(tmp_path / "r.json.gz"))
    assert back.scores == t.scores
    ids, pred = back.predictions(0)
    assert pred.shape == (len(ids), 3, 3)
    np.testing.assert_array_equal(pred, np.asarray([t.results["fold_0"]["data"][i] for i in ids]))


# --------------------------------------------------------------------------------------------- embedded
class _FakeCatastrophe(Exception):
    pass


def _fake_physics():
    """Stand-ins for generator.py / dielectric.py / elastic.py to test the build pipeline (rejections,
    NaN elastic rows, caching, splits) independently of the physics."""

    def generate_crystals(n, seed, **kw):
        rng = np.random.default_rng(seed)
        return [SimpleNamespace(id=f"gen-{seed}-{i:04d}", structure=_structure(float(a)), spacegroup=225,
                                point_group="m-3m", crystal_system="cubic")
                for i, a in enumerate(rng.uniform(4.0, 6.0, n))]

    def dielectric_tensor(structure, **kw):
        a = structure.lattice.a
        if a > 5.7:
            raise _FakeCatastrophe(f"a = {a:.3f}")
        return np.diag([a, a, a + 0.5])

    def born_elastic_tensor(structure):
        if structure.lattice.a < 4.2:
            raise ValueError("unstable")
        c = np.zeros((3, 3, 3, 3))
        c[0, 0, 0, 0] = structure.lattice.a
        return c

    return {"generate_crystals": generate_crystals, "dielectric_tensor": dielectric_tensor,
            "PolarizationCatastrophe": _FakeCatastrophe,
            "born_elastic_tensor": born_elastic_tensor}


def test_embedded_pipeline_rejections_cache_and_task(monkeypatch, tmp_path, caplog):
    from zoo.tasks.embedded import dataset as ds

    phys = _fake_physics()
    monkeypatch.setattr(ds, "_physics", lambda: phys)
    df = ds.build_embedded_dataset(n=40, seed=2, progress=False, workers=1, cache_directory=tmp_path)
    a = np.array([s.lattice.a for s in df["structure"]])
    n_rej = df.attrs["n_rejected"]
    assert n_rej == len(df.attrs["rejected"]) > 0 and len(df) == 40 - n_rej
    assert df.attrs["rejected_share"] == n_rej / 40 and (a <= 5.7).all()
    assert list(df.columns) == ["structure", "dielectric", "eps_iso", "elastic", "spacegroup", "point_group",
                                "crystal_system"]
    np.testing.assert_allclose(df["eps_iso"], a + 0.5 / 3, rtol=1e-14)
    assert set(df.attrs["elastic_failed"]) == set(df.index[a < 4.2])
    assert np.isnan(df.loc[df.index[a < 4.2][0], "elastic"]).all()

    # Cache: the second call reads the file and gives the same frame, bit for bit.
    path = ds.cache_path(40, 2, tmp_path)
    assert path.exists()
    monkeypatch.setattr(ds, "_physics", lambda: pytest.fail("rebuilt instead of reading the cache"))
    df2 = ds.build_embedded_dataset(n=40, seed=2, progress=False, cache_directory=tmp_path)
    assert list(df2.index) == list(df.index) and df2.attrs == df.attrs
    for c in ("dielectric", "elastic"):
        for u, v in zip(df[c], df2[c]):
            np.testing.assert_array_equal(u, v)
    assert all(s1 == s2 for s1, s2 in zip(df["structure"], df2["structure"]))
    assert (df2["spacegroup"] == df["spacegroup"]).all()

    # Tasks on it: the elastic task drops the NaN rows (naming them); splits are written and reused.
    monkeypatch.setattr(ds, "_physics", lambda: phys)
    from zoo.tasks.embedded import DIELECTRIC_ISO, ELASTIC, make_task

    iso = make_task(DIELECTRIC_ISO, n_crystals=40, seed=2, progress=False, cache_directory=tmp_path, workers=1)
    iso.load()
    assert len(iso.df) == len(df)
    for f in iso.folds:
        _, y = iso.get_test_data(f, include_target=True)
        iso.record(f, y.to_numpy())
    assert iso.scores["mae"]["max"] == 0.0
    split_file = ds.split_path(40, 2, "embedded_dielectric_iso", 2, tmp_path)
    assert read_split(split_file)[0] == iso.fold_ids
    with caplog.at_level(logging.WARNING, logger="zoo.tasks.base"):
        el = make_task(ELASTIC, n_crystals=40, seed=2, progress=False, cache_directory=tmp_path, workers=1)
        el.load()
    dropped = sorted(df.index[a < 4.2])
    assert sorted(el.dropped_ids) == dropped and dropped[0] in caplog.text
    assert len(el.df) == len(df) - len(dropped)


def test_embedded_cache_invalidated_by_version(monkeypatch, tmp_path):
    from zoo.tasks.embedded import dataset as ds

    monkeypatch.setattr(ds, "_physics", _fake_physics)
    ds.build_embedded_dataset(n=8, seed=0, progress=False, cache_directory=tmp_path)
    p1 = ds.cache_path(8, 0, tmp_path)
    monkeypatch.setattr(ds, "DATASET_VERSION", "999")
    assert ds.cache_path(8, 0, tmp_path) != p1


def test_embedded_dataset_deterministic_tiny(tmp_path):
    from zoo.tasks.embedded.dataset import build_embedded_dataset

    d1 = build_embedded_dataset(n=6, seed=11, progress=False, cache=False, workers=1)
    d2 = build_embedded_dataset(n=6, seed=11, progress=False, cache=True, workers=1, cache_directory=tmp_path)
    d3 = build_embedded_dataset(n=6, seed=11, progress=False, cache=True, cache_directory=tmp_path)  # cached
    assert len(d1) + d1.attrs["n_rejected"] == 6
    for d in (d2, d3):
        assert list(d.index) == list(d1.index)
        for u, v in zip(d1["dielectric"], d["dielectric"]):
            np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(d["eps_iso"].to_numpy(), d1["eps_iso"].to_numpy())
        assert all(s == t for s, t in zip(d1["structure"], d["structure"]))
    for e, iso in zip(d1["dielectric"], d1["eps_iso"]):
        assert e.shape == (3, 3) and iso == pytest.approx(np.trace(e) / 3, rel=1e-15)
    # The same content gives the same bytes: no temporary file name or time stamp in the gzip header.
    first = build_cache_bytes(tmp_path / "a")
    assert first == build_cache_bytes(tmp_path / "b") and b".tmp" not in first[:64]


def build_cache_bytes(directory) -> bytes:
    from zoo.tasks.embedded.dataset import build_embedded_dataset, cache_path

    build_embedded_dataset(n=6, seed=11, progress=False, cache=True, workers=1, cache_directory=directory)
    return cache_path(6, 11, directory).read_bytes()


@pytest.mark.slow
def test_embedded_dataset_parallel_equals_serial():
    from zoo.tasks.embedded.dataset import PARALLEL_MIN, build_embedded_dataset

    n = PARALLEL_MIN
    serial = build_embedded_dataset(n=n, seed=3, progress=False, cache=False, workers=1)
    parallel = build_embedded_dataset(n=n, seed=3, progress=False, cache=False, workers=2)
    assert list(serial.index) == list(parallel.index)
    for u, v in zip(serial["dielectric"], parallel["dielectric"]):
        np.testing.assert_array_equal(u, v)
    assert serial.attrs["rejected"] == parallel.attrs["rejected"]
    # generated in the workers too: the very same structures (their dicts, floats bit for bit)
    assert [t.as_dict() for t in serial["structure"]] == [t.as_dict() for t in parallel["structure"]]


def test_embedded_dielectric_tensor_task_end_to_end(tmp_path):
    t = tasks.get("embedded_dielectric", n_crystals=30, seed=0, progress=False, workers=1,
                  cache_directory=tmp_path)
    t.load()
    assert t.spec.target.shape == (3, 3) and len(t.df) + len(t.dropped_ids) <= 30
    for f in t.folds:
        X, y = t.get_test_data(f, include_target=True)
        truth = np.stack(y.to_list())
        np.testing.assert_allclose(truth, np.swapaxes(truth, 1, 2), atol=1e-10)  # "ij=ji"
        pred = truth.copy()
        if f == 0:
            pred[:, 0, 1] += 0.5  # breaks both the index symmetry and (mostly) the point group
        t.record(f, pred)
    s = t.results["fold_1"]["scores"]
    assert s["mae"] == 0.0 and s["ewt5"] == 1.0
    s0 = t.results["fold_0"]["scores"]
    assert s0["mae"] == pytest.approx(0.5 / 9) and s0["sym_violation_mean"] > 1e-3
    back = Task.from_file(t.to_file(tmp_path / "diel.json.gz"))
    assert back.scores == t.scores
