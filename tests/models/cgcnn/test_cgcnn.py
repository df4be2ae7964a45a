"""CGCNN: faithful batch norm, torch <-> jax parity on the same weights, exact weight conversion, invariances, weights.

Parity tests run the jax model on a PADDED batch (``pad_batch``) and torch on the unpadded one, so they
also prove that padding changes nothing (masked batch statistics, masked pooling). Weights move between
the backends with the generic converter (``zoo.backend.params``), the flax module declaring the torch names.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import subprocess
import sys
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
pytest.importorskip("flax")
import jax.numpy as jnp  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402

from zoo.backend.jax import to_jax  # noqa: E402
from zoo.backend.params import flax_from_torch, torch_from_flax  # noqa: E402
from zoo.backend.torch import to_torch  # noqa: E402
from zoo.graphs import collate, pad_batch  # noqa: E402
from zoo.models import build, config_from_dict, config_to_dict, get_family  # noqa: E402
from zoo.models.cgcnn import CGCNNConfig  # noqa: E402
from zoo.models.cgcnn import core  # noqa: E402
from zoo.models.cgcnn import jax as cgjax  # noqa: E402
from zoo.models.cgcnn.config import check_state, state_layout  # noqa: E402
from zoo.models.cgcnn.torch import CGCNN as TorchCGCNN  # noqa: E402
from zoo.models.cgcnn.torch import load_state_arrays, state_arrays  # noqa: E402
from zoo.core.weights import WeightsError  # noqa: E402
from tests.helpers import ROOT  # noqa: E402

SMALL = CGCNNConfig(atom_fea_len=16, h_fea_len=24, n_conv=2)  # fast; the default widths are tested once
# float64: the two backends run the same core (zoo.models.cgcnn.core), so they agree to rounding (~1e-14 measured)
TOL = {"float32": 1e-5, "float64": 1e-12}


# --------------------------------------------------------------------------- helpers
def build_graph(structure, config: CGCNNConfig):
    from zoo.graphs import build_graph as _build

    return _build(structure, config.graph_spec())


def random_crystals(n: int, seed: int) -> list[Structure]:
    """Small triclinic crystals (1-4 atoms, 3-5 Å cells) with generic positions (no symmetric ties)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        k = int(rng.integers(1, 5))
        lattice = Lattice(np.diag(rng.uniform(3.0, 5.0, 3)) + rng.normal(0.0, 0.4, (3, 3)))
        s = Structure(lattice, list(rng.choice(["Li", "O", "Na", "Si", "Cl", "Fe"], k)), rng.random((k, 3)))
        if k == 1 or s.distance_matrix[np.triu_indices(k, 1)].min() > 1.2:  # Å, no overlapping atoms
            out.append(s)
    return out


