"""CHGCNN in PyTorch: the parameters as an ``nn.Module`` tree; the math is ``zoo.models.chgcnn.core``.

``nn.Linear`` / ``nn.BatchNorm1d`` / ``nn.Embedding`` hold parameters only (their initialisation, names
and shapes); ``CHGCNN.forward`` hands every parameter and buffer to ``core.forward`` by name and writes
back the running statistics it returns. Every term of every layer is a registered submodule
(``convs.<layer>.<order>``), so all of them are in the ``state_dict`` and the optimiser (the published
code's motif layers were not all trained; ``tests/models/chgcnn`` checks each term gets a gradient).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from zoo.backend import torch as xp
from zoo.models.cgcnn.torch import fused_batch_norm  # CGCNN's fused kernel for unpadded batches
from zoo.nn.norm import EPS, MOMENTUM

from . import core
from zoo.nn.hyper import combined_width

from .config import TABLE_ROWS, CHGCNNConfig, check_state

FLOAT_FIELDS = ("distances", "edge_vectors", "motif_features")


class Term(nn.Module):
    """The parameters of one term of a layer (``convs.k.<order>[_rel]``)."""

    def __init__(self, atom_fea_len: int, n_in: int, attention: bool):
        super().__init__()
        A = atom_fea_len
        self.fc_full = nn.Linear(n_in, 2 * A)
        self.bn1 = nn.BatchNorm1d(2 * A, eps=EPS, momentum=MOMENTUM)  # over incidences
        self.bn2 = nn.BatchNorm1d(A, eps=EPS, momentum=MOMENTUM)  # over atoms
        if attention:  # scores the aggregations of a hyperedge (zoo.nn.hyper.combine); N(0, 1/A), as a unit-norm direction
            self.query = nn.Parameter(torch.randn(A) / np.sqrt(A))


class CHGCNN(nn.Module):
    """``CHGCNN(config)(batch) -> (G,)`` (regression) or ``(G, 2)`` log-probabilities (classification)."""

    def __init__(self, config: CHGCNNConfig | None = None):
        super().__init__()
        config = config if config is not None else CHGCNNConfig()
        self.config = config
        A, H = config.atom_fea_len, config.h_fea_len
        table = config.atom_table()
        if table is not None:  # data, not a weight: out of the state_dict, but follows .to(device / dtype)
            self.register_buffer("atom_table", torch.from_numpy(table.astype(np.float32)), persistent=False)
        else:
            self.atom_embedding = nn.Embedding(TABLE_ROWS, config.orig_atom_fea_len)
        self.embedding = nn.Linear(config.orig_atom_fea_len, A)
        self.convs = nn.ModuleList()
        for k in range(len(config.layers)):
            layer = nn.ModuleDict()
            for order, rel in config.terms(k):
                width = A if rel else combined_width(A, config.aggregations, config.combine)
                layer[config.term_name(order, rel)] = Term(A, A + config.hedge_fea_len(order) + width,
                                                           attention=not rel and config.combine == "attention")
            self.convs.append(layer)
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
        arrays.update(self.named_buffers())
        dtype = self.embedding.weight.dtype
        batch = {k: (v.to(dtype) if k in FLOAT_FIELDS else v) for k, v in batch.items()}
        # Masks that mask nothing (unpadded batches) are dropped, so batch norm takes torch's fused kernel.
        batch = {k: v for k, v in batch.items() if not (k.endswith("_mask") and k != "graph_mask" and bool(v.all()))}
        out, updates = core.forward(arrays, batch, self.config, train=self.training, xp=xp, dropout=self.dropout,
                                    batch_norm=self.batch_norm)
        with torch.no_grad():
            for name, value in updates.items():
                arrays[name].copy_(value)
        return out


def state_arrays(model: CHGCNN) -> dict[str, np.ndarray]:
    """The model's ``state_dict`` as numpy arrays (the weight format of ``zoo.core.weights``)."""
    return xp.state_arrays(model)


def load_state_arrays(model: CHGCNN, state: dict[str, Any]) -> CHGCNN:
    """Load numpy (or torch) arrays into ``model``; a clear ``WeightsError`` when names or shapes differ."""
    return xp.load_state_arrays(model, state, check_state)
