"""Product decomposition and coupling coefficients (Dirl's formula), on plain arrays.

Everything here takes representation matrices (|G|, d, d) rather than labels, so that the same
code runs on the catalogue's irreps and on irreps conjugated by random orthogonal matrices (the
stress test).

Dirl's formula
--------------
For real orthogonal irreps Γα, Γβ, Γγ, the operator P = (1/|G|) Σ_g Γα(g) ⊗ Γβ(g) ⊗ Γγ(g) is the
orthogonal projector onto the invariants of α ⊗ β ⊗ γ, i.e. (γ being real, γ ≅ γ*) onto the
intertwiners from γ into α ⊗ β. Its column (q, s, a), read as a (dα dβ) × dγ matrix,

    M_{(i j), n} = (1/|G|) Σ_g Γα(g)_{iq} Γβ(g)_{js} Γγ(g)_{na}

is an intertwiner: (Γα ⊗ Γβ)(h) M = M Γγ(h). Since MᵀM commutes with Γγ and is symmetric, it is a
multiple of the identity — also for a merged complex pair, whose commutant a·I + b·J has J
antisymmetric — and the multiple is ||M||² / dγ = P_{qsa,qsa} / dγ, because ||P e||² = eᵀ P e for
a projector. Hence Dirl's normalisation

    U = sqrt(dγ / B_{qsa}) M,   B_{qsa} = (1/|G|) Σ_g Γα(g)_{qq} Γβ(g)_{ss} Γγ(g)_{aa}  (the bracket).

Rule for the triple (documented, tested): the (q, s, a) with the largest bracket, the first in
lexicographic order among those within a relative 1e-9 of the maximum (deterministic ties). The
bracket is then >= (number of invariants) / (dα dβ dγ) > 0, never a vanishing one.

Further copies (multiplicity m > 1, where one Dirl column only gives one copy): the earlier copies
are removed from the projector as a whole block, P' = ((1 - Π) ⊗ 1) P with Π = Σ_k U_k U_kᵀ the
projector onto the span of the earlier copies in α ⊗ β. Π commutes with Γα ⊗ Γβ (that span is
invariant), so P' is again an orthogonal projector onto intertwiners, its columns intertwine, and
Dirl's rule applied to P' gives the next copy, orthogonal to the previous ones as a block. Removing
the overlap column by column (Gram-Schmidt on individual columns) would destroy the intertwining.
The sign convention that falls out: U[(q, s), a] > 0 at the chosen triple.
"""
from __future__ import annotations

import numpy as np

#: relative tolerance for ties between brackets (deterministic choice of the triple)
TIE_RTOL = 1e-9


def inner(chi_a: np.ndarray, chi_b: np.ndarray) -> float:
    """(1/|G|) Σ_g χa(g) χb(g) for real characters."""
    return float(np.dot(chi_a, chi_b)) / len(chi_a)


def multiplicity(chi_rep: np.ndarray, chi_irrep: np.ndarray) -> int:
    """Number of copies of a real irrep in a real representation.

    For a real irrep that is a merged complex-conjugate pair (Frobenius-Schur indicator 0),
    <χ, χ> = 2 and <χ_rep, χ> counts each copy twice (once per complex constituent): divide by
    <χ, χ>. For an absolutely irreducible one <χ, χ> = 1 and this is the usual formula.
    """
    num = inner(chi_rep, chi_irrep)
    norm = inner(chi_irrep, chi_irrep)
    m = num / norm
    r = round(m)
    if abs(m - r) > 1e-8:
        raise ValueError(f"non-integral multiplicity {m}")
    return int(r)


def kron_rep(Ga: np.ndarray, Gb: np.ndarray) -> np.ndarray:
    """(Γα ⊗ Γβ)(g) as (|G|, dα dβ, dα dβ), row index i*dβ + j."""
    n, da, _ = Ga.shape
    db = Gb.shape[1]
    return np.einsum("gik,gjl->gijkl", Ga, Gb).reshape(n, da * db, da * db)


def invariant_projector(rho: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """P = (1/|G|) Σ_g ρ(g) ⊗ Γ(g), shape (n d, n d), index (i, k) -> i*d + k."""
    g, n, _ = rho.shape
    d = gamma.shape[1]
    return np.einsum("gij,gkl->ikjl", rho, gamma).reshape(n * d, n * d) / g


def _pick(diag: np.ndarray) -> int:
    top = diag.max()
    return int(np.flatnonzero(diag >= top * (1 - TIE_RTOL))[0])


def intertwiners(rho: np.ndarray, gamma: np.ndarray, m: int, tol: float = 1e-8) -> np.ndarray:
    """m orthonormal copies of the irrep Γ inside the representation ρ, by Dirl's rule.

    Returns (m, n, d) with U_kᵀ U_l = δ_kl I_d and ρ(g) U_k = U_k Γ(g). Raises if ρ does not
    contain m copies (the deflated projector vanishes before the m-th).
    """
    rho = np.asarray(rho, dtype=np.float64)
    gamma = np.asarray(gamma, dtype=np.float64)
    n = rho.shape[1]
    d = gamma.shape[1]
    if m == 0:
        return np.zeros((0, n, d))
    P = invariant_projector(rho, gamma)
    copies: list[np.ndarray] = []
    R = P
    for _ in range(m):
        # brackets of the (deflated) projector: ||R e_c||² = R_cc (R is an orthogonal projector)
        diag = np.einsum("ij,ij->j", R, R)
        c = _pick(diag)
        if diag[c] < tol:
            raise ValueError("representation contains fewer copies of the irrep than requested")
        M = R[:, c].reshape(n, d)
        U = M * np.sqrt(d / diag[c])
        copies.append(U)
        Pi = sum(Uk @ Uk.T for Uk in copies)
        # block deflation: remove the span of all copies so far from the left (α⊗β) factor
        R = np.kron(np.eye(n) - Pi, np.eye(d)) @ P
    return np.stack(copies)


def dirl_coupling(Ga: np.ndarray, Gb: np.ndarray, Gc: np.ndarray, m: int) -> np.ndarray:
    """Coupling coefficients C[k, i, j, n] (m, dα, dβ, dγ) of γ in α ⊗ β (Dirl's formula).

    Stacking the copies as columns, U = C.reshape(m, dα dβ, dγ) -> (dα dβ, m dγ) is an isometry
    with Uᵀ (Γα(g) ⊗ Γβ(g)) U = ⊕_k Γγ(g).
    """
    U = intertwiners(kron_rep(Ga, Gb), Gc, m)
    return U.reshape(m, Ga.shape[1], Gb.shape[1], Gc.shape[1])


def product_decomposition(chars: np.ndarray, labels, a: int, b: int) -> dict[str, int]:
    """{label: multiplicity} of irrep a ⊗ irrep b (non-zero entries, in the group's label order)."""
    chi = chars[a] * chars[b]
    out = {}
    for k, lab in enumerate(labels):
        m = multiplicity(chi, chars[k])
        if m:
            out[lab] = m
    return out
