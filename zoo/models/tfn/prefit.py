"""Pre-fit of the polarisable read-out's per-element reference, before the network trains.

With the network's α output at zero, the read-out (``core.dipole_term``) is a model with one
polarisability per element. On embedded_dielectric that model contains the labeller, and fitted alone it
reaches a validation Fnorm of 0.92 (~0.1x the best floor, ``benchmarks/dipole_element_fit.py``), while
a TFN that learns the same parameter jointly with the network, at the rank-2 recipe's ~340 steps, does
not find it (8.66 on test, results/tfn/dipole/). So the trainer fits ``dipole.alpha`` first, on the
training split only, and the network then learns a correction from there.

The fit minimises the run's own loss (``zoo.nn.losses``, in the trainer's standardised units) over the
training crystals with Adam on mini-batches, gradients from the run's backend (``xp.value_and_grad``), as
the benchmark does. Its learning rate, 5e-3 on the reference, is the benchmark's 0.02 on the logit
(dipole_element_gain = 4 times the reference). Full-batch L-BFGS (scipy) was tried first and stalls: on
fold 0 it stopped after 14 iterations at a training loss of 1.23 (from 2.35), "relative reduction of f
below tolerance", and its α put most validation crystals far off (median Fnorm 85). The loss surface has
kinks (Thole's cut-off at u = a) and near-poles (the catastrophe), which break its line search. Elements
absent from the training split keep a reference of 0 (α = dipole_alpha0).
"""
from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from zoo.nn.losses import per_graph_loss

from .config import N_SPECIES, TFNConfig
from .core import dipole_term

log = logging.getLogger("zoo.training")

PREFIT_LR = 5e-3


def prefit(config: TFNConfig, batches: Callable[[], Sequence[Mapping[str, Any]]], backend: str, loss: str
           ) -> tuple[dict, dict] | None:
    """The family's pre-fit hook (``zoo.models.prefit``): ``{"dipole.alpha": reference}`` and its record, or
    None (``batches`` never called) unless the polarisable read-out is on with ``dipole_prefit_epochs`` > 0."""
    if not (config.uses_dipole and config.dipole_prefit_epochs):
        return None
    ref, record = fit_element_reference(config, batches(), backend, loss, config.dipole_prefit_epochs)
    return {"dipole.alpha": ref}, record


def fit_element_reference(config: TFNConfig, batches: Sequence[Mapping[str, Any]], backend: str, loss: str,
                          epochs: int, lr: float = PREFIT_LR, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """(the ``dipole.alpha`` parameter (N_SPECIES,), a record of the fit) that minimises the mean per-crystal
    ``loss`` of ``dipole_term`` with the network's output at zero, over ``batches`` (the run's own backend
    batches, with standardised targets ``y``; padded graphs are masked by ``graph_mask``): Adam, one step
    per batch, the batches' order shuffled every epoch."""
    xp = importlib.import_module(f"zoo.backend.{backend}")
    counts = [_real_graphs(b) for b in batches]
    n_graphs = sum(counts)
    if n_graphs == 0:
        raise ValueError("the polarisable read-out's pre-fit needs at least one training crystal")

    def batch_loss(ref, b):
        like = b["positions"]
        z = dipole_term(xp.zeros((like.shape[0],), like=like), b, ref, config, xp, int(np.max(np.asarray(b["n_nodes"]))))
        per = per_graph_loss(loss, z, b["y"], xp=xp)
        if "graph_mask" in b:
            per = per * xp.astype(b["graph_mask"], per.dtype)
        return per.sum()

    rng = np.random.default_rng(seed)
    ref, m, v = np.zeros(N_SPECIES), np.zeros(N_SPECIES), np.zeros(N_SPECIES)
    # Adam (Kingma & Ba 2015) with torch's and optax's constants, on one numpy vector: written here once so that
    # the same update serves both backends (their optimisers would each need the parameter as their own array)
    b1, b2, eps = 0.9, 0.999, 1e-8
    history, step, t0 = [], 0, time.perf_counter()
    for epoch in range(1, int(epochs) + 1):
        total = 0.0
        for k in rng.permutation(len(batches)):
            b = batches[k]
            value, grad = xp.value_and_grad(batch_loss, xp.const(ref, like=b["positions"]), b)
            grad = grad / max(counts[k], 1)
            step += 1
            m = b1 * m + (1 - b1) * grad
            v = b2 * v + (1 - b2) * grad * grad
            ref = ref - lr * (m / (1 - b1 ** step)) / (np.sqrt(v / (1 - b2 ** step)) + eps)
            total += value
        history.append(total / n_graphs)
        log.info("dipole pre-fit, epoch %d/%d: training loss %.4f", epoch, epochs, history[-1])
    record = {
        "what": "dipole.alpha fitted with the network's α output at zero (zoo.models.tfn.prefit)",
        "loss": loss, "n_train": int(n_graphs), "optimizer": f"Adam, lr {lr}, one step per batch", "epochs": int(epochs),
        "steps": step, "train_loss_per_epoch": [float(h) for h in history], "seconds": time.perf_counter() - t0,
    }
    return ref, record


def _real_graphs(batch: Mapping[str, Any]) -> int:
    if "graph_mask" in batch:
        return int(np.asarray(batch["graph_mask"]).sum())
    return int(np.asarray(batch["lattice"]).shape[0])
