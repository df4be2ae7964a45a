"""Periodic neighbour lists (numpy), with the edge conventions of ``zoo.graphs.graph``.

Choice of search library. Both candidates return the same pairs on all 636 matbench_jdft2d
structures at 8 Å (255,152 directed pairs, identical (i, j, image) sets). Provisional timings on a
loaded 2-core machine, 636 structures, 8 Å, one thread, best of 5:

- pymatgen ``find_points_in_spheres`` (the Cython routine under ``Structure.get_neighbor_list``),
  called directly on arrays: ~14 ms;
- vesin ``NeighborList(8, full_list=True).compute(..., quantities="ijSdD")``: ~28 ms.

We use pymatgen's routine by default: it was about 2x faster on these small cells, it is already a
hard dependency (no extra package on the critical path), and it includes pairs at exactly the cutoff
(``d <= r``) like ``Structure.get_all_neighbors`` which the original CGCNN uses, whereas vesin keeps
``d < r`` only (a 2 Å cubic cell at r = 8 Å gives 256 vs 250 pairs). vesin stays available
(``backend="vesin"``) and the tests check both give the same list. Either way the search is only
used to find candidate pairs: vectors and distances are recomputed here from the integer shifts with
one fixed formula, so the graph, the cut at the radius and the cache are bit-for-bit reproducible
whatever library found the pairs.

Bounded time and memory for every cell that passes validation. Both libraries scan the periodic
images of the cell that can reach the cutoff, one image per ``cutoff / height`` of the cell in each
direction, so a basis of long, nearly coplanar vectors (a valid lattice written in a skewed basis:
flatness 2e-6 took hours) and coordinates far outside the cell (pymatgen sizes its cell grid by the
spread of the centres: 1e6 Å asked for 4 GB, 1e7 Å for 35 GB) used to cost without bound. So the
search runs on the LLL-reduced basis of the same lattice (pymatgen's ``Lattice.lll_mapping``, an
integer unimodular matrix M with ``L_red = M @ L``) with the positions wrapped into that cell, and the
found shifts are mapped back to the input basis exactly (integers). The result is the same list, in
the input's own lattice and positions; only the work is bounded. Before anything is allocated,
``search_cost`` estimates the image cells scanned and the pairs found; beyond ``MAX_PAIRS`` /
``MAX_IMAGE_ATOMS`` the search is refused with ``NeighborListTooLarge`` (a ``ValueError``) saying how
big it would be and what to change (``ZOO_MAX_NEIGHBOR_PAIRS`` raises the limit).
"""
from __future__ import annotations

import math
import os

import numpy as np

DEFAULT_BACKEND = "pymatgen"
_SEARCH_MARGIN = 1e-6  # Å; the search radius is padded so that the final cut uses our own distances
TIE_DECIMALS = 8  # distances equal to 1e-8 Å count as ties (then ordered by j, then by shift)
# Pairs one search may return. Each pair costs about 140 bytes here and in pymatgen (indices, shifts,
# vectors, distance, sort keys), so 5e6 pairs is ~0.7 GB at the peak; a real crystal at 8 Å has
# 50-300 neighbours per atom, i.e. this admits cells of ~20,000 atoms. Raise it with the variable.
MAX_PAIRS = 5_000_000
PAIRS_VARIABLE = "ZOO_MAX_NEIGHBOR_PAIRS"
# Atom images the library lays out before searching (image cells x atoms), ~56 bytes each in pymatgen.
MAX_IMAGE_ATOMS = 20_000_000
# Å. Beyond this a coordinate keeps fewer than ~8 decimals of Å in float64 (eps * 1e8 = 2e-8 Å), and
# an edge vector, the difference of two such numbers, would lose them: refused, not silently rounded.
MAX_COORDINATE = 1e8
ORTHOGONALITY_DEFECT = 2.0  # bases with |a||b||c| / V above this are LLL-reduced before the search
_PERIODIC = np.ones(3, dtype=np.int64)  # pymatgen's pbc flags: periodic in all three directions (read only)


class NeighborListTooLarge(ValueError):
    """A neighbour search that would need more memory than allowed; the message says how much and the fix."""


def max_pairs() -> int:
    """``MAX_PAIRS``, or the value of ``$ZOO_MAX_NEIGHBOR_PAIRS``."""
    value = os.environ.get(PAIRS_VARIABLE)
    if not value:
        return MAX_PAIRS
    try:
        return int(float(value))
    except ValueError:
        raise ValueError(f"{PAIRS_VARIABLE}={value!r} is not a number of pairs (e.g. 20000000)") from None


