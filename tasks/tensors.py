"""Tensor targets: index symmetry, Voigt notation and O(3) irreducible decomposition.

Every tensor target in crystal-zoo is stored as a full Cartesian array of shape ``(3,)*rank`` in the
frame of its structure (see ``tasks.spec.TargetSpec``). This module says what index symmetry each
target has (an e3nn ``CartesianTensor`` formula), converts to and from Voigt notation with the correct
factors, and splits a tensor into O(3) irreducible parts in one fixed basis that the torch and the jax
models share.

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

Voigt notation
--------------
Voigt order of a symmetric index pair is ``xx, yy, zz, yz, xz, xy`` (I = 1..6 <-> 0..5 here).
Stress-like quantities carry no factor; strain-like ones carry a factor 2 on their shear components
(engineering strain gamma_yz = 2 eps_yz), so that the work sigma_ij eps_ij = sigma_I eps_I:

=============  ==========================  ===================================================
kind           Cartesian -> Voigt          factors
=============  ==========================  ===================================================
"stress"       (...,3,3) -> (...,6)        none (also the dielectric tensor)
"strain"       (...,3,3) -> (...,6)        2 on I = 4,5,6
"stiffness"    (...,3,3,3,3) -> (...,6,6)  none: C_IJ = C_ijkl (stress = C strain)
"compliance"   (...,3,3,3,3) -> (...,6,6)  S_IJ = n_I n_J S_ijkl, n = 1 (normal), 2 (shear):
                                           1, 2 or 4 (strain = S stress)
"piezo_e"      (...,3,3,3) -> (...,3,6)    none: e_iJ = e_ijk (stress-like: D_i = e_ijk eps_jk,
                                           sigma = -e^T E)
"piezo_d"      (...,3,3,3) -> (...,3,6)    d_iJ = n_J d_ijk, 2 on shear J (strain-like:
                                           eps_jk = d_ijk E_i)
=============  ==========================  ===================================================

``to_voigt`` takes the index-symmetric part of its input (the mean of the symmetric partners), so a
slightly asymmetric tensor (numerical noise in DFT data) maps to its nearest symmetric tensor;
``from_voigt`` fills every symmetric partner. Both are exact inverses on symmetric tensors.

Irreducible decomposition
-------------------------
``to_irreps(T, formula)`` returns coefficients in the orthonormal basis of e3nn (torch)'s
``CartesianTensor(formula).reduced_tensor_products().change_of_basis`` (computed once per formula in
float64 and cached). The basis matrix is orthonormal (Q Q^T = I) and Q^T Q is the projector onto the
index-symmetric subspace, so ``from_irreps(to_irreps(T))`` returns the symmetric part of T. The
coefficients transform with e3nn's block-diagonal Wigner matrices ``Irreps(irreps(formula))
.D_from_matrix(R)`` for any rotation or improper rotation R, and so do e3nn-jax's (its D matrices
are the same in both libraries for l = 1..4). e3nn-jax's ``reduced_tensor_product_basis`` gives the
same irreps in the same order; inside a block of equal irreps it may choose a different orthonormal
combination (e3nn 0.6.0 vs e3nn-jax 0.21.0: identical for ``ij=ji`` and the elastic formula; for
``ijk=ikj`` the two 1o copies are rotated into each other and the 2o block has the opposite sign).
``e3nn_jax_alignment(formula)`` returns that orthogonal map; jax models that want the same basis as
the torch models use ``change_of_basis(formula)`` (a numpy constant) instead of e3nn-jax's.
(e3nn torch builds its Wigner constants in torch's default dtype: with the float32 default,
``D_from_matrix`` is only good to ~1e-6 even for float64 input.)
"""
from __future__ import annotations

import functools
import itertools
import sys
from typing import Any

import numpy as np

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

# Voigt order xx, yy, zz, yz, xz, xy.
VOIGT_PAIRS: tuple[tuple[int, int], ...] = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
VOIGT_KINDS = ("stress", "strain", "stiffness", "compliance", "piezo_e", "piezo_d")
_VOIGT_RANK = {"stress": 2, "strain": 2, "stiffness": 4, "compliance": 4, "piezo_e": 3, "piezo_d": 3}
# Factor on a Voigt index: 1 for normal components, 2 for shear ones (strain-like quantities only).
_STRAIN_WEIGHT = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
_ONES = np.ones(6)


def default_formula(rank: int) -> str:
    """The formula this repo uses for a tensor target of ``rank`` (2: dielectric, 3: piezo, 4: elastic)."""
    try:
        return _DEFAULT_BY_RANK[int(rank)]
    except KeyError:
        raise ValueError(f"no default index symmetry for rank {rank}; pass formula= explicitly "
                         f"(e3nn CartesianTensor syntax, e.g. 'ij=ji')") from None


