"""``TrainConfig.full_data``: train on all of a task's data (a model to publish after the folds were scored)."""
from __future__ import annotations

import json

import pytest

from tests.helpers import toy_task
from tests.training.common import cfg
from zoo.training import TrainConfig, UsageError, train
from zoo.training.data import load_fold


def test_full_data_trains_on_every_structure_and_tests_on_none(tmp_path):
    task = toy_task()
    config = cfg(tmp_path, epochs=2, full_data=True)
    fold = load_fold(task, 0, config, config_graph_spec(config))
    normal = load_fold(task, 0, cfg(tmp_path), config_graph_spec(config))
    assert len(fold.train) + len(fold.val) == len(task.df) and len(fold.test) == 0 and fold.test_all_ids == []
    assert set(normal.test.ids) <= set(fold.train.ids) | set(fold.val.ids)
    res = train(config, task=toy_task())
    summary = json.loads((res.run_dir / "metrics.json").read_text())
    assert "test" not in summary and summary["n"]["test"] == 0 and summary["val"]["n"] == len(fold.val)
    assert json.loads((res.run_dir / "config.json").read_text())["train"]["full_data"] is True


def test_full_data_is_a_switch():
    assert TrainConfig().full_data is False
    with pytest.raises(UsageError, match="full_data"):
        TrainConfig(full_data="yes")


def config_graph_spec(config):
    from zoo.models import make_config

    return make_config(config.model, **config.model_overrides).graph_spec()
