"""Index symmetry of Cartesian tensors, written as e3nn ``CartesianTensor`` formulas (pure numpy).

Every tensor target in crystal-zoo is a full Cartesian array of shape ``(3,)*rank`` in the frame of
its structure. This module says which index symmetry each target has, projects onto it, lists the
independent components and counts the O(3) irreps of the symmetric subspace (from characters, so
no e3nn is needed).

Index symmetry (e3nn formula syntax, ``-`` marks antisymmetry)
-----------------------------------------------------------------
=================  =================  =====================  ===========================
target             formula            irreps (e3nn order)    independent components
=================  =================  =====================  ===========================
dielectric eps_ij  ``ij=ji``          ``1x0e+1x2e``          6
piezoelectric      ``ijk=ikj``        ``2x1o+1x2o+1x3o``     18  (e_ijk: i = field
e_ijk                                                            direction, jk = strain pair)
elastic C_ijkl     ``ijkl=jikl=klij`` ``2x0e+2x2e+1x4e``     21
=================  =================  =====================  ===========================
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np

MulIr = tuple[int, int, int]  # (multiplicity, l, parity ±1), as e3nn's Irreps entries

# Default index symmetry per target name and per rank (what the tasks in this repo use).
FORMULAS: dict[str, str] = {
    "dielectric": "ij=ji",
    "piezoelectric": "ijk=ikj",
    "elastic": "ijkl=jikl=klij",
}
_DEFAULT_BY_RANK = {2: "ij=ji", 3: "ijk=ikj", 4: "ijkl=jikl=klij"}

# Irreps of the formulas above, e3nn's order (checked against e3nn at run time in the tests).
IRREPS: dict[str, str] = {
    "ij=ji": "1x0e+1x2e",
    "ijk=ikj": "2x1o+1x2o+1x3o",
    "ijkl=jikl=klij": "2x0e+2x2e+1x4e",
}

def default_formula(rank: int) -> str:
    """The formula this repo uses for a tensor target of ``rank`` (2: dielectric, 3: piezo, 4: elastic)."""
    try:
        return _DEFAULT_BY_RANK[int(rank)]
    except KeyError:
        raise ValueError(f"no default index symmetry for rank {rank}; pass formula= explicitly "
                         f"(e3nn CartesianTensor syntax, e.g. 'ij=ji')") from None



def parse_formula(formula: str) -> tuple[str, list[tuple[tuple[int, ...], int]]]:
    """Base index string and the signed position permutations the formula declares.

    A term ``s*term`` means T[m] = s T[m o pi] with pi[q] = base.index(term[q]) for every multi-index m.
    """
    if not isinstance(formula, str) or not formula.strip():
        raise ValueError(f"formula must be a non-empty e3nn CartesianTensor string like 'ij=ji', got {formula!r}")
    terms = [t.strip() for t in formula.split("=")]
    base = terms[0]
    if base.startswith("-") or len(set(base)) != len(base) or not base.isalpha():
        raise ValueError(f"formula {formula!r}: the first term must be distinct index letters, e.g. 'ijk=ikj'")
    gens = []
    for t in terms[1:]:
        sign = -1 if t.startswith("-") else 1
        t = t.lstrip("-")
        if sorted(t) != sorted(base):
            raise ValueError(f"formula {formula!r}: term {t!r} is not a permutation of {base!r}")
        gens.append((tuple(base.index(c) for c in t), sign))
    return base, gens


@functools.lru_cache(maxsize=None)
def _signed_group(formula: str) -> tuple[tuple[tuple[int, ...], int], ...]:
    """Closure of the formula's signed permutations (always contains the identity with sign +1)."""
    base, gens = parse_formula(formula)
    n = len(base)
    ident = (tuple(range(n)), 1)
    group = {ident}
    frontier = [ident]
    while frontier:
        new = []
        for p1, s1 in frontier:
            for p2, s2 in gens:
                comp = (tuple(p1[p2[q]] for q in range(n)), s1 * s2)
                if comp not in group:
                    group.add(comp)
                    new.append(comp)
        frontier = new
    perms = {}
    for p, s in group:
        if perms.setdefault(p, s) != s:
            raise ValueError(f"formula {formula!r} forces every component to zero (a permutation with both signs)")
    return tuple(sorted(group))


def rank_of(formula: str) -> int:
    return len(parse_formula(formula)[0])


@functools.lru_cache(maxsize=None)
def _index_projector(formula: str) -> np.ndarray:
    n = rank_of(formula)
    d = 3**n
    group = _signed_group(formula)
    P = np.zeros((d, d))
    rows = np.arange(d)
    for perm, sign in group:
        # (Perm T)[m] = T[m o perm]: the source of entry m is idx transposed by the permutation.
        src = _permuted_index(n, perm)
        P[rows, src] += sign
    P /= len(group)
    P.setflags(write=False)
    return P


def _permuted_index(n: int, perm: tuple[int, ...]) -> np.ndarray:
    """Flat index of T[m o perm] for every multi-index m of a rank-n tensor (C order)."""
    grids = np.indices((3,) * n).reshape(n, -1)  # grids[q] = m[q]
    src = grids[list(perm)]  # (m o perm)[q] = m[perm[q]]
    return np.ravel_multi_index(tuple(src), (3,) * n)


