"""The tensor field network written once: the kernels' constant tables (numpy) and the forward pass as
functions of arrays, for either backend.

Every function takes the backend ops module ``xp`` (``zoo.backend.torch`` or ``zoo.backend.jax``) and its
parameters as arrays, named as in the weight file (``config.layer_weight_shapes``). The adapters
(``torch.py``, ``jax.py``) only declare those parameters and pass in what only a library provides: the
real spherical harmonics, the Wigner-3j symbols the tables are built from, and the library's own tensor
product for the reference kernel ``tp_impl="e3nn"``.

Per layer (e3nn's gated point convolution, ``gate_points_2101.Convolution`` + ``Gate``)::

    s   = sc(x)                                        linear self-connection
    h   = lin1(x)
    m_e = TP_uvu(h[j], Y(r̂_ij) u(r_ij); w = MLP(B(r_ij)))  per edge e = (j → i), weights from the distance
    a_i = Σ_e m_e / avg_num_neighbors            (its square root, or i's own count: config.message_norm)
    y   = gate(sin(π/8) s + cos(π/8) lin2(a)) (+ x on channels with identical irreps)

with Y the real spherical harmonics (``normalization="component"``), u a polynomial cutoff and B a
Bessel (or Gaussian) basis of the distance (``zoo.nn.radial``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from zoo.graphs.dipole import DAMPING_RADIUS
from zoo.nn.equivariant import (
    MIX_CONV,
    MIX_SC,
    Chunk,
    ConvPath,
    FusedConv,
    GatePlan,
    Layer,
    LibraryTP,
    Linear,
    degree_halves,
    edge_vectors,
    frozen,
    fused_conv,
    interaction,
    irreps_linear,
    normalize_by_neighbors,
    second_moment_scale,
)
from zoo.nn.equivariant import fused_conv_tables as _fused_conv_tables
from zoo.nn.dipole import alpha_max, susceptibility
from zoo.nn.equivariant import linear_tables as _linear_tables
from zoo.nn.functional import density_features
from zoo.nn.radial import bessel_basis, gaussian_basis, polynomial_envelope
from zoo.tensors import cartesian_basis

from . import irreps as _ir
from .config import TFNConfig

Wigner3j = Callable[[int, int, int], Any]  # (l1, l2, l3) -> (2l1+1, 2l2+1, 2l3+1), e3nn's or e3nn-jax's table
# vectors (E, 3) -> (E, Σ 2l+1): Y^l for l in ``Network.sh_ls``, normalize=True, normalization="component"
SphericalHarmonics = Callable[[Any], Any]

# Re-exported: the kernels the adapters and tests reach through this module.
__all__ = ["MIX_CONV", "MIX_SC", "LibraryTP", "fused_conv", "interaction", "irreps_linear", "second_moment_scale"]


# ------------------------------------------------- the O(3) plan as chunks and paths of zoo.nn.equivariant
# The kernels (fused convolution, grouped linear, gate, interaction) are zoo.nn.equivariant's, shared with
# the point-group network; what is O(3)-specific is here: chunks keyed by (l, parity) of dimension 2l+1,
# and path blocks made of Wigner-3j symbols with e3nn's normalisation.
def chunks(irreps: _ir.IrrepsLike) -> tuple[Chunk, ...]:
    """e3nn irreps (mul, l, p) as the kernels' chunks (mul, (l, p), 2l+1)."""
    return tuple((mul, (l, p), 2 * l + 1) for mul, l, p in _ir.parse_irreps(irreps))


