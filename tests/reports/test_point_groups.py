"""The report module writes the validation table, subduction tables and worked example."""
from __future__ import annotations

import json

import pytest

from zoo.reports import point_groups as report


def test_report_main_writes_json_and_markdown(tmp_path):
    pytest.importorskip("e3nn")
    rc = report.main(["--out", str(tmp_path), "--no-timings", "--groups", "Oh", "-3"])
    assert rc == 0
    data = json.loads((tmp_path / "validation.json").read_text())
    assert [r["group"] for r in data["validation"]] == ["m-3m", "-3"]
    assert data["totals"]["n_triples"] == 10**3 + 4**3
    assert max(data["totals"]["worst"].values()) <= 1e-12
    assert data["subduction_tables"]["m-3m"]["6"]["+"] == "A1g + A2g + Eg + T1g + 2T2g"
    ex = data["worked_example_Oh_T1u_T1u"]
    assert ex["product"] == {"A1g": 1, "Eg": 1, "T1g": 1, "T2g": 1}
    assert ex["channels"]["T1g"]["bracket"] > 0 and ex["channels"]["T1g"]["n_vanishing_brackets"] > 0
    text = (tmp_path / "README.md").read_text()
    assert "| m-3m | Oh | 48 | 1000 |" in text and "Subduction O(3) -> 6/mmm" in text
