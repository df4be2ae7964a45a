"""Structures → ``CrystalGraph``s: the graph spec, one-structure and many-structure builders.

Rules (``GraphSpec.rule``):

- ``"cgcnn"``: neighbours within ``radius`` Å (8 Å in CGCNN), keeping the ``max_neighbors`` (12)
  nearest per centre. Ties at the cut are broken deterministically by distance (to 1e-8 Å), then
  neighbour index j, then image shift. Unlike the original CGCNN code, which pads an atom with fewer
  than 12 neighbours with fake ones (index 0, distance radius + 1), such an atom simply keeps fewer
  edges (the graph has a variable degree).
- ``"radius"``: every neighbour within ``radius`` Å.

An atom without any neighbour within ``radius`` cannot receive messages (its features would never
see the crystal), so it is an error that suggests a larger radius.

Frames (``GraphSpec.frame``): ``"input"`` keeps the structure as given; ``"standard"`` builds the graph
of its idealised standard primitive cell in the frame of its holohedry (``zoo.symmetry.standard``,
tolerance ``symprec`` Å) and records the rotation, for point-group equivariant models.

Featurisers (``GraphSpec.featurizer``): a model family whose graphs carry more index sets than nodes and
edges (the crystal hypergraph's triplets and motifs, ``zoo.graphs.hyper``) names a featuriser registered
with ``register_featurizer``; ``build_graphs`` builds (and caches) the plain graphs of the spec without
it, then hands them to the featuriser, which returns graphs with its extra fields and its own failures.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from zoo.symmetry.standard import HOLOHEDRIES, standardize

from .cache import arrays_hash, cache_path, load_graphs, save_graphs, structure_hash
from .graph import GRAPH_FORMAT_VERSION, CrystalGraph
from .neighbors import (
    NeighborListTooLarge,
    candidate_pairs,
    edge_geometry,
    nearest_edges,
    nearest_k,
    neighbor_list,
    sort_edges,
)
from .structures import (
    MAX_COORDINATE,
    MIN_DISTANCE,
    MIN_FLATNESS,
    MIN_VOLUME,
    StructureError,
    formula,
    screen,
    to_structure,
)

log = logging.getLogger("zoo.graphs")
LOG_EACH_FAILURE = 5  # skipped structures logged one by one, per call (see build_graphs)

RULES = ("cgcnn", "radius")
FRAMES = ("input", "standard")


@dataclass(frozen=True)
class GraphSpec:
    """How to connect a crystal: ``rule`` ("cgcnn" | "radius"), ``radius`` (Å), ``max_neighbors``.

    ``max_neighbors`` defaults to 12 for "cgcnn" and must be None for "radius" (all neighbours).
    ``frame``: "input" or "standard" (see the module docstring); ``symprec`` (Å) only matters for the latter.
    ``featurizer``: "" (plain graphs) or "<name>[:<options>]" of a featuriser registered with
    ``register_featurizer``, which adds index sets to every graph (the options are its own canonical string).
    """

    rule: str = "cgcnn"
    radius: float = 8.0
    max_neighbors: int | None = None
    frame: str = "input"
    symprec: float = 1e-3
    featurizer: str = ""

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"GraphSpec.rule must be one of {RULES}, got {self.rule!r}")
        if self.frame not in FRAMES:
            raise ValueError(f"GraphSpec.frame must be one of {FRAMES}, got {self.frame!r}")
        if not float(self.symprec) > 0:
            raise ValueError(f"GraphSpec.symprec must be a positive distance in Å, got {self.symprec!r}")
        object.__setattr__(self, "symprec", float(self.symprec))
        radius = float(self.radius)
        if not np.isfinite(radius) or radius <= 0:
            raise ValueError(f"GraphSpec.radius must be a positive number of Å, got {self.radius!r}")
        object.__setattr__(self, "radius", radius)
        if not isinstance(self.featurizer, str):
            raise ValueError(f"GraphSpec.featurizer must be a string ('' or '<name>[:<options>]'), got {self.featurizer!r}")
        k = self.max_neighbors
        if self.rule == "cgcnn":
            k = 12 if k is None else k
            if isinstance(k, bool) or int(k) != k or k < 1:
                raise ValueError(f"GraphSpec.max_neighbors must be a positive integer for rule 'cgcnn', got {k!r}")
            object.__setattr__(self, "max_neighbors", int(k))
        elif k is not None:
            raise ValueError(
                f"GraphSpec(rule='radius') keeps every neighbour within the radius; got max_neighbors={k!r}. "
                "Use rule='cgcnn' to keep only the nearest max_neighbors"
            )

    def key(self) -> str:
        """Stable, filesystem-safe key, e.g. ``g1-cgcnn-r8.0-k12`` (``g1`` = GRAPH_FORMAT_VERSION)."""
        k = "all" if self.max_neighbors is None else str(self.max_neighbors)
        frame = "" if self.frame == "input" else f"-std{self.symprec!r}"
        # The featuriser's options may hold any character: a short hash of them keeps the key a file name.
        fx = "" if not self.featurizer else (
            f"-{self.featurizer.split(':', 1)[0]}{hashlib.sha256(self.featurizer.encode()).hexdigest()[:12]}")
        return f"g{GRAPH_FORMAT_VERSION}-{self.rule}-r{self.radius!r}-k{k}{frame}{fx}"

    def meta(self) -> dict[str, Any]:
        out = {"rule": self.rule, "radius": self.radius, "max_neighbors": self.max_neighbors}
        if self.frame != "input":
            out.update(frame=self.frame, symprec=self.symprec)
        if self.featurizer:
            out.update(featurizer=self.featurizer)
        return out


# name -> featurize(graphs, failures, spec, *, ids, cache, progress, on_error) -> (graphs, failures): it gets
# the plain graphs of ``spec`` (None where a structure failed; ``failures`` names those) and returns them
# with its index sets added, in the same order, plus the failures (its own added).
Featurizer = Callable[..., tuple[list, dict[str, str]]]
FEATURIZERS: dict[str, Featurizer] = {}


def register_featurizer(name: str, featurize: Featurizer) -> Featurizer:
    """Make ``GraphSpec(featurizer="<name>[:<options>]")`` call ``featurize`` (see ``FEATURIZERS``)."""
    if not name.isidentifier():
        raise ValueError(f"featuriser name {name!r} must be an identifier (it appears in cache folder names)")
    old = FEATURIZERS.get(name)
    if old is not None and old is not featurize:
        raise ValueError(f"graph featuriser {name!r} is already registered ({old})")
    FEATURIZERS[name] = featurize
    return featurize


def _featurizer(spec: GraphSpec) -> Featurizer:
    name = spec.featurizer.split(":", 1)[0]
    try:
        return FEATURIZERS[name]
    except KeyError:
        raise ValueError(f"GraphSpec.featurizer={spec.featurizer!r}: no graph featuriser {name!r} is registered (known: "
                         f"{sorted(FEATURIZERS)}); import the module that registers it (zoo.graphs.register_featurizer)") from None


def _name(id: str, structure) -> str:
    return repr(id) if id else formula(structure)


def _graph_from_structure(structure, spec: GraphSpec, id: str = "") -> CrystalGraph:
    """Graph of an already validated structure (see ``to_structure``)."""
    frame = None
    if spec.frame == "standard":
        frame = standardize(structure, symprec=spec.symprec)
        structure = frame.to_structure()
    lattice = np.array(structure.lattice.matrix, dtype=np.float64)
    positions = np.array(structure.cart_coords, dtype=np.float64).reshape(-1, 3)
    numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
    try:
        i, j, shifts, vectors, distances = neighbor_list(lattice, positions, spec.radius)
    except NeighborListTooLarge as exc:  # refused before allocating: say which structure
        raise StructureError(f"structure {_name(id, structure)}: {exc}") from None
    if spec.max_neighbors is not None:
        keep = nearest_k(i, len(numbers), spec.max_neighbors)
        i, j, shifts, vectors, distances = i[keep], j[keep], shifts[keep], vectors[keep], distances[keep]
    degree = np.bincount(i, minlength=len(numbers))
    if np.any(degree == 0):
        lonely = np.flatnonzero(degree == 0)
        raise StructureError(
            f"structure {_name(id, structure)}: atom(s) {lonely[:10].tolist()} "
            f"({', '.join(structure[int(a)].specie.symbol for a in lonely[:10])}) have no neighbour within "
            f"{spec.radius} Å; use a larger radius (GraphSpec(radius=...)) or check the cell (isolated atom in vacuum?)"
        )
    return CrystalGraph(
        numbers=numbers, positions=positions, lattice=lattice, senders=j, receivers=i, shifts=shifts,
        edge_vectors=vectors, distances=distances, id=id, meta=spec.meta(),
        frame_rotation=None if frame is None else frame.rotation,
        frame_holohedry=None if frame is None else HOLOHEDRIES.index(frame.holohedry),
    )


# The screens below repeat to_structure's cell thresholds on many cells at once; a cell this close to a
# threshold (relative) takes the one-structure path, which decides (the screen only ever sends more there).
_SCREEN_MARGIN = 1e-9


def _graphs_at_once(items: list, ids: list[str], spec: GraphSpec, min_distance: float | None, progress: bool,
                    desc: str) -> list[CrystalGraph | None]:
    """Graphs of many structures with their checks run on all of them at once: the same graphs (same edges,
    order and bits) as ``to_structure`` + ``_graph_from_structure`` one by one, with ``meta["sha256"]`` set.

    Per structure only what must be: its arrays read in one pass over its sites (``structures.screen``) and
    the library's neighbour search (``neighbors.candidate_pairs``). The cell and coordinate checks, the
    overlap check (the pairs closer than ``min_distance`` are among the graph's candidate pairs, so there is
    no second search), the cut at the radius, the edge order, the nearest ``max_neighbors`` and the atoms
    without a neighbour are array operations over all pairs of all structures. A structure that any check
    refuses, or that the cheap reading cannot take (a CIF, a disordered site, ...), gets None: the caller
    runs it through the one-structure path, which raises its usual error (the message naming it). Input
    frame and ``min_distance`` within the radius only (``_at_once``).
    """
    from tqdm.auto import tqdm

    n = len(items)
    read: dict[int, tuple] = {}
    pairs: dict[int, tuple] = {}
    for k, obj in enumerate(tqdm(items, desc=desc, disable=not progress)):
        arrays = screen(obj)
        if arrays is None:
            continue
        try:  # refuses non-finite or far-away coordinates, a zero-volume cell, a search beyond the limits
            pairs[k] = candidate_pairs(arrays[0], arrays[1], spec.radius)
        except ValueError:  # ... which the one-structure path then names
            continue
        read[k] = arrays
    good = sorted(pairs)
    if not good:
        return [None] * n

    # to_structure's cell checks, on every cell at once (its coordinate checks are candidate_pairs' own).
    lattices = np.stack([read[k][0] for k in good])
    volume = np.abs(np.linalg.det(lattices))
    flat = np.prod(np.linalg.norm(lattices, axis=2), axis=1) * MIN_FLATNESS
    refused = (volume < MIN_VOLUME * (1 + _SCREEN_MARGIN)) | (volume < flat * (1 + _SCREEN_MARGIN))

    # All candidate pairs of all structures, with global atom indices (structure after structure).
    n_atoms = np.array([read[k][1].shape[0] for k in good], dtype=np.int64)
    node_start = np.concatenate([[0], np.cumsum(n_atoms)])
    owner = np.repeat(np.arange(len(good)), [pairs[k][0].shape[0] for k in good])  # index in ``good`` of each pair
    offset = node_start[:-1][owner]
    i = np.concatenate([pairs[k][0] for k in good]) + offset
    j = np.concatenate([pairs[k][1] for k in good]) + offset
    shifts = np.concatenate([pairs[k][2] for k in good])
    positions = np.concatenate([read[k][1] for k in good])
    vectors, distances = edge_geometry(positions, lattices, j, i, shifts, owner)
    # One index into the pairs, narrowed step by step (cut, order, nearest), gathers the edges once at the end.
    idx = np.flatnonzero((distances <= spec.radius) & ~((i == j) & ~shifts.any(axis=1)))
    if min_distance:
        refused[owner[idx[distances[idx] < min_distance]]] = True  # overlapping atoms
    # Ordered by global centre index, the pairs of a structure stay together, in neighbor_list's order.
    if spec.max_neighbors is None:
        idx = idx[sort_edges(i[idx], j[idx], shifts[idx], distances[idx])]
    else:
        idx = idx[nearest_edges(i[idx], j[idx], shifts[idx], distances[idx], int(node_start[-1]), spec.max_neighbors)]
    lonely = np.bincount(i[idx], minlength=int(node_start[-1])) == 0  # an atom without a neighbour
    refused[np.repeat(np.arange(len(good)), n_atoms)[lonely]] = True
    owner = owner[idx]
    local = node_start[:-1][owner]
    i, j, shifts, vectors, distances = i[idx] - local, j[idx] - local, shifts[idx], vectors[idx], distances[idx]
    edge_start = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=len(good)))]).tolist()

    graphs: list[CrystalGraph | None] = [None] * n
    meta = spec.meta()
    for g, k in enumerate(good):
        if refused[g]:
            continue
        lattice, pos, frac, numbers = read[k]
        e = slice(edge_start[g], edge_start[g + 1])
        graphs[k] = CrystalGraph(
            numbers=numbers, positions=pos, lattice=lattice, senders=j[e], receivers=i[e], shifts=shifts[e],
            edge_vectors=vectors[e], distances=distances[e], id=ids[k],
            meta={**meta, "sha256": arrays_hash(lattice, numbers, frac)},
        )
    return graphs


def _cached_at_once(items: list, ids: list[str], spec: GraphSpec, min_distance: float | None,
                    root) -> list[CrystalGraph] | None:
    """A cache hit with ``to_structure``'s checks run on all structures at once, or None: the caller then
    takes the one-by-one path, which decides and names (a miss, a structure that the cheap reading cannot
    take, one that a check refuses or that is within ``_SCREEN_MARGIN`` of a threshold, one that failed
    when cached). Input frame and ``min_distance`` within the radius only (``_at_once``).

    The overlap check needs no neighbour search here: every atom's nearest neighbour within the radius is
    one of its edges (all pairs within the radius, or its nearest ``max_neighbors``), and the cached edges
    are those of exactly these structures (the key hashes their content), so the shortest edge of a graph
    is its shortest interatomic distance whenever that is within the radius."""
    read = [screen(obj) for obj in items]
    if not read or any(r is None for r in read):
        return None
    lattices = np.stack([r[0] for r in read])
    positions = np.concatenate([r[1] for r in read])
    if not (np.isfinite(lattices).all() and np.isfinite(positions).all()
            and np.abs(positions).max(initial=0.0) <= MAX_COORDINATE):
        return None
    volume = np.abs(np.linalg.det(lattices))
    flat = np.prod(np.linalg.norm(lattices, axis=2), axis=1) * MIN_FLATNESS
    if ((volume < MIN_VOLUME * (1 + _SCREEN_MARGIN)) | (volume < flat * (1 + _SCREEN_MARGIN))).any():
        return None
    hashes = [arrays_hash(lattice, numbers, frac) for lattice, _, frac, numbers in read]
    graphs = load_graphs(cache_path(hashes, spec.key(), root), hashes, spec.key(), meta=spec.meta())
    if graphs is None or any(g is None for g in graphs):
        return None
    if min_distance:
        n_edges = np.array([g.n_edges for g in graphs])
        if not n_edges.all():  # an atom without a neighbour is never cached as a graph; reduceat needs edges
            return None
        shortest = np.minimum.reduceat(np.concatenate([g.distances for g in graphs]), np.cumsum(n_edges) - n_edges)
        if (shortest < min_distance * (1 + _SCREEN_MARGIN)).any():
            return None
    for g, id in zip(graphs, ids):
        g.id = id
    return graphs


def _at_once(spec: GraphSpec, min_distance: float | None) -> bool:
    """Whether ``_graphs_at_once`` can build graphs of ``spec``: in the input frame (the standard frame
    needs a symmetry analysis per structure), with an overlap threshold the graph's own search covers."""
    return spec.frame == "input" and (not min_distance or min_distance <= spec.radius)