def rel_err(a, b) -> float:
    """max |a - b| / max |b|: relative to the tensor's scale, so tiny entries do not dominate."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def torch_model(config: CGCNNConfig, dtype: torch.dtype, seed: int = 0) -> TorchCGCNN:
    torch.manual_seed(seed)
    model = TorchCGCNN(config).to(dtype)
    # Non-trivial batch-norm affine parameters and running stats, so the converter and eval mode are tested
    # on more than ones and zeros.
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, buf in list(model.named_parameters()) + list(model.named_buffers()):
            if ".bn" in name and buf.is_floating_point():
                if name.endswith("running_var") or name.endswith("weight"):
                    buf.copy_(0.5 + torch.rand(buf.shape, generator=g, dtype=dtype))
                else:
                    buf.copy_(0.3 * torch.randn(buf.shape, generator=g, dtype=dtype))
            elif name.endswith("num_batches_tracked"):
                buf.fill_(7)
    return model


def init_variables(config: CGCNNConfig, dtype=np.float32) -> dict:
    """Zeros shaped like the flax model's own variables, floats in numpy ``dtype``: the ``like`` that
    ``flax_from_torch`` takes names, shapes and dtypes from (init traced, not run)."""
    return jax.tree.map(lambda s: np.zeros(s.shape, dtype if np.issubdtype(s.dtype, np.floating) else s.dtype), _variable_shapes(config))


@functools.lru_cache(maxsize=8)
def _variable_shapes(config: CGCNNConfig) -> dict:
    batch = to_jax(collate([build_graph(random_crystals(1, seed=0)[0], config)]))
    return jax.eval_shape(cgjax.CGCNN(config).init, jax.random.PRNGKey(0), batch)


def jax_variables(state, config: CGCNNConfig, dtype=np.float32) -> dict:
    """Torch-named ``state`` as flax variables (floats in ``dtype``), through the generic converter."""
    return flax_from_torch(state, like=init_variables(config, dtype))


def targets(n_graphs: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, n_graphs)


def torch_step(model: TorchCGCNN, batch_np, dtype, train: bool):
    """Output, MSE-loss parameter gradients and the state after one forward (torch names)."""
    model.train(train)
    model.zero_grad()
    batch = to_torch(batch_np, dtype=dtype)
    out = model(batch)
    if model.config.classification:
        loss = -out[:, 0].mean()
    else:
        loss = ((out - torch.as_tensor(targets(out.shape[0]), dtype=dtype)) ** 2).mean()
    loss.backward()
    grads = {k: p.grad.detach().numpy().copy() for k, p in model.named_parameters()}
    return out.detach().numpy(), grads, state_arrays(model)


def jax_step(config: CGCNNConfig, variables, batch_np, dtype, train: bool):
    """Same as ``torch_step`` for the flax model on (possibly padded) ``batch_np``: outputs of real graphs only."""
    module = cgjax.CGCNN(config)
    batch = to_jax(batch_np, dtype=dtype)
    mask = jnp.asarray(batch_np["graph_mask"], dtype=dtype)
    n_real = int(batch_np["graph_mask"].sum())
    y = jnp.zeros(mask.shape, dtype).at[:n_real].set(jnp.asarray(targets(n_real), dtype))

    def loss_fn(params):
        v = {"params": params, "batch_stats": variables["batch_stats"]}
        if train:
            out, updates = module.apply(v, batch, train=True, mutable=["batch_stats"])
        else:
            out, updates = module.apply(v, batch, train=False), {"batch_stats": variables["batch_stats"]}
        if config.classification:
            loss = -(out[:, 0] * mask).sum() / mask.sum()
        else:
            loss = (((out - y) ** 2) * mask).sum() / mask.sum()
        return loss, (out, updates)

    # jit: one compilation is much faster than flax's op-by-op dispatch on this 2-core machine
    (_, (out, updates)), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(variables["params"])
    grads_t = torch_from_flax({"params": grads})
    state = torch_from_flax({"params": variables["params"], "batch_stats": updates["batch_stats"]})
    return np.asarray(out)[:n_real], grads_t, state


def padded(batch):
    # Generous padding: several spare graphs, nodes and edges, as a jitted loader would give.
    return pad_batch(batch, n_nodes=batch["numbers"].shape[0] + 5, n_edges=batch["senders"].shape[0] + 37, n_graphs=batch["lattice"].shape[0] + 3)


@pytest.fixture
def x64():
    """float64 in jax for this test only (the context manager restores the previous setting)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def crystals():
    return random_crystals(5, seed=7)


@pytest.fixture(scope="module")
def batch(crystals):
    return collate([build_graph(s, SMALL) for s in crystals])


