"""The CGCNN forward pass, written once for both backends (Xie & Grossman, PRL 120, 145301, 2018).

``forward`` is a function of arrays: the parameters come in by their torch ``state_dict`` names
(``state_layout`` in ``config.py``, the weight format of both backends) and the array operations
through ``xp``, a ``zoo.backend`` ops module. ``zoo.models.cgcnn.torch`` (an ``nn.Module`` that owns
the parameters) and ``zoo.models.cgcnn.jax`` (a flax module that declares the same names) only hand
their arrays to it and store the running statistics it returns.

The architecture is that of the reference implementation (txie-93/cgcnn ``model.py``):

- atom features: row Z of the fixed 92-dim element table (or of a learnable ``atom_embedding``), then
  ``embedding`` = Linear(92 -> A) with A = atom_fea_len;
- ``convs.k`` (ConvLayer): for each edge i <- j, z_ij = [v_i, v_j, u_ij] with u_ij the Gaussian
  expansion of |r_ij| (Å); ``fc_full`` Linear(2A + 41 -> 2A) -> ``bn1`` (batch norm over edges) ->
  split into filter / core -> sigmoid(filter) * softplus(core) -> sum over j into i -> ``bn2``
  (batch norm over atoms) -> softplus(v_i + sum);
- mean pooling per crystal, softplus -> ``conv_to_fc`` -> softplus (the original applies softplus on
  both sides of conv_to_fc), [dropout for classification], ``fcs.k`` + softplus (n_h - 1 of them),
  ``fc_out`` (1 output, or 2 log-probabilities for classification).

Differences from the reference code, all on purpose: the neighbour list is an edge list (atoms with
fewer than 12 neighbours inside the radius get fewer edges, where the original pads them with fake
neighbours at radius + 1 Å pointing to atom 0), and batch statistics and pooling use real atoms and
edges only (``node_mask`` / ``edge_mask``), so a padded batch (``pad_batch``) trains exactly like the
unpadded one.
"""
from __future__ import annotations

import functools

from collections.abc import Callable, Mapping
from typing import Any

from zoo.nn.functional import density_features, gaussian_expansion, masked_segment_mean
from zoo.nn.norm import RunningStats, masked_batch_norm, named_batch_norm

from .config import CGCNNConfig

Array = Any  # a torch.Tensor or a jax.Array, whichever backend ``xp`` is
BatchNormFn = Callable[..., tuple[Array, RunningStats]]  # the signature of zoo.nn.norm.masked_batch_norm


def linear(x: Array, p: Mapping[str, Array], name: str, xp) -> Array:
    """torch's ``Linear`` ``name``: x W^T + b with W = ``p[name + ".weight"]`` of shape (out, in)."""
    return xp.linear(x, p[f"{name}.weight"], p[f"{name}.bias"])


def edge_linear(v: Array, nbr_fea: Array, senders: Array, receivers: Array, p: Mapping[str, Array], name: str, xp) -> Array:
    """``fc_full([v_i, v_j, u_ij])`` for every edge i <- j, computed as W_i v_i + W_j v_j + W_u u_ij + b.

    The same function and parameters as the original concatenation (the columns of the (2A, 2A + M)
    weight are [centre i | neighbour j | Gaussians of r_ij]), but the atom blocks are multiplied once
    per atom and then gathered, instead of once per edge: 12x fewer rows, which is most of the step's
    matrix-multiply time.
    """
    A = v.shape[1]
    w = p[f"{name}.weight"]
    node = v @ xp.concat([w[:, :A], w[:, A : 2 * A]], axis=0).T  # (N, 4A): [W_i v | W_j v]
    return (xp.take(node[:, : 2 * A], receivers) + xp.take(node[:, 2 * A :], senders)
            + xp.linear(nbr_fea, w[:, 2 * A :], p[f"{name}.bias"]))


def conv_layer(v: Array, nbr_fea: Array, batch: Mapping[str, Array], p: Mapping[str, Array], name: str,
               norm: Callable[[Array, str, Array | None], Array], xp) -> Array:
    """One CGCNN convolution ``name`` (e.g. "convs.0"): atom features (N, A) -> (N, A).

    ``norm(x, name, mask)`` is the batch norm ``name`` over the rows where ``mask`` is True."""
    senders, receivers = batch["senders"], batch["receivers"]  # edge i <- j: j = sender (neighbour), i = receiver (centre)
    A = v.shape[1]
    z = edge_linear(v, nbr_fea, senders, receivers, p, f"{name}.fc_full", xp)
    z = norm(z, f"{name}.bn1", batch.get("edge_mask"))
    filt, core = xp.split(z, [A, A], axis=1)
    summed = xp.segment_sum(xp.sigmoid(filt) * xp.softplus(core), receivers, v.shape[0])
    return xp.softplus(v + norm(summed, f"{name}.bn2", batch.get("node_mask")))


def forward(
    p: Mapping[str, Array],
    batch: Mapping[str, Array],
    config: CGCNNConfig,
    *,
    train: bool,
    xp,
    dropout: Callable[[Array], Array] | None = None,
    batch_norm: BatchNormFn = masked_batch_norm,
) -> tuple[Array, dict[str, Array]]:
    """``(out, updates)``: (G,) predictions, or (G, 2) log-probabilities with ``config.classification``.

    ``p`` maps every name of ``state_layout(config)`` to its array, plus "atom_table" (the fixed
    (101, 92) element table in the model's float dtype: data, not a weight) unless the atom features
    are a learnable ``atom_embedding``. ``batch`` is a ``zoo.graphs`` batch in ``xp``'s arrays, padded
    or not; outputs on padding graphs (``graph_mask`` False) are meaningless. ``updates`` holds the
    new batch-norm buffers by torch name in train mode (empty in eval mode), without gradient, for
    the caller to store.

    Framework glue the caller may inject: ``dropout``, the framework's dropout (it owns the random
    numbers), applied in classification only; ``batch_norm``, a drop-in for ``masked_batch_norm``
    (torch passes its fused kernel for unpadded batches).
    """
    cfg = config
    updates: dict[str, Array] = {}

    norm = functools.partial(named_batch_norm, p, train=train, xp=xp, batch_norm=batch_norm, updates=updates)

    table = p["atom_embedding.weight" if cfg.atom_features == "embedding" else "atom_table"]
    v = linear(xp.take(table, batch["numbers"]), p, "embedding", xp)
    if cfg.density_basis:  # the crystal's volume per atom, the same for all its atoms (config.density_basis)
        v = v + linear(xp.astype(density_features(batch, cfg.density_basis, xp), v.dtype), p, "density", xp)
    nbr_fea = gaussian_expansion(batch["distances"], dmin=cfg.dmin, dmax=cfg.dmax, step=cfg.step, var=cfg.var, xp=xp)
    for k in range(cfg.n_conv):
        v = conv_layer(v, nbr_fea, batch, p, f"convs.{k}", norm, xp)

    # Mean over each crystal's real atoms (padding atoms sit in a padding graph, but they are masked
    # too, so that graph pools to 0 rather than to padding junk).
    crys = masked_segment_mean(v, batch["node_graph"], batch["n_nodes"].shape[0], batch.get("node_mask"), xp=xp)
    h = xp.softplus(linear(xp.softplus(crys), p, "conv_to_fc", xp))
    if cfg.classification:
        h = dropout(h)
    for k in range(cfg.n_h - 1):
        h = xp.softplus(linear(h, p, f"fcs.{k}", xp))
    out = linear(h, p, "fc_out", xp)
    if cfg.classification:
        return xp.log_softmax(out, axis=-1), updates
    return out[:, 0], updates
