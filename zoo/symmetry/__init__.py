"""Crystal symmetry: point-group operations in Cartesian coordinates, tensor symmetrisation."""
from .pointgroup import cartesian_point_group, crystal_system, symmetrize_tensor, rotate_tensor

__all__ = ["cartesian_point_group", "crystal_system", "symmetrize_tensor", "rotate_tensor"]
