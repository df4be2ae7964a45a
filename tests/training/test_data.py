"""The fold as training sees it (zoo.training.data)."""
from __future__ import annotations




def test_validation_split_is_seeded_and_inside_train(task):
    from zoo.training import TrainConfig
    from zoo.training.data import validation_ids

    ids = [f"s{i}" for i in range(50)]

    class NoVal:
        def get_validation_ids(self, fold):
            return None

    c = TrainConfig()
    v1, v2 = validation_ids(NoVal(), 0, ids, c), validation_ids(NoVal(), 0, ids, c)
    assert v1 == v2 and len(v1) == 5 and set(v1) <= set(ids)
    assert validation_ids(NoVal(), 1, ids, c) != v1  # another fold, another draw
    # A task with a fixed validation split is obeyed.
    tv_ids = [str(i) for i in task.get_train_and_val_data(0)[0].index]
    assert validation_ids(task, 0, tv_ids, c) == task.get_validation_ids(0)

