"""The sharded graph cache (``zoo.graphs.shards``): same graphs as ``build_graphs``, resumable, bounded reads."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from zoo.graphs import GraphSpec, build_graphs
from zoo.graphs.shards import (
    ShardedGraphs,
    featurize_specs_to_shards,
    featurize_to_shards,
    shard_stem,
)

SPEC = GraphSpec("cgcnn", radius=6.0)
N = 10


def cells(start: int, stop: int):
    """Source of the tests: rock-salt-like cells k = start..stop-1 (k = 4 overlapping: its graph fails), targets a^3."""
    from pymatgen.core import Lattice, Structure

    ids, structures, y = [], [], []
    for k in range(start, stop):
        a = 3.0 + 0.2 * k
        frac = [[0, 0, 0], [0.05 / a, 0, 0]] if k == 4 else [[0, 0, 0], [0.5, 0.5, 0.5]]
        structures.append(Structure(Lattice.cubic(a), ["Na", "Cl"], frac, validate_proximity=False))
        ids.append(f"c{k}")
        y.append(a**3)
    return ids, structures, np.array(y)


def test_shards_hold_the_graphs_build_graphs_makes(tmp_path):
    report = featurize_to_shards(cells, N, SPEC, tmp_path, chunk_size=3, progress=False)
    assert (report.n_shards, len(report.built), report.skipped, report.complete) == (4, 4, [], True)
    assert (report.n_graphs, report.n_failures) == (N - 1, 1)
    ids, structures, y = cells(0, N)
    want, _ = build_graphs(structures, SPEC, ids=ids, cache=False, progress=False, on_error="skip")
    data = ShardedGraphs(tmp_path)
    assert list(data.failures) == ["c4"] and data.ids == [i for i in ids if i != "c4"] and len(data) == N - 1
    np.testing.assert_array_equal(data.y, np.delete(y, 4))
    for got, ref in zip(data, [g for g in want if g is not None]):
        assert got.id == ref.id
        for name in ("numbers", "positions", "lattice", "senders", "receivers", "shifts", "edge_vectors", "distances"):
            np.testing.assert_array_equal(getattr(got, name), getattr(ref, name))  # bit for bit
    np.testing.assert_array_equal(data.n_edges, [g.n_edges for g in want if g is not None])


def test_a_restart_rebuilds_only_the_missing_shards(tmp_path):
    featurize_to_shards(cells, N, SPEC, tmp_path, chunk_size=3, progress=False)
    times = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("shard-*")}
    for suffix in (".json", ".npz"):  # shard 2 lost, as after a kill while it was being written
        shard_stem(tmp_path, 2).with_suffix(suffix).unlink()
    (tmp_path / ".shard-00002.npz.abc.tmp").write_bytes(b"half")  # a temporary file a kill left behind
    report = featurize_to_shards(cells, N, SPEC, tmp_path, chunk_size=3, progress=False)
    assert report.built == [2] and report.skipped == [0, 1, 3] and report.complete
    assert all(p.stat().st_mtime_ns == times[p.name] for p in tmp_path.glob("shard-*") if "00002" not in p.name)
    assert len(ShardedGraphs(tmp_path)) == N - 1


def test_another_plan_in_the_same_folder_is_refused(tmp_path):
    featurize_to_shards(cells, 6, SPEC, tmp_path, chunk_size=3, progress=False)
    with pytest.raises(ValueError, match=r"another plan \(differs in \['chunk_size'\].*use a new folder"):
        featurize_to_shards(cells, 6, SPEC, tmp_path, chunk_size=2, progress=False)


def test_an_incomplete_folder_cannot_be_read(tmp_path):
    featurize_to_shards(cells, 6, SPEC, tmp_path, chunk_size=3, progress=False)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="incomplete; run featurize_to_shards again"):
        ShardedGraphs(tmp_path)


def test_a_shard_local_shuffle_reads_each_shard_once(tmp_path):
    featurize_to_shards(cells, N, SPEC, tmp_path, chunk_size=3, progress=False)
    data = ShardedGraphs(tmp_path, max_cached_shards=1)
    order = data.permutation(np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(len(data)))
    assert [data[i].id for i in order] and data.shard_reads == 4  # one decode per shard, one shard held at a time
    assert len(data._cache) == 1


def test_workers_build_shards_in_parallel_and_a_corrupt_shard_is_named(tmp_path):
    report = featurize_to_shards(cells, 6, SPEC, tmp_path, chunk_size=2, workers=2, progress=False)
    assert sorted(report.built) == [0, 1, 2] and report.complete
    shard_stem(tmp_path, 1).with_suffix(".npz").write_bytes(b"not a zip")
    data = ShardedGraphs(tmp_path)
    with pytest.raises(ValueError, match="shard-00001.npz is unreadable.*delete both files of shard 1"):
        data[2]
    meta = json.loads(shard_stem(tmp_path, 0).with_suffix(".json").read_text())
    assert meta["ids"] == ["c0", "c1"] and os.path.exists(tmp_path / "plan.json")


RADIUS = GraphSpec("radius", radius=4.0)


def test_several_specs_from_one_read_of_each_chunk_and_resumed_per_folder(tmp_path):
    calls = []

    def counted(start, stop):
        calls.append((start, stop))
        return cells(start, stop)

    outputs = {tmp_path / "cgcnn": SPEC, tmp_path / "radius": RADIUS}
    reports = featurize_specs_to_shards(counted, N, outputs, chunk_size=3, progress=False)
    assert calls == [(0, 3), (3, 6), (6, 9), (9, 10)]  # each chunk read once for both specs
    for folder, spec in outputs.items():
        assert reports[folder].built == [0, 1, 2, 3] and reports[folder].complete
        featurize_to_shards(cells, N, spec, tmp_path / f"alone-{folder.name}", chunk_size=3, progress=False)
        together, alone = ShardedGraphs(folder), ShardedGraphs(tmp_path / f"alone-{folder.name}")
        assert together.ids == alone.ids and together.hashes == alone.hashes  # the same shards as one spec at a time
        np.testing.assert_array_equal(together.n_edges, alone.n_edges)
    assert ShardedGraphs(tmp_path / "radius").n_edges.sum() != ShardedGraphs(tmp_path / "cgcnn").n_edges.sum()

    # a kill between the two specs' shards of chunk 1: only the radius folder lacks it
    for suffix in (".json", ".npz"):
        shard_stem(tmp_path / "radius", 1).with_suffix(suffix).unlink()
    kept = shard_stem(tmp_path / "cgcnn", 1).with_suffix(".npz").stat().st_mtime_ns
    calls.clear()
    reports = featurize_specs_to_shards(counted, N, outputs, chunk_size=3, progress=False)
    assert calls == [(3, 6)]
    assert reports[tmp_path / "radius"].built == [1] and reports[tmp_path / "cgcnn"].built == []
    assert reports[tmp_path / "cgcnn"].skipped == [0, 1, 2, 3] and all(r.complete for r in reports.values())
    assert shard_stem(tmp_path / "cgcnn", 1).with_suffix(".npz").stat().st_mtime_ns == kept
