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

import numpy as np
import torch
import torch.nn.functional as F
from e3nn import o3
from torch import nn

from zoo.backend.torch import segment_sum
from zoo.tensors import cartesian_basis

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


class FusedTP(nn.Module):
    """Convolution = "uvu" tensor product per edge + sum over the incoming edges of each atom.

    The same function and weight layout as ``o3.TensorProduct`` on the plan's instructions followed by
    a scatter-sum (tested), organised for speed (``irreps.FusedChunk``): all paths of an input chunk are
    two contractions (Y·C, then x·(Y·C)) instead of one einsum per path; each chunk is gathered from its
    (small, per-atom) slice of the input and summed onto the atoms. The per-edge weights must come in
    the fused layout (``weight_permutation``; the radial MLP permutes its last layer's columns, which is
    free) and the output is in the fused layout (``mid_permutation``, folded into lin2's gather), so no
    (edges × features) tensor is sliced, permuted or concatenated.
    """

    def __init__(self, conv: _ir.ConvPlan) -> None:
        super().__init__()
        self.chunks = _ir.fused_chunks(conv)
        self.weight_numel = conv.weight_numel
        self.weight_permutation = _ir.fused_weight_permutation(conv)
        self.mid_permutation = _ir.fused_mid_permutation(conv)
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

    def forward(self, h, sh, w, senders, receivers) -> torch.Tensor:
        """h (N, irreps_in), sh (E, irreps_sh), w (E, weight_numel) fused layout → (N, irreps_mid) fused layout."""
        E, N = sh.shape[0], h.shape[0]
        hs = torch.split(h, self.in_sizes, dim=1)
        ws = torch.split(w, self.w_sizes, dim=1)
        Ts = torch.split(sh @ self.C, self.t_sizes, dim=1)  # Y·C for every chunk in one product
        agg = []
        for n, ch in enumerate(self.chunks):
            d1, K, P = 2 * ch.l_in + 1, ch.K, len(ch.paths)
            X = getattr(self, f"X{n}")
            x = hs[ch.i_in].index_select(0, senders)
            if d1 == 1:
                # scalars: weight the (E, mul) input per path first, then one (E, mul, K) product with Y·C
                xw = ws[n].reshape(E, ch.mul, P) * x[:, :, None]
                o = (xw.reshape(E * ch.mul, P) @ X).reshape(E, ch.mul, K) * Ts[n][:, None, :]
            else:
                o = torch.bmm(x.reshape(E, ch.mul, d1), Ts[n].reshape(E, d1, K))
                o = o * (ws[n].reshape(E * ch.mul, P) @ X).reshape(E, ch.mul, K)
            agg.append(segment_sum(o.reshape(E, -1), receivers, N))
        return torch.cat(agg, dim=1)


