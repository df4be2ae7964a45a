"""The crystal hypergraph (CHGCNN: Heilman, Gong & Yan, arXiv 2411.12616): bonds, triplets and motifs.

A ``HyperGraph`` is a ``CrystalGraph`` (its edges are the *bond* hyperedges, two atoms each) with more
index sets, registered as batch fields so that ``Batch.collate`` and padding need no new code:

==================  ============  ========================================================================
key                 set           meaning
==================  ============  ========================================================================
triplet_bond_a/_b   triplet       the two bonds (edges, same centre = receiver) of a triplet hyperedge
                                  {centre, neighbour a, neighbour b}; its feature is the bond angle,
                                  computed by the model from the two edge vectors
motif_center        motif         the centre atom of a motif (local-environment) hyperedge
motif_features      motif         (M, F) shape of the coordination shell (``zoo.graphs.motifs``)
motif_member_node   motif_member  atom of each (motif, member) incidence: the centre, then its shell
motif_member_motif  motif_member  motif of each incidence
motif_pair_origin   motif_pair    two incidences of one motif (origin != remote), for the inter-order
motif_pair_remote   motif_pair    ("relatives") convolution: the origin atom hears the remote one
==================  ============  ========================================================================

Which sets a graph has is decided by its ``HyperSpec``, written into ``GraphSpec.featurizer`` as
``"hyper:triplets=6,motifs=crystalnn,motif_features=lsop+csm,motif_pairs=0"`` (``HyperSpec.to_string``).

**Triplets** (numpy, cheap, rebuilt on every call): every pair of a centre's bonds among its
``triplets`` shortest, *and every bond tied with the k-th shortest* (within ``TIE_TOL`` Å), so the set
depends on the crystal, not on the order of its atoms (cutting a shell of equal bonds by atom index
would make the angles, and the model, change with a permutation). When the graph's own neighbour cut
(``max_neighbors``) splits that shell, the whole shell is left out, for the same reason.

**Motifs** (``zoo.graphs.motifs``: CrystalNN shells, order parameters, ChemEnv measures) cost about a
second per structure, so they are computed in worker processes (``ZOO_FEATURIZE_JOBS``, default every
core) with a progress bar, and cached: ``<cache root>/hyper/<motif options>/<data set key>.npz``,
keyed by the exact bytes of every graph's lattice, numbers and positions, written atomically
(``zoo.core.io.atomic_path``) and checked on load (a mismatched or unreadable file is recomputed). A new set
takes the structures that other cached sets of the same options already hold (by content hash: another
fold's training set shares most of them) and computes only the rest.
A site whose shell or features cannot be computed takes a documented fallback (``motifs`` module),
counted in ``graph.meta["motif_status"]`` and logged, never a crash.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.core.io import atomic_path
from zoo.core.paths import cache_root

from . import motifs as mt
from .batch import Field, register_field
from .builder import GraphSpec, register_featurizer
from .graph import CrystalGraph
from .neighbors import neighbor_list

log = logging.getLogger("zoo.graphs")

NAME = "hyper"
HYPER_FORMAT_VERSION = 1  # layout of the motif cache below; bump on any change of what it holds
TIE_TOL = 1e-6  # Å: bonds this close in length count as one shell (rotating a cell moves lengths by ~1e-14 Å)
JOBS_VARIABLE = "ZOO_FEATURIZE_JOBS"
MIN_POOL = 16  # fewer structures are computed in-process: starting "spawn" workers costs seconds (they import pymatgen)

register_field("triplet_bond_a", Field("triplet", "int", points_to="edge"))
register_field("triplet_bond_b", Field("triplet", "int", points_to="edge"))
register_field("motif_center", Field("motif", "int", points_to="node"))
register_field("motif_features", Field("motif", "float"))
register_field("motif_member_node", Field("motif_member", "int", points_to="node"))
register_field("motif_member_motif", Field("motif_member", "int", points_to="motif"))
register_field("motif_pair_origin", Field("motif_pair", "int", points_to="motif_member"))
register_field("motif_pair_remote", Field("motif_pair", "int", points_to="motif_member"))


@dataclass(frozen=True)
class HyperSpec:
    """Which hyperedges a graph gets besides its bonds (the options of ``GraphSpec.featurizer``).

    ``triplets``: triplets among each centre's ``triplets`` shortest bonds (and those tied with the
    last), 0 = none. ``motifs``: "none", or the shell method ("crystalnn", falling back per site to
    MinimumDistanceNN; "mindist"). ``motif_features``: "lsop+csm", "lsop" or "csm". ``motif_pairs``:
    also list the (origin, remote) member pairs of every motif, for the inter-order convolution.
    """

    triplets: int = 0
    motifs: str = "none"
    motif_features: str = "lsop+csm"
    motif_pairs: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.triplets, bool) or int(self.triplets) != self.triplets or self.triplets < 0:
            raise ValueError(f"HyperSpec.triplets must be a number of bonds >= 0 (0: no triplets), got {self.triplets!r}")
        object.__setattr__(self, "triplets", int(self.triplets))
        if self.motifs != "none":
            mt.check_options(self.motifs, self.motif_features)
        if self.motif_pairs and self.motifs == "none":
            raise ValueError("HyperSpec.motif_pairs needs motifs (motifs='crystalnn' or 'mindist')")
        object.__setattr__(self, "motif_pairs", bool(self.motif_pairs))

    @property
    def any(self) -> bool:
        return self.triplets > 0 or self.motifs != "none"

    @property
    def motif_fea_len(self) -> int:
        return len(mt.feature_names(self.motif_features)) if self.motifs != "none" else 0

    def to_string(self) -> str:
        """The canonical ``GraphSpec.featurizer`` string (every option, fixed order)."""
        return (f"{NAME}:triplets={self.triplets},motifs={self.motifs},motif_features={self.motif_features},"
                f"motif_pairs={int(self.motif_pairs)}")

    @classmethod
    def from_string(cls, text: str) -> "HyperSpec":
        name, _, options = text.partition(":")
        if name != NAME:
            raise ValueError(f"not a hypergraph featuriser string: {text!r} (expected '{NAME}:...')")
        kwargs: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}
        for item in filter(None, options.split(",")):
            key, sep, value = item.partition("=")
            if not sep or key not in known:
                raise ValueError(f"featuriser option {item!r} in {text!r}: expected KEY=VALUE with KEY one of {sorted(known)}")
            kwargs[key] = int(value) if key in ("triplets", "motif_pairs") else value
        return cls(**kwargs)

    def motif_key(self) -> str:
        """Cache folder of the motifs: the options and a hash of the feature columns (a change of
        ``zoo.graphs.motifs``' lists is a new key, never a misread file)."""
        columns = hashlib.sha256("\n".join(mt.feature_names(self.motif_features)).encode()).hexdigest()[:8]
        return f"h{HYPER_FORMAT_VERSION}-{self.motifs}-{self.motif_features}-{columns}"


@dataclass
class HyperGraph(CrystalGraph):
    """A crystal graph with the hypergraph's index sets (module docstring) in ``hyper``."""

    hyper: dict[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        return {**super().arrays(), **self.hyper}

    @classmethod
    def of(cls, graph: CrystalGraph, hyper: dict[str, np.ndarray]) -> "HyperGraph":
        return cls(**graph.fields_copy(), hyper=hyper)


# ------------------------------------------------------------------------------------------ triplets
def triplet_bonds(graph: CrystalGraph, spec: GraphSpec, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Edge pairs (a, b), a < b, of every triplet of ``graph`` (see the module docstring), by centre.

    The graph's edges of a centre are the first ones of its full neighbour list within the radius
    (``zoo.graphs.builder``), so that list tells whether the graph's cut split the k-th shell."""
    n = graph.n_nodes
    recv = np.asarray(graph.receivers)
    deg = np.bincount(recv, minlength=n)
    start = np.concatenate([[0], np.cumsum(deg)[:-1]])
    d = np.asarray(graph.distances)
    full = None
    if spec.max_neighbors is not None and np.any(deg >= spec.max_neighbors):
        i_full, _, _, _, d_full = neighbor_list(graph.lattice, graph.positions, spec.radius)
        full = (np.concatenate([[0], np.cumsum(np.bincount(i_full, minlength=n))[:-1]]), d_full, np.bincount(i_full, minlength=n))
    use = np.zeros(n, dtype=np.int64)  # bonds of each centre that take part in triplets
    for i in range(n):
        m = int(deg[i])
        kk = min(k, m)
        if kk < 2:
            continue
        di = d[start[i]: start[i] + m]
        if full is None:
            dall = di
        else:
            s0, d_full, cnt = full
            dall = d_full[s0[i]: s0[i] + cnt[i]]
        cut = dall[kk - 1]
        c = int(np.sum(dall <= cut + TIE_TOL))  # the k-th shell, complete
        use[i] = c if c <= m else int(np.sum(dall < cut - TIE_TOL))  # the graph cut that shell: leave it out
    pairs_a, pairs_b = [], []
    for m in np.unique(use[use >= 2]):
        a, b = np.triu_indices(int(m), 1)
        centres = np.flatnonzero(use == m)
        pairs_a.append((start[centres][:, None] + a[None, :]).ravel())
        pairs_b.append((start[centres][:, None] + b[None, :]).ravel())
    if not pairs_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, b = np.concatenate(pairs_a), np.concatenate(pairs_b)
    order = np.lexsort((b, a))  # by centre (edges are sorted by receiver), then by bond
    return a[order].astype(np.int64), b[order].astype(np.int64)


def motif_pairs(member_motif: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair (origin, remote) of distinct incidences of one motif (incidences grouped by motif)."""
    counts = np.bincount(member_motif) if member_motif.size else np.zeros(0, np.int64)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    origin, remote = [], []
    for m in np.unique(counts[counts >= 2]):
        p, q = np.nonzero(~np.eye(int(m), dtype=bool))
        motifs = np.flatnonzero(counts == m)
        origin.append((start[motifs][:, None] + p[None, :]).ravel())
        remote.append((start[motifs][:, None] + q[None, :]).ravel())
    if not origin:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    o, r = np.concatenate(origin), np.concatenate(remote)
    order = np.lexsort((r, o))
    return o[order], r[order]


# ------------------------------------------------------------------------------------------ motifs
def _content_hash(g: CrystalGraph) -> str:
    h = hashlib.sha256(b"crystal-zoo motif input v1\0")
    for a in (np.asarray(g.lattice, "<f8"), np.asarray(g.numbers, "<i8"), np.asarray(g.positions, "<f8")):
        h.update(np.int64(a.size).tobytes())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def motif_cache_path(hashes: Sequence[str], hspec: HyperSpec, root: str | os.PathLike | None = None) -> Path:
    h = hashlib.sha256(f"{hspec.motif_key()}\0".encode())
    for s in hashes:
        h.update(s.encode())
    return Path(root if root is not None else cache_root()) / "hyper" / hspec.motif_key() / f"{h.hexdigest()}.npz"


def _save_motifs(path: Path, hashes: Sequence[str], hspec: HyperSpec, results: Sequence[dict]) -> None:
    n_nodes = np.array([len(r["status"]) for r in results], dtype=np.int64)
    n_members = np.array([len(r["member_node"]) for r in results], dtype=np.int64)
    width = hspec.motif_fea_len
    arrays = {
        "format": np.array(HYPER_FORMAT_VERSION), "key": np.array(hspec.motif_key()), "hashes": np.array(list(hashes), dtype="U64"),
        "node_offsets": np.concatenate([[0], np.cumsum(n_nodes)]), "member_offsets": np.concatenate([[0], np.cumsum(n_members)]),
        "member_node": np.concatenate([r["member_node"] for r in results]) if results else np.zeros(0, np.int64),
        "member_motif": np.concatenate([r["member_motif"] for r in results]) if results else np.zeros(0, np.int64),
        "features": np.concatenate([r["features"] for r in results]) if results else np.zeros((0, width)),
        "status": np.concatenate([r["status"] for r in results]) if results else np.zeros(0, np.int64),
        "seconds": np.array([[r["seconds"][k] for k in ("nn", "lsop", "csm")] for r in results], dtype=np.float64).reshape(-1, 3),
        "reason": np.array([r["reason"][:300] for r in results], dtype="U300"),
    }
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _read_motif_file(path: Path, hspec: HyperSpec) -> tuple[list[str], list[dict]] | None:
    """(hashes, results) of one motif cache file, or None (with a warning) when it is unreadable or of another
    format or key."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        if int(data["format"]) != HYPER_FORMAT_VERSION or str(data["key"]) != hspec.motif_key():
            log.warning("motif cache %s does not match its key; not using it", path)
            return None
    except Exception as exc:  # truncated / corrupt: recompute rather than fail
        log.warning("motif cache %s is unreadable (%s: %s); not using it", path, type(exc).__name__, exc)
        return None
    hashes = data["hashes"].tolist()
    no, mo = data["node_offsets"], data["member_offsets"]
    out = []
    for k in range(len(hashes)):
        out.append({"member_node": data["member_node"][mo[k]: mo[k + 1]], "member_motif": data["member_motif"][mo[k]: mo[k + 1]],
                    "features": data["features"][no[k]: no[k + 1]], "status": data["status"][no[k]: no[k + 1]],
                    "seconds": dict(zip(("nn", "lsop", "csm"), data["seconds"][k].tolist())), "reason": str(data["reason"][k])})
    return hashes, out


def _load_motifs(path: Path, hashes: Sequence[str], hspec: HyperSpec) -> list[dict] | None:
    if not path.is_file():
        return None
    read = _read_motif_file(path, hspec)
    if read is None:
        return None
    if read[0] != list(hashes):
        log.warning("motif cache %s does not match its key; recomputing it", path)
        return None
    return read[1]


def _reuse_motifs(directory: Path, wanted: set[str], hspec: HyperSpec, skip: Path) -> dict[str, dict]:
    """Results of the ``wanted`` structures (by content hash) found in the other cached sets of the same motif
    options. A fold's training set and another fold's share most structures; each costs ~1 CPU-s to
    featurise, so a new set computes only the structures no cached set has. Unreadable files are skipped, and
    so is ``skip`` (the set's own file, which was just found absent, unreadable or stale)."""
    found: dict[str, dict] = {}
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.npz")):
        if len(found) == len(wanted):
            break
        if path == skip:
            continue
        read = _read_motif_file(path, hspec)
        if read is None:
            continue
        for h, r in zip(*read):
            if h in wanted and h not in found:
                found[h] = r
    return found


def _worker(args: tuple) -> dict:
    lattice, numbers, positions, nn, features = args
    return mt.structure_motifs(lattice, numbers, positions, nn=nn, features=features)


def default_jobs() -> int:
    env = os.environ.get(JOBS_VARIABLE)
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"{JOBS_VARIABLE}={env!r}: expected a positive number of worker processes")
        return int(env)
    return os.cpu_count() or 1


def compute_motifs(graphs: Sequence[CrystalGraph], hspec: HyperSpec, progress: bool = True, jobs: int | None = None) -> list[dict]:
    """``zoo.graphs.motifs.structure_motifs`` of every graph, in worker processes (``spawn``: safe
    next to threaded torch / jax) when there are several graphs and ``jobs`` > 1."""
    from tqdm.auto import tqdm

    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    tasks = [(g.lattice, g.numbers, g.positions, hspec.motifs, hspec.motif_features) for g in graphs]
    desc = f"motifs ({hspec.motifs}, {hspec.motif_features})"
    if jobs == 1 or len(tasks) < MIN_POOL:
        return [_worker(t) for t in tqdm(tasks, desc=desc, disable=not progress)]
    import concurrent.futures as cf
    import multiprocessing as mp

    try:
        with cf.ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=mp.get_context("spawn")) as pool:
            # chunksize 1: structures cost from milliseconds to tens of seconds, so hand them out one by one
            return list(tqdm(pool.map(_worker, tasks, chunksize=1), total=len(tasks), desc=desc, disable=not progress))
    except (cf.process.BrokenProcessPool, RuntimeError) as exc:
        # "spawn" workers import the caller's main module; a script without an ``if __name__ == "__main__":``
        # guard makes them fail. The work itself is fine: do it here.
        log.warning("motif worker processes failed (%s: %s); computing the motifs in this process instead. A script "
                    "that builds hypergraphs needs an `if __name__ == \"__main__\":` guard for worker processes (or "
                    "set %s=1)", type(exc).__name__, str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "", JOBS_VARIABLE)
        return [_worker(t) for t in tqdm(tasks, desc=desc, disable=not progress)]


def motif_arrays(result: dict, with_pairs: bool) -> dict[str, np.ndarray]:
    """The batch fields of one graph's motifs (motif k is centred on atom k)."""
    n = len(result["status"])
    out = {
        "motif_center": np.arange(n, dtype=np.int64),
        "motif_features": np.asarray(result["features"], dtype=np.float64).reshape(n, -1),
        "motif_member_node": np.asarray(result["member_node"], dtype=np.int64),
        "motif_member_motif": np.asarray(result["member_motif"], dtype=np.int64),
    }
    if with_pairs:
        out["motif_pair_origin"], out["motif_pair_remote"] = motif_pairs(out["motif_member_motif"])
    return out


# ------------------------------------------------------------------------------------------ featuriser
def featurize(graphs: list, failures: dict[str, str], spec: GraphSpec, *, ids: Sequence[str], cache: bool | str = True,
              progress: bool = True, on_error: str = "raise") -> tuple[list, dict[str, str]]:
    """The ``hyper`` featuriser (``zoo.graphs.register_featurizer``): plain graphs -> ``HyperGraph``s."""
    hspec = HyperSpec.from_string(spec.featurizer)
    failures = dict(failures)
    out: list = [None] * len(graphs)
    real = [k for k, g in enumerate(graphs) if g is not None]
    results: list[dict | None] = [None] * len(graphs)
    if hspec.motifs != "none" and real:
        hashes = [_content_hash(graphs[k]) for k in real]
        path = None if cache is False else motif_cache_path(hashes, hspec, None if cache is True else cache)
        found = _load_motifs(path, hashes, hspec) if path is not None else None
        if found is None:
            known = _reuse_motifs(path.parent, set(hashes), hspec, skip=path) if path is not None else {}
            missing = [i for i, h in enumerate(hashes) if h not in known]
            t0 = time.perf_counter()
            computed = compute_motifs([graphs[real[i]] for i in missing], hspec, progress=progress) if missing else []
            known.update(zip((hashes[i] for i in missing), computed))
            found = [known[h] for h in hashes]
            log.info("motifs of %d structures: %d from other cached sets, %d computed in %.1f s",
                     len(real), len(real) - len(missing), len(missing), time.perf_counter() - t0)
            if path is not None:
                try:
                    _save_motifs(path, hashes, hspec, found)
                except OSError as exc:  # a read-only or full disk must not lose the computed motifs
                    log.warning("could not write motif cache %s (%s); continuing without it", path, exc)
        for k, r in zip(real, found):
            results[k] = r
    flagged = 0
    for k in real:
        g = graphs[k]
        hyper: dict[str, np.ndarray] = {}
        if hspec.triplets:
            hyper["triplet_bond_a"], hyper["triplet_bond_b"] = triplet_bonds(g, spec, hspec.triplets)
        meta = {}
        if results[k] is not None:
            r = results[k]
            hyper.update(motif_arrays(r, hspec.motif_pairs))
            status = np.asarray(r["status"])
            counts = {name: int(np.sum(status & bit > 0)) for bit, name in mt.STATUS_NAMES.items() if np.any(status & bit)}
            meta["motif_status"] = counts
            meta["motif_seconds"] = dict(r["seconds"])  # when computed (a cache hit keeps the first timing)
            if counts:
                flagged += 1
                log.info("structure %s: motif fallbacks %s%s", ids[k], counts, f" ({r['reason']})" if r["reason"] else "")
        h = HyperGraph.of(g, hyper)
        h.meta.update(spec.meta(), **meta)
        out[k] = h
    if flagged:
        log.warning("%d of %d structures have motifs with a fallback (graph.meta['motif_status']; see zoo.graphs.motifs)", flagged, len(real))
    return out, failures


register_featurizer(NAME, featurize)


def status_summary(graphs: Sequence) -> dict[str, int]:
    """Motifs per fallback kind over ``graphs`` (``zoo.graphs.motifs.STATUS_NAMES``)."""
    total: dict[str, int] = {}
    for g in graphs:
        for k, v in (getattr(g, "meta", {}) or {}).get("motif_status", {}).items():
            total[k] = total.get(k, 0) + v
    return total

