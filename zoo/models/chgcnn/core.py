"""The CHGCNN forward pass, written once for both backends (Heilman, Gong & Yan, arXiv 2411.12616).

``forward`` is a function of arrays: parameters by their torch ``state_dict`` names (``state_layout`` in
``config.py``), array operations through ``xp`` (``zoo.backend.torch`` or ``zoo.backend.jax``). The
torch and flax modules only declare the parameters and store the batch-norm statistics it returns.

The hypergraph convolution. A layer sums one term per hyperedge order it names (``config.layers``):

    x_i <- softplus(x_i + sum_orders bn2( sum_{incidences (i, h)} sigmoid(f) * softplus(c) )),
    [f | c] = bn1( fc_full( x_i ⊕ u_h ⊕ AGG{x_w : w ∈ h} ) )        (aggregated: b, t, m, c)
    [f | c] = bn1( fc_full( x_i ⊕ u_h ⊕ x_k ) ),  k ∈ h, k != i      (inter-order "relatives": B, T, M)

with CGCNN's gating and batch norms (``bn1`` over the incidences, ``bn2`` over the atoms, both masked
so a padded batch normalises like the unpadded one) and AGG the multi-aggregation of ``zoo.nn.hyper``
(mean, std, max, min, concatenated or mixed by attention, at any width). Hyperedges and who hears them:

- bond e = (centre i, neighbour j): features u_e = Gaussians of |r_ij| (CGCNN's); heard by i;
- triplet (centre i; bonds a, b): u = Gaussians of cos θ_ab, θ the angle between the two bond vectors;
  heard by i (the two neighbours hear the triplets they centre);
- motif (centre and its coordination shell): u = shell-shape features (``zoo.graphs.motifs``); heard
  by every member, the centre included (x_i ⊕ m_j ⊕ AGG{x_w : w ∈ m_j} for each motif m_j ∋ i);
- cell (every atom of the crystal): no features; heard by every atom.

In the relatives variant the message pairs the hearing atom with each *other* member of the hyperedge
(the published inter-order convolution took the centre's features in both places). As in CGCNN,
``fc_full`` is applied blockwise: its atom blocks once per atom and its hyperedge block once per
hyperedge, then gathered to the incidences (the same function as the concatenation).
"""
from __future__ import annotations

import functools

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from zoo.nn.functional import density_features, gaussian_expansion, masked_segment_mean
from zoo.nn.hyper import aggregate_fixed, aggregate_segments, combine
from zoo.nn.norm import RunningStats, masked_batch_norm, named_batch_norm

from .config import CHGCNNConfig

Array = Any  # a torch.Tensor or a jax.Array, whichever backend ``xp`` is


@dataclass
class Hyperedges:
    """One hyperedge order of a batch, as the convolution needs it (``hyperedges`` builds them)."""

    features: Array | None  # (H, F) u_h, or None (the cell)
    n: int  # H, number of hyperedges (padding included)
    fixed: list[Array] | None = None  # fixed arity: member atoms per slot [(H,), ...], slot 0 the centre
    member_node: Array | None = None  # variable arity: (P,) atom of each incidence
    member_edge: Array | None = None  # (P,) hyperedge of each incidence
    member_mask: Array | None = None  # (P,) real incidences (fixed arity: (H,) real hyperedges)
    pair_origin: Array | None = None  # relatives of a variable-arity order: (Q,) incidences that hear ...
    pair_remote: Array | None = None  # ... and (Q,) the incidences they hear, same hyperedge
    pair_mask: Array | None = None


