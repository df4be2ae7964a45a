"""crystal-zoo: crystal property prediction models in PyTorch and JAX.

Importing ``zoo`` imports neither torch nor jax: each backend is imported lazily the first time a
model of that backend is built (``zoo.models.build(name, backend=...)``).
"""
from __future__ import annotations

__version__ = "0.1.0"

BACKENDS = ("torch", "jax")


def backend_available(backend: str) -> bool:
    """True when ``backend`` ("torch" or "jax") can be imported, without importing it."""
    import importlib.util

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    try:
        return importlib.util.find_spec(backend) is not None
    except ImportError:  # a broken install, or an import hook that hides the package
        return False