# --------------------------------------------------------------------------- config and layout
def test_config_defaults_registry_and_state_layout():
    cfg = CGCNNConfig()
    assert (cfg.atom_fea_len, cfg.n_conv, cfg.h_fea_len, cfg.n_h, cfg.orig_atom_fea_len) == (64, 3, 128, 1, 92)
    assert cfg.nbr_fea_len == 41  # centres 0, 0.2, ..., 8 Å
    spec = cfg.graph_spec()
    assert (spec.rule, spec.radius, spec.max_neighbors) == ("cgcnn", 8.0, 12)
    entry = get_family("cgcnn")
    assert entry.config is CGCNNConfig and set(entry.outputs) == {"scalar", "class"}
    assert isinstance(build("cgcnn", "torch"), TorchCGCNN)
    assert isinstance(build("cgcnn", "jax", n_conv=2), cgjax.CGCNN)
    assert config_from_dict("cgcnn", config_to_dict(cfg)) == cfg
    for c in (cfg, SMALL, CGCNNConfig(n_h=3, classification=True), CGCNNConfig(atom_features="embedding", orig_atom_fea_len=32)):
        sd = TorchCGCNN(c).state_dict()
        layout = state_layout(c)
        assert list(sd) == list(layout)  # same names, same order
        assert all(tuple(sd[k].shape) == shape for k, (_, shape) in layout.items())
    # The fixed atom table is data, not a weight: not in the state_dict, but in the model.
    assert "atom_table" not in TorchCGCNN(cfg).state_dict()
    assert TorchCGCNN(cfg).atom_table.shape == (101, 92)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="atom_features"):
        CGCNNConfig(atom_features="onehot")
    with pytest.raises(ValueError, match="92"):
        CGCNNConfig(orig_atom_fea_len=64)  # the CGCNN table is 92 wide
    with pytest.raises(ValueError, match="n_conv"):
        CGCNNConfig(n_conv=0)


def test_with_target():
    from zoo.tasks.spec import TargetSpec

    cfg = CGCNNConfig()
    assert cfg.with_target(TargetSpec("e_form", "scalar")).classification is False
    cls = cfg.with_target(TargetSpec("is_metal", "class"))
    assert cls.classification is True and cls.n_outputs == 2
    with pytest.raises(ValueError, match="tfn"):
        cfg.with_target(TargetSpec("dielectric", "tensor", rank=2, formula="ij=ji"))


# --------------------------------------------------------------------------- torch faithfulness
def reference_forward(model: TorchCGCNN, batch) -> torch.Tensor:
    """The original CGCNN forward written independently: torch's own F.batch_norm, explicit per-graph means."""
    cfg = model.config
    v = model.embedding(model.atom_table[batch["numbers"]])
    d = batch["distances"].unsqueeze(-1)
    centres = torch.arange(cfg.nbr_fea_len, dtype=d.dtype) * cfg.step + cfg.dmin
    nbr = torch.exp(-((d - centres) ** 2) / cfg.step**2)
    for conv in model.convs:
        z = conv.fc_full(torch.cat([v[batch["receivers"]], v[batch["senders"]], nbr], dim=1))
        z = F.batch_norm(z, conv.bn1.running_mean, conv.bn1.running_var, conv.bn1.weight, conv.bn1.bias, model.training, 0.1, 1e-5)
        filt, core = z.chunk(2, dim=1)
        msg = torch.sigmoid(filt) * F.softplus(core)
        summed = torch.stack([msg[batch["receivers"] == i].sum(0) for i in range(v.shape[0])])
        summed = F.batch_norm(summed, conv.bn2.running_mean, conv.bn2.running_var, conv.bn2.weight, conv.bn2.bias, model.training, 0.1, 1e-5)
        v = F.softplus(v + summed)
    crys = torch.stack([v[batch["node_graph"] == g].mean(0) for g in range(batch["n_nodes"].shape[0])])
    h = F.softplus(model.conv_to_fc(F.softplus(crys)))
    return model.fc_out(h).squeeze(-1)


