"""Matrix logarithm and exponential of symmetric rank-2 tensors (zoo.tensors.spectral)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm, logm
from scipy.spatial.transform import Rotation

from zoo.tensors import spd_log, sym_exp


def _spd(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, 3, 3))
    return A @ A.transpose(0, 2, 1) + 1.5 * np.eye(3)


def test_log_and_exp_match_scipy_and_round_trip():
    T = _spd(12, 0)
    L = spd_log(T)
    for t, l in zip(T, L):  # golden: scipy's general-matrix algorithms (Schur / Padé), not eigh
        np.testing.assert_allclose(l, logm(t).real, atol=1e-12)
        np.testing.assert_allclose(sym_exp(l), expm(l), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sym_exp(L), T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(L, L.transpose(0, 2, 1), atol=0)


def test_isotropic_and_diagonal_golden_values():
    np.testing.assert_allclose(spd_log(np.diag([1.0, np.e, np.e**2])), np.diag([0.0, 1.0, 2.0]), atol=1e-15)
    np.testing.assert_allclose(sym_exp(np.log(11.0) * np.eye(3)), 11.0 * np.eye(3), rtol=1e-14)


def test_commute_with_rotations_and_reflections():
    T = _spd(6, 1)
    R = Rotation.random(random_state=2).as_matrix() * -1.0  # det -1
    TR = R @ T @ R.T
    np.testing.assert_allclose(spd_log(TR), R @ spd_log(T) @ R.T, atol=1e-12)
    M = spd_log(T)
    np.testing.assert_allclose(sym_exp(R @ M @ R.T), R @ sym_exp(M) @ R.T, rtol=1e-12, atol=1e-12)


def test_not_positive_definite_is_named():
    T = _spd(4, 3)
    T[2] = np.diag([2.0, -0.5, 1.0])
    with pytest.raises(ValueError, match=r"'mp-7' \(and 0 more\) is not positive definite.*-0\.5.*--target-transform none"):
        spd_log(T, ids=["mp-1", "mp-3", "mp-7", "mp-9"])
    with pytest.raises(ValueError, match="#2"):
        spd_log(T)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 3\)"):
        spd_log(np.ones((2, 3, 4)))


def test_exp_stays_finite_for_huge_predictions():
    out = sym_exp(np.diag([1e4, 0.0, -1e4]))
    assert np.all(np.isfinite(out)) and out[0, 0] == pytest.approx(np.exp(50.0))


def test_clausius_mossotti_map_golden_round_trip_and_equivariance():
    """(ε - 1)(ε + 2)^-1: eigenwise golden values (ε = 1 -> 0, 4 -> 1/2), the same as the product of the two
    commuting matrices, the inverse undoes it, it commutes with an improper rotation, and an impossible
    prediction (eigenvalue >= 1 or < -1/2) comes back finite and positive semi-definite."""
    from zoo.tensors import cm_inverse, cm_map

    np.testing.assert_allclose(cm_map(np.diag([1.0, 4.0, 10.0])), np.diag([0.0, 0.5, 0.75]), atol=1e-15)
    T = _spd(10, 4)
    M = cm_map(T)
    for t, m in zip(T, M):
        np.testing.assert_allclose(m, np.linalg.solve(t + 2 * np.eye(3), t - np.eye(3)), atol=1e-13)
    np.testing.assert_allclose(cm_inverse(M), T, rtol=1e-12, atol=1e-12)
    R = Rotation.random(random_state=5).as_matrix() * -1.0
    np.testing.assert_allclose(cm_map(R @ T @ R.T), R @ M @ R.T, atol=1e-13)
    wild = cm_inverse(np.diag([1.5, -3.0, 0.2]))
    assert np.all(np.isfinite(wild)) and np.linalg.eigvalsh(wild).min() >= 0.0
    bad = T.copy()
    bad[1] = -np.eye(3)
    with pytest.raises(ValueError, match=r"'b'.*not positive definite.*--target-transform none"):
        cm_map(bad, ids=[str(c) for c in "abcdefghij"])
