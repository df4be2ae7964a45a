"""The asv track benchmarks of accuracy and symmetry violation run their code on CPU (no asv needed)."""
from __future__ import annotations

import pytest

from benchmarks import asv_accuracy


@pytest.mark.slow  # the default TFN on 8 crystals: ~20 s on an idle machine
def test_symmetry_violation_of_an_equivariant_tensor_model_is_round_off():
    bench = asv_accuracy.SymmetryViolation()
    bench.setup("tfn", "torch", "float64")
    value = bench.track_symmetry_violation("tfn", "torch", "float64")
    assert 0.0 <= value < 1e-9


def test_scalar_families_are_skipped():
    with pytest.raises(NotImplementedError):
        asv_accuracy.SymmetryViolation().setup("cgcnn", "torch", "float32")
    # in setup, before any training: asv shows n/a for a skipped benchmark, "failed" for one raising in its body
    with pytest.raises(NotImplementedError, match="scalar task"):
        asv_accuracy.TrainedSymmetryViolation().setup("chgcnn", "jax")
