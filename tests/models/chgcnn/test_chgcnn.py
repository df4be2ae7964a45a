"""CHGCNN: the family, torch <-> JAX parity, invariance, the published code's defects, and the point of the model.

Graphs use the "radius" bond rule in the invariance tests: CGCNN's 12-nearest cut breaks ties by atom
index, so on crystals whose 12th shell is shared by inequivalent atoms no model on those graphs is
permutation invariant (CGCNN itself moves by ~2e-3 on ``random_crystals(4, seed=2)``).
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tests.helpers import toy_frame, toy_task
from zoo.graphs import build_graphs, collate
from zoo.models import get_family, list_models
from zoo.models.chgcnn import CHGCNNConfig
from zoo.models.chgcnn.config import check_state, state_layout
from zoo.testing import assert_backend_parity, assert_equivariant, predictor, random_crystals

torch = pytest.importorskip("torch")
pytest.importorskip("flax")

# Small and fast: every term type, lsop motif features (ChemEnv is slow: it has its own tests below).
SMALL = dict(atom_fea_len=12, h_fea_len=12, radius=5.0, max_neighbors=None, dmax=5.0, step=0.5, angle_step=0.25,
             motif_features="lsop")
ALL_TERMS = ("btmc", "BTM")


@pytest.fixture(scope="module")
def crystals():
    return random_crystals(4, seed=2, max_atoms=6)


def test_family_is_registered_with_both_backends_and_its_citation():
    fam = get_family("chgcnn")
    assert "chgcnn" in list_models() and set(fam.backends) == {"torch", "jax"}
    assert "2411.12616" in fam.citation and fam.outputs == ("scalar", "class")


def test_layer_grammar_and_clear_errors():
    assert CHGCNNConfig(layers="bt,BM,c").layers == ("bt", "BM", "c")
    assert CHGCNNConfig(layers=["b"]).graph_spec().featurizer == ""  # bonds only: a plain crystal graph
    spec = CHGCNNConfig(layers=("bT", "M")).graph_spec()
    assert "triplets=6" in spec.featurizer and "motif_pairs=1" in spec.featurizer
    with pytest.raises(ValueError, match=r"layers\[1\]='bC'.*distinct letters"):
        CHGCNNConfig(layers=("b", "bC"))  # the cell has no inter-order variant
    with pytest.raises(ValueError, match="aggregations"):
        CHGCNNConfig(aggregations=("mean", "median"))
    with pytest.raises(ValueError, match="combine"):
        CHGCNNConfig(combine="sum")


def test_state_layout_is_the_torch_state_dict_and_mismatches_name_the_terms():
    from zoo.core.weights import WeightsError
    from zoo.models import build

    cfg = CHGCNNConfig(**SMALL, layers=ALL_TERMS, combine="attention")
    model = build("chgcnn", "torch", cfg)
    layout = state_layout(cfg)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {k: s for k, (_, s) in layout.items()}
    assert "convs.0.motif.query" in layout and "convs.1.motif_rel.query" not in layout
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    check_state(cfg, state)
    with pytest.raises(WeightsError, match=r"convs\.1\.triplet_rel.*layers=\('btmc', 'BM'\)"):
        check_state(dataclasses.replace(cfg, layers=("btmc", "BM")), state)


def test_torch_and_jax_agree_on_the_same_weights_float64(crystals):
    """Every term type; outputs, gradients of every parameter and the updated batch-norm statistics (train
    mode), on the unpadded (torch) and the padded (jax) batch."""
    cfg = CHGCNNConfig(**SMALL, layers=ALL_TERMS)
    errors = assert_backend_parity("chgcnn", cfg, crystals, "float64", train=True, grads=True, rtol=1e-10)
    assert set(errors) == {"output", "grad", "buffers"}
    assert_backend_parity("chgcnn", cfg, crystals, "float64", train=False, rtol=1e-12)


def test_attention_parity_float64(crystals):
    cfg = CHGCNNConfig(**SMALL, layers=("btmc",), combine="attention")
    assert_backend_parity("chgcnn", cfg, crystals, "float64", train=True, grads=True, rtol=1e-10)


def test_float32_parity(crystals):
    assert_backend_parity("chgcnn", CHGCNNConfig(**SMALL, layers=ALL_TERMS), crystals, "float32", rtol=1e-4)


def test_invariant_to_rotation_translation_permutation_and_supercell(crystals):
    cfg = CHGCNNConfig(**SMALL, layers=ALL_TERMS)
    errors = assert_equivariant(predictor("chgcnn", "torch", cfg, dtype="float64"), crystals, rank=0, n_trials=1, rtol=1e-10)
    assert max(errors.values()) < 1e-10


def test_density_input_parity_invariance_and_weights(crystals):
    """``density_basis``: the volume per atom added to every atom's embedding. Both backends agree with its
    gradients; the model stays invariant (a supercell keeps the volume per atom); its Linear comes after
    every other module, so the other weights draw as before for a seed; zero density weights give the
    plain model's output and other ones move it; weights of the other kind are refused by name."""
    from zoo.core.weights import WeightsError
    from zoo.models import build

    cfg = CHGCNNConfig(**SMALL, layers=ALL_TERMS, density_basis=6)
    assert_backend_parity("chgcnn", cfg, crystals, "float64", train=True, grads=True, rtol=1e-10)
    errors = assert_equivariant(predictor("chgcnn", "torch", cfg, dtype="float64"), crystals, rank=0, n_trials=1, rtol=1e-10)
    assert max(errors.values()) < 1e-10

    plain_cfg = dataclasses.replace(cfg, density_basis=0)
    torch.manual_seed(0)
    dense = build("chgcnn", "torch", cfg).double().eval()
    torch.manual_seed(0)
    plain = build("chgcnn", "torch", plain_cfg).double().eval()
    assert list(dense.state_dict()) == list(plain.state_dict()) + ["density.weight", "density.bias"]
    assert dense.state_dict()["density.weight"].shape == (12, 6)
    for k, v in plain.state_dict().items():
        assert torch.equal(v, dense.state_dict()[k]), k
    from zoo.backend.torch import to_torch

    graphs, _ = build_graphs(crystals, cfg.graph_spec(), cache=False, progress=False)
    batch = to_torch(collate(graphs), dtype=torch.float64)
    with torch.no_grad():
        moved = dense(batch)
        dense.density.weight.zero_()
        dense.density.bias.zero_()
        assert torch.equal(dense(batch), plain(batch))
    assert (moved - plain(batch)).abs().max() > 1e-3
    with pytest.raises(WeightsError, match="density_basis=0 but the model was built with density_basis=6"):
        check_state(cfg, {k: v.numpy() for k, v in plain.state_dict().items()})
    with pytest.raises(ValueError, match="density_basis"):
        CHGCNNConfig(density_basis=1)


