"""Index symmetry, Voigt conversions and the O(3) irreducible basis shared by the torch and jax models."""
from __future__ import annotations

import numpy as np
import pytest

from zoo import tensors as tt
from zoo.symmetry import rotate_tensor

FORMULAS = ["ij=ji", "ijk=ikj", "ijkl=jikl=klij"]
N_INDEPENDENT = {"ij=ji": 6, "ijk=ikj": 18, "ijkl=jikl=klij": 21}


def random_rotation(rng, improper=False):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return -q if improper else q


def random_symmetric(formula, rng, lead=(5,)):
    n = tt.rank_of(formula)
    return tt.symmetrize_indices(rng.normal(size=lead + (3,) * n), formula)


# ------------------------------------------------------------------ index symmetry
@pytest.mark.parametrize("formula", FORMULAS)
def test_independent_components_and_projector(formula):
    P = tt.index_projector(formula)
    assert np.allclose(P @ P, P, atol=1e-14) and np.allclose(P, P.T, atol=1e-14)
    assert round(np.trace(P)) == N_INDEPENDENT[formula]
    assert len(tt.independent_components(formula)) == N_INDEPENDENT[formula]


def test_formula_symmetries_hold_after_symmetrize():
    rng = np.random.default_rng(0)
    C = random_symmetric("ijkl=jikl=klij", rng, lead=())
    assert np.allclose(C, C.transpose(1, 0, 2, 3), atol=1e-15)
    assert np.allclose(C, C.transpose(2, 3, 0, 1), atol=1e-15)
    assert np.allclose(C, C.transpose(0, 1, 3, 2), atol=1e-15)  # follows from the two generators
    assert not np.allclose(C, C.transpose(0, 2, 1, 3))  # Cauchy symmetry is not implied
    e = random_symmetric("ijk=ikj", rng, lead=())
    assert np.allclose(e, e.transpose(0, 2, 1), atol=1e-15)
    assert not np.allclose(e, e.transpose(1, 0, 2))
    A = tt.symmetrize_indices(rng.normal(size=(3, 3)), "ij=-ji")
    assert np.allclose(A, -A.T) and tt.independent_components("ij=-ji") == [(0, 1), (0, 2), (1, 2)]


def test_bad_formulas_are_named():
    with pytest.raises(ValueError, match="permutation"):
        tt.rank_of("ij=jk")
    with pytest.raises(ValueError, match="zero"):
        tt.index_projector("ij=ji=-ji")
    with pytest.raises(ValueError, match="default"):
        tt.default_formula(5)


# ------------------------------------------------------------------ irreps
@pytest.mark.parametrize("formula", FORMULAS)
def test_basis_matches_e3nn_and_is_orthonormal(formula):
    from e3nn.io import CartesianTensor

    assert str(CartesianTensor(formula)) == tt.irreps(formula) == tt.IRREPS[formula]
    Q = tt.change_of_basis(formula)
    assert Q.dtype == np.float64 and Q.shape == (N_INDEPENDENT[formula],) + (3,) * tt.rank_of(formula)
    Qf = Q.reshape(len(Q), -1)
    assert np.abs(Qf @ Qf.T - np.eye(len(Q))).max() < 1e-12
    assert np.abs(Qf.T @ Qf - tt.index_projector(formula)).max() < 1e-12
    with pytest.raises(ValueError):
        Q[(0,) * Q.ndim] = 1.0  # the cached basis is read-only


@pytest.mark.parametrize("formula", FORMULAS)
def test_irreps_round_trip(formula):
    rng = np.random.default_rng(1)
    T = random_symmetric(formula, rng, lead=(4, 2))
    x = tt.to_irreps(T, formula)
    assert x.shape == (4, 2, N_INDEPENDENT[formula])
    assert np.abs(tt.from_irreps(x, formula) - T).max() < 1e-12
    x2 = rng.normal(size=(7, N_INDEPENDENT[formula]))
    assert np.abs(tt.to_irreps(tt.from_irreps(x2, formula), formula) - x2).max() < 1e-12
    # A tensor that breaks the index symmetry keeps only its symmetric part.
    raw = rng.normal(size=(3,) * tt.rank_of(formula))
    assert np.abs(tt.to_irreps(raw, formula) - tt.to_irreps(tt.symmetrize_indices(raw, formula), formula)).max() < 1e-12


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("improper", [False, True])
def test_irreps_equivariance(formula, improper):
    """to_irreps(R·T) = D(R) to_irreps(T) with e3nn's Wigner matrices, for rotations and R·inversion."""
    import torch
    from e3nn import o3

    rng = np.random.default_rng(2)
    R = random_rotation(rng, improper)
    T = random_symmetric(formula, rng, lead=())
    # e3nn builds its Wigner constants in torch's default dtype: float64 for a 1e-12 comparison.
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        D = o3.Irreps(tt.irreps(formula)).D_from_matrix(torch.as_tensor(R)).numpy()
    finally:
        torch.set_default_dtype(old)
    lhs = tt.to_irreps(rotate_tensor(T, R), formula)
    assert np.abs(lhs - D @ tt.to_irreps(T, formula)).max() < 1e-12


