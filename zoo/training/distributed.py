"""Data-parallel training: what the loop does differently when it is one of several processes.

The loop talks to a ``Context`` (``context(config)``); a single process gets the plain ``Context``, whose
every method is the identity, so a run without a launcher behaves exactly as before.

**PyTorch, ``torchrun``** (``TorchProcessGroup``): detected from the variables torchrun sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); the same ``zoo train`` / ``zoo reproduce``
command runs in every process (``torchrun --nproc_per_node N --no-python zoo train ...``).

- Process group: NCCL when the run is on CUDA (rank r uses ``cuda:LOCAL_RANK``), gloo on CPU, with
  ``config.dist_timeout_s`` as the collective timeout.
- Batches: ``--batch-size`` is the *global* batch. Every rank computes the same global order (epoch e:
  ``default_rng([seed, e])``, grouped by the family's ``batch_key`` as usual) and takes its contiguous
  slice of each global batch (``numpy.array_split``), which is the distributed sampler: the per-epoch
  seeding is the loop's own, so the set of structures in every step does not depend on the number of
  ranks. A rank whose slice is empty (a last batch smaller than the world) steps on one graph with
  weight 0, so that it still joins the gradient all-reduce.
- Gradients: the model is wrapped in ``DistributedDataParallel``, which averages gradients over ranks;
  each rank scales its mean loss by ``W n_r / N`` (N graphs in the global batch, n_r on rank r), so
  the averaged gradient is the gradient of the global batch's mean loss, whatever the split.
- Batch norm: a family whose torch model takes a batch-norm function (``model.batch_norm``: cgcnn,
  chgcnn) gets ``zoo.training.sync_batch_norm.CrossRankBatchNorm`` when the world has more than one
  rank: statistics of the global batch (all-reduced count, sum and centred sum of squares), the same
  running-statistics rule, gradients through the all-reduce. So every family follows the
  single-process run to rounding (CGCNN float64: 5.8e-2 with per-rank statistics, 2.7e-16 with these,
  results/scale/equivalence.md).
- Metrics: the training loss is all-reduced (sum over ranks); validation predictions are split over the
  ranks and gathered, after rank 0's batch-norm running statistics are broadcast, so every rank scores
  the same numbers and takes the same early-stopping and LR decisions.
- Files: only rank 0 makes the run folder, holds its lock, logs and writes checkpoints, best weights and
  the final predictions; the others wait for it at the end and return its summary. A checkpoint holds
  no rank count (model, optimiser, schedule and RNG are the same on every rank), so a run resumes with
  any number of ranks, including one.
- A rank that dies: the survivors' next collective fails (gloo: at once, the connection is closed; NCCL
  or a hung rank: after ``dist_timeout_s``) and the run stops with a ``TrainingError`` naming the rank,
  the last checkpoint and the resume command; torchrun then stops the other workers.

**JAX** has no per-process sharding of batches here: see ``zoo.training.parallel_jax`` (one process drives
every local device; several hosts through ``jax.distributed.initialize``, where only process 0 writes).
"""
from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .adapter import Adapter, get_adapter, predict_graphs
from .config import TrainConfig, TrainingError

log = logging.getLogger("zoo.training")

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class Context:
    """One process: every operation is the identity (see the module docstring)."""

    rank, world, local_rank = 0, 1, 0
    run_dir: Path | None = None  # set by the loop once the run folder is known (for messages)

    @property
    def main(self) -> bool:
        """Whether this process writes the run folder."""
        return self.rank == 0

    def local(self, batch: np.ndarray) -> tuple[np.ndarray, float]:
        """This rank's indices of a global batch and the factor its mean loss is scaled by."""
        return batch, 1.0

    def prepare(self, adapter: Adapter) -> None:
        """Called once the adapter is initialised (and restored): set up gradient averaging."""

    def sum(self, value: float) -> float:
        return value

    def predict(self, adapter: Adapter, graphs: Sequence, batch_size: int, made: list | None = None) -> np.ndarray:
        return predict_graphs(adapter, graphs, batch_size, made)

    def share(self, text: str) -> str:
        """Rank 0's ``text`` on every rank."""
        return text

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        pass

    def lost(self, exc: BaseException) -> TrainingError | None:
        """The error to raise for ``exc`` when it means another rank is gone, else None."""
        return None


