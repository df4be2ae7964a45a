"""The one torch <-> flax weight converter (zoo.backend.params): renaming only, exact both ways."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.backend.params import check_name, flax_from_torch, flax_path_to_torch_name, torch_from_flax, torch_name_to_flax_path
from zoo.core.weights import WeightsError


def test_names_and_paths():
    assert torch_name_to_flax_path("convs.0.fc_full.weight") == ("convs_0", "fc_full", "weight")
    assert torch_name_to_flax_path("layers.12.radial.w0") == ("layers_12", "radial", "w0")
    assert flax_path_to_torch_name(("convs_0", "bn1", "running_var")) == "convs.0.bn1.running_var"
    assert flax_path_to_torch_name(("readout", "w_1")) == "readout.w_1"  # a leaf name is never a list item
    check_name("convs.0.fc_full.weight")
    with pytest.raises(ValueError, match="_<digits>"):
        check_name("block_2.weight")


def test_round_trip_keeps_collections_dtypes_and_values():
    rng = np.random.default_rng(0)
    like = {
        "params": {"embedding": {"weight": np.zeros((4, 3), np.float32)}, "convs_0": {"bn1": {"weight": np.zeros(3, np.float32)}}},
        "batch_stats": {"convs_0": {"bn1": {"running_mean": np.zeros(3, np.float32), "num_batches_tracked": np.zeros((), np.int32)}}},
    }
    state = {"embedding.weight": rng.normal(size=(4, 3)), "convs.0.bn1.weight": rng.normal(size=3),
             "convs.0.bn1.running_mean": rng.normal(size=3), "convs.0.bn1.num_batches_tracked": np.array(7, np.int64)}
    v = flax_from_torch(state, like)
    assert v["batch_stats"]["convs_0"]["bn1"]["num_batches_tracked"].dtype == np.int32
    assert v["params"]["embedding"]["weight"].dtype == np.float32
    back = torch_from_flax(v)
    assert set(back) == set(state) and back["convs.0.bn1.num_batches_tracked"].dtype == np.int64
    assert back["convs.0.bn1.num_batches_tracked"].shape == ()
    np.testing.assert_allclose(back["embedding.weight"], state["embedding.weight"].astype(np.float32))


def test_wrong_weights_are_named():
    like = {"params": {"a": {"weight": np.zeros((2, 2))}}}
    with pytest.raises(WeightsError, match=r"missing: \['a.weight'\]"):
        flax_from_torch({"b.weight": np.zeros((2, 2))}, like)
    with pytest.raises(WeightsError, match=r"a.weight: shape \(3, 2\) but the model has \(2, 2\)"):
        flax_from_torch({"a.weight": np.zeros((3, 2))}, like)
