"""Logarithmic compression of a tensor's magnitude, keeping its direction: a target transform for tensors
of any rank (and signed scalars) that have no matrix logarithm, e.g. piezoelectric tensors (C/m²).

    f(T) = T · s ln(1 + |T|/s) / |T|,        f⁻¹(U) = U · s (exp(|U|/s) - 1) / |U|,

with |T| the Frobenius norm over all Cartesian components and ``s > 0`` a scale in the target's units
(fitted as the median training norm, so tensors of the typical size are barely changed and the rare
large ones are pulled in logarithmically).

Why it keeps an equivariant model equivariant: the Frobenius norm of a Cartesian tensor of any rank is
invariant under every rotation and reflection (each index transforms with an orthogonal matrix), so
f(g·T) = g·f(T), and whatever point-group symmetry T has (Neumann's principle), f(T) has too. A scalar is
the rank-0 case: |y| is its absolute value and f keeps its sign. f is smooth, odd and strictly monotone in
the norm, so f⁻¹ undoes it exactly (up to round-off); T = 0 maps to 0.
"""
from __future__ import annotations

import numpy as np

# A prediction whose compressed norm exceeds this many scales would come back as ~e^50 · s: clipped there,
# finite, so that the scores report a huge error instead of an overflow.
MAX_LOG_NORM = 50.0


def _norms(T: np.ndarray, rank: int) -> np.ndarray:
    """|T| per sample, keeping the summed axes (broadcastable against T)."""
    axes = tuple(range(T.ndim - rank, T.ndim))
    return np.sqrt(np.sum(T * T, axis=axes, keepdims=True)) if rank else np.abs(T)


def _check(T, rank: int, scale: float) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.ndim < rank or T.shape[T.ndim - rank:] != (3,) * rank:
        raise ValueError(f"norm_log: a rank-{rank} tensor has trailing axes {(3,) * rank}, got shape {T.shape}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"norm_log: the scale must be a positive number (the target's units), got {scale!r}")
    return T


def _radial(T, rank: int, scale: float, new_norm) -> np.ndarray:
    """T with its norm n replaced by ``new_norm(n)`` and its direction kept (a zero tensor stays zero)."""
    T = _check(T, rank, scale)
    n = _norms(T, rank)
    safe = np.where(n > 0, n, 1.0)
    return T * np.where(n > 0, new_norm(safe) / safe, 1.0)


def norm_log(T, rank: int, scale: float) -> np.ndarray:
    """f(T) for (..., 3, ..., 3) tensors with ``rank`` trailing Cartesian axes (rank 0: signed scalars)."""
    return _radial(T, rank, scale, lambda n: scale * np.log1p(n / scale))


def norm_exp(U, rank: int, scale: float) -> np.ndarray:
    """f⁻¹(U), the inverse of :func:`norm_log` with the same rank and scale."""
    return _radial(U, rank, scale, lambda m: scale * np.expm1(np.minimum(m / scale, MAX_LOG_NORM)))


def clip_norm(T, rank: int, max_norm: float) -> np.ndarray:
    """T with its norm capped at ``max_norm`` (> 0), direction kept: as equivariant as f, for the same
    reason (rank 0: a signed scalar's magnitude is capped, its sign kept)."""
    return _radial(T, rank, max_norm, lambda n: np.minimum(n, max_norm))


def median_norm(T, rank: int) -> float:
    """The scale fitted to training targets: the median norm of the non-zero ones (1.0 when all are zero)."""
    T = np.asarray(T, dtype=np.float64)
    n = _norms(T, rank).reshape(-1)
    n = n[n > 0]
    return float(np.median(n)) if len(n) else 1.0
