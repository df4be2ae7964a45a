"""Write the ids of one task fold's parts to a text file, for another task's ``--task-arg exclude_ids=FILE``.

Pre-training on task A for a fine-tune on task B must not see B's held-out crystals, even under A's
target: a structure seen in pre-training is not new when B scores it. So A leaves out the B ids that
B's fold holds out: its test part, and its validation part too, so that the choice made on validation
is measured the way test will be::

    python benchmarks/exclude_ids.py --task mp_piezoelectric --data-dir ../shared/data/matminer_piezoelectric_tensor \\
        --fold 0 --parts val test --out runs/exclude/mp_piezoelectric_f0.txt
    zoo train tfn --task mp_dielectric_total --data-dir ../shared/data/matminer_dielectric_constant \\
        --task-arg exclude_ids=runs/exclude/mp_piezoelectric_f0.txt ...

The validation part is the trainer's own (``zoo.training.data.validation_ids`` with the same split seed
and fraction), so the file matches what ``zoo train --task B --fold K`` holds out.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from zoo.core.io import write_text
from zoo.training.config import TrainConfig
from zoo.training.data import build_task, series_ids, validation_ids


def fold_ids(task_name: str, fold: int, data_dir: str | None, split_seed: int = 0, val_fraction: float = 0.1) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...], "test": [...]}``: the ids of ``task_name``'s fold ``fold`` as the trainer splits them."""
    config = TrainConfig(task=task_name, fold=fold, data_dir=data_dir, split_seed=split_seed, val_fraction=val_fraction,
                         progress=False)
    task = build_task(task_name, {}, data_dir, progress=False)
    task.load()
    tv_in, _ = task.get_train_and_val_data(fold)
    te_in, _ = task.get_test_data(fold, include_target=True)
    tv_ids, te_ids = series_ids(tv_in, "train-"), series_ids(te_in, "test-")
    val = validation_ids(task, fold, tv_ids, config)
    val_set = set(val)
    return {"train": [i for i in tv_ids if i not in val_set], "val": sorted(val), "test": sorted(te_ids)}


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--data-dir")
    ap.add_argument("--fold", type=int, required=True)
    ap.add_argument("--parts", nargs="+", choices=("train", "val", "test"), default=["val", "test"])
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    parts = fold_ids(a.task, a.fold, a.data_dir, a.split_seed, a.val_fraction)
    ids = sorted({i for p in a.parts for i in parts[p]})
    head = f"# {a.task} fold {a.fold}, parts {' + '.join(a.parts)} (split seed {a.split_seed}, val fraction {a.val_fraction}): {len(ids)} ids\n"
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(a.out, head + "".join(f"{i}\n" for i in ids))
    print(f"{a.out}: {len(ids)} ids")
    return a.out


if __name__ == "__main__":
    main()
