"""Training from a sharded graph cache (``zoo.graphs.shards``): no structure and no graph held in memory
beyond the shards being read.

``ShardedTask(spec, folder)`` is a task whose ids, targets and graphs are those of a complete shard folder
(made by ``featurize_to_shards`` with targets). ``train(config, task=ShardedTask(...))`` asks it for the
fold (``fold_data``) instead of reading structures: the test set of fold k is the k-th of ``n_folds``
parts of a ``default_rng(seed)`` permutation of the ids, validation a ``default_rng([split_seed, fold])``
``val_fraction`` of the rest (the loop's own rule for tasks without fixed validation ids). The splits'
graphs are ``GraphView``s: indexing decodes from the shard cache (``ShardedGraphs``, at most
``max_cached_shards`` shards in memory), and the loop shuffles each epoch shard by shard
(``GraphView.permutation``), so an epoch reads every shard about once instead of once per batch.

Structures are not kept, so scores that need them (point-group symmetry of tensor predictions) are
not computed; structures whose graph failed are listed in the run's failures and in no split.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from zoo.graphs import GraphSpec
from zoo.graphs.shards import ShardedGraphs
from zoo.tasks.spec import TaskSpec

from . import dataid
from .config import TrainConfig, TrainingError
from .data import FoldData, Split


class GraphView(Sequence):
    """Graphs ``base[index[i]]`` of a ``ShardedGraphs``, decoded when indexed."""

    def __init__(self, base: ShardedGraphs, index: np.ndarray):
        self.base, self.index = base, np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.base[j] for j in self.index[i]]
        return self.base[self.index[i]]

    def __add__(self, other: GraphView) -> GraphView:
        if not isinstance(other, GraphView) or other.base is not self.base:
            return NotImplemented
        return GraphView(self.base, np.concatenate([self.index, other.index]))

    def permutation(self, rng: np.random.Generator) -> np.ndarray:
        """This view's positions, shuffled shard by shard (``ShardedGraphs.permutation``)."""
        return self.base.permutation(rng, self.index)


class ShardedTask:
    """A task read from a shard folder with targets (module docstring)."""

    def __init__(self, spec: TaskSpec, directory: str | os.PathLike, n_folds: int = 5, seed: int = 0, max_cached_shards: int = 2):
        self.spec, self.n_folds, self.seed = spec, int(n_folds), int(seed)
        self.graphs = ShardedGraphs(directory, max_cached_shards)
        if self.graphs.y is None:
            raise TrainingError(f"{directory}: the shards carry no targets; featurise with a source that returns them "
                                "(source(start, stop) -> (ids, structures, targets))")
        self.folds = list(range(self.n_folds))

    def fold_data(self, fold: int, config: TrainConfig, graph_spec: GraphSpec) -> FoldData:
        if self.graphs.plan["spec_key"] != graph_spec.key():
            raise TrainingError(f"{self.graphs.directory} holds graphs {self.graphs.plan['spec']}, but model {config.model} "
                                f"needs {graph_spec!r}; featurise again with the model's graph spec")
        if fold not in self.folds:
            raise TrainingError(f"fold {fold}: task {self.spec.name} has folds {self.folds}")
        g, n = self.graphs, len(self.graphs)
        test = np.sort(np.array_split(np.random.default_rng(self.seed).permutation(n), self.n_folds)[fold])
        if config.full_data:  # --full-data: the fold's test part trains too, nothing is tested (data.load_fold's rule)
            test = test[:0]
        rest = np.setdiff1d(np.arange(n), test)
        n_val = max(1, round(config.val_fraction * len(rest)))
        if n_val >= len(rest):
            raise TrainingError(f"fold {fold} has only {len(rest)} training structures: too few to hold out a validation set")
        val = np.sort(rest[np.random.default_rng([config.split_seed, fold]).permutation(len(rest))[:n_val]])
        train = np.setdiff1d(rest, val)
        hashes = g.hashes

        def split(index: np.ndarray) -> Split:
            return Split([g.ids[i] for i in index], GraphView(g, index), g.y[index], None)

        def prints(index: np.ndarray) -> dict:
            return dataid.fingerprint([g.ids[i] for i in index], g.y[index], [hashes[i] for i in index])

        fingerprint = {"train_val": prints(rest), "test": prints(test), "val_ids": dataid.fingerprint(sorted(g.ids[i] for i in val), None, [])}
        return FoldData(split(train), split(val), split(test), {}, [g.ids[i] for i in test], g.y[test], dict(g.failures),
                        fingerprint, "seeded")
