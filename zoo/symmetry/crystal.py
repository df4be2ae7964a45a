"""Point-group operations of a crystal in its own Cartesian frame (via spglib).

spglib returns rotations W acting on fractional coordinates (column vectors): x' = W x + t. With
lattice rows a, b, c (L = ``lattice``, Cartesian r = L^T x) the Cartesian operation is
R = L^T W L^{-T}; it is orthogonal up to the symmetry tolerance, and we re-orthogonalise it (polar
decomposition) so that a tensor symmetrised with it is exactly invariant to float precision.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _cell(structure):
    lattice = np.asarray(structure.lattice.matrix, dtype=np.float64)
    frac = np.asarray(structure.frac_coords, dtype=np.float64)
    numbers = np.asarray(structure.atomic_numbers, dtype=np.int64)
    return lattice, frac, numbers


def cartesian_point_group(structure, symprec: float = 1e-3, angle_tolerance: float = -1.0) -> np.ndarray:
    """(n_ops, 3, 3) orthogonal Cartesian matrices of the crystal's point group (unique, identity first)."""
    import spglib

    lattice, frac, numbers = _cell(structure)
    ds = spglib.get_symmetry_dataset((lattice, frac, numbers), symprec=symprec, angle_tolerance=angle_tolerance)
    if ds is None:
        raise ValueError(f"spglib could not find the symmetry of {structure.composition.reduced_formula}")
    # A supercell repeats each rotation once per pure translation: deduplicate the integer matrices first.
    W = np.unique(np.asarray(ds.rotations), axis=0).astype(np.float64)
    L = lattice
    R = np.einsum("ji,njk,kl->nil", L, W, np.linalg.inv(L).T)
    # Polar decomposition: the orthogonal factor closest to R.
    u, _, vt = np.linalg.svd(R)
    R = u @ vt
    # Unique operations (different translations give the same rotation), identity first.
    uniq: list[np.ndarray] = []
    for r in R:
        if not any(np.allclose(r, q, atol=1e-6) for q in uniq):
            uniq.append(r)
    uniq.sort(key=lambda r: np.abs(r - np.eye(3)).sum())
    return np.stack(uniq)


def point_group_ops(structures: Sequence[Any], symprec: float = 1e-3, progress: bool | None = None) -> list[np.ndarray]:
    """``cartesian_point_group`` of every structure, once each (a progress bar from 200 structures)."""
    from tqdm.auto import tqdm

    structures = list(structures)
    show = len(structures) >= 200 if progress is None else progress
    return [cartesian_point_group(s, symprec=symprec) for s in tqdm(structures, desc="point groups", disable=not show)]
