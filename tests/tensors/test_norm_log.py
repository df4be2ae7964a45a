"""zoo.tensors.norm_log: golden values, exact inverse, O(3) equivariance for every rank, symmetry kept."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from zoo.symmetry import rotate_tensor
from zoo.tensors.norm_log import MAX_LOG_NORM, median_norm, norm_exp, norm_log


def test_golden_values():
    # |T| = 2 with s = 1: the norm becomes ln 3, the direction stays
    T = np.zeros((3, 3, 3))
    T[0, 1, 2] = T[2, 1, 0] = np.sqrt(2.0)
    U = norm_log(T, 3, 1.0)
    assert np.linalg.norm(U) == pytest.approx(np.log(3.0), rel=1e-15)
    np.testing.assert_allclose(U / np.linalg.norm(U), T / 2.0, rtol=1e-15)
    # scalars keep their sign: s ln(1 + |y|/s)
    np.testing.assert_allclose(norm_log(np.array([-3.0, 0.0, 0.5]), 0, 0.5), [-0.5 * np.log(7.0), 0.0, 0.5 * np.log(2.0)],
                               rtol=1e-15)
    # a tensor much smaller than s is nearly unchanged (f(T) = T (1 - |T|/2s + ...))
    small = np.full((3, 3), 1e-6)
    np.testing.assert_allclose(norm_log(small, 2, 10.0), small, rtol=1e-6)
    assert median_norm(np.stack([T, 2 * T, 0 * T, 5 * T]), 3) == pytest.approx(4.0)  # zeros do not count
    assert median_norm(np.zeros((2, 3)), 1) == 1.0


@pytest.mark.parametrize("rank", [0, 1, 2, 3, 4])
def test_inverse_is_exact_and_zero_stays_zero(rank):
    rng = np.random.default_rng(rank)
    T = rng.standard_normal((20,) + (3,) * rank) * np.exp(rng.normal(0, 2, (20,) + (1,) * rank))
    T[3] = 0.0
    for s in (0.1, 1.0, 30.0):
        U = norm_log(T, rank, s)
        np.testing.assert_allclose(norm_exp(U, rank, s), T, rtol=1e-12, atol=1e-300)
        assert np.all(U[3] == 0.0)
        np.testing.assert_allclose(norm_log(norm_exp(U, rank, s), rank, s), U, rtol=1e-12)


@pytest.mark.parametrize("rank", [1, 2, 3, 4])
def test_commutes_with_rotations_and_reflections(rank):
    rng = np.random.default_rng(10 + rank)
    T = rng.standard_normal((3,) * rank) * 4.0
    for seed in range(3):
        R = Rotation.random(random_state=seed).as_matrix() * (-1.0 if seed % 2 else 1.0)
        np.testing.assert_allclose(norm_log(rotate_tensor(T, R), rank, 0.7), rotate_tensor(norm_log(T, rank, 0.7), R),
                                   atol=1e-12)
        np.testing.assert_allclose(norm_exp(rotate_tensor(T, R), rank, 0.7), rotate_tensor(norm_exp(T, rank, 0.7), R),
                                   atol=1e-10)


def test_a_symmetric_tensor_stays_symmetric():
    # a piezoelectric-like tensor with e_ijk = e_ikj, invariant under the 2-fold axis along z (point group 2):
    # f(T) has the same zeros and index symmetry
    rng = np.random.default_rng(3)
    T = rng.standard_normal((3, 3, 3))
    T = 0.5 * (T + T.transpose(0, 2, 1))
    C2 = np.diag([-1.0, -1.0, 1.0])
    T = 0.5 * (T + rotate_tensor(T, C2))
    U = norm_log(T, 3, 0.3)
    np.testing.assert_allclose(U, U.transpose(0, 2, 1), atol=1e-15)
    np.testing.assert_allclose(rotate_tensor(U, C2), U, atol=1e-15)


def test_huge_predictions_stay_finite_and_bad_input_is_named():
    U = np.full((2, 3, 3, 3), 1e4)
    back = norm_exp(U, 3, 1.0)
    assert np.all(np.isfinite(back))
    assert np.linalg.norm(back[0]) == pytest.approx(np.expm1(MAX_LOG_NORM), rel=1e-12)
    with pytest.raises(ValueError, match="rank-3 tensor has trailing axes"):
        norm_log(np.ones((4, 3, 3)), 3, 1.0)
    with pytest.raises(ValueError, match="scale must be a positive"):
        norm_log(np.ones((4, 3)), 1, 0.0)
