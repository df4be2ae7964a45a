"""JAX data parallelism: each batch sharded over a ``jax.sharding.Mesh`` of devices, parameters replicated.

``ShardedJaxAdapter`` is ``JaxAdapter`` with its arrays placed on a one-axis mesh ("data") of
``config.jax_devices`` devices (0: all of ``jax.devices()``): every index set of a padded batch (nodes,
edges, graphs, ...) is split along its first axis over the devices, parameters, batch-norm statistics and
optimiser state are replicated. The jitted step is the *same program* as on one device (XLA partitions
it and inserts the collectives: the gather of neighbour features, the sums of the loss and of the
gradients), so a run follows the one-device run up to the order of floating-point sums; batch norm sees
the statistics of the whole batch. An index set whose padded size is not a multiple of the device count
(the graph slots, ``batch_size + 1``) stays replicated; bucket sizes of nodes and edges are multiples of
2^k (``zoo.graphs.bucket_size``), so with 2^k devices they are sharded.

Several hosts: every process runs the same ``zoo train`` command; ``jax.distributed.initialize`` is called
when ``JAX_COORDINATOR_ADDRESS`` is set (with ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``), or with
``ZOO_JAX_DISTRIBUTED=1`` on a cluster JAX detects by itself (SLURM, Open MPI, Kubernetes, Cloud TPU).
``jax.devices()`` then lists every host's devices; each process builds the same global batch and hands
its devices their part (``jax.make_array_from_callback``); only process 0 writes the run folder.
"""
from __future__ import annotations

import logging
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .config import TrainConfig, UsageError
from .jax import JaxAdapter, _in_precision

log = logging.getLogger("zoo.training")


def mesh_devices(config: TrainConfig) -> list:
    devices = jax.devices()
    n = config.jax_devices or len(devices)
    if n > len(devices):
        raise UsageError(f"--jax-devices {n}: jax sees only {len(devices)} device(s) ({devices[0].platform}); use at most "
                         f"{len(devices)} (0 = all); on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N makes N")
    return devices[:n]


def wants_sharding(config: TrainConfig) -> bool:
    return config.backend == "jax" and (config.jax_devices != 1 or jax.process_count() > 1)


class ShardedJaxAdapter(JaxAdapter):
    """``JaxAdapter`` on a device mesh (module docstring)."""

    def __init__(self, model_name: str, model_config, config: TrainConfig, loss: str):
        super().__init__(model_name, model_config, config, loss)
        self.mesh = Mesh(np.array(mesh_devices(config)), ("data",))
        self.n_devices = self.mesh.devices.size
        self._replicated = NamedSharding(self.mesh, PartitionSpec())
        self._split = NamedSharding(self.mesh, PartitionSpec("data"))

    def _place(self, x, sharding):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    def _replicate(self, tree):
        return jax.tree_util.tree_map(lambda x: self._place(x, self._replicated), jax.device_get(tree))

    def _place_batch(self, arrays: dict[str, Any]) -> dict[str, Any]:
        return {k: self._place(v, self._split if np.ndim(v) and np.shape(v)[0] % self.n_devices == 0 else self._replicated)
                for k, v in arrays.items()}

    def _place_state(self) -> None:
        self.params, self.batch_stats, self.opt_state = (self._replicate(self.params), self._replicate(self.batch_stats),
                                                         self._replicate(self.opt_state))

    @_in_precision
    def init(self, example, check=None) -> None:
        super().init(example, check)
        self._place_state()

    @_in_precision
    def make_batch(self, graphs, y):
        arrays, n = super().make_batch(graphs, y)
        return self._place_batch(arrays), n

    @_in_precision
    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        self._place_state()

    @_in_precision
    def load_optimizer_state(self, arrays, meta) -> None:
        super().load_optimizer_state(arrays, meta)
        self._place_state()

    def device(self) -> str:
        return f"{super().device()} x {self.n_devices} devices (batch sharded, parameters replicated)"
