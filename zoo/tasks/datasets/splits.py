"""Seeded, committed splits of the tensor data sets: one 80/10/10 hold-out split and one 5-fold split each.

A split is made over ALL ids of a data set (sorted, so the row order of a file does not matter) with
:func:`zoo.tasks.folds.make_split` (``np.random.RandomState(seed)``), and written to
``zoo/tasks/datasets/splits/<dataset>_v<version>.json``::

    {"format": 1,
     "meta": {"dataset", "version", "seed", "n", "n_folds", "val_fraction", "source", "made_by"},
     "holdout": {"fold_0": {"train", "validation", "test"}},            # 80/10/10; train includes validation
     "kfold":   {"fold_0": {...}, ..., "fold_4": {...}}}                # matbench-style; validation = 10 % of n

Lists are sorted id strings. Tasks use a subset of the ids (rows whose frame could not be fixed,
missing targets) with :func:`restrict`, which keeps the folds disjoint and the test sets a partition,
so the assignment of an id to a fold never depends on the task's filtering.

Data sets whose file is not available offline (``mp_elastic``, JARVIS) have no committed split: their
split is made the same way at load time (:func:`dataset_folds`), reproducible from the seed and the ids.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from zoo.core.io import write_text
from zoo.tasks.folds import make_split

from .loaders import load
from .sources import dataset_info

logger = logging.getLogger(__name__)

SPLITS_DIR = Path(__file__).resolve().parent / "splits"
SPLIT_SEED = 0
N_FOLDS = 5
VAL_FRACTION = 0.1
FORMAT = 1
KINDS = ("holdout", "kfold")


def make_dataset_splits(
    ids: Iterable[str],
    seed: int = SPLIT_SEED,
    n_folds: int = N_FOLDS,
    val_fraction: float = VAL_FRACTION,
) -> dict[str, dict[str, dict[str, list[str]]]]:
    """``{"holdout": folds, "kfold": folds}`` over the sorted ``ids`` (see :func:`zoo.tasks.folds.make_split`)."""
    ids = sorted(str(i) for i in ids)
    return {
        "holdout": make_split(ids, kind="holdout", seed=seed, val_fraction=val_fraction),
        "kfold": make_split(ids, kind="kfold", n_folds=n_folds, seed=seed, val_fraction=val_fraction),
    }


def split_path(dataset: str, version: str | None = None) -> Path:
    """``zoo/tasks/datasets/splits/<dataset>_v<version>.json`` (version: the data set's, by default)."""
    if version is None:
        version = dataset_info(_base_dataset(dataset)).version
    return SPLITS_DIR / f"{dataset}_v{version}.json"


def _base_dataset(dataset: str) -> str:
    # mp_elastic_matten_n100 is the 100-row example file of the mp_elastic_matten layout
    return "mp_elastic_matten" if dataset.startswith("mp_elastic_matten") else dataset


def write_dataset_splits(
    dataset: str,
    ids: Iterable[str],
    seed: int = SPLIT_SEED,
    path: str | os.PathLike | None = None,
    source: str = "",
) -> Path:
    """Make the splits of ``dataset`` over ``ids`` and write them (atomically) as compact JSON."""
    ids = sorted({str(i) for i in ids})
    version = dataset_info(_base_dataset(dataset)).version
    splits = make_dataset_splits(ids, seed=seed)
    meta = {"dataset": dataset, "version": version, "seed": seed, "n": len(ids), "n_folds": N_FOLDS,
            "val_fraction": VAL_FRACTION, "source": source,
            "made_by": "zoo.tasks.datasets.splits.make_dataset_splits (zoo.tasks.folds.make_split over sorted ids)"}
    path = Path(path) if path is not None else split_path(dataset, version)
    # One list per line: small files, readable diffs.
    lines = ["{", f' "format": {FORMAT},', f' "meta": {json.dumps(meta)},']
    for k, kind in enumerate(KINDS):
        lines.append(f' "{kind}": {{')
        folds = splits[kind]
        for f, (key, fold) in enumerate(folds.items()):
            parts = [f'  "{key}": {{']
            for p, part in enumerate(("train", "validation", "test")):
                comma = "," if p < 2 else ""
                parts.append(f'   "{part}": {json.dumps(fold[part])}{comma}')
            parts.append("  }" + ("," if f < len(folds) - 1 else ""))
            lines.extend(parts)
        lines.append(" }" + ("," if k < len(KINDS) - 1 else ""))
    lines.append("}")
    write_text(path, "\n".join(lines) + "\n")
    os.chmod(path, 0o644)  # a committed file, readable by all (mkstemp makes 0600)
    logger.info("wrote splits of %s (%d ids, seed %d) to %s", dataset, len(ids), seed, path)
    return path


def read_dataset_splits(dataset: str | None = None, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The committed split file of ``dataset`` (or ``path``) as a dict (``format``, ``meta``, kinds)."""
    if path is None:
        if dataset is None:
            raise ValueError("give a dataset name or a path")
        path = split_path(dataset)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no split file {path}; make one with tasks.datasets.splits.write_dataset_splits")
    with open(path, encoding="utf-8") as fh:
        d = json.load(fh)
    if d.get("format") != FORMAT or not all(k in d for k in KINDS):
        raise ValueError(f"{path} is not a crystal-zoo data-set split file (format {FORMAT} with {KINDS})")
    return d


def split_ids(splits: dict[str, Any]) -> list[str]:
    """All ids of a split file (the union of the k-fold test sets), sorted."""
    return sorted(i for fold in splits["kfold"].values() for i in fold["test"])


def restrict(folds: dict[str, dict[str, list[str]]], ids: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """The folds with every list filtered to ``ids`` (order kept)."""
    keep = {str(i) for i in ids}
    return {key: {part: [i for i in lst if i in keep] for part, lst in fold.items()} for key, fold in folds.items()}


def dataset_folds(
    dataset: str,
    kind: str,
    ids: Sequence[str],
    all_ids: Sequence[str] | None = None,
    seed: int = SPLIT_SEED,
    use_committed: bool = True,
) -> tuple[dict[str, dict[str, list[str]]], dict[str, Any]]:
    """Folds of ``kind`` ("kfold" | "holdout") for a task over ``ids`` (a subset of the data set's
    ``all_ids``, default ``ids``).

    With ``use_committed`` and a committed split file for ``dataset`` made with ``seed``, its folds are
    used (every id must be in it, else ValueError: the data changed, bump the version); otherwise the
    split is made over ``all_ids`` now, exactly as the committed files were. Either way the folds are
    then restricted to ``ids``. Returns ``(folds, meta)``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    ids = [str(i) for i in ids]
    path = split_path(dataset)
    if use_committed and path.is_file():
        d = read_dataset_splits(path=path)
        if d["meta"].get("seed") == seed:
            known = set(split_ids(d))
            unknown = sorted(set(ids) - known)  # all_ids beyond the file are fine if the task does not use them
            if unknown:
                raise ValueError(f"{path} does not cover {len(unknown)} ids of {dataset}, e.g. {unknown[:5]}: the data "
                                 f"are not the ones the split was made for (new version? regenerate the split)")
            return restrict(d[kind], ids), {**d["meta"], "file": path.name}
        logger.info("%s: committed split has seed %s, making one with seed %s", dataset, d["meta"].get("seed"), seed)
    universe = [str(i) for i in (all_ids if all_ids is not None else ids)]
    missing = sorted(set(ids) - set(universe))
    if missing:
        raise ValueError(f"{dataset}: ids {missing[:5]} are not in all_ids")
    splits = make_dataset_splits(universe, seed=seed)
    return restrict(splits[kind], ids), {"dataset": dataset, "seed": seed, "n": len(universe), "file": None}


__all__ = [
    "KINDS", "N_FOLDS", "SPLITS_DIR", "SPLIT_SEED", "VAL_FRACTION", "dataset_folds", "make_dataset_splits",
    "COMMITTED", "read_dataset_splits", "restrict", "split_ids", "split_path", "write_committed",
    "write_dataset_splits",
]


# Data sets with committed split files: split-file name -> (loader data set, loader kwargs).
COMMITTED = {
    "mp_dielectric": ("mp_dielectric", {}),
    "mp_piezoelectric": ("mp_piezoelectric", {}),
    "mp_elastic_matten_n100": ("mp_elastic_matten", {}),
}


def write_committed(data_dir: str | os.PathLike, names: Iterable[str] | None = None) -> list[Path]:
    """(Re)write the committed split files from the data in ``data_dir`` (e.g. ``../shared/data``)."""
    out = []
    for name in names or COMMITTED:
        dataset, kwargs = COMMITTED[name]
        df = load(dataset, data_dir=data_dir, fix_frames=False, progress=False, **kwargs)
        src = df.attrs.get("source_file")
        out.append(write_dataset_splits(name, df.index, source=Path(src).name if src else dataset_info(dataset).source))
    return out


if __name__ == "__main__":  # python -m zoo.tasks.datasets.splits ../shared/data
    logging.basicConfig(level=logging.INFO)
    for p in write_committed(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"):
        print(p)