def hyperedges(batch: Mapping[str, Array], cfg: CHGCNNConfig, like: Array, xp) -> dict[str, Hyperedges]:
    """The hyperedge orders the layers use, with their features in the float type of ``like`` (the atom
    features). Features do not change from layer to layer: computed once per forward pass."""
    out: dict[str, Hyperedges] = {}
    recv, send = batch["receivers"], batch["senders"]
    if cfg.uses("bB"):
        d = xp.astype(batch["distances"], like.dtype)
        u = gaussian_expansion(d, dmin=cfg.dmin, dmax=cfg.dmax, step=cfg.step, var=cfg.var, xp=xp)
        out["bond"] = Hyperedges(u, u.shape[0], fixed=[recv, send], member_mask=batch.get("edge_mask"))
    if cfg.uses("tT"):
        a, b = batch["triplet_bond_a"], batch["triplet_bond_b"]
        vec = xp.astype(batch["edge_vectors"], like.dtype)
        dist = xp.astype(batch["distances"], like.dtype)
        va, vb = xp.take(vec, a), xp.take(vec, b)
        cos = (va * vb).sum(-1) / (xp.take(dist, a) * xp.take(dist, b))  # padding edges are unit x: cos 1, finite
        u = gaussian_expansion(cos, dmin=-1.0, dmax=1.0, step=cfg.angle_step, xp=xp)
        out["triplet"] = Hyperedges(u, u.shape[0], fixed=[xp.take(recv, a), xp.take(send, a), xp.take(send, b)],
                                    member_mask=batch.get("triplet_mask"))
    if cfg.uses("mM"):
        u = xp.astype(batch["motif_features"], like.dtype)
        out["motif"] = Hyperedges(u, u.shape[0], member_node=batch["motif_member_node"], member_edge=batch["motif_member_motif"],
                                  member_mask=batch.get("motif_member_mask"), pair_origin=batch.get("motif_pair_origin"),
                                  pair_remote=batch.get("motif_pair_remote"), pair_mask=batch.get("motif_pair_mask"))
    if cfg.uses("c"):  # one hyperedge per crystal; its incidences are the atoms themselves
        out["cell"] = Hyperedges(None, batch["n_nodes"].shape[0], member_edge=batch["node_graph"], member_mask=batch.get("node_mask"))
    return out


def _linear_blocks(p: Mapping[str, Array], name: str, A: int, F: int):
    """``fc_full``'s weight split by input block: [atom i (A) | hyperedge features (F) | the rest], and its bias."""
    w = p[f"{name}.weight"]
    return w[:, :A], w[:, A: A + F], w[:, A + F:], p[f"{name}.bias"]


def aggregated_term(v: Array, h: Hyperedges, p: Mapping[str, Array], name: str, cfg: CHGCNNConfig, xp):
    """(receivers, z, mask) of an aggregated term: z = fc_full(x_i ⊕ u_h ⊕ AGG{x_w : w ∈ h}) per incidence."""
    A = v.shape[1]
    F = 0 if h.features is None else h.features.shape[1]
    w_atom, w_feat, w_agg, bias = _linear_blocks(p, f"{name}.fc_full", A, F)
    query = p.get(f"{name}.query")
    if h.fixed is not None:  # bonds, triplets: one incidence per hyperedge, heard by its centre (slot 0)
        stats = aggregate_fixed([xp.take(v, m) for m in h.fixed], cfg.aggregations, xp)
        receivers, edge_of = h.fixed[0], None
    elif h.member_node is not None:  # motifs: every member hears
        stats = aggregate_segments(xp.take(v, h.member_node), h.member_edge, h.n, cfg.aggregations, xp)
        receivers, edge_of = h.member_node, h.member_edge
    else:  # the cell: every atom hears, its crystal's AGG over all its atoms
        stats = aggregate_segments(v, h.member_edge, h.n, cfg.aggregations, xp)
        receivers, edge_of = None, h.member_edge
    agg = combine(stats, cfg.combine, xp, query=query)
    per_edge = xp.linear(agg, w_agg, bias)
    if h.features is not None:
        per_edge = per_edge + xp.linear(h.features, w_feat)
    if edge_of is not None:
        per_edge = xp.take(per_edge, edge_of)
    atom = xp.linear(v, w_atom)
    z = (atom if receivers is None else xp.take(atom, receivers)) + per_edge
    return receivers, z, h.member_mask


