"""The ``dipole`` graph featuriser: every crystal's periodic dipole interaction tensor, for a polarisable read-out.

A model whose read-out places a point polarisability α_i on every atom (``TFNConfig.readout="dipole"``)
needs the field at atom i from a unit dipole on atom j and on all of j's periodic images: the k = 0,
tin-foil Ewald sum ``zoo.graphs.ewald.dipole_tensor`` (Å^-3), undamped. It depends on the geometry
only, so it is computed here once per structure, in numpy, and travels in the batch as one more index
set, ``dipole_pair``: every ordered pair (i, j) of atoms of a crystal, i = j included (the images of an
atom polarise it too), n^2 pairs for n atoms, in row-major order (i slow, j fast):

=================  ==========  ====================================================================
key                shape       meaning
=================  ==========  ====================================================================
dipole_i           (P,)        atom i (field point)
dipole_j           (P,)        atom j (source dipole and its images)
dipole_T           (P, 3, 3)   T_ij in Å^-3, Cartesian axes of the graph; T_ji = T_ij^T
=================  ==========  ====================================================================

Thole's damping depends on the polarisabilities, which the model learns, so it is not summed here; the
model adds it (``zoo.nn.dipole``) on a second set, ``dipole_near``: every pair (i, j, image) closer than
``DAMPING_RADIUS`` (8 Å), whatever the network's own radius:

=================  ==========  ====================================================================
dipole_near_i      (Q,)        atom i
dipole_near_j      (Q,)        atom j (an image of it: j = i for an atom's own images)
dipole_near_vec    (Q, 3)      Å, r_j + R - r_i
=================  ==========  ====================================================================

Why a set of its own: Thole's linear damping reaches to u = a (α_i α_j)^{1/6}, 6.7 Å for two Cs atoms; with
the damping cut at a 5 Å graph radius, 13 of the 145 validation crystals of embedded_dielectric fold 0 that
have a graph come out wrong with the exact polarisabilities (Fnorm up to 411, near-catastrophic); with this
set, none (the largest error 1e-10, benchmarks/dipole_oracle.py). The read-out bounds α so that 8 Å covers
every damped pair (``zoo.nn.dipole.alpha_max``).
Both tensors rotate with the crystal (T_ij -> R T_ij R^T, r -> R r), which keeps the read-out equivariant.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .batch import Field, register_field
from .builder import GraphSpec, register_featurizer
from .ewald import dipole_tensor, pair_vectors
from .graph import CrystalGraph

NAME = "dipole"
# Ewald tails below this (relative): far below float32 round-off, a third of the default's terms.
ACCURACY = 1e-12
DAMPING_RADIUS = 8.0  # Å, the reach of the dipole_near set

register_field("dipole_i", Field("dipole_pair", "int", points_to="node"))
register_field("dipole_j", Field("dipole_pair", "int", points_to="node"))
register_field("dipole_T", Field("dipole_pair", "float"))
register_field("dipole_near_i", Field("dipole_near", "int", points_to="node"))
register_field("dipole_near_j", Field("dipole_near", "int", points_to="node"))
register_field("dipole_near_vec", Field("dipole_near", "float", fill="unit_x"))


@dataclass
class DipoleGraph(CrystalGraph):
    """A crystal graph with the ``dipole_pair`` index set (module docstring) in ``dipole``."""

    dipole: dict[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        return {**super().arrays(), **self.dipole}

    @classmethod
    def of(cls, graph: CrystalGraph, dipole: dict[str, np.ndarray]) -> "DipoleGraph":
        return cls(**graph.fields_copy(), dipole=dipole)


def dipole_pairs(graph: CrystalGraph) -> dict[str, np.ndarray]:
    """The ``dipole_pair`` arrays of one graph (module docstring)."""
    n = graph.n_nodes
    lattice = np.asarray(graph.lattice, dtype=np.float64)
    frac = np.asarray(graph.positions, dtype=np.float64) @ np.linalg.inv(lattice)
    T = dipole_tensor(lattice, frac, damping=None, accuracy=ACCURACY).reshape(n, 3, n, 3)
    idx = np.arange(n, dtype=np.int64)
    ni, nj, vec = pair_vectors(frac, lattice, DAMPING_RADIUS)
    return {
        "dipole_i": np.repeat(idx, n),
        "dipole_j": np.tile(idx, n),
        "dipole_T": np.ascontiguousarray(T.transpose(0, 2, 1, 3).reshape(n * n, 3, 3)),
        "dipole_near_i": ni.astype(np.int64),
        "dipole_near_j": nj.astype(np.int64),
        "dipole_near_vec": np.ascontiguousarray(vec, dtype=np.float64),
    }


def featurize(graphs: list, failures: dict[str, str], spec: GraphSpec, *, ids: Sequence[str], cache: bool | str = True,
              progress: bool = True, on_error: str = "raise") -> tuple[list, dict[str, str]]:
    """The ``dipole`` featuriser (``zoo.graphs.register_featurizer``): plain graphs -> ``DipoleGraph``s.

    Not cached: the sum costs milliseconds per crystal of ~10 atoms (the plain graphs are cached as usual)."""
    from tqdm.auto import tqdm

    if spec.featurizer != NAME:
        raise ValueError(f"the dipole featuriser takes no options: GraphSpec.featurizer={spec.featurizer!r}, use {NAME!r}")
    out: list = [None] * len(graphs)
    for k, g in enumerate(tqdm(graphs, desc="dipole sums", disable=not progress)):
        if g is None:
            continue
        d = DipoleGraph.of(g, dipole_pairs(g))
        d.meta.update(spec.meta())
        out[k] = d
    return out, dict(failures)


register_featurizer(NAME, featurize)
