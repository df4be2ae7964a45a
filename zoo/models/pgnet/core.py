"""The point-group network written once for both backends.

Every function takes the backend ops module ``xp`` (``zoo.backend.torch`` / ``zoo.backend.jax``) and the
parameters as arrays, named as in the weight file (``config.state_layout``). The kernels are
``zoo.nn.equivariant``'s (the tensor field network's, with point-group tables); what is specific here
is the two branches, the Cartesian head through the subduction, and the return to the crystal's frame:

    graph in the standard frame of its holohedry H (zoo.symmetry.standard)
    x0 = embedding[Z] (A1g)  ->  the branch of H: gated convolutions, read-out (irreps of H)
    pooled read-out -> O(3) irreps of the target (OutputMap) -> Cartesian tensor in the standard frame
    T = Rᵀ ⊗ ... ⊗ Rᵀ T_std,  R = frame_rotation (r_std = R r)

Only the branch a batch needs runs (``xp.switch``: a host-side choice in torch, ``lax.switch`` under
jit). A batch that mixes crystals of both holohedries runs both branches on the whole batch and each
graph takes its own branch's prediction; the training loop makes batches of one holohedry each where
the family asks for it (``batch_group``), so that one branch runs per step.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping

import numpy as np

from zoo.nn.equivariant import (MIX_CONV, Layer, degree_halves, edge_vectors, frozen, fused_conv_tables, interaction,
                                linear_tables, normalize_by_neighbors, residual_map)
from zoo.nn.functional import density_features
from zoo.nn.radial import bessel_basis, gaussian_basis, polynomial_envelope
from zoo.tensors import cartesian_basis, rank_of

from . import plan as _plan
from .config import BRANCHES, HOLOHEDRIES, PGNetConfig, interactions

SphericalHarmonics = Callable[[int, Any], Any]  # (lmax, vectors (E, 3)) -> (E, (lmax+1)^2), e3nn's "component"


@lru_cache(maxsize=None)
def layer_tables(layer: _plan.LayerPlan, config: PGNetConfig) -> Layer:
    conv = layer.conv
    fused = fused_conv_tables(conv.chunks_in, conv.chunks_mid, conv.conv_paths())
    src, dst = residual_map(conv.chunks_in, layer.chunks_out) if (config.residual and layer.gate is not None) else (None, None)
    empty = frozen(np.zeros(0, np.int64))
    return Layer(
        n_sh=conv.n_sh,
        sc=linear_tables(conv.chunks_in, conv.chunks_out),
        lin1=linear_tables(conv.chunks_in, conv.chunks_in),
        lin2=linear_tables(conv.chunks_mid, conv.chunks_out, tuple(int(i) for i in fused.mid_permutation)),
        conv=fused,
        gate=layer.gate,
        conv_scale=MIX_CONV * config.message_scale,
        residual_src=empty if src is None else src,
        residual_dst=empty if dst is None else dst,
    )


@dataclass(frozen=True, eq=False)
class Branch:
    """Everything constant about one holohedry's network."""

    group: str
    layers: tuple[tuple[str, Layer], ...]  # ("layers.0", tables), ...
    readout: Layer
    site: Layer | None
    head: np.ndarray | None  # (D, 3^rank) read-out irreps -> Cartesian components; None: scalar
    site_head: np.ndarray | None  # (D_site, 3^rank_site)


@lru_cache(maxsize=None)
def branch_tables(config: PGNetConfig, group: str) -> Branch:
    named = interactions(config, group)
    tables = {name: layer_tables(lp, config) for name, lp in named.items()}

    def head(formula):
        if formula is None:
            return None
        out = _plan.output_map(group, formula)
        Q = cartesian_basis(formula)
        return frozen(out.matrix @ Q.reshape(Q.shape[0], -1))

    return Branch(group, tuple((n, t) for n, t in tables.items() if n.startswith("layers.")), tables["readout"],
                  tables.get("site"), head(config.target_formula if config.target_kind == "tensor" else None),
                  head(config.site_formula))


def edge_features(vec, config: PGNetConfig, xp, spherical_harmonics: SphericalHarmonics):
    """(harmonics × envelope (E, (l+1)^2), radial basis (E, n_basis)) of the edge vectors (E, 3) in Å."""
    d = xp.norm(vec, axis=-1)
    envelope = polynomial_envelope(d, config.radius, config.envelope_p, xp)
    radial = bessel_basis if config.radial_basis == "bessel" else gaussian_basis
    return spherical_harmonics(config.sh_lmax, vec) * envelope[:, None], radial(d, config.radius, config.n_basis, xp)


