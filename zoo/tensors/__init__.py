"""Cartesian property tensors: index symmetry (e3nn formulas), Voigt notation, O(3)-irreducible bases.

Physics shared by the tasks (targets, metrics, floors) and the models (tensor read-outs): one home, so
a task and a model can never disagree about what ``"ijk=ikj"`` means or which basis maps irreps to
Cartesian components. Conventions: full Cartesian arrays ``(3,)*rank`` in the frame of their own
structure; Voigt order xx, yy, zz, yz, xz, xy; irreps in e3nn's order and parity convention.
"""
from .basis import (
    canonical_change_of_basis,
    cartesian_basis,
    change_of_basis,
    e3nn_jax_alignment,
    e3nn_jax_basis,
    from_irreps,
    irreps_slices,
    isotropic_part,
    to_irreps,
)
from .formula import (
    FORMULAS,
    IRREPS,
    cartesian_irreps,
    default_formula,
    index_projector,
    independent_components,
    independent_flat_indices,
    irreps,
    irreps_string,
    obeys_formula,
    parse_formula,
    rank_of,
    symmetrize_indices,
)
from .spectral import cm_inverse, cm_map, spd_log, sym_exp
from .voigt import VOIGT_KINDS, VOIGT_PAIRS, from_voigt, to_voigt

__all__ = [
    "FORMULAS", "IRREPS", "VOIGT_KINDS", "VOIGT_PAIRS", "canonical_change_of_basis", "cartesian_basis", "cartesian_irreps",
    "change_of_basis", "default_formula", "e3nn_jax_alignment", "e3nn_jax_basis", "from_irreps", "from_voigt",
    "index_projector", "independent_components", "independent_flat_indices", "irreps", "irreps_slices", "irreps_string", "isotropic_part",
    "cm_inverse", "cm_map", "obeys_formula", "parse_formula", "rank_of", "spd_log", "sym_exp", "symmetrize_indices", "to_irreps", "to_voigt",
]
