"""The backend-neutral crystal graph: plain numpy arrays that both backends consume.

Conventions (used everywhere in crystal-zoo; do not change without bumping ``GRAPH_FORMAT_VERSION``):

- Lengths in Å. ``lattice`` rows are the lattice vectors a, b, c (pymatgen / ASE convention), so the
  Cartesian position of fractional ``f`` is ``f @ lattice``.
- An edge e is a directed pair (``senders[e]`` = j, the neighbour; ``receivers[e]`` = i, the centre):
  messages flow j → i, which is PyG's ``edge_index = [senders, receivers]`` ("source_to_target").
- ``shifts[e]`` is the integer lattice translation of the neighbour's image, and
  ``edge_vectors[e] = positions[j] + shifts[e] @ lattice - positions[i]`` points from the centre to
  the neighbour image; ``distances = |edge_vectors|``.
- Edges are sorted by receiver, then by distance (CGCNN's order).
- ``numbers`` are atomic numbers (1..100). Atom features are looked up from the numbers inside the
  models (a fixed table or a learnable embedding), so a graph does not depend on the featuriser.
- A graph built in the standard frame (``GraphSpec(frame="standard")``, ``zoo.symmetry.standard``) is
  the crystal's idealised standard primitive cell, rotated: ``frame_rotation`` R maps the crystal's
  Cartesian frame to the standard one (r_std = R r), and ``frame_holohedry`` says which holohedry's
  frame it is (index into ``zoo.symmetry.standard.HOLOHEDRIES``: 0 = m-3m, 1 = 6/mmm). A model that
  predicts a tensor in the standard frame returns Rᵀ on every index. Graphs in the input frame have
  neither field.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

GRAPH_FORMAT_VERSION = 1


@dataclass
class CrystalGraph:
    numbers: np.ndarray  # (N,) int64, atomic numbers
    positions: np.ndarray  # (N, 3) float64, Cartesian Å
    lattice: np.ndarray  # (3, 3) float64, rows = lattice vectors, Å
    senders: np.ndarray  # (E,) int64, neighbour j
    receivers: np.ndarray  # (E,) int64, centre i
    shifts: np.ndarray  # (E, 3) int64 (stored as float64-safe ints), image of j
    edge_vectors: np.ndarray  # (E, 3) float64, Å, from i to image of j
    distances: np.ndarray  # (E,) float64, Å
    frame_rotation: np.ndarray | None = None  # (3, 3) float64, r_std = R r (standard frame only)
    frame_holohedry: int | None = None  # 0: m-3m, 1: 6/mmm (standard frame only)
    id: str = ""  # structure id (matbench mbid, mp-id, ...) or content hash
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. {"rule": "cgcnn", "radius": 8.0, "max_neighbors": 12}

    @property
    def n_nodes(self) -> int:
        return int(self.numbers.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.senders.shape[0])

    @property
    def volume(self) -> float:
        return float(abs(np.linalg.det(self.lattice)))

    def fields_copy(self) -> dict[str, Any]:
        """Every CrystalGraph field by name (``meta`` copied): what a subclass that adds index sets is built on."""
        out = {f.name: getattr(self, f.name) for f in fields(CrystalGraph)}
        out["meta"] = dict(self.meta)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The array fields, for caching (npz) and batching (the frame fields only in the standard frame)."""
        out = {k: getattr(self, k) for k in ARRAY_FIELDS}
        if self.frame_rotation is not None:
            out["frame_rotation"] = np.asarray(self.frame_rotation, dtype=np.float64)
            out["frame_holohedry"] = np.asarray(self.frame_holohedry, dtype=np.int64)
        return out


ARRAY_FIELDS = ("numbers", "positions", "lattice", "senders", "receivers", "shifts", "edge_vectors", "distances")
FRAME_FIELDS = ("frame_rotation", "frame_holohedry")
