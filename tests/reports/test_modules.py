"""Every report module is a ``zoo report NAME`` sub-command: a one-line description and ``main(argv)``."""
from __future__ import annotations

import importlib
import pkgutil

import pytest

import zoo.reports

REPORTS = ("chgcnn", "equivariance", "floors", "frames", "leaderboard", "model_table", "pgnet_compare", "pgnet_symmetry", "point_groups", "symmetry_violation", "tensor_results")


def test_the_reports_are_the_modules_with_main():
    found = sorted(m.name for m in pkgutil.iter_modules(zoo.reports.__path__)
                   if callable(getattr(importlib.import_module(f"zoo.reports.{m.name}"), "main", None)))
    assert found == sorted(REPORTS)


@pytest.mark.parametrize("name", REPORTS)
def test_docstring_and_help(name, capsys):
    mod = importlib.import_module(f"zoo.reports.{name}")
    first = mod.__doc__.strip().splitlines()[0]
    assert first and not first.endswith(":")  # the line `zoo report` lists
    with pytest.raises(SystemExit) as exc:
        mod.main(["--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out
