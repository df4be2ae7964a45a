"""Point-group equivariant networks (``pgnet``): features indexed by irreps of O_h and D_6h.

``config.py`` (the hyper-parameters, the standard frame, the weight layout), ``plan.py`` (feature
chunks, subduced edge filters, Dirl coupling paths, gates of one holohedry), ``core.py`` (the math,
written once, on ``zoo.nn.equivariant``'s kernels), ``torch.py`` and ``jax.py`` (parameters only).
"""
from .config import PGNetConfig, n_parameters, state_layout

__all__ = ["PGNetConfig", "n_parameters", "state_layout"]
