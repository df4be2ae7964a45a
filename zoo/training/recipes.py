"""Training recipes: each family's validated ``TrainConfig`` fields per task kind, stored with the family.

A family keeps its recipes as data in ``zoo/models/<family>/recipes.json`` (package data)::

    {"family": "tfn",
     "recipes": {"scalar": {"fields": {"loss": "l1", "lr": 0.005, "epochs": 40, ...},
                            "provenance": {"validated": true, "task": "matbench_jdft2d", "folds": [0],
                                           "split": "validation", "search": "zoo tune ...", "metric": "mae",
                                           "value": 66.0, "unit": "meV/atom", "evidence": "...", "date": "2026-12-01"}}},
     "pending": {"rank2": "why there is none yet, and who brings it"}}

The task kind is the target's: ``scalar``, ``rank2``, ``rank3``, ``rank4`` (``KINDS``; a binary class is
``class``). A recipe sets only the options that decide how a model learns (``RECIPE_FIELDS``, and
``model_overrides``); which task, fold, seed, backend or folder stay the caller's.

Precedence (``resolve``): ``TrainConfig``'s defaults < the family's recipe < what the caller set
explicitly (command-line flags; a ``--set`` key overrides the recipe's key of the same name only). The
config records the recipe's name in ``TrainConfig.recipe`` and every resulting field, so a run folder
replays (``zoo train --resume``, ``zoo reproduce``) without the recipe file; a config written before
recipes existed has ``recipe`` None and loads as it always did.

Provenance is part of a recipe: how it was chosen (task, folds, split, the search command, the
validation figure, the date). ``"validated": false`` marks a recipe that was never searched (it says
where its values come from instead): it is the best available start, not a tuned one.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo import tasks
from zoo.models import get_family

from .config import TrainConfig, UsageError

log = logging.getLogger("zoo.training")

KINDS = ("scalar", "rank2", "rank3", "rank4")
AUTO, NONE = "auto", "none"
FILE_NAME = "recipes.json"
# What a recipe never sets: which run this is (task, fold, seeds and split, backend, device, precision, data,
# output, starting weights). Every other TrainConfig field decides how the model learns and may be in a
# recipe, so a new training option is a recipe option without a change here.
RUN_FIELDS = ("model", "task", "backend", "fold", "seed", "split_seed", "val_fraction", "dtype", "device", "jax_devices",
              "jax_padding", "dist_timeout_s", "out", "data_dir", "task_kwargs", "init_weights", "init_partial", "full_data", "graph_cache", "progress",
              "recipe")
RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in RUN_FIELDS)
PROVENANCE_KEYS = ("validated", "date")  # every recipe says whether it was searched, and when it was set


@dataclass(frozen=True)
class Recipe:
    family: str
    kind: str
    fields: dict[str, Any]
    provenance: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.family}.{self.kind}"


def task_kind(target) -> str:
    """The recipe kind of a ``TargetSpec``: scalar, rank2 ... rank4, or class."""
    if target.kind == "tensor":
        return f"rank{target.rank}"
    return target.kind


def recipes_path(family: str) -> Path:
    """``recipes.json`` next to the family's config module (a family outside crystal-zoo keeps its own)."""
    module = sys.modules[get_family(family).config.__module__]
    return Path(module.__file__).resolve().parent / FILE_NAME


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc}); fix the recipe file") from None
    if not isinstance(data, dict) or not isinstance(data.get("recipes", {}), dict):
        raise UsageError(f"{path}: expected {{\"family\": ..., \"recipes\": {{KIND: {{\"fields\", \"provenance\"}}}}}}")
    return data


def read_file(family: str) -> dict[str, Any]:
    """The family's recipe file as written (``{}`` when it has none)."""
    path = recipes_path(family)
    return _read(path) if path.is_file() else {}


def check_recipe(entry: Any, where: str) -> None:
    """A recipe entry's shape: ``fields`` only of ``RECIPE_FIELDS`` and valid for ``TrainConfig``, a provenance."""
    if not isinstance(entry, dict) or not isinstance(entry.get("fields"), dict) or not isinstance(entry.get("provenance"), dict):
        raise UsageError(f"{where}: a recipe is {{\"fields\": {{...}}, \"provenance\": {{...}}}}, got {entry!r}")
    unknown = sorted(set(entry["fields"]) - set(RECIPE_FIELDS))
    if unknown:
        raise UsageError(f"{where}: a recipe cannot set {unknown} (the run's own options); it sets only {list(RECIPE_FIELDS)}")
    missing = [k for k in PROVENANCE_KEYS if k not in entry["provenance"]]
    if missing:
        raise UsageError(f"{where}: its provenance lacks {missing} (was it searched on validation folds, and when?)")
    TrainConfig(**entry["fields"])  # type, choice and range of every value, as for a flag