# ----------------------------------------------------------------------------------------------
# Index symmetry from the formula (pure numpy, no e3nn needed)
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# Voigt notation
# ----------------------------------------------------------------------------------------------
def _as_float_array(T: Any, rank: int, name: str) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.ndim < rank or T.shape[T.ndim - rank:] != (3,) * rank:
        raise ValueError(f"{name} must end in {(3,) * rank} (full Cartesian tensor of rank {rank}), "
                         f"got shape {T.shape}")
    return T


def _check_kind(kind: str) -> int:
    if kind not in _VOIGT_RANK:
        raise ValueError(f"unknown Voigt kind {kind!r}; choose one of {VOIGT_KINDS} "
                         f"(dielectric tensors use 'stress': no factors)")
    return _VOIGT_RANK[kind]


def to_voigt(T: Any, kind: str) -> np.ndarray:
    """Full Cartesian tensor (..., 3,..,3) -> Voigt array; see the module docstring for ``kind``."""
    rank = _check_kind(kind)
    T = _as_float_array(T, rank, "T")
    a = np.array([p[0] for p in VOIGT_PAIRS])
    b = np.array([p[1] for p in VOIGT_PAIRS])
    if rank == 2:
        w = _STRAIN_WEIGHT if kind == "strain" else _ONES
        return 0.5 * (T[..., a, b] + T[..., b, a]) * w
    if rank == 3:
        w = _STRAIN_WEIGHT if kind == "piezo_d" else _ONES
        return 0.5 * (T[..., :, a, b] + T[..., :, b, a]) * w
    w = _STRAIN_WEIGHT if kind == "compliance" else _ONES
    A, B = a[:, None], b[:, None]
    C, D = a[None, :], b[None, :]
    V = 0.25 * (T[..., A, B, C, D] + T[..., B, A, C, D] + T[..., A, B, D, C] + T[..., B, A, D, C])
    return V * w[:, None] * w[None, :]


def from_voigt(V: Any, kind: str) -> np.ndarray:
    """Voigt array -> full Cartesian tensor (every symmetric partner filled); inverse of ``to_voigt``."""
    rank = _check_kind(kind)
    V = np.asarray(V, dtype=np.float64)
    want = {2: (6,), 3: (3, 6), 4: (6, 6)}[rank]
    if V.shape[V.ndim - len(want):] != want:
        raise ValueError(f"Voigt {kind} array must end in {want}, got shape {V.shape}")
    lead = V.shape[: V.ndim - len(want)]
    a = np.array([p[0] for p in VOIGT_PAIRS])
    b = np.array([p[1] for p in VOIGT_PAIRS])
    T = np.zeros(lead + (3,) * rank)
    if rank == 2:
        w = _STRAIN_WEIGHT if kind == "strain" else _ONES
        x = V / w
        T[..., a, b] = x
        T[..., b, a] = x
    elif rank == 3:
        w = _STRAIN_WEIGHT if kind == "piezo_d" else _ONES
        x = V / w
        T[..., :, a, b] = x
        T[..., :, b, a] = x
    else:
        w = _STRAIN_WEIGHT if kind == "compliance" else _ONES
        x = V / (w[:, None] * w[None, :])
        A, B = a[:, None], b[:, None]
        C, D = a[None, :], b[None, :]
        for p, q in ((A, B), (B, A)):
            for r, s in ((C, D), (D, C)):
                T[..., p, q, r, s] = x
    return T


# ----------------------------------------------------------------------------------------------
# Irreducible decomposition (e3nn basis)
# ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _e3nn_basis(formula: str) -> tuple[np.ndarray, str]:
    try:
        import torch
        from e3nn.io import CartesianTensor
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the irreducible basis comes from e3nn (torch); install it with "
                          "`pip install crystal-zoo[torch]`") from exc
    # ReducedTensorProducts builds its basis in torch's default dtype; float64 gives round trips at
    # 1e-15 instead of 1e-7. The default is process-global, so it is restored at once.
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ct = CartesianTensor(formula)
        Q = ct.reduced_tensor_products().change_of_basis.detach().cpu().numpy().astype(np.float64)
        irreps_str = str(ct)
    finally:
        torch.set_default_dtype(old)
    Q = np.ascontiguousarray(Q)
    Q.setflags(write=False)
    return Q, irreps_str


def change_of_basis(formula: str) -> np.ndarray:
    """(dim, 3,...,3) float64 orthonormal basis (read-only): x = Q·T, T = Q^T x (index-symmetric T)."""
    rank_of(formula)  # validates the formula with a clear message before e3nn sees it
    return _e3nn_basis(formula)[0]


