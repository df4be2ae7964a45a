"""PyTorch adapter of the tensor field network (the math is ``core.py``, shared with ``jax.py``).

The modules here own the parameters under the weight file's names and shapes (``config.state_layout``)
and pass e3nn's pieces to the core: real spherical harmonics, Wigner-3j symbols and, for
``tp_impl="e3nn"``, ``o3.TensorProduct``. The ``state_dict`` holds weights only: e3nn's buffers
(output masks, Wigner symbols) follow from the config and are kept out of it.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from e3nn import o3
from torch import nn

from zoo.backend import torch as xp

from . import core
from . import irreps as _ir
from .config import N_SPECIES, TFNConfig, layer_weight_shapes


def _wigner_3j(l1: int, l2: int, l3: int) -> np.ndarray:
    # e3nn's table, so this backend needs only its own library (it equals e3nn-jax's to 1e-13, tested)
    return o3.wigner_3j(l1, l2, l3, dtype=torch.float64).numpy()


def _constants_only(module: nn.Module) -> nn.Module:
    """An e3nn module whose buffers (output masks, Wigner symbols) are constants derived from the plan,
    not weights: kept out of the ``state_dict``, which holds exactly ``config.state_layout``."""
    for m in module.modules():
        m._non_persistent_buffers_set.update(m._buffers)
    return module


def _e3(irreps) -> o3.Irreps:
    # Built from our string, never sorted/simplified, so the order matches the JAX model's.
    return o3.Irreps(_ir.format_irreps(irreps))


class Interaction(nn.Module):
    """One gated point convolution (or the read-out convolution): ``core.interaction`` with this
    layer's parameters (``lin1``, ``radial``, ``lin2``, ``sc``)."""

    def __init__(self, plan: _ir.LayerPlan, config: TFNConfig) -> None:
        super().__init__()
        self.plan = plan
        self.tables = core.layer_tables(plan, config, _wigner_3j)
        shapes = layer_weight_shapes(config, plan)
        self.weight_modules = tuple(shapes)
        for module, params in shapes.items():
            setattr(self, module, xp.Parameters(params))
        self.tp = None  # the reference kernel (tp_impl="e3nn"): e3nn's own per-edge tensor product
        if self.tables.conv is None:
            conv = plan.conv
            self.tp = _constants_only(o3.TensorProduct(
                _e3(conv.irreps_in), _e3(conv.irreps_sh), _e3(conv.irreps_mid), [tuple(i) for i in conv.instructions],
                shared_weights=False, internal_weights=False, irrep_normalization="component", path_normalization="element"))

    def forward(self, x, edge_attr, edge_basis, senders, receivers) -> torch.Tensor:
        weights = {name: getattr(self, name).arrays() for name in self.weight_modules}
        return core.interaction(x, edge_attr, edge_basis, senders, receivers, weights, self.tables, xp, self.tp)


class Model(nn.Module):
    """``Model(config)(batch) -> (G,)`` for a scalar target, ``(G, 3, ..., 3)`` for a tensor target."""

    def __init__(self, config: TFNConfig) -> None:
        super().__init__()
        self.config = config
        self.net = core.network_tables(config, _wigner_3j)
        self.embedding = xp.Parameters({"weight": config.embedding_shape})  # row Z (or element table x it): unit-variance 0e inputs
        self.density = xp.Parameters({"weight": (config.density_basis, config.embed_dim)}) if config.density_basis else None
        self.layers = nn.ModuleList(Interaction(lp, config) for lp in self.net.plan.layers)
        self.readout = Interaction(self.net.plan.readout, config)
        # built once here, not per call: torch.compile then traces no e3nn Irreps bookkeeping
        self.spherical_harmonics = _constants_only(o3.SphericalHarmonics(list(self.net.sh_ls), True, "component"))
        # the polarisable read-out's per-element reference (last, as in state_layout), zero at the start
        self.dipole = xp.Parameters({"alpha": (N_SPECIES,)}, zeros=True) if config.uses_dipole else None

    def node_outputs(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(N, dim of ``config.output_irreps``): per-atom read-out irreps before pooling."""
        density = self.density.weight if self.density is not None else None
        return core.node_outputs(batch, self.embedding.weight, [*self.layers, self.readout], self.net, xp, self.spherical_harmonics,
                                 density)

    def graph_irreps(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(G, dim of ``config.output_irreps``): pooled read-out irreps (before the Cartesian map)."""
        return core.pool(self.node_outputs(batch), batch, self.net, xp)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self.config.uses_dipole:  # the largest crystal's atom count: the smallest per-crystal solve
            max_atoms = int(batch["n_nodes"].max()) if batch["n_nodes"].numel() else 1
            return core.dipole_head(self.node_outputs(batch), batch, self.dipole.alpha, self.net, xp, max_atoms)
        return core.head(self.graph_irreps(batch), self.net, xp)
