"""Independent checks of the coupling coefficients and subduction matrices (used by tests and report).

For every ordered triple (α, β, γ) of a group, float64:
  (a) the character multiplicity <χαχβ, χγ>/<χγ, χγ> is an integer, and Σ_γ m_γ dγ = dα dβ;
  (b) intertwining: Uᵀ (Γα(g) ⊗ Γβ(g)) U = ⊕_m Γγ(g) for every g (U: copies as column blocks);
  (c) UᵀU = I;
  (d) same span as an independent computation: the null space of P3 - I, P3 the projector
      (1/|G|) Σ_g Γα⊗Γβ⊗Γγ(g) (SVD; its dimension must be m·<χγ, χγ>, the extra factor being
      the commutant of a merged pair) spans, once its vectors are read as (dα dβ) × dγ matrices, the same subspace of α ⊗ β
      as the columns of U; and U Uᵀ equals the character projector
      (dγ / (<χγ,χγ>|G|)) Σ_g χγ(g) Γα(g)⊗Γβ(g). Both are invariant under the rotation allowed
      within a repeated irrep, so they test the span and nothing else.
The stress test repeats everything with every irrep conjugated by a random orthogonal matrix and
checks that the isotypic projectors transform accordingly.
"""
from __future__ import annotations

import numpy as np

from .coupling import dirl_coupling, inner, kron_rep
from .subduction import group_wigner

SVD_TOL = 1e-8


def _null_space(A: np.ndarray) -> np.ndarray:
    """Orthonormal basis (columns) of the null space of A by SVD."""
    _, s, vt = np.linalg.svd(A)
    rank = int((s > SVD_TOL).sum())
    return vt[rank:].T


def _col_projector(M: np.ndarray) -> tuple[np.ndarray, int]:
    if M.size == 0:
        return np.zeros((M.shape[0], M.shape[0])), 0
    u, s, _ = np.linalg.svd(M, full_matrices=False)
    r = int((s > SVD_TOL * max(1.0, s[0] if len(s) else 1.0)).sum())
    Q = u[:, :r]
    return Q @ Q.T, r


def random_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def triple_errors(Ga, Gb, Gc, chi_a, chi_b, chi_c, C) -> dict:
    """Errors of checks (b), (c), (d) for one triple with coefficients C (m, da, db, dc)."""
    m, da, db, dc = C.shape
    n = len(Ga)
    rho = kron_rep(Ga, Gb)
    U = np.concatenate(list(C.reshape(m, da * db, dc)), axis=1) if m else np.zeros((da * db, 0))
    out = {"b": 0.0, "c": 0.0, "d": 0.0, "dim_fail": 0}
    if m:
        lhs = np.einsum("ki,gkl,lj->gij", U, rho, U)
        rhs = np.zeros_like(lhs)
        for k in range(m):
            rhs[:, k * dc:(k + 1) * dc, k * dc:(k + 1) * dc] = Gc
        out["b"] = float(np.abs(lhs - rhs).max())
        # and directly, copy by copy: ρ(g) U_k = U_k Γγ(g)
        Uk = C.reshape(m, da * db, dc)
        out["b"] = max(out["b"], float(np.abs(np.einsum("gij,kjn->gkin", rho, Uk)
                                               - np.einsum("kin,gnp->gkip", Uk, Gc)).max()))
        out["c"] = float(np.abs(U.T @ U - np.eye(m * dc)).max())
    # (d) independent null space: the invariants of α⊗β⊗γ are the null space of P3 - I with
    # P3 = (1/|G|) Σ_g Γα⊗Γβ⊗Γγ (g), computed here by SVD without any of Dirl's machinery
    rho3 = np.einsum("gij,gkl->gikjl", rho, Gc).reshape(n, da * db * dc, da * db * dc)
    N = _null_space(rho3.mean(axis=0) - np.eye(da * db * dc))
    e = int(round(inner(chi_c, chi_c)))
    if N.shape[1] != m * e:
        out["dim_fail"] = 1
    cols = np.concatenate([N[:, j].reshape(da * db, dc) for j in range(N.shape[1])], axis=1) \
        if N.shape[1] else np.zeros((da * db, 0))
    Pnull, r = _col_projector(cols)
    if r != m * dc:
        out["dim_fail"] = 1
    UUt = U @ U.T
    Pchar = (dc / (e * n)) * np.einsum("g,gij->ij", chi_c, rho)
    out["d"] = float(max(np.abs(Pnull - UUt).max(), np.abs(Pchar - UUt).max()))
    return out