def conv_paths(conv: _ir.ConvPlan, wigner_3j: Wigner3j | None) -> list[ConvPath]:
    """One path per instruction of the plan: block[s, a, n] = path weight · W3j(l_in, l_sh, l_out)[a, s, n]
    on the harmonics of its l (zeros elsewhere). ``wigner_3j`` None: blocks of zeros (layouts only)."""
    sh_sl = _ir.irreps_slices(conv.irreps_sh)
    d_sh = _ir.irreps_dim(conv.irreps_sh)
    out = []
    for (i, j, k, mode, has_w), pw in zip(conv.instructions, conv.path_weights):
        if mode != "uvu" or not has_w or conv.irreps_sh[j][0] != 1:
            raise ValueError("the fused tensor product handles weighted 'uvu' paths with 1x harmonics only")
        l1, l2, l3 = conv.irreps_in[i][1], conv.irreps_sh[j][1], conv.irreps_mid[k][1]
        block = np.zeros((d_sh, 2 * l1 + 1, 2 * l3 + 1))
        if wigner_3j is not None:
            block[sh_sl[j]] = pw * np.asarray(wigner_3j(l1, l2, l3), dtype=np.float64).transpose(1, 0, 2)
        out.append(ConvPath(i, k, block))
    return out


def fused_conv_tables(conv: _ir.ConvPlan, wigner_3j: Wigner3j) -> FusedConv:
    return _fused_conv_tables(chunks(conv.irreps_in), chunks(conv.irreps_mid), conv_paths(conv, wigner_3j))


def fused_mid_permutation(conv: _ir.ConvPlan) -> np.ndarray:
    """Columns of the fused layout that give ``irreps_mid`` in e3nn's layout: mid = fused[:, perm]."""
    return _fused_conv_tables(chunks(conv.irreps_in), chunks(conv.irreps_mid), conv_paths(conv, None)).mid_permutation


def fused_weight_permutation(conv: _ir.ConvPlan) -> np.ndarray:
    """e3nn's per-edge weight columns in the fused layout: ``w_fused = w[:, perm]``."""
    return _fused_conv_tables(chunks(conv.irreps_in), chunks(conv.irreps_mid), conv_paths(conv, None)).weight_permutation


def linear_tables(irreps_in: _ir.IrrepsLike, irreps_out: _ir.IrrepsLike, input_columns: tuple[int, ...] | None = None) -> Linear:
    """e3nn's ``o3.Linear(irreps_in, irreps_out)`` as the kernels' grouped linear (same flat weight)."""
    return _linear_tables(chunks(irreps_in), chunks(irreps_out), input_columns)


def gate_plan(plan: _ir.GatePlan) -> GatePlan:
    """The O(3) gate: even scalars (0e) take silu, odd ones (0o) tanh; the gates are 0e."""
    return GatePlan(tuple((mul, (l, p), p == 1) for mul, l, p in plan.scalars), (0, 1) if plan.gated else None,
                    chunks(plan.gated))


@lru_cache(maxsize=None)
def layer_tables(plan: _ir.LayerPlan, config: TFNConfig, wigner_3j: Wigner3j) -> Layer:
    conv = plan.conv
    fused = fused_conv_tables(conv, wigner_3j) if config.tp_impl == "fused" else None
    mid_perm = tuple(int(i) for i in fused.mid_permutation) if fused is not None else None
    return Layer(
        n_sh=_ir.irreps_dim(conv.irreps_sh),
        sc=linear_tables(conv.irreps_in, conv.irreps_out),
        lin1=linear_tables(conv.irreps_in, conv.irreps_in),
        lin2=linear_tables(conv.irreps_mid, conv.irreps_out, mid_perm),
        conv=fused,
        gate=gate_plan(plan.gate) if plan.gate is not None else None,
        conv_scale=MIX_CONV * config.message_scale,
        residual_src=frozen(np.asarray(plan.residual_src, dtype=np.int64)),
        residual_dst=frozen(np.asarray(plan.residual_dst, dtype=np.int64)),
    )


# ---------------------------------------------------------------------------------------- network
@dataclass(frozen=True, eq=False)
class Network:
    """Everything constant about a TFN: its plan, the tables of every layer, the read-out basis."""

    config: TFNConfig
    plan: _ir.NetworkPlan
    layers: tuple[Layer, ...]
    readout: Layer
    sh_ls: tuple[int, ...]  # degrees of the per-edge harmonics, 0..max(lmax, read-out lmax)
    cartesian: np.ndarray | None  # (irreps dim, 3^rank) irreps → Cartesian components; None: scalar
    degree_half: np.ndarray  # (Σ 2l+1,) per harmonic column: 0 for l = 0, 1/2 for l >= 1 (message_norm "degree")
    atom_table: np.ndarray | None  # (N_SPECIES, 92) row-normalised element table (atom_features "cgcnn"); None: embedding


