"""Training, evaluation and run folders for every model, in either backend.

``train(TrainConfig(model="cgcnn", task="embedded_dielectric_iso", backend="torch"))`` trains one
fold and writes a run folder; ``train(resume=run_dir)`` continues a killed run; ``load_trained(...)``
rebuilds the best model from its weights file alone; ``evaluate(...)`` scores it on a task fold;
``reproduce(...)`` runs every fold and writes matbench's submission files. Importing this package
imports neither backend.

One module per concern, in the order a run meets them:

=================  ================================================================================
``config``         ``TrainConfig`` (every option, with the help text the command line shows)
``data``           the fold: train / validation / test graphs and targets, batches
``targets``        target standardisation, the loss choice, scores (``zoo.tasks.metrics``)
``schedule``       the learning-rate schedule
``adapter``        what the loop needs from a backend; ``torch`` and ``jax`` implement it
``run``            the ``Run``: settings and progress shared by the loop, checkpoints and evaluation
``runs``           the run folder's layout (names, predictions CSVs, the checkpoint pointer)
``checkpoint``     what a checkpoint holds, and resuming from one
``loop``           ``train``: the epoch loop
``evaluate``       end-of-run predictions and plots, ``load_trained``, ``evaluate``
``plots``          learning curve and parity plots
``reproduce``      every fold of a task -> matbench's ``results.json.gz`` + ``info.json``
=================  ================================================================================
"""
from __future__ import annotations

from .adapter import Adapter, get_adapter
from .config import DEFAULT_TASK, TrainConfig, TrainingError, UsageError
from .evaluate import TrainedModel, evaluate, load_trained
from .loop import TrainResult, train
from .reproduce import reproduce
from .run import Run
from .schedule import LRSchedule
from .targets import TargetNormalizer, compute_metrics

__all__ = [
    "DEFAULT_TASK", "Adapter", "LRSchedule", "Run", "TargetNormalizer", "TrainConfig", "TrainedModel", "TrainingError",
    "TrainResult", "UsageError", "compute_metrics", "evaluate", "get_adapter", "load_trained", "reproduce", "train",
]
