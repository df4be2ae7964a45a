"""Featurisation at scale: graphs of a large data set as a sharded on-disk cache, built in bounded memory.

``featurize_to_shards(source, n, spec, out)`` cuts the data set into chunks of ``chunk_size`` consecutive
structures; chunk k (structures ``[k c, (k+1) c)``) becomes shard k:

- ``shard-KKKKK.npz``: the graphs in ``zoo.graphs.cache``'s format (``save_graphs``: integer graph,
  float64 positions and lattices; edge vectors rebuilt on load, bit for bit);
- ``shard-KKKKK.json``: ids, structure hashes, per-graph node/edge counts, targets (optional) and
  failures. It is written *after* the ``.npz``, both atomically (``zoo.core.io``), so it marks a finished
  shard: a kill at any moment leaves every shard either complete or absent, and a restart skips the
  complete ones without recomputing them (``ShardReport.skipped``).
- ``plan.json`` (n, chunk size, spec) written first; a restart with another plan is refused, since its
  shards would mean other structures. ``manifest.json`` is written last, when every shard exists.

Streaming: ``source(start, stop)`` returns ``(ids, structures, targets or None)`` for one chunk and is
called *inside the worker process*, so no process ever holds more than ``workers`` chunks of structures
and graphs (the parent holds none); peak memory is O(workers x chunk_size), independent of ``n``.
``source`` must be picklable (a module-level function or a ``functools.partial`` of one).

Several graph kinds of the same structures (CGCNN's and TFN's, say): ``featurize_specs_to_shards(source, n,
{folder: spec, ...})`` reads each chunk once and builds every spec's shard from it in the same worker,
one folder per spec; a slow source (generating or parsing ~10-20 ms per structure, against ~1 ms for a
graph) is then paid once. Resuming is per folder and per shard.

Reading: ``ShardedGraphs(out)`` is a sequence of the successful graphs that keeps the compact arrays of at
most ``max_cached_shards`` shards in memory and decodes a graph when it is indexed; ``permutation(rng)``
is a shard-local shuffle (shards in random order, each shard's graphs in random order) that visits one
shard at a time, so a training epoch reads each shard once.

No pickle anywhere: ``.npz`` read with ``allow_pickle=False`` and JSON.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.core.io import write_json

from .builder import GraphSpec, build_graphs
from .cache import load_graphs, save_graphs
from .graph import CrystalGraph

log = logging.getLogger("zoo.graphs")

SHARD_FORMAT_VERSION = 1

Source = Callable[[int, int], tuple]  # (start, stop) -> (ids, structures, targets | None)


def shard_stem(directory: str | os.PathLike, k: int) -> Path:
    return Path(directory) / f"shard-{k:05d}"


@dataclass
class ShardReport:
    """What one ``featurize_to_shards`` call did: shards built now, shards found complete, rates."""

    n_shards: int
    built: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    n_graphs: int = 0  # graphs in the shards built by this call
    n_failures: int = 0
    seconds: float = 0.0  # wall time of this call
    source_seconds: float = 0.0  # sum over built shards of the time the source took (reading / generating)
    graph_seconds: float = 0.0  # sum over built shards of the time building graphs and writing them
    complete: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"n_shards": self.n_shards, "built": len(self.built), "skipped": len(self.skipped), "n_graphs": self.n_graphs,
                "n_failures": self.n_failures, "seconds": self.seconds, "source_seconds": self.source_seconds, "graph_seconds": self.graph_seconds, "complete": self.complete}


def _plan(n: int, chunk_size: int, spec: GraphSpec) -> dict[str, Any]:
    return {"format": SHARD_FORMAT_VERSION, "n": int(n), "chunk_size": int(chunk_size), "spec": repr(spec), "spec_key": spec.key()}


def _is_complete(directory: Path, k: int, plan: dict[str, Any]) -> bool:
    stem = shard_stem(directory, k)
    marker = stem.with_suffix(".json")
    if not (marker.is_file() and stem.with_suffix(".npz").is_file()):
        return False
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return meta.get("spec_key") == plan["spec_key"] and meta.get("start") == k * plan["chunk_size"]


def _build_shard(source: Source, targets: list[tuple[GraphSpec, str]], k: int, start: int, stop: int
                 ) -> tuple[int, float, list[tuple[int, int, float]]]:
    """Worker: read chunk k from the source once, build its graphs for every (spec, folder) of ``targets``
    and write shard k there; (k, seconds in the source, [(graphs, failures, seconds building and writing)
    per target])."""
    t0 = time.perf_counter()
    ids, structures, targets_y = source(start, stop)
    t_source = time.perf_counter() - t0
    ids = [str(i) for i in ids]
    if len(ids) != len(structures) or (targets_y is not None and len(targets_y) != len(ids)):
        raise ValueError(f"source({start}, {stop}) returned {len(ids)} ids, {len(structures)} structures and "
                         f"{'no' if targets_y is None else len(targets_y)} targets; they must be aligned")
    done = []
    for spec, directory in targets:
        t1 = time.perf_counter()
        graphs, failures = build_graphs(structures, spec, ids=ids, cache=False, progress=False, on_error="skip")
        ok = [g for g in graphs if g is not None]
        hashes = [g.meta["sha256"] for g in ok]
        stem = shard_stem(directory, k)
        save_graphs(stem.with_suffix(".npz"), ok, hashes, spec.key())
        keep = [i for i, g in enumerate(graphs) if g is not None]
        y = None if targets_y is None else np.asarray(targets_y, dtype=np.float64)[keep]
        write_json(stem.with_suffix(".json"), {
            "format": SHARD_FORMAT_VERSION, "spec_key": spec.key(), "start": start, "stop": stop,
            "ids": [ids[i] for i in keep], "sha256": hashes,
            "n_nodes": [g.n_nodes for g in ok], "n_edges": [g.n_edges for g in ok],
            "y": None if y is None else y.tolist(), "failures": failures,
        })
        del graphs, ok
        done.append((len(keep), len(failures), time.perf_counter() - t1))
    return k, t_source, done


def _open_plan(directory: Path, n: int, chunk_size: int, spec: GraphSpec) -> dict[str, Any]:
    """The folder's plan, written on first use; a folder holding another plan is refused."""
    directory.mkdir(parents=True, exist_ok=True)
    plan = _plan(n, chunk_size, spec)
    plan_path = directory / "plan.json"
    if plan_path.is_file():
        old = json.loads(plan_path.read_text())
        if old != plan:
            diff = sorted(k for k in plan if old.get(k) != plan[k])
            raise ValueError(f"{directory} holds shards of another plan (differs in {diff}: {[old.get(k) for k in diff]} "
                             f"there, {[plan[k] for k in diff]} now); use a new folder, or delete {directory} to start again")
    else:
        write_json(plan_path, plan)
    return plan


