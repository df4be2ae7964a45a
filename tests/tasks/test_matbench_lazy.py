"""The lazy matbench task: folds read from matbench's files equal matbench's, and matbench's own class takes
over (in place) at the first use of its behaviour."""
from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import SHARED_DATA

pytest.importorskip("matbench")
pytest.importorskip("matminer")

from zoo.tasks.base import Task  # noqa: E402
from zoo.tasks.matbench import MATBENCH_ATTRS, MatbenchZooTask, matbench_task_class, split_ids  # noqa: E402

JDFT2D = SHARED_DATA / "matbench_jdft2d"
NAME = "matbench_jdft2d"


# jdft2d (the training default), the first task in matbench's file and the largest one
@pytest.mark.parametrize("name", [NAME, "matbench_dielectric", "matbench_mp_e_form"])
def test_fold_ids_read_without_matbench_equal_matbenchs_own(name):
    from matbench.metadata import mbv01_validation

    own = mbv01_validation.splits[name]
    ours = split_ids(name)
    assert list(ours) == list(own) == [f"fold_{i}" for i in range(5)]
    for key, fold in own.items():
        assert ours[key]["train"] == list(fold.train) and ours[key]["test"] == list(fold.test)  # same order too


def test_unknown_task_has_no_folds():
    with pytest.raises(KeyError, match="matbench_nope"):
        split_ids("matbench_nope")


def test_the_lazy_task_covers_matbenchs_public_attributes():
    # Every public attribute of matbench's task is either provided by the lazy task or switches it to
    # matbench's class (MATBENCH_ATTRS); a matbench release that adds one fails here.
    from matbench.task import MatbenchTask

    plain = MatbenchTask(NAME, autoload=False)
    public = {n for n in set(dir(MatbenchTask)) | set(vars(plain)) if not n.startswith("_")}
    lazy = MatbenchZooTask(NAME, data_dir=JDFT2D)
    provided = {n for n in set(dir(MatbenchZooTask)) | set(vars(lazy)) if not n.startswith("_")}
    assert public - provided <= MATBENCH_ATTRS
    assert (lazy.folds, lazy.folds_map) == (plain.folds, plain.folds_map)
    with pytest.raises(AttributeError, match="is_loaded"):
        lazy.is_loaded  # noqa: B018 - not matbench's: no switch, a plain AttributeError
    assert type(lazy) is MatbenchZooTask
    assert lazy.is_recorded == {f: False for f in range(5)}  # matbench's: the switch, through attribute access
    assert type(lazy) is matbench_task_class() and isinstance(lazy, MatbenchTask) and lazy.spec.name == NAME


@pytest.mark.data
def test_lazy_task_becomes_matbenchs_class_with_the_same_scores():
    from matbench.task import MatbenchTask

    if not (JDFT2D / "matbench_jdft2d.json.gz").exists():
        pytest.skip("../shared/data/matbench_jdft2d not available")
    t = MatbenchZooTask(NAME, data_dir=JDFT2D)
    assert isinstance(t, Task) and not isinstance(t, MatbenchTask)
    x, y = t.get_train_and_val_data(0)
    assert list(x.index) == split_ids(NAME)["fold_0"]["train"] and y.name == "exfoliation_en"
    assert not isinstance(t, MatbenchTask)  # reading data needs no matbench
    plain = MatbenchTask(NAME, autoload=False)
    plain.df = t.df
    rng = np.random.default_rng(0)
    for f in t.folds:
        _, truth = t.get_test_data(f, include_target=True)
        pred = truth.to_numpy() + rng.normal(0.0, 5.0, len(truth))
        t.record(f, pred)
        plain.record(f, pred)
        assert type(t) is matbench_task_class() and isinstance(t, MatbenchTask)
    assert t.scores == plain.scores and t.as_dict() == plain.as_dict()
    assert t.data_files and t.spec.name == NAME  # the zoo's additions survive the switch