@pytest.mark.parametrize("formula", FORMULAS)
def test_irreps_backends_agree(formula):
    import jax
    import jax.numpy as jnp
    import torch

    rng = np.random.default_rng(3)
    T = random_symmetric(formula, rng, lead=(3,))
    ref = tt.to_irreps(T, formula)
    xt = tt.to_irreps(torch.as_tensor(T), formula)
    assert isinstance(xt, torch.Tensor) and xt.dtype == torch.float64
    assert np.abs(xt.numpy() - ref).max() < 1e-12
    assert np.abs(tt.from_irreps(xt, formula).numpy() - T).max() < 1e-12
    with jax.enable_x64(True):
        xj = tt.to_irreps(jnp.asarray(T), formula)
        assert isinstance(xj, jax.Array)
        assert np.abs(np.asarray(xj) - ref).max() < 1e-12
        assert np.abs(np.asarray(tt.from_irreps(xj, formula)) - T).max() < 1e-12
    # float32 inputs stay float32 (what the models feed in).
    x32 = tt.to_irreps(torch.as_tensor(T, dtype=torch.float32), formula)
    assert x32.dtype == torch.float32 and np.abs(x32.numpy() - ref).max() < 1e-5


def _assert_schur_blocks(M, irreps):
    """M maps each ``mul x l`` block onto itself as W ⊗ I_(2l+1), W orthogonal, and nothing else."""
    start = 0
    mask = np.zeros_like(M, dtype=bool)
    for chunk in irreps.split("+"):
        mul, ir = chunk.split("x")
        mul, dim = int(mul), 2 * int(ir[:-1]) + 1
        sl = slice(start, start + mul * dim)
        block = M[sl, sl].reshape(mul, dim, mul, dim)
        W = block[:, 0, :, 0]
        assert np.abs(block - np.einsum("ab,ij->aibj", W, np.eye(dim))).max() < 1e-10
        assert np.abs(W @ W.T - np.eye(mul)).max() < 1e-10
        mask[sl, sl] = True
        start += mul * dim
    assert np.abs(M[~mask]).max(initial=0.0) < 1e-10


@pytest.mark.parametrize("formula", FORMULAS)
def test_e3nn_jax_spans_the_same_basis(formula):
    import e3nn_jax

    base = formula.split("=")[0]
    B = e3nn_jax.reduced_tensor_product_basis(formula, **{c: "1o" for c in base})
    assert str(B.irreps) == tt.irreps(formula)  # same irreps, same order
    M = tt.e3nn_jax_alignment(formula)
    assert np.abs(M @ M.T - np.eye(len(M))).max() < 1e-10
    _assert_schur_blocks(M, tt.irreps(formula))
    # Documented in zoo/tasks/tensors.py for e3nn 0.6.0 / e3nn-jax 0.21.0 (constraints.txt).
    if formula in ("ij=ji", "ijkl=jikl=klij"):
        assert np.abs(M - np.eye(len(M))).max() < 1e-10
    # x_torch = M x_jax for the same tensor.
    rng = np.random.default_rng(4)
    T = random_symmetric(formula, rng, lead=())
    Bj = tt.e3nn_jax_basis(formula).reshape(len(M), -1)
    assert np.abs(tt.to_irreps(T, formula) - M @ (Bj @ T.reshape(-1))).max() < 1e-10


def test_e3nn_jax_symmetric_power_matches_ij_ji():
    import jax

    import e3nn_jax

    with jax.enable_x64(True):
        B = e3nn_jax.reduced_symmetric_tensor_product_basis(e3nn_jax.Irreps("1o"), 2)
        Bf = np.moveaxis(np.asarray(B.array, dtype=np.float64), -1, 0).reshape(6, 9)
    assert str(B.irreps) == "1x0e+1x2e"
    M = tt.change_of_basis("ij=ji").reshape(6, 9) @ Bf.T
    _assert_schur_blocks(M, "1x0e+1x2e")


def test_isotropic_part():
    rng = np.random.default_rng(5)
    eps = random_symmetric("ij=ji", rng, lead=())
    assert np.allclose(tt.isotropic_part(eps, "ij=ji"), np.trace(eps) / 3 * np.eye(3), atol=1e-13)
    e = random_symmetric("ijk=ikj", rng, lead=())
    assert np.abs(tt.isotropic_part(e, "ijk=ikj")).max() < 1e-13  # no 0e in an odd-rank tensor
    C = random_symmetric("ijkl=jikl=klij", rng, lead=())
    iso = tt.isotropic_part(C, "ijkl=jikl=klij")
    R = random_rotation(rng)
    assert np.abs(rotate_tensor(iso, R) - iso).max() < 1e-12
    V = tt.to_voigt(iso, "stiffness")
    assert np.isclose(V[0, 0], V[0, 1] + 2 * V[3, 3])  # isotropic: C11 = C12 + 2 C44


# ------------------------------------------------------------------ Voigt
@pytest.mark.parametrize("kind,formula", [("stress", "ij=ji"), ("strain", "ij=ji"),
                                          ("stiffness", "ijkl=jikl=klij"), ("compliance", "ijkl=jikl=klij"),
                                          ("piezo_e", "ijk=ikj"), ("piezo_d", "ijk=ikj")])
