"""What the benchmark suite runs: each family's bench task and its short-training recipe.

The main job (``zoo bench``) trains every registered family in every backend on fold 0 of an embedded
(offline, generated) task: families with tensor outputs on ``embedded_dielectric`` (the 3x3 permittivity,
so the symmetry violation of a tensor prediction is measured), the others on the default scalar task
``embedded_dielectric_iso`` (its isotropic part). Both tasks share one generated data set (2000
candidate crystals, ~1500 kept), built once.

A recipe is a set of ``TrainConfig`` fields sized so that the whole matrix, data generation included,
fits in 10 minutes on 2 CPU cores; it is a *short* training (a few epochs), so its accuracy is a
regression signal and a sanity check against the floor, not the family's best. A family without a
recipe gets ``DEFAULT_RECIPE``. Why each one is what it is:

- ``cgcnn``: the demo's recipe (lr 3e-3, batch 64), 8 epochs (an epoch is ~1 s in torch).
- ``chgcnn``: bonds + triplets (``layers=["bt", "bt", "bt"]``): the default's motif hyperedges need CrystalNN and
  ChemEnv, 0.17 structures/s on 2 cores (2 h for the data set), against ~1000/s for bonds and
  triplets; width 32 and 5 epochs.
- ``tfn``: width halved (``16x0e+16x0o+4x1e+4x1o+4x2e+4x2o``, 2 layers) and 3 epochs: the default
  (85k parameters, 3 layers) trains at ~70 structures/s in torch here and its JAX compilation of the
  bucketed shapes takes minutes.
- ``pgnet``: ONE layer of the irreps a symmetric rank-2 read-out needs and a few more (O_h: A1g, Eg,
  T2g, T1u; D_6h: A1g, E1g, E2g, A2u, E1u; 16 A1g and 4 of each other channel) and 4 epochs. A step runs
  only the branch (O_h or D_6h) of its batch's holohedry (batches grouped by holohedry), but JAX
  compiles both branches into every step, and the compilation grows with the coupling paths: with every
  irrep of both groups at 3 copies one training-step compilation took 2-2.5 min on the loaded 2-core
  machine, and the run 13 compilations in 2 epochs (test MAE 3.89 torch / 3.91 JAX). This recipe
  compiles in a fraction of that and learns more in 4 epochs (3.74 / 3.78; floor 1.92).
- ``tfn`` and ``pgnet`` take the tensor-target treatment of the ``tfn.rank2`` recipe (issue #11,
  results/tfn/TENSOR.md): the training mean's isotropic part subtracted before scaling
  (``tensor_center="isotropic"``) and, for the TFN, messages divided by each atom's own neighbour count
  (``message_norm="neighbors"``). Without them a few epochs end well above the floor (test MAE 3.7-4.1
  against 1.92: the network spends them building the mean permittivity ~11 from an output of rms ~0.2);
  with them, 1.87 / 1.87 (tfn torch / JAX) and 1.93 / 1.93 (pgnet), at no cost in time.

Every recipe pads JAX batches to one shape per run (``PADDING``, ``TrainConfig.jax_padding="fixed"``):
the bucketed padding compiled 6-13 training and prediction steps per run (cgcnn 7, chgcnn 8, pgnet
13, tfn 10 in the stop-19 run), the fixed one 2 (TFN, whose edge counts are heavy-tailed: 4-5), at
1.4-1.55x the real elements per step instead of 1.25-1.3x (simulated on the loop's exact batch
sequence; ``zoo.graphs.batch.FixedPolicy``).
"""
from __future__ import annotations

from typing import Any

from zoo.models import get_family
from zoo.training import TrainConfig
from zoo.training.data import build_task

SCALAR_TASK = "embedded_dielectric_iso"
TENSOR_TASK = "embedded_dielectric"
FOLD = 0

# A short run's JAX cost is its compilations: one padded shape for every batch (``FixedPolicy``) instead of
# a few growing buckets; measured in the module docstring.
PADDING = "fixed"

DEFAULT_RECIPE: dict[str, Any] = {"epochs": 3, "batch_size": 64, "lr": 1e-3}

RECIPES: dict[str, dict[str, Any]] = {
    "cgcnn": {"epochs": 8, "batch_size": 64, "lr": 3e-3},
    "chgcnn": {"epochs": 5, "batch_size": 64, "lr": 3e-3,
               "model_overrides": {"layers": ["bt", "bt", "bt"], "atom_fea_len": 32, "h_fea_len": 64}},
    "tfn": {"epochs": 3, "batch_size": 32, "lr": 3e-3, "tensor_center": "isotropic",
            "model_overrides": {"hidden_irreps": "16x0e+16x0o+4x1e+4x1o+4x2e+4x2o", "n_layers": 2,
                                "message_norm": "neighbors"}},
    "pgnet": {"epochs": 4, "batch_size": 32, "lr": 3e-3, "tensor_center": "isotropic",
              "model_overrides": {"hidden_oh": "16xA1g + 4xEg + 4xT2g + 4xT1u",
                                  "hidden_d6h": "16xA1g + 4xE1g + 4xE2g + 4xA2u + 4xE1u",
                                  "n_layers": 1}},
}


def bench_task(model: str) -> str:
    """The embedded task a family is benchmarked on: the tensor task where it predicts tensors."""
    return TENSOR_TASK if "tensor" in get_family(model).outputs else SCALAR_TASK


def recipe(model: str) -> dict[str, Any]:
    """The family's bench recipe (``TrainConfig`` fields), a fresh copy."""
    r = RECIPES.get(model, DEFAULT_RECIPE)
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in r.items()}


def train_config(model: str, backend: str, task: str | None = None, seed: int = 0, **overrides: Any) -> TrainConfig:
    """The ``TrainConfig`` of a bench run: the recipe, then ``overrides`` (``model_overrides`` and
    ``task_kwargs`` are merged key by key); fold 0, no early stopping, no graph-cache opt-out."""
    kw = recipe(model)
    for key, value in overrides.items():
        if key in ("model_overrides", "task_kwargs") and isinstance(value, dict):
            kw[key] = {**kw.get(key, {}), **value}
        else:
            kw[key] = value
    kw.setdefault("fold", FOLD)
    kw.setdefault("jax_padding", PADDING)
    return TrainConfig(model=model, backend=backend, task=task or bench_task(model), seed=seed, patience=0, **kw)


def fold_task(config: TrainConfig):
    """The task object of a bench run's config (its data are cached on disk after the first build)."""
    return build_task(config.task, dict(config.task_kwargs), config.data_dir)


def matrix_models() -> list[str]:
    """Every registered family (``zoo.models.list_models``), in registration order."""
    from zoo.models import list_models

    return list(list_models())


def matrix(models=None, backends=("torch", "jax")) -> list[tuple[str, str, str]]:
    """(family, backend, task) of every registered family (``zoo.models.list_models``) in every backend it
    has, in registration order."""
    from zoo.models import list_models

    out = []
    for model in list_models() if models is None else models:
        for backend in backends:
            if backend in get_family(model).backends:
                out.append((model, backend, bench_task(model)))
    return out
