"""One batch type for every model and backend: many graphs as one disjoint graph, with its padding policy.

A ``Batch`` is a read-only mapping ``key -> numpy array`` whose keys are described by ``FIELDS``: each
array is indexed along one *index set* ("graph", "node", "edge", or a set a graph type adds, such as
"triplet" or "hyperedge"), and an index array says which set it points into. From that description
alone the batch knows how to

- **collate** graphs: concatenate every field, add to each index array the number of elements of the
  set it points into that the earlier graphs hold, and add per set the counts ``n_<set>s`` (G,), the
  membership ``<set>_graph`` and the mask ``<set>_mask``;
- **pad** to fixed sizes for ``jax.jit``: every set grows to its padded size; padding rows take the
  field's fill value, padding index entries point at the *last* element of their target set, which is
  always padding (so padding only ever touches padding), and masks are False there.

Keys of a collated batch of ``CrystalGraph``s:

=================  ==========  ====================================================================
key                shape       meaning
=================  ==========  ====================================================================
numbers            (N,)        atomic numbers; 0 on padding nodes
positions          (N, 3)      Cartesian Å
lattice            (G, 3, 3)   rows = lattice vectors of each graph (identity on padding graphs)
senders            (E,)        global index of the neighbour j (message source)
receivers          (E,)        global index of the centre i (message target)
shifts             (E, 3)      integer lattice shift of j's image (float64 so it can multiply lattice)
edge_vectors       (E, 3)      Å, i → image of j (unit x on padding edges)
distances          (E,)        Å (1 Å on padding edges: finite, so no NaN in a basis or a harmonic)
node_graph         (N,)        graph index of each node
edge_graph         (E,)        graph index of each edge
n_nodes, n_edges   (G,)        counts per graph (0 for padding graphs)
node_mask          (N,)        True on real nodes
edge_mask          (E,)        True on real edges
graph_mask         (G,)        True on real graphs
y                  (G, ...)    targets when given (0 on padding graphs)
=================  ==========  ====================================================================

A graph type with more index sets (the crystal hypergraph's triplets and motifs) registers its fields
with ``register_field`` and returns them from ``arrays()``; collating and padding need no new code.
Models pool with ``node_graph`` into G slots, ignore graphs whose ``graph_mask`` is False and take
batch statistics (batch norm) over ``node_mask`` / ``edge_mask`` rows only.

``BucketPolicy`` is the padding policy of compiled backends: padded sizes rounded up to a few bucket
sizes, reusing a size already compiled when it holds the batch, so an epoch costs a handful of XLA
compilations instead of one per batch. ``FixedPolicy`` (short runs) pads every batch to one shape.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

GRAPH = "graph"


@dataclass(frozen=True)
class Field:
    """How one batch key behaves: the set it is indexed along, its kind, and its padding.

    ``kind``: "float" (cast to the model dtype by a backend), "int" or "bool". ``points_to``: the set
    whose elements this integer array indexes (collate offsets it, padding points at that set's padding
    element). ``fill``: padding value of the rows ("identity": a 3x3 identity, "unit_x": (1, 0, 0)).
    """

    set: str
    kind: str = "float"
    points_to: str | None = None
    fill: Any = 0

    def __post_init__(self) -> None:
        if self.kind not in ("float", "int", "bool"):
            raise ValueError(f"Field.kind must be 'float', 'int' or 'bool', got {self.kind!r}")
        if self.points_to is not None and self.kind != "int":
            raise ValueError("an index field (points_to=...) must have kind 'int'")


def count_key(set_name: str) -> str:
    return f"n_{set_name}s"


def graph_key(set_name: str) -> str:
    return f"{set_name}_graph"


def mask_key(set_name: str) -> str:
    return f"{set_name}_mask"


FIELDS: dict[str, Field] = {}


def register_field(name: str, field: Field) -> Field:
    """Declare a per-graph array key (e.g. a hypergraph's ``triplet_edges``); the derived keys of its
    set (count, membership, mask) are declared with it."""
    old = FIELDS.get(name)
    if old is not None and old != field:
        raise ValueError(f"batch field {name!r} is already declared as {old}")
    FIELDS[name] = field
    if field.set != GRAPH:
        FIELDS.setdefault(count_key(field.set), Field(GRAPH, "int"))
        FIELDS.setdefault(graph_key(field.set), Field(field.set, "int", points_to=GRAPH))
        FIELDS.setdefault(mask_key(field.set), Field(field.set, "bool", fill=False))
    return field


# The CrystalGraph fields (zoo.graphs.graph.ARRAY_FIELDS) and the target.
register_field("numbers", Field("node", "int"))
register_field("positions", Field("node", "float"))
register_field("lattice", Field(GRAPH, "float", fill="identity"))
register_field("senders", Field("edge", "int", points_to="node"))
register_field("receivers", Field("edge", "int", points_to="node"))
register_field("shifts", Field("edge", "float"))
register_field("edge_vectors", Field("edge", "float", fill="unit_x"))
register_field("distances", Field("edge", "float", fill=1.0))
register_field("y", Field(GRAPH, "float"))
# Graphs in the standard frame (zoo.graphs.graph): rotation into it, and which holohedry's frame.
register_field("frame_rotation", Field(GRAPH, "float", fill="identity"))
register_field("frame_holohedry", Field(GRAPH, "int"))
FIELDS[mask_key(GRAPH)] = Field(GRAPH, "bool", fill=False)


def field_of(key: str) -> Field:
    try:
        return FIELDS[key]
    except KeyError:
        raise KeyError(f"batch key {key!r} is not declared; declare it with zoo.graphs.batch.register_field") from None


def _fill(field: Field, n: int, like: np.ndarray) -> np.ndarray:
    shape = (n,) + like.shape[1:]
    if field.fill == "identity":
        return np.broadcast_to(np.eye(3, dtype=like.dtype), shape).copy()
    if field.fill == "unit_x":
        out = np.zeros(shape, dtype=like.dtype)
        out[:, 0] = 1
        return out
    return np.full(shape, field.fill, dtype=like.dtype)


class Batch(Mapping):
    """Graphs as one disjoint graph (see the module docstring): ``batch["senders"]``, ``batch.sizes``."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        for k in arrays:
            field_of(k)
        self._arrays = arrays

    # -- Mapping
    def __getitem__(self, key: str) -> np.ndarray:
        return self._arrays[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        return f"Batch({self.n_graphs} graphs ({self.n_real_graphs} real), sizes {self.sizes})"

    # -- what it holds
    @property
    def sets(self) -> list[str]:
        """The index sets present, "graph" first."""
        found = dict.fromkeys([GRAPH] + [field_of(k).set for k in self._arrays])
        return list(found)

    @property
    def sizes(self) -> dict[str, int]:
        """Number of elements (padding included) of every set."""
        out = {}
        for k, v in self._arrays.items():
            out.setdefault(field_of(k).set, int(v.shape[0]))
        return {s: out[s] for s in self.sets if s in out}

    @property
    def n_graphs(self) -> int:
        return int(self._arrays[mask_key(GRAPH)].shape[0])

    @property
    def n_real_graphs(self) -> int:
        return int(self._arrays[mask_key(GRAPH)].sum())

    def counts(self) -> dict[str, int]:
        """Number of *real* elements of every set (what padding must leave room for)."""
        return {s: int(self._arrays[mask_key(s)].sum()) for s in self.sets}

    def kinds(self) -> dict[str, str]:
        """{key: "float" | "int" | "bool"}: how a backend should type each array."""
        return {k: field_of(k).kind for k in self._arrays}

    # -- making batches
    @classmethod
    def collate(cls, graphs: Sequence[Any], y: np.ndarray | None = None) -> "Batch":
        """Concatenate graphs (objects with ``arrays() -> {key: array}``) into one disjoint graph."""
        if len(graphs) == 0:
            raise ValueError("cannot collate an empty list of graphs")
        per_graph = [g.arrays() for g in graphs]
        keys = list(per_graph[0])
        for i, a in enumerate(per_graph):
            if list(a) != keys:
                raise ValueError(f"graph {i} has fields {sorted(a)}, graph 0 has {sorted(keys)}: cannot batch different graph types")
        G = len(graphs)
        # elements of each set in each graph, from the first field of that set
        counts: dict[str, np.ndarray] = {}
        for k in keys:
            f = field_of(k)
            if f.set == GRAPH:
                continue
            n = np.array([len(a[k]) for a in per_graph], dtype=np.int64)
            if f.set in counts and not np.array_equal(counts[f.set], n):
                raise ValueError(f"field {k!r} disagrees with the other {f.set} fields on the number of {f.set}s per graph")
            counts.setdefault(f.set, n)
        offsets = {s: np.concatenate([[0], np.cumsum(n)[:-1]]) for s, n in counts.items()}
        offsets[GRAPH] = np.arange(G)
        out: dict[str, np.ndarray] = {}
        for k in keys:
            f = field_of(k)
            dtype = {"float": np.float64, "int": np.int64, "bool": bool}[f.kind]
            if f.set == GRAPH:
                out[k] = np.stack([np.asarray(a[k], dtype=dtype) for a in per_graph])
            elif f.points_to is not None:
                out[k] = np.concatenate([np.asarray(a[k], dtype=dtype) + o for a, o in zip(per_graph, offsets[f.points_to])])
            else:
                out[k] = np.concatenate([np.asarray(a[k], dtype=dtype) for a in per_graph])
        for s, n in counts.items():
            out[count_key(s)] = n
            out[graph_key(s)] = np.repeat(np.arange(G), n)
            out[mask_key(s)] = np.ones(int(n.sum()), dtype=bool)
        out[mask_key(GRAPH)] = np.ones(G, dtype=bool)
        if y is not None:
            y = np.asarray(y, dtype=np.float64)
            if y.shape[0] != G:
                raise ValueError(f"got {y.shape[0]} targets for {G} graphs")
            out["y"] = y
        return cls(out)

    def pad(self, sizes: Mapping[str, int]) -> "Batch":
        """The batch grown to ``sizes`` ({set: size}; sets not named keep their size). Every set that
        another points into needs one spare (padding) element; the graph set always does."""
        cur = self.sizes
        want = {s: int(sizes.get(s, cur[s])) for s in cur}
        targets = {field_of(k).points_to for k in self._arrays} - {None}
        for s, n in want.items():
            spare = 1 if (s in targets or s == GRAPH) else 0
            if n < cur[s] + spare:
                raise ValueError(f"padding sizes {want} too small for batch sizes {cur}: the {s} set needs "
                                 f"{cur[s] + spare} (one spare element to hold padding)" if spare else
                                 f"padding sizes {want} too small for batch sizes {cur}")
        out: dict[str, np.ndarray] = {}
        for k, v in self._arrays.items():
            f = field_of(k)
            extra = want[f.set] - cur[f.set]
            if extra == 0:
                out[k] = v
                continue
            if f.points_to is not None:
                fill = np.full((extra,) + v.shape[1:], want[f.points_to] - 1, dtype=v.dtype)
            else:
                fill = _fill(f, extra, v)
            out[k] = np.concatenate([v, fill])
        return Batch(out)


def collate(graphs: Sequence[Any], y: np.ndarray | None = None) -> Batch:
    """``Batch.collate``: concatenate graphs into one disjoint graph (no padding)."""
    return Batch.collate(graphs, y)


def bucket_size(n: int, per_octave: int = 4, minimum: int = 8) -> int:
    """Round ``n`` up to the next of ``per_octave`` geometrically spaced sizes per power of two.

    With 4 per octave the padding wastes at most 25 % and sizes in (64, 4096] map to 24 buckets;
    in practice a shuffled epoch with a fixed batch size hits 2–4 of them.
    """
    n = max(int(n), minimum)
    step = 2 ** max(int(math.floor(math.log2(n))) - int(math.log2(per_octave)), 0)
    return int(math.ceil(n / step) * step)


def pad_batch(batch: Batch, n_nodes: int | None = None, n_edges: int | None = None, n_graphs: int | None = None,
              per_octave: int = 4) -> Batch:
    """Pad nodes and edges to bucketed (or given) sizes and graphs to ``n_graphs`` (default G + 1).

    ``n_graphs`` should be the loader's batch size + 1, so that the last slot is always padding. Other
    index sets are rounded up to their own bucket sizes.
    """
    counts = batch.counts()
    sizes = {s: bucket_size(n + 1, per_octave) for s, n in counts.items() if s != GRAPH}
    sizes[GRAPH] = n_graphs if n_graphs is not None else counts[GRAPH] + 1
    if n_nodes is not None:
        sizes["node"] = n_nodes
    if n_edges is not None:
        sizes["edge"] = n_edges
    return batch.pad(sizes)


class BucketPolicy:
    """Padded sizes for a compiled backend: each batch's sets rounded up to bucket sizes, reusing an
    already compiled shape when it holds the batch with at most 2x padding in every set.

    Rounding each set independently gave a new shape almost every epoch on radius graphs, whose edge
    counts vary a lot (70 XLA compilations in a 40-epoch TFN run, until XLA's CPU compiler ran out of
    memory mappings); reusing covering shapes keeps it to a few. ``n_graphs`` is fixed (batch size + 1).
    """

    # relative cost of one element of a set in a step: edges dominate message passing
    WEIGHTS = {"node": 4.0}

    def __init__(self, n_graphs: int, headroom: float = 1.1):
        self.n_graphs = int(n_graphs)
        self.headroom = headroom
        self.shapes: list[dict[str, int]] = []  # the sizes handed out so far (each one compilation)

    def _need(self, batch: Batch) -> dict[str, int]:
        """Elements each index set (graphs aside) needs: its count plus one spare padding element."""
        counts = batch.counts()
        if counts[GRAPH] >= self.n_graphs:
            raise ValueError(f"{counts[GRAPH]} graphs in a batch, but batches hold at most {self.n_graphs - 1}")
        return {s: n + 1 for s, n in counts.items() if s != GRAPH}

    def sizes(self, batch: Batch) -> dict[str, int]:
        need = self._need(batch)
        fits = [sh for sh in self.shapes if set(sh) == set(need) | {GRAPH}
                and all(need[s] <= sh[s] <= 2 * need[s] for s in need)]
        if fits:
            return min(fits, key=lambda sh: sum(self.WEIGHTS.get(s, 1.0) * n for s, n in sh.items() if s != GRAPH))
        shape = {s: bucket_size(int(n * self.headroom) + 1) for s, n in need.items()}
        shape[GRAPH] = self.n_graphs
        self.shapes.append(shape)
        return shape

    def pad(self, batch: Batch) -> Batch:
        return batch.pad(self.sizes(batch))


class FixedPolicy(BucketPolicy):
    """One padded shape for every batch, training and inference alike, grown only when a batch does not fit.

    For short runs, where each XLA compilation (seconds to minutes for an equivariant network) costs more
    than the steps it would save on padding: a run compiles its training step and its prediction step
    about once each, instead of once per bucket (7-8 training and 4-5 prediction shapes in 2-3 epochs of
    the bench's TFN and pgnet). The first shape is the first batch's sizes times ``headroom``; a batch
    that no shape holds adds one ``growth`` times its own sizes, never smaller in any set than the last;
    every batch takes the smallest shape that holds it, however small the batch (a short last batch pays
    a full step: unlike ``BucketPolicy``, no shape is added for a batch that is too small). Batches of
    32-64 random crystals vary by ~10 % in atoms, but radius graphs' edge counts are heavy-tailed (the
    bench's TFN data: 188 +- 265 edges per crystal, up to 3008): with 1.5 and 1.25, the bench's runs
    compile 2 steps (CGCNN, CHGCNN, pgnet) or 5 (TFN) instead of 7-14, at 1.4-1.55x the real elements
    per step (the buckets: 1.25-1.3x), simulated on the loop's exact batch sequence.
    """

    def __init__(self, n_graphs: int, headroom: float = 1.5, growth: float = 1.25):
        super().__init__(n_graphs, headroom)
        self.growth = growth

    def sizes(self, batch: Batch) -> dict[str, int]:
        need = self._need(batch)
        fits = [sh for sh in self.shapes if set(sh) == set(need) | {GRAPH} and all(need[s] <= sh[s] for s in need)]
        if fits:  # the shapes only grow, so the first that holds the batch is the smallest
            return fits[0]
        largest = self.shapes[-1] if self.shapes else {}
        factor = self.growth if self.shapes else self.headroom
        shape = {s: max(bucket_size(int(n * factor) + 1), largest.get(s, 0)) for s, n in need.items()}
        shape[GRAPH] = self.n_graphs
        self.shapes.append(shape)
        return shape
