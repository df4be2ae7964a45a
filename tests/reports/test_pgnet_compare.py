"""The comparison report scores each subset of a fold on exactly its crystals (zoo.reports.pgnet_compare)."""
from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from zoo.reports.pgnet_compare import point_group_symbol, score, summarise
from zoo.tasks import TargetSpec


def crystals():
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    zno = Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                    [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]])
    tio2 = Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                                     [[0, 0, 0], [0.305, 0.305, 0]])
    return {"nacl": nacl, "zno": zno, "tio2": tio2}


def test_point_groups_and_subset_scores():
    s = crystals()
    groups = {k: point_group_symbol(v) for k, v in s.items()}
    assert groups == {"nacl": "m-3m", "zno": "6mm", "tio2": "4/mmm"}

    ids = ["zno", "nacl", "tio2"]
    true = np.stack([np.diag([2.0, 2.0, 3.0]), 5.0 * np.eye(3), np.diag([4.0, 4.0, 6.0])])
    err = np.stack([np.zeros((3, 3)), 0.5 * np.eye(3), np.diag([1.0, 1.0, 0.0])])
    run = {"pred": {"id": ids, "y_true": true, "y_pred": true + err, "graph_failed": [False, False, True]},
           "target": TargetSpec(name="eps", kind="tensor", rank=2, formula="ij=ji")}
    got = score(run, s, groups, ["m-3m", "6mm"])
    # tio2's graph failed: it is in no subset; nacl alone is m-3m; all = zno and nacl
    assert got["all"]["n"] == 2 and got["m-3m"]["n"] == 1 and got["6mm"]["n"] == 1
    np.testing.assert_allclose(got["m-3m"]["fnorm"], np.linalg.norm(0.5 * np.eye(3)))
    np.testing.assert_allclose(got["6mm"]["fnorm"], 0.0, atol=1e-15)
    np.testing.assert_allclose(got["all"]["fnorm"], np.linalg.norm(0.5 * np.eye(3)) / 2)
    assert got["all"]["sym_violation_mean"] < 1e-12  # these predictions obey each crystal's group

    rows = [{"task": "t", "model": "m", "backend": "torch", "fold": f, "scores": got, "n_parameters": 7,
             "train_time_s": 10.0 * (f + 1)} for f in (0, 1)]
    summary = {r["subset"]: r for r in summarise(rows, ["all", "m-3m"])}
    assert summary["all"]["folds"] == [0, 1] and summary["all"]["n_test"] == 4 and summary["all"]["train_time_s"] == 15.0
