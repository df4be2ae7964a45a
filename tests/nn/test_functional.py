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


def test_gaussian_expansion_through_the_backend_ops_modules():
    """With a zoo.backend ops module as ``xp`` (as model cores call it), the same numbers as numpy."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    import jax
    import torch

    from zoo.backend import jax as bj
    from zoo.backend import torch as bt

    d = np.linspace(0, 8.5, 17)
    ref = gaussian_expansion(d)
    np.testing.assert_allclose(gaussian_expansion(torch.tensor(d), xp=bt).numpy(), ref, rtol=1e-12, atol=1e-300)
    with jax.enable_x64(True):
        np.testing.assert_allclose(np.asarray(gaussian_expansion(jax.numpy.asarray(d), xp=bj)), ref, rtol=1e-12, atol=1e-300)


def test_masked_segment_mean():
    from zoo.nn.functional import masked_segment_mean

    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3))
    segments = np.array([0, 0, 1, 1, 1, 2, 2])
    mask = np.array([True, True, True, False, True, False, False])  # segment 2 is all padding
    expected = np.stack([x[:2].mean(0), x[[2, 4]].mean(0), np.zeros(3)])
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    from zoo.backend import jax as bj
    from zoo.backend import torch as bt

    out_t = masked_segment_mean(torch.as_tensor(x), torch.as_tensor(segments), 3, torch.as_tensor(mask), xp=bt).numpy()
    np.testing.assert_allclose(out_t, expected, rtol=1e-14)
    all_rows = masked_segment_mean(torch.as_tensor(x), torch.as_tensor(segments), 4, xp=bt).numpy()  # segment 3 empty
    np.testing.assert_allclose(all_rows, np.stack([x[:2].mean(0), x[2:5].mean(0), x[5:].mean(0), np.zeros(3)]), rtol=1e-14)
    with jax.enable_x64(True):
        out_j = masked_segment_mean(jax.numpy.asarray(x), jax.numpy.asarray(segments), 3, jax.numpy.asarray(mask), xp=bj)
        np.testing.assert_allclose(np.asarray(out_j), expected, rtol=1e-14)
