"""Record a published entry's golden predictions: ``python -m tests.pretrained.record_golden NAME``.

Run once, when the entry is published: it predicts ``data/crystal_*.cif`` (small crystals written from
``zoo.testing.random_crystals(4, seed=14, max_atoms=6)``) with the torch backend in float64 and adds
them to ``data/golden.json`` under the entry's name and weights sha256. A name already recorded is never
re-recorded (its tag cannot change meaning); ``test_golden.py`` checks both backends against it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden.json"


def structures() -> list[Path]:
    return sorted(DATA.glob("crystal_*.cif"))


def record(name: str) -> None:
    import numpy as np

    from zoo import pretrained
    from zoo.core.io import write_json

    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    entry = pretrained.get_entry(name)
    if entry.name in golden:
        raise SystemExit(f"{entry.name} is already recorded in {GOLDEN}; a published tag never changes meaning")
    model = pretrained.load(entry.name, backend="torch", dtype="float64")
    pred = model.predict([str(p) for p in structures()], cache=False)
    golden[entry.name] = {"weights_sha256": entry.weights.sha256, "backend": "torch", "dtype": "float64",
                          "files": [p.name for p in structures()], "predictions": np.asarray(pred).tolist()}
    write_json(GOLDEN, dict(sorted(golden.items())))
    print(f"{entry.name}: recorded {len(pred)} predictions in {GOLDEN}")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        record(arg)