@pytest.mark.parametrize("train", [True, False])
def test_torch_matches_reference_and_ignores_padding(batch, train):
    model = torch_model(SMALL, torch.float64).train(train)
    ref = copy.deepcopy(model)
    out = model(to_torch(batch, dtype=torch.float64))
    expected = reference_forward(ref, to_torch(batch, dtype=torch.float64))
    assert rel_err(out.detach(), expected.detach()) < 1e-12
    for k, v in ref.state_dict().items():  # running stats updated with torch's unbiased variance
        if not k.endswith("num_batches_tracked"):
            assert rel_err(model.state_dict()[k], v) < 1e-12, k

    # The same model on a padded batch: same outputs on real graphs, same running statistics.
    model_p = torch_model(SMALL, torch.float64).train(train)
    pb = padded(batch)
    out_p = model_p(to_torch(pb, dtype=torch.float64))
    G = batch["n_nodes"].shape[0]
    assert out_p.shape == (pb["n_nodes"].shape[0],)
    assert rel_err(out_p[:G].detach(), out.detach()) < 1e-12
    for k, v in model.state_dict().items():
        assert rel_err(model_p.state_dict()[k], v) < 1e-12, k


# --------------------------------------------------------------------------- torch <-> jax parity
PARITY_CONFIGS = {
    "small": SMALL,
    "default": CGCNNConfig(),
    "deep_head": dataclasses.replace(SMALL, n_h=3),
    "embedding": dataclasses.replace(SMALL, atom_features="embedding", orig_atom_fea_len=20),
    # dropout 0 so that both backends are deterministic in train mode
    "classification": dataclasses.replace(SMALL, classification=True, dropout=0.0),
    "density": dataclasses.replace(SMALL, density_basis=6),  # the crystal's volume per atom as an input
}


def _parity(config, batch, dtype_name, train):
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype_name]
    jdtype = {"float32": jnp.float32, "float64": jnp.float64}[dtype_name]
    model = torch_model(config, tdtype)
    variables = jax_variables(state_arrays(model), config, np.dtype(dtype_name))
    out_t, grads_t, state_t = torch_step(model, batch, tdtype, train)
    out_j, grads_j, state_j = jax_step(config, variables, padded(batch), jdtype, train)
    tol = TOL[dtype_name]
    assert out_j.dtype == np.dtype(dtype_name)
    assert rel_err(out_j, out_t) < tol
    assert set(grads_j) >= set(grads_t)
    scale = max(np.abs(g).max() for g in grads_t.values())
    for k in grads_t:
        if train and k.endswith("fc_full.bias"):
            # fc_full feeds bn1, which subtracts the batch mean: in train mode this bias has zero gradient
            # mathematically, so both backends hold rounding noise; it must be tiny on the global scale.
            assert max(np.abs(grads_j[k]).max(), np.abs(grads_t[k]).max()) < tol * scale, k
        else:
            assert rel_err(grads_j[k], grads_t[k]) < tol, (k, rel_err(grads_j[k], grads_t[k]))
    for k in state_t:  # running statistics after the step (unchanged in eval mode)
        if k.endswith("num_batches_tracked"):
            assert int(state_j[k]) == int(state_t[k]) == 7 + int(train), k
        else:
            assert rel_err(state_j[k], state_t[k]) < tol, (k, rel_err(state_j[k], state_t[k]))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_parity_torch_jax(batch, dtype_name, train, request):
    if dtype_name == "float64":
        request.getfixturevalue("x64")
    _parity(SMALL, batch, dtype_name, train)


@pytest.mark.parametrize("name", ["default", "deep_head", "embedding", "classification", "density"])
def test_parity_torch_jax_variants(crystals, name, x64):
    config = PARITY_CONFIGS[name]
    batch = collate([build_graph(s, config) for s in crystals[:3]])
    _parity(config, batch, "float64", train=True)


