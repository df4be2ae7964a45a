"""Training losses written once (zoo.nn.losses): numpy, torch and jax give the same numbers, and BCE is
the frameworks' own stable binary cross-entropy with logits."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.nn.losses import class_logit, per_graph_loss


def test_losses_in_numpy():
    out = np.array([[1.0, -2.0], [0.5, 0.5], [3.0, 0.0]])
    y = np.array([[0.0, 0.0], [1.0, 0.5], [1.0, 1.0]])
    np.testing.assert_allclose(per_graph_loss("mse", out, y), [2.5, 0.125, 2.5])
    np.testing.assert_allclose(per_graph_loss("l1", out, y), [1.5, 0.25, 1.5])
    # Two log-probabilities -> their difference is the logit; a (G,) output is the logit itself.
    np.testing.assert_allclose(class_logit(out), [-3.0, 0.0, -3.0])
    z = np.array([-800.0, -3.0, 0.0, 2.0, 800.0])
    labels = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    bce = per_graph_loss("bce", z, labels)
    assert np.all(np.isfinite(bce))  # no overflow at |z| = 800
    np.testing.assert_allclose(bce, np.logaddexp(0.0, z) - labels * z, rtol=1e-15, atol=0)
    with pytest.raises(ValueError, match="unknown loss"):
        per_graph_loss("huber", out, y)


def test_fnorm_loss_is_the_frobenius_error_in_every_frame():
    from scipy.spatial.transform import Rotation

    from zoo.symmetry import rotate_tensor

    out = np.array([[1.0, -2.0], [0.5, 0.5], [3.0, 0.0]])
    y = np.array([[0.0, 0.0], [1.0, 0.5], [1.0, 1.0]])
    np.testing.assert_allclose(per_graph_loss("fnorm", out, y), [np.sqrt(5.0), 0.5, np.sqrt(5.0)], rtol=1e-10)  # eps: 1e-12
    np.testing.assert_allclose(per_graph_loss("fnorm", np.array([2.0, -1.0]), np.array([0.5, 0.0])), [1.5, 1.0],
                               rtol=1e-10)  # a scalar: the absolute error
    # rank 3, an improper rotation of both prediction and target: fnorm unchanged, the component L1 not
    rng = np.random.default_rng(1)
    P, T = rng.normal(size=(4, 3, 3, 3)), rng.normal(size=(4, 3, 3, 3))
    R = -Rotation.random(random_state=3).as_matrix()
    PR, TR = (np.stack([rotate_tensor(t, R) for t in A]) for A in (P, T))
    np.testing.assert_allclose(per_graph_loss("fnorm", PR, TR), per_graph_loss("fnorm", P, T), rtol=1e-12)
    assert np.max(np.abs(per_graph_loss("l1", PR, TR) - per_graph_loss("l1", P, T))) > 1e-3


def test_torch_and_jax_agree_with_numpy_and_their_own_bce():
    rng = np.random.default_rng(0)
    out, y = rng.normal(size=(6, 3, 3)), rng.normal(size=(6, 3, 3))
    z, labels = rng.normal(size=6) * 30, (rng.random(6) > 0.5).astype(float)
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from zoo.backend import torch as xt

    for kind in ("mse", "l1", "fnorm"):
        np.testing.assert_allclose(per_graph_loss(kind, torch.tensor(out), torch.tensor(y), xp=xt).numpy(),
                                   per_graph_loss(kind, out, y), rtol=1e-14)
    ours = per_graph_loss("bce", torch.tensor(z), torch.tensor(labels), xp=xt).numpy()
    theirs = F.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(labels), reduction="none").numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-15)

    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from zoo.backend import jax as xj

    with jax.enable_x64(True):
        for kind in ("mse", "l1", "fnorm"):
            np.testing.assert_allclose(per_graph_loss(kind, jnp.asarray(out), jnp.asarray(y), xp=xj),
                                       per_graph_loss(kind, out, y), rtol=1e-14)
        jz, jl = jnp.asarray(z), jnp.asarray(labels)
        np.testing.assert_allclose(jax.jit(lambda a, b: per_graph_loss("bce", a, b, xp=xj))(jz, jl),
                                   jnp.logaddexp(0.0, jz) - jl * jz, rtol=1e-15, atol=0)
        # The gradient is the textbook sigmoid(z) - y in both frameworks.
        grad = jax.grad(lambda a: per_graph_loss("bce", a, jl, xp=xj).sum())(jz)
        np.testing.assert_allclose(grad, jax.nn.sigmoid(jz) - jl, rtol=1e-12, atol=1e-15)
        # fnorm at a perfect prediction: a zero gradient, not NaN
        g0 = jax.grad(lambda a: per_graph_loss("fnorm", a, jnp.asarray(y), xp=xj).sum())(jnp.asarray(y))
        assert np.all(np.asarray(g0) == 0.0)
    t = torch.tensor(z, requires_grad=True)
    per_graph_loss("bce", t, torch.tensor(labels), xp=xt).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), 1 / (1 + np.exp(-z)) - labels, rtol=1e-12, atol=1e-15)
