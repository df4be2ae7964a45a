"""Batch norm over the global batch of a torchrun run: the drop-in the torch families take for ``masked_batch_norm``.

In a ``DistributedDataParallel`` step each rank holds its slice of the global batch; a plain batch norm
normalises each slice with its own mean and variance, so the step is not the single-process step (CGCNN
on two ranks moved the loss by 6e-2). ``CrossRankBatchNorm`` computes the statistics of the rows of all
ranks together, with the same rule as ``zoo.nn.norm.masked_batch_norm``:

- per feature: the global count n, then the global mean (one all-reduce of [count, sum]), then the
  global biased variance as the all-reduced sum of *centred* squares / n (a second all-reduce). Two
  passes rather than one all-reduce of (count, sum, sum of squares): E[x^2] - E[x]^2 cancels
  catastrophically when |mean| >> std (float32 pre-activations after a linear layer often have
  mean/std ~ 1e2, which leaves ~3 significant digits), while the centred sum is as accurate as the
  single-process formula, which is also two-pass. The cost is a second all-reduce of ``features``
  numbers per layer (CGCNN: 6 layers x 2 x <= 256 floats per step).
- running statistics: ``masked_batch_norm``'s update with the unbiased variance over the GLOBAL count,
  n / (n - 1), so every rank ends the step with the same buffers as the single process.
- gradients: the all-reduces are ``torch.distributed.nn.functional.all_reduce``, whose backward
  all-reduces the incoming gradients, so each rank's parameters receive the gradient of every rank's
  loss through the shared statistics; DDP's average over ranks of the ``W n_r / N``-scaled losses then is
  the gradient of the global batch's mean loss, as in one process.
- a rank stepping with weight 0 (its slice of a short last batch is empty, ``Context.local``) still joins
  every collective but contributes count 0, so its placeholder graph does not enter the statistics.

Eval mode is the model's own batch norm (``local``: running statistics, no collective). This is what
``torch.nn.SyncBatchNorm`` does on CUDA; it refuses CPU tensors, and the families call batch norm as a
function on their state_dict arrays, not as a module. Torch-only: the numpy layers never import it.
"""
from __future__ import annotations

import torch
from torch.distributed.nn.functional import all_reduce

from zoo.nn.norm import EPS, MOMENTUM, RunningStats


class CrossRankBatchNorm:
    """``masked_batch_norm``'s signature and rule, statistics over every rank of ``group`` (default: the
    world). ``local`` is the batch norm it replaces, used in eval mode. ``contributes`` (set per step by the
    distributed context) is False on a zero-weight step."""

    def __init__(self, local, group=None):
        self.local = local
        self.group = group
        self.contributes = True

    def _all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        if self.group is None:
            return all_reduce(t)
        return all_reduce(t, group=self.group)

    def __call__(self, x, weight, bias, stats: RunningStats, *, mask=None, train: bool, xp,
                 momentum: float = MOMENTUM, eps: float = EPS):
        if not train:
            return self.local(x, weight, bias, stats, mask=mask, train=False, xp=xp)
        m = torch.ones((x.shape[0], 1), dtype=x.dtype, device=x.device) if mask is None else mask.to(x.dtype)[:, None]
        if not self.contributes:
            m = torch.zeros_like(m)
        total = self._all_reduce(torch.cat([m.sum().reshape(1), (x * m).sum(0)]))
        n = total[0]
        mean = total[1:] / n
        centred = x - mean
        var = self._all_reduce((centred * centred * m).sum(0)) / n  # biased: the one torch normalises with
        factor = n / (n - 1).clamp(min=1)  # unbiased over the global count, for the running variance
        keep = 1.0 - momentum
        new = RunningStats(
            running_mean=keep * stats.running_mean + momentum * mean.detach(),
            running_var=keep * stats.running_var + momentum * (var * factor).detach(),
            num_batches_tracked=stats.num_batches_tracked + 1,
        )
        return centred * torch.rsqrt(var + eps) * weight + bias, new
