"""XLA compilations of a JAX training run: all of them happen in the first epoch, when every padded shape
of the (fixed-size) toy batches is first seen; a later epoch compiles nothing at all.

Counted two ways: the adapter's own count of ``jax.jit`` traces (``jit_compilations`` in metrics.jsonl) and
every XLA backend compilation of the process (``jax.monitoring``'s compile event), so a compilation caused
by anything else (the learning rate becoming a static argument, a Python scalar changing its weak type, an
eager op on a new shape in checkpointing or validation) is caught too.
"""
from __future__ import annotations

import pytest

from tests.training.common import cfg

jax = pytest.importorskip("jax")


def test_no_compilation_after_the_first_epoch(tmp_path, task):
    from jax._src.dispatch import (
        BACKEND_COMPILE_EVENT,  # the event name jax records for each XLA compilation
    )

    from zoo.training import train

    compiles: list[str] = []

    def listener(event: str, duration: float, **kwargs) -> None:
        if event == BACKEND_COMPILE_EVENT:
            compiles.append(event)

    per_epoch: dict[int, int] = {}
    seen = [0]

    def on_epoch_end(record):
        per_epoch[record["epoch"]] = len(compiles) - seen[0]
        seen[0] = len(compiles)
        records.append(record)

    records: list[dict] = []
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        # Cosine schedule: the learning rate changes at every step, so a rate that reached the step as a
        # static value would recompile every step. 8 toy graphs per batch: 3 full batches and a short one.
        train(cfg(tmp_path, backend="jax", epochs=4, schedule="cosine"), task=task, on_epoch_end=on_epoch_end)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert per_epoch[1] > 0 and records[0]["jit_compilations"] >= 2  # train step(s) and the validation predict
    assert {e: n for e, n in per_epoch.items() if e > 1} == {2: 0, 3: 0, 4: 0}, per_epoch
    assert [r["jit_compilations"] for r in records[1:]] == [0, 0, 0]
