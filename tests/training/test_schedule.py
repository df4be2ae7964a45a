"""The learning-rate schedule (zoo.training.schedule)."""
from __future__ import annotations

import json

import pytest


def test_cosine_and_plateau_schedules():
    from zoo.training import LRSchedule, TrainConfig

    c = TrainConfig(epochs=10, lr=1e-2, warmup_epochs=1, min_lr_factor=0.01)
    s = LRSchedule(c, steps_per_epoch=10)
    assert s.warmup == 10
    assert s.lr(0) == pytest.approx(1e-3) and s.lr(9) == pytest.approx(1e-2)
    assert s.lr(10) == pytest.approx(1e-2)
    assert s.lr(100) == pytest.approx(1e-4, rel=1e-12)  # cosine ends at lr * min_lr_factor
    assert 1e-4 < s.lr(99) < 1.1e-4
    lrs = [s.lr(k) for k in range(10, 100)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))

    p = LRSchedule(TrainConfig(epochs=10, lr=1e-2, schedule="plateau", warmup_epochs=0, plateau_patience=2, plateau_factor=0.5), 5)
    for m in (1.0, 0.5, 0.6, 0.7):  # two epochs without improvement -> halve
        p.end_epoch(m)
    assert p.lr(30) == pytest.approx(5e-3)
    q = LRSchedule(TrainConfig(epochs=10, lr=1e-2, schedule="plateau", warmup_epochs=0), 5)
    q.load_state_dict(json.loads(json.dumps(p.state_dict())))
    assert q.lr(30) == p.lr(30) and q.state_dict() == p.state_dict()



def test_plateau_follows_the_direction_of_the_selection_score():
    """A rising score is progress when larger is better (r2, accuracy) and stagnation otherwise."""
    from zoo.training import LRSchedule, TrainConfig

    c = TrainConfig(epochs=10, lr=1e-2, schedule="plateau", warmup_epochs=0, plateau_patience=2, plateau_factor=0.5)
    rising = (-0.5, -0.2, 0.1, 0.4)  # r2 can be negative: the 1e-4 margin points the right way either side of 0
    up, down = LRSchedule(c, 5, higher_is_better=True), LRSchedule(c, 5, higher_is_better=False)
    for m in rising:
        up.end_epoch(m)
        down.end_epoch(m)
    assert up.lr(30) == pytest.approx(1e-2) and up.best == 0.4
    assert down.lr(30) == pytest.approx(5e-3) and down.best == -0.5
    # A gain smaller than a relative 1e-4 is no progress, for negative scores too.
    flat = LRSchedule(c, 5, higher_is_better=True)
    for m in (-1.0, -1.0 + 5e-5, -1.0 + 9e-5):
        flat.end_epoch(m)
    assert flat.lr(30) == pytest.approx(5e-3)
