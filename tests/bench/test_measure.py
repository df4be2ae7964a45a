"""``zoo.bench.measure`` logic that needs no clock: ratio bookkeeping, compile time from epoch records,
the planted-slowdown test hook, and the plan of the matrix."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.bench import measure, plan
from zoo.models import get_family, list_models


class FakeSteps:
    """Passes that 'take' fixed times (returned, not slept): timed_ratios only does arithmetic on them."""

    n_structures = 40
    batches = [0, 1]

    def __init__(self, train_s, infer_s):
        self.train = iter(train_s)
        self.infer = iter(infer_s)

    def train_pass(self):
        return next(self.train)

    def infer_pass(self):
        return next(self.infer)


def test_timed_ratios_divide_each_pass_by_its_neighbouring_calibrations():
    cal = iter([1.0, 3.0, 1.0, 1.0, 1.0])  # before, after train 1, after infer 1, after train 2, after infer 2
    out = measure.timed_ratios(FakeSteps([4.0, 2.0], [2.0, 1.0]), lambda: next(cal), repeats=2)
    assert out["train_ratios"] == [4.0 / 2.0, 2.0 / 1.0]
    assert out["infer_ratios"] == [2.0 / 2.0, 1.0 / 1.0]
    assert out["train_ratio"] == 2.0 and out["infer_ratio"] == 1.0
    assert out["train_structures_per_s"] == pytest.approx(40 / 3.0)


def test_compile_seconds_counts_only_compiling_epochs_beyond_a_steady_one():
    records = [{"time_s": 12.0, "jit_compilations": 3}, {"time_s": 2.0, "jit_compilations": 0},
               {"time_s": 5.0, "jit_compilations": 1}, {"time_s": 2.0, "jit_compilations": 0}]
    assert measure.compile_seconds(records) == pytest.approx(10.0 + 3.0)
    assert measure.compile_seconds([{"time_s": 1.0, "jit_compilations": 0}] * 3) == 0.0


def test_matrix_covers_every_registered_family_and_backend():
    cells = plan.matrix()
    for model in list_models():
        for backend in get_family(model).backends:
            task = plan.TENSOR_TASK if "tensor" in get_family(model).outputs else plan.SCALAR_TASK
            assert (model, backend, task) in cells


def test_train_config_merges_overrides_over_the_recipe():
    c = plan.train_config("chgcnn", "jax", epochs=1, model_overrides={"atom_fea_len": 8}, task_kwargs={"n_crystals": 50})
    assert c.epochs == 1 and c.fold == 0 and c.patience == 0 and c.backend == "jax"
    assert c.model_overrides["layers"] == ["bt", "bt", "bt"] and c.model_overrides["atom_fea_len"] == 8
    assert c.task_kwargs == {"n_crystals": 50} and c.task == plan.SCALAR_TASK


def test_every_recipe_builds_its_family_config():
    for model in plan.RECIPES:
        config = measure.model_config(model)
        assert config.graph_spec() is not None


def _tiny_steps(backend):
    from tests.helpers import TINY, toy_task
    from zoo.graphs import build_graphs

    task = toy_task(n=12)
    task.load()
    config = measure.model_config("cgcnn", task.spec.target, **TINY)
    graphs, _ = build_graphs(list(task.df["structure"]), config.graph_spec(), cache=False, progress=False)
    y = np.random.default_rng(0).standard_normal(len(graphs))
    return measure.Steps("cgcnn", backend, config, graphs, y, batch_size=6)


def test_planted_slowdown_runs_the_torch_forward_twice_and_changes_no_output():
    steps = _tiny_steps("torch")
    model, calls = steps.adapter.model, []
    inner = model.forward
    model.forward = lambda *a, **k: (calls.append(1), inner(*a, **k))[1]
    before = steps.adapter.predict(steps.batches[0])
    assert len(calls) == 1
    measure.plant_slowdown(steps.adapter)
    calls.clear()
    after = steps.adapter.predict(steps.batches[0])
    assert len(calls) == 2
    np.testing.assert_array_equal(before, after)
    assert steps.n_parameters > 0 and steps.n_structures == 12


@pytest.mark.slow
def test_planted_slowdown_in_jax_traces_the_model_twice_and_changes_no_output():
    steps = _tiny_steps("jax")
    module, calls = steps.adapter.module, []
    apply = module.apply
    object.__setattr__(module, "apply", lambda *a, **k: (calls.append(1), apply(*a, **k))[1])
    steps.adapter._build_steps()
    before = steps.adapter.predict(steps.batches[0])
    measure.plant_slowdown(steps.adapter)
    calls.clear()
    after = steps.adapter.predict(steps.batches[0])  # a new jit: traced once, the model applied twice
    assert len(calls) == 2
    np.testing.assert_allclose(before, after, rtol=1e-6)


@pytest.mark.slow  # a TFN in float64 on 2 generated crystals: minutes on the loaded 2-core machine
def test_symmetry_violation_is_round_off_for_an_equivariant_model_and_none_for_a_scalar_one():
    small = {"hidden_irreps": "4x0e+2x1o+2x2e", "n_layers": 1}
    value = measure.symmetry_violation("tfn", "torch", "float64", measure.model_config("tfn", **small), n_crystals=2)
    assert 0.0 <= value < 1e-9
    assert measure.symmetry_violation("cgcnn", "torch", config=measure.model_config("cgcnn")) is None
