"""``segment_max`` (added for the hypergraph's max/min aggregation) agrees between the backends: values, empty
segments (0, where jax alone gives -inf) and gradients (shared equally between tied maxima)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from zoo.backend import OPS  # noqa: E402
from zoo.backend import jax as bj  # noqa: E402
from zoo.backend import torch as bt  # noqa: E402


def test_segment_max_is_an_op_of_both_backends():
    assert "segment_max" in OPS and hasattr(bt, "segment_max") and hasattr(bj, "segment_max")


def test_segment_max_values_empty_segments_and_tied_gradients_agree():
    x = np.array([[1.0, 2.0], [1.0, 3.0], [0.5, 3.0], [-2.0, -1.0], [4.0, -3.0]])
    idx = np.array([0, 0, 0, 2, 2])  # segment 1 and 3 are empty; ties in segment 0 (column 0 and 1)
    w = np.arange(8.0).reshape(4, 2) + 1.0
    with jax.enable_x64(True):
        t = torch.tensor(x, requires_grad=True)
        out_t = bt.segment_max(t, torch.tensor(idx), 4)
        (out_t * torch.tensor(w)).sum().backward()
        grad_j = jax.grad(lambda v: jnp.sum(bj.segment_max(v, jnp.asarray(idx), 4) * w))(jnp.asarray(x))
        out_j = np.asarray(bj.segment_max(jnp.asarray(x), jnp.asarray(idx), 4))
    want = np.array([[1.0, 3.0], [0.0, 0.0], [4.0, -1.0], [0.0, 0.0]])  # negative maxima stay negative
    np.testing.assert_array_equal(out_t.detach().numpy(), want)
    np.testing.assert_array_equal(out_j, want)
    np.testing.assert_allclose(t.grad.numpy(), np.asarray(grad_j), rtol=0, atol=0)
    assert t.grad.numpy()[0, 0] == t.grad.numpy()[1, 0] == 0.5 * w[0, 0]  # a tie shares the gradient
