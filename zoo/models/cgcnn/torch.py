"""CGCNN in PyTorch on crystal-zoo's edge-list batches (``zoo.graphs.batch``).

The architecture and parameter names are those of the reference implementation (txie-93/cgcnn
``model.py``), so its ``state_dict`` is our weight format:

- atom features: the fixed 92-dim element table (or a learnable ``atom_embedding``), then
  ``embedding`` = Linear(92 -> atom_fea_len);
- ``convs.k`` (ConvLayer): for each edge i <- j, z_ij = [v_i, v_j, u_ij] with u_ij the Gaussian
  expansion of |r_ij|; ``fc_full`` Linear(2A + 41 -> 2A) -> ``bn1`` (batch norm over edges) ->
  split into filter / core -> sigmoid(filter) * softplus(core) -> sum over j into i -> ``bn2``
  (batch norm over atoms) -> softplus(v_i + sum);
- mean pooling per crystal, softplus -> ``conv_to_fc`` -> softplus (the original applies softplus on
  both sides of conv_to_fc), [dropout for classification], ``fcs.k`` + softplus (n_h - 1 of them),
  ``fc_out`` (1 output, or 2 log-probabilities for classification).

Differences from the reference code, all on purpose: the neighbour list is an edge list (atoms with
fewer than 12 neighbours inside the radius get fewer edges, where the original pads them with fake
neighbours at radius + 1 Å pointing to atom 0), and batch statistics are taken over real atoms and
edges only, so a padded batch (``pad_batch``) trains exactly like the unpadded one.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zoo.backend.torch import segment_sum

from .config import TABLE_ROWS, CGCNNConfig, check_state

BN_MOMENTUM = 0.1  # torch convention: running <- (1 - 0.1) running + 0.1 batch
BN_EPS = 1e-5


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose training statistics use only the rows where ``mask`` is True.

    Same parameters, buffers and update rule as torch (normalise with the biased batch variance,
    update ``running_var`` with the unbiased one, n / (n - 1)); rows outside the mask are normalised
    with the same statistics and are otherwise ignored. Without a mask it is ``nn.BatchNorm1d``.
    """

    def __init__(self, num_features: int):
        super().__init__(num_features, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        # Unpadded batches (torch's collate) take torch's fused kernel: same statistics and update rule.
        if not self.training or mask is None or bool(mask.all()):
            return super().forward(x)
        m = mask.to(x.dtype).unsqueeze(-1)
        n = m.sum()
        mean = (x * m).sum(0) / n
        centred = x - mean
        var = (centred * centred * m).sum(0) / n  # biased, used to normalise
        with torch.no_grad():
            # torch updates running_var with the unbiased variance; n = 1 (where torch raises) is clamped.
            unbiased = var * (n / (n - 1).clamp(min=1))
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * unbiased)
            self.num_batches_tracked.add_(1)
        return centred * torch.rsqrt(var + self.eps) * self.weight + self.bias


