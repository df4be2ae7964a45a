"""Tensor field network: O(3) equivariance, invariances, index symmetry, torch <-> jax parity, weights.

Every crystal-level check runs on ONE batch that holds two small triclinic crystals and transformed copies
of them (proper and improper rotations, a translation, a different choice of periodic images, a
permutation of the atoms, a supercell), so each (backend, target, dtype) costs a single evaluation (and a
single XLA compilation). The JAX model always runs on the padded batch (``pad_batch``) and torch on the
unpadded one, so parity also proves that padding changes nothing.
"""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache, partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
pytest.importorskip("flax")
e3nn = pytest.importorskip("e3nn")
ej = pytest.importorskip("e3nn_jax")
import jax.numpy as jnp  # noqa: E402
from e3nn import o3  # noqa: E402
from e3nn.util.test import assert_equivariant  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402

from tests.helpers import ROOT, torch_default_dtype  # noqa: E402
from zoo import tensors as zt  # noqa: E402
from zoo.backend import jax as bj  # noqa: E402
from zoo.backend import torch as bt  # noqa: E402
from zoo.backend.jax import to_jax  # noqa: E402
from zoo.backend.params import flax_from_torch, torch_from_flax  # noqa: E402
from zoo.backend.torch import to_torch  # noqa: E402
from zoo.core.weights import WeightsError  # noqa: E402
from zoo.graphs import CrystalGraph, build_graph, collate, pad_batch  # noqa: E402
from zoo.models import build, config_from_dict, config_to_dict, get_family  # noqa: E402
from zoo.models.tfn import TFNConfig, estimate_avg_num_neighbors, n_parameters, state_layout  # noqa: E402
from zoo.models.tfn import core  # noqa: E402
from zoo.models.tfn import irreps as I  # noqa: E402
from zoo.models.tfn import jax as tfn_jax  # noqa: E402
from zoo.models.tfn import torch as tfn_torch  # noqa: E402
from zoo.nn.radial import polynomial_envelope  # noqa: E402
from zoo.symmetry import rotate_tensor  # noqa: E402
from zoo.tasks.spec import TargetSpec  # noqa: E402

RADIUS = 4.0  # Å
HIDDEN = "6x0e+4x0o+3x1e+3x1o+2x2e+2x2o"  # both parities, small: compile time dominates these tests
TARGETS = {
    "scalar": TargetSpec("energy", kind="scalar", unit="eV/atom"),
    "dielectric": TargetSpec("dielectric", kind="tensor", rank=2, formula="ij=ji"),
    "piezo": TargetSpec("piezo", kind="tensor", rank=3, formula="ijk=ikj", unit="C/m^2"),
    "elastic": TargetSpec("elastic", kind="tensor", rank=4, formula="ijkl=jikl=klij", unit="GPa"),
}
TOL = {"float32": 1e-5, "float64": 1e-10}
JAX_DTYPE = {"float32": jnp.float32, "float64": jnp.float64}
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64}


def config_for(target: str, **kw) -> TFNConfig:
    base = dict(hidden_irreps=HIDDEN, radius=RADIUS, radial_hidden=16, avg_num_neighbors=12.0)
    base.update(kw)
    return TFNConfig(**base).with_target(TARGETS[target])


