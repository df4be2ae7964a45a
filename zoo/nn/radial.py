"""Radial bases of an interatomic distance and the smooth cutoff envelope, written once for both backends.

Each function takes the distances ``d`` (Å, any shape) and the backend ops module ``xp``
(``zoo.backend.torch`` / ``zoo.backend.jax``: ``xp.const`` puts the cached numpy constants on the
device and in the dtype of ``d``) and returns an array of ``d``'s dtype. A basis adds one trailing
axis of ``n`` functions. Imports numpy only.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


# Cached: one array object per size, so xp.const keeps one device copy of it (by identity). Never
# written to; not marked read-only because torch.compile traces these bodies as torch code.
@lru_cache(maxsize=None)
def _bessel_frequencies(n: int) -> np.ndarray:
    return np.pi * np.arange(1, n + 1, dtype=np.float64)


@lru_cache(maxsize=None)
def _gaussian_centres(r_max: float, n: int) -> np.ndarray:
    return np.linspace(0.0, r_max, n)


def bessel_basis(d, r_max: float, n: int, xp):
    """``sin(k π d / r_max) / (d / r_max)``, k = 1..n (DimeNet's radial Bessel functions without their
    sqrt(2 / r_max) prefactor): O(1) values for 0 < d < r_max; ``d`` must not be 0."""
    x = (d / r_max)[..., None]
    return xp.sin(xp.const(_bessel_frequencies(n), like=d) * x) / x


def gaussian_basis(d, r_max: float, n: int, xp):
    """e3nn's soft one-hot (``soft_one_hot_linspace(..., basis="gaussian", cutoff=False)``) times
    sqrt(n), as e3nn's gate_points_2101 embeds distances: ``exp(-((d - μ_k) / σ)^2) / 1.12 · sqrt(n)``
    with μ_k = linspace(0, r_max, n) and σ the spacing (n >= 2); 1.12 is e3nn's constant."""
    if n < 2:
        raise ValueError(f"gaussian_basis needs n >= 2 functions, got {n}")
    sigma = r_max / (n - 1)
    z = (d[..., None] - xp.const(_gaussian_centres(float(r_max), n), like=d)) / sigma
    return xp.exp(-(z**2)) * (math.sqrt(n) / 1.12)


def polynomial_envelope(d, r_max: float, p: int, xp):
    """DimeNet's polynomial cutoff u(x), x = d / r_max: 1 at x = 0 and, for x >= 1, 0 with vanishing
    first and second derivatives at x = 1 (so forces stay smooth as a neighbour crosses r_max):
    ``u = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)``."""
    x = d / r_max
    c1, c2, c3 = (p + 1) * (p + 2) / 2, p * (p + 2), p * (p + 1) / 2
    u = 1.0 - c1 * x**p + c2 * x ** (p + 1) - c3 * x ** (p + 2)
    return xp.where(x < 1.0, u, xp.zeros_like(u))


__all__ = ["bessel_basis", "gaussian_basis", "polynomial_envelope"]
