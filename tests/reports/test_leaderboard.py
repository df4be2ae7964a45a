"""zoo report leaderboard: built from small synthetic result folders (ranking, folds covered, provenance,
format, regeneration), the committed anchors' schema and sources, and the repository's own results."""
from __future__ import annotations

import gzip
import json
import math
import re
import statistics
from pathlib import Path

import pytest

from zoo import tasks
from zoo.reports import leaderboard as lb
from zoo.training import recipes

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "a" * 40
RECIPE = {"epochs": 300, "patience": 50, "batch_size": 64, "lr": 0.001, "optimizer": "adamw", "schedule": "cosine",
          "dtype": "float32"}


def _write(path: Path, obj, gz: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(obj).encode()
    path.write_bytes(gzip.compress(data) if gz else data)


def _env(commit: str = COMMIT) -> dict:
    return {"created_utc": "2026-12-01T10:00:00+00:00", "device": "cpu (torch, 2 threads)",
            "git": {"commit": commit, "dirty": False}, "machine": {"cpu": "Test CPU", "cpu_count": 2}}


def _reproduction(folder: Path, model: str, seed: int, maes: dict[int, float], submission: bool, **task_kwargs) -> None:
    """A ``zoo reproduce`` result folder: progress.json, archived runs/fold_k/*.json and, when every fold
    finished, matbench's results.json.gz."""
    config = {"task": "matbench_jdft2d", "model": model, "backend": "torch", "seed": seed, "model_overrides": {},
              "task_kwargs": task_kwargs, **RECIPE}
    runs = {str(k): f"runs/{model}_s{seed}_f{k}" for k in maes}
    _write(folder / "progress.json", {"config": config, "runs": runs})
    for k, mae in maes.items():
        _write(folder / "runs" / f"fold_{k}" / "env.json", _env())
        _write(folder / "runs" / f"fold_{k}" / "metrics.json", {"finished": True, "test": {"mae": mae}})
    if submission:
        results = {f"fold_{k}": {"scores": {"mae": mae}, "parameters": {"run": f"{model}_s{seed}_f{k}"}} for k, mae in maes.items()}
        _write(folder / "results.json.gz", {"tasks": {"matbench_jdft2d": {"results": results}}}, gz=True)


def _synthetic(tmp_path: Path) -> dict[str, Path]:
    results = tmp_path / "results"
    jdft2d = results / "matbench_v0.1" / "matbench_jdft2d"
    _reproduction(jdft2d / "cgcnn-torch-seed0", "cgcnn", 0, {0: 40.0, 1: 50.0, 2: 60.0, 3: 45.0, 4: 55.0}, True)  # mean 50
    _reproduction(jdft2d / "cgcnn-torch-seed1", "cgcnn", 1, {0: 42.0, 1: 52.0, 2: 62.0, 3: 47.0, 4: 57.0}, True)  # mean 52
    _reproduction(jdft2d / "tfn-torch", "tfn", 0, {0: 30.0}, False)  # one fold of five: not ranked
    _reproduction(jdft2d / "cgcnn-torch-seed2", "cgcnn", 2, dict.fromkeys(range(5), 1.0), True, limit=10)  # another task
    # A tensor_results table: five folds of piezoelectric, and a row for a run a reproduction already counts.
    rows = [{"task": "mp_piezoelectric", "task_version": "1", "fold": k, "model": "tfn", "backend": "torch", "seed": 0,
             "epochs_max": 50, "patience": 15, "dtype": "float32", "test": {"fnorm": 1.0 + 0.1 * k},
             "run_folder": f"tfn_piezo_f{k}", "git": {"commit": "b" * 40, "dirty": False}, "device": "cpu",
             "date": "2026-11-25T21:00:00+00:00"} for k in range(5)]
    rows.append({"task": "matbench_jdft2d", "task_version": "matbench_v0.1", "fold": 0, "model": "cgcnn", "backend": "torch",
                 "seed": 0, "epochs_max": 300, "test": {"mae": 40.0}, "run_folder": "cgcnn_s0_f0", "git": {"commit": "c" * 40}})
    _write(results / "tfn" / "results.json", {"format": 1, "rows": rows})
    floors = {"tasks": {"mp_piezoelectric": {"version": "1", "git": {"commit": "d" * 40}, "floors": {
        "mean": {"per_fold": [{"fnorm": 1.5} for _ in range(5)]},
        "element_linear": {"per_fold": [{"fnorm": 0.5 + k} for k in range(5)]}}}}}  # mean 2.5
    _write(results / "floors" / "floors.json", floors)
    anchors = {"format": lb.ANCHORS_FORMAT, "tasks": {"matbench_jdft2d": {
        "benchmark": "matbench_v0.1", "metric": "mae", "unit": "meV/atom", "entries": [
            {"algorithm": "Better", "mean": 45.0, "std": 1.0, "folds": [25.0, 45.0, 55.0, 45.0, 55.0], "source": "https://x/better"},
            {"algorithm": "Worse", "mean": 55.0, "std": 2.0, "folds": None, "source": "https://x/worse"}]}}}
    _write(tmp_path / "anchors.json", anchors)
    return {"results": results, "anchors": tmp_path / "anchors.json", "floors": results / "floors" / "floors.json",
            "out": tmp_path / "board"}


def _run(paths: dict[str, Path]) -> dict:
    argv = [f"--{k}={v}" for k, v in paths.items()]
    assert lb.main(argv) == 0
    return json.loads((paths["out"] / "leaderboard.json").read_text())


def test_ranking_folds_and_provenance(tmp_path):
    paths = _synthetic(tmp_path)
    board = _run(paths)
    jdft2d = board["tasks"]["matbench_jdft2d"]
    assert [(r["label"], r["kind"]) for r in jdft2d["ranked"]] == [
        ("Better", "published"), ("cgcnn-torch (300 ep)", "ours"), ("Worse", "published")]
    ours = jdft2d["ranked"][1]
    assert ours["seeds"] == [0, 1] and ours["folds"] == [0, 1, 2, 3, 4] and ours["complete"]
    assert ours["mean"] == pytest.approx(51.0)
    assert ours["seed_std"] == pytest.approx(statistics.stdev([50.0, 52.0]))
    assert ours["fold_std"] == pytest.approx(statistics.pstdev([40.0, 50.0, 60.0, 45.0, 55.0]))
    assert ours["provenance"]["commits"] == [COMMIT[:10]]  # the archived env.json, not the duplicate table row's
    assert ours["provenance"]["machines"] == ["Test CPU x2, cpu (torch, 2 threads)"]
    # The entry on one fold is apart, compared with the anchors that have that fold (Worse has no per-fold scores).
    (partial,) = jdft2d["partial"]
    assert partial["label"] == "tfn-torch (300 ep)" and partial["folds"] == [0] and not partial["complete"]
    assert [a["label"] for a in partial["anchors_same_folds"]] == ["Better"]
    assert partial["anchors_same_folds"][0]["mean"] == 25.0 and partial["rank_among_anchors"] == 2
    # The tensor task: our five folds between the two floors; the table's duplicate jdft2d run was not counted again.
    piezo = board["tasks"]["mp_piezoelectric"]
    assert [r["label"] for r in piezo["ranked"]] == ["tfn-torch (50 ep)", "floor: mean", "floor: element_linear"]
    assert piezo["ranked"][0]["mean"] == pytest.approx(1.2) and piezo["ranked"][0]["provenance"]["commits"] == ["b" * 10]
    assert piezo["unit"] == "C/m^2" and jdft2d["unit"] == "meV/atom"
    n_jdft2d_runs = sum(len(r["provenance"]["runs"]) for r in jdft2d["ranked"] + jdft2d["partial"] if r["kind"] != "published")
    assert n_jdft2d_runs == 11


def test_page_format_and_regeneration(tmp_path):
    paths = _synthetic(tmp_path)
    _run(paths)
    page = (paths["out"] / "README.md").read_text()
    assert page.startswith("# Leaderboard\n") and "do not edit by hand" in page
    assert "| 1 | Better | published | 45.00 ± 1.00 |" in page
    assert re.search(r"\| 2 \| \*\*cgcnn-torch \(300 ep\)\*\* \| ours \| 51\.00 ± [\d.]+ \| 1\.41 \| 5/5 \|", page)
    assert "| **tfn-torch (300 ep)** | 0 of 5 | 0 | 30.00 | Better: 25.00 | 2 of 2 |" in page
    assert "## mp_piezoelectric" in page and "floor: element_linear" in page
    assert (paths["out"] / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = {name: (paths["out"] / name).read_bytes() for name in ("README.md", "leaderboard.json")}
    _run(paths)  # one command regenerates the same page from the same folders
    assert {name: (paths["out"] / name).read_bytes() for name in before} == before


def test_bad_inputs_are_named(tmp_path, capsys):
    paths = _synthetic(tmp_path)
    _write(paths["anchors"], {"format": "something else"})
    assert lb.main([f"--{k}={v}" for k, v in paths.items()]) == 2
    err = capsys.readouterr().err
    assert str(paths["anchors"]) in err and lb.ANCHORS_FORMAT in err
    assert lb.main([f"--results={tmp_path / 'nowhere'}", f"--out={paths['out']}"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_committed_anchors_schema_and_sources():
    """Every published number names the file it was copied from (a matbench commit), and the per-fold
    scores agree with the leaderboard page's mean and population std to the page's 4 decimals."""
    d = json.loads((ROOT / "results" / "leaderboard" / "anchors.json").read_text())
    assert d["format"] == lb.ANCHORS_FORMAT
    for task, t in d["tasks"].items():
        spec = tasks.spec(task)
        assert t["benchmark"] == spec.version and t["metric"] == lb.METRIC[spec.target.kind] and t["unit"] == spec.target.unit
        assert re.fullmatch(r"[0-9a-f]{40}", t["commit"])
        prefix = f"{t['repository']}/blob/{t['commit']}/"
        assert t["leaderboard_page"].startswith(prefix)
        means = [e["mean"] for e in t["entries"]]
        assert means == sorted(means) and len(set(e["algorithm"] for e in t["entries"])) == len(means)
        for e in t["entries"]:
            assert e["source"].startswith(prefix) and e["info"].startswith(prefix)
            assert math.isfinite(e["mean"]) and e["std"] >= 0
            if e["folds"] is None:
                assert e["source"] == t["leaderboard_page"] and e["note"]
                continue
            assert e["source"].endswith("/results.json.gz") and len(e["folds"]) == spec.n_folds
            assert abs(statistics.mean(e["folds"]) - e["mean"]) <= 5e-5 + 1e-9, e["algorithm"]
            assert abs(statistics.pstdev(e["folds"]) - e["std"]) <= 5e-5 + 1e-9, e["algorithm"]
    algorithms = {e["algorithm"] for e in d["tasks"]["matbench_jdft2d"]["entries"]}
    assert {"CGCNN v2019", "Dummy"} <= algorithms


@pytest.mark.skipif(not (ROOT / "results" / "matbench_v0.1").is_dir(), reason="the repository's results/ is absent")
def test_every_family_with_results_is_on_the_board(tmp_path):
    board = lb.leaderboard(ROOT / "results", ROOT / "results" / "leaderboard" / "anchors.json",
                           ROOT / "results" / "floors" / "floors.json")
    families = {r["family"] for t in board["tasks"].values() for r in t["ranked"] + t["partial"] if r["kind"] != "published"
                and r["kind"] != "floor"}
    assert {"cgcnn", "tfn", "pgnet", "chgcnn"} <= families
    for t in board["tasks"].values():
        assert all(r["complete"] for r in t["ranked"] if r["kind"] == "ours")
        assert not any(r["complete"] for r in t["partial"])


def _run_folder(folder: Path, fold: int, seed: int, fnorm: float, *, finished: bool = True, env: bool = True,
                **train_changes) -> Path:
    """A run folder as ``zoo train`` writes it (config.json, metrics.json, env.json), archived under results/:
    TFN on mp_piezoelectric with the stored ``tfn.rank3`` recipe, plus ``train_changes``."""
    recipe = recipes.get_recipe("tfn", "rank3").fields
    train = {**recipe, "model": "tfn", "task": "mp_piezoelectric", "backend": "torch", "fold": fold, "seed": seed,
             "patience": 30, "dtype": "float32", "task_kwargs": {}, "full_data": False, "init_weights": None,
             "recipe": "tfn.rank3", **train_changes}
    _write(folder / "config.json", {"train": train, "task": {"name": "mp_piezoelectric", "version": "1"}})
    _write(folder / "metrics.json", {"finished": finished, "test": {"fnorm": fnorm, "mae": fnorm / 3}})
    if env:
        _write(folder / "env.json", _env("e" * 40))
    return folder


def test_archived_run_folders_make_entries_named_by_recipe(tmp_path):
    """Run folders archived anywhere under results/ are read: named by their recipe and their departures
    from it, seeds archived in different folders merged into one entry, a re-run of the same seed and fold
    kept apart, each run counted once when a table reports it too, and runs that are no benchmark fold
    (unfinished, another task, all the data, fine-tuned) left out."""
    results = tmp_path / "results"
    for k in range(5):
        _run_folder(results / "a" / "runs" / f"s0_f{k}", k, 0, 1.0 + 0.1 * k)
        _run_folder(results / "b" / "runs" / f"s1_f{k}", k, 1, 1.2 + 0.1 * k, env=False)  # mean 1.4
        _run_folder(results / "c" / "runs" / f"s0_f{k}", k, 0, 2.0 + 0.1 * k)  # seed 0 again: a re-run
        _run_folder(results / "d" / "runs" / f"lr_f{k}", k, 0, 0.5, lr=0.01,
                    model_overrides={**recipes.get_recipe("tfn", "rank3").fields["model_overrides"], "lmax": 3})
    _run_folder(results / "e" / "unfinished", 0, 2, 0.1, finished=False)
    _run_folder(results / "e" / "subset", 0, 2, 0.1, task_kwargs={"n_crystals": 50})
    _run_folder(results / "e" / "full", 0, 2, 0.1, full_data=True)
    _run_folder(results / "e" / "tuned", 0, 2, 0.1, init_weights="x/best.safetensors")
    _write(results / "pretrained" / "card" / "config.json", {})  # a published checkpoint's card is not an entry
    # the same seed-1 runs in a tensor_results table: counted once, and its commit fills the archive's gap
    rows = [{"task": "mp_piezoelectric", "task_version": "1", "fold": k, "model": "tfn", "backend": "torch", "seed": 1,
             "epochs_max": 20, "patience": 30, "dtype": "float32", "test": {"fnorm": 1.2 + 0.1 * k}, "recipe": "tfn.rank3",
             "run_folder": f"run_s1_f{k}", "git": {"commit": "f" * 40, "dirty": False}, "device": "cpu"} for k in range(5)]
    _write(results / "b" / "results.json", {"format": 1, "rows": rows})
    board = lb.leaderboard(results, None, None)["tasks"]["mp_piezoelectric"]
    by_label = {}
    for e in board["ranked"]:
        by_label.setdefault(e["label"], []).append(e)
    plain = sorted(by_label["tfn-torch tfn.rank3 (20 ep)"], key=lambda e: e["mean"])
    assert [(e["seeds"], round(e["mean"], 9)) for e in plain] == [([0, 1], 1.3), ([0], 2.2)]
    assert plain[0]["seed_std"] == pytest.approx(statistics.stdev([1.2, 1.4]))
    assert plain[0]["provenance"]["source"] == "a, b" and plain[1]["provenance"]["source"] == "c"
    assert plain[0]["provenance"]["commits"] == ["e" * 10, "f" * 10]
    (changed,) = by_label["tfn-torch tfn.rank3[lmax=3,lr=0.01] (20 ep)"]
    assert changed["mean"] == 0.5 and changed["recipe_name"] == "tfn.rank3"
    assert not board["partial"]  # the left-out runs made no entry
    n_runs = sum(len(e["folds"]) * len(e["seeds"]) for e in board["ranked"])
    assert n_runs == 20


def test_recipe_departures_name_unset_and_removed_recipes():
    stored = recipes.get_recipe("pgnet", "rank2").fields
    name, departures = lb._recipe_label("pgnet", "pgnet.rank2", {**stored, "epochs": 5}, {"message_norm": "neighbors"})
    assert name == "pgnet.rank2" and departures == {"epochs": 5, "density_basis": "unset"}
    assert lb._recipe_label("pgnet", "pgnet.rank9", {}, {"lmax": 2}) == ("pgnet.rank9 (no longer stored)", {"lmax": 2})
    assert lb._recipe_label("pgnet", None, {}, {"lmax": 2}) == (None, {"lmax": 2})


@pytest.mark.skipif(not (ROOT / "results" / "matbench_v0.1").is_dir(), reason="the repository's results/ is absent")
def test_committed_leaderboard_is_current(tmp_path):
    """The committed page is what one command makes from the committed results today: a result added
    without regenerating the board (or a board edited by hand) fails here. Fix: `zoo report leaderboard`."""
    out = tmp_path / "board"
    assert lb.main([f"--out={out}"]) == 0
    for name in ("README.md", "leaderboard.json"):
        assert (out / name).read_text() == (ROOT / "results" / "leaderboard" / name).read_text(), (
            f"results/leaderboard/{name} is stale: run `zoo report leaderboard` and commit it")