def rel_err(a, b) -> float:
    """max |a - b| / max |b|: relative to the array's scale, so tiny entries do not dominate."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


@pytest.fixture(autouse=True, scope="module")
def _fast_xla():
    # XLA's optimisation passes cost most of the compile time of these small graphs and change nothing
    # these tests check; restore the setting afterwards so no other test file is affected.
    old = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", old)


# ----------------------------------------------------------------------------------------- crystals
def random_o3(rng, improper: bool) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return -q if improper else q  # -q: a rotation times the inversion (det -1)


def base_graphs() -> list[CrystalGraph]:
    """Two triclinic crystals (3 and 2 atoms, 3-4 Å cells) with generic positions."""
    rng = np.random.default_rng(7)
    s1 = Structure(Lattice(np.diag([3.3, 3.7, 4.0]) + rng.normal(0, 0.3, (3, 3))), ["Li", "O", "Si"], [[0.0, 0.0, 0.0], [0.31, 0.52, 0.44], [0.68, 0.17, 0.81]])
    s2 = Structure(Lattice(np.diag([3.5, 3.2, 3.8]) + rng.normal(0, 0.3, (3, 3))), ["Na", "Cl"], [[0.1, 0.05, 0.2], [0.55, 0.6, 0.45]])
    spec = config_for("scalar").graph_spec()
    return [build_graph(s, spec) for s in (s1, s2)]


def rotated(g: CrystalGraph, R: np.ndarray) -> CrystalGraph:
    """The same crystal and edges in a frame rotated by R (row vectors: x -> x R^T)."""
    return dataclasses.replace(g, positions=g.positions @ R.T, lattice=g.lattice @ R.T, edge_vectors=g.edge_vectors @ R.T)


def translated(g: CrystalGraph, t: np.ndarray) -> CrystalGraph:
    return dataclasses.replace(g, positions=g.positions + t)


def other_image(g: CrystalGraph, atom: int, n: np.ndarray) -> CrystalGraph:
    """Move ``atom`` by the lattice translation n·L and fix the shifts: the same periodic crystal."""
    pos = g.positions.copy()
    pos[atom] += n @ g.lattice
    shifts = g.shifts - n * (g.senders == atom)[:, None] + n * (g.receivers == atom)[:, None]
    return dataclasses.replace(g, positions=pos, shifts=shifts)


def permuted(g: CrystalGraph, perm: np.ndarray) -> CrystalGraph:
    """New atom k is old atom perm[k]."""
    inv = np.argsort(perm)
    return dataclasses.replace(g, numbers=g.numbers[perm], positions=g.positions[perm], senders=inv[g.senders], receivers=inv[g.receivers])


def supercell_a(g: CrystalGraph, m: int = 2) -> CrystalGraph:
    """The m×1×1 supercell, edges derived exactly from the primitive ones (copy c of atom i at x_i + c·a)."""
    N = g.n_nodes
    L = g.lattice
    pos = np.concatenate([g.positions + c * L[0] for c in range(m)])
    snd, rcv, sh = [], [], []
    for c in range(m):
        for s, r, t in zip(g.senders, g.receivers, g.shifts):
            ca = c + int(t[0])
            snd.append(s + N * (ca % m))
            rcv.append(r + N * c)
            sh.append([ca // m, t[1], t[2]])
    Ls = np.stack([m * L[0], L[1], L[2]])
    snd, rcv, sh = np.array(snd), np.array(rcv), np.array(sh, dtype=np.float64)
    ev = pos[snd] + sh @ Ls - pos[rcv]
    return CrystalGraph(np.tile(g.numbers, m), pos, Ls, snd, rcv, sh, ev, np.linalg.norm(ev, axis=1))


@lru_cache(maxsize=None)
def variants():
    """(graphs, index) with index[name] = position in the batch of each transformed copy."""
    rng = np.random.default_rng(11)
    g1, g2 = base_graphs()
    R_proper, R_improper = random_o3(rng, False), random_o3(rng, True)
    items = {
        "g1": g1,
        "g2": g2,
        "g1_rot": rotated(g1, R_proper),
        "g2_rot": rotated(g2, R_proper),
        "g1_imp": rotated(g1, R_improper),
        "g2_imp": rotated(g2, R_improper),
        "g1_inv": rotated(g1, -np.eye(3)),
        "g1_trans": translated(g1, np.array([1.3, -0.7, 2.1])),
        "g1_image": other_image(g1, 1, np.array([1, 0, -1])),
        "g1_perm": permuted(g1, np.array([2, 0, 1])),
        "g2_super": supercell_a(g2),
    }
    names = list(items)
    return [items[k] for k in names], {k: i for i, k in enumerate(names)}, {"rot": R_proper, "imp": R_improper, "inv": -np.eye(3)}


# ------------------------------------------------------------------------------------- model runs
@lru_cache(maxsize=None)
def torch_model(target: str, dtype: str, seed: int = 0, **kw):
    cfg = config_for(target, **dict(kw))
    with torch_default_dtype(TORCH_DTYPE[dtype]):
        torch.manual_seed(seed)
        model = tfn_torch.Model(cfg)
    return cfg, model


def jax_variables(state, cfg: TFNConfig, dtype: str) -> dict:
    """Torch-named weights as the flax model's variables, in ``dtype`` (call under ``jax.enable_x64``
    for float64): the generic converter takes structure and dtypes from a ``like`` tree, here the
    model's own variables, shaped by ``jax.eval_shape`` (nothing is compiled or run)."""
    batch = to_jax(pad_batch(collate(variants()[0][:1])), dtype=JAX_DTYPE[dtype])
    shapes = jax.eval_shape(tfn_jax.Model(cfg).init, jax.random.PRNGKey(0), batch)
    like = jax.tree_util.tree_map(lambda a: np.zeros(a.shape, dtype), shapes)
    return flax_from_torch(state, like=like)


