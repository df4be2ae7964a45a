"""CGCNN (Xie & Grossman 2018): the forward pass once (``core``), as array math over injected parameters,
and two thin adapters that own those parameters, PyTorch (``torch``) and Flax linen (``jax``).

Importing this package imports neither backend; it registers the family in ``zoo.models``.
"""
from .config import CGCNNConfig

__all__ = ["CGCNNConfig"]
