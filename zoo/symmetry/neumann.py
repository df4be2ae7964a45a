"""Neumann's principle on Cartesian tensors: rotate, average over a point group, measure the violation.

A property tensor of a crystal must be invariant under the crystal's point group G (Neumann):
T = Sym_G T with Sym_G T = (1/|G|) Σ_g g·T and (g·T)_{i1..in} = R_{i1 j1} ... R_{in jn} T_{j1..jn}.
Operations are (n_ops, 3, 3) orthogonal Cartesian matrices (``zoo.symmetry.crystal``); tensors are
full Cartesian arrays (3,)*rank in the same frame (polar tensors: no det R factor).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

_CACHE_LIMIT = 4096


def rotate_tensor(T: np.ndarray, R: np.ndarray) -> np.ndarray:
    """T'_{i1..in} = R_{i1 j1} ... R_{in jn} T_{j1..jn} (Cartesian, any rank; batched over leading R dims)."""
    T = np.asarray(T)
    out = T
    for axis in range(T.ndim):
        out = np.moveaxis(np.tensordot(R, out, axes=([1], [axis])), 0, axis)
    return out


def symmetrize_tensor(T: np.ndarray, ops: np.ndarray) -> np.ndarray:
    """Neumann average (1/|G|) Σ_g g·T over Cartesian point-group operations ``ops``."""
    return np.mean([rotate_tensor(T, R) for R in ops], axis=0)


def ops_key(ops: np.ndarray) -> bytes:
    """A hashable key of a set of operations (equal sets in the same order give equal keys)."""
    # +0.0 turns -0.0 into 0.0 so equal operation sets hash equally.
    return (np.round(np.asarray(ops, dtype=np.float64), 8) + 0.0).tobytes()


def kron_power(R: np.ndarray, n: int) -> np.ndarray:
    """R ⊗ ... ⊗ R (n times) for a stack of R: acts on C-order flattened rank-n tensors."""
    out = R
    for _ in range(n - 1):
        out = np.einsum("gab,gij->gaibj", out, R).reshape(R.shape[0], out.shape[1] * 3, out.shape[2] * 3)
    return out


_SYM_CACHE: dict[tuple[bytes, int], np.ndarray] = {}


def neumann_operator(ops: np.ndarray, rank: int) -> np.ndarray:
    """(3^rank, 3^rank) matrix of Sym_G: T -> (1/|G|) Σ_g g·T on C-order flattened tensors (cached per
    distinct set of operations, so crystals that share a setting share the work)."""
    ops = np.asarray(ops, dtype=np.float64)
    if ops.ndim != 3 or ops.shape[1:] != (3, 3):
        raise ValueError(f"ops must be (n_ops, 3, 3) Cartesian matrices, got shape {ops.shape}")
    key = (ops_key(ops), int(rank))
    M = _SYM_CACHE.get(key)
    if M is None:
        M = kron_power(ops, rank).mean(axis=0) if rank > 0 else np.ones((1, 1))
        M.setflags(write=False)
        if len(_SYM_CACHE) > _CACHE_LIMIT:
            _SYM_CACHE.clear()
        _SYM_CACHE[key] = M
    return M


def symmetry_violation(T: Any, ops: np.ndarray) -> float:
    """||T - Sym_G T||_F / ||T||_F for one tensor (0 for the zero tensor, which every group keeps)."""
    T = np.asarray(T, dtype=np.float64)
    flat = T.reshape(-1)
    norm = np.linalg.norm(flat)
    if norm == 0.0:
        return 0.0
    return float(np.linalg.norm(flat - neumann_operator(ops, T.ndim) @ flat) / norm)


def group_by_ops(ops_list: Sequence[np.ndarray]) -> dict[bytes, tuple[np.ndarray, list[int]]]:
    """{key: (ops, indices of the crystals that have exactly these operations)}."""
    groups: dict[bytes, tuple[np.ndarray, list[int]]] = {}
    for i, ops in enumerate(ops_list):
        k = ops_key(ops)
        if k not in groups:
            groups[k] = (np.asarray(ops, dtype=np.float64), [])
        groups[k][1].append(i)
    return groups


def symmetrize_batch(T: np.ndarray, ops_list: Sequence[np.ndarray]) -> np.ndarray:
    """Sym_G of each tensor with its own crystal's operations (vectorised over crystals that share ops)."""
    T = np.asarray(T, dtype=np.float64)
    if len(ops_list) != len(T):
        raise ValueError(f"got {len(T)} tensors but {len(ops_list)} sets of point-group operations")
    rank = T.ndim - 1
    flat = T.reshape(len(T), -1)
    out = np.empty_like(flat)
    for ops, idx in group_by_ops(ops_list).values():
        out[idx] = flat[idx] @ neumann_operator(ops, rank).T
    return out.reshape(T.shape)