def test_jax_jit_padded_one_compilation(batch, crystals):
    """Two different batches padded to the same sizes share one compilation; stats keep updating."""
    config = SMALL
    module = cgjax.CGCNN(config)
    variables = jax_variables(state_arrays(torch_model(config, torch.float32)), config)
    traces = []

    @jax.jit
    def step(variables, batch):
        traces.append(1)  # runs once per compilation
        return module.apply(variables, batch, train=True, mutable=["batch_stats"])

    sizes = dict(n_nodes=64, n_edges=512, n_graphs=8)
    out1, upd = step(variables, to_jax(pad_batch(batch, **sizes)))
    variables = {"params": variables["params"], **upd}
    out2, upd = step(variables, to_jax(pad_batch(collate([build_graph(s, config) for s in crystals[:3]]), **sizes)))
    assert len(traces) == 1
    assert out1.shape == out2.shape == (8,)
    assert np.all(np.isfinite(np.asarray(out1))) and np.all(np.isfinite(np.asarray(out2)))
    assert int(upd["batch_stats"]["convs_0"]["bn1"]["num_batches_tracked"]) == 7 + 2


def test_classification_head(batch):
    """Two log-probabilities per crystal; dropout (p = 0.5, as the original) acts only in train mode."""
    config = dataclasses.replace(SMALL, classification=True)
    model = torch_model(config, torch.float64).eval()
    out = model(to_torch(batch, dtype=torch.float64)).detach().numpy()
    G = batch["n_nodes"].shape[0]
    assert out.shape == (G, 2)
    np.testing.assert_allclose(np.exp(out).sum(1), 1.0, rtol=1e-12)
    module = cgjax.CGCNN(config)
    variables = jax_variables(state_arrays(model), config)
    b = to_jax(padded(batch))
    apply = jax.jit(module.apply, static_argnames="train")
    assert rel_err(np.asarray(apply(variables, b, train=False))[:G], out) < 1e-5
    with pytest.raises(Exception, match="dropout"):  # train mode needs a dropout key
        module.apply(variables, b, train=True, mutable=["batch_stats"])
    train = jax.jit(lambda v, b, key: module.apply(v, b, train=True, mutable=["batch_stats"], rngs={"dropout": key})[0])
    train_out = [np.asarray(train(variables, b, jax.random.PRNGKey(k)))[:G] for k in (0, 1)]
    assert not np.allclose(train_out[0], train_out[1])  # different dropout masks


# --------------------------------------------------------------------------- one core, thin adapters
def test_core_imports_neither_framework():
    code = "import sys, zoo.models.cgcnn.core; print(sorted(m for m in ('torch', 'jax', 'flax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_both_backends_run_the_one_core(batch, monkeypatch):
    """The torch and the flax module hold parameters only: the forward pass of each is ``core.forward``."""
    model = torch_model(SMALL, torch.float32)
    variables = jax_variables(state_arrays(model), SMALL)  # before the spy: it traces the flax init
    calls = []
    original = core.forward

    def spy(p, batch, config, *, xp, **kw):
        calls.append(xp.NAME)
        assert set(state_layout(config)) <= set(p)  # every weight, by its torch name
        return original(p, batch, config, xp=xp, **kw)

    monkeypatch.setattr(core, "forward", spy)
    model(to_torch(batch))
    cgjax.CGCNN(SMALL).apply(variables, to_jax(padded(batch)))
    assert calls == ["torch", "jax"]


def _numpy_ops():
    """The operations ``core.forward`` asks of ``xp``, in numpy (no gradients): a third backend."""

    def segment_sum(x, index, n):
        out = np.zeros((n,) + x.shape[1:], x.dtype)
        np.add.at(out, index, x)
        return out

    def log_softmax(x, axis=-1):
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    return types.SimpleNamespace(
        NAME="numpy", exp=np.exp, ones_like=np.ones_like, log_softmax=log_softmax, segment_sum=segment_sum,
        linear=lambda x, w, b: x @ w.T + b, take=lambda x, i: x[i], astype=lambda x, dtype: x.astype(dtype),
        concat=lambda xs, axis: np.concatenate(xs, axis=axis), split=lambda x, sizes, axis: np.split(x, np.cumsum(sizes)[:-1], axis=axis),
        sigmoid=lambda x: 1.0 / (1.0 + np.exp(-x)), softplus=lambda x: np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20)))),
        rsqrt=lambda x: 1.0 / np.sqrt(x), stop_gradient=lambda x: x, const=lambda a, like: np.asarray(a, like.dtype),
    )


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_core_is_plain_array_math_numpy_gives_the_same_numbers(batch, train):
    """``core.forward`` on numpy arrays (padded batch) = the torch model (unpadded, torch's fused batch norm)."""
    model = torch_model(SMALL, torch.float64)
    state = state_arrays(model)
    out_t, _, state_t = torch_step(model, batch, torch.float64, train)
    p = dict(state, atom_table=SMALL.atom_table())
    out_n, updates = core.forward(p, padded(batch), SMALL, train=train, xp=_numpy_ops())
    assert rel_err(out_n[: batch["n_nodes"].shape[0]], out_t) < 1e-12
    assert sorted(updates) == (sorted(k for k, (kind, _) in state_layout(SMALL).items() if kind.startswith("bn.r") or kind.endswith("tracked")) if train else [])
    for k, v in updates.items():
        assert rel_err(v, state_t[k]) < 1e-12, k


