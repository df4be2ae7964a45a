"""A graph-cache hit checks all structures at once (``builder._cached_at_once``): the graphs, ids, failures
and messages are those of the one-structure path, and anything the batched checks cannot decide takes it."""
from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from tests.graphs.test_many_at_once import FIELDS, bad_structures, good_structures, one_by_one
from zoo.graphs import GraphSpec, build_graphs, builder


def no_one_by_one(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the cache hit went through to_structure one structure at a time")

    monkeypatch.setattr(builder, "to_structure", refuse)


@pytest.mark.parametrize("spec", [GraphSpec(), GraphSpec("radius", radius=5.0), GraphSpec("cgcnn", radius=6.0, max_neighbors=4)])
def test_a_cache_hit_checks_at_once_and_gives_the_one_by_one_graphs(spec, tmp_path, monkeypatch):
    good = good_structures()
    ref, _ = one_by_one(good, [f"s{k}" for k in range(len(good))], spec)
    items = [s for s, r in zip(good, ref) if r is not None]  # those with a graph at this radius
    assert len(items) >= 10
    ids = [f"s{k}" for k in range(len(items))]
    build_graphs(items, spec, ids=ids, cache=str(tmp_path), progress=False)  # a miss: builds and writes
    no_one_by_one(monkeypatch)
    hit, failures = build_graphs(items, spec, ids=ids, cache=str(tmp_path), progress=False)
    monkeypatch.undo()
    assert failures == {}
    ref, _ = one_by_one(items, ids, spec)
    for g, r in zip(hit, ref):
        for f in FIELDS:
            a, b = getattr(g, f), getattr(r, f)
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), (r.id, f)
        assert g.id == r.id and g.meta["sha256"] and {k: v for k, v in g.meta.items() if k != "sha256"} == r.meta


def test_a_stricter_overlap_threshold_is_applied_to_cached_graphs(tmp_path):
    # Cached with the default threshold (0.5 Å); asked again with 1.2 Å, the 1.0 Å pair must be refused
    # as the one-structure path refuses it, though the cache holds a graph of it.
    close = Structure(Lattice.cubic(6.0), ["H", "H"], [[0, 0, 0], [1.0 / 6.0, 0, 0]])
    items = [*good_structures()[:3], close]
    ids = ["a", "b", "c", "close"]
    spec = GraphSpec()
    build_graphs(items, spec, ids=ids, cache=str(tmp_path), progress=False)
    graphs, failures = build_graphs(items, spec, ids=ids, cache=str(tmp_path), progress=False, on_error="skip",
                                    min_distance=1.2)
    _, ref_failures = one_by_one(items, ids, spec, min_distance=1.2)
    assert failures == ref_failures and list(failures) == ["close"] and graphs[3] is None
    assert all(g is not None for g in graphs[:3])


def test_refused_structures_fail_alike_on_a_hit(tmp_path):
    items = [x for pair in zip(good_structures(), bad_structures()) for x in pair]
    ids = [f"s{k}" for k in range(len(items))]
    spec = GraphSpec()
    first = build_graphs(items, spec, ids=ids, cache=str(tmp_path), progress=False, on_error="skip")
    again = build_graphs(items, spec, ids=ids, cache=str(tmp_path), progress=False, on_error="skip")
    assert again[1] == first[1] == one_by_one(items, ids, spec)[1]
    assert [g is None for g in again[0]] == [g is None for g in first[0]]
