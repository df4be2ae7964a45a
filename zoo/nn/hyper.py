"""Hyperedge aggregation written once for both backends: the AGG of the crystal hypergraph convolution.

A hyperedge's message needs one vector that summarises the features of its member atoms, whatever
their number: ``aggregate`` returns the chosen statistics per hyperedge (each (H, A), any width A),
and ``combine`` joins them, by concatenation (k x A wide) or by attention (A wide: a learned query
scores the k statistics of each hyperedge and their softmax weights mix them; the query has the
width of the features it scores, where the published CHGCNN code fixed its attention to 64 channels,
so any other width failed).

Two forms of the same statistics (tested to agree):

- ``aggregate_fixed``: hyperedges with a fixed number of members (a bond's two atoms, a triplet's
  three), given as one (H, A) array per member slot: element-wise, no scatter;
- ``aggregate_segments``: any number of members (a motif's shell, a unit cell), given as one row per
  (member, hyperedge) incidence and the hyperedge index of each row.

Statistics (``AGGREGATIONS``): mean; std = sqrt(biased variance + ``STD_EPS``), PyG's ``StdAggregation``
rule, which keeps the gradient finite where all members are equal; max; min. An empty segment (a padding
hyperedge) gives 0 for mean, max and min.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

Array = Any  # torch.Tensor or jax.Array, whichever backend ``xp`` is

AGGREGATIONS = ("mean", "std", "max", "min")
COMBINE = ("concat", "attention")
STD_EPS = 1e-5


def check_aggregations(aggregations: Sequence[str]) -> tuple[str, ...]:
    aggregations = tuple(aggregations)
    bad = [a for a in aggregations if a not in AGGREGATIONS]
    if not aggregations or bad or len(set(aggregations)) != len(aggregations):
        raise ValueError(f"aggregations must be distinct names from {AGGREGATIONS}, got {aggregations!r}")
    return aggregations


def aggregate_fixed(members: Sequence[Array], aggregations: Sequence[str], xp) -> list[Array]:
    """Statistics over the member slots of fixed-arity hyperedges: ``members`` = [(H, A), ...]."""
    n = len(members)
    mean = functools.reduce(lambda a, b: a + b, members) / n
    out = []
    for name in aggregations:
        if name == "mean":
            out.append(mean)
        elif name == "std":
            var = functools.reduce(lambda a, b: a + b, [(m - mean) * (m - mean) for m in members]) / n
            out.append(xp.sqrt(var + STD_EPS))
        elif name == "max":
            out.append(functools.reduce(xp.maximum, members))
        elif name == "min":
            if n == 2:  # a + b - max(a, b): exact, one maximum fewer (its backward is most of the cost of a pair)
                high = out[list(aggregations).index("max")] if "max" in aggregations[: len(out)] else xp.maximum(*members)
                out.append(members[0] + members[1] - high)
            else:
                out.append(-functools.reduce(xp.maximum, [-m for m in members]))
        else:
            raise ValueError(f"unknown aggregation {name!r}; choose from {AGGREGATIONS}")
    return out


def aggregate_segments(x: Array, segment: Array, n: int, aggregations: Sequence[str], xp) -> list[Array]:
    """Statistics over the rows of ``x`` (P, A) grouped by ``segment`` (P,) into ``n`` hyperedges."""
    mean = xp.segment_mean(x, segment, n)
    out = []
    for name in aggregations:
        if name == "mean":
            out.append(mean)
        elif name == "std":
            d = x - xp.take(mean, segment)
            out.append(xp.sqrt(xp.segment_mean(d * d, segment, n) + STD_EPS))
        elif name == "max":
            out.append(xp.segment_max(x, segment, n))
        elif name == "min":
            out.append(-xp.segment_max(-x, segment, n))
        else:
            raise ValueError(f"unknown aggregation {name!r}; choose from {AGGREGATIONS}")
    return out


def combine(stats: Sequence[Array], mode: str, xp, query: Array | None = None) -> Array:
    """One vector per hyperedge from its statistics (each (H, A)): "concat" -> (H, k A); "attention" ->
    (H, A), sum_s softmax_s(<stat_s, query> / sqrt(A)) stat_s with ``query`` (A,)."""
    if mode == "concat":
        return xp.concat(list(stats), axis=1)
    if mode != "attention":
        raise ValueError(f"combine must be one of {COMBINE}, got {mode!r}")
    if query is None:
        raise ValueError("combine='attention' needs its query vector (one entry per feature)")
    width = stats[0].shape[1]
    if query.shape[-1] != width:
        raise ValueError(f"attention query has {query.shape[-1]} entries but the features are {width} wide")
    stacked = xp.concat([s[:, None, :] for s in stats], axis=1)  # (H, k, A)
    scores = xp.einsum("hka,a->hk", stacked, query) / math.sqrt(width)
    weights = xp.exp(xp.log_softmax(scores, axis=1))
    return xp.einsum("hk,hka->ha", weights, stacked)


def combined_width(width: int, aggregations: Sequence[str], mode: str) -> int:
    """Width of ``combine``'s output for features ``width`` wide."""
    return width * len(tuple(aggregations)) if mode == "concat" else width