# --------------------------------------------------------------------------- weight conversion
BUFFER_KINDS = ("bn.running_mean", "bn.running_var", "bn.num_batches_tracked")


@pytest.mark.parametrize("name", ["small", "deep_head", "embedding"])
def test_flax_declares_the_torch_weight_format_and_converts_exactly(batch, name, x64):
    config = PARITY_CONFIGS[name]
    # The flax module's own variables are the torch state_dict under flax paths: same names and shapes,
    # trainable ones in "params", the batch-norm buffers in "batch_stats".
    like = init_variables(config)
    layout = state_layout(config)
    declared = torch_from_flax(like)
    assert sorted(declared) == sorted(layout)
    assert all(declared[k].shape == shape for k, (_, shape) in layout.items())
    assert set(torch_from_flax({"batch_stats": like["batch_stats"]})) == {k for k, (kind, _) in layout.items() if kind in BUFFER_KINDS}
    for dtype in (torch.float32, torch.float64):
        state = state_arrays(torch_model(config, dtype))
        assert list(state) == list(layout)  # the weight format, in order
        back = torch_from_flax(jax_variables(state, config, np.dtype(str(dtype).removeprefix("torch."))))
        assert sorted(back) == sorted(state)
        for k in state:
            assert back[k].dtype == state[k].dtype and np.array_equal(back[k], state[k]), k
    # jax -> torch -> jax, from a flax init followed by one train step (so num_batches_tracked = 1)
    module = cgjax.CGCNN(config)
    b = to_jax(padded(batch), dtype=jnp.float32)
    variables = jax.jit(module.init)(jax.random.PRNGKey(3), b)
    _, upd = jax.jit(lambda v, b: module.apply(v, b, train=True, mutable=["batch_stats"]))(variables, b)
    variables = {"params": variables["params"], **upd}
    again = flax_from_torch(torch_from_flax(variables), like=variables)
    assert jax.tree.structure(again) == jax.tree.structure(variables)
    for a, b_ in zip(jax.tree.leaves(again), jax.tree.leaves(variables)):
        assert a.dtype == b_.dtype and np.array_equal(np.asarray(a), np.asarray(b_))
    assert int(again["batch_stats"]["convs_0"]["bn1"]["num_batches_tracked"]) == 1
    # and the torch model accepts what flax produced
    load_state_arrays(TorchCGCNN(config), torch_from_flax(variables))


# --------------------------------------------------------------------------- invariances
def _predict(model, structures, config):
    b = to_torch(collate([build_graph(s, config) for s in structures]), dtype=torch.float64)
    with torch.no_grad():
        return model(b).numpy()


