"""zoo.nn.norm.masked_batch_norm is torch's BatchNorm1d over the real rows, in both backends."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.nn.norm import RunningStats, masked_batch_norm

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from zoo.backend import jax as bj  # noqa: E402
from zoo.backend import torch as bt  # noqa: E402

C = 5  # features


def _data(n_real: int, n_pad: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.5, 2.0, size=(n_real + n_pad, C))
    x[n_real:] = 1e3  # padding junk: must not leak into the statistics
    mask = np.arange(n_real + n_pad) < n_real
    weight, bias = rng.uniform(0.5, 1.5, C), rng.normal(size=C)
    stats = (rng.normal(size=C), rng.uniform(0.5, 1.5, C), np.array(7))
    return x, mask, weight, bias, stats


def _torch_reference(x_real, weight, bias, stats, train: bool):
    """torch's own nn.BatchNorm1d on the real rows only, float64."""
    bn = torch.nn.BatchNorm1d(C).double().train(train)
    with torch.no_grad():
        bn.weight.copy_(torch.as_tensor(weight))
        bn.bias.copy_(torch.as_tensor(bias))
        bn.running_mean.copy_(torch.as_tensor(stats[0]))
        bn.running_var.copy_(torch.as_tensor(stats[1]))
        bn.num_batches_tracked.fill_(int(stats[2]))
        y = bn(torch.as_tensor(x_real)).numpy()
    return y, (bn.running_mean.numpy(), bn.running_var.numpy(), int(bn.num_batches_tracked))


def _run(xp, x, mask, weight, bias, stats, train):
    if xp is bt:
        arr = torch.as_tensor
    else:
        arr = jnp.asarray
    s = RunningStats(arr(stats[0]), arr(stats[1]), arr(stats[2]))
    y, new = masked_batch_norm(arr(x), arr(weight), arr(bias), s, mask=None if mask is None else arr(mask), train=train, xp=xp)
    return np.asarray(y), tuple(np.asarray(v) for v in new)


@pytest.mark.parametrize("xp", [bt, bj], ids=["torch", "jax"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("n_pad", [0, 4])
def test_matches_torch_batchnorm1d_on_the_real_rows(xp, train, n_pad):
    x, mask, weight, bias, stats = _data(9, n_pad)
    y_ref, stats_ref = _torch_reference(x[:9], weight, bias, stats, train)
    with jax.enable_x64(True):
        for m in ([mask, None] if n_pad == 0 else [mask]):
            y, new = _run(xp, x, m, weight, bias, stats, train)
            np.testing.assert_allclose(y[:9], y_ref, rtol=1e-12, atol=1e-12)
            # running mean, and running variance with torch's unbiased n / (n - 1) rule (momentum 0.1)
            np.testing.assert_allclose(new[0], stats_ref[0], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(new[1], stats_ref[1], rtol=1e-12, atol=1e-14)
            assert int(new[2]) == stats_ref[2] == 7 + int(train)


def test_one_real_row_is_clamped_not_an_error():
    """n = 1 (where torch raises): normalised to 0 (+ bias), running variance takes var * 1 = 0."""
    x, mask, weight, bias, stats = _data(1, 3)
    with jax.enable_x64(True):
        for xp in (bt, bj):
            y, new = _run(xp, x, mask, weight, bias, stats, train=True)
            np.testing.assert_allclose(y[0], bias, atol=1e-12)
            np.testing.assert_allclose(new[1], 0.9 * stats[1], rtol=1e-14)
            np.testing.assert_allclose(new[0], 0.9 * stats[0] + 0.1 * x[0], rtol=1e-14)


def test_new_statistics_carry_no_gradient():
    x, mask, weight, bias, stats = _data(6, 2)
    xt = torch.as_tensor(x).requires_grad_(True)
    s = RunningStats(*(torch.as_tensor(v) for v in stats))
    _, new = masked_batch_norm(xt, torch.as_tensor(weight), torch.as_tensor(bias), s, mask=torch.as_tensor(mask), train=True, xp=bt)
    assert not new.running_mean.requires_grad and not new.running_var.requires_grad

    def total(xj):
        sj = RunningStats(*(jnp.asarray(v) for v in stats))
        _, nj = masked_batch_norm(xj, jnp.asarray(weight), jnp.asarray(bias), sj, mask=jnp.asarray(mask), train=True, xp=bj)
        return nj.running_mean.sum() + nj.running_var.sum()

    assert float(jnp.abs(jax.grad(total)(jnp.asarray(x, jnp.float32))).max()) == 0.0
