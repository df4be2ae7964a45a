"""Backend-neutral model math (zoo.nn): the same numbers from numpy, torch and jax."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.nn import gaussian_expansion


def test_gaussian_expansion_numpy():
    d = np.array([0.0, 1.0, 3.3, 8.0])
    g = gaussian_expansion(d)
    assert g.shape == (4, 41)
    mu = np.arange(0.0, 8.0 + 0.2, 0.2)  # CGCNN's GaussianDistance filter
    np.testing.assert_allclose(g, np.exp(-((d[:, None] - mu) ** 2) / 0.2**2), rtol=1e-12, atol=1e-300)
    assert g[1, 5] == 1.0 and g[3, 40] == 1.0
    assert gaussian_expansion(d, 0, 5, 0.5, var=1.0).shape == (4, 11)
    assert gaussian_expansion(d.astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError):
        gaussian_expansion(d, step=0)


def test_gaussian_expansion_torch_and_jax_match_numpy():
    d = np.linspace(0, 8.5, 17)
    ref = gaussian_expansion(d)
    torch = pytest.importorskip("torch")
    t = gaussian_expansion(torch.tensor(d), xp=torch)
    assert t.dtype == torch.float64
    np.testing.assert_allclose(t.numpy(), ref, rtol=1e-12, atol=1e-300)
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    x = jax.jit(lambda v: gaussian_expansion(v, xp=jnp))(jnp.asarray(d, dtype=jnp.float32))
    np.testing.assert_allclose(np.asarray(x), ref, rtol=0, atol=1e-5)
