"""On-disk cache of crystal graphs, keyed by structure content and graph spec.

Layout: ``<root>/graphs/<spec.key()>/<dataset key>.npz``, where ``<root>`` is ``$ZOO_CACHE`` or the
user cache folder of "crystal-zoo" (``~/.cache/crystal-zoo`` on Linux, via platformdirs when
installed). One file holds all graphs of one call of ``build_graphs`` (a data set), as concatenated
arrays with offsets, so that a 100k-structure data set is one file read, not 100k.

- structure key: sha256 of the exact float64 bytes of the lattice and fractional coordinates and the
  int64 atomic numbers (``structure_hash``), so any change of any bit gives a new key;
- dataset key: sha256 of ``spec.key()`` and the ordered structure keys;
- the file repeats the structure keys and the spec key and is checked on load; a corrupt or
  mismatched file is ignored (and overwritten), never trusted;
- only the integer part of the graph (numbers, senders, receivers, shifts) and the float64
  positions/lattices are stored; edge vectors and distances are rebuilt with
  ``neighbors.edge_geometry``, the same element-wise formula the builder uses, so the round trip is
  bit-exact and the file is ~4x smaller;
- written with ``np.savez`` through ``zoo.core.io.atomic_path`` and read with ``allow_pickle=False``.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from zoo.core.io import atomic_path
from zoo.core.paths import cache_root

from .graph import GRAPH_FORMAT_VERSION, CrystalGraph
from .neighbors import edge_geometry

log = logging.getLogger("zoo.graphs")

CACHE_FORMAT_VERSION = 1  # layout of the .npz below; bump on any change


def graph_cache_dir(root: str | os.PathLike | None = None) -> Path:
    return Path(root if root is not None else cache_root()) / "graphs"


def structure_hash(structure) -> str:
    """sha256 (hex) of a structure's exact content: lattice, atomic numbers, fractional coordinates."""
    return arrays_hash(structure.lattice.matrix, [site.specie.Z for site in structure], structure.frac_coords)


def arrays_hash(lattice, numbers, frac) -> str:
    """``structure_hash`` of a structure given as its arrays (lattice rows, atomic numbers, fractional
    coordinates), for callers that already hold them."""
    lattice = np.ascontiguousarray(lattice, dtype="<f8")
    numbers = np.ascontiguousarray(numbers, dtype="<i8")
    frac = np.ascontiguousarray(frac, dtype="<f8").reshape(-1, 3)
    h = hashlib.sha256()
    h.update(b"crystal-zoo structure v1\0")
    h.update(np.int64(len(numbers)).astype("<i8").tobytes())
    for array in (lattice, numbers, frac):
        h.update(array.tobytes())
    return h.hexdigest()


def dataset_key(structure_hashes: Sequence[str], spec_key: str) -> str:
    h = hashlib.sha256()
    h.update(f"crystal-zoo graphs v{CACHE_FORMAT_VERSION}\0{spec_key}\0".encode())
    for s in structure_hashes:
        h.update(s.encode())
    return h.hexdigest()


def cache_path(structure_hashes: Sequence[str], spec_key: str, root: str | os.PathLike | None = None) -> Path:
    return graph_cache_dir(root) / spec_key / f"{dataset_key(structure_hashes, spec_key)}.npz"


