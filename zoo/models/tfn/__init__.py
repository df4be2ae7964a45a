"""Periodic tensor field network (e3nn gated point convolutions) in PyTorch (e3nn) and JAX (e3nn-jax).

``TFNConfig`` is backend-free; ``zoo.models.tfn.torch.Model`` and ``zoo.models.tfn.jax.Model`` are the
two implementations of the same function, sharing one weight format (the torch ``state_dict``).
"""
from .config import TFNConfig, estimate_avg_num_neighbors, n_parameters, state_layout

__all__ = ["TFNConfig", "estimate_avg_num_neighbors", "n_parameters", "state_layout"]
