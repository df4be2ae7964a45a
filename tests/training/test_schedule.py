"""The learning-rate schedule (zoo.training.schedule)."""
from __future__ import annotations

import json
import math

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


def test_early_stopping_counts_only_once_the_lr_has_decayed():
    """Patience counts epochs whose LR is within patience_lr_fraction of the way from its floor to its peak: a
    300-epoch cosine run (the CGCNN example of issue #11: stopped at epoch 133 at ~0.6 of the peak LR) cannot
    stop before ~80 % of its epochs; a high floor does not turn stopping off; a constant LR counts from the start."""
    from zoo.training import LRSchedule, TrainConfig

    s = LRSchedule(TrainConfig(epochs=300, lr=1e-3, patience_lr_fraction=0.1), steps_per_epoch=8)
    last_step = [8 * e - 1 for e in range(1, 301)]
    assert s.lr(last_step[132]) > 0.5e-3 and not s.annealed(last_step[132])
    first = next(e for e, k in enumerate(last_step, start=1) if s.annealed(k))
    assert 235 <= first <= 245
    bar = 1e-5 + 0.1 * (1e-3 - 1e-5)
    assert s.lr(last_step[first - 1]) <= bar < s.lr(last_step[first - 2])
    assert all(s.annealed(k) for k in last_step[first - 1:])  # and it stays so
    assert not s.annealed(0)  # warm-up: the LR is small but has not decayed

    assert LRSchedule(TrainConfig(epochs=300, schedule="constant"), 8).annealed(0)
    old_rule = LRSchedule(TrainConfig(epochs=300, patience_lr_fraction=1.0), 8)
    assert all(old_rule.annealed(k) for k in last_step)
    high_floor = LRSchedule(TrainConfig(epochs=10, min_lr_factor=0.3, patience_lr_fraction=0.1), 5)
    assert high_floor.annealed(49) and not high_floor.annealed(25)

    p = LRSchedule(TrainConfig(epochs=100, schedule="plateau", warmup_epochs=0, plateau_patience=1, plateau_factor=0.5,
                               patience_lr_fraction=0.2), 5)
    for m in (1.0, 1.0, 1.0):  # two cuts: 0.25 of the peak, not yet decayed enough (bar 0.01 + 0.2 * 0.99)
        p.end_epoch(m)
    assert not p.annealed(10)
    p.end_epoch(1.0)  # 0.125
    assert p.annealed(10)


def test_old_run_configs_keep_the_old_stopping_rule():
    from zoo.training import TrainConfig

    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "patience_lr_fraction"}
    assert TrainConfig.from_dict(old).patience_lr_fraction == 1.0
    assert TrainConfig.from_dict(TrainConfig().to_dict()).patience_lr_fraction == 0.1
    with pytest.raises(ValueError, match="patience_lr_fraction"):
        TrainConfig(patience_lr_fraction=0.0)


@pytest.mark.parametrize("fraction", [1.0, 0.1])
def test_training_stops_where_the_schedule_allows(tmp_path, fraction):
    """A run whose validation score never improves (LR 1e-30: the weights never change) stops after
    ``patience`` epochs that count, and no earlier: at epoch 1 + patience with the old rule, in the
    cosine's tail with patience_lr_fraction=0.1."""
    from tests.helpers import toy_task
    from zoo.core.io import read_jsonl
    from zoo.training import LRSchedule, train

    from .common import cfg

    c = cfg(tmp_path, model="tfn", model_overrides={"hidden_irreps": "4x0e+2x1o", "n_layers": 1, "radial_hidden": 8},
            epochs=12, lr=1e-30, patience=2, patience_lr_fraction=fraction)
    res = train(c, task=toy_task())
    log = read_jsonl(res.run_dir / "metrics.jsonl")
    assert len({r["val_mae"] for r in log}) == 1 and res.summary["best_epoch"] == 1
    steps = math.ceil(res.summary["n"]["train"] / c.batch_size)
    s = LRSchedule(c, steps)
    counted = [e for e in range(2, 13) if s.annealed(e * steps - 1)]
    expected = counted[1] if len(counted) >= 2 else 12
    assert res.summary["epochs_run"] == expected
    if fraction == 1.0:
        assert expected == 3
    else:
        assert expected >= 10