@lru_cache(maxsize=None)
def network_tables(config: TFNConfig, wigner_3j: Wigner3j) -> Network:
    plan = config.plan()
    Q = None
    if config.target_kind == "tensor":
        Q = cartesian_basis(config.target_formula)
        Q = frozen(Q.reshape(Q.shape[0], -1))
    layers = tuple(layer_tables(lp, config, wigner_3j) for lp in plan.layers)
    sh_ls = tuple(l for _, l, _ in plan.irreps_sh)
    degree_half = degree_halves(sh_ls)
    table = config.atom_table()
    return Network(config, plan, layers, layer_tables(plan.readout, config, wigner_3j), sh_ls, Q, degree_half,
                   None if table is None else frozen(table))



def edge_features(vec, net: Network, xp, spherical_harmonics: SphericalHarmonics):
    """(harmonics × envelope (E, Σ 2l+1), radial basis (E, n_basis)) of the edge vectors (E, 3) in Å."""
    cfg = net.config
    d = xp.norm(vec, axis=-1)
    envelope = polynomial_envelope(d, cfg.radius, cfg.envelope_p, xp)
    radial = bessel_basis if cfg.radial_basis == "bessel" else gaussian_basis
    return spherical_harmonics(vec) * envelope[:, None], radial(d, cfg.radius, cfg.n_basis, xp)


def inputs(batch: Mapping[str, Any], embedding, net: Network, xp, spherical_harmonics: SphericalHarmonics, density=None):
    """What every interaction takes: (atom features x (N, embed_dim), edge harmonics × envelope (E, Σ 2l+1),
    radial basis (E, n_basis), senders, receivers). With ``message_norm="neighbors"`` each edge's harmonics
    are divided by its receiver's number of incoming edges n, so that every layer's summed message is the
    mean over the real neighbours (messages are linear in the harmonics; the count is invariant). With
    ``"degree"`` Y^0 is divided by n and Y^l, l >= 1, by sqrt(n) (why: ``TFNConfig.message_norm``); each
    degree's block is scaled by an invariant, so equivariance is exact. ``density`` (the ``density.weight``
    parameter, with ``config.density_basis``) adds the crystal's volume-per-atom features to every atom's
    embedding (an invariant: equivariance is untouched)."""
    vec = edge_vectors(batch, xp)
    edge_attr, basis = edge_features(vec, net, xp, spherical_harmonics)
    s, r = batch["senders"], batch["receivers"]
    if net.config.message_norm in ("neighbors", "degree"):
        edge_attr = normalize_by_neighbors(edge_attr, r, batch["numbers"].shape[0], net.config.message_norm, xp, net.degree_half)
    if net.atom_table is not None:  # atom_features "cgcnn": the species table is the element table times the weight
        embedding = xp.const(net.atom_table, like=embedding) @ embedding
    x = xp.astype(xp.take(embedding, batch["numbers"], axis=0), vec.dtype)
    if net.config.density_basis:
        x = x + density_features(batch, net.config.density_basis, xp) @ xp.astype(density, vec.dtype)
    return x, edge_attr, basis, s, r


def node_outputs(batch: Mapping[str, Any], embedding, interactions: Sequence[Callable], net: Network, xp,
                 spherical_harmonics: SphericalHarmonics, density=None):
    """(N, dim of ``config.output_irreps``): per-atom read-out irreps before pooling. ``embedding`` is
    the ``embedding.weight`` parameter (``config.embedding_shape``), ``density`` the ``density.weight``
    one (None unless ``config.density_basis``), ``interactions`` the layers then the read-out, each
    called as ``layer(x, edge_attr, edge_basis, senders, receivers)``."""
    x, edge_attr, basis, s, r = inputs(batch, embedding, net, xp, spherical_harmonics, density)
    for layer in interactions:
        x = layer(x, edge_attr, basis, s, r)
    return x


