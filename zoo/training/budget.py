"""Memory a training run needs, estimated before the model, its optimiser or a batch is allocated.

Options can ask for any size (``--set atom_fea_len=100000``, a Gaussian basis of a million centres
with ``--set step=1e-6``, ``--batch-size 1000000`` on large cells), and an allocation beyond the
machine's memory does not fail cleanly: the process is killed, or the machine swaps for hours. So the
adapter reports the parameter shapes of the model it is about to build (torch: built on the ``meta``
device; jax: the shapes of the lowered ``init``, nothing run), and ``check_memory`` refuses the run when
even a floor of what one training step needs exceeds the memory of the device:

- parameters, their gradients and the two Adam moments: 4 x n_params values;
- the activations of one layer and their gradients over the largest possible batch: 2 x (nodes + edges)
  x the widest parameter dimension. The widest dimension is that of the widest layer, which a
  message-passing model applies to every node or edge (a CGCNN edge carries 2F + n_gaussians values);
- the batch itself (``collate``'s arrays), which the previous line covers many times over.

This is a lower bound (a network keeps several layers' activations), so it never refuses a run that
would fit; it catches the runs that cannot, in a second, with the figures and what to change. The
neighbour lists are bounded where they are built (``zoo.graphs.neighbors``).

The host's limit is its physical memory or the container's, whichever is smaller; on a machine shared
with others, ``ZOO_MEMORY_LIMIT_GB`` lowers it (GiB) so that a run is refused before it takes the share
of the others.
"""
from __future__ import annotations

import math
import os
from typing import Sequence

from .config import TrainConfig, UsageError


LIMIT_VARIABLE = "ZOO_MEMORY_LIMIT_GB"


def host_memory_bytes() -> int:
    """Physical memory, or the container's limit (cgroup v2, then v1) or ``$ZOO_MEMORY_LIMIT_GB`` when
    smaller."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    value = os.environ.get(LIMIT_VARIABLE)
    if value:
        try:
            gib = float(value)
        except ValueError:
            gib = math.nan
        if not (math.isfinite(gib) and gib > 0):
            raise UsageError(f"{LIMIT_VARIABLE}={value!r} is not a positive number of GiB (e.g. {LIMIT_VARIABLE}=8)")
        total = min(total, int(gib * 2**30))
    return total


def largest_batch(graphs: Sequence, batch_size: int) -> tuple[int, int]:
    """(nodes, edges) of the biggest batch a shuffle can draw: the ``batch_size`` graphs with most edges."""
    sizes = sorted(((g.n_edges, g.n_nodes) for g in graphs), reverse=True)[:batch_size]
    return sum(n for _, n in sizes), sum(e for e, _ in sizes)


def estimate(shapes: dict[str, tuple[int, ...]], nodes: int, edges: int, itemsize: int) -> dict[str, float]:
    n_params = sum(math.prod(s) for s in shapes.values())
    widest = max((max(s) for s in shapes.values() if len(s)), default=1)
    params = 4.0 * n_params * itemsize
    activations = 2.0 * (nodes + edges) * widest * itemsize
    return {"n_params": n_params, "widest": widest, "params_bytes": params, "activation_bytes": activations,
            "total_bytes": params + activations}


def check_memory(shapes: dict[str, tuple[int, ...]] | None, graphs: Sequence, config: TrainConfig, limit: int) -> None:
    """Refuse (``UsageError``) a run whose floor estimate exceeds ``limit`` bytes (see the module docstring)."""
    if not shapes:
        return
    nodes, edges = largest_batch(graphs, config.batch_size)
    e = estimate(shapes, nodes, edges, 8 if config.dtype == "float64" else 4)
    if e["total_bytes"] <= limit:
        return
    gib = 2.0**30
    raise UsageError(
        f"{config.model} with these options needs at least {e['total_bytes'] / gib:.3g} GiB for one training step, "
        f"more than the {limit / gib:.3g} GiB of memory here: {e['n_params']:.3g} parameters "
        f"({e['params_bytes'] / gib:.3g} GiB with gradients and optimiser state) and layers {e['widest']} wide over "
        f"batches of up to {nodes} atoms and {edges} edges ({e['activation_bytes'] / gib:.3g} GiB). Use smaller "
        f"widths or bases (--set ...), a smaller --batch-size (now {config.batch_size}), or a smaller radius")
