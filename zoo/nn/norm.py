"""Batch normalisation written once for both backends, with torch's exact running-statistics rule.

``masked_batch_norm`` is ``torch.nn.BatchNorm1d`` (affine, ``track_running_stats``) as a function: the
parameters and running statistics come in as arrays and the updated statistics go out, so a torch
module applies them to its buffers and a flax module to its ``"batch_stats"`` collection. Statistics
are taken over the rows where ``mask`` is True only, so a padded batch (``zoo.graphs.pad_batch``)
normalises and updates exactly like the unpadded one.

Why not flax's ``BatchNorm``: torch and flax disagree on the running variance (torch stores the
unbiased batch variance, flax the biased one) and on the meaning of ``momentum`` (torch's 0.1 is
flax's 0.9); running statistics trained in one backend must mean the same in the other.
"""
from __future__ import annotations

from typing import Any, NamedTuple

MOMENTUM = 0.1  # torch convention: running <- (1 - 0.1) * running + 0.1 * batch statistic
EPS = 1e-5  # torch's default, added to the variance before the square root


class RunningStats(NamedTuple):
    """The three batch-norm buffers under their torch names (``BatchNorm1d.state_dict`` leaf names)."""

    running_mean: Any
    running_var: Any
    num_batches_tracked: Any


def masked_batch_norm(x, weight, bias, stats: RunningStats, *, mask=None, train: bool, xp,
                      momentum: float = MOMENTUM, eps: float = EPS):
    """``(y, new_stats)``: x (rows, features) normalised per feature, then scaled by ``weight`` and shifted by ``bias``.

    Train mode: normalise with the mean and the biased variance of the rows where ``mask`` is True
    (all rows when ``mask`` is None) and return the updated ``RunningStats`` as torch computes them:
    the running variance takes the unbiased batch variance (n / (n - 1)), ``num_batches_tracked``
    counts the step. For n = 1, where torch raises, the factor is clamped to 1. Masked-out rows are
    normalised with the same statistics and otherwise ignored. The new statistics carry no gradient.

    Eval mode: normalise with the running statistics, which are returned unchanged.
    ``xp`` is a ``zoo.backend`` ops module.
    """
    if not train:
        inv = xp.rsqrt(xp.astype(stats.running_var, x.dtype) + eps)
        return (x - xp.astype(stats.running_mean, x.dtype)) * inv * weight + bias, stats
    if mask is None:
        n = x.shape[0]
        mean = x.mean(0)
        centred = x - mean
        var = (centred * centred).mean(0)  # biased: the one torch normalises with
        factor = n / max(n - 1, 1)
    else:
        m = xp.astype(mask, x.dtype)[:, None]
        n = m.sum()
        mean = (x * m).sum(0) / n
        centred = x - mean
        var = (centred * centred * m).sum(0) / n
        factor = n / (n - 1).clip(min=1)
    keep = 1.0 - momentum
    new = RunningStats(
        running_mean=keep * stats.running_mean + momentum * xp.stop_gradient(mean),
        running_var=keep * stats.running_var + momentum * xp.stop_gradient(var * factor),
        num_batches_tracked=stats.num_batches_tracked + 1,
    )
    return centred * xp.rsqrt(var + eps) * weight + bias, new


def named_batch_norm(p: dict[str, Any], x, name: str, mask, *, train: bool, xp, batch_norm=None,
                     updates: dict[str, Any] | None = None):
    """The batch norm whose parameters and statistics are ``p["<name>.weight"]``, ``p["<name>.bias"]``,
    ``p["<name>.running_mean"]`` ... (torch's state_dict names), over the rows where ``mask`` is True. In
    train mode the new statistics go into ``updates`` under the same names, for the caller to store.
    ``batch_norm`` is a drop-in for ``masked_batch_norm`` (torch's fused kernel for unpadded batches)."""
    stats = RunningStats(*(p[f"{name}.{leaf}"] for leaf in RunningStats._fields))
    y, new = (batch_norm or masked_batch_norm)(x, p[f"{name}.weight"], p[f"{name}.bias"], stats, mask=mask, train=train, xp=xp)
    if train and updates is not None:
        updates.update({f"{name}.{leaf}": value for leaf, value in new._asdict().items()})
    return y


class StateLayout(dict):
    """``{torch state_dict name: (kind, shape)}`` of a model built from linears and batch norms, in
    state_dict order (the weight format's layout; ``kind`` says how each is initialised)."""

    def linear(self, name: str, n_in: int, n_out: int) -> None:
        self[f"{name}.weight"] = ("linear.weight", (n_out, n_in))
        self[f"{name}.bias"] = ("linear.bias", (n_out,))

    def batch_norm(self, name: str, n: int) -> None:
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            self[f"{name}.{leaf}"] = (f"bn.{leaf}", (n,))
        self[f"{name}.num_batches_tracked"] = ("bn.num_batches_tracked", ())
