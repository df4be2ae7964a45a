"""zoo.core under hostile inputs: untrusted weight sidecars, full disks, concurrent writers, data files
that name classes."""
from __future__ import annotations

import errno
import json
import logging
import sys

import numpy as np
import pytest

from zoo.core import weights
from zoo.core.io import atomic_path, write_json, write_text
from zoo.core.lock import LockedError, hold
from zoo.core.safejson import UnsafeDataError, check_classes, object_hook


def saved(tmp_path, **meta):
    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(3, dtype=np.int64)}
    weights.save(tmp_path / "m", state, {"model": "toy", "featurization": {"radius": 8.0}, **meta})
    return tmp_path / "m"


def edit_sidecar(stem, change):
    path = stem.with_suffix(".json")
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


# ------------------------------------------------------------------------------------------ weights
def test_weights_round_trip_and_seal(tmp_path):
    stem = saved(tmp_path)
    state, meta = weights.load(stem)
    assert meta["format"] == 2 and meta["meta_sha256"] == weights.meta_digest(meta)
    assert state["n"].shape == () and np.array_equal(state["w"], np.arange(6, dtype=np.float32).reshape(2, 3))


def test_a_sidecar_without_sha256_is_refused(tmp_path):
    """Removing the field used to switch the check off silently."""
    stem = saved(tmp_path)
    edit_sidecar(stem, lambda m: m.pop("sha256"))
    with pytest.raises(weights.WeightsError, match="records no sha256"):
        weights.load(stem)


def test_an_edited_sidecar_is_refused(tmp_path):
    """A sidecar edited to another radius (or normalisation, or target) used to give a different model."""
    stem = saved(tmp_path)
    edit_sidecar(stem, lambda m: m["featurization"].update(radius=4.0))
    with pytest.raises(weights.WeightsError, match="changed after the weights were saved"):
        weights.load(stem)
    stem = saved(tmp_path / "b")
    edit_sidecar(stem, lambda m: m.pop("meta_sha256"))
    with pytest.raises(weights.WeightsError, match="meta_sha256 missing"):
        weights.load(stem)


def test_a_changed_or_truncated_weights_file_is_refused(tmp_path):
    stem = saved(tmp_path)
    st = stem.with_suffix(".safetensors")
    data = bytearray(st.read_bytes())
    data[-3] ^= 0x40
    st.write_bytes(bytes(data))
    with pytest.raises(weights.WeightsError, match="does not match"):
        weights.load(stem)
    st.write_bytes(bytes(data[:40]))
    with pytest.raises(weights.WeightsError, match="truncated"):
        weights.load(stem)


def test_a_corrupt_sidecar_is_named(tmp_path):
    stem = saved(tmp_path)
    stem.with_suffix(".json").write_text('{"model": "toy", "sha')
    with pytest.raises(weights.WeightsError, match="m.json: not valid JSON"):
        weights.load(stem)


def test_legacy_unsealed_sidecars_load_with_a_warning(tmp_path, caplog):
    stem = saved(tmp_path)
    edit_sidecar(stem, lambda m: (m.pop("meta_sha256"), m.update(format=1)))
    with caplog.at_level(logging.WARNING, logger="zoo.core.weights"):
        state, meta = weights.load(stem)
    assert "format-1 sidecar" in caplog.text and meta["format"] == 1
    edit_sidecar(stem, lambda m: m.update(format=3))
    with pytest.raises(weights.WeightsError, match="format 3"):
        weights.load(stem)


def test_a_caller_hash_stands_in_for_a_missing_one(tmp_path):
    stem = saved(tmp_path)
    digest = json.loads(stem.with_suffix(".json").read_text())["sha256"]
    edit_sidecar(stem, lambda m: m.pop("sha256"))
    with pytest.raises(weights.WeightsError, match="records no sha256"):
        weights.load(stem)
    state, _ = weights.load(stem, expected_sha256=digest)  # a registry's hash verifies the file instead
    assert state["w"].shape == (2, 3)
    with pytest.raises(weights.WeightsError, match="does not match"):
        weights.load(stem, expected_sha256="0" * 64)


# ------------------------------------------------------------------------------------------ io
def test_a_full_disk_leaves_nothing_half_written_and_names_the_file(tmp_path):
    target = tmp_path / "results.json"
    write_text(target, "old")

    with pytest.raises(OSError) as info:
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            # what safetensors raises on ENOSPC: the OS error only in its message
            raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]
    with pytest.raises(TypeError, match="not JSON serialisable"):  # other errors pass through unchanged
        write_json(tmp_path / "x.json", {"a": object()})


# ------------------------------------------------------------------------------------------ locks
def test_a_second_holder_is_refused_at_once(tmp_path):
    with hold(tmp_path, "run folder X", "wait for it"):
        with pytest.raises(LockedError, match="run folder X is in use by another process.*wait for it"):
            with hold(tmp_path, "run folder X", "wait for it"):
                pass
    with hold(tmp_path, "run folder X", "wait for it"):  # released: free again
        pass


def test_a_lock_dies_with_its_process(tmp_path):
    """kill -9 of the holder frees the lock: no stale lock blocks the resume of a killed run."""
    import os
    import signal
    import subprocess
    import time

    ready = tmp_path / "ready"
    code = (f"import time; from zoo.core.lock import hold\nwith hold({str(tmp_path)!r}, 'x', 'y'):\n"
            f"    open({str(ready)!r}, 'w').close(); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    try:
        deadline = time.time() + 60
        while not ready.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert ready.exists()
        with pytest.raises(LockedError):
            with hold(tmp_path, "x", "y"):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with hold(tmp_path, "x", "y"):
        pass


# ------------------------------------------------------------------------------------------ allow-lists
ALLOWED = {"pymatgen.core.structure": ("Structure",)}


def test_check_classes_names_the_place_and_the_class():
    ok = {"data": [[{"@module": "pymatgen.core.structure", "@class": "Structure", "sites": []}, 1.0]]}
    check_classes(ok, ALLOWED, "f.json")
    bad = {"data": [[1.0], [{"@module": "os", "@class": "system"}]]}
    with pytest.raises(UnsafeDataError, match=r"f.json: \['data'\]\[1\]\[0\] names the class os.system"):
        check_classes(bad, ALLOWED, "f.json")
    with pytest.raises(UnsafeDataError, match="names the class None.Structure"):  # a class without its module
        check_classes({"@class": "Structure"}, ALLOWED, "f.json")


def test_the_parse_hook_refuses_before_the_file_is_decoded():
    text = json.dumps({"a": [{"@module": "pymatgen.core.structure", "@class": "Structure"}, {"@module": "x", "@class": "Y"}]})
    with pytest.raises(UnsafeDataError, match="x.Y"):
        json.loads(text, object_hook=object_hook(ALLOWED, "f.json"))
    assert json.loads('{"a": 1}', object_hook=object_hook(ALLOWED, "f.json")) == {"a": 1}
