"""PyTorch adapter of the point-group network: the parameters of ``config.state_layout`` and nothing
else; the math is ``core.py``, shared with ``jax.py``."""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from zoo.backend import torch as xp

from . import core
from .config import PGNetConfig, state_layout


class Model(nn.Module):
    """``Model(config)(batch) -> (G,)`` or ``(G, 3, ..., 3)`` in each crystal's frame; ``batch`` is made of
    graphs in the standard frame (``config.graph_spec()``)."""

    def __init__(self, config: PGNetConfig) -> None:
        super().__init__()
        self.config = config
        xp.declare_parameters(self, state_layout(config))

    def forward(self, batch: Mapping[str, torch.Tensor], site: bool = False) -> torch.Tensor:
        """``site=True``: the site head's tensor (N, 3, ..., 3) of every atom of the graphs (the standard
        primitive cells), in the standard frame (``frame_rotation`` of its graph takes it to the crystal's)."""
        if site and self.config.site_formula is None:
            raise ValueError("this PGNetConfig has no per-site head: set site_formula (e.g. 'ij=ji')")
        return core.forward(dict(self.named_parameters()), batch, self.config, xp, xp.spherical_harmonics, site=site)
