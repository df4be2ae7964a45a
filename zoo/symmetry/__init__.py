"""Crystal symmetry: point-group operations in Cartesian coordinates, tensor symmetrisation."""
from .pointgroup import cartesian_point_group, rotate_tensor, symmetrize_tensor

__all__ = ["cartesian_point_group", "rotate_tensor", "symmetrize_tensor"]
