"""Product decomposition and Dirl coupling coefficients, with a test for each known trap."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.symmetry import POINT_GROUPS, point_group
from zoo.symmetry.groups.coupling import dirl_coupling, intertwiners, invariant_projector, kron_rep
from zoo.symmetry.groups.validate import random_orthogonal, validate_couplings


def _intertwining_error(Ga, Gb, Gc, C):
    m, da, db, dc = C.shape
    U = C.reshape(m, da * db, dc)
    rho = kron_rep(Ga, Gb)
    return max(float(np.abs(rho @ Uk - Uk @ Gc).max()) for Uk in U)


def test_oh_t1u_times_t1u():
    G = point_group("Oh")
    assert G.product("T1u", "T1u") == {"A1g": 1, "Eg": 1, "T1g": 1, "T2g": 1}
    assert G.product("T1u", "T2u") == {"A2g": 1, "Eg": 1, "T1g": 1, "T2g": 1}
    assert G.product("Eg", "Eu") == {"A1u": 1, "A2u": 1, "Eu": 1}
    C = G.coupling("T1u", "T1u", "T2g")
    assert C.shape == (1, 3, 3, 3)
    # the scalar channel is the basis-independent δ_ij / √3 (T1u is orthogonal)
    np.testing.assert_allclose(G.coupling("T1u", "T1u", "A1g")[0, :, :, 0], np.eye(3) / np.sqrt(3), atol=1e-15)
    # the T1g channel is antisymmetric in (i, j), T2g and Eg symmetric
    T1g = G.coupling("T1u", "T1u", "T1g")
    np.testing.assert_allclose(T1g, -T1g.transpose(0, 2, 1, 3), atol=1e-15)
    np.testing.assert_allclose(C, C.transpose(0, 2, 1, 3), atol=1e-15)
    assert G.coupling("T1u", "T1u", "A2g").shape == (0, 3, 3, 1)  # m = 0: empty, not an error


def test_merged_pair_multiplicity_trap():
    """C3: E (= ¹E ⊕ ²E, one real 2-d irrep) ⊗ E = 2A + E. <χ_E², χ_E> is 2, but E occurs once:
    the inner product must be divided by <χ_E, χ_E> = 2."""
    G = point_group("3")
    assert G.indicator("E") == 0
    chi = G.character("E")
    naive = float(np.dot(chi * chi, chi)) / G.order
    assert naive == pytest.approx(2.0)
    assert G.product("E", "E") == {"A": 2, "E": 1}
    C = G.coupling("E", "E", "E")
    assert C.shape == (1, 2, 2, 2)
    Gm = G.matrices("E")
    assert _intertwining_error(Gm, Gm, Gm, C) < 1e-14
    # the intertwiner space of a merged pair is 2-dimensional (commutant a·1 + b·J) per copy
    P = invariant_projector(kron_rep(Gm, Gm), Gm)
    assert round(np.trace(P)) == 2
    # and in 6/m the same holds for every E1/E2 channel; dimensions add up
    H = point_group("6/m")
    for a in H.irreps:
        for b in H.irreps:
            prod = H.product(a, b)
            assert sum(m * H.dim(c) for c, m in prod.items()) == H.dim(a) * H.dim(b)


def test_dirl_triple_rule_never_uses_a_vanishing_bracket():
    """Brackets B_qsa = (1/|G|) Σ Γα_qq Γβ_ss Γγ_aa can vanish (T1u ⊗ T1u -> T1g is antisymmetric,
    so every (q, q, a) bracket is 0); the rule takes the largest one, and the coefficient at the
    chosen triple comes out positive."""
    G = point_group("m-3m")
    Ga, Gc = G.matrices("T1u"), G.matrices("T1g")
    P = invariant_projector(kron_rep(Ga, Ga), Gc)
    brackets = np.diag(P).reshape(3, 3, 3)
    assert np.allclose([brackets[q, q, a] for q in range(3) for a in range(3)], 0)  # vanishing ones exist
    assert (brackets < 1e-14).sum() > 0 and brackets.max() > 0.1
    q, s, a = np.unravel_index(int(np.argmax(brackets.ravel() >= brackets.max() * (1 - 1e-9))), brackets.shape)
    C = G.coupling("T1u", "T1u", "T1g")[0]
    assert C[q, s, a] > 0
    # Dirl's normalisation: U = sqrt(dγ / B) (1/|G|) Σ Γα_iq Γβ_js Γγ_na at the chosen triple
    raw = np.einsum("gi,gj,gn->ijn", Ga[:, :, q], Ga[:, :, s], Gc[:, :, a]) / G.order
    np.testing.assert_allclose(C, raw * np.sqrt(3 / brackets[q, s, a]), atol=1e-15)
    # a vanishing triple would give 0/0
    with np.errstate(invalid="ignore", divide="ignore"):
        bad = np.einsum("gi,gj,gn->ijn", Ga[:, :, 0], Ga[:, :, 0], Gc[:, :, 0]) / G.order / np.sqrt(brackets[0, 0, 0])
    assert not np.all(np.isfinite(bad)) or np.abs(bad).max() == 0


def test_second_copy_is_orthogonalised_as_a_block():
    """(1) T ⊗ T = A + E + 2T in 23: the two T copies are orthonormal as blocks and both intertwine.
    (2) Why blocks: in C3, E ⊗ E contains the merged pair E once, but its intertwiners form a
    2-d space (U1 and U1·J). Removing the overlap of a second Dirl column with U1 column by column
    (column n against column n) leaves a bogus "second copy" that is not orthogonal to U1 as a
    block; removing U1 U1ᵀ M (the whole block) correctly leaves nothing."""
    G = point_group("23")
    assert G.product("T", "T") == {"A": 1, "E": 1, "T": 2}
    Gt = G.matrices("T")
    C = G.coupling("T", "T", "T")
    assert C.shape == (2, 3, 3, 3)
    assert _intertwining_error(Gt, Gt, Gt, C) < 1e-14
    U = np.concatenate(list(C.reshape(2, 9, 3)), axis=1)
    np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-14)

    H = point_group("3")
    Ge = H.matrices("E")
    P = invariant_projector(kron_rep(Ge, Ge), Ge)
    U1 = H.coupling("E", "E", "E")[0].reshape(4, 2)
    worst_naive, worst_block = 0.0, 0.0
    for c in range(P.shape[1]):
        M = P[:, c].reshape(4, 2)
        naive = M.copy()
        for n in range(2):
            naive[:, n] -= (U1[:, n] @ naive[:, n]) * U1[:, n]
        block = M - U1 @ (U1.T @ M)
        if np.linalg.norm(naive) > 0.1:
            # the bogus copy still overlaps U1 as a block: [U1 | naive] is no isometry
            worst_naive = max(worst_naive, float(np.abs(U1.T @ naive).max()))
        worst_block = max(worst_block, float(np.linalg.norm(block)))
    assert worst_naive > 0.1
    assert worst_block < 1e-13
    with pytest.raises(ValueError):  # and asking for the naive multiplicity 2 is refused
        intertwiners(kron_rep(Ge, Ge), Ge, 2)


def test_intertwiners_refuses_more_copies_than_exist():
    G = point_group("m-3m")
    rho = kron_rep(G.matrices("T1u"), G.matrices("T1u"))
    with pytest.raises(ValueError):
        intertwiners(rho, G.matrices("T2g"), 2)


def test_validation_of_every_triple_of_every_group():
    """Checks (a)-(d) on all ordered triples of all 32 groups, float64, target 1e-12."""
    totals = {"n_triples": 0, "n_mult2": 0, "n_pair": 0}
    for hm in POINT_GROUPS:
        r = validate_couplings(point_group(hm))
        assert r["dimsum_fail"] == 0 and r["dim_fail"] == 0, hm
        for k in "abcd":
            assert r[k] <= 1e-12, (hm, k, r[k])
        for k in totals:
            totals[k] += r[k]
    assert totals["n_triples"] == sum(len(point_group(h).irreps) ** 3 for h in POINT_GROUPS)
    assert totals["n_mult2"] > 0 and totals["n_pair"] > 0  # the traps are exercised


@pytest.mark.parametrize("seed", [0])
def test_stress_random_orthogonal_conjugation(seed):
    for hm in POINT_GROUPS:
        r = validate_couplings(point_group(hm), conjugate_seed=seed)
        assert r["dimsum_fail"] == 0 and r["dim_fail"] == 0, hm
        for k in ("a", "b", "c", "d", "conj"):
            assert r[k] <= 1e-12, (hm, k, r[k])


def test_dirl_is_basis_covariant_for_multiplicity_one():
    """With Γ' = Oᵀ Γ O, the coefficients of a multiplicity-1, absolutely irreducible channel are
    the transformed ones up to a sign."""
    G = point_group("6/mmm")
    rng = np.random.default_rng(3)
    O = {lab: random_orthogonal(G.dim(lab), rng) for lab in ("E1u", "E2g")}
    Gp = {lab: np.einsum("ji,gjk,kl->gil", O[lab], G.matrices(lab), O[lab]) for lab in O}
    C = G.coupling("E1u", "E2g", "E1u")[0]
    Cp = dirl_coupling(Gp["E1u"], Gp["E2g"], Gp["E1u"], 1)[0]
    expected = np.einsum("ijn,ia,jb,nc->abc", C, O["E1u"], O["E2g"], O["E1u"])
    sign = np.sign(np.vdot(expected, Cp))
    np.testing.assert_allclose(Cp, sign * expected, atol=1e-14)


def test_coupling_is_cached_and_read_only():
    G = point_group("4/mmm")
    C = G.coupling("Eg", "Eu", "A1u")
    assert C is G.coupling("Eg", "Eu", "A1u")
    assert not C.flags.writeable
