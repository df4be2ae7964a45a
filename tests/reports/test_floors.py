"""zoo.reports.floors on a tiny embedded task (60 generated candidates): scores equal task.record's,
the symmetrised floors are symmetric, the table shows the JSON's numbers, files merge, errors are clear."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from zoo.reports import common, floors as floors_module
from zoo.reports.common import ReportError

N = 60  # generated candidates; ~47 survive the polarization catastrophe, labelled in about a second
TASK = "embedded_dielectric"


@pytest.fixture(scope="module")
def floors():
    return floors_module


@pytest.fixture(scope="module")
def run(floors, tmp_path_factory):
    out = tmp_path_factory.mktemp("floors")
    results = floors.run(["--tasks", TASK, "--n-crystals", str(N), "--out", str(out), "--no-progress"])
    return out, results


def test_writes_json_and_readme_with_every_floor_and_fold(floors, run):
    out, results = run
    on_disk = json.loads((out / "floors.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    entry = on_disk["tasks"][TASK]
    assert set(entry["floors"]) == set(floors.FLOORS)
    assert entry["split"]["kind"] == "kfold" and entry["split"]["n_folds"] == 5
    assert sum(entry["split"]["fold_test_sizes"]) == entry["n_crystals"]
    assert 0 < entry["n_crystals"] <= N
    assert entry["version"] and entry["packages"]["numpy"] and entry["date"]
    assert re.fullmatch(r"[0-9a-f]{64}", entry["split"]["fold_ids_sha256"])
    for r in entry["floors"].values():
        assert len(r["per_fold"]) == 5
        for m in ("ewt25", "ewt10", "ewt5"):  # fractions, nested thresholds
            vals = [f[m] for f in r["per_fold"]]
            assert all(0.0 <= v <= 1.0 for v in vals)
        for f in r["per_fold"]:
            assert f["ewt5"] <= f["ewt10"] <= f["ewt25"]
        s = r["summary"]["mae"]
        maes = [f["mae"] for f in r["per_fold"]]
        assert s["mean"] == pytest.approx(np.mean(maes)) and s["std"] == pytest.approx(np.std(maes))


def test_symmetrised_floors_are_symmetric_raw_ones_are_not(run):
    entry = json.loads((run[0] / "floors.json").read_text())["tasks"][TASK]["floors"]
    # Neumann average over the crystal's own group: symmetric to float precision by construction.
    assert entry["mean"]["summary"]["sym_violation_mean"]["max"] < 1e-10
    assert entry["element_linear"]["summary"]["sym_violation_mean"]["max"] < 1e-10
    # A composition-only fit ignores the lattice: its raw tensors break most crystals' symmetry.
    assert entry["element_linear_nosym"]["summary"]["sym_violation_mean"]["mean"] > 1e-2
    # Averaging over the group is an orthogonal projection onto the symmetric tensors, and the true
    # tensors lie in that subspace: it can only lower each crystal's Frobenius error.
    for f in ("mean", "element_linear"):
        for sym, raw in zip(entry[f]["per_fold"], entry[f + "_nosym"]["per_fold"]):
            assert sym["fnorm"] <= raw["fnorm"] + 1e-9


def test_scores_equal_task_record(run):
    """The script's per-fold scores are exactly those task.record gives the same predictions."""
    from zoo import tasks
    from zoo.tasks.baselines import MeanBaseline

    entry = json.loads((run[0] / "floors.json").read_text())["tasks"][TASK]
    task = tasks.get(TASK, n_crystals=N, progress=False)
    for fold in task.folds:
        x, y = task.get_train_and_val_data(fold)
        pred = MeanBaseline(mode="point_group").fit(x.to_list(), y.to_list()).predict(task.get_test_data(fold).to_list())
        task.record(fold, list(pred))
        mine = entry["floors"]["mean"]["per_fold"][fold]
        theirs = task.results[task.folds_keys[fold]]["scores"]
        assert set(mine) == set(theirs)
        for k in mine:
            assert mine[k] == pytest.approx(theirs[k], rel=1e-9, abs=1e-12), k


def test_table_rows_show_the_json_numbers(floors, run):
    out, _ = run
    d = json.loads((out / "floors.json").read_text())
    text = (out / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith(f"| {TASK} | ") and " ± " in line]
    assert len(rows) == len(floors.FLOORS)
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        floor = cells[1]
        s = d["tasks"][TASK]["floors"][floor]["summary"]
        assert cells[2] == str(d["tasks"][TASK]["n_crystals"])
        mae_mean = float(cells[4].split(" ± ")[0])
        assert mae_mean == pytest.approx(s["mae"]["mean"], rel=1e-3)
        ewt25 = float(cells[6].split(" ± ")[0])  # table in %, JSON a fraction
        assert ewt25 == pytest.approx(100 * s["ewt25"]["mean"], abs=0.051)


def test_merges_with_existing_results_and_replace_drops_them(floors, run, tmp_path):
    out = tmp_path
    (out / "floors.json").write_text((run[0] / "floors.json").read_text())
    floors.run(["--tasks", "embedded_elastic", "--floors", "mean", "--n-crystals", str(N), "--out", str(out),
                "--no-progress"])
    d = json.loads((out / "floors.json").read_text())
    assert set(d["tasks"]) == {TASK, "embedded_elastic"}
    assert d["tasks"]["embedded_elastic"]["target"]["unit"] == "GPa"
    assert "| embedded_elastic | mean |" in (out / "README.md").read_text()
    floors.run(["--tasks", "embedded_elastic", "--floors", "mean", "--n-crystals", str(N), "--out", str(out),
                "--no-progress", "--replace"])
    assert set(json.loads((out / "floors.json").read_text())["tasks"]) == {"embedded_elastic"}


def test_clear_errors(floors, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MATMINER_DATA", raising=False)
    with pytest.raises(ReportError, match="not a folder"):
        floors.resolve_data_dir(str(tmp_path / "nowhere"), ["mp_piezoelectric"])
    monkeypatch.setattr(common, "SHARED_DATA", tmp_path / "absent")
    with pytest.raises(ReportError, match="--data-dir"):
        floors.resolve_data_dir(None, ["mp_piezoelectric"])
    assert floors.resolve_data_dir(None, [TASK]) is None  # generated tasks need no data
    with pytest.raises(ReportError, match="unknown task"):
        floors.run(["--tasks", "no_such_task", "--out", str(tmp_path)])
    with pytest.raises(ReportError, match="unknown floor"):
        floors.run(["--tasks", TASK, "--floors", "median", "--out", str(tmp_path)])
    with pytest.raises(ReportError, match="scalar"):
        floors.build_task("embedded_dielectric_iso", None, N, None, progress=False)
    # the command line turns the same errors into a message and exit status 2
    assert floors.main(["--tasks", "no_such_task", "--out", str(tmp_path)]) == 2
    assert "unknown task" in capsys.readouterr().err
