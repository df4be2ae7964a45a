"""Periodic crystal graphs (numpy), shared by every model and both backends."""
from .graph import ARRAY_FIELDS, GRAPH_FORMAT_VERSION, CrystalGraph
from .batch import FIELDS, Batch, BucketPolicy, Field, bucket_size, collate, pad_batch, register_field
from .structures import StructureError, to_structure
from .neighbors import neighbor_list
from .features import cgcnn_atom_features, original_cgcnn_atom_features
from .builder import GraphSpec, build_graph, build_graphs, register_featurizer
from .cache import structure_hash
from .hyper import HyperGraph, HyperSpec  # registers the "hyper" featuriser and the hypergraph's batch fields
from .dipole import DipoleGraph  # registers the "dipole" featuriser and its pair set

__all__ = [
    "ARRAY_FIELDS",
    "GRAPH_FORMAT_VERSION",
    "CrystalGraph",
    "Batch",
    "BucketPolicy",
    "FIELDS",
    "Field",
    "register_field",
    "bucket_size",
    "collate",
    "pad_batch",
    "StructureError",
    "to_structure",
    "neighbor_list",
    "cgcnn_atom_features",
    "original_cgcnn_atom_features",
    "GraphSpec",
    "build_graph",
    "build_graphs",
    "register_featurizer",
    "HyperGraph",
    "HyperSpec",
    "DipoleGraph",
    "structure_hash",
]
