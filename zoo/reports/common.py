"""What the report modules share: where results and data live by default, and how a report builds a task.

Not a report itself (no ``main``): ``zoo report`` lists only the modules that define one.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from zoo import tasks
from zoo.core import paths
from zoo.tasks.datasets import TASKS as REAL_DATA_TASKS

# The checkout that holds this package: reports write their committed records under its results/ by
# default (as the scripts they came from did), and the real data sets sit next to it in ../shared/data.
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
SHARED_DATA = ROOT.parent / "shared" / "data"


class ReportError(RuntimeError):
    """A problem with a report's inputs; the message says what and how to fix it (``main`` prints it and
    exits with status 2)."""


def needs_data_dir(name: str) -> bool:
    """Real-data tasks (``zoo.tasks.datasets``) read files; the embedded ones are generated offline."""
    return name in REAL_DATA_TASKS


def resolve_data_dir(arg: str | os.PathLike | None, task_names: Sequence[str]) -> Path | None:
    """The folder with the real data: ``--data-dir``, else ``$MATMINER_DATA`` (``zoo.core.paths``), else
    ../shared/data next to the checkout when it exists. Only an error when a real-data task is asked for
    and none of them names a folder; the error says what to pass."""
    folder, why = paths.resolve_data_dir(arg)
    if folder is not None:
        if not folder.is_dir():
            raise ReportError(f"{folder} (from {why}) is not a folder; pass the folder with the matminer / MatTen "
                              f"files (e.g. ../shared/data, see zoo/tasks/datasets/README.md)")
        return folder.resolve()
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    real = [t for t in task_names if needs_data_dir(t)]
    if real:
        raise ReportError(f"tasks {real} need the real data sets, but no --data-dir or {paths.DATA_VARIABLE} was given "
                          f"and the default {SHARED_DATA} does not exist; pass --data-dir FOLDER (the folder with "
                          f"dielectric_constant.json.gz etc., see zoo/tasks/datasets/README.md) or run only the "
                          f"embedded tasks (--tasks embedded_dielectric,embedded_elastic)")
    return None


def get_task(name: str, data_dir: Path | None, **task_kwargs: Any):
    """``zoo.tasks.get(name, ...)`` with ``data_dir`` passed only to the tasks that read files (the
    embedded tasks are generated and refuse a data_dir)."""
    if needs_data_dir(name):
        task_kwargs["data_dir"] = data_dir
    return tasks.get(name, **task_kwargs)
