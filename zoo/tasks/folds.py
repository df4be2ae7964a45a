"""Folds of a task: seeded splits (matbench's construction), their checks, and split files.

A split maps matbench's fold names to id lists, ``{"fold_k": {"train", "validation", "test"}}``, with
matbench's meaning of "train" (every id that is not in the fold's test set); "validation" is a fixed
subset of it, so every model early-stops on the same structures. Split files are JSON
(``{"format", "meta", "folds"}``) written atomically, so a later run and other tools use the very same ids.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from zoo.core.io import write_json

from .spec import TaskSpec

logger = logging.getLogger(__name__)

SPLIT_FORMAT = 1


def make_split(
    ids: Sequence[str],
    kind: str = "kfold",
    n_folds: int = 5,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> dict[str, dict[str, list[str]]]:
    """Seed-derived folds over ``ids``: ``{"fold_k": {"train", "validation", "test"}}``.

    kfold (matbench's construction): shuffle positions with ``np.random.RandomState(seed)``, cut into
    ``n_folds`` blocks (the first ``n % n_folds`` one longer); fold k's test set is block k. "train" is
    everything else (matbench's train = train + validation); "validation" is a fixed, seeded subset
    of it with ``round(val_fraction * n)`` ids, so every model early-stops on the same structures.

    holdout: one fold, 80/10/10: test = the first 10 % of the shuffled ids, validation the next 10 %,
    train = validation + the remaining 80 %.

    Lists keep the order of ``ids`` (matbench keeps the data set's row order too).
    """
    ids = [str(i) for i in ids]
    n = len(ids)
    if len(set(ids)) != n:
        dup = sorted({i for i in ids if ids.count(i) > 1})[:10]
        raise ValueError(f"ids must be unique to split them; duplicated: {dup}")
    rng = np.random.RandomState(seed)
    perm = rng.permutation(n)
    n_val = int(round(val_fraction * n))
    folds: dict[str, dict[str, list[str]]] = {}
    if kind == "kfold":
        if n < n_folds:
            raise ValueError(f"cannot make {n_folds} folds from {n} ids")
        sizes = [n // n_folds + (1 if k < n % n_folds else 0) for k in range(n_folds)]
        start = 0
        for k, size in enumerate(sizes):
            test_pos = np.sort(perm[start : start + size])
            start += size
            train_pos = np.setdiff1d(np.arange(n), test_pos)
            val_pos = np.sort(rng.choice(train_pos, size=min(n_val, len(train_pos) - 1), replace=False))
            folds[f"fold_{k}"] = {
                "train": [ids[i] for i in train_pos],
                "validation": [ids[i] for i in val_pos],
                "test": [ids[i] for i in test_pos],
            }
    elif kind == "holdout":
        n_test = int(round(0.1 * n))
        n_val = int(round(0.1 * n))
        if n_test < 1 or n_val < 1 or n - n_test - n_val < 1:
            raise ValueError(f"a holdout split 80/10/10 needs at least 10 ids, got {n}")
        test_pos = np.sort(perm[:n_test])
        val_pos = np.sort(perm[n_test : n_test + n_val])
        train_pos = np.sort(perm[n_test:])
        folds["fold_0"] = {
            "train": [ids[i] for i in train_pos],
            "validation": [ids[i] for i in val_pos],
            "test": [ids[i] for i in test_pos],
        }
    else:
        raise ValueError(f"unknown split kind {kind!r}; use 'kfold' or 'holdout'")
    return folds


def check_split(fold_ids: dict[str, dict[str, list[str]]], ids: Iterable[str], what: str = "split") -> None:
    """Raise ValueError unless the test sets are disjoint and cover ``ids``, train is the complement of
    test, and validation (if any) lies inside train."""
    all_ids = {str(i) for i in ids}
    seen: set[str] = set()
    for key, fold in fold_ids.items():
        test = set(fold["test"])
        train = set(fold["train"])
        unknown = (test | train) - all_ids
        if unknown:
            raise ValueError(f"{what}: {key} names {len(unknown)} ids that are not in the data, e.g. "
                             f"{sorted(unknown)[:5]} (dropped for a missing target, or a stale split file?)")
        if test & seen and len(fold_ids) > 1:
            raise ValueError(f"{what}: {key} test ids overlap an earlier fold, e.g. {sorted(test & seen)[:5]}")
        seen |= test
        if train & test:
            raise ValueError(f"{what}: {key} has ids in both train and test, e.g. {sorted(train & test)[:5]}")
        if len(fold_ids) > 1 and train | test != all_ids:
            raise ValueError(f"{what}: {key} train + test does not cover the {len(all_ids)} ids")
        val = fold.get("validation")
        if val is not None and not set(val) <= train:
            raise ValueError(f"{what}: {key} validation ids must be a subset of its train ids")
    if len(fold_ids) > 1 and seen != all_ids:
        raise ValueError(f"{what}: the test sets of the folds miss {len(all_ids - seen)} ids")


def write_split(path: str | os.PathLike, fold_ids: dict, meta: dict[str, Any] | None = None) -> Path:
    """Write a split as JSON (``{"format", "meta", "folds"}``), atomically."""
    path = Path(path)
    write_json(path, {"format": SPLIT_FORMAT, "meta": dict(meta or {}), "folds": fold_ids}, indent=1)
    return path


def read_split(path: str | os.PathLike) -> tuple[dict[str, dict[str, list[str]]], dict[str, Any]]:
    """Read a split written by :func:`write_split` -> (folds, meta)."""
    with open(path) as fh:
        d = json.load(fh)
    if not isinstance(d, dict) or "folds" not in d:
        raise ValueError(f"{path} is not a crystal-zoo split file (no 'folds' key)")
    return d["folds"], d.get("meta", {})


def resolve_split(
    spec: TaskSpec,
    df: pd.DataFrame,
    seed: int,
    split_file: str | os.PathLike | None,
    val_fraction: float = 0.1,
    stale: str = "raise",
) -> dict[str, dict[str, list[str]]]:
    """The folds of ``spec`` over ``df.index``: read from ``split_file`` when it exists (``stale``:
    "raise" or "remake" when it does not fit the data), else made with :func:`make_split` and, with a
    ``split_file``, written there."""
    path = Path(split_file) if split_file is not None else None
    if path is not None and path.exists():
        folds, meta = read_split(path)
        try:
            if set(folds) != set(fold_keys(spec)):
                raise ValueError(f"{path}: folds {sorted(folds)}, the task has {fold_keys(spec)}")
            check_split(folds, df.index, what=str(path))
            logger.info("task %s: folds read from %s (seed %s)", spec.name, path, meta.get("seed"))
            return folds
        except ValueError as exc:
            if stale != "remake":
                raise
            logger.warning("split file %s does not fit the data (%s); making the split again", path, exc)
    folds = make_split(list(df.index), kind=spec.split, n_folds=spec.n_folds, seed=seed, val_fraction=val_fraction)
    if path is not None:
        write_split(path, folds, meta={"task": spec.name, "version": spec.version, "seed": seed, "kind": spec.split,
                                       "n_folds": spec.n_folds, "val_fraction": val_fraction, "n": len(df)})
        logger.info("task %s: folds written to %s", spec.name, path)
    return folds


def fold_keys(spec: TaskSpec) -> list[str]:
    """matbench's fold names: "fold_0" ... ("fold_0" alone for a holdout split)."""
    return [f"fold_{k}" for k in range(1 if spec.split == "holdout" else spec.n_folds)]
