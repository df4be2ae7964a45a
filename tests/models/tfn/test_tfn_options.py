"""TFN options added by the diagnosis of issue #11 (results/tfn/DIAGNOSIS.md): messages normalised by each
atom's own neighbour count ("neighbors"), and per harmonic degree ("degree": Y^0 by the count, Y^l>=1 by
its square root; results/tfn/TENSOR.md). Equivariance and invariances in float64 (torch), torch <-> jax parity on the
padded batch, and the property that defines the option. Also CGCNN's element features as the species input
(``atom_features="cgcnn"``, searched on jdft2d). Reuses the crystals and helpers of test_tfn.py."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

from tests.helpers import torch_default_dtype
from tests.models.tfn.test_tfn import (  # noqa: F401 - _fast_xla: autouse
    _fast_xla,
    config_for,
    jax_variables,
    rel_err,
    variants,
)
from zoo.backend.jax import to_jax
from zoo.backend.torch import to_torch
from zoo.graphs import collate, pad_batch
from zoo.models.tfn import TFNConfig, state_layout
from zoo.models.tfn import jax as tfn_jax
from zoo.models.tfn import torch as tfn_torch
from zoo.symmetry import rotate_tensor

EDGE_FIELDS = ("senders", "receivers", "shifts", "edge_vectors", "distances")


def torch_out(cfg: TFNConfig, graphs, seed: int = 0, state=None):
    with torch_default_dtype(torch.float64):
        torch.manual_seed(seed)
        model = tfn_torch.Model(cfg)
    if state is not None:
        model.load_state_dict(state)
    return model, model(to_torch(collate(graphs), dtype=torch.float64)).detach().numpy()


def assert_equivariant_dielectric(cfg: TFNConfig) -> None:
    """float64: the rank-2 output rotates with the crystal (proper and improper rotations of two crystals);
    translation, another periodic image, a permutation and a supercell change nothing (1e-10)."""
    graphs, idx, Rs = variants()
    _, out = torch_out(cfg, graphs)
    assert np.abs(out[idx["g1"]]).max() > 1e-3
    for g in ("g1", "g2"):
        for name in ("rot", "imp"):
            assert rel_err(out[idx[f"{g}_{name}"]], rotate_tensor(out[idx[g]], Rs[name])) <= 1e-10, (g, name)
    for name in ("g1_trans", "g1_image", "g1_perm"):
        assert rel_err(out[idx[name]], out[idx["g1"]]) <= 1e-10, name
    assert rel_err(out[idx["g2_super"]], out[idx["g2"]]) <= 1e-10


def assert_jax_matches_on_the_padded_batch(cfg: TFNConfig, seed: int) -> None:
    """The same weights give the same prediction in JAX, float64, on the padded batch (padding atoms, edges
    and graphs included)."""
    graphs, _, _ = variants()
    model, out = torch_out(cfg, graphs, seed=seed)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    with jax.enable_x64(True):
        variables = jax_variables(state, cfg, "float64")
        batch = to_jax(pad_batch(collate(graphs)), dtype=jax.numpy.float64)
        out_jax = np.asarray(tfn_jax.Model(cfg).apply(variables, batch))[: len(graphs)]
    assert rel_err(out_jax, out) <= 1e-10


@pytest.mark.parametrize("norm", ["neighbors", "degree"])
def test_neighbor_normalisation_is_equivariant(norm):
    # The count is per atom: a supercell keeps it.
    assert_equivariant_dielectric(config_for("dielectric", message_norm=norm))


@pytest.mark.slow  # one XLA compilation of the model: ~1 min on 2 shared cores
@pytest.mark.parametrize("norm", ["neighbors", "degree"])
def test_neighbor_normalisation_matches_jax_on_the_padded_batch(norm):
    assert_jax_matches_on_the_padded_batch(config_for("dielectric", message_norm=norm), seed=0)


def test_neighbor_normalisation_divides_by_each_atoms_own_count():
    """Listing every edge twice changes nothing (each atom's sum and count both double), and
    avg_num_neighbors plays no part; with "mean" the doubled edges double the messages."""
    graphs, _, _ = variants()
    g = graphs[0]
    doubled = dataclasses.replace(g, **{k: np.concatenate([getattr(g, k)] * 2) for k in EDGE_FIELDS})
    cfg = config_for("dielectric", message_norm="neighbors")
    model, base = torch_out(cfg, [g], seed=4)
    state = model.state_dict()
    _, twice = torch_out(cfg, [doubled], state=state)
    _, other_avg = torch_out(dataclasses.replace(cfg, avg_num_neighbors=3.0), [g], state=state)
    assert rel_err(twice, base) <= 1e-12 and rel_err(other_avg, base) <= 1e-12
    mean_cfg = dataclasses.replace(cfg, message_norm="mean")
    _, mean_once = torch_out(mean_cfg, [g], state=state)
    _, mean_twice = torch_out(mean_cfg, [doubled], state=state)
    assert rel_err(mean_twice, mean_once) > 1e-3


def test_degree_normalisation_scales_each_harmonic_degree_by_its_own_power_of_the_count():
    """The edge harmonics the layers see: Y^0 over the receiver's count n (as "neighbors"), Y^l>=1 over
    sqrt(n). Counted per receiver: with every edge listed twice the Y^0 column halves, the others shrink
    by sqrt(2) only (an l >= 1 sum over a shell grows like sqrt(n), not n)."""
    import zoo.backend.torch as xp
    from zoo.models.tfn import core

    graphs, _, _ = variants()
    g = graphs[0]
    doubled = dataclasses.replace(g, **{k: np.concatenate([getattr(g, k)] * 2) for k in EDGE_FIELDS})
    cfg = config_for("dielectric", message_norm="degree")
    with torch_default_dtype(torch.float64):
        model = tfn_torch.Model(cfg)
        def edge_attr(graph, c):
            net = core.network_tables(c, tfn_torch._wigner_3j)
            batch = to_torch(collate([graph]), dtype=torch.float64)
            return core.inputs(batch, model.embedding.weight, net, xp, model.spherical_harmonics)[1].detach().numpy()
        nbr, deg, deg2 = edge_attr(g, dataclasses.replace(cfg, message_norm="neighbors")), edge_attr(g, cfg), edge_attr(doubled, cfg)
    n = np.bincount(g.receivers, minlength=len(g.numbers))[g.receivers][:, None].astype(float)
    assert n.max() > n.min() >= 1  # atoms with different counts, so the test can tell n from a constant
    np.testing.assert_allclose(deg[:, :1], nbr[:, :1], rtol=1e-13)
    np.testing.assert_allclose(deg[:, 1:], nbr[:, 1:] * np.sqrt(n), rtol=1e-12, atol=1e-15)
    E = len(g.receivers)
    np.testing.assert_allclose(deg2[:E, :1], deg[:, :1] / 2, rtol=1e-13)
    np.testing.assert_allclose(deg2[:E, 1:], deg[:, 1:] / np.sqrt(2), rtol=1e-12, atol=1e-15)


def test_configs_without_the_new_options_keep_their_function():
    """Weights written before these options load into the same function: the defaults are the old model."""
    assert TFNConfig().message_norm == "mean"
    with pytest.raises(ValueError, match="message_norm"):
        TFNConfig(message_norm="count")


# ------------------------------------------------------------------- element features (issue #11, jdft2d search)
def test_element_features_are_equivariant():
    """atom_features="cgcnn" changes only the scalar (0e) input of the first layer: in float64 the tensor output
    still rotates with the crystal (proper and improper) and translations, images, permutations and a
    supercell still change nothing."""
    assert_equivariant_dielectric(config_for("dielectric", atom_features="cgcnn"))


def test_element_features_are_the_normalised_table_times_the_weight():
    """The "cgcnn" model is the "embedding" model whose species table is (CGCNN's element table, rows of unit
    length) @ embedding.weight (92 x embed_dim): with those rows as its embedding and every other weight
    shared, the embedding model gives the same output."""
    from zoo.graphs.features import original_cgcnn_atom_features

    cfg = config_for("scalar", atom_features="cgcnn")
    graphs, _, _ = variants()
    assert state_layout(cfg)["embedding.weight"] == (92, cfg.embed_dim)
    table = cfg.atom_table()
    raw = original_cgcnn_atom_features()
    assert np.allclose(np.linalg.norm(table[1:], axis=1), 1.0) and not table[0].any()
    assert np.array_equal(table > 0, raw > 0)  # a rescaling of the rows, nothing else
    model, out = torch_out(cfg, graphs, seed=5)
    state = dict(model.state_dict())
    state["embedding.weight"] = torch.as_tensor(table) @ state["embedding.weight"]
    _, out_embedding = torch_out(dataclasses.replace(cfg, atom_features="embedding"), graphs, state=state)
    assert np.abs(out).max() > 1e-3
    assert rel_err(out_embedding, out) <= 1e-12
    with pytest.raises(ValueError, match="atom_features"):
        TFNConfig(atom_features="onehot")


@pytest.mark.slow  # one XLA compilation of the model: 57 s at load 6.5 on the 2 shared cores (31 s of CPU)
def test_element_features_match_jax_on_the_padded_batch():
    """The same weights (the 92 x embed_dim matrix included) give the same prediction in JAX, float64."""
    assert_jax_matches_on_the_padded_batch(config_for("scalar", atom_features="cgcnn"), seed=6)


# ------------------------------------------------------------- volume per atom as an input (issue #11, embedded)
def test_density_input_is_equivariant():
    """density_basis adds an invariant of the crystal (its volume per atom) to the scalar input: in float64
    the tensor output still rotates with the crystal (proper and improper), and a translation, another
    image, a permutation and a supercell (same volume per atom) change nothing."""
    assert_equivariant_dielectric(config_for("dielectric", message_norm="neighbors", density_basis=8))


def test_density_input_adds_the_features_times_the_weight():
    """With density.weight = 0 the model is the model without the input (every other weight shared); with
    the weight it differs, and the per-atom features are the Gaussians of ln(1 + V/N) of the atom's own
    crystal (V from the lattice, N its atoms), checked in numpy."""
    import zoo.backend.torch as xp
    from zoo.nn.functional import DENSITY_RANGE, density_features

    cfg = config_for("dielectric", message_norm="neighbors", density_basis=6)
    graphs, _, _ = variants()
    assert state_layout(cfg)["density.weight"] == (6, cfg.embed_dim) and "density.weight" not in state_layout(
        dataclasses.replace(cfg, density_basis=0))
    model, out = torch_out(cfg, graphs, seed=7)
    state = dict(model.state_dict())
    base_state = {k: v for k, v in state.items() if k != "density.weight"}
    _, out_off = torch_out(dataclasses.replace(cfg, density_basis=0), graphs, state=base_state)
    zeroed = {**state, "density.weight": torch.zeros_like(state["density.weight"])}
    _, out_zero = torch_out(cfg, graphs, state=zeroed)
    assert rel_err(out_zero, out_off) <= 1e-14 and rel_err(out, out_off) > 1e-3
    batch = to_torch(collate(graphs), dtype=torch.float64)
    phi = density_features(batch, 6, xp).numpy()
    lo, hi = DENSITY_RANGE
    centres = np.linspace(lo, hi, 6)
    for k, g in enumerate(graphs):
        v = abs(np.linalg.det(g.lattice)) / len(g.numbers)
        expect = np.exp(-((np.log1p(v) - centres) ** 2) / (centres[1] - centres[0]) ** 2)
        np.testing.assert_allclose(phi[batch["node_graph"].numpy() == k], np.broadcast_to(expect, (len(g.numbers), 6)), rtol=1e-12)
    with pytest.raises(ValueError, match="density_basis"):
        TFNConfig(density_basis=1)


def test_density_features_agree_across_backends_on_a_padded_batch():
    """The volume per atom of every real graph is the same in JAX on the padded batch (padding graphs,
    which have no atoms, divide by one, so nothing becomes inf or NaN)."""
    import zoo.backend.jax as xj
    import zoo.backend.torch as xt
    from zoo.nn.functional import density_features, volume_per_atom

    graphs, _, _ = variants()
    padded = pad_batch(collate(graphs))
    vt = volume_per_atom(to_torch(collate(graphs), dtype=torch.float64), xt).numpy()
    with jax.enable_x64(True):
        bj = to_jax(padded, dtype=jax.numpy.float64)
        vj = np.asarray(volume_per_atom(bj, xj))
        fj = np.asarray(density_features(bj, 8, xj))
    assert np.all(np.isfinite(vj)) and np.all(np.isfinite(fj)) and len(vj) > len(graphs)
    np.testing.assert_allclose(vj[: len(graphs)], vt, rtol=1e-13)
    np.testing.assert_allclose(vt, [abs(np.linalg.det(g.lattice)) / len(g.numbers) for g in graphs], rtol=1e-12)


@pytest.mark.slow  # one XLA compilation of the model (~1 min on 2 shared cores)
def test_density_input_matches_jax_on_the_padded_batch():
    assert_jax_matches_on_the_padded_batch(config_for("dielectric", message_norm="neighbors", density_basis=8), seed=8)
