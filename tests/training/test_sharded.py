"""Training from a shard folder (``zoo.training.sharded``): the loop reads graphs shard by shard."""
from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import TINY, toy_frame
from tests.training.common import cfg
from zoo.graphs import GraphSpec
from zoo.graphs.shards import featurize_to_shards
from zoo.tasks.spec import TargetSpec, TaskSpec
from zoo.training import train
from zoo.training.config import TrainingError
from zoo.training.sharded import ShardedTask

SPEC = TaskSpec(name="toy_volume_shards", version="test-1", target=TargetSpec("volume_per_atom", kind="scalar", unit="Å^3/atom"))


def toy_source(start: int, stop: int):
    frame = toy_frame(stop).iloc[start:stop]
    return list(frame.index), list(frame["structure"]), frame["volume_per_atom"].to_numpy()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    featurize_to_shards(toy_source, 40, GraphSpec("cgcnn"), folder, chunk_size=7, progress=False)
    return folder


def test_a_run_trains_from_shards_holding_two_at_a_time(tmp_path, shards):
    task = ShardedTask(SPEC, shards, max_cached_shards=2)
    res = train(cfg(tmp_path, epochs=2, model_overrides=dict(TINY)), task=task)
    n = res.summary["n"]
    assert (n["train"], n["val"], n["test"]) == (29, 3, 8) and np.isfinite(res.test_metrics["mae"])
    assert len(task.graphs._cache) <= 2
    # per epoch: the shard-local shuffle reads each of the 6 shards about once, not once per batch
    assert task.graphs.shard_reads < 6 * 2 * 4


def test_the_model_graph_spec_must_be_the_shards(tmp_path, shards):
    with pytest.raises(TrainingError, match="featurise again with the model's graph spec"):
        train(cfg(tmp_path, model="tfn", model_overrides={}), task=ShardedTask(SPEC, shards))
