"""The two backend modules offer the same array operations (zoo.backend.OPS) with the same numbers."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.backend import OPS

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from zoo.backend import jax as bj  # noqa: E402
from zoo.backend import torch as bt  # noqa: E402


def test_both_backends_define_every_op():
    assert [n for n in OPS if not hasattr(bt, n)] == [] and [n for n in OPS if not hasattr(bj, n)] == []
    assert (bt.NAME, bj.NAME) == ("torch", "jax")


def _both(fn, *arrays, **kw):
    with jax.enable_x64(True):
        t = fn(bt, *[torch.as_tensor(a) for a in arrays], **kw)
        j = fn(bj, *[jnp.asarray(a) for a in arrays], **kw)
        conv = lambda v: [np.asarray(x.detach() if hasattr(x, "detach") else x) for x in v] if isinstance(v, list) else np.asarray(v.detach() if hasattr(v, "detach") else v)  # noqa: E731
        return conv(t), conv(j)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "silu", "tanh", "exp", "log1p", "sin"])
def test_elementwise_agree(name):
    x = np.linspace(-30.0, 30.0, 61)
    t, j = _both(lambda xp, a: getattr(xp, name)(a), x)
    np.testing.assert_allclose(t, j, rtol=1e-13, atol=1e-300)


def test_structural_ops_agree():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5))
    idx = np.array([0, 2, 2, 1, 0, 4, 4])
    for fn in (
        lambda xp, a, i: xp.segment_sum(a, i, 6),
        lambda xp, a, i: xp.segment_mean(a, i, 6),
        lambda xp, a, i: xp.concat([a, a[:2]], axis=0),
        lambda xp, a, i: xp.split(a, [2, 3], axis=1),
        lambda xp, a, i: xp.log_softmax(a, axis=-1),
        lambda xp, a, i: xp.norm(a, axis=-1),
        lambda xp, a, i: xp.add_at(a, i[:3], a[:, :3], axis=1),
        lambda xp, a, i: xp.const(np.arange(5.0), like=a) * a,
        lambda xp, a, i: xp.where(a > 0, a, xp.zeros_like(a)),
        lambda xp, a, i: xp.einsum("ij,ik->jk", a, a),
        lambda xp, a, i: xp.rsqrt(a * a + 1.0),
        lambda xp, a, i: xp.astype(a > 0, a.dtype) * a,
        lambda xp, a, i: xp.take(a, i, axis=0),
        lambda xp, a, i: xp.take(a, i[:4], axis=1),
        lambda xp, a, i: xp.linear(a, a[:3], a[0, :3]),
        lambda xp, a, i: xp.linear(a, a[:3]),
        lambda xp, a, i: xp.cumsum(a, axis=0),
        lambda xp, a, i: xp.minimum(a, xp.zeros_like(a)),
        lambda xp, a, i: xp.log(a * a + 1.0),
        lambda xp, a, i: xp.solve(xp.einsum("ij,kj->ik", a[:5], a[:5]) + xp.const(np.eye(5), like=a), a[:5]),
        lambda xp, a, i: xp.solve((a[:5, None, :3] * a[:5, :3, None]) + xp.const(np.eye(3), like=a), a[:5, :3, None]),
    ):
        t, j = _both(fn, x, idx)
        if isinstance(t, list):
            assert len(t) == len(j) and all(np.allclose(a, b, rtol=1e-13) for a, b in zip(t, j))
        else:
            np.testing.assert_allclose(t, j, rtol=1e-13, atol=1e-15)


def test_softplus_is_torchs_above_the_threshold_in_value_and_gradient():
    g = jax.grad(lambda v: bj.softplus(v))(25.0)
    assert float(bj.softplus(jnp.asarray(25.0))) == 25.0 and float(g) == 1.0


def test_spherical_harmonics_agree_in_e3nn_and_e3nn_jax():
    pytest.importorskip("e3nn")
    pytest.importorskip("e3nn_jax")
    vec = np.random.default_rng(2).normal(size=(9, 3)) * 2.5
    t, j = _both(lambda xp, v: xp.spherical_harmonics(4, v), vec)
    assert t.shape == (9, 25)
    np.testing.assert_allclose(t, j, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t[:, 1:4] / np.sqrt(3), vec / np.linalg.norm(vec, axis=1, keepdims=True), atol=1e-14)  # Y^1 = sqrt(3) r̂


def test_switch_runs_the_chosen_branch_only():
    import jax

    ran = []
    branches = [lambda: (ran.append(0), bt.const(np.ones(2), like=torch.zeros(1)))[1], lambda: (ran.append(1), torch.zeros(2))[1]]
    assert bt.switch(torch.tensor(1), branches).tolist() == [0.0, 0.0] and ran == [1]
    f = jax.jit(lambda i, x: bj.switch(i, [lambda: x + 1.0, lambda: x * 2.0]))
    assert np.asarray(f(1, jnp.ones(2))).tolist() == [2.0, 2.0] and np.asarray(f(0, jnp.ones(2))).tolist() == [2.0, 2.0]
    assert np.asarray(f(0, jnp.full(2, 3.0))).tolist() == [4.0, 4.0]


def test_value_and_grad_agree_and_match_the_analytic_gradient():
    # f(x) = Σ log(1 + x²) sin(x), f' = 2x/(1 + x²) sin(x) + log(1 + x²) cos(x)
    x = np.linspace(-2.0, 3.0, 7)
    with jax.enable_x64(True):
        vt, gt = bt.value_and_grad(lambda v, k: (bt.log(v * v + 1.0) * bt.sin(v) * k).sum(), torch.as_tensor(x), 2.0)
        vj, gj = bj.value_and_grad(lambda v, k: (bj.log(v * v + 1.0) * bj.sin(v) * k).sum(), jnp.asarray(x), 2.0)
    want = 2.0 * (2 * x / (1 + x * x) * np.sin(x) + np.log1p(x * x) * np.cos(x))
    assert isinstance(vt, float) and isinstance(vj, float) and gt.dtype == gj.dtype == np.float64
    np.testing.assert_allclose([vt, vj], 2.0 * np.sum(np.log1p(x * x) * np.sin(x)), rtol=1e-13)
    np.testing.assert_allclose(gt, want, rtol=1e-12)
    np.testing.assert_allclose(gj, want, rtol=1e-12)
