"""Where a bench row's time goes: wall seconds, CPU seconds and XLA compilations of each phase.

``Phases`` times named phases (``with phases("training"): ...``) and keeps, per phase:

- ``wall_s``: elapsed seconds (``time.perf_counter``);
- ``cpu_s``: user + system CPU seconds of this process (every thread: XLA compiles on its own threads)
  and of its child processes that finished inside the phase (the data generation's labelling workers).
  On a shared machine the wall time of a phase depends on the others' load; its CPU time much less,
  so the idle wall time of a phase is estimated from its CPU seconds;
- ``compiles`` / ``compile_s``: XLA backend compilations the phase made and the seconds they took
  (JAX's ``/jax/core/compile/backend_compile_duration`` monitoring event; 0 without JAX). Eager
  operations on arrays compile tiny programs too, so the count is of every XLA program, not only of
  jitted steps.

A phase that runs twice (e.g. a row's two parity dtypes) adds up.
"""
from __future__ import annotations

import contextlib
import resource
import sys
import time
from collections.abc import Iterator
from typing import Any

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_COMPILES = {"count": 0, "seconds": 0.0}  # since the listener was registered (once per process)
_LISTENING = False


def _on_duration(event: str, duration: float, **_: Any) -> None:
    if event == COMPILE_EVENT:
        _COMPILES["count"] += 1
        _COMPILES["seconds"] += duration


def watch_jax() -> None:
    """Count XLA compilations from now on (imports jax; call it once jax is known to be used)."""
    global _LISTENING
    if _LISTENING:
        return
    import jax.monitoring

    jax.monitoring.register_event_duration_secs_listener(_on_duration)
    _LISTENING = True


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Phases:
    """Per-phase wall, CPU and compilations (see the module docstring); ``table`` is JSON-ready."""

    def __init__(self) -> None:
        self.table: dict[str, dict[str, float]] = {}
        if "jax" in sys.modules:
            watch_jax()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0, c0, n0, s0 = time.perf_counter(), cpu_seconds(), _COMPILES["count"], _COMPILES["seconds"]
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0, cpu_seconds() - c0, _COMPILES["count"] - n0, _COMPILES["seconds"] - s0)

    def add(self, name: str, wall_s: float, cpu_s: float, compiles: int = 0, compile_s: float = 0.0) -> None:
        entry = self.table.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0, "compiles": 0, "compile_s": 0.0})
        entry["wall_s"] += wall_s
        entry["cpu_s"] += cpu_s
        entry["compiles"] += int(compiles)
        entry["compile_s"] += compile_s

    @staticmethod
    def mark() -> tuple[float, float, int, float]:
        """(wall, CPU, compilations, compile seconds) now, for ``between``."""
        return time.perf_counter(), cpu_seconds(), _COMPILES["count"], _COMPILES["seconds"]

    def between(self, name: str, start: tuple[float, float, int, float], end: tuple[float, float, int, float]) -> None:
        """Add what happened between two ``mark``s to phase ``name`` (a phase whose end a callback sees)."""
        self.add(name, *(b - a for a, b in zip(start, end)))


__all__ = ["Phases", "cpu_seconds", "watch_jax"]