def loss_weights(shape, seed=3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


@lru_cache(maxsize=None)
def torch_run(target: str, dtype: str):
    cfg, model = torch_model(target, dtype)
    graphs, _, _ = variants()
    b = to_torch(collate(graphs), dtype=TORCH_DTYPE[dtype])
    b["positions"].requires_grad_(True)
    b["lattice"].requires_grad_(True)
    out = model(b)
    loss = (out * torch.as_tensor(loss_weights(tuple(out.shape)), dtype=out.dtype)).sum()
    names = [n for n, _ in model.named_parameters()]
    grads = torch.autograd.grad(loss, [p for _, p in model.named_parameters()] + [b["positions"], b["lattice"]])
    return {
        "out": out.detach().numpy(),
        "params": {n: g.numpy() for n, g in zip(names, grads[: len(names)])},
        "positions": grads[-2].numpy(),
        "lattice": grads[-1].numpy(),
        "state": {k: v.detach().numpy() for k, v in model.state_dict().items()},
    }


@lru_cache(maxsize=None)
def jax_run(target: str, dtype: str):
    """The JAX model on the padded batch with the torch model's weights: outputs and gradients."""
    cfg, _ = torch_model(target, dtype)
    state = torch_run(target, dtype)["state"]
    graphs, _, _ = variants()
    G = len(graphs)
    padded = pad_batch(collate(graphs))
    module = tfn_jax.Model(cfg)
    # full-precision float32 products (on GPU the default would allow TF32), as torch's default
    with jax.enable_x64(dtype == "float64"), jax.default_matmul_precision("highest"):
        variables = jax_variables(state, cfg, dtype)
        batch = to_jax(padded, dtype=JAX_DTYPE[dtype])
        w = jnp.asarray(loss_weights((G,) + cfg.out_shape), dtype=JAX_DTYPE[dtype])

        def loss(variables, positions, lattice):
            out = module.apply(variables, dict(batch, positions=positions, lattice=lattice))
            return (out[:G] * w).sum(), out

        (_, out), (g_vars, g_pos, g_lat) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(variables, batch["positions"], batch["lattice"])
        return {
            "out": np.asarray(out),
            "params": torch_from_flax(g_vars),
            "positions": np.asarray(g_pos),
            "lattice": np.asarray(g_lat),
            "n_graphs": G,
            "n_nodes": sum(g.n_nodes for g in graphs),
        }


def run(backend: str, target: str, dtype: str):
    r = torch_run(target, dtype) if backend == "torch" else jax_run(target, dtype)
    if backend == "jax":
        r = dict(r, out=r["out"][: r["n_graphs"]])
    return r


# Default: float64 everywhere, float32 for torch and for the scalar head in JAX; the rest is slow
# (each JAX case is one more XLA compilation of the forward+backward pass).
CASES = [
    pytest.param(backend, target, dtype, marks=[pytest.mark.slow] if (backend, dtype) == ("jax", "float32") and target != "scalar" else [])
    for backend in ("torch", "jax")
    for target in TARGETS
    for dtype in ("float64", "float32")
]


# ---------------------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("backend,target,dtype", CASES)
def test_crystal_equivariance_and_invariances(backend, target, dtype):
    """Rotating lattice + positions (proper, improper, inversion) rotates the output Cartesian tensor; a
    translation, another choice of periodic images, a permutation of the atoms and a supercell change nothing."""
    _, idx, Rs = variants()
    out = run(backend, target, dtype)["out"]
    tol = TOL[dtype]
    assert np.all(np.isfinite(out))
    scale = np.abs(out[idx["g1"]]).max()
    assert scale > 1e-3  # a non-trivial output, so the checks below can fail
    for g in ("g1", "g2"):
        for name in ("rot", "imp", "inv"):
            if f"{g}_{name}" not in idx:
                continue
            expect = rotate_tensor(out[idx[g]], Rs[name]) if out.ndim > 1 else out[idx[g]]
            assert rel_err(out[idx[f"{g}_{name}"]], expect) <= tol, (g, name)
    if target == "piezo":  # a polar rank-3 tensor flips sign under inversion: a real check of parity
        assert rel_err(out[idx["g1_inv"]], -out[idx["g1"]]) <= tol
    for name in ("g1_trans", "g1_image", "g1_perm"):
        assert rel_err(out[idx[name]], out[idx["g1"]]) <= tol, name
    assert rel_err(out[idx["g2_super"]], out[idx["g2"]]) <= tol  # mean pooling: intensive


def test_sum_pooling_is_extensive():
    cfg = config_for("elastic", pooling="sum")
    graphs, idx, _ = variants()
    with torch_default_dtype(torch.float64):
        torch.manual_seed(1)
        model = tfn_torch.Model(cfg)
        out = model(to_torch(collate(graphs), dtype=torch.float64)).detach().numpy()
    assert rel_err(out[idx["g2_super"]], 2 * out[idx["g2"]]) <= 1e-10
    assert rel_err(out[idx["g1_perm"]], out[idx["g1"]]) <= 1e-10


def test_message_normalisation():
    """"mean": listing every edge twice and doubling avg_num_neighbors changes nothing (the sum of
    messages is divided by the typical count); "sqrt" (e3nn's) would scale the messages by sqrt(2)."""
    graphs, _, _ = variants()
    g = graphs[0]
    doubled = dataclasses.replace(g, **{k: np.concatenate([getattr(g, k)] * 2) for k in ("senders", "receivers", "shifts", "edge_vectors", "distances")})
    outs = {}
    for norm in ("mean", "sqrt"):
        cfg = config_for("dielectric", message_norm=norm)
        with torch_default_dtype(torch.float64):
            torch.manual_seed(2)
            model = tfn_torch.Model(cfg)
            model2 = tfn_torch.Model(dataclasses.replace(cfg, avg_num_neighbors=2 * cfg.avg_num_neighbors))
        model2.load_state_dict(model.state_dict())
        outs[norm] = [m(to_torch(collate([x]), dtype=torch.float64)).detach().numpy() for m, x in ((model, g), (model2, doubled))]
    assert rel_err(outs["mean"][1], outs["mean"][0]) <= 1e-12
    assert rel_err(outs["sqrt"][1], outs["sqrt"][0]) > 1e-3


@pytest.mark.parametrize("target", ["dielectric", "piezo", "elastic"])
def test_output_index_symmetry_by_construction(target):
    """Random weights already give a symmetric dielectric tensor, ijk=ikj piezo and full elastic symmetry."""
    cfg = config_for(target)
    for backend in ("torch", "jax"):
        T = run(backend, target, "float64")["out"]
        assert zt.obeys_formula(T, cfg.target_formula, atol=1e-13 * np.abs(T).max())
        # and the symmetric part is all there is: projecting does not change it
        P = zt.index_projector(cfg.target_formula)
        flat = T.reshape(T.shape[0], -1)
        assert rel_err(flat @ P.T, flat) <= 1e-13
    if target == "elastic":  # the six Voigt-pair symmetries, spelled out
        T = run("torch", target, "float64")["out"]
        for perm in [(1, 0, 2, 3), (0, 1, 3, 2), (2, 3, 0, 1)]:
            assert np.allclose(T, T.transpose((0,) + tuple(1 + p for p in perm)), atol=1e-13 * np.abs(T).max(), rtol=0)


# ------------------------------------------------------------------------------------------- parity
PARITY = [
    pytest.param(target, dtype, marks=[pytest.mark.slow] if dtype == "float32" and target != "scalar" else [])
    for target in TARGETS
    for dtype in ("float64", "float32")
]


@pytest.mark.parametrize("target,dtype", PARITY)
def test_backend_parity_outputs_and_gradients(target, dtype):
    """Same weights → same outputs, parameter gradients and position / lattice gradients (forces, stress)."""
    t, j = run("torch", target, dtype), run("jax", target, dtype)
    tol = TOL[dtype]
    grad_tol = {"float32": 1e-4, "float64": 1e-10}[dtype]  # float32 gradients sum ~1e3 terms
    assert rel_err(j["out"], t["out"]) <= tol
    assert set(j["params"]) == set(t["params"])
    for name, g in t["params"].items():
        assert np.abs(g).max() > 0, name  # every parameter influences the loss
        assert rel_err(j["params"][name], g) <= grad_tol, name
    n = j["n_nodes"]
    assert rel_err(j["positions"][:n], t["positions"]) <= grad_tol
    assert np.all(np.isfinite(j["positions"])) and np.all(j["positions"][n:] == 0)  # padding: finite, no force
    G = j["n_graphs"]
    assert np.abs(t["lattice"]).max() > 0  # edges are rebuilt from the lattice (stress is available)
    assert rel_err(j["lattice"][:G], t["lattice"]) <= grad_tol


def test_forces_are_equivariant():
    """-dE/dx rotates with the crystal (torch float64, scalar head)."""
    t = run("torch", "scalar", "float64")
    graphs, idx, Rs = variants()
    off = np.cumsum([0] + [g.n_nodes for g in graphs])
    w = loss_weights((len(graphs),))  # the loss is Σ_g w_g E_g: divide w_g out of each graph's gradient
    F = lambda k: t["positions"][off[idx[k]] : off[idx[k] + 1]] / w[idx[k]]  # noqa: E731
    assert rel_err(F("g1_rot"), F("g1") @ Rs["rot"].T) <= 1e-10
    assert rel_err(F("g1_imp"), F("g1") @ Rs["imp"].T) <= 1e-10
    assert rel_err(F("g1_trans"), F("g1")) <= 1e-10
    assert np.abs(F("g1").sum(axis=0)).max() <= 1e-10 * np.abs(F("g1")).max()  # no net force on a periodic crystal


# ---------------------------------------------------------------------------- convolution kernels
def test_fused_kernels_equal_e3nn_tensor_products():
    """Our fused convolution (``core.fused_conv``, in either backend, on either library's Wigner-3j
    symbols) = e3nn's o3.TensorProduct (torch) = e3nn-jax's FunctionalTensorProduct (jax), each followed
    by the scatter-sum, on the same per-edge weights; path weights equal both libraries'."""
    cfg = config_for("elastic", lmax=3)
    rng = np.random.default_rng(5)
    N, E = 6, 23
    s, r = rng.integers(0, N, E), rng.integers(0, N, E)
    for lp in list(cfg.plan().layers) + [cfg.plan().readout]:
        conv = lp.conv
        h = rng.normal(size=(N, I.irreps_dim(conv.irreps_in)))
        sh = rng.normal(size=(E, I.irreps_dim(conv.irreps_sh)))
        w = rng.normal(size=(E, conv.weight_numel))
        with torch_default_dtype(torch.float64):
            ref = o3.TensorProduct(
                tfn_torch._e3(conv.irreps_in), tfn_torch._e3(conv.irreps_sh), tfn_torch._e3(conv.irreps_mid),
                list(conv.instructions), shared_weights=False, internal_weights=False,
            )
        assert [ins.path_weight for ins in ref.instructions] == list(conv.path_weights)
        assert [ins.path_weight for ins in tfn_jax.functional_tp(conv).instructions] == list(conv.path_weights)
        th, tsh, tw, ts, tr = (torch.as_tensor(a) for a in (h, sh, w, s, r))
        expect = bt.segment_sum(ref(th[ts], tsh, tw), tr, N).numpy()
        # the fused kernel takes its weights and gives its output in its own column layouts
        w_fused = w[:, core.fused_weight_permutation(conv)]
        mid = core.fused_mid_permutation(conv)
        got = core.fused_conv(th, tsh, torch.as_tensor(w_fused), ts, tr, core.fused_conv_tables(conv, tfn_torch._wigner_3j), bt)
        assert rel_err(got.numpy()[:, mid], expect) <= 1e-13
        with jax.enable_x64(True):
            jh, jsh, js, jr = (jnp.asarray(a) for a in (h, sh, s, r))
            legacy = np.asarray(jax.ops.segment_sum(tfn_jax.library_tp(conv)(jh[js], jsh, jnp.asarray(w)), jr, num_segments=N))
            jfused = core.fused_conv(jh, jsh, jnp.asarray(w_fused), js, jr, core.fused_conv_tables(conv, tfn_jax._wigner_3j), bj)
        assert rel_err(legacy, expect) <= 1e-13 and rel_err(np.asarray(jfused)[:, mid], expect) <= 1e-13


@pytest.mark.parametrize("irreps_in, irreps_out", [
    ("32x0e+8x1o+8x2e", "32x0e+16x0e+8x1o+8x2e"),
    ("4x0e+3x1o+2x0e+5x1o+2x2e", "3x1o+6x0e+2x2o+1x1o"),  # repeated types, interleaved; 2o unreachable (zeros)
    ("3x1o", "2x0e"),  # nothing reachable
])
def test_irreps_linear_equals_e3nn_linear(irreps_in, irreps_out):
    """Our grouped linear (``core.irreps_linear``) = e3nn's o3.Linear on the same flat weight (values and
    gradients), in both backends, also when the input arrives permuted (the fused layout)."""
    rng = np.random.default_rng(3)
    with torch_default_dtype(torch.float64):
        ref = o3.Linear(irreps_in, irreps_out)
    perm = rng.permutation(ref.irreps_in.dim)
    plain = core.linear_tables(I.parse_irreps(irreps_in), I.parse_irreps(irreps_out))
    permuted = core.linear_tables(I.parse_irreps(irreps_in), I.parse_irreps(irreps_out), tuple(int(i) for i in perm))
    assert plain.numel == ref.weight.numel()
    x = rng.normal(size=(7, ref.irreps_in.dim))
    xp_ = np.empty_like(x)
    xp_[:, perm] = x  # e3nn column c sits at position perm[c]
    g = rng.normal(size=(7, ref.irreps_out.dim))
    y_ref = ref(torch.as_tensor(x))
    grad_ref = torch.autograd.grad((y_ref * torch.as_tensor(g)).sum(), ref.weight)[0] if ref.weight.numel() else ref.weight
    expect = (y_ref.detach().numpy(), grad_ref.detach().numpy())
    outs = []
    for t, inp in ((plain, x), (permuted, xp_)):
        w = ref.weight.detach().clone().requires_grad_(True)
        y = core.irreps_linear(torch.as_tensor(inp), w, t, bt)
        grad = torch.autograd.grad((y * torch.as_tensor(g)).sum(), w)[0] if w.numel() else w
        outs.append((y.detach().numpy(), grad.detach().numpy()))
        with jax.enable_x64(True):
            def value_and_grad(w, t=t, inp=inp):
                y, vjp = jax.vjp(lambda w: core.irreps_linear(jnp.asarray(inp), w, t, bj), w)
                return y, vjp(jnp.asarray(g))[0]

            y, grad = jax.jit(value_and_grad)(jnp.asarray(ref.weight.detach().numpy()))
            outs.append((np.asarray(y), np.asarray(grad)))
    for y, grad in outs:
        assert np.abs(y - expect[0]).max() <= 1e-13 * max(1.0, np.abs(expect[0]).max())
        assert grad.shape == expect[1].shape and np.all(np.abs(grad - expect[1]) <= 1e-13 * max(1.0, np.abs(expect[1]).max(initial=0.0)))


def test_model_output_does_not_depend_on_the_kernel():
    """Fused and library kernels give the same model in both backends (the fused ones permute the radial
    MLP's outputs and lin2's inputs, so this also checks those permutations against the libraries')."""
    graphs, _, _ = variants()
    b = to_torch(collate(graphs[:2]), dtype=torch.float64)
    state = torch_run("piezo", "float64")["state"]
    outs = []
    for impl in ("fused", "e3nn"):
        cfg = config_for("piezo", tp_impl=impl)
        with torch_default_dtype(torch.float64):
            model = tfn_torch.Model(cfg)
        model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
        outs.append(model(b).detach().numpy())
        with jax.enable_x64(True):
            jb = to_jax(pad_batch(collate(graphs[:2])), dtype=jnp.float64)
            outs.append(np.asarray(jax.jit(tfn_jax.Model(cfg).apply)(jax_variables(state, cfg, "float64"), jb))[:2])
    for o in outs[1:]:
        assert rel_err(o, outs[0]) <= 1e-12
    assert rel_err(outs[0], torch_run("piezo", "float64")["out"][:2]) <= 1e-12


@pytest.mark.parametrize("target, spacegroup, species, coords", [
    ("piezo", "F-43m", ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]),  # zinc blende: every site -43m, e14 only
    ("elastic", "Fm-3m", ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),  # rock salt: every site m-3m
])
def test_readout_reaches_the_site_symmetry_invariants(target, spacegroup, species, coords):
    """At a site of cubic symmetry every l = 1, 2 feature vanishes (no invariant of Td / Oh there), so a
    read-out with harmonics l <= 2 cannot give the 3o part of a piezoelectric tensor (the only part -43m
    allows) or the cubic anisotropy (4e) of an elastic tensor: the prediction is exactly 0 resp. isotropic.
    With the default read-out (harmonics up to the output's l) it is not, and it keeps the crystal's symmetry."""
    from zoo.symmetry import cartesian_point_group, symmetry_violation

    s = Structure.from_spacegroup(spacegroup, Lattice.cubic(5.0), species, coords)
    b = to_torch(collate([build_graph(s, config_for(target).graph_spec())]), dtype=torch.float64)
    ops = cartesian_point_group(s)
    outs = {}
    for readout_lmax in (2, None):
        torch.manual_seed(0)
        with torch_default_dtype(torch.float64):
            model = tfn_torch.Model(config_for(target, readout_lmax=readout_lmax))
        outs[readout_lmax] = model(b).detach().numpy()[0]
    if target == "piezo":
        assert np.abs(outs[2]).max() <= 1e-13  # nothing but rounding: no path to 3o at a -43m site
        assert abs(outs[None][0, 1, 2]) > 1e-6  # e_xyz = e_14
    else:
        def anisotropy(C):  # C11 - C12 - 2 C44 (Zener), 0 for an isotropic tensor
            return C[0, 0, 0, 0] - C[0, 0, 1, 1] - 2 * C[0, 1, 0, 1]

        assert abs(anisotropy(outs[2])) <= 1e-12 * abs(outs[2][0, 0, 0, 0])  # no 4e: isotropic
        assert abs(anisotropy(outs[None])) > 1e-6 * abs(outs[None][0, 0, 0, 0])
    for T in outs.values():
        assert symmetry_violation(T, ops) <= 1e-10 or np.abs(T).max() <= 1e-13


