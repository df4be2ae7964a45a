"""The pretrained registry: data files next to each family, ``zoo/models/<family>/pretrained.json``.

A family's file is ``{"format": 1, "family": name, "default": tag, "entries": {tag: entry}}``; an
entry is named ``family.tag`` and a tag never changes meaning once published (a retrained model gets a
new tag: ``tests/pretrained/data/golden.json`` freezes every published name to its weights' sha256). An
entry records everything needed to fetch, verify and describe the weights (``ENTRY_FIELDS``); the
weights themselves are a ``zoo.core.weights`` pair (``<tag>.safetensors`` + ``<tag>.json``) that also
ships in the family's ``weights/`` folder.

Nothing here imports a framework: listing and describing entries is numpy-free JSON.
"""
from __future__ import annotations

import functools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.core.registry import Registry
from zoo.models import FAMILIES, get_family

REGISTRY_FORMAT = 1
REGISTRY_FILE = "pretrained.json"
WEIGHTS_FOLDER = "weights"  # inside the family's package: the shipped copies of the published files

# field -> (type, what it holds); every field is required (an entry without a licence or a metric split
# is not publishable)
ENTRY_FIELDS: dict[str, tuple[type, str]] = {
    "description": (str, "one line: what the model predicts, from what data"),
    "files": (dict, '{"weights": file, "sidecar": file}, file = {"name", "url", "sha256", "size"}'),
    "config": (dict, "the family config the weights were trained with"),
    "featurization": (dict, "the graph spec (cutoff, neighbour rule, frame, featuriser)"),
    "normalizer": (dict, "target normalisation (kind, mean, scale), applied inversely to predictions"),
    "task": (dict, '{"name", "version", "kwargs", "target"}: the data, its version and the target (unit, transform)'),
    "metrics": (dict, '{"split", "n", "values", "floor"}: scores and the split they were measured on'),
    "recipe": (dict, '{"command", "train"}: the training options'),
    "n_params": (int, "trainable parameters of the built model"),
    "license": (dict, '{"code", "weights", "data"}'),
    "date": (str, "publication date, YYYY-MM-DD"),
    "citation": (dict, '{"model", "data"}: BibTeX or references'),
    "run": (dict, '{"id", "git"}: the run folder and commit that made the weights'),
}
FILE_FIELDS = {"name": str, "url": str, "sha256": str, "size": int}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_]*$")


class RegistryError(ValueError):
    """A registry file or entry that does not follow the schema; the message names the file and the field."""


@dataclass(frozen=True)
class FileRecord:
    name: str  # file name, also the last part of the URL
    url: str  # where the project publishes it; ZOO_BASE_URL replaces everything before "<family>/<name>"
    sha256: str
    size: int  # bytes

    @property
    def path(self) -> str:
        """The file's path below a base URL, ``<family>/<name>`` (the last two parts of ``url``)."""
        return self.url.rsplit("/", 2)[-2] + "/" + self.name


@dataclass(frozen=True)
class Entry:
    family: str
    tag: str
    default: bool
    data: dict[str, Any]  # the entry's JSON, as in the file
    source: Path  # the registry file

    @property
    def name(self) -> str:
        return f"{self.family}.{self.tag}"

    @property
    def weights(self) -> FileRecord:
        return FileRecord(**self.data["files"]["weights"])

    @property
    def sidecar(self) -> FileRecord:
        return FileRecord(**self.data["files"]["sidecar"])

    @property
    def package_folder(self) -> Path:
        """Where the shipped copies of the files live (``zoo/models/<family>/weights/``)."""
        return self.source.parent / WEIGHTS_FOLDER

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


def family_folder(family: str) -> Path:
    """The folder of a family's package (where its ``pretrained.json`` lives)."""
    module = sys.modules.get(get_family(family).config.__module__)
    if module is None or getattr(module, "__file__", None) is None:
        raise RegistryError(f"family {family!r} has no module file, so it has no pretrained registry")
    return Path(module.__file__).parent


def _fail(source: Path, where: str, problem: str) -> RegistryError:
    return RegistryError(f"{source}: {where}: {problem}. Fix the registry file (schema: zoo.pretrained.registry.ENTRY_FIELDS)")


def _check_file(source: Path, where: str, family: str, record: Any) -> None:
    if not isinstance(record, dict) or set(record) != set(FILE_FIELDS):
        raise _fail(source, where, f"must be an object with exactly the fields {sorted(FILE_FIELDS)}")
    for key, kind in FILE_FIELDS.items():
        if not isinstance(record[key], kind) or isinstance(record[key], bool):
            raise _fail(source, f"{where}.{key}", f"must be {kind.__name__}, got {record[key]!r}")
    if not _SHA256.match(record["sha256"]):
        raise _fail(source, f"{where}.sha256", "must be the full sha256, 64 lowercase hex digits")
    if record["size"] <= 0:
        raise _fail(source, f"{where}.size", "must be the file's size in bytes, > 0")
    if not record["url"].endswith(f"/{family}/{record['name']}"):
        raise _fail(source, f"{where}.url", f"must end with /{family}/{record['name']} (a mirror keeps that layout)")


