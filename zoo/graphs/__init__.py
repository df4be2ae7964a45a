"""Periodic crystal graphs (numpy), shared by every model and both backends."""
from .graph import ARRAY_FIELDS, GRAPH_FORMAT_VERSION, CrystalGraph
from .batch import bucket_size, collate, pad_batch

__all__ = ["ARRAY_FIELDS", "GRAPH_FORMAT_VERSION", "CrystalGraph", "bucket_size", "collate", "pad_batch"]