def irreps(formula: str) -> str:
    """e3nn irreps string of ``formula``, e.g. ``"2x0e+2x2e+1x4e"`` for ``ijkl=jikl=klij``."""
    if formula in IRREPS:
        return IRREPS[formula]
    rank_of(formula)
    return _e3nn_basis(formula)[1]


def _flat_basis(formula: str) -> np.ndarray:
    Q = change_of_basis(formula)
    return Q.reshape(Q.shape[0], -1)


def _backend_matmul(x: Any, M: np.ndarray):
    """x @ M for numpy, torch or jax arrays, keeping x's backend, dtype and device."""
    mod = type(x).__module__
    if mod.startswith("torch"):
        import torch

        # The cached basis is read-only; torch wants writable memory, so it gets a copy.
        return x @ torch.tensor(M, dtype=x.dtype, device=x.device)
    if "jax" in sys.modules and mod.startswith(("jax", "jaxlib")):
        import jax.numpy as jnp

        return x @ jnp.asarray(M, dtype=x.dtype)
    return np.asarray(x, dtype=np.float64) @ M


def to_irreps(T: Any, formula: str):
    """(..., 3,...,3) Cartesian tensor -> (..., dim) irreps coefficients (numpy, torch or jax input).

    Only the index-symmetric part of T is kept (the projection is orthogonal).
    """
    n = rank_of(formula)
    if not hasattr(T, "shape"):
        T = np.asarray(T, dtype=np.float64)
    shape = tuple(T.shape)
    if len(shape) < n or shape[len(shape) - n:] != (3,) * n:
        raise ValueError(f"to_irreps({formula!r}) needs a tensor ending in {(3,) * n}, got shape {shape}")
    flat = T.reshape(*shape[: len(shape) - n], 3**n)
    return _backend_matmul(flat, _flat_basis(formula).T)


def from_irreps(x: Any, formula: str):
    """(..., dim) irreps coefficients -> (..., 3,...,3) index-symmetric Cartesian tensor."""
    n = rank_of(formula)
    Qf = _flat_basis(formula)
    if not hasattr(x, "shape"):
        x = np.asarray(x, dtype=np.float64)
    shape = tuple(x.shape)
    if not shape or shape[-1] != Qf.shape[0]:
        raise ValueError(f"from_irreps({formula!r}) needs a last axis of size {Qf.shape[0]} "
                         f"({irreps(formula)}), got shape {shape}")
    out = _backend_matmul(x, Qf)
    return out.reshape(*shape[:-1], *((3,) * n))


def irreps_slices(formula: str) -> list[tuple[str, slice]]:
    """[(irrep such as '0e', slice into the irreps axis), ...] in e3nn order, one entry per copy."""
    out = []
    start = 0
    for chunk in irreps(formula).split("+"):
        mul, ir = chunk.split("x")
        dim = 2 * int(ir[:-1]) + 1
        for _ in range(int(mul)):
            out.append((ir, slice(start, start + dim)))
            start += dim
    return out


def isotropic_part(T: Any, formula: str) -> np.ndarray:
    """Rotation-invariant part of T (keeps only its 0e irreps; zero for odd-rank tensors)."""
    x = np.asarray(to_irreps(np.asarray(T, dtype=np.float64), formula))
    keep = np.zeros(x.shape[-1], dtype=bool)
    for ir, sl in irreps_slices(formula):
        if ir == "0e":
            keep[sl] = True
    return from_irreps(np.where(keep, x, 0.0), formula)


def e3nn_jax_basis(formula: str) -> np.ndarray:
    """e3nn-jax's ``reduced_tensor_product_basis(formula, i='1o', ...)`` as (dim, 3,...,3) float64."""
    import jax

    import e3nn_jax

    base = parse_formula(formula)[0]
    # Built in float64 (a scoped switch, the process-wide jax setting is left as it was).
    with jax.enable_x64(True):
        B = e3nn_jax.reduced_tensor_product_basis(formula, **{c: "1o" for c in base})
        arr = np.asarray(B.array, dtype=np.float64)
    return np.moveaxis(arr, -1, 0)


def e3nn_jax_alignment(formula: str) -> np.ndarray:
    """Orthogonal (dim, dim) M with x_e3nn_torch = M @ x_e3nn_jax for the same index-symmetric tensor.

    Block diagonal over equal irreps (Schur's lemma): M = W ⊗ I_(2l+1) inside a ``mul x l`` block.
    """
    Q = _flat_basis(formula)
    B = e3nn_jax_basis(formula).reshape(Q.shape[0], -1)
    return Q @ B.T
