"""Shared test fixtures: keep the test suite out of the user's cache, locate ../shared/data."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Spinning OpenMP threads make torch up to 30x slower when another process holds a core.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from tests.helpers import SHARED_DATA  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    # Featurisation and dataset caches go to a per-session temporary folder.
    old = os.environ.get("ZOO_CACHE")
    os.environ["ZOO_CACHE"] = str(tmp_path_factory.mktemp("zoo_cache"))
    yield
    if old is None:
        os.environ.pop("ZOO_CACHE", None)
    else:
        os.environ["ZOO_CACHE"] = old


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test where it is absent (as on a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present on this machine")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _restore_jax_config():
    """Every test starts from JAX's process defaults and leaves them as it found them: a test that turns
    on float64 (``jax_enable_x64``) must not change the dtypes the next test on this worker sees."""
    if "jax" not in sys.modules:  # nothing to restore in a process that never imported jax
        yield
        return
    import jax

    names = ("jax_enable_x64", "jax_default_matmul_precision", "jax_debug_nans")
    saved = {n: getattr(jax.config, n) for n in names}
    yield
    for n, v in saved.items():
        if getattr(jax.config, n) != v:
            jax.config.update(n, v)
