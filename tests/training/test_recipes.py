"""Family recipes: the shipped files, the precedence defaults < recipe < explicit, the record in config.json,
old run folders, and the errors for an unknown recipe."""
from __future__ import annotations

import json

import pytest

from tests.helpers import ROOT, TINY
from zoo.models import get_family, list_models
from zoo.training import TrainConfig, UsageError, recipes


@pytest.mark.parametrize("family", list_models())
def test_every_shipped_recipe_is_valid_and_says_where_it_came_from(family):
    found = recipes.family_recipes(family)
    fam = get_family(family)
    for kind, r in found.items():
        kinds = {"tensor" if k.startswith("rank") else k for k in [kind]}
        assert kinds <= set(fam.outputs), f"{family} has a {kind} recipe but predicts only {fam.outputs}"
        config = TrainConfig(**r.fields)  # every value in range
        fam.config(**config.model_overrides)  # model hyper-parameters the family knows
        p = r.provenance
        if p["validated"]:  # a searched recipe names its search, split and figure
            assert "validation" in p["split"] and p["search"] and isinstance(p["value"], float)
        else:  # an unsearched one says where its values come from instead
            assert p["source"] and p["evidence"]


def test_the_four_families_have_the_recipes_their_evidence_supports():
    assert set(recipes.family_recipes("tfn")) == {"scalar", "rank2", "rank3", "rank4"}
    assert "pending" not in recipes.read_file("tfn")  # every kind searched (rank 4 on embedded_elastic validation)
    r4 = recipes.resolve({"model": "tfn", "task": "embedded_elastic"})
    assert (r4.recipe, r4.loss, r4.tensor_center) == ("tfn.rank4", "fnorm", "isotropic")
    assert set(recipes.family_recipes("pgnet")) == {"scalar", "rank2", "rank3", "rank4"}
    pr3 = recipes.resolve({"model": "pgnet", "task": "mp_piezoelectric"})  # MP piezoelectric folds 0-1 validation
    assert (pr3.recipe, pr3.loss, pr3.tensor_center, pr3.target_transform) == ("pgnet.rank3", "fnorm", "isotropic", "none")
    pr4 = recipes.resolve({"model": "pgnet", "task": "embedded_elastic"})  # embedded_elastic folds 0-1 validation
    assert (pr4.recipe, pr4.loss, pr4.tensor_center, pr4.target_transform) == ("pgnet.rank4", "fnorm", "isotropic", "none")
    r3 = recipes.resolve({"model": "tfn", "task": "mp_piezoelectric"})  # MP piezoelectric folds 0-1 validation
    assert (r3.recipe, r3.loss, r3.target_transform) == ("tfn.rank3", "fnorm", "none")
    rank2 = recipes.resolve({"model": "tfn", "task": "embedded_dielectric"})  # a rank-2 task takes the rank-2 recipe
    assert (rank2.recipe, rank2.tensor_center, rank2.model_overrides["message_norm"]) == ("tfn.rank2", "isotropic", "neighbors")
    tfn = recipes.family_recipes("tfn")["scalar"]
    assert tfn.fields == {"loss": "l1", "lr": 0.005, "epochs": 40, "batch_size": 64, "target_transform": "norm_log",
                          "clip_predictions": "train_range",
                          "model_overrides": {"radius": 6.0, "avg_num_neighbors": 31.0, "density_basis": 8}}
    assert tfn.provenance["validated"]
    assert set(recipes.family_recipes("cgcnn")) == {"scalar"} and set(recipes.family_recipes("chgcnn")) == {"scalar"}
    assert recipes.family_recipes("pgnet")["scalar"].provenance["validated"]  # matbench_jdft2d fold 0 validation
    pg2 = recipes.resolve({"model": "pgnet", "task": "mp_dielectric_total"})  # embedded_dielectric f0 + MP total f1 validation
    assert (pg2.recipe, pg2.tensor_center, pg2.model_overrides["message_norm"], pg2.lr) == ("pgnet.rank2", "isotropic", "neighbors", 0.005)
    assert recipes.family_recipes("pgnet")["rank2"].provenance["validated"]
    cg = recipes.family_recipes("cgcnn")["scalar"]  # matbench_jdft2d folds 0-1 validation, the TFN's grid
    assert cg.provenance["validated"] and cg.fields["model_overrides"] == {"density_basis": 8} and cg.fields["loss"] == "l1"
    assert cg.fields["clip_predictions"] == tfn.fields["clip_predictions"] == "train_range"
    chg = recipes.resolve({"model": "chgcnn", "task": "matbench_jdft2d"})  # matbench_jdft2d folds 0-1 validation
    assert (chg.recipe, chg.loss, chg.epochs, chg.model_overrides) == ("chgcnn.scalar", "l1", 25, {"density_basis": 8})
    assert recipes.family_recipes("chgcnn")["scalar"].provenance["validated"]