def pool(node_out, batch: Mapping[str, Any], net: Network, xp):
    """(G, dim of ``config.output_irreps``): the read-out irreps pooled over each graph's atoms."""
    segment = xp.segment_mean if net.config.pooling == "mean" else xp.segment_sum
    return segment(node_out, batch["node_graph"], batch["lattice"].shape[0])


def head(y, net: Network, xp):
    """Pooled irreps (G, D) → the prediction: (G,) for a scalar, (G, 3, ..., 3) for a tensor target,
    mapped with the library-independent ``zoo.tensors.cartesian_basis`` so both backends agree."""
    if net.cartesian is None:
        return y[:, 0]
    return (y @ xp.const(net.cartesian, like=y)).reshape((y.shape[0],) + net.config.out_shape)


CM_DELTA = 0.03  # regularisation of the Clausius-Mossotti map's (χ + 3)^-1 in dipole_head


def dipole_head(node_out, batch: Mapping[str, Any], element_alpha, net: Network, xp, max_atoms: int | None = None):
    """The polarisable read-out (``TFNConfig.readout="dipole"``): (G, 3, 3) in the trainer's standardised
    units, ``dipole_term`` of column 0 of ``node_out`` plus the pooled head of the other columns (a learned
    correction)."""
    direct = head(pool(node_out[:, 1:], batch, net, xp), net, xp)
    return direct + dipole_term(node_out[:, 0], batch, element_alpha, net.config, xp, max_atoms)


def dipole_term(alpha_out, batch: Mapping[str, Any], element_alpha, cfg: TFNConfig, xp, max_atoms: int | None = None):
    """(G, 3, 3): (f(1 + χ) - centre·1) / scale in the trainer's standardised units, f the identity or the
    Clausius-Mossotti map (``dipole_target_transform``). The per-atom output ``alpha_out`` (N,) and the
    per-element reference ``element_alpha`` (the ``dipole.alpha`` parameter) give α_i (Å^3) =
    α_max·sigmoid(gain·out + element_gain·ref[Z_i] + logit(dipole_alpha0/α_max)), bounded by the
    featuriser's damping reach (``zoo.nn.dipole.alpha_max``) and multiplicative in the output for small α
    (free-atom values span 0.5-60 Å^3); χ is ``zoo.nn.dipole.susceptibility``. With ``alpha_out`` = 0 this
    is the one-polarisability-per-element model that ``prefit`` fits. ``max_atoms``: at least the largest
    crystal's atom count; None takes sqrt(number of dipole pairs), which bounds it and is static under
    ``jit`` (the numbers do not depend on it)."""
    top = alpha_max(DAMPING_RADIUS)
    logit = cfg.dipole_alpha_gain * alpha_out + cfg.dipole_element_gain * xp.take(element_alpha, batch["numbers"], axis=0)
    alpha = top * xp.sigmoid(logit + math.log(cfg.dipole_alpha0 / (top - cfg.dipole_alpha0)))
    if max_atoms is None:
        max_atoms = math.isqrt(int(batch["dipole_i"].shape[0]))
    chi = susceptibility(alpha, batch, xp, max(int(max_atoms), 1), delta=cfg.dipole_delta)
    eye = xp.const(np.eye(3), like=chi)
    if cfg.dipole_target_transform == "cm":
        # (ε - 1)(ε + 2)^-1 = χ (χ + 3)^-1 (the factors commute), with (χ + 3)^-1 regularised like K^-1 in
        # zoo.nn.dipole: past the catastrophe χ can reach -3, where the map has a pole; for a physical χ
        # (>= 0) the change is below (CM_DELTA/3)^2 = 1e-4 relative
        shifted = chi + 3.0 * eye
        chi = xp.solve(xp.einsum("gij,gjk->gik", shifted, shifted) + (CM_DELTA * CM_DELTA) * eye,
                       xp.einsum("gij,gjk->gik", shifted, chi))
        chi = 0.5 * (chi + xp.einsum("gab->gba", chi))
    else:
        chi = chi + eye  # ε
    return (chi - cfg.dipole_center * eye) / cfg.dipole_scale
