"""Scalar/tensor metrics on hand-made cases with known answers, and the baseline floors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from zoo.tasks import baselines as bl
from zoo.tasks import metrics as mt
from zoo import tensors as tt
from zoo import symmetry as sy
from zoo.symmetry import cartesian_point_group, rotate_tensor, symmetrize_tensor


@pytest.fixture(scope="module")
def crystals():
    cu = Structure(Lattice.cubic(3.61), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    zno = Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                    [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.382]])
    tio2 = Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                                     [[0, 0, 0], [0.305, 0.305, 0]])
    return {"cu": cu, "zno": zno, "tio2": tio2}


@pytest.fixture(scope="module")
def ops(crystals):
    return {k: cartesian_point_group(s) for k, s in crystals.items()}


# ------------------------------------------------------------------ scalars
def test_scalar_metrics_golden():
    m = mt.scalar_metrics([1.0, 2.0, 3.0, 4.0], pd.Series([1.5, 2.0, 2.0, 5.0]))
    assert m["mae"] == pytest.approx(0.625)
    assert m["rmse"] == pytest.approx(0.75)
    assert m["max_error"] == pytest.approx(1.0)
    assert m["r2"] == pytest.approx(1 - 2.25 / 5.0)
    assert m["n"] == 4
    assert np.isnan(mt.scalar_metrics([2.0, 2.0], [1.0, 3.0])["r2"])


def test_scalar_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        mt.scalar_metrics([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="3 values"):
        mt.scalar_metrics([1.0, 2.0, 3.0], [1.0, 2.0])


# ------------------------------------------------------------------ operators and constraints
def test_neumann_operator_matches_zoo_symmetry(ops):
    rng = np.random.default_rng(0)
    for g in ops.values():
        for rank in (2, 3, 4):
            T = rng.normal(size=(3,) * rank)
            M = sy.neumann_operator(g, rank)
            assert np.abs(M @ T.reshape(-1) - symmetrize_tensor(T, g).reshape(-1)).max() < 1e-13


@pytest.mark.parametrize("name,formula,n_zero,n_equal", [
    ("cu", "ij=ji", 3, 2), ("cu", "ijk=ikj", 18, 0), ("cu", "ijkl=jikl=klij", 12, 6),
    ("zno", "ij=ji", 3, 1), ("zno", "ijk=ikj", 13, 2), ("zno", "ijkl=jikl=klij", 12, 3),
    ("tio2", "ij=ji", 3, 1), ("tio2", "ijk=ikj", 18, 0), ("tio2", "ijkl=jikl=klij", 12, 3),
])
def test_constraint_counts_match_textbook(ops, name, formula, n_zero, n_equal):
    """Cubic m-3m: eps 1 value, no piezo, C11=C22=C33, C12=C13=C23, C44=C55=C66. Hexagonal 6mm:
    eps11=eps22, e31=e32, e15=e24 and 13 zeros, C11=C22, C13=C23, C44=C55 (C66 = (C11-C12)/2 is not
    an equality). Tetragonal 4/mmm: eps11=eps22, centrosymmetric, C11=C22, C13=C23, C44=C55."""
    c = mt.symmetry_constraints(ops[name], formula)
    assert (c.n_zero, c.n_equal) == (n_zero, n_equal)
    # Every allowed tensor satisfies them exactly.
    rng = np.random.default_rng(1)
    T = symmetrize_tensor(tt.symmetrize_indices(rng.normal(size=(3,) * tt.rank_of(formula)), formula), ops[name])
    flat = T.reshape(-1)
    assert np.abs(flat[c.zero]).max(initial=0) < 1e-13
    assert np.abs(flat[c.equal_a] - c.equal_sign * flat[c.equal_b]).max(initial=0) < 1e-13


def test_equal_and_opposite_constraint_is_found():
    """Trigonal 32 (alpha-quartz): e_xxx = -e_xyy = -e_yxy, so the piezo constraints carry signs."""
    quartz = Structure.from_spacegroup("P3_221", Lattice.hexagonal(4.913, 5.405), ["Si", "O"],
                                       [[0.4697, 0, 0], [0.4135, 0.2669, 0.1191]])
    g = cartesian_point_group(quartz)
    assert len(g) == 6
    c = mt.symmetry_constraints(g, "ijk=ikj")
    assert -1.0 in c.equal_sign.tolist()
    xxx, xyy = np.ravel_multi_index((0, 0, 0), (3, 3, 3)), np.ravel_multi_index((0, 1, 1), (3, 3, 3))
    pairs = {(int(a), int(b)): s for a, b, s in zip(c.equal_a, c.equal_b, c.equal_sign)}
    assert pairs[(xyy, xxx)] == -1.0


def test_symmetry_violation_golden(ops):
    g = ops["cu"]
    T = np.diag([2.0, 2.0, 2.3])
    # Sym_cubic(T) = 2.1 I, so T - Sym T = diag(-0.1, -0.1, 0.2).
    expect = np.sqrt(0.06) / np.sqrt(4 + 4 + 2.3**2)
    assert sy.symmetry_violation(T, g) == pytest.approx(expect, rel=1e-12)
    assert sy.symmetry_violation(np.zeros((3, 3)), g) == 0.0
    assert sy.symmetry_violation(2.0 * np.eye(3), g) < 1e-15


# ------------------------------------------------------------------ tensor metrics
def test_tensor_metrics_golden_dielectric(crystals, ops):
    cu = crystals["cu"]
    true = np.stack([2.0 * np.eye(3), 3.0 * np.eye(3)])
    pred = np.stack([np.diag([2.0, 2.0, 2.3]), 3.0 * np.eye(3) + 0.01])
    m = mt.tensor_metrics(true, pred, structures=[cu, cu])
    err1, err2 = 0.3, 0.03  # Frobenius norms of the two errors (0.3; sqrt(9 * 0.01^2))
    assert m["fnorm"] == pytest.approx((err1 + err2) / 2)
    assert m["mae"] == pytest.approx((0.3 + 9 * 0.01) / 18)
    rel = np.array([err1 / np.sqrt(12), err2 / np.sqrt(27)])  # 0.0866, 0.0058
    assert (m["ewt25"], m["ewt10"], m["ewt5"]) == (1.0, 1.0, 0.5)
    assert rel[0] > 0.05 > rel[1]
    v1 = np.sqrt(0.06) / np.sqrt(8 + 2.3**2)
    pred2 = pred[1]  # 3I + 0.01: off-diagonals 0.01 break the cubic zeros; diagonal stays equal
    v2 = np.linalg.norm(pred2 - 3.01 * np.eye(3)) / np.linalg.norm(pred2)
    assert m["sym_violation_mean"] == pytest.approx((v1 + v2) / 2, rel=1e-12)
    assert m["sym_violation_median"] == pytest.approx((v1 + v2) / 2, rel=1e-12)
    assert m["true_sym_violation_mean"] < 1e-15
    # Cubic eps: 3 zero constraints (xy, xz, yz) and 2 equalities (yy = xx, zz = xx) per crystal.
    assert (m["zero_constraints"], m["equal_constraints"]) == (6, 4)
    # Crystal 1: zz != xx (one equality off). Crystal 2: 0.01 / ||T|| = 1.9e-3 > 1e-3 on 3 zeros.
    assert (m["zero_violations"], m["equal_violations"]) == (3, 1)
    # A looser tolerance forgives crystal 2's off-diagonals but not crystal 1's 0.3 (3.9% of ||T||).
    m2 = mt.tensor_metrics(true, pred, ops=[ops["cu"]] * 2, rtol=0.01)
    assert (m2["zero_violations"], m2["equal_violations"]) == (0, 1)


def test_tensor_metrics_zero_truth_and_perfect_prediction():
    true = np.zeros((2, 3, 3, 3))
    pred = np.zeros((2, 3, 3, 3))
    pred[1, 0, 0, 0] = 1e-3
    m = mt.tensor_metrics(true, pred)
    assert m["n_zero_true"] == 2 and m["ewt5"] == 0.5  # only the exact zero counts as within
    rng = np.random.default_rng(2)
    T = tt.symmetrize_indices(rng.normal(size=(4, 3, 3, 3, 3)), "ijkl=jikl=klij")
    m = mt.tensor_metrics(T, T)
    assert m["mae"] == m["fnorm"] == 0.0 and m["ewt5"] == 1.0


def test_piezo_symmetry_break_is_counted(crystals, ops):
    rng = np.random.default_rng(3)
    g = ops["zno"]
    e = symmetrize_tensor(tt.symmetrize_indices(rng.normal(size=(3, 3, 3)), "ijk=ikj"), g)
    pred = e.copy()
    pred[0, 0, 0] += 0.1 * np.linalg.norm(e)  # e_xxx is forced to zero in 6mm
    m = mt.tensor_metrics(e[None], pred[None], ops=[g])
    assert (m["zero_violations"], m["equal_violations"]) == (1, 0)
    assert (m["zero_constraints"], m["equal_constraints"]) == (13, 2)
    assert m["true_sym_violation_mean"] < 1e-14
    assert m["sym_violation_mean"] == pytest.approx(sy.symmetry_violation(pred, g), rel=1e-12)
    # Same answer from structures (ops computed inside) and from precomputed ops.
    m_s = mt.tensor_metrics(e[None], pred[None], structures=[crystals["zno"]])
    assert m_s["sym_violation_mean"] == pytest.approx(m["sym_violation_mean"], rel=1e-12)


def test_equivariant_prediction_scores_the_same_in_any_frame(crystals):
    """Rotating crystal, truth and prediction together changes no frame-free score.

    The zero/equal component counts are frame-dependent by construction (a rotated tetragonal crystal
    has no component forced to zero); they are meant for data in a standard setting."""
    rng = np.random.default_rng(4)
    s = crystals["tio2"]
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    R = q * np.sign(np.diag(r))
    R = R if np.linalg.det(R) > 0 else -R
    s_rot = Structure(Lattice(s.lattice.matrix @ R.T), s.species, s.frac_coords)
    C = tt.symmetrize_indices(rng.normal(size=(3, 3, 3, 3)), "ijkl=jikl=klij")
    true = symmetrize_tensor(C, cartesian_point_group(s))
    pred = true + 0.05 * tt.symmetrize_indices(rng.normal(size=(3, 3, 3, 3)), "ijkl=jikl=klij")
    a = mt.tensor_metrics(true[None], pred[None], structures=[s])
    b = mt.tensor_metrics(rotate_tensor(true, R)[None], rotate_tensor(pred, R)[None], structures=[s_rot])
    # Component MAE is not rotation invariant; the Frobenius-based scores are.
    for k in ("fnorm", "ewt10", "sym_violation_mean", "true_sym_violation_mean"):
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12), k
    assert a["zero_constraints"] == 12 and b["zero_constraints"] < 12


def test_by_crystal_system_breakdown(ops):
    rng = np.random.default_rng(5)
    true = tt.symmetrize_indices(rng.normal(size=(5, 3, 3)), "ij=ji")
    pred = true + 0.1 * rng.normal(size=true.shape)
    systems = ["cubic", "hexagonal", "cubic", "tetragonal", "hexagonal"]
    g = [ops["cu"], ops["zno"], ops["cu"], ops["tio2"], ops["zno"]]
    m = mt.tensor_metrics(true, pred, ops=g, crystal_systems=systems)
    assert set(m["by_crystal_system"]) == {"cubic", "hexagonal", "tetragonal"}
    idx = [0, 2]
    sub = mt.tensor_metrics(true[idx], pred[idx], ops=[g[i] for i in idx])
    got = m["by_crystal_system"]["cubic"]
    assert got["n"] == 2
    for k in ("mae", "fnorm", "ewt10", "sym_violation_mean"):
        assert got[k] == pytest.approx(sub[k], rel=1e-12)


def test_tensor_metrics_errors():
    with pytest.raises(ValueError, match="from_voigt"):
        mt.tensor_metrics(np.zeros((2, 6, 6)), np.zeros((2, 6, 6)))
    with pytest.raises(ValueError, match="rank 2"):
        mt.tensor_metrics(np.zeros((2, 3, 3, 3)), np.zeros((2, 3, 3, 3)), formula="ij=ji")
    with pytest.raises(ValueError, match="sets of point-group"):
        mt.tensor_metrics(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), ops=[np.eye(3)[None]])


def test_sequence_inputs(ops):
    true = [np.eye(3), 2 * np.eye(3)]
    pred = pd.Series([np.eye(3), 2.2 * np.eye(3)])
    m = mt.tensor_metrics(true, pred)
    assert m["fnorm"] == pytest.approx(0.2 * np.sqrt(3) / 2)


def test_align_to_point_group(ops):
    rng = np.random.default_rng(8)
    cands = mt.frame_candidates()
    assert len(cands) == 48 and np.allclose(cands[0], np.eye(3))
    assert np.allclose(np.einsum("nij,nkj->nik", cands, cands), np.eye(3)) and np.allclose(np.linalg.det(cands), 1)
    g = ops["tio2"]
    C = symmetrize_tensor(tt.symmetrize_indices(rng.normal(size=(3, 3, 3, 3)), "ijkl=jikl=klij"), g)
    R, v, amb = mt.align_to_point_group(C, g)
    assert np.allclose(R, np.eye(3)) and v < 1e-13 and not amb  # already in frame: identity wins
    P = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # c axis stored along x
    C_other = rotate_tensor(C, P)
    assert sy.symmetry_violation(C_other, g) > 0.05
    R, v, amb = mt.align_to_point_group(C_other, g)
    assert v < 1e-13 and not amb
    assert np.allclose(rotate_tensor(C_other, R), C, atol=1e-12)
    # A polar tensor cannot be told from its sign-flipped copy: flagged as ambiguous.
    e = symmetrize_tensor(tt.symmetrize_indices(rng.normal(size=(3, 3, 3)), "ijk=ikj"), ops["zno"])
    R, v, amb = mt.align_to_point_group(rotate_tensor(e, P), ops["zno"])
    assert v < 1e-13 and amb


# ------------------------------------------------------------------ baselines
def test_mean_baseline_scalar_and_tensor(crystals, ops):
    cu, zno = crystals["cu"], crystals["zno"]
    m = bl.MeanBaseline().fit([cu, zno, cu], [1.0, 2.0, 6.0])
    assert np.allclose(m.predict([zno, zno]), [3.0, 3.0])
    rng = np.random.default_rng(6)
    y = tt.symmetrize_indices(rng.normal(size=(4, 3, 3)), "ij=ji")
    mean = y.mean(axis=0)
    base = bl.MeanBaseline().fit([cu] * 4, y)
    pred = base.predict([cu, zno])
    assert np.allclose(pred[0], np.trace(mean) / 3 * np.eye(3), atol=1e-13)  # cubic: isotropic
    assert np.allclose(pred[1], symmetrize_tensor(mean, ops["zno"]), atol=1e-13)
    assert sy.symmetry_violation(pred[1], ops["zno"]) < 1e-14
    assert np.allclose(base.predict(None, ops=[ops["zno"]])[0], pred[1], atol=1e-14)
    iso = bl.MeanBaseline(mode="isotropic").fit([cu] * 4, y).predict([zno])
    assert np.allclose(iso[0], np.trace(mean) / 3 * np.eye(3), atol=1e-13)
    e = tt.symmetrize_indices(rng.normal(size=(4, 3, 3, 3)), "ijk=ikj")
    assert np.abs(bl.MeanBaseline(mode="isotropic").fit([cu] * 4, e).predict([zno])).max() < 1e-13
    raw = bl.MeanBaseline(mode="none").fit([cu] * 4, y).predict([zno, cu])
    assert np.allclose(raw, mean)


def test_element_linear_baseline_recovers_a_linear_law(crystals):
    """y = Σ_Z w_Z x_Z + b on element fractions is learnt exactly (alpha -> 0) and predicted for new mixes."""
    lat = Lattice.cubic(4.0)
    species = [["Na", "Cl"], ["Na", "Na"], ["K", "Cl"], ["K", "Br"], ["Na", "Br"], ["Cl", "Cl"]]
    train = [Structure(lat, sp, [[0, 0, 0], [0.5, 0.5, 0.5]]) for sp in species]
    w = {11: 1.5, 17: -2.0, 19: 0.25, 35: 3.0}
    X = bl.composition_features(train)
    assert np.allclose(X.sum(axis=1), 1.0)
    y = np.array([sum(w[z] * X[i, z - 1] for z in w) for i in range(len(train))]) + 0.7
    model = bl.ElementLinearBaseline(alpha=1e-12).fit(train, y)
    test = [Structure(lat, ["K", "Na"], [[0, 0, 0], [0.5, 0.5, 0.5]]), "KBr3"]
    expect = [0.5 * 0.25 + 0.5 * 1.5 + 0.7, 0.25 * 0.25 + 0.75 * 3.0 + 0.7]
    assert np.allclose(model.predict(test), expect, atol=1e-8)
    # Counts per cell are a different feature set.
    Xc = bl.composition_features(train, features="count")
    assert np.allclose(Xc.sum(axis=1), 2.0)
    # Ridge shrinks: a huge alpha predicts the training mean.
    flat = bl.ElementLinearBaseline(alpha=1e6).fit(train, y).predict(test)
    assert np.allclose(flat, y.mean(), atol=1e-4)


def test_element_linear_baseline_tensor_is_symmetrised(crystals, ops):
    rng = np.random.default_rng(7)
    lat = Lattice.cubic(4.0)
    train = [Structure(lat, sp, [[0, 0, 0], [0.5, 0.5, 0.5]]) for sp in (["Na", "Cl"], ["K", "Cl"], ["Na", "K"])]
    y = tt.symmetrize_indices(rng.normal(size=(3, 3, 3, 3, 3)), "ijkl=jikl=klij")
    model = bl.ElementLinearBaseline().fit(train, y)
    pred = model.predict([crystals["zno"], crystals["tio2"]])
    assert pred.shape == (2, 3, 3, 3, 3)
    assert sy.symmetry_violation(pred[0], ops["zno"]) < 1e-13
    assert sy.symmetry_violation(pred[1], ops["tio2"]) < 1e-13
    raw = bl.ElementLinearBaseline(symmetrize=False).fit(train, y).predict(train)
    assert np.abs(raw - y).max() < 1e-2  # 3 samples, 3 elements: (almost) interpolated


def test_baseline_errors():
    with pytest.raises(RuntimeError, match="before fit"):
        bl.MeanBaseline().predict([None])
    with pytest.raises(ValueError, match="mode"):
        bl.MeanBaseline(mode="median")
    with pytest.raises(ValueError, match="from_voigt"):
        bl.MeanBaseline().fit(None, np.zeros((3, 6, 6)))
    with pytest.raises(TypeError, match="Structures"):
        bl.composition_features([3.0])


class _FakeTask:
    """The slice of matbench's task interface that run_on_task uses."""

    def __init__(self, structures, y):
        self.structures = pd.Series(structures, index=[f"id-{i}" for i in range(len(structures))])
        self.y = pd.Series(list(y) if np.ndim(y) > 1 else y, index=self.structures.index)
        self.folds = [0, 1]
        self.recorded = {}

    def _test_idx(self, fold):
        return self.structures.index[fold::2]

    def get_train_and_val_data(self, fold):
        keep = self.structures.index.difference(self._test_idx(fold))
        return self.structures[keep], self.y[keep]

    def get_test_data(self, fold, include_target=False):
        return self.structures[self._test_idx(fold)]

    def record(self, fold, predictions):
        self.recorded[fold] = predictions


