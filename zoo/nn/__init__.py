"""Model math written once for both backends: functions of arrays and injected parameters.

Every function here takes the array namespace of its inputs (``xp``: numpy, torch or jax.numpy, or a
``zoo.backend`` ops module for what the array API lacks, such as segment sums) and its parameters as
arrays; the torch ``nn.Module`` and the flax module of a family only declare the parameters and call
these functions (e3nn-jax's ``linear_vanilla`` + thin framework adapters). Imports numpy only.
"""
from .functional import gaussian_expansion

__all__ = ["gaussian_expansion"]
