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
    """The read-out adds α_i as a first 0e output and one weight, the per-element reference (last); it takes
    the trainer's centre and scale; it refuses targets it cannot mean (a piezoelectric tensor), sum pooling,
    spaces it does not know and impossible scales; the graphs get the dipole sums."""
    from zoo.models.tfn.config import N_SPECIES

    cfg = config()
    pooled = dataclasses.replace(cfg, readout="pool")
    layout = state_layout(cfg)
    assert [k for k in layout if k not in state_layout(pooled)] == ["dipole.alpha"] == list(layout)[-1:]
    assert layout["dipole.alpha"] == (N_SPECIES,)
    std = cfg.with_standardisation(0.4, 0.1)
    assert (std.dipole_center, std.dipole_scale) == (0.4, 0.1) and pooled.with_standardisation(0.4, 0.1) == pooled
    # the trainer hands over its centre as an array of the target's shape: Tr/3 of an isotropic 3x3
    assert cfg.with_standardisation(0.4 * np.eye(3), 0.1).dipole_center == pytest.approx(0.4, abs=1e-15)
    with pytest.raises(ValueError, match="3x3"):
        cfg.with_standardisation(np.zeros((3, 3, 3)), 0.1)
    assert cfg.output_irreps == "1x0e+" + dataclasses.replace(cfg, readout="pool").output_irreps
    assert cfg.graph_spec().featurizer == "dipole" and dataclasses.replace(cfg, readout="pool").graph_spec().featurizer == ""
    # a scalar target ignores the option (nothing to couple) and asks for no dipole sums
    scalar = cfg.with_target(TargetSpec(name="y", kind="scalar"))
    assert not scalar.uses_dipole and scalar.graph_spec().featurizer == ""
    with pytest.raises(ValueError, match="ij=ji"):
        cfg.with_target(TargetSpec(name="e", kind="tensor", rank=3, formula="ijk=ikj"))
    with pytest.raises(ValueError, match="pooling"):
        dataclasses.replace(cfg, pooling="sum")
    for bad in ({"dipole_alpha0": 0.0}, {"dipole_alpha0": 60.0}, {"dipole_scale": 0.0}, {"dipole_center": float("nan")}):
        with pytest.raises(ValueError, match="dipole_alpha0"):
            dataclasses.replace(cfg, **bad)
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


def test_element_reference_acts_on_its_element_only(structures):
    """The per-element reference starts at zero in both backends; raising it for an element of the crystals
    raises their polarisability and moves the prediction, raising it for an element none of them holds
    changes nothing (float64, torch)."""
    from zoo.testing import _torch_model

    cfg = config()
    model = _torch_model("tfn", cfg, "float64", 0)
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    assert np.all(state["dipole.alpha"] == 0.0)
    present = sorted({site.specie.Z for s in structures for site in s})
    absent = next(z for z in range(1, 100) if z not in present)
    base = predictor("tfn", "torch", cfg, weights=state, dtype="float64")(structures)
    for z, moves in ((absent, False), (present[0], True)):
        moved = dict(state, **{"dipole.alpha": state["dipole.alpha"].copy()})
        moved["dipole.alpha"][z] = 0.5
        out = predictor("tfn", "torch", cfg, weights=moved, dtype="float64")(structures)
        assert (np.abs(out - base).max() > 1e-6) == moves, z

