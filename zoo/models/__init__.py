"""Model families: one folder per family, registered where it is defined, built for either backend.

A family is a config dataclass (backend-free: hyper-parameters, ``graph_spec()``, ``with_target()``)
plus one model class per backend, registered with ``@register_family`` on the config class::

    @register_family("cgcnn", backends={"torch": "zoo.models.cgcnn.torch:CGCNN", "jax": "zoo.models.cgcnn.jax:CGCNN"},
                     outputs=("scalar", "class"), description="...", citation="@article{...}")
    @dataclass(frozen=True)
    class CGCNNConfig: ...

A family may also name a pre-fit (``prefit="module:function"``): weights the trainer fits on the training
split before the first step of a new run (``prefit``; the TFN's polarisable read-out fits its per-element
polarisabilities this way), imported only when a run needs it.

Every sub-package of ``zoo.models`` is imported the first time the registry is read, so a new family
is its folder and nothing else; a family defined outside crystal-zoo registers itself the same way
when its module is imported. Backends are imported only when a model of that backend is built.

Model call contract (both backends), on a ``zoo.graphs.Batch`` converted by ``zoo.backend``:

- torch: ``model(batch) -> Tensor (G, *out_shape)``; ``model.train()`` / ``model.eval()`` as usual;
- jax (Flax linen): ``module.apply(variables, batch, train=bool, mutable=[...])`` with
  ``variables = {"params": ..., "batch_stats": ...}``; same output.
- Weights: the torch ``state_dict`` in safetensors + the config as JSON (``zoo.core.weights``),
  whichever backend trained them. The flax module declares its parameters under the torch names and
  shapes, so ``zoo.backend.params`` converts between the two by renaming alone.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from zoo.core.backends import BACKENDS
from zoo.core.registry import Registry


@dataclass(frozen=True)
class Family:
    """What the registry knows about a model family (metadata as data, in the timm / matbench spirit)."""

    name: str
    config: type  # frozen dataclass with graph_spec() and with_target(target)
    backends: Mapping[str, Any]  # backend -> model class, or "module:Class" imported when first built
    outputs: tuple[str, ...] = ("scalar",)  # target kinds it can predict: "scalar", "class", "tensor"
    description: str = ""
    citation: str = ""  # BibTeX of the architecture's paper
    license: str = "MIT"  # of crystal-zoo's code for it (weights carry their own licence)
    reference_code: str = ""  # URL of the original implementation, where there is one
    pretrained: Mapping[str, Any] = field(default_factory=dict)  # tag -> pretrained entry (zoo.pretrained)
    # "module:function" called by the trainer before the first step of a new run (``prefit`` below), or ""
    prefit: str = ""

    def model_class(self, backend: str) -> Callable[..., Any]:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
        if backend not in self.backends:
            raise NotImplementedError(f"model {self.name!r} has no {backend} implementation (it has {sorted(self.backends)})")
        target = self.backends[backend]
        if not isinstance(target, str):
            return target
        module, cls = target.split(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except ImportError as exc:
            raise ImportError(f"model {self.name!r} needs the {backend} backend: pip install 'crystal-zoo[{backend}]' ({exc})") from exc


def _builtin_families() -> tuple[str, ...]:
    """Every sub-package of zoo.models is a family; importing it registers it."""
    return tuple(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if m.ispkg)


FAMILIES: Registry[Family] = Registry("model", providers=_builtin_families())


def register_family(name: str, *, backends: Mapping[str, Any], outputs: tuple[str, ...] = ("scalar",), description: str = "",
                    citation: str = "", license: str = "MIT", reference_code: str = "", prefit: str = "",
                    replace: bool = False):
    """Class decorator: register the decorated config dataclass as model family ``name``."""

    def decorate(config_cls: type) -> type:
        if not dataclasses.is_dataclass(config_cls):
            raise TypeError(f"register_family({name!r}) decorates a dataclass (the family's config), got {config_cls!r}")
        for method in ("graph_spec", "with_target"):
            if not callable(getattr(config_cls, method, None)):
                raise TypeError(f"{config_cls.__name__} must define {method}() to be a model family config")
        FAMILIES.add(name, Family(name, config_cls, dict(backends), tuple(outputs), description, citation, license,
                                  reference_code, prefit=prefit), replace=replace)
        return config_cls

    return decorate


def list_models() -> list[str]:
    return FAMILIES.names()


def get_family(name: str) -> Family:
    return FAMILIES.get(name)


def model_class(name: str, backend: str) -> Callable[..., Any]:
    return get_family(name).model_class(backend)


def make_config(name: str, **overrides: Any):
    fam = get_family(name)
    names = {f.name for f in dataclasses.fields(fam.config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"{fam.config.__name__} has no field(s) {unknown}; its fields are {sorted(names)}")
    return fam.config(**overrides)


def config_to_dict(config: Any) -> dict[str, Any]:
    d = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def config_from_dict(name: str, d: dict[str, Any]):
    """The config written by ``config_to_dict``. A family may rename or drop fields between versions by
    giving its config a ``migrate(dict) -> dict`` static method; anything else unknown is an error."""
    cls = get_family(name).config
    migrate = getattr(cls, "migrate", None)
    if migrate is not None:
        d = migrate(dict(d))
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - fields
    if unknown:
        raise ValueError(f"config for {name!r} has unknown fields {sorted(unknown)}: written by another version?")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def build(name: str, backend: str, config: Any | None = None, **overrides: Any):
    """An (uninitialised for jax) model of family ``name`` in ``backend``."""
    config = config if config is not None else make_config(name, **overrides)
    return model_class(name, backend)(config)


create_model = build  # timm's name for the same thing


def prefit(name: str, config: Any, batches: Callable[[], list], backend: str, loss: str
           ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Weights that family ``name`` fits on the training split before its network trains, as (state
    overrides by weight name, a record for the run folder), or None where its config asks for none.
    ``batches()``: the run's backend batches of the training split with standardised targets ``y``, made
    on the call (a config that asks for no fit costs nothing)."""
    target = get_family(name).prefit
    if not target:
        return None
    module, fn = target.split(":")
    return getattr(importlib.import_module(module), fn)(config, batches, backend, loss)

__all__ = [
    "FAMILIES", "Family", "build", "config_from_dict", "config_to_dict", "create_model", "get_family", "list_models",
    "make_config", "model_class", "prefit", "register_family",
]