# ------------------------------------------------------------------- defects of the published code
@pytest.mark.parametrize("width", [24, 40])
def test_attention_aggregation_works_at_widths_other_than_64(crystals, width):
    """Published: MultiAggregation(mode="attn", in_channels=64, out_channels=64) whatever h_dim was."""
    cfg = CHGCNNConfig(**{**SMALL, "atom_fea_len": width}, layers=("btm",), combine="attention")
    from zoo.models import build

    model = build("chgcnn", "torch", cfg).double()
    assert model.convs[0].motif.query.shape == (width,)
    graphs, _ = build_graphs(crystals, cfg.graph_spec(), cache=False, progress=False)
    from zoo.backend.torch import to_torch

    out = model(to_torch(collate(graphs), dtype=torch.float64))
    out.sum().backward()
    assert out.shape == (len(crystals),) and torch.isfinite(out).all()
    assert model.convs[0].motif.query.grad.abs().sum() > 0


def test_inter_order_convolution_hears_the_remote_member_not_the_centre():
    """Published CHGInterConv: ``remote_xs = x[inter_relations_index[0]]`` (the origin again)."""
    from zoo.backend import torch as xp
    from zoo.models.chgcnn.core import Hyperedges, relatives_term

    rng = np.random.default_rng(0)
    A, F = 3, 2
    v = torch.tensor(rng.normal(size=(4, A)))
    # one motif with members atoms 2, 0, 3 (incidences 0, 1, 2) and all ordered pairs
    member_node, member_edge = torch.tensor([2, 0, 3]), torch.tensor([0, 0, 0])
    origin = torch.tensor([0, 0, 1, 1, 2, 2])
    remote = torch.tensor([1, 2, 0, 2, 0, 1])
    h = Hyperedges(torch.tensor(rng.normal(size=(1, F))), 1, member_node=member_node, member_edge=member_edge,
                   pair_origin=origin, pair_remote=remote)
    w, b = torch.tensor(rng.normal(size=(2 * A, 2 * A + F))), torch.tensor(rng.normal(size=2 * A))
    receivers, z, _ = relatives_term(v, h, {"t.fc_full.weight": w, "t.fc_full.bias": b}, "t", xp)
    # the definition, written out: fc_full(x_origin ⊕ u ⊕ x_remote)
    want = torch.stack([w @ torch.cat([v[member_node[o]], h.features[0], v[member_node[r]]]) + b for o, r in zip(origin, remote)])
    torch.testing.assert_close(z, want, rtol=1e-12, atol=1e-12)
    assert receivers.tolist() == member_node[origin].tolist()
    # and so changing only the remote atom changes the message an origin atom hears
    v2 = v.clone()
    v2[3] += 1.0
    _, z2, _ = relatives_term(v2, h, {"t.fc_full.weight": w, "t.fc_full.bias": b}, "t", xp)
    heard_from_3 = (member_node[remote] == 3) & (member_node[origin] != 3)
    assert (z2 - z)[heard_from_3].abs().min() > 0 and (z2 - z)[~heard_from_3 & (member_node[origin] != 3)].abs().max() == 0


