"""O(3)-irreducible bases of index-symmetric Cartesian tensors: e3nn's, e3nn-jax's and a canonical one.

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

``cartesian_basis(formula)`` is the basis the models use for their read-out: e3nn's (or, without
torch, e3nn-jax's) basis rewritten by ``canonical_change_of_basis`` into a form that does not depend
on the library, so a torch model and a JAX model predict the same tensor from the same weights.
"""
from __future__ import annotations

import functools
import sys
from typing import Any

import numpy as np

from .formula import MulIr, cartesian_irreps, irreps, irreps_string, parse_formula, rank_of

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


def canonical_change_of_basis(Q: np.ndarray, irreps_q: tuple[MulIr, ...], irreps_target: tuple[MulIr, ...], tol: float = 1e-6) -> np.ndarray:
    """Rewrite an irreps → Cartesian basis ``Q`` (D, 3, ..., 3) in a canonical, library-independent form.

    e3nn and e3nn-jax return orthonormal equivariant bases that agree up to an orthogonal mixing inside
    each multiplicity space (e.g. the two 1o of a piezoelectric tensor, or a sign of the 2o). By Schur's
    lemma any two such bases differ by M ⊗ 1_{2l+1} per irrep type; we fix M by requiring the block,
    restricted to its first linearly independent columns (a basis-independent choice), to be upper
    triangular with a positive diagonal (a QR decomposition). The rows come out grouped as ``irreps_target``.
    """
    Q = np.asarray(Q, dtype=np.float64)
    shape = Q.shape[1:]
    A = Q.reshape(Q.shape[0], -1)
    groups: dict[tuple[int, int], list[np.ndarray]] = {}
    start = 0
    for mul, l, p in irreps_q:
        groups.setdefault((l, p), []).append(A[start : start + mul * (2 * l + 1)].reshape(mul, 2 * l + 1, -1))
        start += mul * (2 * l + 1)
    blocks = []
    for mul, l, p in irreps_target:
        name = irreps_string(((1, l, p),))[2:]
        if (l, p) not in groups:
            raise ValueError(f"basis lacks irrep {name}")
        B = np.concatenate(groups.pop((l, p)), axis=0)  # (mul, 2l+1, K)
        if B.shape[0] != mul:
            raise ValueError(f"basis has {B.shape[0]} copies of {name}, expected {mul}")
        flat = B.reshape(mul, -1)
        cols: list[int] = []
        for col in range(flat.shape[1]):
            if np.linalg.matrix_rank(flat[:, cols + [col]], tol=tol) > len(cols):
                cols.append(col)
                if len(cols) == mul:
                    break
        q, rr = np.linalg.qr(flat[:, cols])
        M = np.sign(np.diag(rr))[:, None] * q.T
        blocks.append((M @ flat).reshape(mul * (2 * l + 1), -1))
    if groups:
        raise ValueError(f"basis has irreps {list(groups)} not in {irreps_string(tuple(irreps_target))}")
    return np.concatenate(blocks, axis=0).reshape((-1,) + shape)


def _parse_irreps_string(text: str) -> tuple[MulIr, ...]:
    out = []
    for part in text.split("+"):
        mul, ir = part.strip().split("x")
        out.append((int(mul), int(ir[:-1]), 1 if ir[-1] == "e" else -1))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def cartesian_basis(formula: str, library: str | None = None) -> np.ndarray:
    """(D, 3, ..., 3) float64 map from irreps coefficients (``cartesian_irreps(formula)`` order) to the
    Cartesian tensor, in the canonical form of ``canonical_change_of_basis`` (read-only).

    Made from ``library``'s basis ("e3nn" or "e3nn_jax"; default: e3nn when torch is installed, else
    e3nn-jax); both canonicalise to the same array (tested), which is what lets a torch model and a
    JAX model share weights.
    """
    rank_of(formula)
    if library is None:
        import importlib.util

        library = "e3nn" if importlib.util.find_spec("e3nn") is not None else "e3nn_jax"
    if library == "e3nn":
        Q, found = change_of_basis(formula), _parse_irreps_string(_e3nn_basis(formula)[1])
    elif library == "e3nn_jax":
        Q, found = e3nn_jax_basis(formula), _parse_irreps_string(irreps(formula))
    else:
        raise ValueError(f"library must be 'e3nn' or 'e3nn_jax', got {library!r}")
    out = canonical_change_of_basis(Q, found, cartesian_irreps(formula))
    out.setflags(write=False)
    return out
