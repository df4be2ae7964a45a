"""The memory check's meta-device build leaves no meta tensor behind in any cache (zoo.training.torch)."""
from __future__ import annotations

import functools

import pytest

torch = pytest.importorskip("torch")


def test_shapes_on_meta_then_a_real_build_of_a_tensor_model():
    from zoo.models import build, make_config
    from zoo.tasks import TargetSpec
    from zoo.tensors import basis
    from zoo.training import TrainConfig
    from zoo.training.torch import TorchAdapter

    # a formula no other test uses, so its tables are computed first under the meta device
    target = TargetSpec(name="t", kind="tensor", rank=3, formula="ijk=jik")
    config = make_config("tfn").with_target(target)
    for cached in (basis._e3nn_basis,):
        if isinstance(cached, functools._lru_cache_wrapper):
            cached.cache_clear()
    shapes = TorchAdapter("tfn", config, TrainConfig(model="tfn"), "mse")._parameter_shapes()
    # (None: tfn computes its tables in __init__, which the meta device cannot run: no estimate)
    model = build("tfn", "torch", config)  # failed with "Tensor.item() cannot be called on meta tensors"
    assert shapes is None or {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes
    assert all(v.device.type == "cpu" for v in model.state_dict().values())
