"""CGCNN in PyTorch: the parameters as an ``nn.Module`` tree; the math is ``zoo.models.cgcnn.core``.

The module names are those of the reference implementation (txie-93/cgcnn ``model.py``), so its
``state_dict`` is our weight format (``state_layout`` in ``config.py``). ``nn.Linear``,
``nn.BatchNorm1d`` and ``nn.Embedding`` serve as parameter holders only (their initialisation,
names and shapes); their ``forward`` is never called: ``CGCNN.forward`` hands every parameter and
buffer to ``core.forward`` by name and writes the running statistics it returns back into the
batch-norm buffers. The one piece of torch-only math is ``fused_batch_norm``, torch's own kernel for
batches without padding.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zoo.backend import torch as xp
from zoo.nn.norm import EPS, MOMENTUM, RunningStats, masked_batch_norm

from . import core
from .config import TABLE_ROWS, CGCNNConfig, check_state


def fused_batch_norm(x, weight, bias, stats: RunningStats, *, mask, train: bool, xp):
    """``zoo.nn.norm.masked_batch_norm`` through torch's fused ``F.batch_norm`` where it applies: eval mode,
    and train mode without a mask (every row real). The same statistics and update rule (torch's, which
    masked_batch_norm copies), equal to rounding; forward + backward over CGCNN's edges (10k x 128,
    float32) took about a third of the time of the composed operations, whose every step allocates a
    full-size temporary."""
    if train and mask is not None:
        return masked_batch_norm(x, weight, bias, stats, mask=mask, train=True, xp=xp)
    mean, var = stats.running_mean, stats.running_var
    if train:  # F.batch_norm updates the running statistics in place: give it copies, return them
        mean, var = mean.clone(), var.clone()
    y = F.batch_norm(x, mean, var, weight, bias, train, MOMENTUM, EPS)
    return y, RunningStats(mean, var, stats.num_batches_tracked + 1) if train else stats


def _conv_layer(atom_fea_len: int, nbr_fea_len: int) -> nn.ModuleDict:
    """The parameters of one convolution, ``convs.k.{fc_full, bn1, bn2}``."""
    return nn.ModuleDict({
        "fc_full": nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len),
        "bn1": nn.BatchNorm1d(2 * atom_fea_len, eps=EPS, momentum=MOMENTUM),  # over edges
        "bn2": nn.BatchNorm1d(atom_fea_len, eps=EPS, momentum=MOMENTUM),  # over atoms
    })


class CGCNN(nn.Module):
    """``CGCNN(config)(batch) -> (G,)`` (regression) or ``(G, 2)`` log-probabilities (classification).

    ``batch`` is a ``zoo.graphs.collate`` / ``pad_batch`` dict converted with
    ``zoo.backend.torch.to_torch``; outputs on padding graphs (``graph_mask`` False) are meaningless.
    """

    def __init__(self, config: CGCNNConfig | None = None):
        super().__init__()
        config = config if config is not None else CGCNNConfig()
        self.config = config
        A, H = config.atom_fea_len, config.h_fea_len
        table = config.atom_table()
        # Created in the reference code's order, so a seed gives the same initial weights as before.
        if table is not None:
            # Fixed data, not a weight: non-persistent, so it stays out of the state_dict (the weight
            # format) but still follows .to(device / dtype).
            self.register_buffer("atom_table", torch.from_numpy(table.astype(np.float32)), persistent=False)
        else:
            self.atom_embedding = nn.Embedding(TABLE_ROWS, config.orig_atom_fea_len)
        self.embedding = nn.Linear(config.orig_atom_fea_len, A)
        self.convs = nn.ModuleList([_conv_layer(A, config.nbr_fea_len) for _ in range(config.n_conv)])
        self.conv_to_fc = nn.Linear(A, H)
        self.fcs = nn.ModuleList([nn.Linear(H, H) for _ in range(config.n_h - 1)])
        self.fc_out = nn.Linear(H, config.n_outputs)
        self.dropout = nn.Dropout(config.dropout) if config.classification else None
        if config.density_basis:  # created last: the modules above draw the same initial weights for a seed
            self.density = nn.Linear(config.density_basis, A)
        # The batch-norm function (masked_batch_norm's signature); a torchrun run swaps in the cross-rank one
        # (zoo.training.sync_batch_norm), so that every rank normalises with the global batch's statistics.
        self.batch_norm = fused_batch_norm

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        arrays = dict(self.named_parameters())
        arrays.update(self.named_buffers())  # running statistics, and the atom table
        # Distances in the model's dtype, as the weights (a float64 model accepts a float32 batch).
        batch = {**batch, "distances": batch["distances"].to(self.embedding.weight.dtype)}
        # Masks that mask nothing (torch's unpadded batches) are dropped, so that batch norm takes
        # torch's fused kernel (fused_batch_norm) and pooling skips the weights.
        batch = {k: v for k, v in batch.items() if not (k in ("node_mask", "edge_mask") and bool(v.all()))}
        out, updates = core.forward(arrays, batch, self.config, train=self.training, xp=xp, dropout=self.dropout,
                                    batch_norm=self.batch_norm)
        with torch.no_grad():
            for name, value in updates.items():
                arrays[name].copy_(value)
        return out


def state_arrays(model: CGCNN) -> dict[str, np.ndarray]:
    """The model's ``state_dict`` as numpy arrays (the weight format of ``zoo.core.weights``)."""
    return xp.state_arrays(model)


def load_state_arrays(model: CGCNN, state: dict[str, Any]) -> CGCNN:
    """Load numpy (or torch) arrays into ``model``; a clear ``WeightsError`` when names or shapes differ."""
    return xp.load_state_arrays(model, state, check_state)
