"""benchmarks/exclude_ids.py writes exactly the ids that ``zoo train --task T --fold K`` holds out."""
from __future__ import annotations

import pytest

from tests.helpers import SHARED_DATA

MATTEN = SHARED_DATA / "mp_elastic_tensor_matten_n100"


@pytest.mark.skipif(not MATTEN.is_dir(), reason="no shared MatTen data")
def test_fold_ids_are_the_trainers_split(tmp_path):
    from benchmarks.exclude_ids import fold_ids, main
    from zoo.graphs import GraphSpec
    from zoo.tasks.datasets import read_id_file
    from zoo.training import TrainConfig
    from zoo.training.data import build_task, load_fold

    parts = fold_ids("mp_elastic_matten_n100", 2, str(MATTEN))
    config = TrainConfig(task="mp_elastic_matten_n100", fold=2, data_dir=str(MATTEN), progress=False, graph_cache=False)
    data = load_fold(build_task(config.task, {}, config.data_dir, progress=False), 2, config, GraphSpec(radius=5.0))
    assert (sorted(data.train.ids), sorted(data.val.ids), sorted(data.test.ids)) == (
        sorted(parts["train"]), parts["val"], parts["test"])
    out = main(["--task", "mp_elastic_matten_n100", "--data-dir", str(MATTEN), "--fold", "2", "--out", str(tmp_path / "ids.txt")])
    assert read_id_file(out)["ids"] == frozenset(parts["val"] + parts["test"])
