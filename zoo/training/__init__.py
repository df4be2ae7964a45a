"""Training, evaluation and run folders for every model, in either backend.

``train(TrainConfig(model="cgcnn", task="embedded_dielectric_iso", backend="torch"))`` trains one
fold and writes a run folder (``zoo.training.runs``); ``train(resume=run_dir)`` continues a killed
run; ``load_trained(run_dir_or_weights, backend=...)`` rebuilds the best model from its metadata
alone; ``evaluate(...)`` scores it on a task fold. Importing this package imports neither backend.
"""
from __future__ import annotations

from .loop import (
    DEFAULT_TASK,
    LRSchedule,
    TargetNormalizer,
    TrainConfig,
    TrainedModel,
    TrainingError,
    TrainResult,
    compute_metrics,
    evaluate,
    load_trained,
    train,
)

__all__ = [
    "DEFAULT_TASK", "LRSchedule", "TargetNormalizer", "TrainConfig", "TrainedModel", "TrainingError", "TrainResult",
    "compute_metrics", "evaluate", "load_trained", "train",
]
