"""Real tensor data sets: loaders (offline), Voigt conversion, frames, splits and the registered tasks."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import SHARED_DATA

from zoo.symmetry import cartesian_point_group
from zoo.tasks.datasets import frames as F
from zoo.tasks.datasets import jarvis as J
from zoo.tasks.datasets import loaders as L
from zoo.tasks.datasets import sources as D
from zoo.tasks.datasets import splits as S

DATA = SHARED_DATA
DIEL = DATA / "matminer_dielectric_constant"
PIEZO = DATA / "matminer_piezoelectric_tensor"
MATTEN = DATA / "mp_elastic_tensor_matten_n100"

needs = {
    "diel": pytest.mark.skipif(not (DIEL / "dielectric_constant.json.gz").is_file(), reason="no shared dielectric data"),
    "piezo": pytest.mark.skipif(not (PIEZO / "piezoelectric_tensor_normalized.json.gz").is_file(),
                                reason="no shared piezoelectric data"),
    "matten": pytest.mark.skipif(not MATTEN.is_dir(), reason="no shared MatTen data"),
}

TASK_NAMES = ["jarvis_dielectric_mbj", "jarvis_dielectric_optb88vdw", "jarvis_elastic", "jarvis_piezo_max_eij",
              "mp_dielectric_electronic", "mp_dielectric_total", "mp_elastic", "mp_elastic_matten_n100",
              "mp_piezoelectric"]


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.delenv("MATMINER_DATA", raising=False)
    monkeypatch.delenv("JARVIS_DATA", raising=False)
    warnings.filterwarnings("ignore", module="pymatgen")
    warnings.filterwarnings("ignore", module="spglib")


# --------------------------------------------------------------------------------------------- helpers
def _structure(kind: str):
    from pymatgen.core import Lattice, Structure

    if kind == "cubic":  # CsCl type, Pm-3m
        return Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    if kind == "tetragonal":  # P4mm
        return Structure(Lattice.tetragonal(3.9, 4.3), ["Pb", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.52], [0.5, 0.5, 0.1]])
    if kind == "hexagonal":  # wurtzite, P6_3mc
        u = 0.382
        return Structure(Lattice.hexagonal(3.25, 5.2), ["Zn", "Zn", "O", "O"],
                         [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, u], [2 / 3, 1 / 3, 0.5 + u]])
    if kind == "monoclinic":  # P2/m, b unique
        return Structure(Lattice.monoclinic(4.0, 5.0, 6.0, 100.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    raise ValueError(kind)


def _elastic_voigt(kind: str, scale: float = 1.0) -> np.ndarray:
    """Standard-order (xx, yy, zz, yz, xz, xy) stiffness in GPa obeying the crystal system."""
    C = np.zeros((6, 6))
    if kind == "cubic":
        C[:3, :3] = 60.0
        C[np.arange(3), np.arange(3)] = 250.0
        C[3, 3] = C[4, 4] = C[5, 5] = 90.0
    elif kind == "tetragonal":
        C[:3, :3] = [[230, 100, 95], [100, 230, 95], [95, 95, 180]]
        C[3, 3] = C[4, 4] = 60.0
        C[5, 5] = 110.0
    elif kind == "hexagonal":
        c11, c12, c13, c33, c44 = 210.0, 120.0, 105.0, 210.0, 20.0
        C[:3, :3] = [[c11, c12, c13], [c12, c11, c13], [c13, c13, c33]]
        C[3, 3] = C[4, 4] = c44
        C[5, 5] = (c11 - c12) / 2
    else:
        raise ValueError(kind)
    return C * scale


def _jarvis_atoms(s) -> dict:
    return {"lattice_mat": s.lattice.matrix.tolist(), "coords": s.frac_coords.tolist(),
            "elements": [sp.symbol for sp in s.species], "cartesian": False, "props": [""] * len(s)}


def _write_jarvis(tmp_path: Path, voigt_order: str = "vasp") -> tuple[Path, list[dict]]:
    """A small dft_3d-format file: 12 crystals of 3 systems, plus a monoclinic one and missing values."""
    recs = []
    kinds = ["cubic", "tetragonal", "hexagonal"] * 4
    for k, kind in enumerate(kinds):
        s = _structure(kind)
        V = _elastic_voigt(kind, scale=1.0 + 0.05 * k)
        if voigt_order == "vasp":
            vasp = np.zeros((6, 6))
            p = list(J.VASP_TO_VOIGT)
            vasp[np.ix_(p, p)] = V  # standard[I] = vasp[p[I]]
            V = vasp
        eps = {"cubic": (5.0, 5.0, 5.0), "tetragonal": (6.0, 6.0, 7.5), "hexagonal": (4.0, 4.0, 4.4)}[kind]
        recs.append({"jid": f"JVASP-{1000 + k}", "atoms": _jarvis_atoms(s), "formula": s.composition.reduced_formula,
                     "spg_number": 1, "epsx": eps[0] + 0.01 * k, "epsy": eps[1] + 0.01 * k, "epsz": eps[2] + 0.01 * k,
                     "mepsx": "na", "mepsy": "na", "mepsz": "na",
                     "dfpt_piezo_max_eij": 0.1 * k if k % 3 else "na",
                     "elastic_tensor": np.round(V, 1).tolist() if k != 5 else "na",
                     "optb88vdw_bandgap": 1.0, "bulk_modulus_kv": 100.0, "shear_modulus_gv": 50.0})
    s = _structure("monoclinic")
    recs.append({"jid": "JVASP-2000", "atoms": _jarvis_atoms(s), "formula": "NaCl", "spg_number": 10,
                 "epsx": 3.0, "epsy": 3.1, "epsz": 3.2, "mepsx": "na", "mepsy": "na", "mepsz": "na",
                 "dfpt_piezo_max_eij": "na", "elastic_tensor": "na", "optb88vdw_bandgap": "na",
                 "bulk_modulus_kv": "na", "shear_modulus_gv": "na"})
    path = tmp_path / "dft_3d.json"
    path.write_text(json.dumps(recs))
    return path, recs


# --------------------------------------------------------------------------------------------- errors
def test_missing_file_names_file_folder_and_source(tmp_path):
    with pytest.raises(L.DataNotFoundError) as exc:
        L.load_mp_dielectric(data_dir=tmp_path, progress=False)
    msg = str(exc.value)
    assert "dielectric_constant.json.gz" in msg and str(tmp_path) in msg and "figshare" in msg
    assert "the data_dir argument" in msg


def test_missing_file_via_environment(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    monkeypatch.setenv("MATMINER_DATA", str(tmp_path))
    with pytest.raises(L.DataNotFoundError) as exc:
        L.load_mp_piezoelectric(progress=False)
    msg = str(exc.value)
    assert "MATMINER_DATA" in msg and str(tmp_path / "sub") in msg  # sub-folders are searched and named
    assert "piezoelectric_tensor_normalized.json.gz" in msg


def test_matten_without_source_and_jarvis_without_tools(tmp_path):
    with pytest.raises(L.DataNotFoundError, match="no online source"):
        L.load_mp_elastic_matten()
    try:
        import jarvis  # noqa: F401
    except ImportError:
        with pytest.raises(L.DataNotFoundError, match="jarvis-tools"):
            J.load_jarvis_dft_3d()
    with pytest.raises(L.DataNotFoundError, match="jdft_3d"):
        J.load_jarvis_dft_3d(data_dir=tmp_path)


def test_local_matminer_file_with_wrong_hash_is_refused(tmp_path):
    (tmp_path / "dielectric_constant.json.gz").write_bytes(b"not the matminer file")
    with pytest.raises(ValueError, match="sha256"):
        L.load_mp_dielectric(data_dir=tmp_path, progress=False)


def test_unknown_dataset():
    with pytest.raises(KeyError, match="mp_dielectric"):
        L.load("mp_nonexistent")


# --------------------------------------------------------------------------------------------- loaders
@needs["diel"]
def test_dielectric_offline():
    df = L.load_mp_dielectric(data_dir=DATA, fix_frames=False, progress=False)  # found in a sub-folder
    assert len(df) == 1056 and df.index.is_unique and df.index.name == "id"
    T = np.stack(df["e_total"].to_list())
    E = np.stack(df["e_electronic"].to_list())
    assert T.shape == (1056, 3, 3) and E.shape == (1056, 3, 3)
    # PROVENANCE: trace(e_total)/3 reproduces poly_total; the electronic part is the smaller one
    np.testing.assert_allclose(np.trace(T, axis1=1, axis2=2) / 3, df["poly_total"], rtol=1e-2)
    assert np.all(np.trace(E, axis1=1, axis2=2) <= np.trace(T, axis1=1, axis2=2) + 1e-6)
    assert type(df["structure"].iloc[0]).__name__ == "Structure"


@needs["diel"]
def test_environment_variable_points_at_the_data(monkeypatch):
    monkeypatch.setenv("MATMINER_DATA", str(DIEL))
    df = L.load_mp_dielectric(fix_frames=False, progress=False)
    assert len(df) == 1056


@needs["piezo"]
def test_piezo_formats_agree_and_voigt_has_no_factors(tmp_path):
    norm = L.load_mp_piezoelectric(data_dir=PIEZO, fix_frames=False, progress=False)
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "piezoelectric_tensor.csv.gz").symlink_to(PIEZO / "piezoelectric_tensor.csv.gz")
    old = L.load_mp_piezoelectric(data_dir=csv_dir, fix_frames=False, progress=False)
    assert len(norm) == 941 and list(old.index) == list(norm.index)
    for i in norm.index[::37]:
        np.testing.assert_array_equal(old.at[i, "piezoelectric_tensor"], norm.at[i, "piezoelectric_tensor"])
        np.testing.assert_allclose(old.at[i, "structure"].lattice.matrix, norm.at[i, "structure"].lattice.matrix)
    e = np.stack(norm["piezoelectric_tensor"].to_list())
    assert e.shape == (941, 3, 3, 3)
    np.testing.assert_array_equal(e, e.transpose(0, 1, 3, 2))  # ijk = ikj
    # AgI (-43m): e_14 = e_25 = e_36 = -0.15842 C/m^2, stress-like so e_x,yz = e_14 exactly (no 1/2)
    agi = norm.at["mp-22925", "piezoelectric_tensor"]
    assert agi[0, 1, 2] == agi[0, 2, 1] == agi[1, 0, 2] == agi[2, 0, 1] == -0.15842
    assert np.count_nonzero(agi) == 6


@needs["matten"]
def test_matten_elastic_shapes_and_voigt():
    from zoo.tensors import to_voigt

    df = L.load_mp_elastic_matten(data_dir=DATA, fix_frames=False, progress=False)
    assert len(df) == 100 and df.index[0] == "matten-0"
    C = np.stack(df["elastic_tensor"].to_list())
    assert C.shape == (100, 3, 3, 3, 3)
    np.testing.assert_allclose(C, C.transpose(0, 2, 1, 3, 4), atol=1e-12)  # ij
    np.testing.assert_allclose(C, C.transpose(0, 3, 4, 1, 2), atol=1e-12)  # major symmetry
    raw = json.loads((MATTEN / "example_crystal_elasticity_tensor_n100.json").read_text())
    np.testing.assert_allclose(to_voigt(C[7], kind="stiffness"), raw["elastic_tensor_voigt"]["7"], atol=1e-9)


@needs["matten"]
def test_exclude_ids_leaves_rows_out_and_keeps_the_other_folds(tmp_path):
    """``exclude_ids``: the listed ids leave the task, every other id keeps its fold, and the id file is
    recorded (path and sha256) with the data files; a missing file says what to write."""
    from zoo.tasks.datasets import make_task, read_id_file

    full = make_task("mp_elastic_matten_n100", data_dir=MATTEN, progress=False)
    full.load()
    test0 = list(full.get_test_data(0, include_target=False).index)
    ids_file = tmp_path / "held_out.txt"
    ids_file.write_text("# fold 0 test\n" + "\n".join(test0[:5]) + "\nnot-in-this-data-set  # ignored\n\n")
    assert read_id_file(ids_file)["ids"] == frozenset(test0[:5] + ["not-in-this-data-set"])
    cut = make_task("mp_elastic_matten_n100", data_dir=MATTEN, progress=False, exclude_ids=ids_file)
    cut.load()
    assert sorted(cut.get_test_data(0, include_target=False).index) == sorted(test0[5:])
    for fold in range(5):  # nothing else moved
        assert list(cut.get_train_and_val_data(fold)[0].index) == [
            i for i in full.get_train_and_val_data(fold)[0].index if i not in test0[:5]]
    assert cut.config["exclude_ids"]["n_removed"] == 5 and cut.config["exclude_ids"]["n_in_file"] == 6
    assert cut.data_files[str(ids_file.resolve())] == read_id_file(ids_file)["sha256"]
    with pytest.raises(FileNotFoundError, match="one id per line"):
        make_task("mp_elastic_matten_n100", data_dir=MATTEN, exclude_ids=tmp_path / "nope.txt")


# --------------------------------------------------------------------------------------------- frames
def _random_invariant(structure, rank, seed=0):
    from zoo.tensors import default_formula, symmetrize_indices
    from zoo.symmetry import cartesian_point_group, symmetrize_tensor

    T = np.random.default_rng(seed).normal(size=(3,) * rank)
    T = symmetrize_indices(T, default_formula(rank))
    return symmetrize_tensor(T, cartesian_point_group(structure, symprec=F.SYMPREC))


@pytest.mark.parametrize("rank", [2, 4])
def test_ieee_frame_is_undone_exactly(rank):
    """A tensor written in the IEEE frame of a rotated tetragonal cell comes back in the cell's frame."""
    from pymatgen.core import Lattice, Structure
    from scipy.spatial.transform import Rotation
    from zoo.symmetry import cartesian_point_group, rotate_tensor, symmetry_violation

    ref = _structure("tetragonal")  # axes along x, y, z: IEEE frame = this frame
    T_ieee = _random_invariant(ref, rank, seed=rank)
    U = Rotation.from_euler("zyx", [31.0, 17.0, -52.0], degrees=True).as_matrix()
    rotated = Structure(Lattice(ref.lattice.matrix @ U.T), ref.species, ref.frac_coords)  # r' = U r
    T_struct = rotate_tensor(T_ieee, U)  # the same tensor in the rotated cell's frame
    assert symmetry_violation(T_ieee, cartesian_point_group(rotated, symprec=F.SYMPREC)) > 1e-2  # wrong frame is visible
    out = F.fix_one([T_ieee], rotated, tol=1e-6, prior="structure")
    assert out["status"] == F.STATUS_IEEE and not out["ambiguous"]
    np.testing.assert_allclose(rotate_tensor(T_ieee, out["rotation"]), T_struct, atol=1e-9)
    # and a tensor already in the cell's frame is left alone
    same = F.fix_one([T_struct], rotated, tol=1e-6)
    assert same["status"] == F.STATUS_AS_IS and np.array_equal(same["rotation"], np.eye(3))


