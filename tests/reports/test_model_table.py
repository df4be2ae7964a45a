"""zoo report model_table on synthetic result folders: which entries a task shows (the stored recipe and its
ablations; the best older entry where no recipe run exists), the carried metrics, the weight count, the
floors, and the note on invariant families for tensor tasks."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from zoo.models import config_to_dict, make_config
from zoo.models.tfn.config import n_parameters
from zoo.reports import model_table as mt
from zoo.tasks.spec import TargetSpec
from tests.reports.test_leaderboard import _run_folder, _write


def _tfn_config() -> dict:
    return config_to_dict(make_config("tfn").with_target(TargetSpec(name="e", kind="tensor", rank=3, formula="ijk=ikj")))


def _with_metrics(folder: Path, fnorm: float, ewt25: float, seconds: float) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["model"] = {"name": "tfn", "config": _tfn_config()}
    _write(folder / "config.json", config)
    _write(folder / "metrics.json", {"finished": True, "epochs_run": 20, "n": {"train": 100}, "time_s": {"train": seconds},
                                     "test": {"fnorm": fnorm, "mae": fnorm / 3, "ewt25": ewt25, "sym_violation_median": 1e-7}})


def test_table_rows_metrics_and_floors(tmp_path):
    results = tmp_path / "results"
    for k in range(5):
        for seed in (0, 1):
            f = _run_folder(results / "a" / "runs" / f"s{seed}_f{k}", k, seed, 0.0)
            _with_metrics(f, 1.0 + seed * 0.2 + 0.1 * k, 0.5 + 0.1 * seed, 10.0 * (k + 1))
        f = _run_folder(results / "b" / "runs" / f"lmax_f{k}", k, 0, 0.0, lr=0.5)  # an ablation of the recipe
        _with_metrics(f, 3.0, 0.0, 10.0)
        f = _run_folder(results / "c" / "runs" / f"old_f{k}", k, 0, 0.0, recipe=None, backend="jax")
        _with_metrics(f, 2.0 + k, 0.1, 10.0)
        _run_folder(results / "c" / "runs" / f"older_f{k}", k, 0, 9.0, recipe=None, backend="jax")
    _write(results / "floors.json", {"tasks": {"mp_piezoelectric": {"version": "1", "floors": {
        "mean": {"per_fold": [{"fnorm": 2.0}] * 5}, "element_linear": {"per_fold": [{"fnorm": 2.5}] * 5}}}}})
    out = tmp_path / "table"
    assert mt.main([f"--results={results}", f"--floors={results / 'floors.json'}", f"--out={out}",
                    f"--anchors={tmp_path / 'none.json'}"]) == 0
    t = json.loads((out / "model_table.json").read_text())["tasks"]["mp_piezoelectric"]
    labels = [r["label"] for r in t["rows"]]
    assert labels == ["tfn-torch tfn.rank3 (20 ep)", "tfn-torch tfn.rank3[lr=0.5] (20 ep)",
                      "tfn-jax[density_basis=8,message_norm=neighbors] (20 ep)"]  # no recipe name: every override shown
    best, ablation, old = t["rows"]
    assert best["stored_recipe"] and ablation["stored_recipe"] and not old["stored_recipe"]
    assert best["seeds"] == [0, 1] and best["n_runs"] == 10
    assert best["score"] == pytest.approx(1.3) and best["seed_std"] == pytest.approx(statistics.stdev([1.2, 1.4]))
    assert best["vs_best_floor"] == pytest.approx(1.3 / 2.0) and best["ewt25"] == pytest.approx(0.55)
    assert best["mae"] == pytest.approx(1.3 / 3) and best["sym_violation_median"] == pytest.approx(1e-7)
    assert best["train_structures_per_s"] == pytest.approx(statistics.median(2000 / (10.0 * (k + 1)) for k in range(5)))
    assert best["n_parameters"] == n_parameters(make_config("tfn").with_target(
        TargetSpec(name="e", kind="tensor", rank=3, formula="ijk=ikj"))) > 0
    assert old["score"] == pytest.approx(4.0)  # the better of the two older jax entries (4.0 < 9.0)
    assert t["not_applicable"] == ["cgcnn", "chgcnn"]
    page = (out / "README.md").read_text()
    assert "## mp_piezoelectric (rank3; FNORM in C/m^2)" in page and "Floors: mean 2, element_linear 2.5." in page
    assert "| tfn-jax[density_basis=8,message_norm=neighbors] (20 ep) *(no recipe run)* | 0 | 4 ± — | 2.000 |" in page
    assert "cannot predict a tensor target" in page


def test_missing_results_folder_is_named(tmp_path, capsys):
    assert mt.main([f"--results={tmp_path / 'nowhere'}", f"--out={tmp_path / 'o'}"]) == 2
    assert "is not a folder" in capsys.readouterr().err


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (ROOT / "results" / "comparison").is_dir(), reason="the repository's results/ is absent")
def test_committed_table_is_current(tmp_path):
    """The committed table is what `zoo report model_table` makes from the committed results today."""
    assert mt.main([f"--out={tmp_path}"]) == 0
    for name in ("README.md", "model_table.json"):
        assert (tmp_path / name).read_text() == (ROOT / "results" / "comparison" / name).read_text(), (
            f"results/comparison/{name} is stale: run `zoo report model_table` and commit it")
