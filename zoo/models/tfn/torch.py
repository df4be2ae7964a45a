"""PyTorch (e3nn) periodic tensor field network; ``zoo/models/tfn/jax.py`` is the same function in JAX.

Per layer (e3nn's gated point convolution, ``gate_points_2101.Convolution`` + ``Gate``)::

    s   = sc(x)                                        linear self-connection
    h   = lin1(x)
    m_e = TP_uvu(h[j], Y(r̂_ij) u(r_ij); w = MLP(B(r_ij)))  per edge e = (j → i), weights from the distance
    a_i = Σ_e m_e / avg_num_neighbors            (or its square root: config.message_norm)
    y   = gate(sin(π/8) s + cos(π/8) lin2(a)) (+ x on channels with identical irreps)

with Y the real spherical harmonics (``normalization="component"``), u a polynomial cutoff, B a Bessel
(or Gaussian) basis. The state_dict holds weights only: e3nn's derived buffers (output masks, Wigner
symbols) follow from the config and are kept out of it, so it is the backend-neutral weight format.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from e3nn import o3
from torch import nn

from zoo.backend.torch import segment_sum

from . import irreps as _ir
from .config import N_SPECIES, TFNConfig


def _e3(irreps) -> o3.Irreps:
    # Built from our string, never sorted/simplified, so the order matches the JAX model's.
    return o3.Irreps(_ir.format_irreps(irreps))


def _weights_only_state(module: nn.Module) -> None:
    """Make every buffer non-persistent: they are constants derived from the config, not weights."""
    for m in module.modules():
        for name in list(m._buffers):
            m._non_persistent_buffers_set.add(name)


@lru_cache(maxsize=None)
def cartesian_basis(formula: str) -> np.ndarray:
    """(D, 3, ..., 3) float64 map from the read-out irreps to the Cartesian tensor, canonical form.

    e3nn's ``CartesianTensor(formula)`` basis, rewritten by ``irreps.canonical_change_of_basis`` so that
    it equals the one the JAX model derives from e3nn-jax (the libraries mix equal irreps differently).
    """
    from e3nn.io import CartesianTensor

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn casts the (float64) basis to the default dtype
    try:
        ct = CartesianTensor(formula)
        Q = ct.reduced_tensor_products().change_of_basis.detach().cpu().numpy().astype(np.float64)
        irreps_q = _ir.parse_irreps(str(ct))
    finally:
        torch.set_default_dtype(old)
    return _ir.canonical_change_of_basis(Q, irreps_q, _ir.cartesian_irreps(formula))


class FusedTP(nn.Module):
    """Convolution = "uvu" tensor product per edge + sum over the incoming edges of each atom.

    The same function and weight layout as ``o3.TensorProduct`` on the plan's instructions followed by
    a scatter-sum (tested), organised for speed (``irreps.FusedChunk``): all paths of an input chunk are
    two contractions (Y·C, then x·(Y·C)) instead of one einsum per path; each chunk is gathered from its
    (small, per-atom) slice of the input and summed onto the atoms before the columns are put in
    e3nn's ``irreps_mid`` order, so no (edges × features) tensor is sliced or concatenated.
    """

    def __init__(self, conv: _ir.ConvPlan) -> None:
        super().__init__()
        self.chunks = _ir.fused_chunks(conv)
        self.weight_numel = conv.weight_numel
        cg = lambda l1, l2, l3: o3.wigner_3j(l1, l2, l3, dtype=torch.float64).numpy()  # noqa: E731
        self.in_sizes = [mul * (2 * l + 1) for mul, l, _ in conv.irreps_in]
        self.w_sizes = [ch.mul * len(ch.paths) for ch in self.chunks]
        dt = torch.get_default_dtype()
        Cs = []
        for n, ch in enumerate(self.chunks):
            C, pidx = ch.table(conv.irreps_sh, cg)
            Cs.append(C.reshape(C.shape[0], -1))
            expand = np.zeros((len(ch.paths), ch.K))
            expand[pidx, np.arange(ch.K)] = 1.0  # a path's weight multiplies each of its components
            self.register_buffer(f"X{n}", torch.from_numpy(expand).to(dt), persistent=False)
        self.t_sizes = [c.shape[1] for c in Cs]
        self.register_buffer("C", torch.from_numpy(np.concatenate(Cs, axis=1)).to(dt), persistent=False)
        self.register_buffer("perm", torch.from_numpy(_ir.fused_mid_permutation(conv)), persistent=False)

    def forward(self, h, sh, w, senders, receivers) -> torch.Tensor:
        E, N = sh.shape[0], h.shape[0]
        hs = torch.split(h, self.in_sizes, dim=1)
        ws = torch.split(w, self.w_sizes, dim=1)
        Ts = torch.split(sh @ self.C, self.t_sizes, dim=1)  # Y·C for every chunk in one product
        agg = []
        for n, ch in enumerate(self.chunks):
            d1, K, P = 2 * ch.l_in + 1, ch.K, len(ch.paths)
            x = hs[ch.i_in].index_select(0, senders).reshape(E, ch.mul, d1)
            T = Ts[n].reshape(E, d1, K)
            o = x * T if d1 == 1 else torch.bmm(x, T)  # scalars: an outer product, not a batched matmul
            o = o * (ws[n].reshape(E, P, ch.mul).transpose(1, 2) @ getattr(self, f"X{n}"))
            agg.append(segment_sum(o.reshape(E, -1), receivers, N))
        return torch.cat(agg, dim=1).index_select(1, self.perm)


class RadialMLP(nn.Module):
    """Distance basis → per-edge tensor-product weights: bias-free, N(0,1) weights scaled by 1/sqrt(fan_in)
    in the forward pass, silu rescaled to unit second moment (as e3nn's FullyConnectedNet)."""

    def __init__(self, sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.sizes = tuple(int(s) for s in sizes)
        for k in range(len(self.sizes) - 1):
            setattr(self, f"w{k}", nn.Parameter(torch.randn(self.sizes[k], self.sizes[k + 1])))
        self.act_scale = _ir.second_moment_scale("silu")

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n = len(self.sizes) - 1
        for k in range(n):
            h = (h @ getattr(self, f"w{k}")) * (1.0 / math.sqrt(self.sizes[k]))
            if k < n - 1:
                h = self.act_scale * F.silu(h)
        return h


class Gate(nn.Module):
    """act(scalars) ⊕ sigmoid(gates) · gated; acts rescaled to unit second moment (e3nn's Gate)."""

    def __init__(self, plan: _ir.GatePlan) -> None:
        super().__init__()
        self.plan = plan
        self.c_silu = _ir.second_moment_scale("silu")
        self.c_tanh = _ir.second_moment_scale("tanh")
        self.c_sigmoid = _ir.second_moment_scale("sigmoid")

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        n = y.shape[0]
        outs, start = [], 0
        for mul, _, p in self.plan.scalars:
            s = y[:, start : start + mul]
            # even scalars may take any activation, odd ones need an odd one (tanh) to keep their parity
            outs.append(self.c_silu * F.silu(s) if p == 1 else self.c_tanh * torch.tanh(s))
            start += mul
        if self.plan.gates:
            k = self.plan.gates[0][0]
            g = self.c_sigmoid * torch.sigmoid(y[:, start : start + k])
            start += k
            off = 0
            for mul, l, _ in self.plan.gated:
                d = 2 * l + 1
                v = y[:, start : start + mul * d].reshape(n, mul, d)
                outs.append((v * g[:, off : off + mul, None]).reshape(n, mul * d))
                start += mul * d
                off += mul
        return torch.cat(outs, dim=1)


class Interaction(nn.Module):
    """One gated point convolution (or the read-out convolution when ``plan.gate`` is None)."""

    def __init__(self, plan: _ir.LayerPlan, config: TFNConfig) -> None:
        super().__init__()
        conv = plan.conv
        ir_in, ir_sh, ir_mid, ir_out = _e3(conv.irreps_in), _e3(conv.irreps_sh), _e3(conv.irreps_mid), _e3(conv.irreps_out)
        self.lin1 = o3.Linear(ir_in, ir_in)
        if config.tp_impl in ("fused", "auto"):
            self.tp = FusedTP(conv)
        else:
            self.tp = o3.TensorProduct(
                ir_in,
                ir_sh,
                ir_mid,
                [tuple(i) for i in conv.instructions],
                shared_weights=False,
                internal_weights=False,
                irrep_normalization="component",
                path_normalization="element",
            )
        self.radial = RadialMLP((config.n_basis,) + (config.radial_hidden,) * config.radial_layers + (self.tp.weight_numel,))
        self.lin2 = o3.Linear(ir_mid, ir_out)
        self.sc = o3.Linear(ir_in, ir_out)
        self.gate = Gate(plan.gate) if plan.gate is not None else None
        self.register_buffer("res_src", torch.tensor(plan.residual_src, dtype=torch.long), persistent=False)
        self.register_buffer("res_dst", torch.tensor(plan.residual_dst, dtype=torch.long), persistent=False)
        self.has_residual = len(plan.residual_src) > 0
        self.msg_scale = config.message_scale

    def forward(self, x, edge_attr, edge_basis, senders, receivers) -> torch.Tensor:
        s = self.sc(x)
        h = self.lin1(x)
        w = self.radial(edge_basis)
        if isinstance(self.tp, FusedTP):
            a = self.tp(h, edge_attr, w, senders, receivers)
        else:
            a = segment_sum(self.tp(h[senders], edge_attr, w), receivers, x.shape[0])
        a = a * self.msg_scale
        y = _ir.MIX_SC * s + _ir.MIX_CONV * self.lin2(a)
        if self.gate is not None:
            y = self.gate(y)
        if self.has_residual:
            y = y.index_add(1, self.res_dst, x[:, self.res_src])
        return y


class Model(nn.Module):
    """``Model(config)(batch) -> (G,)`` for a scalar target, ``(G, 3, ..., 3)`` for a tensor target."""

    def __init__(self, config: TFNConfig) -> None:
        super().__init__()
        self.config = config
        plan = config.plan()
        self.plan = plan
        self.embedding = nn.Embedding(N_SPECIES, config.embed_dim)  # N(0, 1) rows: unit-variance 0e inputs
        self.layers = nn.ModuleList(Interaction(lp, config) for lp in plan.layers)
        self.readout = Interaction(plan.readout, config)
        self.sh_irreps = _e3(plan.irreps_sh)
        # plain ints in forward: torch.compile cannot guard on an e3nn Irreps (its len() is undefined)
        self._sh_ls = [l for _, l, _ in plan.irreps_sh]
        if config.target_kind == "tensor":
            self.register_buffer("cartesian_basis", torch.from_numpy(cartesian_basis(config.target_formula)).to(torch.get_default_dtype()), persistent=False)
        else:
            self.cartesian_basis = None
        self.register_buffer("freqs", torch.arange(1, config.n_basis + 1, dtype=torch.get_default_dtype()) * math.pi, persistent=False)
        _weights_only_state(self)

    # ------------------------------------------------------------------------------------------ edges
    def edge_vectors(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """r_ij = x_j + shift @ L_g - x_i (Å) recomputed from positions and lattice, so that gradients with
        respect to both (forces, stress) flow and a rotated crystal gives rotated edges."""
        pos, lat = batch["positions"], batch["lattice"]
        s, r = batch["senders"], batch["receivers"]
        eg = batch["edge_graph"]
        shifts = batch["shifts"].to(pos.dtype)
        vec = pos[s] - pos[r] + (shifts[:, :, None] * lat[eg]).sum(dim=1)
        if "edge_mask" in batch:
            # padding edges join a padding node to itself (zero vector): give them a unit length so that no
            # NaN appears in r̂ or the basis (they only ever reach padding nodes)
            unit = torch.zeros_like(vec)
            unit[:, 0] = 1.0
            vec = torch.where(batch["edge_mask"][:, None], vec, unit)
        return vec

    def edge_features(self, vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        d = torch.linalg.norm(vec, dim=-1)
        sh = o3.spherical_harmonics(self._sh_ls, vec, normalize=True, normalization="component")
        x = d / cfg.radius
        c1, c2, c3 = _ir.envelope_coefficients(cfg.envelope_p)
        p = cfg.envelope_p
        env = 1.0 - c1 * x**p + c2 * x ** (p + 1) - c3 * x ** (p + 2)
        env = torch.where(x < 1.0, env, torch.zeros_like(env))
        if cfg.radial_basis == "bessel":
            basis = torch.sin(self.freqs.to(d.dtype) * x[:, None]) / x[:, None]
        else:
            mu = torch.linspace(0.0, cfg.radius, cfg.n_basis, dtype=d.dtype, device=d.device)
            sigma = cfg.radius / (cfg.n_basis - 1)
            basis = torch.exp(-(((d[:, None] - mu) / sigma) ** 2)) * (math.sqrt(cfg.n_basis) / 1.12)
        return sh * env[:, None], basis

    # ------------------------------------------------------------------------------------------ model
    def node_outputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(N, dim of ``config.output_irreps``): per-atom read-out irreps before pooling."""
        vec = self.edge_vectors(batch)
        edge_attr, basis = self.edge_features(vec)
        s, r = batch["senders"], batch["receivers"]
        x = self.embedding(batch["numbers"]).to(vec.dtype)
        for layer in self.layers:
            x = layer(x, edge_attr, basis, s, r)
        return self.readout(x, edge_attr, basis, s, r)

    def graph_irreps(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(G, dim of ``config.output_irreps``): pooled read-out irreps (before the Cartesian map)."""
        out = self.node_outputs(batch)
        G = batch["lattice"].shape[0]
        ng = batch["node_graph"]
        pooled = segment_sum(out, ng, G)
        if self.config.pooling == "mean":
            # atom counts by a scatter, not bincount: its data-dependent shape breaks torch.compile graphs
            count = segment_sum(torch.ones_like(out[:, :1]), ng, G)
            pooled = pooled / count.clamp(min=1.0)
        return pooled

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        y = self.graph_irreps(batch)
        cfg = self.config
        if cfg.target_kind == "scalar":
            return y[:, 0] * cfg.output_scale + cfg.output_shift
        Q = self.cartesian_basis.to(y.dtype).reshape(y.shape[1], -1)
        return (y @ Q).reshape((y.shape[0],) + cfg.out_shape) * cfg.output_scale
