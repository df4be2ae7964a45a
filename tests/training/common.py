"""Shared pieces of the training tests: the tiny config, a stand-in for a kill, a classification toy task.

The toy task (``tests.helpers.toy_task``): 40 rock-salt-like two-atom cubic cells (a = 3..5 Å, four
cations) whose target is the volume per atom a^3/2 (Å^3/atom). CGCNN sees a only through the bond
lengths, so the target is learnable but not trivial; the model is shrunk (``TINY``: 8 features, 1
convolution) so every run takes seconds.
"""
from __future__ import annotations

from pathlib import Path

from tests.helpers import TINY, toy_frame
from zoo.core.io import read_jsonl
from zoo.tasks.base import ArrayTask
from zoo.tasks.spec import TargetSpec, TaskSpec
from zoo.training import TrainConfig


def cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(model="cgcnn", backend="torch", epochs=3, batch_size=8, lr=3e-3, out=str(tmp_path / "runs"), progress=False,
                graph_cache=False, model_overrides=dict(TINY), patience=0)
    base.update(kw)
    return TrainConfig(**base)


class Kill(Exception):
    """Stands in for a kill: raised right after an epoch's checkpoint is committed."""


def kill_after(k: int):
    def hook(record):
        if record["epoch"] == k:
            raise Kill(k)

    return hook


def rows_without_time(run_dir) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time_s"} for r in read_jsonl(Path(run_dir) / "metrics.jsonl")]


def toy_class_task() -> ArrayTask:
    """Binary target: is the cell edge above 4 Å (about half of the crystals)."""
    frame = toy_frame(40)
    frame["large_cell"] = [bool(2 * v > 64.0) for v in frame.pop("volume_per_atom")]
    spec = TaskSpec(name="toy_large_cell", version="test-1", target=TargetSpec("large_cell", kind="class"),
                    task_type="classification", metrics=("accuracy", "rocauc"))
    return ArrayTask.from_dataframe(spec, frame, seed=0)

