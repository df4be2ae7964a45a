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
