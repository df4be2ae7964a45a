"""Training, evaluation and run folders for every model, in either backend.

``train(TrainConfig(model="cgcnn", task="embedded_dielectric_iso", backend="torch"))`` trains one
fold and writes a run folder; ``train(resume=run_dir)`` continues a killed run; ``load_trained(...)``
rebuilds the best model from its weights file alone; ``evaluate(...)`` scores it on a task fold;
``reproduce(...)`` runs every fold and writes matbench's submission files. Importing this package
imports neither backend.

One module per concern, in the order a run meets them:

=================  ================================================================================
``config``         ``TrainConfig`` (every option, checked when made: type, choices, range) and the checker
                   of ``--set`` / ``--task-arg`` options against the parameters they go to
``data``           the fold: train / validation / test graphs and targets (NaN targets refused), batches
``dataid``         what data a run saw (task options, files, fingerprints), recorded with its weights
``targets``        target standardisation, the loss choice, scores (``zoo.tasks.metrics``)
``schedule``       the learning-rate schedule
``adapter``        what the loop needs from a backend; ``torch`` and ``jax`` implement it; backend/device checks
``budget``         the memory a step needs, estimated from the parameter shapes before allocating
``run``            the ``Run``: settings and progress shared by the loop, checkpoints and evaluation
``runs``           the run folder's layout (names, predictions CSVs, checkpoint pointers, the run's lock)
``checkpoint``     what a checkpoint holds, and resuming from the newest usable one
``loop``           ``train``: the epoch loop
``trained``        ``load_trained`` / ``TrainedModel``: weights checked against their metadata, ``predict``
``evaluate``       end-of-run predictions and plots, ``evaluate`` (only on the data the weights were made for)
``plots``          learning curve and parity plots
``reproduce``      every fold of a task -> matbench's ``results.json.gz`` + ``info.json`` (one writer at a time)
``recipes``        each family's training recipe per task kind (``zoo/models/<family>/recipes.json``), resolved
                   under the options a user sets, recorded in the run's config
``tune``           ``zoo tune``: a grid search of a recipe on validation folds (the test split never read)
=================  ================================================================================
"""
from __future__ import annotations

from .adapter import Adapter, get_adapter
from .config import DEFAULT_TASK, TrainConfig, TrainingError, UsageError
from .evaluate import evaluate
from .trained import TrainedModel, load_trained
from .loop import TrainResult, train
from .reproduce import reproduce
from .run import Run
from .schedule import LRSchedule
from .targets import TargetNormalizer, compute_metrics

__all__ = [
    "DEFAULT_TASK", "Adapter", "LRSchedule", "Run", "TargetNormalizer", "TrainConfig", "TrainedModel", "TrainingError",
    "TrainResult", "UsageError", "compute_metrics", "evaluate", "get_adapter", "load_trained", "reproduce", "train",
]