def edge_geometry(
    positions: np.ndarray, lattice: np.ndarray, senders: np.ndarray, receivers: np.ndarray, shifts: np.ndarray,
    owner: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``edge_vectors = positions[j] + shifts @ lattice - positions[i]`` (Å) and their lengths. Many graphs
    at once: ``lattice`` (G, 3, 3) holds one lattice per graph and ``owner`` (E,) each edge's graph (the
    same arithmetic, so the same bits as one graph at a time).

    Written element-wise (no BLAS) so that the result is bit-identical on every call and every
    machine for the same inputs: the graph cache stores only the integer shifts and rebuilds these.
    """
    s = np.asarray(shifts, dtype=np.float64)
    L = np.asarray(lattice, dtype=np.float64)
    if owner is None:
        a, b, c = L[0], L[1], L[2]
    else:  # each edge's lattice rows, gathered as one (E, 9) block (faster than (E, 3, 3))
        rows = L.reshape(-1, 9)[owner]
        a, b, c = rows[:, 0:3], rows[:, 3:6], rows[:, 6:9]
    # (positions[j] + ((s0 a + s1 b) + s2 c)) - positions[i], evaluated in place: the same operations in the
    # same order as the expression, without its temporaries (this runs over every candidate pair)
    translation = s[:, 0:1] * a
    translation += s[:, 1:2] * b
    translation += s[:, 2:3] * c
    vectors = positions[senders]
    vectors += translation
    vectors -= positions[receivers]
    distances = np.sqrt(vectors[:, 0] * vectors[:, 0] + vectors[:, 1] * vectors[:, 1] + vectors[:, 2] * vectors[:, 2])
    return vectors, distances


def _candidate_pairs(lattice: np.ndarray, positions: np.ndarray, cutoff: float, backend: str):
    if backend == "pymatgen":
        from pymatgen.optimization.neighbors import find_points_in_spheres

        i, j, images, _ = find_points_in_spheres(
            positions, positions, r=float(cutoff), pbc=_PERIODIC, lattice=lattice, tol=1e-8
        )
        shifts = np.rint(images).astype(np.int64)
    elif backend == "vesin":
        import vesin

        i, j, shifts = vesin.NeighborList(cutoff=float(cutoff), full_list=True).compute(
            points=positions, box=lattice, periodic=True, quantities="ijS"
        )
        shifts = np.asarray(shifts, dtype=np.int64)
    else:
        raise ValueError(f"unknown neighbour-list backend {backend!r}; use 'pymatgen' or 'vesin'")
    return np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64), shifts.reshape(-1, 3)


def sort_edges(
    receivers: np.ndarray, senders: np.ndarray, shifts: np.ndarray, distances: np.ndarray
) -> np.ndarray:
    """Permutation ordering edges by receiver, then distance (to 1e-8 Å), then sender, then shift."""
    # np.round(d, 8) is rint(d * 1e8) / 1e8, so the integers rint(d * 1e8) order (and tie) edges the same.
    d = np.rint(distances * 10.0**TIE_DECIMALS)
    if receivers.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    # The six keys packed into two integers where they fit in int64 (mixed radix keeps the order): two
    # sorting passes instead of six, which is most of the cost with the pairs of many structures at once.
    s = shifts - shifts.min(axis=0)
    spans = [int(x) + 1 for x in s.max(axis=0)]
    d_span, r_span, j_span = int(d.max()) + 1, int(receivers.max()) + 1, int(senders.max()) + 1
    if r_span * d_span < 2**62 and j_span * spans[0] * spans[1] * spans[2] < 2**62 and receivers.min() >= 0 and senders.min() >= 0:
        first = receivers * d_span + d.astype(np.int64)
        second = ((senders * spans[0] + s[:, 0]) * spans[1] + s[:, 1]) * spans[2] + s[:, 2]
        return np.lexsort((second, first))
    return np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], senders, d, receivers))


def _cell_geometry(lattice: np.ndarray) -> tuple[float, list[float], list[float]]:
    """(volume Å³, vector lengths Å, heights Å) of a 3x3 lattice, in plain floats: this runs once per
    structure on the featurisation path, where numpy's per-call overhead would dominate 3x3 algebra."""
    a, b, c = lattice.tolist()

    def cross(u, v):
        return (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])

    faces = (cross(b, c), cross(c, a), cross(a, b))  # height of vector k = V / |face k|
    volume = abs(a[0] * faces[0][0] + a[1] * faces[0][1] + a[2] * faces[0][2])
    lengths = [math.sqrt(x * x + y * y + z * z) for x, y, z in (a, b, c)]
    heights = [volume / math.sqrt(x * x + y * y + z * z) if volume > 0 else 0.0 for x, y, z in faces]
    return volume, lengths, heights


