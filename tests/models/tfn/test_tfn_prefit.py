"""The pre-fit of the polarisable read-out's per-element reference (zoo.models.tfn.prefit): on crystals
labelled by the embedded task's own labeller it recovers the tabulated polarisabilities, both backends fit
the same reference from the same batches (float64), and the trainer runs it on new runs only, loads it into
the weights and writes its record."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

from zoo.backend import jax as bj  # noqa: E402
from zoo.backend import torch as bt  # noqa: E402
from zoo.graphs import build_graphs, collate, pad_batch  # noqa: E402
from zoo.graphs.dipole import DAMPING_RADIUS  # noqa: E402
from zoo.models import make_config  # noqa: E402
from zoo.models.tfn.prefit import fit_element_reference, prefit  # noqa: E402
from zoo.nn.dipole import alpha_max  # noqa: E402
from zoo.tasks.embedded import DIELECTRIC  # noqa: E402
from zoo.tasks.embedded.dielectric import PolarizationCatastrophe, dielectric_tensor, polarizabilities  # noqa: E402
from zoo.tensors.spectral import cm_map  # noqa: E402
from zoo.testing import random_crystals  # noqa: E402

CENTER, SCALE = 0.4, 0.1  # a standardisation of the Clausius-Mossotti space, as the trainer writes it


def config(**kw):
    return dataclasses.replace(make_config("tfn").with_target(DIELECTRIC.target), readout="dipole", dipole_delta=0.0,
                               dipole_center=CENTER, dipole_scale=SCALE, **kw)


@pytest.fixture(scope="module")
def labelled():
    cfg = config()
    structures, eps = [], []
    for s in random_crystals(16, seed=3, max_atoms=6, elements=("O", "Mg", "Si"), graph_specs=(cfg.graph_spec(),)):
        try:  # the generator's own filter: crystals past the catastrophe have no label
            eps.append(dielectric_tensor(s))
            structures.append(s)
        except PolarizationCatastrophe:
            continue
    graphs, failures = build_graphs(structures, cfg.graph_spec(), cache=False, progress=False)
    assert not failures and len(structures) >= 8
    eps = np.stack(eps)
    z = (cm_map(eps) - CENTER * np.eye(3)) / SCALE
    return structures, graphs, z


def reference_alpha(structures) -> dict[int, float]:
    return {site.specie.Z: float(a) for s in structures for site, a in zip(s, polarizabilities(s))}


def test_prefit_recovers_the_labellers_polarisabilities(labelled):
    """The labels come from the table α through the same model (δ = 0), so the fit has an exact solution:
    the loss falls by > 20x and every element's fitted α is within 5 % of the table; an element none of the
    crystals holds keeps its reference of 0 (α = dipole_alpha0)."""
    structures, graphs, z = labelled
    cfg = config()
    batches = [bt.to_torch(collate(graphs[k:k + 4], z[k:k + 4]), dtype=torch.float64) for k in range(0, len(graphs), 4)]
    ref, record = fit_element_reference(cfg, batches, "torch", "fnorm", epochs=150, lr=0.02)
    losses = record["train_loss_per_epoch"]
    assert record["n_train"] == len(graphs) and record["steps"] == 150 * len(batches)
    assert losses[-1] < losses[0] / 20
    top = alpha_max(DAMPING_RADIUS)
    fitted = top / (1 + np.exp(-(cfg.dipole_element_gain * ref + math.log(cfg.dipole_alpha0 / (top - cfg.dipole_alpha0)))))
    for Z, alpha in reference_alpha(structures).items():
        assert abs(fitted[Z] - alpha) < 0.05 * alpha, (Z, fitted[Z], alpha)
    present = set(reference_alpha(structures))
    assert all(ref[Z] == 0.0 for Z in range(len(ref)) if Z not in present)


def test_both_backends_fit_the_same_reference(labelled):
    """The same batches (unpadded in torch, padded with masked graphs in JAX) give the same reference after
    a few epochs, float64."""
    _, graphs, z = labelled
    cfg = config()
    chunks = [(graphs[k:k + 4], z[k:k + 4]) for k in range(0, len(graphs), 4)]
    t_batches = [bt.to_torch(collate(g, y), dtype=torch.float64) for g, y in chunks]
    ref_t, _ = fit_element_reference(cfg, t_batches, "torch", "fnorm", epochs=5, lr=0.02)
    with jax.enable_x64(True):
        import jax.numpy as jnp

        j_batches = [bj.to_jax(pad_batch(collate(g, y), n_graphs=6), dtype=jnp.float64) for g, y in chunks]
        ref_j, record = fit_element_reference(cfg, j_batches, "jax", "fnorm", epochs=5, lr=0.02)
    assert record["n_train"] == len(graphs)
    assert np.abs(ref_t).max() > 0.05
    np.testing.assert_allclose(ref_j, ref_t, rtol=0, atol=1e-8)


def test_prefit_hook_only_with_the_option():
    """The family hook returns nothing, and makes no batches, unless the read-out is on with pre-fit epochs (30 by default; a config
    written before the option, with a read-out, loads with none, as it ran); a negative count or a pre-fit of
    a switched-off reference is refused."""
    from zoo.models import config_from_dict, config_to_dict

    def never():  # a run whose config asks for no fit makes no batches for it
        raise AssertionError("batches made for a config that asks for no pre-fit")

    assert config().dipole_prefit_epochs == 30
    assert prefit(config(dipole_prefit_epochs=0), never, "torch", "fnorm") is None
    assert prefit(dataclasses.replace(config(), readout="pool"), never, "torch", "fnorm") is None
    old = config_to_dict(config())
    del old["dipole_prefit_epochs"]
    assert config_from_dict("tfn", old).dipole_prefit_epochs == 0
    with pytest.raises(ValueError, match="dipole_prefit_epochs"):
        config(dipole_prefit_epochs=-1)
    with pytest.raises(ValueError, match="dipole_element_gain=0"):
        config(dipole_prefit_epochs=2, dipole_element_gain=0.0)
    with pytest.raises(ValueError, match="at least one training crystal"):
        fit_element_reference(config(), [], "torch", "fnorm", epochs=1)


# JAX: 40-100 s of compiling the training step on 2 cores, so `make test-slow`; the JAX fit itself is in the
# default run (test_both_backends_fit_the_same_reference)
@pytest.mark.parametrize("backend", ["torch", pytest.param("jax", marks=pytest.mark.slow)])
def test_trainer_prefits_new_runs_and_records_it(labelled, tmp_path, backend):
    """A new run fits the reference before its first step (prefit.json, loss falling) in either backend (JAX
    hands it its padded batches), and its weights start from it; a run from given weights (--init-weights)
    fits nothing."""
    import pandas as pd

    from zoo.core import weights
    from zoo.tasks.base import ArrayTask
    from zoo.training import TrainConfig, train

    structures, _, _ = labelled
    df = pd.DataFrame({"structure": structures, "dielectric": [dielectric_tensor(s) for s in structures]},
                      index=[f"c{k}" for k in range(len(structures))])
    task = ArrayTask.from_dataframe(DIELECTRIC, df, seed=0, val_fraction=0.25)
    overrides = {"readout": "dipole", "hidden_irreps": "4x0e+2x1o+2x2e", "n_layers": 1, "dipole_prefit_epochs": 4}
    cfg = TrainConfig(model="tfn", backend=backend, epochs=1, batch_size=4, lr=1e-6, target_transform="cm", loss="fnorm",
                      recipe="none", out=str(tmp_path / "a"), progress=False, graph_cache=False, patience=0,
                      model_overrides=overrides)
    res = train(cfg, task=task)
    record = json.loads((res.run_dir / "prefit.json").read_text())
    losses = record["train_loss_per_epoch"]
    assert len(losses) == 4 and losses[-1] < losses[0]
    ref = weights.load(res.run_dir / "best")[0]["dipole.alpha"]
    assert np.abs(ref).max() > 0.01  # moved by the pre-fit; a learning rate of 1e-6 alone moves it by ~1e-5
    if backend == "torch":  # the choice is the trainer's, the same for both backends
        given = train(dataclasses.replace(cfg, out=str(tmp_path / "b"), init_weights=str(res.run_dir / "best")), task=task)
        assert not (given.run_dir / "prefit.json").exists()
