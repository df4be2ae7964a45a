"""Model math written once for both backends: functions of arrays and injected parameters.

Every function here takes the array namespace of its inputs (``xp``: numpy, torch or jax.numpy, or a
``zoo.backend`` ops module for what the array API lacks, such as segment sums) and its parameters as
arrays; the torch ``nn.Module`` and the flax module of a family only declare the parameters and call
these functions (e3nn-jax's ``linear_vanilla`` + thin framework adapters). Imports numpy only.
"""
from .functional import gaussian_expansion, masked_segment_mean
from .losses import class_logit, per_graph_loss
from .norm import RunningStats, masked_batch_norm
from .radial import bessel_basis, gaussian_basis, polynomial_envelope

__all__ = [
    "RunningStats", "bessel_basis", "class_logit", "gaussian_basis", "gaussian_expansion", "masked_batch_norm",
    "masked_segment_mean", "per_graph_loss", "polynomial_envelope",
]
