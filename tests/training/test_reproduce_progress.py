"""A killed reproduction whose progress file predates a training option is continued, not refused."""
from __future__ import annotations

import json

import pytest

from zoo.training import TrainConfig
from zoo.training.config import UsageError
from zoo.training.reproduce import _progress


def _write_old_progress(path, drop, **changes):
    """A progress file as an older version wrote it: the options in ``drop`` did not exist yet."""
    config = {k: v for k, v in TrainConfig(model="cgcnn", epochs=25, patience=0, **changes).to_dict().items() if k not in drop}
    path.write_text(json.dumps({"config": config, "runs": {"0": "runs/some_run"}}))


def test_options_added_later_take_their_default(tmp_path):
    # jax_padding and tensor_center were added with defaults that keep the older behaviour
    path = tmp_path / "progress.json"
    _write_old_progress(path, drop=("jax_padding", "tensor_center", "full_data"))
    progress = _progress(path, TrainConfig(model="cgcnn", epochs=25, patience=0))
    assert progress["runs"] == {"0": "runs/some_run"}


def test_an_option_whose_old_meaning_differs_is_still_refused(tmp_path):
    # before patience_lr_fraction existed, patience counted from the first epoch (from_dict reads 1.0):
    # a newer call with the default 0.1 is another recipe
    path = tmp_path / "progress.json"
    _write_old_progress(path, drop=("patience_lr_fraction",))
    with pytest.raises(UsageError, match="patience_lr_fraction"):
        _progress(path, TrainConfig(model="cgcnn", epochs=25, patience=0))
    assert _progress(path, TrainConfig(model="cgcnn", epochs=25, patience=0, patience_lr_fraction=1.0))["runs"]


def test_other_settings_are_refused(tmp_path):
    path = tmp_path / "progress.json"
    _write_old_progress(path, drop=("jax_padding",), lr=1e-3)
    with pytest.raises(UsageError, match=r"\['lr'\] differ"):
        _progress(path, TrainConfig(model="cgcnn", epochs=25, patience=0, lr=5e-3))
