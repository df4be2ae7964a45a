"""CHGCNN in Flax linen: the parameters as flax variables; the math is ``zoo.models.chgcnn.core``.

Every parameter is declared under its torch name and torch shape (``convs_0`` / ``bond`` / ``fc_full`` /
``weight`` is torch's ``convs.0.bond.fc_full.weight``), trainable ones in ``"params"``, batch-norm buffers
in ``"batch_stats"``, so weights convert by renaming alone (``zoo.backend.params``). The parameter holders
are CGCNN's (torch's initialisation of ``Linear``, ``BatchNorm1d``, ``Embedding``). Every size comes from
an array shape, so a padded batch compiles once per bucket.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import numpy as np

from zoo.backend import jax as xp
from zoo.models.cgcnn.jax import BatchNorm, Embedding, Linear
from zoo.nn.hyper import combined_width

from . import core
from .config import TABLE_ROWS, CHGCNNConfig, state_layout


@functools.lru_cache(maxsize=4)
def _atom_table(config: CHGCNNConfig) -> np.ndarray:
    table = config.atom_table()
    table.setflags(write=False)
    return table


class Term(nn.Module):
    """The parameters of one term of a layer (torch's ``convs.k.<order>[_rel]``)."""

    atom_fea_len: int
    n_in: int
    attention: bool

    def setup(self):
        A = self.atom_fea_len
        self.fc_full = Linear(self.n_in, 2 * A)
        self.bn1 = BatchNorm(2 * A)  # over incidences
        self.bn2 = BatchNorm(A)  # over atoms
        if self.attention:
            self.query = self.param("query", nn.initializers.normal(1.0 / np.sqrt(A)), (A,))


class Layer(nn.Module):
    """One layer (torch's ``convs.k``): a ``Term`` per hyperedge order, named as in torch."""

    terms: tuple[tuple[str, int, bool], ...]  # (name, n_in, attention)
    atom_fea_len: int

    def setup(self):
        for name, n_in, attention in self.terms:
            setattr(self, name, Term(self.atom_fea_len, n_in, attention))


class CHGCNN(nn.Module):
    """``CHGCNN(config).apply(variables, batch, train=...)`` -> (G,) or (G, 2) log-probabilities."""

    config: CHGCNNConfig = CHGCNNConfig()

    def setup(self):
        cfg = self.config
        A, H = cfg.atom_fea_len, cfg.h_fea_len
        if cfg.atom_features == "embedding":
            self.atom_embedding = Embedding(TABLE_ROWS, cfg.orig_atom_fea_len)
        self.embedding = Linear(cfg.orig_atom_fea_len, A)
        layers = []
        for k in range(len(cfg.layers)):
            terms = []
            for order, rel in cfg.terms(k):
                width = A if rel else combined_width(A, cfg.aggregations, cfg.combine)
                terms.append((cfg.term_name(order, rel), A + cfg.hedge_fea_len(order) + width, not rel and cfg.combine == "attention"))
            layers.append(Layer(tuple(terms), A))
        self.convs = layers  # flax names them convs_0, convs_1, ...
        self.conv_to_fc = Linear(A, H)
        self.fcs = [Linear(H, H) for _ in range(cfg.n_h - 1)]
        self.fc_out = Linear(H, cfg.n_outputs)
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.density_basis:
            self.density = Linear(cfg.density_basis, A)

    def __call__(self, batch: dict[str, jax.Array], train: bool = False) -> jax.Array:
        cfg = self.config
        dtype = batch["distances"].dtype
        arrays = xp.named_state(self, state_layout(cfg))
        if cfg.atom_features == "embedding":
            arrays["atom_embedding.weight"] = arrays["atom_embedding.weight"].astype(dtype)
        else:
            arrays["atom_table"] = xp.const(_atom_table(cfg), like=batch["distances"])
        out, updates = core.forward(arrays, batch, cfg, train=train, xp=xp,
                                    dropout=functools.partial(self.dropout, deterministic=not train))
        xp.set_named_state(self, updates)
        return out