def validate_couplings(G, conjugate_seed: int | None = None) -> dict:
    """Run (a)-(d) on every ordered triple of G; with ``conjugate_seed`` on randomly conjugated irreps.

    Returns worst errors and counts: n_triples, n_nonzero (m >= 1), n_mult2 (m >= 2), n_pair
    (γ a merged complex pair with m >= 1), dim_fail (dimension mismatches; must be 0).
    """
    labels = G.irreps
    chars = G.characters
    mats = {lab: np.asarray(G.matrices(lab)) for lab in labels}
    O = {}
    if conjugate_seed is not None:
        rng = np.random.default_rng(conjugate_seed)
        for lab in labels:
            O[lab] = random_orthogonal(mats[lab].shape[1], rng)
            mats[lab] = np.einsum("ji,gjk,kl->gil", O[lab], mats[lab], O[lab])
    res = {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0, "dimsum_fail": 0, "dim_fail": 0, "n_triples": 0,
           "n_nonzero": 0, "n_mult2": 0, "n_pair": 0, "max_mult": 0}
    if conjugate_seed is not None:
        res["conj"] = 0.0
    for ia, a in enumerate(labels):
        for ib, b in enumerate(labels):
            dimsum = 0
            for ic, c in enumerate(labels):
                raw = inner(chars[ia] * chars[ib], chars[ic]) / inner(chars[ic], chars[ic])
                m = int(round(raw))
                res["a"] = max(res["a"], abs(raw - m))
                dimsum += m * mats[c].shape[1]
                if conjugate_seed is None:
                    C = np.asarray(G.coupling(a, b, c))
                else:
                    C = dirl_coupling(mats[a], mats[b], mats[c], m)
                if C.shape[0] != m:
                    res["dim_fail"] += 1
                err = triple_errors(mats[a], mats[b], mats[c], chars[ia], chars[ib], chars[ic], C)
                for k in "bcd":
                    res[k] = max(res[k], err[k])
                res["dim_fail"] += err["dim_fail"]
                res["n_triples"] += 1
                res["n_nonzero"] += m > 0
                res["n_mult2"] += m >= 2
                res["n_pair"] += (m > 0 and G.indicator(c) == 0)
                res["max_mult"] = max(res["max_mult"], m)
                if conjugate_seed is not None and m:
                    # the isotypic projector must transform with the basis change
                    C0 = np.asarray(G.coupling(a, b, c))
                    U0 = np.concatenate(list(C0.reshape(m, -1, C0.shape[-1])), axis=1)
                    U1 = np.concatenate(list(C.reshape(m, -1, C.shape[-1])), axis=1)
                    K = np.kron(O[a], O[b])
                    res["conj"] = max(res["conj"], float(np.abs(K.T @ U0 @ U0.T @ K - U1 @ U1.T).max()))
            if dimsum != mats[a].shape[1] * mats[b].shape[1]:
                res["dimsum_fail"] += 1
    return res


def validate_subduction(G, lmax: int = 6) -> dict:
    """Checks (a)-(d) for the subduction of (l, ±) into G, l <= lmax, plus e3nn trace vs formula."""
    res = {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0, "chi": 0.0, "dimsum_fail": 0, "n_mult2": 0}
    n = G.order
    for l in range(lmax + 1):
        for p in (1, -1):
            chi = G.o3_characters(l, p)
            sub = G.subduction(l, p)
            D = group_wigner(l, p, G.operations, G.frame, G.embedding())
            res["chi"] = max(res["chi"], float(np.abs(np.trace(D, axis1=1, axis2=2) - chi).max()))
            dimsum = 0
            for ic, c in enumerate(G.irreps):
                e = inner(G.characters[ic], G.characters[ic])
                raw = inner(chi, G.characters[ic]) / e
                m = int(round(raw))
                res["a"] = max(res["a"], abs(raw - m))
                got = sub.get(c, (0, None))[0]
                if got != m:
                    res["dimsum_fail"] += 1
                dc = G.dim(c)
                dimsum += m * dc
                if not m:
                    continue
                res["n_mult2"] += m >= 2
                B = np.asarray(sub[c][1])
                Gc = np.asarray(G.matrices(c))
                for k in range(m):
                    Bk = B[:, k * dc:(k + 1) * dc]
                    res["b"] = max(res["b"], float(np.abs(D @ Bk - Bk @ Gc).max()))
                res["c"] = max(res["c"], float(np.abs(B.T @ B - np.eye(m * dc)).max()))
                Pchar = (dc / (round(e) * n)) * np.einsum("g,gij->ij", G.characters[ic], D)
                res["d"] = max(res["d"], float(np.abs(Pchar - B @ B.T).max()))
            if dimsum != 2 * l + 1:
                res["dimsum_fail"] += 1
            S = G.subduction_matrix(l, p)
            res["c"] = max(res["c"], float(np.abs(S.T @ S - np.eye(2 * l + 1)).max()),
                           float(np.abs(S @ S.T - np.eye(2 * l + 1)).max()))
    return res