class TorchProcessGroup(Context):
    """A ``torchrun`` worker (see the module docstring)."""

    def __init__(self, config: TrainConfig):
        import torch
        import torch.distributed as dist

        self.rank, self.world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.timeout_s = config.dist_timeout_s
        # the adapter's own rule: --device, else CUDA when torch sees it
        self.cuda = (config.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
        self.backend = "nccl" if self.cuda else "gloo"
        if self.cuda:
            torch.cuda.set_device(self.local_rank)
        self._owned = not dist.is_initialized()
        if self._owned:
            dist.init_process_group(self.backend, timeout=datetime.timedelta(seconds=config.dist_timeout_s))
        log.info("rank %d of %d (%s, local rank %d)", self.rank, self.world, self.backend, self.local_rank)

    def device(self) -> str:
        return f"cuda:{self.local_rank}" if self.cuda else "cpu"

    def local(self, batch: np.ndarray) -> tuple[np.ndarray, float]:
        part = np.array_split(np.asarray(batch), self.world)[self.rank]
        if self._batch_norm is not None:  # a zero-weight step's placeholder graph stays out of the statistics
            self._batch_norm.contributes = len(part) > 0
        if len(part) == 0:  # join the all-reduce with a zero-weight step on one graph of the batch
            return np.asarray(batch)[:1], 0.0
        return part, self.world * len(part) / len(batch)

    _batch_norm = None  # the model's CrossRankBatchNorm, once prepare has installed it

    def prepare(self, adapter: Adapter) -> None:
        from torch.nn.parallel import DistributedDataParallel

        if self.world > 1 and hasattr(adapter.model, "batch_norm"):
            from .sync_batch_norm import CrossRankBatchNorm

            self._batch_norm = adapter.model.batch_norm = CrossRankBatchNorm(adapter.model.batch_norm)

        ids = [self.local_rank] if self.cuda else None
        # A family that groups its batches (config.batch_key: pgnet, one holohedry per batch) runs one branch
        # per batch, so the others' parameters get no gradient; DDP must look for them (an extra graph walk).
        unused = getattr(adapter.model_config, "batch_key", None) is not None
        adapter.train_module = DistributedDataParallel(adapter.model, device_ids=ids, find_unused_parameters=unused)

    def _tensor(self, values: np.ndarray):
        import torch

        return torch.as_tensor(np.asarray(values, dtype=np.float64), device=self.device())

    def sum(self, value: float) -> float:
        import torch.distributed as dist

        t = self._tensor([value])
        dist.all_reduce(t)
        return float(t.cpu().numpy()[0])

    def predict(self, adapter: Adapter, graphs: Sequence, batch_size: int, made: list | None = None) -> np.ndarray:
        import torch.distributed as dist

        for buffer in adapter.model.buffers():  # rank 0's running statistics (batch norm) everywhere
            dist.broadcast(buffer, 0)
        if len(graphs) == 0:
            return np.zeros((0,))
        bounds = np.linspace(0, len(graphs), self.world + 1).round().astype(int)
        mine = predict_graphs(adapter, graphs[bounds[self.rank] : bounds[self.rank + 1]], batch_size)
        parts: list[Any] = [None] * self.world
        dist.all_gather_object(parts, mine)
        return np.concatenate([p for p in parts if len(p)])

    def share(self, text: str) -> str:
        import torch.distributed as dist

        box = [text if self.main else None]
        dist.broadcast_object_list(box, 0)
        return box[0]

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def close(self) -> None:
        import torch.distributed as dist

        if self._owned and dist.is_initialized():
            dist.destroy_process_group()

    def lost(self, exc: BaseException) -> TrainingError | None:
        import torch.distributed as dist

        kinds = tuple(k for k in (getattr(dist, "DistError", None), RuntimeError) if k is not None)
        if not isinstance(exc, kinds) or isinstance(exc, TrainingError):
            return None
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not any(w in str(exc).lower() for w in ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "socket", "closed")):
            return None
        run_dir = self.run_dir
        where = f"; the last checkpoint is in {run_dir}/checkpoint: continue with `zoo train --resume {run_dir}` (any number of ranks)" \
            if run_dir is not None else ""
        return TrainingError(f"rank {self.rank} of {self.world}: lost contact with the other ranks ({type(exc).__name__}: {text}); "
                             f"a rank died or hung longer than --dist-timeout-s {self.timeout_s:g}{where}")


class JaxProcesses(Context):
    """One of several JAX processes (multi-host): process 0 writes; batches are not split here (the
    adapter places each global batch on the global mesh)."""

    def __init__(self):
        import jax

        self.rank, self.world = jax.process_index(), jax.process_count()

    def share(self, text: str) -> str:
        from jax.experimental import multihost_utils

        data = np.frombuffer(text.encode().ljust(4096, b"\0"), dtype=np.uint8)  # a run folder path
        return bytes(multihost_utils.broadcast_one_to_all(data)).rstrip(b"\0").decode()

    def barrier(self) -> None:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("zoo.training")


def jax_context(config: TrainConfig) -> Context:
    """Initialise multi-host JAX where the environment asks for it (``zoo.training.parallel_jax``)."""
    import jax

    wanted = os.environ.get("JAX_COORDINATOR_ADDRESS") or os.environ.get("ZOO_JAX_DISTRIBUTED") == "1"
    if wanted and not jax.distributed.is_initialized():
        kwargs: dict[str, Any] = {}
        if os.environ.get("JAX_NUM_PROCESSES"):
            kwargs = {"num_processes": int(os.environ["JAX_NUM_PROCESSES"]), "process_id": int(os.environ["JAX_PROCESS_ID"])}
        jax.distributed.initialize(**kwargs)
    return JaxProcesses() if jax.process_count() > 1 else Context()


def launched_by_torchrun() -> bool:
    return all(v in os.environ for v in TORCHRUN_VARIABLES) and int(os.environ["WORLD_SIZE"]) > 1


def writes_files(config: TrainConfig) -> bool:
    """Whether this process writes shared files (``zoo reproduce``'s lock, progress and results): all
    but torchrun's ranks > 0, known from the environment before any process group exists."""
    return not (config.backend == "torch" and launched_by_torchrun()) or os.environ["RANK"] == "0"


def adapter_class(config: TrainConfig) -> type[Adapter]:
    """The backend's adapter, or the JAX one on a device mesh when ``--jax-devices`` asks for several."""
    if config.backend == "jax":
        from .parallel_jax import ShardedJaxAdapter, wants_sharding

        if wants_sharding(config):
            return ShardedJaxAdapter
    return get_adapter(config.backend)


def context(config: TrainConfig) -> Context:
    """The run's ``Context``: torchrun workers (torch backend), several JAX processes, or one process."""
    if config.backend == "torch" and launched_by_torchrun():
        return TorchProcessGroup(config)
    if config.backend == "jax":
        return jax_context(config)
    return Context()
