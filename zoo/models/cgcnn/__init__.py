"""CGCNN (Xie & Grossman 2018) in PyTorch (``zoo.models.cgcnn.torch``) and Flax linen (``zoo.models.cgcnn.jax``).

Importing this package imports neither backend; it registers the family in ``zoo.models``.
"""
from .config import CGCNNConfig

__all__ = ["CGCNNConfig"]