def test_inconsistent_tensor_is_flagged_not_rotated():
    cubic = _structure("cubic")
    T = np.diag([3.0, 4.0, 5.0])  # anisotropic: no frame makes it cubic-invariant
    out = F.fix_one([T], cubic, tol=1e-3)
    assert out["status"] == F.STATUS_INCONSISTENT and out["dev"][0] > 0.1
    fixed = F.fix_frames(
        pd.DataFrame({"structure": [cubic], "eps": [T]}, index=["x"]), "eps", tol=1e-3, progress=False)
    np.testing.assert_array_equal(fixed.at["x", "eps"], T)
    assert fixed.at["x", "frame_status"] == F.STATUS_INCONSISTENT


def test_symmetry_defect_grows_with_distortion():
    from pymatgen.core import Lattice, Structure

    s = _structure("tetragonal")
    assert F.symmetry_defect(s) < 1e-12
    shear = np.eye(3) + np.array([[0, 4e-3, 0], [0, 0, 0], [0, 0, 0]])
    d = Structure(Lattice(s.lattice.matrix @ shear), s.species, s.frac_coords)
    assert cartesian_point_group(d, symprec=F.SYMPREC).shape[0] == cartesian_point_group(s, symprec=F.SYMPREC).shape[0]  # still P4mm at 0.1 Å
    assert 1e-3 < F.symmetry_defect(d) < 5e-2


