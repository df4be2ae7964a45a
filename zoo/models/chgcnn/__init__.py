"""CHGCNN (Heilman, Gong & Yan, arXiv 2411.12616): the crystal hypergraph convolution once (``core``), as array
math over injected parameters, and two thin adapters that own the parameters, PyTorch (``torch``) and Flax
linen (``jax``). The hypergraph itself (triplets, motifs) is data: ``zoo.graphs.hyper``.

Importing this package imports neither backend; it registers the family in ``zoo.models``.
"""
from .config import CHGCNNConfig

__all__ = ["CHGCNNConfig"]