# -------------------------------------------------------------------- library equivariance checkers
def test_torch_layers_pass_e3nn_assert_equivariant():
    cfg, model = torch_model("elastic", "float64")
    graphs, _, _ = variants()
    b = to_torch(collate(graphs[:2]), dtype=torch.float64)
    s, r = b["senders"], b["receivers"]
    E, N = s.shape[0], b["numbers"].shape[0]
    basis = torch.rand(E, cfg.n_basis, dtype=torch.float64) + 0.5
    with torch_default_dtype(torch.float64):  # e3nn builds D(R) in the default dtype
        for layer in list(model.layers) + [model.readout]:
            plan = layer.plan
            irreps_in, irreps_sh, irreps_out = (tfn_torch._e3(i) for i in (plan.irreps_in, plan.conv.irreps_sh, plan.irreps_out))
            x = irreps_in.randn(N, -1, dtype=torch.float64)
            sh = irreps_sh.randn(E, -1, dtype=torch.float64)
            errs = assert_equivariant(lambda x, sh: layer(x, sh, basis, s, r), args_in=[x, sh], irreps_in=[irreps_in, irreps_sh], irreps_out=[irreps_out], tolerance=1e-10)
            assert all(float(e.max()) >= 0 for e in errs.values())

        # The whole network, positions as Cartesian points (rotation, inversion AND translation) and
        # lattice rows as vectors, output = pooled read-out irreps (before the Cartesian map).
        def net(pos, lat_rows):
            return model.graph_irreps(dict(b, positions=pos, lattice=lat_rows.reshape(-1, 3, 3)))

        out = net(b["positions"], b["lattice"].reshape(-1, 9))
        assert_equivariant(
            net,
            args_in=[b["positions"], b["lattice"].reshape(-1, 9)],
            irreps_in=["cartesian_points", o3.Irreps("3x1o")],
            irreps_out=[o3.Irreps(cfg.output_irreps)],
            tolerance=1e-10 * float(out.detach().abs().max()),
        )


