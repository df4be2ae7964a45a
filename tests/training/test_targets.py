"""Target standardisation (zoo.training.targets)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from zoo.tasks.spec import TargetSpec


def test_normalizer_scalar_round_trip():
    from zoo.training import TargetNormalizer

    y = np.array([1.0, 2.0, 4.0, 9.0])
    n = TargetNormalizer.fit(y, TargetSpec("y"))
    z = n.forward(y)
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12
    np.testing.assert_allclose(n.inverse(z), y, rtol=0, atol=1e-12)
    assert TargetNormalizer.from_dict(json.loads(json.dumps(n.to_dict()))).to_dict() == n.to_dict()


def test_normalizer_tensor_commutes_with_rotations():
    """Scale-only and O(3)-invariant: normalising a rotated tensor = rotating the normalised one."""
    from scipy.spatial.transform import Rotation

    from zoo.symmetry import rotate_tensor
    from zoo.training import TargetNormalizer

    rng = np.random.default_rng(1)
    T = rng.normal(size=(20, 3, 3))
    T = T + T.transpose(0, 2, 1) + 5 * np.eye(3)
    spec = TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji")
    n = TargetNormalizer.fit(T, spec)
    R = Rotation.random(random_state=3).as_matrix() * -1.0  # an improper rotation (O(3), det -1)
    TR = np.stack([rotate_tensor(t, R) for t in T])
    n_rot = TargetNormalizer.fit(TR, spec)
    assert n_rot.scale == pytest.approx(n.scale, rel=1e-12)
    np.testing.assert_allclose(n_rot.forward(TR), np.stack([rotate_tensor(z, R) for z in n.forward(T)]), atol=1e-12)
    assert np.all(n.mean == 0)
    # The scale is the RMS component: standardised tensors have unit mean square component.
    assert np.mean(n.forward(T) ** 2) == pytest.approx(1.0, rel=1e-12)



def test_class_scores_use_matbench_threshold():
    """One threshold everywhere: a probability of exactly 0.5 is the negative class (matbench: p > 0.5),
    so a run folder's accuracy and a recorded matbench score cannot disagree."""
    from zoo.tasks.metrics import classification_metrics
    from zoo.training import compute_metrics

    target = TargetSpec("c", kind="class")
    y, p = np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.5, 0.9, 0.2, 0.7])
    scores = compute_metrics(target, y, p)
    assert scores["accuracy"] == 1.0
    assert scores == classification_metrics(y, p)
    assert compute_metrics(target, y[:0], p[:0]) == {"n": 0}


def test_scores_are_the_tasks_own():
    from zoo.tasks.metrics import scalar_metrics, tensor_metrics
    from zoo.training import compute_metrics

    rng = np.random.default_rng(0)
    y, p = rng.normal(size=12), rng.normal(size=12)
    assert compute_metrics(TargetSpec("y"), y, p) == scalar_metrics(y, p)
    T, P = rng.normal(size=(5, 3, 3)), rng.normal(size=(5, 3, 3))
    spec = TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji")
    assert compute_metrics(spec, T, P) == tensor_metrics(T, P, formula="ij=ji")


def test_loss_choice():
    from zoo.training import TrainConfig
    from zoo.training.targets import resolve_loss

    assert resolve_loss(TrainConfig(), TargetSpec("y")) == "mse"
    assert resolve_loss(TrainConfig(), TargetSpec("c", kind="class")) == "bce"
    assert resolve_loss(TrainConfig(loss="l1"), TargetSpec("y")) == "l1"
    with pytest.raises(ValueError, match="does not fit"):
        resolve_loss(TrainConfig(loss="bce"), TargetSpec("y"))
