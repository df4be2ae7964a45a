"""PyTorch adapter of the training loop (mirrors ``zoo.training.jax``).

Batches are ``zoo.graphs.collate`` batches as torch tensors, unpadded: eager torch does not recompile
for new shapes. The loss is ``zoo.nn.losses``'s, the same function the jax adapter differentiates.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from zoo.backend import torch as xp  # array ops of zoo.nn's backend-neutral math
from zoo.core.weights import check_state_matches
from zoo.graphs import collate
from zoo.models import build
from zoo.nn.losses import class_logit, per_graph_loss

from .adapter import Adapter
from .config import TrainConfig

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class TorchAdapter(Adapter):
    backend = "torch"

    def __init__(self, model_name: str, model_config, config: TrainConfig, loss: str):
        self.model_name, self.model_config, self.config, self.loss = model_name, model_config, config, loss
        self.dtype = _DTYPES[config.dtype]
        dev = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dev = torch.device(dev)
        self.compilations = 0
        self.model = None
        self.opt = None
        # torchrun (zoo.training.distributed): the DistributedDataParallel wrapper that steps, and the
        # factor on this rank's mean loss that makes the averaged gradient the global batch's
        self.train_module = None
        self.loss_scale = 1.0

    def init(self, example: Sequence, check=None) -> None:
        if check is not None:
            check(self._parameter_shapes())
        torch.manual_seed(self.config.seed)
        self.model = build(self.model_name, "torch", self.model_config).to(device=self.dev, dtype=self.dtype)
        params = [p for p in self.model.parameters() if p.requires_grad]
        c = self.config
        if c.optimizer == "adamw":
            self.opt = torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay, eps=1e-8)
        else:  # torch Adam's weight_decay is an L2 term added to the gradient (optax: add_decayed_weights first)
            self.opt = torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay, eps=1e-8)

    def _parameter_shapes(self) -> dict[str, tuple[int, ...]] | None:
        """The model's state shapes, built on the meta device (no memory); None where a family cannot be."""
        before = {id(c): c.cache_info().misses for c in _lru_caches()}
        try:
            with torch.device("meta"):
                model = build(self.model_name, "torch", self.model_config)
        except Exception:  # noqa: BLE001 - a family that computes in __init__ cannot run on meta: no estimate then
            return None
        finally:
            # Every cache that computed something under the meta device now holds meta tensors (e3nn's
            # Clebsch-Gordan and change-of-basis caches, our basis tables): the real build would reuse
            # them and fail ("Tensor.item() cannot be called on meta tensors"), or worse. Forget them.
            for cache in _lru_caches():
                if cache.cache_info().misses != before.get(id(cache), 0):
                    cache.cache_clear()
        return {k: tuple(v.shape) for k, v in model.state_dict().items()}

    def memory_limit(self) -> int:
        if self.dev.type == "cuda":
            return int(torch.cuda.mem_get_info(self.dev)[1])
        return super().memory_limit()

    def make_batch(self, graphs: Sequence, y: np.ndarray | None) -> dict[str, torch.Tensor]:
        return xp.to_torch(collate(graphs, y), dtype=self.dtype, device=self.dev)

    def train_step(self, batch: dict[str, torch.Tensor], lr: float) -> float:
        model, opt = self.model, self.opt
        model.train()
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        per = per_graph_loss(self.loss, (self.train_module or model)(batch), batch["y"], xp=xp)
        (per.mean() * self.loss_scale).backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.config.grad_clip)
        opt.step()
        return float(per.detach().sum())

    @torch.no_grad()
    def predict(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        self.model.eval()
        out = self.model(batch)
        if self.loss == "bce":
            out = class_logit(out)
        return out.detach().cpu().numpy().astype(np.float64)

    # -- state
    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        own = self.model.state_dict()
        check_state_matches(own, state, what=f"{self.model_name} weights")
        self.model.load_state_dict({k: torch.as_tensor(np.asarray(v)).to(dtype=own[k].dtype) for k, v in state.items()}, strict=True)

    def optimizer_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        sd = self.opt.state_dict()
        arrays = {f"state.{i}.{k}": v.detach().cpu().numpy().copy() for i, st in sd["state"].items() for k, v in st.items()}
        return arrays, {"param_groups": sd["param_groups"], "kind": type(self.opt).__name__}

    def load_optimizer_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        if meta.get("kind") != type(self.opt).__name__:
            raise ValueError(f"checkpoint optimiser is {meta.get('kind')}, this run uses {type(self.opt).__name__}")
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, v in arrays.items():
            _, i, name = key.split(".", 2)
            state.setdefault(int(i), {})[name] = torch.from_numpy(np.array(v))
        self.opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})

    def rng_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"torch_cpu": torch.get_rng_state().numpy().copy()}
        if self.dev.type == "cuda":
            arrays["torch_cuda"] = torch.cuda.get_rng_state(self.dev).numpy().copy()
        return arrays, {"torch": "global generator state (uint8 arrays in trainer.safetensors)"}

    def load_rng_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        if "torch_cpu" in arrays:
            torch.set_rng_state(torch.from_numpy(np.array(arrays["torch_cpu"])))
        if "torch_cuda" in arrays and self.dev.type == "cuda":
            torch.cuda.set_rng_state(torch.from_numpy(np.array(arrays["torch_cuda"])), self.dev)

    def device(self) -> str:
        if self.dev.type == "cuda":
            return f"cuda:{torch.cuda.get_device_name(self.dev)}"
        return f"cpu (torch {torch.__version__}, {torch.get_num_threads()} threads)"


def _lru_caches() -> list:
    """Every ``functools.lru_cache`` in the process (e3nn's and ours)."""
    import functools
    import gc
    import warnings

    with warnings.catch_warnings():
        # isinstance() on torch.distributed's deprecated ``reduce_op`` object prints a FutureWarning: a
        # stray line in what should be one error line, about an object this walk only passes by.
        warnings.simplefilter("ignore", FutureWarning)
        return [o for o in gc.get_objects() if isinstance(o, functools._lru_cache_wrapper)]
