"""JAX (flax.linen) adapter of the point-group network: the parameters of ``config.state_layout`` under
their torch names and shapes (``oh.layers.0.lin1.weight`` at flax's ``params/oh/layers_0/lin1/weight``,
converted by ``zoo.backend.params``); the math is ``core.py``, shared with ``torch.py``."""
from __future__ import annotations

from collections.abc import Mapping

import flax.linen as nn
import jax

from zoo.backend import jax as xp

from . import core
from .config import PGNetConfig, state_layout


class Model(nn.Module):
    """``Model(config).apply(variables, batch) -> (G,)`` or ``(G, 3, ..., 3)`` in each crystal's frame;
    ``site=True``: the per-site tensors (see the torch twin)."""

    config: PGNetConfig

    @nn.compact
    def __call__(self, batch: Mapping[str, jax.Array], train: bool = False, site: bool = False) -> jax.Array:
        del train  # no dropout / batch norm
        if site and self.config.site_formula is None:
            raise ValueError("this PGNetConfig has no per-site head: set site_formula (e.g. 'ij=ji')")
        arrays = xp.declare_parameters(self, tuple(state_layout(self.config).items()), batch["positions"].dtype)
        return core.forward(arrays, batch, self.config, xp, xp.spherical_harmonics, site=site)