class ConvLayer(nn.Module):
    def __init__(self, atom_fea_len: int, nbr_fea_len: int):
        super().__init__()
        self.atom_fea_len = atom_fea_len
        self.fc_full = nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len)
        self.bn1 = MaskedBatchNorm1d(2 * atom_fea_len)
        self.bn2 = MaskedBatchNorm1d(atom_fea_len)

    def forward(
        self,
        v: torch.Tensor,  # (N, A) atom features
        nbr_fea: torch.Tensor,  # (E, M) Gaussian-expanded bond lengths
        senders: torch.Tensor,  # (E,) neighbour j
        receivers: torch.Tensor,  # (E,) centre i
        node_mask: torch.Tensor | None,
        edge_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        # fc_full([v_i, v_j, u_ij]) computed as W_i v (per atom) + W_j v (per atom) + W_u u_ij + b: the same
        # function as the original concatenation, but the atom blocks are multiplied once per atom instead
        # of once per edge (12x fewer rows), which is most of the step's matrix-multiply time.
        A = self.atom_fea_len
        w = self.fc_full.weight  # (2A, 2A + M): columns [centre i | neighbour j | Gaussian of r_ij]
        node = v @ torch.cat([w[:, :A], w[:, A : 2 * A]], dim=0).t()  # (N, 4A)
        z = (node[:, : 2 * A].index_select(0, receivers) + node[:, 2 * A :].index_select(0, senders)
             + F.linear(nbr_fea, w[:, 2 * A :], self.fc_full.bias))
        z = self.bn1(z, edge_mask)
        filt, core = z.chunk(2, dim=1)
        summed = segment_sum(torch.sigmoid(filt) * F.softplus(core), receivers, v.shape[0])
        return F.softplus(v + self.bn2(summed, node_mask))


class CGCNN(nn.Module):
    """``CGCNN(config)(batch) -> (G,)`` (regression) or ``(G, 2)`` log-probabilities (classification).

    ``batch`` is a ``zoo.graphs.collate`` / ``pad_batch`` dict converted with
    ``zoo.backend.torch.to_torch``; outputs on padding graphs (``graph_mask`` False) are meaningless.
    """

    def __init__(self, config: CGCNNConfig | None = None):
        super().__init__()
        config = config if config is not None else CGCNNConfig()
        self.config = config
        A, M = config.atom_fea_len, config.nbr_fea_len
        table = config.atom_table()
        if table is not None:
            # Fixed data, not a weight: non-persistent, so it stays out of the state_dict (the weight
            # format) but still follows .to(device / dtype).
            self.register_buffer("atom_table", torch.from_numpy(table.astype(np.float32)), persistent=False)
        else:
            self.atom_embedding = nn.Embedding(TABLE_ROWS, config.orig_atom_fea_len)
        self.embedding = nn.Linear(config.orig_atom_fea_len, A)
        self.convs = nn.ModuleList([ConvLayer(A, M) for _ in range(config.n_conv)])
        self.conv_to_fc = nn.Linear(A, config.h_fea_len)
        self.fcs = nn.ModuleList([nn.Linear(config.h_fea_len, config.h_fea_len) for _ in range(config.n_h - 1)])
        self.fc_out = nn.Linear(config.h_fea_len, config.n_outputs)
        self.dropout = nn.Dropout(config.dropout) if config.classification else None

    def atom_inputs(self, numbers: torch.Tensor) -> torch.Tensor:
        if self.config.atom_features != "embedding":
            return self.atom_table.index_select(0, numbers)
        return self.atom_embedding(numbers)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        from zoo.nn import gaussian_expansion

        cfg = self.config
        v = self.embedding(self.atom_inputs(batch["numbers"]).to(self.embedding.weight.dtype))
        nbr_fea = gaussian_expansion(
            batch["distances"].to(v.dtype), dmin=cfg.dmin, dmax=cfg.dmax, step=cfg.step, var=cfg.var, xp=torch
        )
        senders, receivers = batch["senders"], batch["receivers"]
        node_mask, edge_mask = batch.get("node_mask"), batch.get("edge_mask")
        for conv in self.convs:
            v = conv(v, nbr_fea, senders, receivers, node_mask, edge_mask)

        # Mean over each crystal's real atoms (padding atoms sit in a padding graph, but they are
        # masked too, so that graph pools to 0 rather than to padding junk).
        n_graphs = batch["n_nodes"].shape[0]
        w = node_mask.to(v.dtype) if node_mask is not None else v.new_ones(v.shape[0])
        total = segment_sum(v * w.unsqueeze(-1), batch["node_graph"], n_graphs)
        count = segment_sum(w, batch["node_graph"], n_graphs).clamp(min=1)
        crys = total / count.unsqueeze(-1)

        h = F.softplus(self.conv_to_fc(F.softplus(crys)))
        if self.dropout is not None:
            h = self.dropout(h)
        for fc in self.fcs:
            h = F.softplus(fc(h))
        out = self.fc_out(h)
        if cfg.classification:
            return F.log_softmax(out, dim=-1)
        return out.squeeze(-1)


def state_arrays(model: CGCNN) -> dict[str, np.ndarray]:
    """The model's ``state_dict`` as numpy arrays (the weight format of ``zoo.core.weights``)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def load_state_arrays(model: CGCNN, state: dict[str, Any]) -> CGCNN:
    """Load numpy (or torch) arrays into ``model``; a clear ``WeightsError`` when names or shapes differ."""
    check_state(model.config, state)
    own = model.state_dict()
    tensors = {k: torch.as_tensor(np.asarray(v)).to(dtype=own[k].dtype) for k, v in state.items()}
    model.load_state_dict(tensors, strict=True)
    return model