def test_voigt_round_trip(kind, formula):
    rng = np.random.default_rng(6)
    T = random_symmetric(formula, rng, lead=(3, 2))
    V = tt.to_voigt(T, kind)
    assert V.shape == (3, 2) + {2: (6,), 3: (3, 6), 4: (6, 6)}[tt.rank_of(formula)]
    assert np.abs(tt.from_voigt(V, kind) - T).max() < 1e-12
    assert np.abs(tt.to_voigt(tt.from_voigt(V, kind), kind) - V).max() < 1e-12


def test_voigt_factors_by_hand():
    eps = np.array([[0.01, 0.003, 0.002], [0.003, 0.02, 0.001], [0.002, 0.001, 0.03]])
    assert np.allclose(tt.to_voigt(eps, "strain"), [0.01, 0.02, 0.03, 0.002, 0.004, 0.006])
    assert np.allclose(tt.to_voigt(eps, "stress"), [0.01, 0.02, 0.03, 0.001, 0.002, 0.003])
    S = np.zeros((3, 3, 3, 3))
    S[1, 2, 1, 2] = S[2, 1, 1, 2] = S[1, 2, 2, 1] = S[2, 1, 2, 1] = 1.0
    S[0, 0, 1, 2] = S[0, 0, 2, 1] = S[1, 2, 0, 0] = S[2, 1, 0, 0] = 0.5
    Sv = tt.to_voigt(S, "compliance")
    assert Sv[3, 3] == 4.0 and Sv[0, 3] == Sv[3, 0] == 1.0 and Sv[0, 0] == 0.0
    assert tt.to_voigt(S, "stiffness")[3, 3] == 1.0
    d = np.zeros((3, 3, 3))
    d[2, 0, 1] = d[2, 1, 0] = 0.7
    d[0, 0, 0] = 0.3
    assert tt.to_voigt(d, "piezo_d")[2, 5] == 1.4 and tt.to_voigt(d, "piezo_e")[2, 5] == 0.7
    assert tt.to_voigt(d, "piezo_d")[0, 0] == 0.3


def test_voigt_factors_preserve_the_physics():
    """stress = C strain, strain = S stress, D = e strain, strain = d E, d = e S, in both notations."""
    rng = np.random.default_rng(7)
    A = rng.normal(size=(6, 6))
    Cv = A @ A.T + 6 * np.eye(6)  # positive-definite stiffness (GPa-like)
    C = tt.from_voigt(Cv, "stiffness")
    eps = tt.symmetrize_indices(rng.normal(size=(3, 3)), "ij=ji")
    sigma = np.einsum("ijkl,kl->ij", C, eps)
    assert np.allclose(tt.to_voigt(sigma, "stress"), Cv @ tt.to_voigt(eps, "strain"), atol=1e-12)
    # Compliance: the inverse in Voigt notation is the Cartesian inverse on symmetric tensors.
    S = tt.from_voigt(np.linalg.inv(Cv), "compliance")
    sym_id = 0.5 * (np.einsum("ik,jl->ijkl", np.eye(3), np.eye(3)) + np.einsum("il,jk->ijkl", np.eye(3), np.eye(3)))
    assert np.abs(np.einsum("ijkl,klmn->ijmn", S, C) - sym_id).max() < 1e-12
    assert np.allclose(np.einsum("ijkl,kl->ij", S, sigma), eps, atol=1e-12)
    e = tt.symmetrize_indices(rng.normal(size=(3, 3, 3)), "ijk=ikj")
    D = np.einsum("ijk,jk->i", e, eps)
    assert np.allclose(tt.to_voigt(e, "piezo_e") @ tt.to_voigt(eps, "strain"), D, atol=1e-12)
    d = np.einsum("ilm,lmjk->ijk", e, S)  # d = e S (Cartesian)
    assert np.allclose(tt.to_voigt(d, "piezo_d"), tt.to_voigt(e, "piezo_e") @ np.linalg.inv(Cv), atol=1e-12)
    E = rng.normal(size=3)
    assert np.allclose(E @ tt.to_voigt(d, "piezo_d"), tt.to_voigt(np.einsum("i,ijk->jk", E, d), "strain"), atol=1e-12)


def test_to_voigt_takes_the_symmetric_part():
    rng = np.random.default_rng(8)
    T = rng.normal(size=(3, 3))
    assert np.allclose(tt.from_voigt(tt.to_voigt(T, "stress"), "stress"), 0.5 * (T + T.T))


def test_voigt_errors_name_the_fix():
    with pytest.raises(ValueError, match="stress"):
        tt.to_voigt(np.eye(3), "dielectric")
    with pytest.raises(ValueError, match=r"\(3, 3, 3, 3\)"):
        tt.to_voigt(np.zeros((6, 6)), "stiffness")
    with pytest.raises(ValueError, match=r"\(3, 6\)"):
        tt.from_voigt(np.zeros((6, 6)), "piezo_e")
    with pytest.raises(ValueError, match="last axis"):
        tt.from_irreps(np.zeros(5), "ij=ji")