def test_every_motif_layer_is_trained(crystals):
    """Published: several motif layers configured, one trained. Here each term of each layer is a registered
    module: in the state_dict, in the optimiser, with a gradient, and moved by a training step."""
    from zoo.backend.torch import to_torch
    from zoo.models import build

    cfg = CHGCNNConfig(**SMALL, layers=("m", "m", "m"))
    model = build("chgcnn", "torch", cfg).double().train()
    names = [f"convs.{k}.motif.fc_full.weight" for k in range(3)]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert all(n in before for n in names)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    graphs, _ = build_graphs(crystals, cfg.graph_spec(), cache=False, progress=False)
    batch = to_torch(collate(graphs), dtype=torch.float64)
    model(batch).pow(2).sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(grads[n] is not None and grads[n].abs().sum() > 0 for n in names)
    opt.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert set(names) <= moved


def test_best_checkpoint_is_chosen_on_validation_error_not_training_error(tmp_path):
    """Published training script: the best model was picked on the training error. The validation targets
    here are mirrored around the mean, so fitting the training set makes validation worse: the epoch with the
    lowest validation MAE is early, the lowest training loss late, and the run must keep the former."""
    from zoo.core.io import read_jsonl
    from zoo.tasks.base import ArrayTask
    from zoo.training import TrainConfig, train

    base = toy_task(n=40)
    val = set(base.get_validation_ids(0))
    df = toy_frame(40).copy()
    mean = df["volume_per_atom"].mean()
    df.loc[list(val), "volume_per_atom"] = 2 * mean - df.loc[list(val), "volume_per_atom"]
    task = ArrayTask(base.spec, df=df, fold_ids=base.fold_ids)
    res = train(TrainConfig(model="chgcnn", backend="torch", epochs=8, batch_size=8, lr=3e-3, out=str(tmp_path), progress=False,
                            graph_cache=False, patience=0, model_overrides={**SMALL, "layers": ["bm"]}), task=task)
    rows = read_jsonl(res.run_dir / "metrics.jsonl")
    val_mae = [r["val_mae"] for r in rows]
    train_loss = [r["train_loss"] for r in rows]
    best = json.loads((res.run_dir / "best.json").read_text())["epoch"]
    assert best == rows[int(np.argmin(val_mae))]["epoch"]
    assert best != rows[int(np.argmin(train_loss))]["epoch"]  # the two criteria disagree in this run


