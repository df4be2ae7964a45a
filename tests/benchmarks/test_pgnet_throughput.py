"""benchmarks/pgnet_throughput.py on a tensor task: the models it times are the ones ``zoo train --recipe``
trains (same options, same weight count), and a short run writes a complete record."""
from __future__ import annotations

import json

import pytest

from tests.helpers import SHARED_DATA

MATTEN = SHARED_DATA / "mp_elastic_tensor_matten_n100"


def test_recipe_models_are_the_trainers():
    from benchmarks.pgnet_throughput import model_config
    from zoo.models import make_config
    from zoo.tasks import TargetSpec
    from zoo.training import recipes

    target = TargetSpec(name="eps", kind="tensor", rank=2, formula="ij=ji")
    for name, family in (("tfn", "tfn"), ("pgnet", "pgnet"), ("pgnet_a1", "pgnet")):
        got_family, config = model_config(name, target, "rank2")
        options = recipes.get_recipe(family, "rank2").fields["model_overrides"]
        assert got_family == family and options and all(getattr(config, k) == v for k, v in options.items())
        assert config.target_kind == "tensor" and config.target_rank == 2
    assert model_config("pgnet_a1", target, "rank2")[1].hidden_oh == "64xA1g"
    assert model_config("tfn")[1] == make_config("tfn").with_target(TargetSpec(kind="scalar", name="exfoliation_en", unit="meV/atom"))


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.skipif(not MATTEN.is_dir(), reason="no shared MatTen data")
def test_tensor_task_record(tmp_path):
    from benchmarks.pgnet_throughput import main

    out = tmp_path / "t.json"
    assert main(["--task", "mp_elastic_matten_n100", "--data-dir", str(MATTEN), "--limit", "12", "--epochs", "2",
                 "--batch-size", "6", "--backends", "torch", "--models", "tfn", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["dataset"] == "mp_elastic_matten_n100" and record["recipe_kind"] == "rank4"
    row = record["rows"]["tfn-torch"]
    assert row["n_structures"] == 12 and row["training_structures_per_s"] > 0 and row["inference_structures_per_s"] > 0
    assert row["config"]["target_rank"] == 4 and row["config"]["message_norm"] == "neighbors"
