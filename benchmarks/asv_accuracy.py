"""asv: accuracy after the short training and symmetry violation of tensor outputs, for every registered model.

Both call ``zoo.bench.measure``, the functions the main job (``zoo bench``) and the performance gate use,
so asv tracks over commits exactly the figures of the table.

- ``ShortTraining`` (model x backend): the main job's fixed-seed short training (``measure.short_training``:
  the family's bench task and recipe from ``zoo.bench.plan``, fold 0, seed 0), once per process;
  ``track_test_metric`` is the task's headline test metric (MAE, task units), ``track_test_over_floor``
  that metric divided by the floor's (always the training mean; < 1 is better than the floor), and
  ``track_trained_symmetry_violation`` the mean symmetry violation of the test predictions (tensor
  tasks; families without tensor outputs are skipped).
- ``SymmetryViolation`` (model x backend x dtype): mean ||T - Sym_G T|| / ||T|| of the model's tensor
  predictions with random weights on the suite's fixed crystals (``measure.symmetry_violation``), the
  check that needs no training.

Unavailable combinations raise NotImplementedError in ``setup`` (asv: skipped), as in ``asv_models``.
A short training generates the embedded data set on first use (cached under ``$ZOO_CACHE``) and takes
minutes per model on 2 CPU cores, hence the long timeout; its run folders go to a temporary folder.
"""
from __future__ import annotations

import tempfile

from benchmarks.asv_models import BACKENDS, MODELS, cached, require

TIMEOUT = 3600  # s: data generation on first use + the short training (JAX compiles included)


def _tensor_family(model: str) -> bool:
    from zoo.models import get_family

    return "tensor" in get_family(model).outputs


def short_training(model, backend):
    """``zoo.bench.measure.short_training`` of the family's bench recipe, once per process (``cached``)."""
    require(model, backend, "cpu")

    def make():
        from zoo.bench import measure

        return measure.short_training(model, backend, seed=0, out=tempfile.mkdtemp(prefix="zoo_asv_runs_"))

    return cached(("short_training", model, backend), make)


class _OneTraining:
    """Parameters of the benchmarks that read one short training (no benchmark methods of its own)."""

    params = [MODELS, BACKENDS]
    param_names = ["model", "backend"]
    timeout = TIMEOUT
    # One measurement per process: a training is not repeated to time it.
    number = 1
    repeat = 1


class ShortTraining(_OneTraining):
    def setup(self, model, backend):
        self.result = short_training(model, backend)

    def track_test_metric(self, model, backend):
        return self.result["value"]

    track_test_metric.unit = "task units (MAE)"

    def track_test_over_floor(self, model, backend):
        return self.result["value"] / self.result["floor"]

    track_test_over_floor.unit = "metric / floor"


class TrainedSymmetryViolation(_OneTraining):
    """The symmetry violation of the short training's test predictions (the same cached training as
    ``ShortTraining``). A scalar family is skipped in ``setup`` (asv shows n/a), not failed in the body."""

    def setup(self, model, backend):
        if not _tensor_family(model):
            raise NotImplementedError(f"{model} is benchmarked on a scalar task")
        self.result = short_training(model, backend)

    def track_trained_symmetry_violation(self, model, backend):
        return self.result["symmetry_violation"]

    track_trained_symmetry_violation.unit = "relative (Frobenius)"


class SymmetryViolation:
    params = [MODELS, BACKENDS, ["float32", "float64"]]
    param_names = ["model", "backend", "dtype"]
    timeout = 900

    def setup(self, model, backend, dtype):
        require(model, backend, "cpu")
        if not _tensor_family(model):
            raise NotImplementedError(f"{model} has no tensor output")

    def track_symmetry_violation(self, model, backend, dtype):
        from zoo.bench import measure

        return cached(("symmetry_violation", model, backend, dtype),
                      lambda: measure.symmetry_violation(model, backend, dtype=dtype))

    track_symmetry_violation.unit = "relative (Frobenius)"