@needs["piezo"]
def test_piezo_frames_known_rows_and_reproducible():
    df = L.load_mp_piezoelectric(data_dir=PIEZO, fix_frames=False, progress=False)
    ids = ["mp-22925", "mp-578", "mp-22895", "mp-9732", "mp-12902", "mp-760402", "mp-10161"]
    info = D.DATASETS["mp_piezoelectric"]
    run = [F.fix_frames(df.loc[ids], "piezoelectric_tensor", tol=info.frame_tol, prior=info.frame_prior,
                        progress=False) for _ in range(2)]
    st = run[0]["frame_status"].to_dict()
    assert st == {"mp-22925": "ieee",  # AgI, primitive fcc cell, tensor in cubic axes
                  "mp-578": "inconsistent",  # -6m2 with e_16 missing: no rotation repairs it
                  "mp-22895": "inconsistent",  # recorded -43m, cell is R3m
                  "mp-9732": "ieee_setting",  # -6m2: MP put x1 perpendicular to a
                  "mp-12902": "ieee_setting",  # tetragonal, c < a (pymatgen's IEEE rule misplaces x3)
                  "mp-760402": "as_is",  # 4mm: pymatgen's IEEE frame ignores the polar axis
                  "mp-10161": "ieee"}
    assert run[0]["frame_ambiguous"].to_dict()["mp-9732"]  # T and -T both pass
    assert run[0]["frame_status"].equals(run[1]["frame_status"])
    for a, b in zip(run[0]["frame_rotation"], run[1]["frame_rotation"]):
        np.testing.assert_array_equal(a, b)
    ok = run[0]["frame_status"] != F.STATUS_INCONSISTENT
    assert (run[0]["piezoelectric_tensor_dev"][ok] <= run[0]["frame_threshold"][ok]).all()
    assert (run[0]["piezoelectric_tensor_dev_raw"][["mp-22925", "mp-9732"]] > 0.5).all()
    # a rotation keeps the tensor's norm
    for i in ids:
        assert np.isclose(np.linalg.norm(run[0].at[i, "piezoelectric_tensor"]),
                          np.linalg.norm(df.at[i, "piezoelectric_tensor"]))


