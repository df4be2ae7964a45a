"""``zoo tune``: the grid, a tiny search on the toy task that never reads its test split, resume, ranking,
writing the recipe."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import TINY, toy_task
from zoo.training import UsageError, recipes
from zoo.training.tune import parse_grid, tune, write_recipe

BASE = {"model": "cgcnn", "task": "toy_volume", "epochs": 1, "batch_size": 8, "patience": 0, "progress": False,
        "graph_cache": False, "model_overrides": dict(TINY)}
GRID = {"lr": [1e-3, 3e-2]}


def no_test_task():
    """The toy task, whose test split fails the test when anything asks for it."""
    t = toy_task()

    def refuse(*args, **kwargs):
        raise AssertionError("zoo tune read the test split")

    t.get_test_data = refuse
    return t


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune")
    lines: list[str] = []
    table = tune(BASE, GRID, folds=[0], seeds=[0, 1], out=out, recipe="none", task=no_test_task(), command="zoo tune test",
                 echo=lines.append)
    return out / "cgcnn_toy_volume", table, lines


def test_the_grid_is_parsed_and_checked():
    assert parse_grid(["lr=1e-3,5e-3", "loss=mse,l1", "set.n_conv=2,3"]) == {
        "lr": [1e-3, 5e-3], "loss": ["mse", "l1"], "set.n_conv": [2, 3]}
    with pytest.raises(UsageError, match="did you mean 'lr'"):
        parse_grid(["lrr=1e-3"])
    with pytest.raises(UsageError, match="not a recipe option"):
        parse_grid(["fold=1,2"])  # the run's own option, not a recipe's
    with pytest.raises(UsageError, match="KEY=V1,V2"):
        parse_grid(["lr"])


def test_a_literal_none_in_the_grid_stays_the_word():
    # target_transform and tensor_center take the string "none", not Python's None.
    assert parse_grid(["target_transform=none,log", "tensor_center=none,isotropic", "lr=1e-3"]) == {
        "target_transform": ["none", "log"], "tensor_center": ["none", "isotropic"], "lr": [1e-3]}
    assert parse_grid(["set.density_basis=none"]) == {"set.density_basis": [None]}  # model options: as parsed


def test_a_search_trains_every_candidate_on_validation_only(searched):
    root, table, lines = searched
    assert [r["candidate"] for r in table["candidates"]] == ["lr=0.001", "lr=0.03"]
    assert sum("val mae" in line for line in lines) == 4  # progress: one line per candidate x fold x seed
    for row in table["candidates"]:
        assert row["complete"] and len(row["runs"]) == 2
        for record in row["runs"]:
            run_dir = Path(record["run_dir"])
            summary = json.loads((run_dir / "metrics.json").read_text())
            assert "test" not in summary and summary["n"]["test"] == 0
            assert (run_dir / "predictions_test.csv").read_text().count("\n") == 1  # the header alone
            assert record["value"] == summary["val"]["mae"]
    assert (root / "tune.json").is_file() and "| 1 |" in (root / "tune.md").read_text()


def test_candidates_are_ranked_by_the_median_validation_metric(searched):
    root, table, _ = searched
    ranked = sorted(table["candidates"], key=lambda r: r["rank"])
    assert [r["median"] for r in ranked] == sorted(r["median"] for r in ranked)
    best = ranked[0]
    assert table["best"] == best["candidate"]
    fragment = table["recipe"]
    assert fragment["fields"]["lr"] == best["point"]["lr"] and fragment["provenance"]["split"] == "validation"
    assert fragment["provenance"]["value"] == best["median"] and fragment["provenance"]["search"] == "zoo tune test"
    recipes.check_recipe(fragment, "tune's fragment")


def test_a_search_called_again_skips_finished_runs_and_ranks_from_their_records(searched, tmp_path):
    root, first, _ = searched
    folders = {r["candidate"]: Path(r["folder"]) for r in first["candidates"]}
    runs_before = sorted(p.name for p in root.glob("*/*") if p.is_dir())
    # Make the worse candidate the better one in its records: the ranking must follow the records.
    worse = max(first["candidates"], key=lambda r: r["rank"])
    for record_file in folders[worse["candidate"]].glob("f*_s*.json"):
        record = json.loads(record_file.read_text())
        record_file.write_text(json.dumps({**record, "value": -1.0}))
    lines: list[str] = []
    again = tune(BASE, GRID, folds=[0], seeds=[0, 1], out=root.parent, recipe="none", task=no_test_task(), echo=lines.append)
    assert sum("(skipped)" in line for line in lines) == 4
    assert sorted(p.name for p in root.glob("*/*") if p.is_dir()) == runs_before  # nothing trained again
    assert again["best"] == worse["candidate"]


def test_write_puts_the_recipe_in_the_family_file_and_drops_the_pending_note(searched, tmp_path, monkeypatch):
    _, table, _ = searched
    path = tmp_path / "recipes.json"
    path.write_text(json.dumps({"family": "cgcnn", "recipes": {}, "pending": {"scalar": "being searched"}}))
    monkeypatch.setattr(recipes, "recipes_path", lambda family: path)
    write_recipe("cgcnn", "scalar", table["recipe"])
    saved = json.loads(path.read_text())
    assert saved["recipes"]["scalar"] == table["recipe"] and "pending" not in saved
    assert recipes.family_recipes("cgcnn")["scalar"].fields == table["recipe"]["fields"]


def test_tune_refuses_options_it_sets_itself(tmp_path):
    with pytest.raises(UsageError, match="sets fold itself"):
        tune({**BASE, "fold": 1}, GRID, out=tmp_path, task=no_test_task())


def test_the_command_refuses_a_bad_grid_in_one_line(capsys):
    from zoo.cli import main

    assert main(["tune", "tfn", "--task", "matbench_jdft2d", "--grid", "lrr=1e-3"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err


def test_a_killed_run_is_resumed_from_its_checkpoint_not_restarted(tmp_path, monkeypatch):
    from tests.training.common import Kill, kill_after
    from zoo.training import loop, tune as tune_module

    def killed(config=None, **kw):  # the first epoch's checkpoint is committed, then the process "dies"
        return loop.train(config, on_epoch_end=kill_after(1), **kw)

    base, grid = {**BASE, "epochs": 2}, {"lr": [1e-3]}
    monkeypatch.setattr(tune_module, "train", killed)
    with pytest.raises(Kill):
        tune(base, grid, out=tmp_path, recipe="none", task=no_test_task(), echo=lambda line: None)
    (started,) = tmp_path.glob("*/*/f0_s0.started")
    run_dir = Path(started.read_text())
    monkeypatch.setattr(tune_module, "train", loop.train)
    table = tune(base, grid, out=tmp_path, recipe="none", task=no_test_task(), echo=lambda line: None)
    (record,) = table["candidates"][0]["runs"]
    assert Path(record["run_dir"]) == run_dir and record["epochs_run"] == 2  # the same folder, continued
    assert len([p for p in started.parent.iterdir() if p.is_dir()]) == 1
