"""JAX (flax.linen) adapter of the tensor field network (the math is ``core.py``, shared with ``torch.py``).

The modules here declare the parameters under the weight file's names and shapes
(``params/layers_0/lin1/weight`` is torch's ``layers.0.lin1.weight``), so ``zoo.backend.params``
converts weights by renaming alone, and pass e3nn-jax's pieces to the core: real spherical
harmonics, Clebsch–Gordan (Wigner-3j) symbols and, for ``tp_impl="e3nn"``, the legacy
``FunctionalTensorProduct`` with the settings that reproduce e3nn torch exactly
(``irrep_normalization="component"``, ``path_normalization="element"``, ``gradient_normalization="path"``:
N(0,1) weights with the path weight applied in the forward pass, e3nn torch's only mode).
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache, partial

import e3nn_jax as ej
import flax.linen as nn
import jax
import numpy as np
from e3nn_jax.legacy import FunctionalTensorProduct

from zoo.backend import jax as xp

from . import core
from . import irreps as _ir
from .config import N_SPECIES, TFNConfig, layer_weight_shapes



def _wigner_3j(l1: int, l2: int, l3: int) -> np.ndarray:
    # e3nn-jax's table, so this backend needs only its own library (it equals e3nn's to 1e-13, tested)
    return np.asarray(ej.clebsch_gordan(l1, l2, l3), dtype=np.float64)


def spherical_harmonics(ls: tuple[int, ...], vec: jax.Array) -> jax.Array:
    """(E, 3) → (E, Σ 2l+1): e3nn-jax's real spherical harmonics Y^l(r̂), l in ``ls``, |Y^l|^2 = 2l+1."""
    irreps = ej.Irreps(_ir.format_irreps([(1, l, (-1) ** l) for l in ls]))  # Y^l of a polar vector: parity (-1)^l
    return ej.spherical_harmonics(irreps, vec, normalize=True, normalization="component").array


@lru_cache(maxsize=None)
def functional_tp(conv: _ir.ConvPlan) -> FunctionalTensorProduct:
    """e3nn-jax's "uvu" tensor product of ``conv``, irreps in our order (never sorted)."""
    ej_irreps = lambda irreps: ej.Irreps(_ir.format_irreps(irreps))  # noqa: E731
    return FunctionalTensorProduct(ej_irreps(conv.irreps_in), ej_irreps(conv.irreps_sh), ej_irreps(conv.irreps_mid),
                                   [tuple(i) for i in conv.instructions], irrep_normalization="component",
                                   path_normalization="element", gradient_normalization="path")


def library_tp(conv: _ir.ConvPlan) -> core.LibraryTP:
    """The reference kernel's per-edge messages: ``functional_tp(conv)`` on (x of each edge's sender, Y,
    per-edge weights in e3nn's layout), vectorised over the edges."""
    tp = functional_tp(conv)

    def one_edge(w, x, sh):
        return tp.left_right(w, ej.IrrepsArray(tp.irreps_in1, x), ej.IrrepsArray(tp.irreps_in2, sh)).array

    return lambda x, sh, w: jax.vmap(one_edge)(w, x, sh)


class Interaction(nn.Module):
    """One gated point convolution (or the read-out convolution): ``core.interaction`` with this
    layer's parameters (``lin1``, ``radial``, ``lin2``, ``sc``)."""

    plan: _ir.LayerPlan
    config: TFNConfig

    @nn.compact
    def __call__(self, x, edge_attr, edge_basis, senders, receivers) -> jax.Array:
        t = core.layer_tables(self.plan, self.config, _wigner_3j)
        shapes = layer_weight_shapes(self.config, self.plan)
        weights = {module: xp.Parameters(tuple(params.items()), name=module)(x.dtype) for module, params in shapes.items()}
        tp = library_tp(self.plan.conv) if t.conv is None else None
        return core.interaction(x, edge_attr, edge_basis, senders, receivers, weights, t, xp, tp)


class Model(nn.Module):
    """``Model(config).apply(variables, batch, train=...) -> (G,)`` or ``(G, 3, ..., 3)``."""

    config: TFNConfig

    def setup(self) -> None:
        self.net = core.network_tables(self.config, _wigner_3j)
        self.embedding = xp.Parameters((("weight", self.config.embedding_shape),))
        if self.config.density_basis:
            self.density = xp.Parameters((("weight", (self.config.density_basis, self.config.embed_dim)),))
        self.layers = [Interaction(lp, self.config) for lp in self.net.plan.layers]
        self.readout = Interaction(self.net.plan.readout, self.config)
        if self.config.uses_dipole:  # the polarisable read-out's per-element reference, zero at the start
            self.dipole = xp.Parameters((("alpha", (N_SPECIES,)),), zeros=True)

    def node_outputs(self, batch: Mapping[str, jax.Array]) -> jax.Array:
        embedding = self.embedding(batch["positions"].dtype)["weight"]
        density = self.density(batch["positions"].dtype)["weight"] if self.config.density_basis else None
        sh = partial(spherical_harmonics, self.net.sh_ls)
        return core.node_outputs(batch, embedding, [*self.layers, self.readout], self.net, xp, sh, density)

    def graph_irreps(self, batch: Mapping[str, jax.Array]) -> jax.Array:
        return core.pool(self.node_outputs(batch), batch, self.net, xp)

    def __call__(self, batch: Mapping[str, jax.Array], train: bool = False) -> jax.Array:
        del train  # no dropout / batch norm
        if self.config.uses_dipole:  # per-crystal solves sized by the (static) number of dipole pairs
            element_alpha = self.dipole(batch["positions"].dtype)["alpha"]
            return core.dipole_head(self.node_outputs(batch), batch, element_alpha, self.net, xp)
        return core.head(self.graph_irreps(batch), self.net, xp)