def family_recipes(family: str) -> dict[str, Recipe]:
    """``{kind: Recipe}`` of a family (empty when it has no recipe file), every entry checked."""
    data = read_file(family)
    out = {}
    for kind, entry in data.get("recipes", {}).items():
        where = f"{recipes_path(family)} [{kind}]"
        if kind not in KINDS + ("class",):
            raise UsageError(f"{where}: unknown task kind {kind!r}; the kinds are {list(KINDS) + ['class']}")
        check_recipe(entry, where)
        out[kind] = Recipe(family, kind, dict(entry["fields"]), dict(entry["provenance"]))
    return out


def get_recipe(family: str, name: str) -> Recipe:
    """The recipe ``name`` (a kind, or ``family.kind``) of ``family``; an unknown one gets a did-you-mean."""
    kind = name.split(".", 1)[1] if name.startswith(f"{family}.") else name
    found = family_recipes(family)
    if kind in found:
        return found[kind]
    pending = read_file(family).get("pending", {})
    if kind in pending:
        raise UsageError(f"model {family} has no {kind} recipe yet ({pending[kind]}); pass --recipe none for the "
                         "TrainConfig defaults, or search one with `zoo tune`")
    close = difflib.get_close_matches(kind, list(dict.fromkeys([*found, *KINDS])), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UsageError(f"--recipe {name}: model {family} has no such recipe{hint} It has {sorted(found) or 'none'} "
                     f"({recipes_path(family)}); 'none' trains with the TrainConfig defaults")


def recipe_for(family: str, task: str, name: str | None = AUTO, target=None) -> Recipe | None:
    """The recipe a run of ``family`` on ``task`` takes: ``auto`` (or None) the one for the task's kind if the
    family has it, ``none`` no recipe, anything else ``get_recipe``. ``target``: the task's ``TargetSpec``
    when the task is not in the registry (an in-memory task object)."""
    if name == NONE:
        return None
    if name not in (None, AUTO):
        return get_recipe(family, name)
    kind = task_kind(target if target is not None else tasks.spec(task).target)
    found = family_recipes(family).get(kind)
    if found is None:
        log.info("model %s has no %s recipe: TrainConfig defaults apply", family, kind)
    return found


def resolve(explicit: dict[str, Any], recipe: str | None = AUTO, target=None) -> TrainConfig:
    """The ``TrainConfig`` of ``explicit`` options (only those a user set: flags, ``fixed`` values) on top of
    the family's recipe for the task (``recipe_for``) on top of the defaults; it records the recipe's name."""
    explicit = dict(explicit)
    explicit.pop("recipe", None)
    defaults = TrainConfig()
    model, task = explicit.get("model", defaults.model), explicit.get("task", defaults.task)
    chosen = recipe_for(model, task, recipe, target)
    if chosen is None:
        return TrainConfig(**explicit, recipe=None)
    kw = {**chosen.fields, **explicit, "recipe": chosen.name}
    kw["model_overrides"] = {**chosen.fields.get("model_overrides", {}), **explicit.get("model_overrides", {})}
    return TrainConfig(**kw)


def recipe_values(config: TrainConfig, searched: tuple[str, ...] = ()) -> dict[str, Any]:
    """The recipe fields of ``config`` worth writing down: those that differ from the defaults, and ``searched``."""
    defaults = TrainConfig()
    out = {}
    for name in RECIPE_FIELDS:
        value = getattr(config, name)
        if name in searched or value != getattr(defaults, name):
            out[name] = value
    return out


def applied(config: TrainConfig) -> dict[str, Any]:
    """What a recipe changed in ``config`` (for messages): ``{field: value}``, empty without a recipe."""
    if config.recipe is None:
        return {}
    family, kind = config.recipe.split(".", 1)
    chosen = family_recipes(family).get(kind)
    return {k: getattr(config, k) for k in chosen.fields} if chosen else {}