def test_jax_layers_pass_e3nn_jax_assert_equivariant():
    cfg, _ = torch_model("piezo", "float64")
    state = torch_run("piezo", "float64")["state"]
    graphs, _, _ = variants()
    b = collate(graphs[:2])
    module = tfn_jax.Model(cfg)
    plan = cfg.plan()
    with jax.enable_x64(True):
        params = jax_variables(state, cfg, "float64")["params"]
        s, r = jnp.asarray(b["senders"]), jnp.asarray(b["receivers"])
        basis = jnp.asarray(np.random.default_rng(0).random((len(b["senders"]), cfg.n_basis)) + 0.5)
        for name, lp in [("layers_2", plan.layers[2]), ("readout", plan.readout)]:
            layer = tfn_jax.Interaction(lp, cfg)
            out_irreps = I.format_irreps(lp.irreps_out)

            @jax.jit
            def fun(x, sh, layer=layer, name=name, out_irreps=out_irreps):
                y = layer.apply({"params": params[name]}, x.array, sh.array, basis, s, r)
                return ej.IrrepsArray(out_irreps, y)

            n = b["numbers"].shape[0]
            x = ej.normal(I.format_irreps(lp.irreps_in), jax.random.PRNGKey(1), (n,), dtype=jnp.float64)
            sh = ej.normal(I.format_irreps(lp.conv.irreps_sh), jax.random.PRNGKey(2), (len(b["senders"]),), dtype=jnp.float64)
            ej.utils.assert_equivariant(fun, jax.random.PRNGKey(3), x, sh, atol=1e-10, rtol=1e-10)

        batch = to_jax(b, dtype=jnp.float64)

        @jax.jit
        def net(pos, lat):
            y = module.apply({"params": params}, dict(batch, positions=pos.array, lattice=lat.array.reshape(-1, 3, 3)), method=tfn_jax.Model.graph_irreps)
            return ej.IrrepsArray(cfg.output_irreps, y)

        pos = ej.IrrepsArray("1o", batch["positions"])
        lat = ej.IrrepsArray("3x1o", batch["lattice"].reshape(-1, 9))
        ej.utils.assert_equivariant(net, jax.random.PRNGKey(4), pos, lat, atol=1e-10, rtol=1e-10)