def reduced_basis(lattice: np.ndarray, geometry: tuple | None = None) -> np.ndarray | None:
    """The integer unimodular M with ``M @ lattice`` LLL-reduced (pymatgen's ``Lattice.lll_mapping``), or
    None when the basis is good as it is. Same lattice, nearly orthogonal vectors. ``geometry``: the
    lattice's ``_cell_geometry`` if the caller has it."""
    # A basis whose vectors are already nearly orthogonal (orthogonality defect |a||b||c| / V below 2,
    # e.g. every cubic, tetragonal or orthorhombic cell and most others) is left as it is: reducing it
    # would change nothing the search needs, and would cost a pymatgen Lattice per structure.
    volume, lengths, _ = _cell_geometry(lattice) if geometry is None else geometry
    if lengths[0] * lengths[1] * lengths[2] <= ORTHOGONALITY_DEFECT * volume:
        return None
    from pymatgen.core import Lattice

    M = np.rint(Lattice(lattice).lll_mapping).astype(np.int64)
    if abs(round(float(np.linalg.det(M.astype(np.float64))))) != 1:  # pragma: no cover - LLL guarantees it
        return None
    return M


def search_cost(lattice: np.ndarray, n_atoms: int, cutoff: float, geometry: tuple | None = None) -> dict[str, float]:
    """What a search within ``cutoff`` Å will build, before building it: the image cells a cell-list
    scans (``2 ceil((r + 0.15) / h) + 2`` per direction, h the cell heights; pymatgen pads r by 0.15 Å),
    the atom images it lays out, and the pairs it finds (~ N^2 / V * 4/3 pi r^3, plus the images of each
    atom of a cell shorter than r)."""
    volume, lengths, heights = _cell_geometry(np.asarray(lattice, dtype=np.float64)) if geometry is None else geometry
    if volume <= 0:
        raise ValueError("the cell has zero volume")
    cells = 1.0
    for h in heights:
        cells *= 2 * math.ceil((cutoff + 0.15) / h) + 2
    pairs = n_atoms * (n_atoms / volume * 4.0 / 3.0 * math.pi * cutoff**3 + 1.0)
    return {"cells": cells, "image_atoms": cells * n_atoms, "pairs": pairs, "heights": heights, "volume": volume,
            "lengths": lengths}


def check_search_cost(lattice: np.ndarray, n_atoms: int, cutoff: float, geometry: tuple | None = None) -> dict[str, float]:
    """``search_cost``, or ``NeighborListTooLarge`` when it exceeds the limits (see the module docstring)."""
    cost = search_cost(lattice, n_atoms, cutoff, geometry)
    limit = max_pairs()
    if cost["pairs"] > limit:
        raise NeighborListTooLarge(
            f"a neighbour list within {cutoff:g} Å of {n_atoms} atoms in a {cost['volume']:.4g} Å³ cell "
            f"would hold ~{cost['pairs']:.3g} pairs (~{cost['pairs'] * 140 / 2**30:.1f} GiB; limit {limit:.3g}); use a "
            f"smaller radius, a smaller cell, or raise the limit with {PAIRS_VARIABLE}=N"
        )
    if cost["image_atoms"] > MAX_IMAGE_ATOMS:
        raise NeighborListTooLarge(
            f"a neighbour search within {cutoff:g} Å would lay out ~{cost['image_atoms']:.3g} atom images: the cell "
            f"is only {min(cost['heights']):.3g} Å thick in one direction (heights "
            f"{np.round(cost['heights'], 4).tolist()} Å); fix the cell or use a smaller radius"
        )
    return cost