def index_projector(formula: str) -> np.ndarray:
    """(3^n, 3^n) orthogonal projector onto tensors obeying ``formula`` (acts on C-order flattened T)."""
    return _index_projector(formula)


def symmetrize_indices(T: Any, formula: str) -> np.ndarray:
    """Index-symmetric part of ``T`` (..., 3,...,3): the average over the formula's signed permutations."""
    n = rank_of(formula)
    T = _as_float_array(T, n, "T")
    flat = T.reshape(*T.shape[: T.ndim - n], 3**n)
    return (flat @ _index_projector(formula).T).reshape(T.shape)


@functools.lru_cache(maxsize=None)
def _components(formula: str) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...]]:
    n = rank_of(formula)
    group = _signed_group(formula)
    reps: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    for m in itertools.product(range(3), repeat=n):
        if m in seen:
            continue
        orbit = {}
        for perm, sign in group:
            orbit.setdefault(tuple(m[perm[q]] for q in range(n)), set()).add(sign)
        seen.update(orbit)
        # Sign clash on the orbit (e.g. the diagonal of an antisymmetric tensor): forced zero.
        if any(len(s) > 1 or (k == m and -1 in s) for k, s in orbit.items()):
            continue
        reps.append(min(orbit))
    reps.sort()
    flat = tuple(int(np.ravel_multi_index(r, (3,) * n)) for r in reps)
    return tuple(reps), flat


def independent_components(formula: str) -> list[tuple[int, ...]]:
    """One representative multi-index (the lexicographically smallest) per independent component.

    ``ij=ji`` gives (0,0),(0,1),(0,2),(1,1),(1,2),(2,2); ``ijkl=jikl=klij`` gives 21 of them.
    """
    return list(_components(formula)[0])


def independent_flat_indices(formula: str) -> tuple[int, ...]:
    """C-order flat indices of ``independent_components(formula)``, in the same order."""
    return _components(formula)[1]


def _as_float_array(T: Any, rank: int, name: str) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.ndim < rank or T.shape[T.ndim - rank:] != (3,) * rank:
        raise ValueError(f"{name} must end in {(3,) * rank} (full Cartesian tensor of rank {rank}), "
                         f"got shape {T.shape}")
    return T


def _rot_z(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@functools.lru_cache(maxsize=None)
def cartesian_irreps(formula: str) -> tuple[MulIr, ...]:
    """Irreps of the Cartesian tensors obeying ``formula`` (all indices polar vectors, parity (-1)^rank).

    From characters: χ(θ) = tr(P · R_z(θ)^{⊗r}) = Σ_l m_l χ_l(θ) with χ_l = 1 + 2 Σ_{m=1..l} cos(mθ), so
    the cosine coefficients c_m of χ give m_l = (c_l - c_{l+1}) / 2 (l ≥ 1) and m_0 = c_0 - c_1 / 2.
    "ij=ji" → 0e+2e, "ijk=ikj" → 2x1o+2o+3o, "ijkl=jikl=klij" → 2x0e+2x2e+4e (e3nn's CartesianTensor).
    """
    r = rank_of(formula)
    P = index_projector(formula)
    n = 4 * r + 4
    thetas = 2 * np.pi * np.arange(n) / n
    chi = []
    for t in thetas:
        R = _rot_z(t)
        Rr = np.ones((1, 1))
        for _ in range(r):
            Rr = np.kron(Rr, R)
        chi.append(np.trace(P @ Rr))
    chi = np.array(chi)
    c = [chi.mean()] + [2 * np.mean(chi * np.cos(m * thetas)) for m in range(1, r + 2)]
    mults = [c[0] - c[1] / 2] + [(c[l] - c[l + 1]) / 2 for l in range(1, r + 1)]
    out = []
    for l, m in enumerate(mults):
        if abs(m - round(m)) > 1e-8 or round(m) < 0:
            raise RuntimeError(f"non-integer multiplicity {m} for l={l} in {formula!r}")
        if round(m) > 0:
            out.append((int(round(m)), l, (-1) ** r))
    if sum(m * (2 * l + 1) for m, l, _ in out) != round(np.trace(P)):
        raise RuntimeError(f"irreps of {formula!r} do not add up to the symmetric subspace")
    return tuple(out)


def irreps_string(irreps: tuple[MulIr, ...]) -> str:
    """((2, 1, -1), (1, 2, -1)) -> "2x1o+1x2o": the string e3nn and e3nn-jax both parse to that list."""
    return "+".join(f"{mul}x{l}{'e' if p == 1 else 'o'}" for mul, l, p in irreps)


def irreps(formula: str) -> str:
    """e3nn irreps string of ``formula`` in e3nn's order, e.g. ``"2x0e+2x2e+1x4e"`` for ``ijkl=jikl=klij``."""
    return irreps_string(cartesian_irreps(formula))


def obeys_formula(T: np.ndarray, formula: str, atol: float) -> bool:
    """True when the Cartesian array(s) ``T`` (..., 3, ..., 3) obey every relation of ``formula``."""
    _, rels = parse_formula(formula)
    r = rank_of(formula)
    lead = T.ndim - r
    for perm, sign in rels:
        axes = tuple(range(lead)) + tuple(lead + k for k in perm)
        if not np.allclose(T, sign * np.transpose(T, axes), atol=atol, rtol=0):
            return False
    return True
