"""JAX / Flax-linen + optax adapter of the training loop (mirrors ``zoo.training.torch``).

Batches are ``zoo.graphs.pad_batch`` dicts with node / edge counts rounded up to bucket sizes and a
fixed ``n_graphs = batch_size + 1``, so ``jax.jit`` compiles once per padded shape and train|eval (``_padded_sizes`` reuses covering shapes); the
adapter counts the traces (``compilations``) and the loop logs how many happen in each epoch.
The learning rate is an ``optax.inject_hyperparams`` argument, so the schedule never recompiles.
"""
from __future__ import annotations

import importlib
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from zoo.backend.jax import to_jax
from zoo.graphs import bucket_size, collate, pad_batch

from .loop import Adapter, TrainConfig


def class_logit(out: jax.Array) -> jax.Array:
    """Logit of the positive class from (G,) logits or (G, 2) log-probabilities (see the torch twin)."""
    if out.ndim == 2 and out.shape[-1] == 2:
        return out[:, 1] - out[:, 0]
    return out.reshape(out.shape[0])


def per_graph_loss(kind: str, out: jax.Array, y: jax.Array) -> jax.Array:
    if kind == "bce":
        z = class_logit(out)
        return jnp.logaddexp(0.0, z) - y * z  # = BCE with logits, stable for large |z|
    err = (out - y).reshape(out.shape[0], -1)
    return jnp.abs(err).mean(1) if kind == "l1" else (err * err).mean(1)


def _family_module(model_name: str):
    from zoo.models import get_family

    return importlib.import_module(get_family(model_name).backends["jax"].split(":")[0])


def _cast_floats(tree, dtype):
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else jnp.asarray(x), tree)


class JaxAdapter(Adapter):
    backend = "jax"

    def __init__(self, model_name: str, model_config, config: TrainConfig, loss: str):
        if config.dtype == "float64" and not jax.config.jax_enable_x64:
            jax.config.update("jax_enable_x64", True)
        self.model_name, self.model_config, self.config, self.loss = model_name, model_config, config, loss
        self.dtype = jnp.float64 if config.dtype == "float64" else jnp.float32
        self.n_graphs = config.batch_size + 1
        self.compilations = 0
        self._shapes: list[tuple[int, int]] = []  # padded (nodes, edges) compiled so far
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

    def init(self, example: Sequence) -> None:
        from zoo.models import build

        self.module = build(self.model_name, "jax", self.model_config)
        init_key, _ = jax.random.split(self.key)
        batch, _ = self.make_batch(example, None)
        # Jitted: run eagerly, init compiles every primitive separately (seconds for a small model).
        init = jax.jit(lambda rngs, b: self.module.init(rngs, b, train=False))
        variables = init({"params": init_key, "dropout": init_key}, batch)
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
                per = per_graph_loss(kind, out, batch["y"])
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
    def make_batch(self, graphs: Sequence, y: np.ndarray | None):
        if len(graphs) >= self.n_graphs:
            raise ValueError(f"{len(graphs)} graphs in a batch, but batches hold at most batch_size={self.n_graphs - 1}")
        batch = collate(graphs, y)
        n_nodes, n_edges = self._padded_sizes(batch["numbers"].shape[0], batch["senders"].shape[0])
        padded = pad_batch(batch, n_nodes=n_nodes, n_edges=n_edges, n_graphs=self.n_graphs)
        return to_jax(padded, dtype=self.dtype), len(graphs)

    def _padded_sizes(self, n_nodes: int, n_edges: int) -> tuple[int, int]:
        """Padded (nodes, edges) for a batch: reuse an already compiled shape when it holds the batch
        with at most 2x padding, else open a new bucket (geometric, 25 % steps, +10 % headroom).

        Rounding nodes and edges to buckets independently gave a new (nodes, edges) pair almost every
        epoch on radius graphs, whose edge counts vary a lot (70 compilations in a 40-epoch TFN run,
        until XLA's CPU compiler ran out of memory mappings); reusing covering shapes keeps it to a few.
        """
        need_n, need_e = n_nodes + 1, n_edges + 1  # one spare padding node (pad_batch's rule)
        fits = [(n, e) for n, e in self._shapes if need_n <= n <= 2 * need_n and need_e <= e <= 2 * need_e]
        if fits:
            return min(fits, key=lambda s: (s[0] * 4 + s[1]))  # smallest cost: edges dominate the step
        shape = (bucket_size(int(need_n * 1.1) + 1), bucket_size(int(need_e * 1.1) + 1))
        self._shapes.append(shape)
        return shape

    def train_step(self, batch, lr: float) -> float:
        arrays, _ = batch
        key = jax.random.fold_in(self.key, self._step)
        self._step += 1
        self.params, self.batch_stats, self.opt_state, total = self._train(self.params, self.batch_stats, self.opt_state, arrays, lr, key)
        return float(total)

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

    def state_dict(self) -> dict[str, np.ndarray]:
        return _family_module(self.model_name).to_torch_state_dict(self._variables(), self.model_config)

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        variables = _family_module(self.model_name).from_torch_state_dict(state, self.model_config)
        variables = _cast_floats(variables, self.dtype)
        # Keep the dtypes of the initialised tree (e.g. int32 counters), so jit does not recompile.
        ref = {"params": self.params, "batch_stats": self.batch_stats}
        new = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
        ref_paths = jax.tree_util.tree_structure(ref)
        if jax.tree_util.tree_structure(new) != ref_paths:
            raise ValueError(f"{self.model_name} weights do not fit the flax model's variable tree")
        new = jax.tree_util.tree_map(lambda a, b: jnp.asarray(b, dtype=jnp.asarray(a).dtype), ref, new)
        self.params, self.batch_stats = new["params"], new["batch_stats"]

    def optimizer_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        leaves, _ = jax.tree_util.tree_flatten_with_path(jax.device_get(self.opt_state))
        arrays = {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}
        return arrays, {"kind": f"optax.{self.config.optimizer}", "step": self._step}

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

    def device(self) -> str:
        d = jax.devices()[0]
        return f"{d.platform}:{getattr(d, 'device_kind', '')} (jax {jax.__version__})"
