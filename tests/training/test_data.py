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



def test_grouped_batches_hold_one_key_and_cover_every_index_once():
    import numpy as np

    from zoo.training.data import batches

    keys = [i % 3 == 0 for i in range(23)]  # two groups of 8 and 15
    order = np.random.default_rng(0).permutation(23)
    got = batches(23, 4, order, keys)
    assert sorted(np.concatenate(got).tolist()) == list(range(23))
    assert all(len({keys[i] for i in b}) == 1 and 1 <= len(b) <= 4 for b in got)
    assert len(got) == 2 + 4  # ceil(8/4) + ceil(15/4)
    # within a group the permutation's order is kept; without groups, plain consecutive chunks
    first = [i for i in order if keys[i] == keys[order[0]]]
    assert np.concatenate([b for b in got if keys[b[0]] == keys[order[0]]]).tolist() == first
    assert [b.tolist() for b in batches(5, 2)] == [[0, 1], [2, 3], [4]]


def test_predictions_come_back_in_input_order_when_batches_are_grouped():
    import numpy as np

    from zoo.training.adapter import index_batches, predict_graphs

    class Keyed:  # a family config that batches odd and even graphs apart
        @staticmethod
        def batch_key(g):
            return g % 2

    class Echo:  # an adapter whose prediction for a graph is the graph itself
        model_config = Keyed()

        def make_batch(self, graphs, y):
            return list(graphs)

        def predict(self, batch):
            return np.asarray(batch, dtype=float)

    graphs = [5, 2, 7, 4, 4, 1, 0]
    assert all(len({g % 2 for g in (graphs[i] for i in b)}) == 1 for b in index_batches(Echo(), graphs, 2))
    np.testing.assert_array_equal(predict_graphs(Echo(), graphs, 2), graphs)
    made = [Echo().make_batch([graphs[i] for i in b], None) for b in index_batches(Echo(), graphs, 2)]
    np.testing.assert_array_equal(predict_graphs(Echo(), graphs, 2, made), graphs)


def test_no_progress_reaches_a_task_that_draws_bars(monkeypatch):
    """--no-progress silences the tensor datasets' frame-check bar too (it reached only the trainer's)."""
    from types import SimpleNamespace

    from zoo import tasks
    from zoo.training.data import build_task

    seen = []

    def factory(data_dir=None, progress=True):
        seen.append(progress)
        return "task"

    monkeypatch.setattr(tasks.TASKS, "get", lambda name: SimpleNamespace(factory=factory))
    build_task("mp_dielectric_total", {}, None, progress=False)
    build_task("mp_dielectric_total", {}, None)
    build_task("mp_dielectric_total", {"progress": True}, None, progress=False)  # an explicit --task-arg wins
    assert seen == [False, True, True]
