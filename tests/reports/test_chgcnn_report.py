"""zoo report chgcnn: where a training budget lands, and the tables of an evaluation of some folds only
(their provenance is archived next to the results; means over 5 folds only for seeds with all five)."""
from __future__ import annotations

import json

from zoo.reports import chgcnn as rep


def _fake_run(tmp_path, name: str, mae: float, finished: bool = True):
    run = tmp_path / "runs" / name
    run.mkdir(parents=True)
    for f in ("config.json", "env.json"):
        (run / f).write_text("{}")
    (run / "metrics.json").write_text(json.dumps({"finished": finished, "test": {"mae": mae}}))
    return run


def test_budget_root():
    assert rep.budget_root(300, 50) == rep.OUT
    assert rep.budget_root(25, 0) == rep.OUT / "budget_e25_p0"


def test_tables_of_a_fold_subset_archive_finished_folds_and_give_no_5_fold_mean(tmp_path, capsys):
    root = tmp_path / "budget_e25_p0"
    folders = {}
    for variant, entry, runs in (("chgcnn", "chgcnn-torch", {"0": ("a", 40.0, True), "1": ("b", 99.0, False)}),
                                 ("chgcnn", "chgcnn-torch-seed1", {"0": ("c", 44.0, True)}),
                                 ("b", "chgcnn-torch", {str(k): (f"d{k}", 30.0 + k, True) for k in range(5)})):
        folder = root / variant / "matbench_v0.1" / "matbench_jdft2d" / entry
        folder.mkdir(parents=True)
        progress = {"config": {}, "runs": {f: str(_fake_run(tmp_path, n, m, ok)) for f, (n, m, ok) in runs.items()}}
        (folder / "progress.json").write_text(json.dumps(progress))
        folders[(variant, entry)] = folder
    assert rep.tables(root=root) == 0
    # finished folds are archived with their provenance, the unfinished one is not
    archived = folders[("chgcnn", "chgcnn-torch")] / "runs"
    assert sorted(p.name for p in archived.iterdir()) == ["fold_0"]
    assert {p.name for p in (archived / "fold_0").iterdir()} == {"config.json", "env.json", "metrics.json"}
    summary = {s["variant"]: s for s in json.loads((root / "results.json").read_text())["summary"]}
    assert summary["chgcnn"]["seeds_complete"] == 0 and summary["chgcnn"]["mean_mae_5fold"] is None
    assert summary["chgcnn"]["fold0_mean"] == 42.0 and summary["chgcnn"]["fold0_n"] == 2
    assert summary["b"]["seeds_complete"] == 1 and summary["b"]["mean_mae_5fold"] == 32.0
    text = (root / "RESULTS.md").read_text()
    assert "budget_e25_p0" in text and "| 42.00 (2) |" in text


def _summary_row(variant, backend, entries):
    return {"task": "matbench_jdft2d", "variant": variant, "backend": backend, "label": rep.VARIANTS[variant][2],
            "entries": entries}


def test_paired_comparison_uses_only_the_fold_seed_pairs_both_finished_and_the_same_backend():
    summary = [
        _summary_row("cgcnn", "torch", {"cgcnn-torch": {0: 40.0, 1: 50.0, 2: 60.0}, "cgcnn-torch-seed1": {0: 42.0}}),
        # fold 3 of seed 0 and fold 1 of seed 1 have no CGCNN partner; seed 2 has none at all
        _summary_row("chgcnn", "torch", {"chgcnn-torch": {0: 38.0, 1: 51.0, 2: 55.0, 3: 1.0},
                                         "chgcnn-torch-seed1": {0: 41.0, 1: 1.0}, "chgcnn-torch-seed2": {0: 1.0}}),
        # a JAX CHGCNN is compared with the JAX CGCNN only, never with torch's
        _summary_row("chgcnn", "jax", {"chgcnn-jax": {0: 39.0}}),
        _summary_row("cgcnn", "jax", {"cgcnn-jax": {0: 41.5}}),
    ]
    rows = {(c["variant"], c["backend"]): c for c in rep.paired(summary)}
    assert set(rows) == {("chgcnn", "torch"), ("chgcnn", "jax")}
    torch_row = rows[("chgcnn", "torch")]
    # pairs (0, 0), (1, 0), (2, 0), (0, 1): differences -2, +1, -5, -1
    assert torch_row["n_pairs"] == 4 and torch_row["folds"] == [0, 1, 2] and torch_row["seeds"] == [0, 1]
    assert torch_row["mean_diff"] == -1.75 and torch_row["n_better"] == 3
    assert torch_row["wilcoxon_p"] is None  # fewer than 6 pairs: no test
    assert rows[("chgcnn", "jax")]["mean_diff"] == -2.5 and rows[("chgcnn", "jax")]["n_pairs"] == 1


def test_tables_list_each_fold_over_seeds_and_the_paired_comparison(tmp_path):
    root = tmp_path / "budget_e25_p0"
    for variant, entry, maes in (("cgcnn", "cgcnn-torch", {0: 40.0, 1: 50.0}), ("cgcnn", "cgcnn-torch-seed1", {0: 44.0}),
                                 ("chgcnn", "chgcnn-torch", {0: 38.0, 1: 47.0})):
        folder = root / variant / "matbench_v0.1" / "matbench_jdft2d" / entry
        folder.mkdir(parents=True)
        runs = {str(f): str(_fake_run(tmp_path, f"{variant}{entry}{f}", m)) for f, m in maes.items()}
        (folder / "progress.json").write_text(json.dumps({"config": {}, "runs": runs}))
    assert rep.tables(root=root) == 0
    text = (root / "RESULTS.md").read_text()
    assert "| CGCNN (same recipe) | torch | 42.00 ± 2.83 (2) | 50.00 (1) |" in text
    assert "| 2 (2 folds, 1 seeds) | -2.50 ± 0.50 | 0.71 | 2 of 2 |" in text
    paired = json.loads((root / "results.json").read_text())["paired_with_cgcnn"]
    assert [(c["variant"], c["n_pairs"]) for c in paired] == [("chgcnn", 2)]