EXPECTED_COUNTS = {  # measured on ../shared/data, zoo/tasks/datasets/README.md
    "mp_dielectric": {"as_is": 1056, "ieee": 0, "ieee_setting": 0, "inconsistent": 0, "ambiguous": 91},
    "mp_piezoelectric": {"as_is": 48, "ieee": 759, "ieee_setting": 132, "inconsistent": 2, "ambiguous": 261},
    "mp_elastic_matten": {"as_is": 100, "ieee": 0, "ieee_setting": 0, "inconsistent": 0, "ambiguous": 0},
}


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="no shared data")
@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_frame_counts_full_data(name):
    df = L.load(name, data_dir=DATA, progress=False)
    assert F.frame_counts(df) == EXPECTED_COUNTS[name]


# --------------------------------------------------------------------------------------------- splits
@pytest.mark.parametrize("name", sorted(S.COMMITTED))
def test_committed_split_reproducible_and_disjoint(name):
    from zoo.tasks.folds import check_split

    d = S.read_dataset_splits(name)
    ids = S.split_ids(d)
    assert d["meta"]["n"] == len(ids) == len(set(ids))
    again = S.make_dataset_splits(ids, seed=d["meta"]["seed"])
    assert again["kfold"] == d["kfold"] and again["holdout"] == d["holdout"]
    check_split(d["kfold"], ids, what=name)
    check_split(d["holdout"], ids, what=name)
    h = d["holdout"]["fold_0"]
    n = len(ids)
    assert len(h["test"]) == round(0.1 * n) and len(h["validation"]) == round(0.1 * n)
    assert not set(h["test"]) & set(h["train"]) and set(h["validation"]) <= set(h["train"])
    assert len(set(h["train"]) - set(h["validation"])) == n - 2 * round(0.1 * n)  # 80 %
    # a different seed gives a different split (the seed is what makes it)
    assert S.make_dataset_splits(ids, seed=1)["kfold"] != d["kfold"]


