"""The hyperedge aggregation (zoo.nn.hyper): the fixed-arity and segment forms give the same statistics, the
standard deviation has a finite gradient where members are equal, and the attention combination works at any
width (the published CHGCNN attention was fixed to 64 channels)."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.nn.hyper import AGGREGATIONS, STD_EPS, aggregate_fixed, aggregate_segments, check_aggregations, combine, combined_width

torch = pytest.importorskip("torch")
from zoo.backend import torch as xp  # noqa: E402


def _members(rng, H=5, A=7, arity=3):
    return [torch.tensor(rng.normal(size=(H, A))) for _ in range(arity)]


def test_fixed_and_segment_aggregations_agree():
    rng = np.random.default_rng(0)
    members = _members(rng)
    fixed = aggregate_fixed(members, AGGREGATIONS, xp)
    H = members[0].shape[0]
    # the same hyperedges as incidence rows, interleaved (row order must not matter)
    x = torch.cat(members, 0)
    seg = torch.arange(H).repeat(len(members))
    perm = torch.as_tensor(rng.permutation(len(seg)))
    seg_stats = aggregate_segments(x[perm], seg[perm], H, AGGREGATIONS, xp)
    stacked = np.stack([m.numpy() for m in members])
    want = [stacked.mean(0), np.sqrt(stacked.var(0) + STD_EPS), stacked.max(0), stacked.min(0)]
    for a, b, w in zip(fixed, seg_stats, want):
        np.testing.assert_allclose(a.numpy(), w, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(b.numpy(), w, rtol=1e-13, atol=1e-13)


def test_std_of_equal_members_has_a_finite_gradient_and_empty_segments_are_zero():
    x = torch.ones(4, 3, dtype=torch.float64, requires_grad=True)
    stats = aggregate_segments(x, torch.tensor([0, 0, 0, 2]), 3, ("std", "max", "min", "mean"), xp)
    sum(s.sum() for s in stats).backward()
    assert torch.isfinite(x.grad).all()
    np.testing.assert_allclose(stats[0][0].detach().numpy(), np.sqrt(STD_EPS))
    for s in stats[1:]:
        assert (s[1] == 0).all()  # segment 1 has no member


@pytest.mark.parametrize("width", [24, 40, 64])
def test_attention_combination_works_at_any_width(width):
    rng = np.random.default_rng(width)
    stats = [torch.tensor(rng.normal(size=(6, width))) for _ in AGGREGATIONS]
    query = torch.tensor(rng.normal(size=width))
    out = combine(stats, "attention", xp, query=query).numpy()
    assert out.shape == (6, width) == (6, combined_width(width, AGGREGATIONS, "attention"))
    s = np.stack([t.numpy() for t in stats], 1)  # (H, k, A)
    scores = s @ query.numpy() / np.sqrt(width)
    w = np.exp(scores - scores.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    np.testing.assert_allclose(out, np.einsum("hk,hka->ha", w, s), rtol=1e-12)
    assert combine(stats, "concat", xp).shape == (6, 4 * width)
    with pytest.raises(ValueError, match="query has 3 entries but the features are"):
        combine(stats, "attention", xp, query=query[:3])


def test_aggregation_names_are_checked():
    assert check_aggregations(["max", "mean"]) == ("max", "mean")
    for bad in ((), ("mean", "mean"), ("median",)):
        with pytest.raises(ValueError, match="distinct names"):
            check_aggregations(bad)
