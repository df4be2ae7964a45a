"""`zoo reproduce` works for every registered family on every kind of task it predicts: all five folds,
then the submission files (results.json.gz + info.json) and each fold's archived provenance, which the
leaderboard reads. One epoch of a shrunk model per fold, torch; slow (a few minutes in all), so `make
test-slow` runs it. matbench_jdft2d (matbench's own submission format) needs ../shared/data."""
from __future__ import annotations

import gzip
import json
import math

import pytest

from tests.helpers import TINY
from zoo.models import get_family, list_models
from zoo.training import TrainConfig
from zoo.training.reproduce import reproduce

# Shrunk configurations: the point is the reproduction's plumbing, not accuracy.
FAMILY_TINY = {
    "cgcnn": dict(TINY),
    "chgcnn": {"atom_fea_len": 8, "h_fea_len": 8, "layers": ("bt",)},  # no motifs: CrystalNN costs ~1 s per structure
    "tfn": {"n_layers": 1, "lmax": 1, "embed_dim": 8, "radial_hidden": 8},
    "pgnet": {"n_layers": 1, "embed_dim": 8, "radial_hidden": 8},
}
# One task per kind of output; the embedded tasks are generated offline (30 crystals keep it small).
TASKS = {"scalar": ("embedded_dielectric_iso", {"n_crystals": 30}), "tensor": ("embedded_dielectric", {"n_crystals": 30})}
CASES = [(m, kind) for m in sorted(FAMILY_TINY) for kind in TASKS if kind in get_family(m).outputs]


def test_every_family_has_a_case():
    assert sorted(FAMILY_TINY) == sorted(list_models()), "a new family needs its shrunk configuration here"


def _reproduce(tmp_path, model, task, task_kwargs=None, data_dir=None):
    base = TrainConfig(model=model, backend="torch", task=task, task_kwargs=task_kwargs or {}, data_dir=data_dir,
                       epochs=1, batch_size=8, patience=0, progress=False, model_overrides=FAMILY_TINY[model],
                       out=str(tmp_path / "runs"))
    (out,) = reproduce(base, seeds=[0], results=tmp_path / "results")
    with gzip.open(out / "results.json.gz", "rt") as fh:
        results = json.load(fh)
    folds = next(iter(results["tasks"].values()))["results"] if "tasks" in results else results["results"]
    assert sorted(folds) == [f"fold_{k}" for k in range(5)]
    for k in range(5):
        assert all(math.isfinite(v) for v in folds[f"fold_{k}"]["scores"].values() if isinstance(v, float))
        for name in ("config.json", "env.json", "metrics.json"):
            assert (out / "runs" / f"fold_{k}" / name).is_file()
    assert json.loads((out / "info.json").read_text())["algorithm"] == f"{model}-torch"
    return out


@pytest.mark.slow
@pytest.mark.parametrize("model,kind", CASES)
def test_reproduce_embedded(tmp_path, model, kind):
    task, kwargs = TASKS[kind]
    out = _reproduce(tmp_path, model, task, kwargs)
    assert out.parts[-3:] == ("crystal-zoo", task, f"{model}-torch")


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(FAMILY_TINY))
def test_reproduce_matbench_jdft2d(tmp_path, shared_data, model):
    out = _reproduce(tmp_path, model, "matbench_jdft2d", data_dir=str(shared_data / "matbench_jdft2d"))
    assert out.parts[-3:] == ("matbench_v0.1", "matbench_jdft2d", f"{model}-torch")
