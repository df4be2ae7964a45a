"""Crystal symmetry: point-group operations in Cartesian coordinates, tensor symmetrisation, and the
32 crystallographic point groups with their real irreps (``zoo.symmetry.groups``)."""
from .crystal import cartesian_point_group, point_group_ops
from .groups import POINT_GROUPS, PointGroup, point_group
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
    "POINT_GROUPS",
    "PointGroup",
    "cartesian_point_group",
    "group_by_ops",
    "kron_power",
    "neumann_operator",
    "ops_key",
    "point_group",
    "point_group_ops",
    "rotate_tensor",
    "symmetrize_batch",
    "symmetrize_tensor",
    "symmetry_violation",
]
