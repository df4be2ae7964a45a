"""JAX / Flax-linen + optax adapter of the training loop (mirrors ``zoo.training.torch``).

- **Batches** are padded by ``zoo.graphs.BucketPolicy`` (every index set rounded up to a few bucket
  sizes, already compiled shapes reused, ``n_graphs = batch_size + 1``), so ``jax.jit`` compiles a
  handful of times per run; with ``TrainConfig.jax_padding="fixed"`` by ``FixedPolicy`` (one shape
  for every batch: short runs, ``zoo bench``). The adapter counts the traces (``compilations``) and
  the loop logs how many happen in each epoch. The learning rate is an ``optax.inject_hyperparams`` argument, so the
  schedule never recompiles.
- **float64** is switched on only around the adapter's own work (``jax.enable_x64`` as a context,
  which is thread-local): the process-wide ``jax_enable_x64`` flag that other code sees is left alone.
- **Weights** cross as torch ``state_dict``s through ``zoo.backend.params``: the family's flax module
  declares its parameters under the torch names and shapes, so conversion is renaming only.
- **Loss**: ``zoo.nn.losses``'s, the same function the torch adapter differentiates.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from zoo.backend import jax as xp  # array ops of zoo.nn's backend-neutral math
from zoo.backend.params import flax_from_torch, torch_from_flax
from zoo.graphs import BucketPolicy, collate
from zoo.graphs.batch import FixedPolicy
from zoo.models import build
from zoo.nn.losses import class_logit, per_graph_loss

from .adapter import Adapter
from .config import TrainConfig


def _cast_floats(tree, dtype):
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else jnp.asarray(x), tree)


def _in_precision(method):
    """Run an adapter method with float64 enabled when the run is float64 (see the module docstring)."""

    @functools.wraps(method)
    def scoped(self, *args, **kwargs):
        with jax.enable_x64(True) if self.config.dtype == "float64" else contextlib.nullcontext():
            return method(self, *args, **kwargs)

    return scoped


def _state_shapes(tree) -> dict[str, tuple[int, ...]]:
    """``{path: shape}`` of a pytree of shaped values (the names matter only for messages)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): tuple(leaf.shape) for path, leaf in leaves}


