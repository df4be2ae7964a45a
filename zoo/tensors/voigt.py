"""Voigt notation of symmetric Cartesian tensors, with the factors of strain-like quantities.

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
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .formula import _as_float_array

# Voigt order xx, yy, zz, yz, xz, xy.
VOIGT_PAIRS: tuple[tuple[int, int], ...] = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
VOIGT_KINDS = ("stress", "strain", "stiffness", "compliance", "piezo_e", "piezo_d")
_VOIGT_RANK = {"stress": 2, "strain": 2, "stiffness": 4, "compliance": 4, "piezo_e": 3, "piezo_d": 3}
# Factor on a Voigt index: 1 for normal components, 2 for shear ones (strain-like quantities only).
_STRAIN_WEIGHT = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
_ONES = np.ones(6)


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