# ------------------------------------------------------------------- training and reloading
# slow: the heaviest default tests (30-75 s each on 2 cores); `make test-slow` runs them
@pytest.mark.slow
def test_trains_in_both_backends_and_weights_load_in_the_other(tmp_path):
    from zoo.training import TrainConfig, load_trained, train

    task = toy_task(n=24)
    graphs = None
    for backend in ("torch", "jax"):
        res = train(TrainConfig(model="chgcnn", backend=backend, epochs=1, batch_size=12, out=str(tmp_path / backend),
                                progress=False, graph_cache=False, patience=0,
                                model_overrides={**SMALL, "radius": 6.0, "dmax": 6.0, "layers": ["btm"]}), task=task)
        assert res.summary["finished"] and np.isfinite(res.summary["val"]["mae"])
        preds = []
        for other in ("torch", "jax"):
            model = load_trained(res.run_dir, backend=other, dtype="float64")
            if graphs is None:
                graphs, _ = build_graphs(list(task.df["structure"][:5]), model.graph_spec, cache=False, progress=False)
            preds.append(model.predict_graphs(graphs))
        np.testing.assert_allclose(preds[0], preds[1], rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------- the point of the model
def _fcc_hcp():
    """Copper as fcc and as ideal hcp (c/a = sqrt(8/3)) with the same nearest-neighbour distance d.

    Both have exactly 12 neighbours at d and the next shell at sqrt(2) d (fcc: 6 at a; ideal hcp: 6 at
    sqrt(2) d too), so every atom's 12 nearest neighbours are 12 Cu at d: CGCNN's graph (12 nearest within
    8 Å) is the same multiset of (species, distance) at every atom, and all atoms of both are equivalent, so
    any CGCNN gives both the same prediction. Their shells differ in shape (cuboctahedron vs
    anticuboctahedron): bond angles (fcc has 180°, hcp only three pairs at 180° fewer ...) and motif shapes."""
    from pymatgen.core import Lattice, Structure

    d = 2.55  # Å
    a = d * np.sqrt(2)
    fcc = Structure(Lattice.cubic(a), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]).get_primitive_structure()
    hcp = Structure(Lattice.hexagonal(d, d * np.sqrt(8 / 3)), ["Cu", "Cu"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    return fcc, hcp


# The two bond rules: CGCNN's default (12 nearest within 8 Å), and a plain 3.0 Å cutoff, between the first
# shell (d = 2.55 Å) and the second (sqrt(2) d = 3.61 Å in both), so that *every* pair distance within the
# cutoff is d in both crystals: the pair is degenerate for any model that sees distances only.
RULES = {"12 nearest within 8 A": dict(radius=8.0, max_neighbors=12), "all within 3 A": dict(radius=3.0, max_neighbors=None)}


@pytest.mark.parametrize("rule", list(RULES))
def test_distance_degenerate_pair_same_cgcnn_graph_different_hypergraph(rule):
    from zoo.models.cgcnn import CGCNNConfig

    fcc, hcp = _fcc_hcp()
    bonds = RULES[rule]
    cg_cfg = CGCNNConfig(radius=bonds["radius"], max_neighbors=bonds["max_neighbors"] or 12)  # 12 within 3 Å: all of them
    g_fcc, g_hcp = build_graphs([fcc, hcp], cg_cfg.graph_spec(), cache=False, progress=False)[0]

    def per_atom(g):
        return sorted(tuple(sorted(np.round(g.distances[g.receivers == i], 9))) + (int(g.numbers[i]),) for i in range(g.n_nodes))

    assert set(per_atom(g_fcc)) == set(per_atom(g_hcp)) and len(set(per_atom(g_fcc))) == 1  # identical CGCNN graph features
    assert per_atom(g_fcc)[0] == (2.55,) * 12 + (29,)  # 12 Cu at d around every atom
    cg = predictor("cgcnn", "torch", cg_cfg, dtype="float64", seed=3)([fcc, hcp])
    assert abs(cg[0] - cg[1]) <= 1e-12 * abs(cg[0])

    cfg = CHGCNNConfig(layers=("btm", "btm"), motif_features="lsop+csm", dmax=8.0, **bonds)
    h_spec = cfg.graph_spec()
    h_plain = build_graphs([fcc, hcp], dataclasses.replace(h_spec, featurizer=""), cache=False, progress=False)[0]
    assert [per_atom(g) for g in h_plain] == [per_atom(g_fcc), per_atom(g_hcp)]  # CHGCNN's bonds: the same pair graphs
    h_fcc, h_hcp = build_graphs([fcc, hcp], cfg.graph_spec(), cache=False, progress=False)[0]

    def cosines(g):
        v = g.edge_vectors
        a, b = g.hyper["triplet_bond_a"], g.hyper["triplet_bond_b"]
        return np.round((v[a] * v[b]).sum(1) / (g.distances[a] * g.distances[b]), 9)

    c_fcc, c_hcp = cosines(h_fcc), cosines(h_hcp)
    assert np.sum(c_fcc == -1.0) == 6 and np.sum(c_hcp == -1.0) == 2 * 3  # fcc: 6 per atom (1 atom), hcp: 3 per atom (2 atoms)
    assert not np.array_equal(np.sort(c_fcc), np.sort(c_hcp[: len(c_hcp) // 2]))
    from zoo.graphs.motifs import feature_names

    names = feature_names("lsop+csm")
    f_fcc, f_hcp = h_fcc.hyper["motif_features"][0], h_hcp.hyper["motif_features"][0]
    assert f_fcc[names.index("csm:C:12")] == pytest.approx(1.0) and f_hcp[names.index("csm:AC:12")] == pytest.approx(1.0)
    assert f_fcc[names.index("csm:AC:12")] < 0.95 and f_hcp[names.index("csm:C:12")] < 0.95

    for layers, differ in ((("b", "b"), False), (("bt", "bt"), True), (("bm", "bm"), True)):
        out = predictor("chgcnn", "torch", dataclasses.replace(cfg, layers=layers), dtype="float64", seed=3)([fcc, hcp])
        gap = abs(out[0] - out[1]) / abs(out[0])
        assert (gap > 1e-4) if differ else (gap < 1e-12), (layers, gap)
