"""Matrix functions of symmetric rank-2 tensors: the logarithm of a positive-definite tensor and the
exponential that undoes it; the Clausius-Mossotti map (ε - 1)(ε + 2)^-1 and its inverse.

Why they are safe for an equivariant model: a spectral function f(T) = V f(Λ) V^T commutes with every
orthogonal change of frame, f(R T R^T) = R f(T) R^T, rotations and reflections alike. So a model that is
equivariant on log ε gives, through exp, a prediction equivariant on ε, and every point-group symmetry
of log ε (Neumann's principle) carries over to ε. A dielectric tensor is symmetric positive definite
(eigenvalues ≥ 1 for a passive medium), so its logarithm exists and is symmetric; the exponential of
any symmetric matrix is symmetric positive definite, so a prediction made this way is always physical.

Both take (..., 3, 3) arrays (numpy, float64) and symmetrise their input first ((T + T^T)/2): tabulated
tensors carry round-off asymmetry, and eigh reads one triangle only.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# exp() of a larger eigenvalue overflows float64 (e^709); a prediction that large is clipped to this
# eigenvalue of the logarithm (e^50 ≈ 5e21), finite so that the scores report it as a huge error.
MAX_LOG_EIGENVALUE = 50.0


def _symmetric(T, name: str) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape[-2:] != (3, 3):
        raise ValueError(f"{name}: matrix functions take (..., 3, 3) rank-2 tensors, got shape {T.shape}")
    return 0.5 * (T + np.swapaxes(T, -1, -2))


def spd_log(T, ids: Sequence[str] | None = None, name: str = "tensor") -> np.ndarray:
    """Matrix logarithm of symmetric positive-definite (..., 3, 3) tensors. A tensor with an eigenvalue
    ≤ 0 has no real logarithm: the error names the first such tensor (by ``ids`` when given) and its
    smallest eigenvalue."""
    w, V = _positive_definite(T, ids, name, "so it has no matrix logarithm")
    return np.einsum("...ij,...j,...kj->...ik", V, np.log(w), V)


def _positive_definite(T, ids: Sequence[str] | None, name: str, why: str) -> tuple[np.ndarray, np.ndarray]:
    """eigh of symmetric tensors that must be positive definite; the error names the first one that is not
    (by ``ids`` when given), its smallest eigenvalue, ``why`` that matters, and the way out."""
    w, V = np.linalg.eigh(_symmetric(T, name))
    smallest = w.reshape(-1, 3).min(axis=1)
    flat = np.flatnonzero(~(smallest > 0))  # NaN counts as bad too
    if len(flat):
        k = int(flat[0])
        label = repr(ids[k]) if ids is not None and k < len(ids) else f"#{k}"
        raise ValueError(f"{name} {label} (and {len(flat) - 1} more) is not positive definite (smallest eigenvalue "
                         f"{float(smallest[k]):.4g}), {why}; train this target with --target-transform none, or drop "
                         "the non-physical entries")
    return w, V


def sym_exp(M) -> np.ndarray:
    """Matrix exponential of symmetric (..., 3, 3) tensors (eigenvalues clipped at
    ``MAX_LOG_EIGENVALUE`` so that the result stays finite)."""
    S = _symmetric(M, "log-tensor")
    w, V = np.linalg.eigh(S)
    return np.einsum("...ij,...j,...kj->...ik", V, np.exp(np.minimum(w, MAX_LOG_EIGENVALUE)), V)


# The Clausius-Mossotti map sends eigenvalues ε in [1, ∞) to [0, 1); its inverse is clipped to ε <= this.
MAX_CM_EPSILON = 1e6


def cm_map(T, ids: Sequence[str] | None = None, name: str = "tensor") -> np.ndarray:
    """(ε - 1)(ε + 2)^-1 of symmetric (..., 3, 3) tensors with every eigenvalue > 0 (the two factors
    commute). For a cubic crystal of the point-dipole model it is 4πα/3V (Clausius-Mossotti): it grows
    linearly with the polarisability where ε diverges at the polarisation catastrophe, and stays in
    (-1/2, 1). The error names the first tensor with an eigenvalue <= 0."""
    w, V = _positive_definite(T, ids, name, "and the Clausius-Mossotti map is for permittivities")
    return np.einsum("...ij,...j,...kj->...ik", V, (w - 1.0) / (w + 2.0), V)


def cm_inverse(M) -> np.ndarray:
    """ε = (1 + 2M)(1 - M)^-1 of symmetric (..., 3, 3) tensors, eigenvalues of M clipped to [-1/2 (ε = 0),
    the value of ``MAX_CM_EPSILON``] so that the result is finite and positive semi-definite."""
    S = _symmetric(M, "Clausius-Mossotti tensor")
    w, V = np.linalg.eigh(S)
    top = (MAX_CM_EPSILON - 1.0) / (MAX_CM_EPSILON + 2.0)
    w = np.clip(w, -0.5, top)
    return np.einsum("...ij,...j,...kj->...ik", V, (1.0 + 2.0 * w) / (1.0 - w), V)