@pytest.mark.skipif(not DATA.is_dir(), reason="no shared data")
@pytest.mark.parametrize("name", sorted(S.COMMITTED))
def test_committed_split_covers_the_loaded_ids(name):
    dataset, kwargs = S.COMMITTED[name]
    df = L.load(dataset, data_dir=DATA, fix_frames=False, progress=False, **kwargs)
    assert S.split_ids(S.read_dataset_splits(name)) == sorted(df.index)


def test_restricted_and_on_the_fly_splits(tmp_path):
    from zoo.tasks.folds import check_split

    ids = [f"id-{i}" for i in range(57)]
    sub = ids[::2] + ids[1:9]
    folds, meta = S.dataset_folds("jarvis_dft_3d", "kfold", sub, all_ids=ids)
    assert meta["file"] is None and meta["n"] == 57
    check_split(folds, sub)
    # the fold of an id does not depend on the subset: it is the full split restricted
    full = S.make_dataset_splits(ids)["kfold"]
    for key in full:
        assert folds[key]["test"] == [i for i in full[key]["test"] if i in set(sub)]
    # the order of the ids does not matter
    assert S.make_dataset_splits(ids[::-1]) == S.make_dataset_splits(ids)
    # written files read back identically
    p = S.write_dataset_splits("mp_piezoelectric", ids, path=tmp_path / "x.json")
    d = S.read_dataset_splits(path=p)
    assert d["kfold"] == full and d["meta"]["n"] == 57


