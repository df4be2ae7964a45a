"""crystal-zoo: crystal property prediction models in PyTorch and JAX.

Importing ``zoo`` imports neither torch nor jax: each backend is imported lazily the first time a
model of that backend is built (``zoo.models.build(name, backend=...)``). The pretrained zoo's
``zoo.load(name, backend=...)`` and ``zoo.list_pretrained()`` are attributes resolved on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"

from zoo.core.backends import BACKENDS, backend_available  # noqa: F401  (public: zoo.BACKENDS)

_PRETRAINED = ("load", "list_pretrained")  # zoo.pretrained imports the training layer: only when asked for


def __getattr__(name: str):
    if name in _PRETRAINED:
        from zoo import pretrained

        return getattr(pretrained, name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_PRETRAINED))