# -------------------------------------------------------------------------------- shared constants
# Plain-numpy references of zoo.nn.radial, written independently of it.
def bessel_basis_np(d: np.ndarray, r_max: float, n: int) -> np.ndarray:
    """sin(nπ d/r_max) / (d/r_max), n = 1..N."""
    x = np.asarray(d, dtype=np.float64)[..., None] / r_max
    return np.sin(np.pi * np.arange(1, n + 1) * x) / x


def gaussian_basis_np(d: np.ndarray, r_max: float, n: int) -> np.ndarray:
    """exp(-((d-μ_k)/σ)^2) / 1.12 * sqrt(N), μ_k = linspace(0, r_max, N), σ = spacing (e3nn's soft one-hot)."""
    mu = np.linspace(0.0, r_max, n)
    sigma = mu[1] - mu[0]
    return np.exp(-(((np.asarray(d)[..., None] - mu) / sigma) ** 2)) / 1.12 * math.sqrt(n)


def envelope_np(d: np.ndarray, r_max: float, p: int = 6) -> np.ndarray:
    """Polynomial cutoff (DimeNet): 1 at 0, 0 with vanishing 1st and 2nd derivatives at r_max."""
    x = np.asarray(d, dtype=np.float64) / r_max
    u = 1 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
    return np.where(x < 1, u, 0.0)