def featurize_to_shards(source: Source, n: int, spec: GraphSpec, out: str | os.PathLike, chunk_size: int = 1000,
                        workers: int = 1, progress: bool = True, on_shard: Callable[[int, ShardReport], None] | None = None
                        ) -> ShardReport:
    """Build the graphs of structures ``0..n-1`` of ``source`` into shards under ``out`` (see the module
    docstring); resumable: shards already complete are skipped. ``workers`` processes build shards in
    parallel (1: in this process). ``on_shard(k, report)`` after each shard this call builds."""
    hook = None if on_shard is None else (lambda k, reports: on_shard(k, reports[Path(out)]))
    return featurize_specs_to_shards(source, n, {out: spec}, chunk_size, workers, progress, hook)[Path(out)]


def featurize_specs_to_shards(source: Source, n: int, outputs: Mapping[str | os.PathLike, GraphSpec], chunk_size: int = 1000,
                              workers: int = 1, progress: bool = True,
                              on_shard: Callable[[int, dict[Path, ShardReport]], None] | None = None) -> dict[Path, ShardReport]:
    """``featurize_to_shards`` for several graph kinds of the same structures in one pass: ``outputs`` maps
    a folder to its spec (one shard folder per spec, each readable by ``ShardedGraphs``). Each chunk is
    read from ``source`` once and all its missing shards are built from it, so a slow source (parsing
    files, generating crystals) is paid once, not once per spec. Resumable per folder: chunk k is
    recomputed only for the folders where shard k is not complete. Returns one report per folder; a
    report's ``source_seconds`` counts the chunks it was built from (shared with the other folders)."""
    from tqdm.auto import tqdm

    folders = {Path(d): s for d, s in outputs.items()}
    if not folders:
        raise ValueError("outputs is empty: give at least one {folder: GraphSpec}")
    for directory, spec in folders.items():
        if spec.featurizer:
            raise ValueError(f"sharded featurisation stores plain graphs; spec {spec!r} for {directory} has featuriser "
                             f"{spec.featurizer!r} (build the plain graphs with GraphSpec(featurizer='') and featurise per batch)")
    if n < 0 or chunk_size < 1 or workers < 1:
        raise ValueError(f"need n >= 0, chunk_size >= 1 and workers >= 1; got n={n}, chunk_size={chunk_size}, workers={workers}")
    plans = {d: _open_plan(d, n, chunk_size, s) for d, s in folders.items()}

    n_shards = -(-n // chunk_size)
    reports = {d: ShardReport(n_shards) for d in folders}
    missing: dict[int, list[Path]] = {}  # chunk -> folders still lacking its shard
    for k in range(n_shards):
        for d in folders:
            if _is_complete(d, k, plans[d]):
                reports[d].skipped.append(k)
            else:
                missing.setdefault(k, []).append(d)
    for d, r in reports.items():
        if r.skipped:
            log.info("%s: %d of %d shards already complete, not recomputed", d, len(r.skipped), n_shards)
    t0 = time.perf_counter()
    n_done = sum(min(n, (k + 1) * chunk_size) - k * chunk_size for k in range(n_shards) if k not in missing)
    bar = tqdm(total=n, initial=n_done, unit="structure", desc=f"shards {', '.join(d.name for d in folders)}",
               disable=not progress)

    def done(result, dirs):
        k, t_source, per_target = result
        for d, (n_ok, n_fail, t_graphs) in zip(dirs, per_target):
            r = reports[d]
            r.built.append(k)
            r.n_graphs += n_ok
            r.n_failures += n_fail
            r.source_seconds += t_source
            r.graph_seconds += t_graphs
        bar.update(min(n, (k + 1) * chunk_size) - k * chunk_size)
        if on_shard is not None:
            on_shard(k, reports)

    jobs = [(k, k * chunk_size, min(n, (k + 1) * chunk_size), dirs) for k, dirs in missing.items()]
    if workers == 1:
        for k, a, b, dirs in jobs:
            done(_build_shard(source, [(folders[d], str(d)) for d in dirs], k, a, b), dirs)
    else:
        # spawn: a forked child would inherit the parent's threads and framework state (torch, jax).
        with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending: dict = {}
            for k, a, b, dirs in jobs:  # at most 2 x workers shards in flight: memory stays bounded
                if len(pending) >= 2 * workers:
                    finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for f in finished:
                        done(f.result(), pending.pop(f))
                pending[pool.submit(_build_shard, source, [(folders[d], str(d)) for d in dirs], k, a, b)] = dirs
            for f in cf.as_completed(list(pending)):
                done(f.result(), pending[f])
    bar.close()
    seconds = time.perf_counter() - t0
    for d, r in reports.items():
        r.seconds = seconds
        r.complete = all(_is_complete(d, k, plans[d]) for k in range(n_shards))
        if r.complete:
            write_json(d / "manifest.json", {**plans[d], "n_shards": n_shards})
    return reports


class ShardedGraphs(Sequence):
    """The successful graphs of a complete shard folder, decoded on access (see the module docstring).

    ``ids``, ``y`` (None without targets), ``n_nodes``, ``n_edges`` and ``failures`` are read from the
    small ``.json`` files up front; graphs stay on disk until indexed. ``max_cached_shards`` bounds how
    many shards' arrays are held at once (each holds ``chunk_size`` decoded graphs)."""

    def __init__(self, directory: str | os.PathLike, max_cached_shards: int = 2):
        self.directory = Path(directory)
        manifest = self.directory / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest} not found: the shard folder is incomplete; run featurize_to_shards "
                                    f"again with the same source and plan (it resumes) until it reports complete")
        self.plan = json.loads(manifest.read_text())
        self.max_cached_shards = max(1, int(max_cached_shards))
        self.ids: list[str] = []
        self.failures: dict[str, str] = {}
        ys, n_nodes, n_edges, offsets, self._hashes = [], [], [], [0], []
        for k in range(self.plan["n_shards"]):
            meta = json.loads(shard_stem(self.directory, k).with_suffix(".json").read_text())
            self.ids += meta["ids"]
            self.failures.update(meta["failures"])
            self._hashes.append(meta["sha256"])
            n_nodes += meta["n_nodes"]
            n_edges += meta["n_edges"]
            ys.append(meta["y"])
            offsets.append(offsets[-1] + len(meta["ids"]))
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.n_nodes, self.n_edges = np.asarray(n_nodes, dtype=np.int64), np.asarray(n_edges, dtype=np.int64)
        nonempty = [np.asarray(y, dtype=np.float64) for y, h in zip(ys, self._hashes) if len(h)]
        self.y = None if any(y is None for y in ys) or not nonempty else np.concatenate(nonempty)
        self._cache: OrderedDict[int, list[CrystalGraph]] = OrderedDict()
        self.shard_reads = 0  # shards decoded so far (a shard evicted and read again counts twice)

    def __len__(self) -> int:
        return len(self.ids)

    def _shard(self, k: int) -> list[CrystalGraph]:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        path = shard_stem(self.directory, k).with_suffix(".npz")
        graphs = load_graphs(path, self._hashes[k], self.plan["spec_key"])
        if graphs is None:
            raise ValueError(f"{path} is unreadable or does not match its .json; delete both files of shard {k} "
                             "and run featurize_to_shards again (it rebuilds only that shard)")
        for g, i in zip(graphs, self.ids[self.offsets[k] : self.offsets[k + 1]]):
            g.id = i
        self._cache[k] = graphs
        self.shard_reads += 1
        while len(self._cache) > self.max_cached_shards:
            self._cache.popitem(last=False)
        return graphs

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"graph {i} of {len(self)}")
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return self._shard(k)[i - self.offsets[k]]

    @property
    def hashes(self) -> list[str]:
        """Structure content hashes (``zoo.graphs.structure_hash``) of the graphs, in order."""
        return [h for part in self._hashes for h in part]

    def shard_of(self, index: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.offsets, np.asarray(index), side="right") - 1

    def permutation(self, rng: np.random.Generator, index: np.ndarray | None = None) -> np.ndarray:
        """Shard-local shuffle of ``index`` (default: every graph): shards in random order, the graphs of
        each shard in random order. Positions into ``index`` are returned."""
        index = np.arange(len(self)) if index is None else np.asarray(index)
        shard_rank = rng.permutation(len(self.offsets) - 1)[self.shard_of(index)]
        return np.lexsort((rng.random(len(index)), shard_rank))
