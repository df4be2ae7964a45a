"""The performance gate's decision (``zoo.bench.gate.decide``) on synthetic numbers: what must fire and what must not."""
from __future__ import annotations

import pytest

from zoo.bench import gate

BASE = {"cgcnn/torch": {"train_ratio": 2.0, "infer_ratio": 0.5, "mae_seeds": [3.0, 3.1, 2.9]}}


def current(**kw):
    entry = {"train_ratio": 2.0, "infer_ratio": 0.5, "mae": 3.0, "equivariance_f64": 1e-15, "parity_f64": 1e-15}
    entry.update(kw)
    return {"cgcnn/torch": entry}


def test_unchanged_figures_pass():
    bad, notes = gate.decide(current(), BASE)
    assert bad == [] and notes == []


@pytest.mark.parametrize("what,word", [("train_ratio", "training"), ("infer_ratio", "inference")])
def test_throughput_ratio_fires_only_beyond_the_factor(what, word):
    # 1.4x slower: within the default factor 1.5
    assert gate.decide(current(**{what: BASE["cgcnn/torch"][what] * 1.4}), BASE)[0] == []
    # a planted 2x slowdown
    bad, _ = gate.decide(current(**{what: BASE["cgcnn/torch"][what] * 2.0}), BASE)
    assert len(bad) == 1 and f"{word} throughput fell 2.00x" in bad[0] and bad[0].startswith("cgcnn/torch")
    # the factor is the caller's
    assert gate.decide(current(**{what: BASE["cgcnn/torch"][what] * 2.0}), BASE, factor=2.5)[0] == []


def test_faster_is_never_a_violation():
    assert gate.decide(current(train_ratio=0.1, infer_ratio=0.1), BASE)[0] == []


@pytest.mark.parametrize("name", ["equivariance_f64", "parity_f64"])
def test_symmetry_bounds(name):
    assert gate.decide(current(**{name: 5e-10}), BASE)[0] == []
    bad, _ = gate.decide(current(**{name: 1e-6}), BASE)
    assert len(bad) == 1 and "exceeds its bound 1e-09" in bad[0]
    # NaN is not within any bound
    assert len(gate.decide(current(**{name: float("nan")}), BASE)[0]) == 1


def test_accuracy_within_seed_noise_passes_and_beyond_fires():
    mean, tol = gate.accuracy_tolerance([3.0, 3.1, 2.9])
    assert mean == pytest.approx(3.0) and tol == pytest.approx(3 * 0.1)
    assert gate.decide(current(mae=3.29), BASE)[0] == []
    bad, _ = gate.decide(current(mae=3.31), BASE)
    assert len(bad) == 1 and "test MAE 3.31" in bad[0] and "noise" in bad[0]
    # better accuracy never fires
    assert gate.decide(current(mae=0.5), BASE)[0] == []


def test_identical_seeds_still_tolerate_a_relative_margin():
    _, tol = gate.accuracy_tolerance([2.0, 2.0, 2.0])
    assert tol == pytest.approx(gate.MIN_REL_TOL * 2.0)


def test_missing_baseline_is_a_note_and_a_failed_measurement_a_violation():
    bad, notes = gate.decide({"newnet/jax": {"train_ratio": 1.0, "infer_ratio": 1.0, "mae": 1.0}}, BASE)
    assert bad == [] and len(notes) == 1 and "not gated" in notes[0] and "--update-baseline" in notes[0]
    bad, _ = gate.decide({"cgcnn/torch": {"error": "RuntimeError: boom"}}, BASE)
    assert bad == ["cgcnn/torch: measurement failed: RuntimeError: boom"]


def test_several_violations_give_one_line_each():
    bad, _ = gate.decide(current(train_ratio=5.0, infer_ratio=5.0, mae=10.0, equivariance_f64=1.0), BASE)
    assert len(bad) == 4