def candidate_pairs(lattice, positions, cutoff: float, backend: str = DEFAULT_BACKEND) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The library's candidate pairs of ``neighbor_list`` (all pairs within ``cutoff`` Å plus a round-off
    margin, centre self-pairs included), as ``(i, j, shifts)`` in the input's own basis, unsorted and not yet
    cut at ``cutoff``: ``neighbor_list`` and ``batch_neighbor_lists`` finish them the same way. Same
    checks and errors as ``neighbor_list``."""
    lattice = np.ascontiguousarray(lattice, dtype=np.float64).reshape(3, 3)
    positions = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 3)
    if not (cutoff > 0 and math.isfinite(cutoff)):
        raise ValueError(f"cutoff must be a finite distance > 0 Å, got {cutoff}")
    largest = float(np.abs(positions).max(initial=0.0))  # NaN propagates into it
    if not (math.isfinite(largest) and np.isfinite(lattice).all()):
        raise ValueError("lattice and positions must be finite (found NaN or inf)")
    if largest > MAX_COORDINATE:
        raise ValueError(f"coordinates up to {largest:.3g} Å lose their sub-Å digits in float64 "
                         f"(limit {MAX_COORDINATE:g} Å); wrap them into the cell first")
    if positions.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, 3), np.int64)
    # Search in the reduced cell with wrapped positions (module docstring), then map the shifts back:
    # positions[j] + s @ L - positions[i] with s = (s_red - n_j + n_i) @ M, n the wrapped-away cells.
    geometry = _cell_geometry(lattice)  # one computation for the reduction test and the cost estimate
    if geometry[0] <= 0:  # before any reduction: a singular basis has none
        raise ValueError("the cell has zero volume")
    M = reduced_basis(lattice, geometry)
    reduced = lattice if M is None else M.astype(np.float64) @ lattice
    cost = check_search_cost(reduced, positions.shape[0], cutoff, geometry if M is None else None)
    cells = None
    # Coordinates within a few cells of the origin cost the search nothing: only farther ones are wrapped.
    if largest > 2.0 * sum(cost["lengths"]) or M is not None:
        cells = np.floor(positions @ np.linalg.inv(reduced)).astype(np.int64)
    wrapped = positions if cells is None else positions - cells.astype(np.float64) @ reduced
    # Far-away input coordinates lose digits when wrapped: widen the candidate search by that round-off.
    margin = _SEARCH_MARGIN + 64 * np.finfo(np.float64).eps * (largest + sum(cost["lengths"]))
    i, j, shifts = _candidate_pairs(reduced, wrapped, cutoff + margin, backend)
    if cells is not None:
        shifts = shifts - cells[j] + cells[i]
    if M is not None:
        shifts = shifts[:, 0:1] * M[0] + shifts[:, 1:2] * M[1] + shifts[:, 2:3] * M[2]  # integer s @ M
    return i, j, shifts


def neighbor_list(
    lattice, positions, cutoff: float, backend: str = DEFAULT_BACKEND
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All periodic neighbours within ``cutoff`` Å (``d <= cutoff``), for every atom.

    Returns ``(i, j, shifts, vectors, distances)``: centre i, neighbour j, integer image shift of j
    (int64, (E, 3)), ``vectors = positions[j] + shifts @ lattice - positions[i]`` (Å) and their
    lengths. Images of the centre itself (j == i, nonzero shift) are included; the centre itself
    (i, i, 0) is not. Edges are sorted by i, then distance, then j, then shift. ``lattice`` rows are
    the lattice vectors; positions are Cartesian Å and need not be wrapped into the cell. Raises
    ``ValueError`` for non-finite input and ``NeighborListTooLarge`` for a search beyond the limits.
    """
    i, j, shifts = candidate_pairs(lattice, positions, cutoff, backend)
    positions = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 3)
    vectors, distances = edge_geometry(positions, np.asarray(lattice, dtype=np.float64).reshape(3, 3), j, i, shifts)
    keep = (distances <= cutoff) & ~((i == j) & ~shifts.any(axis=1))
    i, j, shifts, vectors, distances = i[keep], j[keep], shifts[keep], vectors[keep], distances[keep]
    order = sort_edges(i, j, shifts, distances)
    return i[order], j[order], shifts[order], vectors[order], distances[order]


def nearest_edges(receivers: np.ndarray, senders: np.ndarray, shifts: np.ndarray, distances: np.ndarray, n_atoms: int,
                  k: int) -> np.ndarray:
    """Indices of the first ``k`` edges of every receiver in ``sort_edges`` order, in that order: the same as
    ``order = sort_edges(...); order[nearest_k(receivers[order], n_atoms, k)]``, with the full ordering
    only of the edges that can make the cut (those within each receiver's k-th distance, ties included),
    found by one plain sort of (receiver, distance): on many structures' pairs at once most pairs are
    beyond the 12th neighbour, and ordering them was most of the work."""
    d = np.rint(distances * 10.0**TIE_DECIMALS)  # sort_edges' distance key
    d_span = int(d.max(initial=0.0)) + 1
    if receivers.shape[0] == 0 or (int(receivers.max()) + 1) * d_span >= 2**62:
        order = sort_edges(receivers, senders, shifts, distances)
        return order[nearest_k(receivers[order], n_atoms, k)]
    primary = receivers * d_span + d.astype(np.int64)
    ranked = np.sort(primary)  # by receiver, then distance: the k-th key of each receiver
    counts = np.bincount(receivers, minlength=n_atoms)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    kth = np.where(counts >= k, ranked[np.minimum(start + k - 1, len(ranked) - 1)], np.iinfo(np.int64).max)
    # every edge before a candidate in the full order is a candidate too, so ranks among them are the same
    maybe = np.flatnonzero(primary <= kth[receivers])
    order = maybe[sort_edges(receivers[maybe], senders[maybe], shifts[maybe], distances[maybe])]
    return order[nearest_k(receivers[order], n_atoms, k)]


def nearest_k(receivers: np.ndarray, n_atoms: int, k: int) -> np.ndarray:
    """Boolean mask keeping the first ``k`` edges of every receiver (edges already sorted by ``sort_edges``)."""
    counts = np.bincount(receivers, minlength=n_atoms)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(receivers.shape[0]) - start[receivers]
    return rank < k
