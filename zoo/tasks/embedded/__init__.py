"""Embedded tasks: generated crystals labelled by model physics, available offline with no download.

- ``embedded_dielectric``: the (3, 3) relative permittivity tensor (rank 2, "ij=ji", dimensionless)
- ``embedded_dielectric_iso``: its isotropic part Tr(eps)/3, a scalar -- the DEFAULT task (the README's
  main job trains and scores on it)
- ``embedded_elastic``: the (3, 3, 3, 3) Born elastic tensor in GPa (rank 4, "ijkl=jikl=klij")

All three are 5-fold (matbench-style kfold) tasks on the same data set, ``build_embedded_dataset(n,
seed)`` (see ``dataset.py``), with a seed-derived split that also fixes a validation subset (10 % of
the data) inside each fold's training data. Factory arguments (``zoo.tasks.get(name, **kwargs)``):
``n_crystals=2000, seed=0, progress=True, cache=True, workers=None, cache_directory=None,
split_seed=None (= seed), score_symmetry=True`` (tensor tasks: score the predictions' violation of
the crystal's point-group symmetry). The data are built on first use (``task.load()`` or any
``get_*_data``), not when the task object is made.

Bump ``VERSION`` (and ``dataset.DATASET_VERSION``) whenever a change can move a score.
"""
from __future__ import annotations

import inspect
from typing import Any

from .. import register
from ..spec import TargetSpec, TaskSpec
from .dataset import DATASET_VERSION, build_task

VERSION = f"embedded-1.data{DATASET_VERSION}"
DEFAULT_TASK = "embedded_dielectric_iso"
DEFAULT_N = 2000
# keys of tasks.metrics.tensor_metrics; the first is the headline metric
TENSOR_METRICS = ("mae", "fnorm", "ewt25", "ewt10", "ewt5", "sym_violation_mean")
SOURCE = ("crystal-zoo embedded data: crystals from zoo/tasks/embedded/generator.py labelled by "
          "tasks/embedded/dielectric.py (and elastic.py)")


def _spec(name: str, target: TargetSpec, metrics: tuple[str, ...], unit_note: str) -> TaskSpec:
    """The embedded tasks differ only in their target: all are 5-fold k-fold tasks on the same data."""
    return TaskSpec(name=name, version=VERSION, target=target, metrics=metrics, n_folds=5, split="kfold",
                    source=SOURCE, extra={"unit_note": unit_note})


DIELECTRIC = _spec("embedded_dielectric", TargetSpec(name="dielectric", kind="tensor", unit="", rank=2, formula="ij=ji"),
                   TENSOR_METRICS, "relative permittivity (dimensionless)")
DIELECTRIC_ISO = _spec("embedded_dielectric_iso", TargetSpec(name="eps_iso", kind="scalar", unit=""),
                       ("mae", "rmse", "mape", "max_error"), "isotropic relative permittivity Tr(eps)/3 (dimensionless)")
ELASTIC = _spec("embedded_elastic",
                TargetSpec(name="elastic", kind="tensor", unit="GPa", rank=4, formula="ijkl=jikl=klij"),
                TENSOR_METRICS, "elastic stiffness C_ijkl in GPa (full Cartesian, not Voigt)")


def make_task(
    spec: TaskSpec,
    n_crystals: int = DEFAULT_N,
    seed: int = 0,
    progress: bool = True,
    cache: bool = True,
    workers: int | None = None,
    cache_directory: Any = None,
    split_seed: int | None = None,
    score_symmetry: bool = True,
):
    """An ArrayTask over the embedded data set; its data are built on first use."""
    config = {"n_crystals": n_crystals, "seed": seed, "split_seed": seed if split_seed is None else split_seed,
              "dataset_version": DATASET_VERSION, "score_symmetry": score_symmetry}
    return build_task(spec, n_crystals, seed, progress, cache, workers, cache_directory, split_seed, config)


def _factory(spec: TaskSpec):
    allowed = [k for k in inspect.signature(make_task).parameters if k != "spec"]

    def build(**kwargs):
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise TypeError(f"task {spec.name} does not take {unknown} (it is generated offline, no data_dir); "
                            f"options: {allowed}")
        return make_task(spec, **kwargs)

    build.__name__ = f"build_{spec.name}"
    build.__wrapped__ = make_task  # its parameters (names, types) for checking options before building
    return build


register(DIELECTRIC, _factory(DIELECTRIC))
register(DIELECTRIC_ISO, _factory(DIELECTRIC_ISO))
register(ELASTIC, _factory(ELASTIC))

__all__ = ["DEFAULT_TASK", "DIELECTRIC", "DIELECTRIC_ISO", "ELASTIC", "VERSION", "make_task"]
