"""The TFN's polarisable read-out (``readout="dipole"``, zoo.nn.dipole): exact O(3) equivariance and the
invariances of a crystal's description in float64, torch <-> JAX parity on the same weights (outputs and
gradients, float64 and float32), the weight layout, and the refusals. Through the public helpers
(``zoo.testing``), as a user would check it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")

from zoo.models import make_config  # noqa: E402
from zoo.models.tfn import TFNConfig, state_layout  # noqa: E402
from zoo.tasks.spec import TargetSpec  # noqa: E402
from zoo.testing import assert_backend_parity, assert_equivariant, predictor, random_crystals  # noqa: E402

EPS = TargetSpec(name="eps", kind="tensor", rank=2, formula="ij=ji")


def config(**kw) -> TFNConfig:
    base = make_config("tfn").with_target(EPS)
    # 7 Å: every random crystal's atoms have neighbours; a small network keeps the test fast; α near 10 Å^3,
    # so that the coupling (not only the first-order α T term) is large
    return dataclasses.replace(base, readout="dipole", message_norm="neighbors", density_basis=8, radius=7.0,
                               hidden_irreps="8x0e+4x0o+2x1e+2x1o+2x2e+2x2o", n_layers=2, dipole_alpha0=10.0, **kw)


@pytest.fixture(scope="module")
def structures():
    return random_crystals(3, seed=1, max_atoms=6)


def test_dipole_readout_is_equivariant(structures):
    """Random proper and improper rotations rotate the prediction; translation, permutation and a supercell
    leave it alone (float64, 1e-10 relative). The output is not trivially symmetric: its anisotropy is
    nonzero on the non-cubic crystals."""
    predict = predictor("tfn", "torch", config(), dtype="float64")
    y = predict(structures)
    aniso = y - np.trace(y, axis1=1, axis2=2)[:, None, None] / 3 * np.eye(3)
    assert np.abs(aniso).max() > 1e-3
    errors = assert_equivariant(predict, structures, rank=2, rtol=1e-10)
    assert set(errors) == {"rotation", "improper", "translation", "permutation", "supercell"}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dipole_readout_backend_parity(structures, dtype):
    """Same weights, same outputs and gradients in torch (unpadded) and JAX (padded batch)."""
    errors = assert_backend_parity("tfn", config(), structures, dtype=dtype, grads=True)
    assert set(errors) == {"output", "grad"}


def test_dipole_weights_and_refusals():
    """The read-out adds α_i as a first 0e output and one (2,) weight, last; it refuses targets it cannot
    mean (a piezoelectric tensor), sum pooling and non-positive scales; the graphs get the dipole sums."""
    cfg = config()
    layout = state_layout(cfg)
    assert list(layout)[-1] == "dipole.weight" and layout["dipole.weight"] == (2,)
    assert cfg.output_irreps == "1x0e+" + dataclasses.replace(cfg, readout="pool").output_irreps
    assert cfg.graph_spec().featurizer == "dipole" and dataclasses.replace(cfg, readout="pool").graph_spec().featurizer == ""
    # a scalar target ignores the option (nothing to couple), and declares no dipole weight
    scalar = cfg.with_target(TargetSpec(name="y", kind="scalar"))
    assert not scalar.uses_dipole and "dipole.weight" not in state_layout(scalar)
    with pytest.raises(ValueError, match="ij=ji"):
        cfg.with_target(TargetSpec(name="e", kind="tensor", rank=3, formula="ijk=ikj"))
    with pytest.raises(ValueError, match="pooling"):
        dataclasses.replace(cfg, pooling="sum")
    for bad in (0.0, 60.0):
        with pytest.raises(ValueError, match="dipole_alpha0"):
            dataclasses.replace(cfg, dipole_alpha0=bad)
    with pytest.raises(ValueError, match="readout"):
        dataclasses.replace(cfg, readout="ewald")
    with pytest.raises(ValueError, match="dipole_target_transform"):
        dataclasses.replace(cfg, dipole_target_transform="log")


@pytest.mark.parametrize("space", ["none", "cm"])
def test_trainer_refuses_a_head_in_another_space(space, tmp_path):
    """The head outputs in the space of one --target-transform; a run with another stops before reading data,
    naming both fixes."""
    from zoo.training import TrainConfig, TrainingError, train

    other = "log" if space == "cm" else "cm"
    cfg = TrainConfig(model="tfn", task="embedded_dielectric", epochs=1, target_transform=other, out=str(tmp_path),
                      model_overrides={"readout": "dipole", "dipole_target_transform": space}, progress=False)
    with pytest.raises(TrainingError, match=f"--target-transform {space}.*dipole_target_transform={other}"):
        train(cfg)