def _weights(params: Mapping[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    """{"lin1": {"weight": ...}, "radial": {"w0": ...}, ...} of the interaction ``prefix``."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in params.items():
        if name.startswith(prefix + "."):
            module, pname = name[len(prefix) + 1 :].split(".")
            out.setdefault(module, {})[pname] = value
    return out


def branch_nodes(x0, edge_attr, basis, senders, receivers, params: Mapping[str, Any], config: PGNetConfig, branch: str, xp):
    """Per-atom read-out irreps (N, D) of one branch (and of the site head, or None)."""
    t = branch_tables(config, HOLOHEDRIES[BRANCHES.index(branch)])
    x = x0
    for name, layer in t.layers:
        x = interaction(x, edge_attr, basis, senders, receivers, _weights(params, f"{branch}.{name}"), layer, xp)
    out = interaction(x, edge_attr, basis, senders, receivers, _weights(params, f"{branch}.readout"), t.readout, xp)
    site = None
    if t.site is not None:
        site = interaction(x, edge_attr, basis, senders, receivers, _weights(params, f"{branch}.site"), t.site, xp)
    return out, site


def to_input_frame(T, rotation, rank: int, xp):
    """Per-graph Cartesian tensors (G, 3, ..., 3) from the standard frame back to each crystal's frame:
    T_in[i..] = R[a, i] ... T_std[a..] with R = frame_rotation (r_std = R r), i.e. Rᵀ on every index."""
    if rank == 0:
        return T
    letters = "abcd"[:rank]
    out_letters = "ijkl"[:rank]
    spec = ",".join(f"g{a}{o}" for a, o in zip(letters, out_letters)) + f",g{letters}->g{out_letters}"
    return xp.einsum(spec, *([rotation] * rank), T)


def forward(params: Mapping[str, Any], batch: Mapping[str, Any], config: PGNetConfig, xp,
            spherical_harmonics: SphericalHarmonics, site: bool = False):
    """Predictions (G,) or (G, 3, ..., 3) in each crystal's own frame; with ``site=True`` the per-site
    tensors (N, 3, ..., 3) in the standard frame instead (``Model.site_tensors`` rotates them)."""
    vec = edge_vectors(batch, xp)
    edge_attr, basis = edge_features(vec, config, xp, spherical_harmonics)
    s, r = batch["senders"], batch["receivers"]
    if config.message_norm in ("neighbors", "degree"):  # harmonics are e3nn's real Y^l, l = 0..sh_lmax, in order
        edge_attr = normalize_by_neighbors(edge_attr, r, batch["numbers"].shape[0], config.message_norm, xp,
                                           degree_halves(tuple(range(config.sh_lmax + 1))))
    x0 = xp.astype(xp.take(params["embedding.weight"], batch["numbers"], axis=0), vec.dtype)
    if config.density_basis:  # an invariant of the crystal: A1g in every holohedry
        x0 = x0 + density_features(batch, config.density_basis, xp) @ xp.astype(params["density.weight"], vec.dtype)
    G = batch["lattice"].shape[0]
    holo = batch["frame_holohedry"]

    def one(branch):
        nodes, site_nodes = branch_nodes(x0, edge_attr, basis, s, r, params, config, branch, xp)
        t = branch_tables(config, HOLOHEDRIES[BRANCHES.index(branch)])
        if site:
            return (site_nodes @ xp.const(t.site_head, like=site_nodes)).reshape((-1,) + (3,) * rank_of(config.site_formula))
        pool = xp.segment_mean if config.pooling == "mean" else xp.segment_sum
        pooled = pool(nodes, batch["node_graph"], G)
        return pooled[:, 0] if t.head is None else pooled @ xp.const(t.head, like=pooled)

    # Each branch runs only when the batch holds a crystal of its holohedry (xp.switch: a host-side choice
    # in torch, lax.switch under jit, where each branch is compiled once); each graph then takes its own.
    real = batch["graph_mask"] if "graph_mask" in batch else xp.ones_like(holo) > 0
    n_d6h = xp.astype((holo == 1) & real, holo.dtype).sum()
    n_oh = xp.astype(real, holo.dtype).sum() - n_d6h
    n_out = 3 ** rank_of(config.site_formula) if site else (1 if config.target_kind == "scalar" else 3**config.target_rank)
    rows = batch["numbers"].shape[0] if site else G
    zeros = xp.zeros((rows, n_out) if site or config.target_kind == "tensor" else (rows,), like=x0)
    if site:
        zeros = zeros.reshape((rows,) + (3,) * rank_of(config.site_formula))
    y_oh = xp.switch(xp.astype(n_oh > 0, holo.dtype), [lambda: zeros, lambda: one("oh")])
    y_d6h = xp.switch(xp.astype(n_d6h > 0, holo.dtype), [lambda: zeros, lambda: one("d6h")])
    which = xp.take(holo, batch["node_graph"], axis=0) if site else holo
    y = xp.where(_expand(which == 1, y_d6h), y_d6h, y_oh)
    if site or config.target_kind == "scalar":
        return y
    T = y.reshape((G,) + config.out_shape)
    return to_input_frame(T, batch["frame_rotation"], config.target_rank, xp)


def _expand(mask, like):
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))
