"""The canonical irreps -> Cartesian basis that every tensor read-out uses (``zoo.tensors.cartesian_basis``):
the same from e3nn and e3nn-jax, orthonormal, obeying the index symmetry, equivariant in e3nn's convention."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tests.helpers import torch_default_dtype
from zoo import tensors as zt
from zoo.symmetry import rotate_tensor

torch = pytest.importorskip("torch")
ej = pytest.importorskip("e3nn_jax")
from e3nn import o3  # noqa: E402


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


# ----------------------------------------------------------------------------------- Cartesian bases
FORMULAS = ["ij=ji", "ijk=ikj", "ijkl=jikl=klij", "ij", "ij=-ji"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_cartesian_irreps_match_both_libraries(formula):
    from e3nn.io import CartesianTensor

    ours = zt.irreps_string(zt.cartesian_irreps(formula))
    assert ours == str(CartesianTensor(formula))
    base, _ = zt.parse_formula(formula)
    assert ours == str(ej.reduced_tensor_product_basis(formula, **{c: "1o" for c in base}).irreps)


def test_known_cartesian_irreps():
    assert zt.irreps_string(zt.cartesian_irreps("ij=ji")) == "1x0e+1x2e"
    assert zt.irreps_string(zt.cartesian_irreps("ijk=ikj")) == "2x1o+1x2o+1x3o"
    assert zt.irreps_string(zt.cartesian_irreps("ijkl=jikl=klij")) == "2x0e+2x2e+1x4e"  # 21 = Voigt 6x6 symmetric
    assert zt.irreps_string(zt.cartesian_irreps("ij=-ji")) == "1x1e"  # a pseudovector


@pytest.mark.parametrize("formula", ["ij=ji", "ijk=ikj", "ijkl=jikl=klij"])
def test_canonical_cartesian_basis(formula):
    """torch and jax bases agree; orthonormal; obey the formula; equivariant in e3nn's D(R) convention;
    and differ from e3nn's own CartesianTensor basis only by an orthogonal mixing of equal irreps."""
    from e3nn.io import CartesianTensor

    Qt, Qj = zt.cartesian_basis(formula, "e3nn"), zt.cartesian_basis(formula, "e3nn_jax")
    assert rel_err(Qj, Qt) <= 1e-12
    D = Qt.shape[0]
    A = Qt.reshape(D, -1)
    assert np.allclose(A @ A.T, np.eye(D), atol=1e-12)
    assert zt.obeys_formula(Qt, formula, atol=1e-12)
    irreps = zt.cartesian_irreps(formula)
    with torch_default_dtype(torch.float64):
        R = o3.rand_matrix(dtype=torch.float64)
        R = -R  # with the inversion
        Dm = o3.Irreps(zt.irreps_string(irreps)).D_from_matrix(R).numpy()
        ct = CartesianTensor(formula)
        Qe = ct.reduced_tensor_products().change_of_basis.numpy().reshape(D, -1)
        x = torch.randn(D, dtype=torch.float64)
        T_e3nn = ct.to_cartesian(x).numpy()
    # T(Dy) = R·T(y): the read-out irreps transform like e3nn's, so the Cartesian tensor rotates correctly
    y = np.random.default_rng(0).normal(size=D)
    assert rel_err(np.tensordot(Dm @ y, Qt, axes=1), rotate_tensor(np.tensordot(y, Qt, axes=1), R.numpy())) <= 1e-12
    M = A @ Qe.T  # our rows in e3nn's basis: orthogonal and block diagonal per irrep type
    assert np.allclose(M @ M.T, np.eye(D), atol=1e-12)
    assert rel_err(M @ Qe, A) <= 1e-12
    assert np.allclose(M @ Dm, Dm @ M, atol=1e-10)  # commutes with the representation (Schur)
    # our conversion of e3nn's components, mapped by M, reproduces CartesianTensor.to_cartesian
    assert rel_err(np.tensordot(M @ x.numpy(), Qt, axes=1), T_e3nn) <= 1e-12


def test_canonicalisation_undoes_a_mixing():
    """A random orthogonal mixing of the two 1o copies (and a sign flip of the 2o) is undone exactly."""
    formula = "ijk=ikj"
    Q = zt.cartesian_basis(formula)
    c, s = math.cos(0.7), math.sin(0.7)
    mixed = Q.copy()
    mixed[0:3] = c * Q[0:3] + s * Q[3:6]
    mixed[3:6] = -s * Q[0:3] + c * Q[3:6]
    mixed[6:11] = -Q[6:11]
    assert rel_err(zt.canonical_change_of_basis(mixed, zt.cartesian_irreps(formula), zt.cartesian_irreps(formula)), Q) <= 1e-12
    assert rel_err(mixed, Q) > 0.1