def test_committed_split_refuses_unknown_ids():
    d = S.read_dataset_splits("mp_piezoelectric")
    ids = S.split_ids(d)[:50] + ["mp-not-in-the-file"]
    with pytest.raises(ValueError, match="does not cover"):
        S.dataset_folds("mp_piezoelectric", "kfold", ids)


# --------------------------------------------------------------------------------------------- tasks
def test_tasks_registered_with_versions():
    from zoo import tasks

    names = tasks.list()
    for n in TASK_NAMES:
        assert n in names
        spec = tasks.spec(n)
        assert spec.version and spec.extra["dataset"] in D.DATASETS
    assert tasks.spec("mp_piezoelectric").target.formula == "ijk=ikj"
    assert tasks.spec("mp_piezoelectric").target.shape == (3, 3, 3)
    assert tasks.spec("mp_elastic").target.formula == "ijkl=jikl=klij"
    assert tasks.spec("mp_dielectric_total").target.rank == 2
    assert tasks.spec("jarvis_piezo_max_eij").target.kind == "scalar"


def _exercise(task, n_expected):
    """matbench's interface end to end with a mean predictor."""
    task.load()
    assert task.folds == [0, 1, 2, 3, 4]
    tests = []
    for f in task.folds:
        X, y = task.get_train_and_val_data(f)
        Xt = task.get_test_data(f)
        assert not set(X.index) & set(Xt.index)
        assert set(task.get_validation_ids(f)) <= set(X.index)
        assert type(X.iloc[0]).__name__ == "Structure" and y.iloc[0].shape == task.spec.target.shape
        tests += list(Xt.index)
        mean = np.mean(np.stack(y.to_list()), axis=0)
        task.record(f, [mean] * len(Xt))
    assert sorted(tests) == sorted(task.df.index) and len(tests) == n_expected
    assert task.all_folds_recorded and np.isfinite(task.scores["mae"]["mean"])