def relatives_term(v: Array, h: Hyperedges, p: Mapping[str, Array], name: str, xp):
    """(receivers, z, mask) of an inter-order term: z = fc_full(x_i ⊕ u_h ⊕ x_k) for every ordered pair (i, k)
    of distinct members of a hyperedge h, heard by i (bonds and triplets: by their centre)."""
    A = v.shape[1]
    F = h.features.shape[1]
    w_atom, w_feat, w_remote, bias = _linear_blocks(p, f"{name}.fc_full", A, F)
    both = v @ xp.concat([w_atom, w_remote], axis=0).T  # (N, 4A): [W_i x | W_k x], once per atom
    own, other = both[:, : 2 * A], both[:, 2 * A:]
    per_edge = xp.linear(h.features, w_feat, bias)
    if h.fixed is not None:
        centre, remotes = h.fixed[0], h.fixed[1:]
        receivers = xp.concat([centre] * len(remotes), axis=0)
        z = xp.take(own, receivers) + xp.take(other, xp.concat(remotes, axis=0)) + xp.concat([per_edge] * len(remotes), axis=0)
        mask = None if h.member_mask is None else xp.concat([h.member_mask] * len(remotes), axis=0)
        return receivers, z, mask
    if h.pair_origin is None:
        raise ValueError("the inter-order motif convolution needs the motif pairs: build graphs with config.graph_spec()")
    receivers = xp.take(h.member_node, h.pair_origin)
    remote = xp.take(h.member_node, h.pair_remote)  # the other member: the defect was to use the origin here
    z = xp.take(own, receivers) + xp.take(other, remote) + xp.take(per_edge, xp.take(h.member_edge, h.pair_origin))
    return receivers, z, h.pair_mask


def forward(
    p: Mapping[str, Array],
    batch: Mapping[str, Array],
    config: CHGCNNConfig,
    *,
    train: bool,
    xp,
    dropout: Callable[[Array], Array] | None = None,
    batch_norm: Callable[..., tuple[Array, RunningStats]] = masked_batch_norm,
) -> tuple[Array, dict[str, Array]]:
    """``(out, updates)``: (G,) predictions, or (G, 2) log-probabilities with ``config.classification``.

    As ``zoo.models.cgcnn.core.forward``: ``p`` maps every name of ``state_layout(config)`` (plus
    "atom_table", the fixed element table, unless the atom features are learnable) to its array;
    ``batch`` is a hypergraph batch (``config.graph_spec()``) in ``xp``'s arrays, padded or not;
    ``updates`` holds the new batch-norm buffers in train mode. ``dropout`` (classification only) and
    ``batch_norm`` (a drop-in for ``masked_batch_norm``) are framework glue the caller may inject.
    """
    cfg = config
    updates: dict[str, Array] = {}

    norm = functools.partial(named_batch_norm, p, train=train, xp=xp, batch_norm=batch_norm, updates=updates)

    table = p["atom_embedding.weight" if cfg.atom_features == "embedding" else "atom_table"]
    v = xp.linear(xp.take(table, batch["numbers"]), p["embedding.weight"], p["embedding.bias"])
    if cfg.density_basis:  # the crystal's volume per atom, the same for all its atoms (config.density_basis)
        phi = xp.astype(density_features(batch, cfg.density_basis, xp), v.dtype)
        v = v + xp.linear(phi, p["density.weight"], p["density.bias"])
    N, A = v.shape
    orders = hyperedges(batch, cfg, v, xp)
    node_mask = batch.get("node_mask")
    for k in range(len(cfg.layers)):
        total = v
        for order, rel in cfg.terms(k):
            name = f"convs.{k}.{cfg.term_name(order, rel)}"
            h = orders[order]
            receivers, z, mask = relatives_term(v, h, p, name, xp) if rel else aggregated_term(v, h, p, name, cfg, xp)
            z = norm(z, f"{name}.bn1", mask)
            filt, core = xp.split(z, [A, A], axis=1)
            gated = xp.sigmoid(filt) * xp.softplus(core)
            summed = gated if receivers is None else xp.segment_sum(gated, receivers, N)
            total = total + norm(summed, f"{name}.bn2", node_mask)
        v = xp.softplus(total)

    crys = masked_segment_mean(v, batch["node_graph"], batch["n_nodes"].shape[0], node_mask, xp=xp)
    out = xp.softplus(xp.linear(xp.softplus(crys), p["conv_to_fc.weight"], p["conv_to_fc.bias"]))
    if cfg.classification:
        out = dropout(out)
    for k in range(cfg.n_h - 1):
        out = xp.softplus(xp.linear(out, p[f"fcs.{k}.weight"], p[f"fcs.{k}.bias"]))
    out = xp.linear(out, p["fc_out.weight"], p["fc_out.bias"])
    if cfg.classification:
        return xp.log_softmax(out, axis=-1), updates
    return out[:, 0], updates
