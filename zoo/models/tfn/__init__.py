"""Periodic tensor field network (e3nn gated point convolutions) in PyTorch (e3nn) and JAX (e3nn-jax).

``config.py`` holds ``TFNConfig`` and the weight format, ``irreps.py`` the network plan (irreps of every
layer), ``core.py`` the math, written once for both backends; ``torch.py`` and ``jax.py`` are thin
adapters that declare the parameters under the same names and supply their library's spherical
harmonics and Wigner symbols, so ``zoo.models.tfn.torch.Model`` and ``zoo.models.tfn.jax.Model`` are the
same function of the same weights (the torch ``state_dict``).
"""
from .config import TFNConfig, estimate_avg_num_neighbors, n_parameters, state_layout

__all__ = ["TFNConfig", "estimate_avg_num_neighbors", "n_parameters", "state_layout"]