def build_graph(structure, spec: GraphSpec | None = None, id: str = "", min_distance: float | None = MIN_DISTANCE) -> CrystalGraph:
    """Crystal graph of one structure (anything ``to_structure`` reads); raises ``StructureError``."""
    spec = GraphSpec() if spec is None else spec
    if spec.featurizer:
        graphs, _ = build_graphs([structure], spec, ids=[id], cache=False, progress=False, on_error="raise", min_distance=min_distance)
        return graphs[0]
    return _graph_from_structure(to_structure(structure, id=id, min_distance=min_distance), spec, id)


def build_graphs(
    structures: Iterable,
    spec: GraphSpec | None = None,
    ids: Sequence | None = None,
    cache: bool | str = True,
    progress: bool = True,
    on_error: str = "raise",
    min_distance: float | None = MIN_DISTANCE,
) -> tuple[list[CrystalGraph | None], dict[str, str]]:
    """Graphs of many structures, aligned with the input, and ``{id: message}`` of the failures.

    ``ids`` default to the positions "0", "1", ...; ``cache`` is True (default folder, see
    ``zoo.graphs.cache``), False, or a cache root folder. ``on_error="raise"`` raises the first
    ``StructureError``; ``"skip"`` puts None in the list, records and logs the message, and carries on,
    so one bad structure never loses the others.
    """
    from tqdm.auto import tqdm

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    spec = GraphSpec() if spec is None else spec
    items = list(structures)
    n = len(items)
    ids = [str(k) for k in range(n)] if ids is None else [str(x) for x in ids]
    if len(ids) != n:
        raise ValueError(f"got {len(ids)} ids for {n} structures")
    if spec.featurizer:  # the plain graphs (cached as usual), then the featuriser's index sets
        featurize = _featurizer(spec)
        graphs, failures = build_graphs(items, dataclasses.replace(spec, featurizer=""), ids=ids, cache=cache,
                                        progress=progress, on_error=on_error, min_distance=min_distance)
        return featurize(graphs, failures, spec, ids=ids, cache=cache, progress=progress, on_error=on_error)
    graphs: list[CrystalGraph | None] = [None] * n
    failures: dict[str, str] = {}

    def fail(k: int, exc: Exception) -> None:
        if on_error == "raise":
            raise exc
        msg = str(exc) if isinstance(exc, StructureError) else f"structure {ids[k]!r}: {type(exc).__name__}: {exc}"
        failures[ids[k]] = msg
        # A data set with many bad structures (2.4 % of generated crystals have an atom with no neighbour
        # within a 5 Å radius) would bury the log: the first few are named, then the count; every
        # message stays in the returned failures (a run writes them to failures.json).
        if len(failures) <= LOG_EACH_FAILURE:
            log.warning("skipping %s", msg)
        elif len(failures) == LOG_EACH_FAILURE + 1:
            log.warning("skipping %s; further skipped structures are not logged one by one", msg)

    def build(k: int, structure) -> CrystalGraph | None:
        try:
            return _graph_from_structure(structure, spec, ids[k])
        except Exception as exc:
            fail(k, exc)
            return None

    desc = f"graphs {spec.rule} r={spec.radius:g}" + (f" k={spec.max_neighbors}" if spec.max_neighbors else "")
    if not cache:
        fast = _graphs_at_once(items, ids, spec, min_distance, progress, desc) if _at_once(spec, min_distance) else None
        for k, obj in enumerate(tqdm(items, desc=desc, disable=not progress or fast is not None)):
            if fast is not None and fast[k] is not None:
                graphs[k] = fast[k]
                continue
            try:
                structure = to_structure(obj, id=ids[k], min_distance=min_distance)
            except Exception as exc:
                fail(k, exc)
                continue
            graphs[k] = g = build(k, structure)
            if g is not None:
                g.meta["sha256"] = structure_hash(structure)
        return graphs, failures

    root = None if cache is True else cache
    hit = _cached_at_once(items, ids, spec, min_distance, root) if _at_once(spec, min_distance) else None
    if hit is not None:
        log.info("loaded %d graphs from the cache (checks at once)", len(hit))
        return hit, failures
    # With a cache, read and hash everything first: the file is keyed by the whole data set.
    valid: list[int] = []
    structures_ok: list = []
    hashes: list[str] = []
    for k, obj in enumerate(tqdm(items, desc="reading structures", disable=not progress)):
        try:
            structure = to_structure(obj, id=ids[k], min_distance=min_distance)
        except Exception as exc:
            fail(k, exc)
            continue
        valid.append(k)
        structures_ok.append(structure)
        hashes.append(structure_hash(structure))
    path = cache_path(hashes, spec.key(), root)
    cached = load_graphs(path, hashes, spec.key(), meta=spec.meta())
    if cached is not None:
        for k, structure, g in zip(valid, structures_ok, cached):
            if g is None:  # failed when cached (e.g. an isolated atom): rebuild so the message names this id
                g = build(k, structure)
            else:
                g.id = ids[k]
            graphs[k] = g
        log.info("loaded %d graphs from %s", len(cached), path)
        return graphs, failures

    built: list[CrystalGraph | None] = []
    for k, structure, h in zip(valid, tqdm(structures_ok, desc=desc, disable=not progress), hashes):
        g = build(k, structure)  # raises with on_error="raise": nothing is cached then
        if g is not None:
            g.meta["sha256"] = h
        graphs[k] = g
        built.append(g)
    try:
        save_graphs(path, built, hashes, spec.key())
    except OSError as exc:  # a read-only or full disk must not lose the computed graphs
        log.warning("could not write graph cache %s (%s); continuing without it", path, exc)
    return graphs, failures
