"""PyTorch side of the batch contract (``zoo.graphs.batch``) and the array operations model math needs."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from zoo.graphs.batch import field_of


def to_torch(batch: Mapping[str, np.ndarray], dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """A ``Batch`` as torch tensors: index and count arrays int64, masks bool, the rest ``dtype``."""
    out = {}
    for k, v in batch.items():
        kind = field_of(k).kind
        t = torch.from_numpy(np.asarray(v))
        t = t.long() if kind == "int" else t.bool() if kind == "bool" else t.to(dtype)
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