def test_constants_and_radial_functions():
    from scipy.integrate import quad
    from scipy.special import expit

    for name, f in [("silu", lambda z: z * expit(z)), ("tanh", np.tanh), ("sigmoid", expit)]:
        m2 = quad(lambda z: f(z) ** 2 * np.exp(-z * z / 2) / np.sqrt(2 * np.pi), -np.inf, np.inf, epsabs=1e-14)[0]
        assert abs(core.second_moment_scale(name) - m2**-0.5) <= 1e-12
    d = np.linspace(0.5, 3.99, 7)
    env = envelope_np(d, RADIUS)
    assert envelope_np(np.array([0.0]), RADIUS)[0] == 1.0 and envelope_np(np.array([RADIUS, 5.0]), RADIUS).tolist() == [0.0, 0.0]
    h = 1e-4  # smooth cut-off: value, slope and curvature vanish at the radius
    e = lambda x: float(envelope_np(np.array([x]), RADIUS)[0])  # noqa: E731
    assert abs(e(RADIUS - h)) < 1e-9 and abs((e(RADIUS - h) - e(RADIUS - 2 * h)) / h) < 1e-6
    # the model's envelope (zoo.nn.radial) is the reference's, also at and beyond the radius, in both backends
    d_all = np.array([0.0, 0.5, 2.0, RADIUS - h, RADIUS, 5.0])
    for xp, arr in ((bt, torch.as_tensor), (bj, jnp.asarray)):
        with jax.enable_x64(True):
            u = np.asarray(polynomial_envelope(arr(d_all), RADIUS, 6, xp))
        assert np.abs(u - envelope_np(d_all, RADIUS)).max() <= 1e-12 and u[-2:].tolist() == [0.0, 0.0]
    for basis in ("bessel", "gaussian"):
        cfg = config_for("scalar", radial_basis=basis)
        ref = bessel_basis_np(d, RADIUS, cfg.n_basis) if basis == "bessel" else gaussian_basis_np(d, RADIUS, cfg.n_basis)
        vec = np.stack([d, np.zeros_like(d), np.zeros_like(d)], axis=1) @ random_o3(np.random.default_rng(1), False).T
        with torch_default_dtype(torch.float64):
            model = tfn_torch.Model(cfg)
        attr_t, basis_t = core.edge_features(torch.as_tensor(vec), model.net, bt, model.spherical_harmonics)
        with jax.enable_x64(True):
            net = core.network_tables(cfg, tfn_jax._wigner_3j)
            sh = partial(tfn_jax.spherical_harmonics, net.sh_ls)
            attr_j, basis_j = jax.jit(lambda v, net=net, sh=sh: core.edge_features(v, net, bj, sh))(jnp.asarray(vec))
        assert rel_err(basis_t.numpy(), ref) <= 1e-12 and rel_err(np.asarray(basis_j), ref) <= 1e-12
        assert rel_err(attr_t.numpy()[:, 0], env) <= 1e-12  # Y^0 = 1 ("component"), times the envelope
        assert rel_err(np.asarray(attr_j), attr_t.numpy()) <= 1e-12


# -------------------------------------------------------------------------------------- weights
def test_state_dict_is_the_layout_and_weights_only():
    cfg, model = torch_model("elastic", "float64")
    sd = model.state_dict()
    layout = state_layout(cfg)
    assert list(sd) == list(layout)
    assert {k: tuple(v.shape) for k, v in sd.items()} == layout
    assert sum(p.numel() for p in model.parameters()) == n_parameters(cfg) == sum(v.numel() for v in sd.values())
    fresh = tfn_torch.Model(cfg)
    fresh.load_state_dict(sd, strict=True)  # nothing but weights is needed to restore a model


def test_converter_round_trips_are_exact():
    for dtype in ("float32", "float64"):
        cfg, _ = torch_model("dielectric", dtype)
        state = torch_run("dielectric", dtype)["state"]
        with jax.enable_x64(dtype == "float64"):
            back = torch_from_flax(jax_variables(state, cfg, dtype))
        assert sorted(back) == sorted(state)
        for k in state:
            assert back[k].dtype == state[k].dtype and np.array_equal(back[k], state[k]), k

    # jax-initialised weights → torch (strict load) → jax, bit for bit
    cfg = config_for("scalar", n_layers=1, lmax=1)
    module = tfn_jax.Model(cfg)
    graphs, _, _ = variants()
    variables = jax.jit(module.init)(jax.random.PRNGKey(0), to_jax(pad_batch(collate(graphs[:2]))))
    state = torch_from_flax(variables)
    model = tfn_torch.Model(cfg)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=True)
    again = flax_from_torch({k: v.numpy() for k, v in model.state_dict().items()}, like=variables)
    flat_a = jax.tree_util.tree_leaves_with_path(variables)
    flat_b = dict(jax.tree_util.tree_leaves_with_path(again))
    assert len(flat_a) == len(flat_b)
    for path, leaf in flat_a:
        assert np.array_equal(np.asarray(leaf), np.asarray(flat_b[path])), path
    # the jax initialisation follows e3nn's: N(0, 1) weights (the path normalisation is in the forward pass)
    w = np.concatenate([v.ravel() for v in state.values()])
    assert abs(w.std() - 1.0) < 0.05 and abs(w.mean()) < 0.05


