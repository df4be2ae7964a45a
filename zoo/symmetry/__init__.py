"""Crystal symmetry: point-group operations in Cartesian coordinates, tensor symmetrisation."""
from .crystal import cartesian_point_group, point_group_ops
from .neumann import (
    group_by_ops,
    kron_power,
    neumann_operator,
    ops_key,
    rotate_tensor,
    symmetrize_batch,
    symmetrize_tensor,
    symmetry_violation,
)

__all__ = [
    "cartesian_point_group",
    "group_by_ops",
    "kron_power",
    "neumann_operator",
    "ops_key",
    "point_group_ops",
    "rotate_tensor",
    "symmetrize_batch",
    "symmetrize_tensor",
    "symmetry_violation",
]