@pytest.mark.parametrize("config", [SMALL, dataclasses.replace(SMALL, density_basis=6)], ids=["paper", "density"])
def test_invariances_float64(crystals, config):
    model = torch_model(config, torch.float64).eval()
    rng = np.random.default_rng(11)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot = q * np.sign(np.linalg.det(q))  # proper rotation
    base = _predict(model, crystals, config)
    variants = {
        "rotation": [Structure(Lattice(s.lattice.matrix @ rot.T), s.species, s.frac_coords) for s in crystals],
        "translation": [Structure(s.lattice, s.species, s.frac_coords + rng.random(3)) for s in crystals],
        "permutation": [Structure.from_sites([s[i] for i in rng.permutation(len(s))]) for s in crystals],
        "supercell": [s.make_supercell([2, 1, 1], in_place=False) for s in crystals],
    }
    for name, structures in variants.items():
        assert rel_err(_predict(model, structures, config), base) < 1e-10, name
    # The test can fail: a different crystal gives a different output.
    other = [Structure(s.lattice.matrix * 1.05, s.species, s.frac_coords) for s in crystals]
    assert rel_err(_predict(model, other, config), base) > 1e-4


def test_density_input_is_last_in_the_weights():
    """density_basis adds one Linear after every other module: the other weights are drawn as before for a
    seed (so the paper's model keeps its initialisation), and a wrong density_basis is named in the error."""
    cfg = dataclasses.replace(SMALL, density_basis=6)
    torch.manual_seed(3)
    plain = state_arrays(TorchCGCNN(SMALL))
    torch.manual_seed(3)
    dense = state_arrays(TorchCGCNN(cfg))
    assert list(dense) == list(plain) + ["density.weight", "density.bias"]
    assert all(np.array_equal(plain[k], dense[k]) for k in plain)
    assert dense["density.weight"].shape == (16, 6)
    with pytest.raises(WeightsError, match="density_basis=0"):
        check_state(cfg, plain)
    with pytest.raises(ValueError, match="density_basis"):
        CGCNNConfig(density_basis=1)


# --------------------------------------------------------------------------- weights
def test_save_load_round_trip_and_wrong_width(tmp_path, batch, x64):
    from zoo.core import weights

    config = SMALL
    model = torch_model(config, torch.float32).eval()
    weights.save(tmp_path / "cgcnn", state_arrays(model), {"model": "cgcnn", "config": config_to_dict(config)})
    state, meta = weights.load(tmp_path / "cgcnn")
    config2 = config_from_dict(meta["model"], meta["config"])
    assert config2 == config
    model2 = load_state_arrays(build("cgcnn", "torch", config2), state).eval()
    with torch.no_grad():
        b = to_torch(batch)
        assert torch.equal(model(b), model2(b))
    out_j = jax.jit(cgjax.CGCNN(config2).apply)(jax_variables(state, config2), to_jax(padded(batch)))
    assert rel_err(np.asarray(out_j)[: batch["n_nodes"].shape[0]], model(b).detach().numpy()) < 1e-5

    wider = dataclasses.replace(config, atom_fea_len=32)
    message = r"the weights have atom_fea_len=16 but the model was built with atom_fea_len=32"
    with pytest.raises(WeightsError, match=message):
        load_state_arrays(TorchCGCNN(wider), state)
    # jax: check_state names the hyper-parameters (a loader calls it first), the converter the tensors
    with pytest.raises(WeightsError, match=message):
        check_state(wider, state)
    with pytest.raises(WeightsError, match=r"conv_to_fc\.weight: shape \(24, 16\) but the model has \(24, 32\)"):
        jax_variables(state, wider)
    deeper = dataclasses.replace(config, n_conv=3)
    with pytest.raises(WeightsError, match=r"n_conv=2 but the model was built with n_conv=3"):
        check_state(deeper, state)
    with pytest.raises(WeightsError, match=r"missing: \['convs\.2\.bn1\.bias'"):
        jax_variables(state, deeper)
    # same hyper-parameters, one tensor of the wrong shape: named with both shapes
    broken = dict(state, **{"fc_out.bias": np.zeros(3, np.float32)})
    with pytest.raises(WeightsError, match=r"fc_out\.bias: shape \(3,\) but the model has \(1,\)"):
        load_state_arrays(TorchCGCNN(config), broken)