def test_wrong_weights_are_rejected_with_the_names():
    cfg, _ = torch_model("scalar", "float64")
    state = dict(torch_run("scalar", "float64")["state"])
    state["layers.0.lin1.weight"] = state["layers.0.lin1.weight"][:-1]
    del state["readout.sc.weight"]
    with pytest.raises(WeightsError, match=r"layers\.0\.lin1\.weight|readout\.sc\.weight"):
        jax_variables(state, cfg, "float32")


# --------------------------------------------------------------------------------------- config
def test_config_targets_registry_and_errors():
    entry = get_family("tfn")
    assert entry.outputs == ("scalar", "tensor")
    cfg = config_for("elastic")
    assert cfg.output_irreps == "2x0e+2x2e+1x4e" and cfg.out_shape == (3, 3, 3, 3)
    assert config_for("piezo").output_irreps == "2x1o+1x2o+1x3o"
    assert config_for("dielectric").with_target(TARGETS["scalar"]).output_irreps == "1x0e"
    assert config_from_dict("tfn", config_to_dict(cfg)) == cfg
    spec = cfg.graph_spec()
    assert (spec.rule, spec.radius, spec.max_neighbors) == ("radius", RADIUS, None)
    assert isinstance(build("tfn", "torch", config_for("scalar", n_layers=1)), tfn_torch.Model)
    assert TFNConfig().with_target(TargetSpec("eps", kind="tensor", rank=2)).target_formula == "ij"
    with pytest.raises(ValueError, match="classification"):
        cfg.with_target(TargetSpec("metal", kind="class"))
    with pytest.raises(ValueError, match="lmax"):  # 4e is out of reach of l <= 1 features and l <= 1 harmonics
        TFNConfig(hidden_irreps="8x0e+4x1o", lmax=1, n_layers=1, readout_lmax=1).with_target(TARGETS["elastic"])
    # by default the read-out takes harmonics up to the output's highest l, which reaches it
    assert TFNConfig(hidden_irreps="8x0e+4x1o", lmax=1, n_layers=1).with_target(TARGETS["elastic"]).readout_sh_lmax == 4
    with pytest.raises(ValueError, match="readout_lmax"):
        TFNConfig(readout_lmax=-1)
    with pytest.raises(ValueError, match="rank"):
        TFNConfig(target_kind="tensor", target_rank=2, target_formula="ijk=ikj")
    with pytest.raises(ValueError, match="parse irreps"):
        TFNConfig(hidden_irreps="32x0q")
    with pytest.raises(ValueError, match="0e"):
        TFNConfig(hidden_irreps="8x1o")
    with pytest.raises(TypeError, match="output_shift"):  # removed: nothing set it (see TFNConfig.migrate)
        TFNConfig(target_kind="tensor", target_rank=2, target_formula="ij=ji", output_shift=1.0)
    graphs, _, _ = variants()
    assert estimate_avg_num_neighbors(graphs[:2]) == pytest.approx(sum(g.n_edges for g in graphs[:2]) / 5)


def test_configs_of_older_versions_still_load():
    """Run folders written before output_scale / output_shift and tp_impl="auto" were removed (e.g. the
    results recorded in results/tfn) load to today's equivalent config; a removed field that would
    change the model's function is refused with a message that names it."""
    import json

    runs = json.loads((ROOT / "results" / "tfn" / "results.json").read_text())
    old = next(v for v in _walk(runs) if isinstance(v, dict) and "output_shift" in v and "hidden_irreps" in v)
    assert (old["tp_impl"], old["output_scale"], old["output_shift"]) == ("auto", 1.0, 0.0)
    cfg = config_from_dict("tfn", old)
    assert cfg.tp_impl == "fused" and cfg.target_formula == old["target_formula"] and cfg.hidden_irreps == old["hidden_irreps"]
    assert config_from_dict("tfn", config_to_dict(cfg)) == cfg
    for name, value in (("output_scale", 2.0), ("output_shift", 0.5)):
        with pytest.raises(ValueError, match=name):
            config_from_dict("tfn", dict(old, **{name: value}))
    with pytest.raises(ValueError, match="unknown fields"):
        config_from_dict("tfn", dict(old, output_offset=0.0))


def _walk(tree):
    yield tree
    children = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, list) else ()
    for child in children:
        yield from _walk(child)


def test_plan_matches_gate_points_2101_rules():
    """Layer irreps follow e3nn's rule (keep what the convolution reaches): 0o first appears in layer 3."""
    plan = TFNConfig(hidden_irreps="8x0e+8x0o+4x1e+4x1o+4x2e+4x2o").plan()
    outs = [I.format_irreps(lp.irreps_out) for lp in plan.layers]
    assert outs == ["8x0e+4x1o+4x2e", "8x0e+4x1e+4x1o+4x2e+4x2o", "8x0e+8x0o+4x1e+4x1o+4x2e+4x2o"]
    for lp in plan.layers:
        gp = lp.gate
        assert gp.gates == ((sum(m for m, _, _ in gp.gated), 0, 1),)
        for i, j, k, mode, _ in lp.conv.instructions:
            (m1, l1, p1), (_, l2, p2), (m3, l3, p3) = lp.conv.irreps_in[i], lp.conv.irreps_sh[j], lp.conv.irreps_mid[k]
            assert mode == "uvu" and m1 == m3 and p3 == p1 * p2 and abs(l1 - l2) <= l3 <= l1 + l2
