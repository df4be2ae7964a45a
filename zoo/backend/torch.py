"""PyTorch side of the batch contract in ``zoo.graphs.batch``."""
from __future__ import annotations

import numpy as np
import torch

_INT_KEYS = {"numbers", "senders", "receivers", "node_graph", "edge_graph", "n_nodes", "n_edges"}
_BOOL_KEYS = {"node_mask", "edge_mask", "graph_mask"}


def to_torch(batch: dict[str, np.ndarray], dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    out = {}
    for k, v in batch.items():
        t = torch.from_numpy(np.asarray(v))
        if k in _INT_KEYS:
            t = t.long()
        elif k in _BOOL_KEYS:
            t = t.bool()
        else:
            t = t.to(dtype)
        out[k] = t.to(device, non_blocking=True)
    return out


def segment_sum(x: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    out = x.new_zeros((n,) + tuple(x.shape[1:]))
    return out.index_add_(0, index, x)


def segment_mean(x: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    s = segment_sum(x, index, n)
    # Counting with index_add (not bincount, whose output shape depends on the data) keeps
    # torch.compile graphs static.
    cnt = segment_sum(torch.ones_like(index, dtype=x.dtype), index, n).clamp(min=1)
    return s / cnt.view((-1,) + (1,) * (x.dim() - 1))