def test_run_on_task(crystals):
    cu, zno = crystals["cu"], crystals["zno"]
    task = _FakeTask([cu, zno, cu, zno], np.array([1.0, 2.0, 3.0, 4.0]))
    bl.run_on_task(task, "mean")
    # fold 0 tests ids 0 and 2 (trained on 2.0, 4.0); fold 1 tests 1 and 3 (trained on 1.0, 3.0).
    assert np.allclose(task.recorded[0], 3.0) and np.allclose(task.recorded[1], 2.0)
    eps = np.stack([2 * np.eye(3), np.diag([1.0, 1.0, 2.0]), 2 * np.eye(3), np.diag([1.0, 1.0, 2.0])])
    task = _FakeTask([cu, zno, cu, zno], eps)
    bl.run_on_task(task, "mean")
    assert len(task.recorded[0]) == 2 and np.allclose(task.recorded[0][0], 4.0 / 3.0 * np.eye(3))


# ------------------------------------------------------------------ real data (skipped when absent)
from tests.helpers import SHARED_DATA as DATA  # noqa: E402


@pytest.mark.data
def test_real_elastic_tensors_convention_and_symmetry():
    """MatTen's MP subset: its Voigt matrices are our "stiffness" kind, and its tensors obey the point group."""
    import json

    path = DATA / "mp_elastic_tensor_matten_n100" / "example_crystal_elasticity_tensor_n100.json"
    if not path.exists():
        pytest.skip(f"{path} not present")
    raw = json.loads(path.read_text())
    keys = list(raw["structure"])[:40]
    C = np.array([raw["elastic_tensor_full"][k] for k in keys])
    Cv = np.array([raw["elastic_tensor_voigt"][k] for k in keys])
    assert np.abs(tt.to_voigt(C, "stiffness") - Cv).max() < 1e-9
    assert np.abs(tt.from_voigt(Cv, "stiffness") - C).max() < 1e-9
    structures = [Structure.from_dict(raw["structure"][k]) for k in keys]
    g = sy.point_group_ops(structures)
    pred = bl.MeanBaseline().fit(structures, C).predict(structures, ops=g)
    m = mt.tensor_metrics(C, pred, ops=g, crystal_systems=[raw["crystal_system"][k] for k in keys])
    assert m["true_sym_violation_median"] < 1e-8 and m["sym_violation_median"] < 1e-12
    assert m["fnorm"] > 0 and set(m["by_crystal_system"]) == {"cubic"}


@pytest.mark.data
def test_real_dielectric_tensors_are_in_the_structure_frame():
    import gzip
    import json

    path = DATA / "matminer_dielectric_constant" / "dielectric_constant.json.gz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    with gzip.open(path, "rt") as fh:
        raw = json.load(fh)
    col = {c: i for i, c in enumerate(raw["columns"])}
    rows = raw["data"][:60]
    structures = [Structure.from_dict(r[col["structure"]]) for r in rows]
    eps = np.array([json.loads(r[col["e_total"]]) if isinstance(r[col["e_total"]], str) else r[col["e_total"]]
                    for r in rows])
    g = sy.point_group_ops(structures)
    m = mt.tensor_metrics(eps, eps, ops=g)
    # DFPT noise only: a few 1e-5 typically, never the O(1) of a tensor stored in another frame.
    assert m["true_sym_violation_median"] < 1e-3
    assert max(sy.symmetry_violation(e, o) for e, o in zip(eps, g)) < 0.05
