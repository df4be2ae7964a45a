"""The asv suite's device code paths, exercised on the CPU: the timing helper reads the clock only after the
device has finished, compile (first-call) time is kept apart from steady state, and a CUDA combination
skips cleanly (NotImplementedError in setup, asv's "skipped") where there is no GPU."""
from __future__ import annotations

import pytest

from benchmarks import asv_models
from tests.helpers import TINY, toy_frame
from zoo import backend_available
from zoo.models import make_config


def test_timed_synchronises_before_reading_the_clock():
    events = []
    ticks = iter([10.0, 12.5])

    def clock():
        events.append("clock")
        return next(ticks)

    seconds = asv_models.timed(lambda: events.append("call") or "result", lambda r: events.append(f"sync {r}"), clock)
    assert events == ["clock", "call", "sync result", "clock"] and seconds == 2.5


@pytest.fixture
def tiny_suite(monkeypatch):
    """The suite's code with a tiny CGCNN on 8 two-atom cells (the real pool draws 200 crystals, tens of seconds)."""
    crystals = list(toy_frame(8)["structure"])
    scalar = asv_models._targets()[0]
    monkeypatch.setattr(asv_models, "pool", lambda: crystals)
    monkeypatch.setattr(asv_models, "model_config", lambda model, tensor=False: (make_config(model, **TINY).with_target(scalar), 0))
    asv_models._CACHE.clear()
    yield
    asv_models._CACHE.clear()


# jax compiles a train and a predict step (~15 s of CPU on a busy 2-core machine): the slow run covers it.
@pytest.mark.parametrize("backend", ["torch", pytest.param("jax", marks=pytest.mark.slow)])
def test_model_speed_on_cpu(tiny_suite, backend):
    if not backend_available(backend):
        pytest.skip(f"{backend} not installed")
    bench = asv_models.ModelSpeed()
    args = ("cgcnn", backend, "cpu", 8)
    bench.setup(*args)
    bench.time_forward(*args)
    bench.time_train_step(*args)
    bench.peakmem_train_step(*args)
    compile_train, compile_forward = bench.track_compile_train_step(*args), bench.track_compile_forward(*args)
    assert compile_train >= 0.0 and compile_forward >= 0.0
    if backend == "jax":  # the first call traces and compiles with XLA: far longer than a steady 8-crystal step
        assert compile_train > 0.05
    bench.setup(*args)  # asv calls setup before every timed call: the compiled step is reused, not rebuilt
    assert bench.track_compile_train_step(*args) == compile_train


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_cuda_combinations_skip_without_a_gpu(backend):
    if not backend_available(backend):
        pytest.skip(f"{backend} not installed")
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
    else:
        import jax

        try:
            if jax.devices("gpu"):
                pytest.skip("a GPU is present")
        except RuntimeError:
            pass
    with pytest.raises(NotImplementedError, match="no"):
        asv_models.ModelSpeed().setup("cgcnn", backend, "cuda", 16)
