"""TrainConfig (zoo.training.config): the one declaration of every training option."""
from __future__ import annotations

import dataclasses

import pytest

from zoo.training import TrainConfig, UsageError
from zoo.training.config import literal_choices


def test_choices_come_from_the_annotations():
    assert literal_choices() == {
        "backend": ("torch", "jax"), "optimizer": ("adam", "adamw"), "schedule": ("cosine", "plateau", "constant"),
        "loss": ("auto", "mse", "l1", "fnorm", "bce"), "dtype": ("float32", "float64"),
        "tensor_center": ("none", "isotropic"), "target_transform": ("none", "log", "norm_log", "cm"),
        "jax_padding": ("buckets", "fixed"), "clip_predictions": ("none", "train_range"),
    }
    from zoo.training.targets import PREDICTION_CLIPS, TARGET_TRANSFORMS, TENSOR_CENTERS

    # the normaliser accepts exactly what the options offer
    assert (TENSOR_CENTERS, TARGET_TRANSFORMS, PREDICTION_CLIPS) == tuple(
        literal_choices()[k] for k in ("tensor_center", "target_transform", "clip_predictions"))
    for name, allowed in literal_choices().items():
        with pytest.raises(UsageError, match=f"TrainConfig.{name}="):
            TrainConfig(**{name: "nonsense"})
        for value in allowed:
            TrainConfig(**{name: value})


def test_every_option_has_help_and_round_trips():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f.name
    c = TrainConfig(backend="jax", epochs=3, model_overrides={"n_conv": 2})
    assert TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown training options"):
        TrainConfig.from_dict({**c.to_dict(), "nonsense": 1})
    with pytest.raises(ValueError):  # UsageError is a ValueError
        TrainConfig(epochs=0)