class IrrepsLinear(nn.Module):
    """e3nn's ``o3.Linear`` (no biases): the same function of the same flat ``weight``, one matmul per
    irrep type (``irreps.linear_plan``) instead of one per pair of chunks, which is what a crystal batch
    (a few hundred atoms) pays for: e3nn's version costs ~30 small products per layer for a few µs each.

    ``input_columns`` (optional): the input arrives permuted, e3nn column c at position input_columns[c]
    (the fused tensor product's layout); it is folded into the gather, so no permuted copy is made.
    """

    def __init__(self, irreps_in, irreps_out, input_columns: np.ndarray | None = None) -> None:
        super().__init__()
        plan = _ir.linear_plan(irreps_in, irreps_out)
        self.irreps_in, self.irreps_out = _e3(irreps_in), _e3(irreps_out)  # metadata, as e3nn's (unused in forward)
        self.weight = nn.Parameter(torch.randn(plan.numel))
        # The gather takes every irrep type of the input (first-appearance order), so that linears of
        # the same input (sc, lin1) share it; a group reads its type's block of the gathered columns.
        cols, offset = [], {}
        for t, c in _ir.type_columns(irreps_in).items():
            offset[t] = sum(len(x) for x in cols)
            cols.append(c)
        self.dims = [(offset[(g.l, g.p)], 2 * g.l + 1, g.w_index.shape[0], g.w_index.shape[1], g.path_weight) for g in plan.groups]
        cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        if input_columns is not None:
            cols = np.asarray(input_columns)[cols]
        self.register_buffer("in_cols", torch.from_numpy(cols), persistent=False)
        for n, g in enumerate(plan.groups):
            self.register_buffer(f"w_index{n}", torch.from_numpy(g.w_index), persistent=False)
        self.register_buffer("out_perm", torch.from_numpy(plan.out_perm), persistent=False)
        self.zero_column = plan.needs_zero_column

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """The input columns of every group, once: several linears of the same input can share it."""
        return x.index_select(1, self.in_cols)

    def apply_gathered(self, xg: torch.Tensor) -> torch.Tensor:
        n = xg.shape[0]
        outs = []
        for k, (start, d, m_in, m_out, pw) in enumerate(self.dims):
            xk = xg[:, start : start + d * m_in].reshape(n * d, m_in)
            W = self.weight[getattr(self, f"w_index{k}")] * pw
            outs.append((xk @ W).reshape(n, d * m_out))
        if self.zero_column or not outs:
            outs.append(xg.new_zeros(n, 1))
        return torch.cat(outs, dim=1).index_select(1, self.out_perm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply_gathered(self.gather(x))


class RadialMLP(nn.Module):
    """Distance basis → per-edge tensor-product weights: bias-free, N(0,1) weights scaled by 1/sqrt(fan_in)
    in the forward pass, silu rescaled to unit second moment (as e3nn's FullyConnectedNet)."""

    def __init__(self, sizes: tuple[int, ...], out_permutation: np.ndarray | None = None) -> None:
        super().__init__()
        self.sizes = tuple(int(s) for s in sizes)
        for k in range(len(self.sizes) - 1):
            setattr(self, f"w{k}", nn.Parameter(torch.randn(self.sizes[k], self.sizes[k + 1])))
        self.act_scale = _ir.second_moment_scale("silu")
        # outputs in another column order (the fused tensor product's): permute the last weight's columns
        # (a few thousand numbers), not the (edges × outputs) result
        perm = None if out_permutation is None else torch.from_numpy(np.asarray(out_permutation, dtype=np.int64))
        self.register_buffer("out_perm", perm, persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n = len(self.sizes) - 1
        for k in range(n):
            w = getattr(self, f"w{k}")
            if k == n - 1 and self.out_perm is not None:
                w = w.index_select(1, self.out_perm)
            h = (h @ w) * (1.0 / math.sqrt(self.sizes[k]))
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
        self.irreps_sh = ir_sh  # this convolution reads the first irreps_sh.dim harmonics (ordered by l) of each edge
        self.n_sh = ir_sh.dim
        self.lin1 = IrrepsLinear(conv.irreps_in, conv.irreps_in)
        fused = config.fused_kernel
        if fused:
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
        sizes = (config.n_basis,) + (config.radial_hidden,) * config.radial_layers + (self.tp.weight_numel,)
        self.radial = RadialMLP(sizes, self.tp.weight_permutation if fused else None)
        self.lin2 = IrrepsLinear(conv.irreps_mid, conv.irreps_out, self.tp.mid_permutation if fused else None)
        self.sc = IrrepsLinear(conv.irreps_in, conv.irreps_out)
        self.gate = Gate(plan.gate) if plan.gate is not None else None
        self.register_buffer("res_src", torch.tensor(plan.residual_src, dtype=torch.long), persistent=False)
        self.register_buffer("res_dst", torch.tensor(plan.residual_dst, dtype=torch.long), persistent=False)
        self.has_residual = len(plan.residual_src) > 0
        self.conv_scale = _ir.MIX_CONV * config.message_scale  # both scale the (linear) lin2(Σ messages)

    def forward(self, x, edge_attr, edge_basis, senders, receivers) -> torch.Tensor:
        if edge_attr.shape[1] != self.n_sh:
            edge_attr = edge_attr[:, : self.n_sh]
        xg = self.sc.gather(x)  # sc and lin1 read the same columns of x
        s = self.sc.apply_gathered(xg)
        h = self.lin1.apply_gathered(xg)
        w = self.radial(edge_basis)
        if isinstance(self.tp, FusedTP):
            a = self.tp(h, edge_attr, w, senders, receivers)
        else:
            a = segment_sum(self.tp(h[senders], edge_attr, w), receivers, x.shape[0])
        y = _ir.MIX_SC * s + self.conv_scale * self.lin2(a)
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
