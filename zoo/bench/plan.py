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
- ``pgnet``: half width, ONE layer and 2 epochs: a step runs only the branch (O_h or D_6h) of its
  batch's holohedry (batches grouped by holohedry), and JAX compiles both branches for every padded
  shape, which dominated its 506 s compile on jdft2d; at 2 layers one training-step compilation alone
  ran past 6 minutes on the loaded 2-core machine (XLA's "very slow compile" warning).
"""
from __future__ import annotations

from typing import Any

from zoo.models import get_family
from zoo.training import TrainConfig
from zoo.training.data import build_task

SCALAR_TASK = "embedded_dielectric_iso"
TENSOR_TASK = "embedded_dielectric"
FOLD = 0

DEFAULT_RECIPE: dict[str, Any] = {"epochs": 3, "batch_size": 64, "lr": 1e-3}

RECIPES: dict[str, dict[str, Any]] = {
    "cgcnn": {"epochs": 8, "batch_size": 64, "lr": 3e-3},
    "chgcnn": {"epochs": 5, "batch_size": 64, "lr": 3e-3,
               "model_overrides": {"layers": ["bt", "bt", "bt"], "atom_fea_len": 32, "h_fea_len": 64}},
    "tfn": {"epochs": 3, "batch_size": 32, "lr": 3e-3,
            "model_overrides": {"hidden_irreps": "16x0e+16x0o+4x1e+4x1o+4x2e+4x2o", "n_layers": 2}},
    "pgnet": {"epochs": 2, "batch_size": 32, "lr": 3e-3,
              "model_overrides": {"hidden_oh": "16xA1g + 3xA2g + 3xEg + 3xT1g + 3xT2g + 3xA1u + 3xA2u + 3xEu + 3xT1u + 3xT2u",
                                  "hidden_d6h": "16xA1g + 3xA2g + 3xB1g + 3xB2g + 3xE1g + 3xE2g + 3xA1u + 3xA2u + 3xB1u + 3xB2u "
                                                "+ 3xE1u + 3xE2u",
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
