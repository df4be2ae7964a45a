"""Every registry entry: schema, the shipped files (size, sha256, sealed sidecar bound to the entry), the
parameter count recomputed from the built model, one default per family, and published tags frozen."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.pretrained.record_golden import GOLDEN
from zoo.core import weights
from zoo.models import list_models
from zoo.pretrained import RegistryError, get_entry, list_pretrained
from zoo.pretrained.fetch import verified
from zoo.pretrained.load import check_bound
from zoo.pretrained.publish import count_parameters
from zoo.pretrained.registry import REGISTRY_FILE, family_folder, read_family

NAMES = list_pretrained()


def test_there_are_entries_and_one_default_per_family():
    assert "cgcnn.embedded_dielectric_iso_v1" in NAMES
    for family in list_models():
        entries = read_family(family)
        if entries:
            assert sum(e.default for e in entries) == 1
            assert get_entry(family).default and get_entry(family).family == family


@pytest.mark.parametrize("name", NAMES)
def test_entry_files_and_parameters(name):
    entry = get_entry(name)
    for record in (entry.weights, entry.sidecar):
        path = entry.package_folder / record.name
        assert verified(path, record), f"{path} does not match the registry's size/sha256"
        assert record.url.endswith(f"/{entry.family}/{record.name}")
    _, meta = weights.load(entry.package_folder / entry.tag, expected_sha256=entry.weights.sha256)
    check_bound(entry, meta, name)  # the sidecar describes exactly the entry's model
    assert count_parameters(entry.family, entry["config"]) == entry["n_params"]
    assert entry["license"]["code"] and entry["license"]["weights"] and entry["citation"]["model"].startswith("@")


def test_published_tags_never_change_meaning():
    golden = json.loads(GOLDEN.read_text())
    assert sorted(golden) == NAMES, "record every new entry: python -m tests.pretrained.record_golden NAME"
    for name, record in golden.items():
        assert get_entry(name).weights.sha256 == record["weights_sha256"], f"{name}: a published tag got other weights"


def _registry_with(tmp_path, family: str, edit):
    doc = json.loads((family_folder(family) / REGISTRY_FILE).read_text())
    edit(doc)
    path = tmp_path / REGISTRY_FILE
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["entries"][d["default"]].pop("license"), r"missing fields \['license'\]"),
    (lambda d: d["entries"][d["default"]]["files"]["weights"].update(sha256="abc"), r"files\.weights\.sha256: must be the full sha256"),
    (lambda d: d["entries"][d["default"]].update(n_params="many"), r"n_params: must be int"),
    (lambda d: d["entries"][d["default"]]["metrics"].pop("split"), r"metrics: lacks \['split'\]"),
    (lambda d: d.update(default="nonexistent"), r"default 'nonexistent' is not one of its tags"),
    (lambda d: d["entries"][d["default"]]["files"]["weights"].update(url="http://x/other/w.safetensors"), r"url: must end with"),
])
def test_schema_errors_name_the_file_and_field(tmp_path, edit, message):
    path = _registry_with(tmp_path, "cgcnn", edit)
    with pytest.raises(RegistryError, match=message) as err:
        read_family("cgcnn", path)
    assert str(path) in str(err.value)


def test_unknown_name_gets_a_did_you_mean():
    with pytest.raises(KeyError, match="did you mean 'cgcnn.embedded_dielectric_iso_v1'"):
        get_entry("cgcnn.embedded_dielectric_iso_v0")


def test_import_zoo_imports_no_framework_and_lists_entries():
    code = ("import sys, zoo; names = zoo.list_pretrained(); "
            "assert not {'torch', 'jax', 'flax'} & set(sys.modules), sorted({'torch', 'jax', 'flax'} & set(sys.modules)); "
            "print(names)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "cgcnn.embedded_dielectric_iso_v1" in out.stdout