def save_graphs(path: str | os.PathLike, graphs: Sequence[CrystalGraph | None], structure_hashes: Sequence[str], spec_key: str) -> None:
    """Write graphs (None = a structure that failed; it is rebuilt, and fails again, on load)."""
    if len(graphs) != len(structure_hashes):
        raise ValueError(f"{len(graphs)} graphs for {len(structure_hashes)} structure hashes")
    ok = np.array([g is not None for g in graphs], dtype=bool)
    real = [g for g in graphs if g is not None]
    n_nodes = np.array([g.n_nodes if g is not None else 0 for g in graphs], dtype=np.int64)
    n_edges = np.array([g.n_edges if g is not None else 0 for g in graphs], dtype=np.int64)

    def cat(name, dtype, width=None):
        parts = [np.asarray(getattr(g, name)).astype(dtype, copy=False) for g in real]
        empty = np.zeros((0,) if width is None else (0, width), dtype=dtype)
        return np.concatenate(parts) if parts else empty

    arrays = {
        "cache_format_version": np.array(CACHE_FORMAT_VERSION, dtype=np.int64),
        "graph_format_version": np.array(GRAPH_FORMAT_VERSION, dtype=np.int64),
        "spec_key": np.array(spec_key),
        "structure_hashes": np.array(list(structure_hashes), dtype="U64"),
        "ok": ok,
        "node_offsets": np.concatenate([[0], np.cumsum(n_nodes)]).astype(np.int64),
        "edge_offsets": np.concatenate([[0], np.cumsum(n_edges)]).astype(np.int64),
        "numbers": cat("numbers", np.int16),  # Z <= 100
        "positions": cat("positions", np.float64, 3),
        "lattice": np.stack([g.lattice if g is not None else np.zeros((3, 3)) for g in graphs]).astype(np.float64)
        if len(graphs)
        else np.zeros((0, 3, 3)),
        "senders": cat("senders", np.int32),  # local (per-graph) node indices
        "receivers": cat("receivers", np.int32),
        "shifts": cat("shifts", np.int32, 3),
    }
    if real and real[0].frame_rotation is not None:  # standard-frame graphs (one spec: all or none)
        arrays["frame_rotation"] = np.stack([g.frame_rotation if g is not None else np.eye(3) for g in graphs]).astype(np.float64)
        arrays["frame_holohedry"] = np.array([g.frame_holohedry if g is not None else -1 for g in graphs], dtype=np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_graphs(
    path: str | os.PathLike, structure_hashes: Sequence[str], spec_key: str, meta: dict | None = None
) -> list[CrystalGraph | None] | None:
    """Graphs from ``path`` if it exists and matches the hashes and spec exactly, else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        if (
            int(data["cache_format_version"]) != CACHE_FORMAT_VERSION
            or int(data["graph_format_version"]) != GRAPH_FORMAT_VERSION
            or str(data["spec_key"]) != spec_key
            or data["structure_hashes"].tolist() != list(structure_hashes)
        ):
            log.warning("graph cache %s does not match its key; rebuilding it", path)
            return None
    except Exception as exc:  # truncated / corrupt file: rebuild rather than fail
        log.warning("graph cache %s is unreadable (%s: %s); rebuilding it", path, type(exc).__name__, exc)
        return None

    no, eo = data["node_offsets"], data["edge_offsets"]
    numbers = data["numbers"].astype(np.int64)
    senders = data["senders"].astype(np.int64)
    receivers = data["receivers"].astype(np.int64)
    shifts = data["shifts"].astype(np.int64)
    positions, lattices = data["positions"], data["lattice"]
    # The edge geometry of all graphs in one call (global node indices; the same bits as graph by graph).
    owner = np.repeat(np.arange(len(lattices)), np.diff(eo))
    vectors_all, distances_all = edge_geometry(positions, lattices, senders + no[:-1][owner],
                                               receivers + no[:-1][owner], shifts, owner)
    no, eo = no.tolist(), eo.tolist()
    graphs: list[CrystalGraph | None] = []
    # ``ok`` graphs were concatenated in order; failed ones take no room in the node/edge arrays.
    for k, ok in enumerate(data["ok"].tolist()):
        if not ok:
            graphs.append(None)
            continue
        ns, ne = slice(no[k], no[k + 1]), slice(eo[k], eo[k + 1])
        pos, lat = positions[ns], lattices[k]
        snd, rcv, sh = senders[ne], receivers[ne], shifts[ne]
        vectors, distances = vectors_all[ne], distances_all[ne]
        graphs.append(
            CrystalGraph(
                numbers=numbers[ns], positions=pos, lattice=lat, senders=snd, receivers=rcv, shifts=sh,
                edge_vectors=vectors, distances=distances,
                frame_rotation=data["frame_rotation"][k] if "frame_rotation" in data else None,
                frame_holohedry=int(data["frame_holohedry"][k]) if "frame_holohedry" in data else None,
                meta={**(meta or {}), "sha256": structure_hashes[k]},
            )
        )
    return graphs