def check_entry(source: Path, family: str, tag: str, entry: Any) -> None:
    """Raise ``RegistryError`` naming the file and field when ``entry`` does not follow the schema."""
    where = f"entry {family}.{tag}"
    if not _TAG.match(tag):
        raise _fail(source, where, "a tag is lowercase letters, digits and underscores")
    if not isinstance(entry, dict):
        raise _fail(source, where, "must be an object")
    missing, unknown = sorted(set(ENTRY_FIELDS) - set(entry)), sorted(set(entry) - set(ENTRY_FIELDS))
    if missing or unknown:
        raise _fail(source, where, f"missing fields {missing}, unknown fields {unknown}")
    for key, (kind, meaning) in ENTRY_FIELDS.items():
        if not isinstance(entry[key], kind) or isinstance(entry[key], bool):
            raise _fail(source, f"{where}.{key}", f"must be {kind.__name__} ({meaning}), got {type(entry[key]).__name__}")
    files = entry["files"]
    if set(files) != {"weights", "sidecar"}:
        raise _fail(source, f"{where}.files", 'must hold exactly "weights" and "sidecar"')
    for part, suffix in (("weights", ".safetensors"), ("sidecar", ".json")):
        _check_file(source, f"{where}.files.{part}", family, files[part])
        if files[part]["name"] != tag + suffix:
            raise _fail(source, f"{where}.files.{part}.name", f"must be {tag + suffix}")
    for key, sub in (("task", ("name", "version", "kwargs", "target")), ("metrics", ("split", "n", "values", "floor")),
                     ("recipe", ("command", "train")), ("license", ("code", "weights", "data")),
                     ("citation", ("model", "data")), ("run", ("id", "git"))):
        lacking = [s for s in sub if s not in entry[key]]
        if lacking:
            raise _fail(source, f"{where}.{key}", f"lacks {lacking}")
    if entry["n_params"] <= 0:
        raise _fail(source, f"{where}.n_params", "must be > 0")
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", entry["date"]):
        raise _fail(source, f"{where}.date", "must be YYYY-MM-DD")


def read_family(family: str, path: Path | None = None) -> list[Entry]:
    """The entries of one family's registry file (none when the family has no file), schema-checked."""
    path = path or family_folder(family) / REGISTRY_FILE
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: not valid JSON ({exc}); fix or restore the registry file") from None
    if not isinstance(doc, dict) or set(doc) != {"format", "family", "default", "entries"}:
        raise RegistryError(f"{path}: must be an object with exactly format, family, default and entries")
    if doc["format"] != REGISTRY_FORMAT:
        raise RegistryError(f"{path}: registry format {doc['format']!r}; this crystal-zoo reads {REGISTRY_FORMAT} (upgrade it)")
    if doc["family"] != family:
        raise RegistryError(f"{path}: names family {doc['family']!r} but lives with family {family!r}")
    entries = doc["entries"]
    if not isinstance(entries, dict) or not entries:
        raise RegistryError(f"{path}: entries must be a non-empty object (tag -> entry); delete the file for no entries")
    if doc["default"] not in entries:
        raise RegistryError(f"{path}: default {doc['default']!r} is not one of its tags {sorted(entries)}")
    for tag, entry in entries.items():
        check_entry(path, family, tag, entry)
    return [Entry(family, tag, tag == doc["default"], entry, path) for tag, entry in entries.items()]


@functools.lru_cache(maxsize=1)
def _registry() -> Registry[Entry]:
    reg: Registry[Entry] = Registry("pretrained model")
    for family in FAMILIES.names():
        for entry in read_family(family):
            reg.add(entry.name, entry)
    return reg


def reload() -> None:
    """Forget the registry read so far (after a registry file changed, e.g. when publishing)."""
    _registry.cache_clear()


def list_pretrained() -> list[str]:
    """Every published entry name, ``family.tag``, sorted."""
    return _registry().names()


def get_entry(name: str) -> Entry:
    """The entry ``family.tag``, or the default of ``family``; a misspelt name gets a did-you-mean."""
    reg = _registry()
    if "." not in name and name in FAMILIES:
        defaults = [reg.get(n) for n in reg.names() if n.startswith(name + ".") and reg.get(n).default]
        if not defaults:
            raise KeyError(f"model family {name!r} has no pretrained entries; zoo.list_pretrained() lists those that exist")
        return defaults[0]
    return reg.get(name)
