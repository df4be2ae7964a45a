"""Training losses, written once for every backend (see ``zoo.nn``).

``xp`` is the namespace of the arrays: ``zoo.backend.torch``, ``zoo.backend.jax`` or numpy (the loop
scores whole sets with numpy). Only names all three share are used (``maximum``, ``exp``, ``log1p``,
``zeros_like``) plus array methods, so one body serves training steps in both frameworks.
"""
from __future__ import annotations

import numpy as np

LOSSES = ("mse", "l1", "fnorm", "bce")
# fnorm's sqrt(sum err^2 + eps): a finite (zero) gradient at a perfect prediction; negligible beside an error of
# 1e-5 standardised units, far below what a float32 model resolves.
FNORM_EPS = 1e-12


def class_logit(out):
    """Logit of the positive class: a model may output it directly, (G,), or as two log-probabilities,
    (G, 2), whose difference log p1 - log p0 is the logit (so BCE on it equals the NLL of the
    log-softmax)."""
    if out.ndim == 2 and out.shape[-1] == 2:
        return out[:, 1] - out[:, 0]
    return out.reshape(out.shape[0])


def per_graph_loss(kind: str, out, y, xp=np):
    """(G,) loss of each graph, in standardised target units.

    ``mse`` / ``l1``: mean over the output's components of the squared / absolute error. ``fnorm``: the
    Frobenius norm of the error, sqrt(sum of squared components): for a tensor the tensor tasks' headline
    metric (in standardised units) and, unlike the component L1, the same in every Cartesian frame (an
    O(3)-invariant loss); for a scalar it is the absolute error. ``bce``:
    binary cross-entropy of the logit ``z = class_logit(out)`` against labels ``y`` in {0, 1},
    log(1 + e^z) - y z, written as max(z, 0) + log1p(e^-|z|) - y z so that no exponential overflows
    (torch's ``binary_cross_entropy_with_logits`` and jax's ``logaddexp`` compute the same).
    """
    if kind == "bce":
        z = class_logit(out)
        return xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-abs(z))) - y * z
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")
    err = (out - y).reshape(out.shape[0], -1)
    if kind == "fnorm":
        return ((err * err).sum(1) + FNORM_EPS) ** 0.5
    return abs(err).mean(1) if kind == "l1" else (err * err).mean(1)