def test_precedence_defaults_then_recipe_then_explicit():
    defaults = TrainConfig()
    c = recipes.resolve({"model": "tfn", "task": "matbench_jdft2d"})
    assert (c.recipe, c.loss, c.lr, c.epochs) == ("tfn.scalar", "l1", 0.005, 40)
    assert c.weight_decay == defaults.weight_decay  # not in the recipe: the default
    c = recipes.resolve({"model": "tfn", "task": "matbench_jdft2d", "lr": 1e-3, "model_overrides": {"n_layers": 2}})
    assert (c.recipe, c.loss, c.lr, c.model_overrides) == ("tfn.scalar", "l1", 1e-3, {"radius": 6.0, "avg_num_neighbors": 31.0,
                                                                   "density_basis": 8, "n_layers": 2})
    c = recipes.resolve({"model": "tfn", "task": "matbench_jdft2d"}, "none")
    assert (c.recipe, c.loss, c.lr, c.epochs) == (None, defaults.loss, defaults.lr, defaults.epochs)
    # A task kind without a recipe: the defaults, and nothing recorded.
    c = recipes.resolve({"model": "cgcnn", "task": "matbench_mp_is_metal"})  # classification: no recipe
    assert (c.recipe, c.lr) == (None, defaults.lr)


def test_a_recipes_model_overrides_merge_key_by_key(monkeypatch):
    r = recipes.Recipe("tfn", "scalar", {"lr": 0.005, "model_overrides": {"n_layers": 2, "lmax": 1}}, {"validated": False})
    monkeypatch.setattr(recipes, "family_recipes", lambda family: {"scalar": r})
    c = recipes.resolve({"model": "tfn", "task": "matbench_jdft2d", "model_overrides": {"lmax": 2}})
    assert c.model_overrides == {"n_layers": 2, "lmax": 2}


def test_unknown_or_pending_recipes_are_refused_with_a_hint(monkeypatch):
    with pytest.raises(UsageError, match="did you mean 'scalar'"):
        recipes.resolve({"model": "cgcnn", "task": "matbench_jdft2d"}, "scalr")
    # a kind never searched says so (no family has one pending today: pgnet's rank 3 was searched at stop 29)
    real = recipes.read_file("pgnet")
    without = {**real, "recipes": {k: v for k, v in real["recipes"].items() if k != "rank3"},
               "pending": {"rank3": "never searched"}}
    monkeypatch.setattr(recipes, "read_file", lambda family: without if family == "pgnet" else real)
    with pytest.raises(UsageError, match="no rank3 recipe yet .*--recipe none"):
        recipes.resolve({"model": "pgnet", "task": "mp_piezoelectric"}, "rank3")


def test_a_recipe_sets_only_training_options_and_carries_its_provenance():
    with pytest.raises(UsageError, match="cannot set \\['fold'\\]"):
        recipes.check_recipe({"fields": {"fold": 2}, "provenance": {"validated": False, "date": "x"}}, "f")
    with pytest.raises(UsageError, match="lacks \\['date'\\]"):
        recipes.check_recipe({"fields": {"lr": 1e-3}, "provenance": {"validated": False}}, "f")
    with pytest.raises(UsageError, match="lr"):
        recipes.check_recipe({"fields": {"lr": -1.0}, "provenance": {"validated": False, "date": "x"}}, "f")


def test_an_old_run_config_without_a_recipe_loads_as_before():
    old = json.loads((ROOT / "results/tfn/diagnosis/jdft2d_l1_lr5e-3_f0_seed0/config.json").read_text())["train"]
    assert "recipe" not in old
    c = TrainConfig.from_dict(old)
    assert c.recipe is None and (c.loss, c.lr, c.epochs) == ("l1", 0.005, 40)


def test_the_command_line_applies_and_records_the_recipe(tmp_path, task, capsys):
    from zoo.cli import build_parser, config_from_args
    from zoo.training import train

    args = build_parser().parse_args(["train", "tfn", "--task", "matbench_jdft2d", "--epochs", "2"])
    c = config_from_args(args, recipe="auto")
    assert (c.recipe, c.loss, c.lr, c.epochs) == ("tfn.scalar", "l1", 0.005, 2)
    args = build_parser().parse_args(["train", "tfn", "--task", "matbench_jdft2d", "--recipe", "none"])
    assert config_from_args(args, recipe="auto").recipe is None

    # The run folder records the recipe's name and the resulting fields, and resumes from them alone.
    c = recipes.resolve({"model": "cgcnn", "task": "toy_volume", "epochs": 1, "batch_size": 8, "out": str(tmp_path),
                         "progress": False, "graph_cache": False, "model_overrides": dict(TINY)}, target=task.spec.target)
    res = train(c, task=task)
    saved = json.loads((res.run_dir / "config.json").read_text())["train"]
    assert saved["recipe"] == "cgcnn.scalar" and saved["patience"] == 50 and saved["epochs"] == 1
    resumed = train(task=task, resume=res.run_dir, epochs=2)
    assert resumed.config.recipe == "cgcnn.scalar" and resumed.summary["epochs_run"] == 2
