"""CGCNN in Flax linen: the parameters as flax variables; the math is ``zoo.models.cgcnn.core``.

The modules mirror ``zoo.models.cgcnn.torch`` and declare every parameter under its torch name and
torch shape (a Linear's ``weight`` is (out, in) here too; ``convs_0`` is flax's name for torch's
``convs.0``), trainable ones in ``"params"`` and the batch-norm buffers (``running_mean``,
``running_var``, ``num_batches_tracked``) in ``"batch_stats"``. So the weights convert by renaming
alone, with the generic ``zoo.backend.params.flax_from_torch(state, like=variables)`` /
``torch_from_flax(variables)``.

Jit-friendly: every size (atoms, edges, graphs) comes from an array shape, so a padded batch compiles
once per bucket. Train mode: ``apply(variables, batch, train=True, mutable=["batch_stats"])`` (and
``rngs={"dropout": key}`` for classification).
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo.backend import jax as xp

from . import core
from .config import TABLE_ROWS, CGCNNConfig, state_layout


@functools.lru_cache(maxsize=4)
def _atom_table(config: CGCNNConfig) -> np.ndarray:
    table = config.atom_table()
    table.setflags(write=False)
    return table


class Linear(nn.Module):
    """torch's ``nn.Linear`` parameters: ``weight`` (out, in) and ``bias``, initialised as torch does,
    U(-1/sqrt(in), 1/sqrt(in)) for both."""

    n_in: int
    n_out: int

    def setup(self):
        bound = 1.0 / np.sqrt(self.n_in)

        def uniform(key, shape):
            return jax.random.uniform(key, shape, jnp.float32, -bound, bound)

        # Drawn in flax's (in, out) kernel layout and transposed: for a given seed, the same initial
        # weights as the earlier flax model that stored kernels (in, out), so its runs reproduce.
        self.weight = self.param("weight", lambda key: uniform(key, (self.n_in, self.n_out)).T)
        self.bias = self.param("bias", lambda key: uniform(key, (self.n_out,)))


class Embedding(nn.Module):
    """torch's ``nn.Embedding`` parameter ``weight`` (rows, features), N(0, 1) as torch initialises it."""

    rows: int
    features: int

    def setup(self):
        self.weight = self.param("weight", nn.initializers.normal(1.0), (self.rows, self.features))


class BatchNorm(nn.Module):
    """torch's ``nn.BatchNorm1d`` parameters and buffers under torch's names; the math is ``zoo.nn.norm``."""

    features: int

    def setup(self):
        f = self.features
        self.weight = self.param("weight", nn.initializers.ones, (f,))
        self.bias = self.param("bias", nn.initializers.zeros, (f,))
        self.running_mean = self.variable("batch_stats", "running_mean", jnp.zeros, (f,), jnp.float32)
        self.running_var = self.variable("batch_stats", "running_var", jnp.ones, (f,), jnp.float32)
        # A count; int64 in torch, int32 in jax without x64 (the converter writes int64 weight files).
        self.num_batches_tracked = self.variable("batch_stats", "num_batches_tracked", jnp.zeros, (), jnp.int32)


class ConvLayer(nn.Module):
    """The parameters of one convolution (torch's ``convs.k``)."""

    atom_fea_len: int
    nbr_fea_len: int

    def setup(self):
        A = self.atom_fea_len
        self.fc_full = Linear(2 * A + self.nbr_fea_len, 2 * A)
        self.bn1 = BatchNorm(2 * A)  # over edges
        self.bn2 = BatchNorm(A)  # over atoms


class CGCNN(nn.Module):
    """``CGCNN(config).apply(variables, batch, train=...)`` -> (G,) or (G, 2) log-probabilities."""

    config: CGCNNConfig = CGCNNConfig()

    def setup(self):
        cfg = self.config
        A, H = cfg.atom_fea_len, cfg.h_fea_len
        if cfg.atom_features == "embedding":
            self.atom_embedding = Embedding(TABLE_ROWS, cfg.orig_atom_fea_len)
        self.embedding = Linear(cfg.orig_atom_fea_len, A)
        self.convs = [ConvLayer(A, cfg.nbr_fea_len) for _ in range(cfg.n_conv)]  # flax names them convs_0, ...
        self.conv_to_fc = Linear(A, H)
        self.fcs = [Linear(H, H) for _ in range(cfg.n_h - 1)]
        self.fc_out = Linear(H, cfg.n_outputs)
        self.dropout = nn.Dropout(cfg.dropout)  # no variables; core.forward applies it in classification only
        if cfg.density_basis:
            self.density = Linear(cfg.density_basis, A)

    def __call__(self, batch: dict[str, jax.Array], train: bool = False) -> jax.Array:
        cfg = self.config
        dtype = batch["distances"].dtype
        arrays = xp.named_state(self, state_layout(cfg))
        # The atom features in the batch's float dtype: the fixed table is a constant of the traced function.
        if cfg.atom_features == "embedding":
            arrays["atom_embedding.weight"] = arrays["atom_embedding.weight"].astype(dtype)
        else:
            arrays["atom_table"] = xp.const(_atom_table(cfg), like=batch["distances"])
        out, updates = core.forward(arrays, batch, cfg, train=train, xp=xp,
                                    dropout=functools.partial(self.dropout, deterministic=not train))
        xp.set_named_state(self, updates)
        return out
