"""``zoo.load``: golden predictions in both backends, the inputs ``predict`` takes, and weights that do not
fit their entry (another family, other featurisation settings, an edited sidecar) refused."""
from __future__ import annotations

import importlib
import json
import shutil

import numpy as np
import pytest

import zoo
from tests.pretrained.record_golden import DATA, GOLDEN
from zoo import BACKENDS
from zoo.core.weights import WeightsError
from zoo.pretrained import PretrainedError, get_entry, list_pretrained
from zoo.pretrained.registry import Entry

GOLD = json.loads(GOLDEN.read_text())
DEFAULT = "cgcnn.embedded_dielectric_iso_v1"  # the cheapest entry: the one every default-run check loads


def _golden(name: str, backends) -> dict[str, np.ndarray]:
    record = GOLD[name]
    assert record["weights_sha256"] == get_entry(name).weights.sha256
    files = [str(DATA / f) for f in record["files"]]
    out = {b: zoo.load(name, backend=b, dtype="float64").predict(files, cache=False) for b in backends}
    want = np.asarray(record["predictions"])
    scale = np.abs(want).max()
    for b, got in out.items():
        assert got.shape == want.shape
        # float64 both ways: only the order of floating-point sums differs between machines and backends
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * scale, err_msg=f"{name} ({b}) != its recorded predictions")
    if len(out) == 2:
        np.testing.assert_allclose(out["jax"], out["torch"], rtol=0, atol=1e-10 * scale, err_msg=f"{name}: torch != jax")
    if get_entry(name)["task"]["target"]["kind"] == "tensor":  # Cartesian, in the frame of the structure given
        _check_input_frame(name, files[-1], out[backends[0]][-1], backends[0])
    return out


def _check_input_frame(name: str, path: str, tensor: np.ndarray, backend: str) -> None:
    from pymatgen.io.cif import CifParser

    from zoo.testing import random_rotation, transform_structure

    R = random_rotation(14, improper=True)
    rotated = transform_structure(CifParser(path).parse_structures(primitive=False)[0], R=R)
    got = zoo.load(name, backend=backend, dtype="float64").predict(rotated, cache=False)
    want = np.einsum("ia,jb,ab->ij", R, R, tensor) if tensor.ndim == 2 else np.einsum(
        "ia,jb,kc,abc->ijk", R, R, R, tensor)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(tensor).max(), err_msg=f"{name}: not in the input's frame")


def test_default_entry_golden_in_both_backends():
    _golden(DEFAULT, BACKENDS)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_pretrained() if n != DEFAULT])
def test_golden_in_both_backends(name):
    _golden(name, BACKENDS)


@pytest.mark.parametrize("name", [n for n in list_pretrained() if n != DEFAULT])
def test_golden_torch(name):
    _golden(name, ("torch",))


def test_predict_takes_structures_atoms_and_cif_paths(monkeypatch):
    import pickle

    import torch
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.io.cif import CifParser

    def refuse(*args, **kwargs):
        raise AssertionError("something unpickles on the loading path")

    for module, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    model = zoo.load(DEFAULT)
    path = DATA / "crystal_1.cif"
    structure = CifParser(str(path)).parse_structures(primitive=False)[0]
    atoms = AseAtomsAdaptor.get_atoms(structure)
    p = [model.predict(x, cache=False) for x in (str(path), path, structure, atoms)]
    assert np.shape(p[0]) == () and np.isfinite(p[0])
    np.testing.assert_allclose(p, p[0], rtol=1e-6)
    assert model.target.name == get_entry(DEFAULT)["task"]["target"]["name"]


def _copy_entry(tmp_path, edit_entry=None):
    """The default entry with its files copied into tmp_path (its package copy), the entry data edited."""
    source = get_entry(DEFAULT)
    folder = tmp_path / "family"
    shutil.copytree(source.package_folder, folder / "weights")
    data = json.loads(json.dumps(source.data))
    if edit_entry:
        edit_entry(data)
    return Entry(source.family, source.tag, True, data, folder / "pretrained.json"), folder / "weights" / source.tag


def _load(entry: Entry, monkeypatch):
    load_module = importlib.import_module("zoo.pretrained.load")  # the module (the package exports the function)

    monkeypatch.setattr(load_module, "get_entry", lambda name: entry)
    return load_module.load(entry.name)


def test_weights_of_another_family_are_refused(tmp_path, monkeypatch):
    entry, _ = _copy_entry(tmp_path)
    wrong = Entry("tfn", entry.tag, True, entry.data, entry.source)  # cgcnn's files registered as a tfn model
    with pytest.raises(PretrainedError, match="weights of family 'cgcnn'.*'tfn' model"):
        _load(wrong, monkeypatch)


def test_other_featurisation_settings_are_refused(tmp_path, monkeypatch):
    entry, _ = _copy_entry(tmp_path, lambda d: d["featurization"].update(radius=6.0, max_neighbors=16))
    with pytest.raises(PretrainedError, match=r"other featurization settings.*max_neighbors: 12 in the weights, 16 in the "
                                              r"registry.*radius: 8\.0 in the weights, 6\.0 in the registry"):
        _load(entry, monkeypatch)


def test_an_edited_sidecar_is_refused(tmp_path, monkeypatch):
    entry, stem = _copy_entry(tmp_path)
    sidecar = stem.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    meta["featurization"]["radius"] = 6.0
    sidecar.write_text(json.dumps(meta))
    # Its hash no longer matches the registry: the package copy is skipped, and offline there is no other copy.
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    with pytest.raises(PretrainedError, match="ZOO_OFFLINE is set"):
        _load(entry, monkeypatch)
    # Even with the registry's sidecar hash matching it, the weights' own seal refuses the edit.
    from zoo.core.io import sha256_file

    entry.data["files"]["sidecar"].update(sha256=sha256_file(sidecar), size=sidecar.stat().st_size)
    with pytest.raises(PretrainedError, match="fields were changed after the weights were saved"):
        _load(entry, monkeypatch)
    from zoo.training import load_trained

    with pytest.raises(WeightsError):
        load_trained(stem)