@needs["matten"]
# slow: the heaviest default tests (30-75 s each on 2 cores); `make test-slow` runs them
@pytest.mark.slow
def test_matten_task_interface():
    from zoo import tasks

    _exercise(tasks.get("mp_elastic_matten_n100", data_dir=DATA, progress=False), 100)


@needs["diel"]
def test_dielectric_task_interface_holdout_and_kfold():
    from zoo import tasks
    from zoo.tasks.datasets import clear_cache

    clear_cache()
    t = tasks.get("mp_dielectric_total", data_dir=DATA, progress=False, fix_frames=False, score_symmetry=False)
    _exercise(t, 1056)
    h = tasks.get("mp_dielectric_electronic", data_dir=DATA, progress=False, fix_frames=False, split="holdout")
    h.load()
    assert h.folds == [0] and len(h.get_test_data(0)) == round(0.1 * 1056)
    assert len(h.get_validation_ids(0)) == round(0.1 * 1056)
    # the committed split is what the task uses
    d = S.read_dataset_splits("mp_dielectric")
    assert list(h.get_test_data(0).index) == d["holdout"]["fold_0"]["test"]
    assert t.config["split_file"].endswith("mp_dielectric_v1.json")


def test_jarvis_offline_task_and_voigt_order(tmp_path):
    from zoo import tasks

    path, recs = _write_jarvis(tmp_path)
    df = J.load_jarvis(path=path, progress=False)
    assert len(df) == 13 and df.loc["JVASP-1005", "elastic_tensor"] is None  # "na"
    # VASP order (xx, yy, zz, xy, yz, zx) read correctly: hexagonal C_xyxy = C66 = (C11 - C12) / 2 = 45 GPa
    # and C_yzyz = C44 = 20 GPa, both x 1.1 for this row
    C = df.at["JVASP-1002", "elastic_tensor"]
    assert C[0, 1, 0, 1] == pytest.approx(49.5) and C[1, 2, 1, 2] == pytest.approx(22.0)
    assert (df["elastic_tensor_frame_status"].dropna() == "as_is").all()
    assert not df.at["JVASP-2000", "dielectric_diagonal_by_symmetry"]
    assert df.loc[[f"JVASP-{1000 + k}" for k in range(12)], "dielectric_diagonal_by_symmetry"].all()
    np.testing.assert_allclose(np.diag(df.at["JVASP-1001", "dielectric_optb88vdw"]), [6.01, 6.01, 7.51])
    # misreading the order breaks the symmetry: the frame check catches it on tetragonal and hexagonal
    wrong = J.load_jarvis(path=path, progress=False, voigt_order="standard")
    bad = wrong["elastic_tensor_frame_status"] == "inconsistent"
    assert set(wrong.index[bad]) == {f"JVASP-{1000 + k}" for k in range(12) if k % 3 and k != 5}
    t = tasks.get("jarvis_elastic", path=path, progress=False)
    t.load()
    assert len(t.df) == 11  # 12 cubic/tetragonal/hexagonal minus the "na" one; monoclinic has none
    e = tasks.get("jarvis_dielectric_optb88vdw", path=path, progress=False)
    e.load()
    assert "JVASP-2000" not in e.df.index and len(e.df) == 12
    p = tasks.get("jarvis_piezo_max_eij", path=path, progress=False)
    p.load()
    assert len(p.df) == 8 and p.spec.target.kind == "scalar"
