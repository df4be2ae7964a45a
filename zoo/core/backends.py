"""The backends crystal-zoo knows, and whether one is installed, without importing it.

Here rather than in the package root so that every layer can ask: the root ``zoo`` package is the
user-facing facade (it resolves ``zoo.load`` from the top layer on first use), which no layer may import.
"""
from __future__ import annotations

import importlib.util

BACKENDS = ("torch", "jax")


def backend_available(backend: str) -> bool:
    """True when ``backend`` ("torch" or "jax") can be imported, without importing it."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    try:
        return importlib.util.find_spec(backend) is not None
    except ImportError:  # a broken install, or an import hook that hides the package
        return False