class JaxAdapter(Adapter):
    backend = "jax"

    def __init__(self, model_name: str, model_config, config: TrainConfig, loss: str):
        self.model_name, self.model_config, self.config, self.loss = model_name, model_config, config, loss
        self.dtype = jnp.float64 if config.dtype == "float64" else jnp.float32
        # One spare graph slot: the last graph of every padded batch is padding, whatever the batch.
        policy = FixedPolicy if config.jax_padding == "fixed" else BucketPolicy
        self.padding = policy(n_graphs=config.batch_size + 1)
        self.compilations = 0
        self.key = jax.random.PRNGKey(config.seed)
        self._step = 0
        self.module = None
        self.params = None
        self.batch_stats = None
        self.opt_state = None

    # -- construction
    def _make_tx(self):
        c = self.config

        def make(learning_rate):
            parts = []
            if c.grad_clip > 0:
                parts.append(optax.clip_by_global_norm(c.grad_clip))
            if c.optimizer == "adamw":
                parts.append(optax.adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=c.weight_decay))
            else:  # torch Adam: L2 term added to the gradient before the moments
                if c.weight_decay:
                    parts.append(optax.add_decayed_weights(c.weight_decay))
                parts.append(optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8))
            return optax.chain(*parts)

        return optax.inject_hyperparams(make)(learning_rate=c.lr)

    @_in_precision
    def init(self, example: Sequence, check=None) -> None:
        self.module = build(self.model_name, "jax", self.model_config)
        init_key, _ = jax.random.split(self.key)
        batch, _ = self.make_batch(example, None)
        # Jitted: run eagerly, init compiles every primitive separately (seconds for a small model).
        # Lowered first: its output shapes are the parameter shapes, known before anything is allocated.
        rngs = {"params": init_key, "dropout": init_key}
        lowered = jax.jit(lambda rngs, b: self.module.init(rngs, b, train=False)).lower(rngs, batch)
        if check is not None:
            check(_state_shapes(lowered.out_info))
        variables = lowered.compile()(rngs, batch)
        variables = _cast_floats(jax.device_get(variables), self.dtype)
        self.params = variables["params"]
        self.batch_stats = variables.get("batch_stats", {})
        self.tx = self._make_tx()
        self.opt_state = self.tx.init(self.params)
        self._build_steps()

    def _build_steps(self) -> None:
        module, tx, kind = self.module, self.tx, self.loss
        has_stats = bool(jax.tree_util.tree_leaves(self.batch_stats))

        def variables(params, batch_stats):
            return {"params": params, "batch_stats": batch_stats} if has_stats else {"params": params}

        def train_step(params, batch_stats, opt_state, batch, lr, key):
            self.compilations += 1  # runs only while tracing: one count per compilation

            def loss_fn(p):
                out, updates = module.apply(variables(p, batch_stats), batch, train=True, mutable=["batch_stats"], rngs={"dropout": key})
                per = per_graph_loss(kind, out, batch["y"], xp=xp)
                mask = batch["graph_mask"].astype(per.dtype)
                total = jnp.sum(per * mask)
                return total / jnp.maximum(mask.sum(), 1), (total, updates)

            (_, (total, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            hyper = dict(opt_state.hyperparams, learning_rate=jnp.asarray(lr, dtype=opt_state.hyperparams["learning_rate"].dtype))
            opt_state = opt_state._replace(hyperparams=hyper)
            upd, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, upd)
            new_stats = updates.get("batch_stats", batch_stats) if has_stats else batch_stats
            return params, new_stats, opt_state, total

        def predict_step(params, batch_stats, batch):
            self.compilations += 1
            out = module.apply(variables(params, batch_stats), batch, train=False)
            return class_logit(out) if kind == "bce" else out

        # Donating the old parameters / optimiser state saves accelerator memory; the CPU backend
        # cannot use donated buffers (and warns), so donate only elsewhere.
        donate = (0, 1, 2) if jax.default_backend() != "cpu" else ()
        self._train = jax.jit(train_step, donate_argnums=donate)
        self._predict = jax.jit(predict_step)

    # -- batches and steps
    @_in_precision
    def make_batch(self, graphs: Sequence, y: np.ndarray | None):
        padded = self.padding.pad(collate(graphs, y))
        return xp.to_jax(padded, dtype=self.dtype), len(graphs)

    def batch_arrays(self, batch):
        return batch[0]  # (padded arrays, number of real graphs)

    @_in_precision
    def call(self, fn, *args):
        return fn(*args)

    @_in_precision
    def train_step(self, batch, lr: float) -> float:
        arrays, _ = batch
        key = jax.random.fold_in(self.key, self._step)
        self._step += 1
        self.params, self.batch_stats, self.opt_state, total = self._train(self.params, self.batch_stats, self.opt_state, arrays, lr, key)
        return float(total)

    @_in_precision
    def predict(self, batch) -> np.ndarray:
        arrays, n = batch
        out = self._predict(self.params, self.batch_stats, arrays)
        return np.asarray(out, dtype=np.float64)[:n]

    # -- state
    def _variables(self) -> dict[str, Any]:
        v = {"params": self.params}
        if jax.tree_util.tree_leaves(self.batch_stats):
            v["batch_stats"] = self.batch_stats
        return jax.device_get(v)

    @_in_precision
    def state_dict(self) -> dict[str, np.ndarray]:
        return torch_from_flax(self._variables())

    @_in_precision
    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        # Shaped and typed like the initialised tree (e.g. int32 counters), so jit does not recompile.
        like = {"params": self.params, "batch_stats": self.batch_stats}
        new = flax_from_torch(state, like=like, what=f"{self.model_name} weights")
        self.params = jax.tree_util.tree_map(jnp.asarray, new["params"])
        self.batch_stats = jax.tree_util.tree_map(jnp.asarray, new["batch_stats"])

    @_in_precision
    def optimizer_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        leaves, _ = jax.tree_util.tree_flatten_with_path(jax.device_get(self.opt_state))
        arrays = {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}
        return arrays, {"kind": f"optax.{self.config.optimizer}", "step": self._step}

    @_in_precision
    def load_optimizer_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        if meta.get("kind") != f"optax.{self.config.optimizer}":
            raise ValueError(f"checkpoint optimiser is {meta.get('kind')}, this run uses optax.{self.config.optimizer}")
        leaves, treedef = jax.tree_util.tree_flatten_with_path(self.opt_state)
        keys = [jax.tree_util.keystr(p) for p, _ in leaves]
        missing = sorted(set(keys) - set(arrays))
        if missing or len(keys) != len(arrays):
            raise ValueError(f"optimiser state in the checkpoint does not fit this model (missing {missing[:4]})")
        new = []
        for k, (_, v) in zip(keys, leaves):
            ref = jnp.asarray(v)
            if np.size(arrays[k]) != ref.size:
                raise ValueError(f"optimiser state {k}: checkpoint shape {np.shape(arrays[k])}, model needs {ref.shape}")
            new.append(jnp.asarray(np.asarray(arrays[k]).reshape(ref.shape), dtype=ref.dtype))
        self.opt_state = jax.tree_util.tree_unflatten(treedef, new)
        self._step = int(meta.get("step", 0))

    def rng_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"jax_key": np.asarray(jax.random.key_data(self.key))}, {
            "jax": f"PRNGKey({self.config.seed}); dropout key of step s = fold_in(key, s)", "step": self._step}

    def load_rng_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self._step = int(meta.get("step", self._step))

    def memory_limit(self) -> int:
        dev = jax.devices()[0]
        if dev.platform != "cpu":  # an accelerator's own memory, where jax reports it
            limit = (dev.memory_stats() or {}).get("bytes_limit")
            if limit:
                return int(limit)
        return super().memory_limit()

    def device(self) -> str:
        d = jax.devices()[0]
        return f"{d.platform}:{getattr(d, 'device_kind', '')} (jax {jax.__version__})"
