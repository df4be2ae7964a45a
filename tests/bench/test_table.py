"""The main job's table, JSON, markdown and plot (``zoo.bench.table``) on a tiny synthetic matrix."""
from __future__ import annotations

import json

from zoo.bench import run, table

ROWS = [
    {"model": "cgcnn", "backend": "torch", "task": "embedded_dielectric_iso", "metric": "mae", "value": 3.5, "floor": 4.9,
     "equivariance_f64": 1e-15, "equivariance_f32": 2e-7, "parity_f64": 3e-15, "parity_f32": 1e-6, "symmetry_violation": None,
     "parameters": 80833, "train_structures_per_s": 200.0, "infer_structures_per_s": 600.0, "compile_s": 0.0},
    {"model": "tfn", "backend": "jax", "task": "embedded_dielectric", "metric": "mae", "value": 9.0, "floor": 10.0,
     "equivariance_f64": 1e-14, "equivariance_f32": 3e-7, "parity_f64": 4e-15, "parity_f32": 2e-6, "symmetry_violation": 2e-7,
     "parameters": 30000, "train_structures_per_s": 50.0, "infer_structures_per_s": 150.0, "compile_s": 42.0},
    {"model": "pgnet", "backend": "jax", "task": "embedded_dielectric", "error": "RuntimeError: boom"},
]


def test_text_table_has_every_column_and_marks_missing_and_failed_rows():
    text = table.text_table(ROWS)
    header = text.splitlines()[0]
    for h, _, _ in table.COLUMNS:
        assert h in header
    cgcnn = next(line for line in text.splitlines() if line.startswith("cgcnn"))
    assert "80,833" in cgcnn and "3.5" in cgcnn and "4.9" in cgcnn and " - " in cgcnn  # no symmetry violation for a scalar
    assert "failed: pgnet/jax: RuntimeError: boom" in text
    pgnet = next(line for line in text.splitlines() if line.startswith("pgnet"))
    assert pgnet.split()[3:] == ["-"] * (len(table.COLUMNS) - 3)


def test_write_gives_json_with_provenance_markdown_and_a_plot(tmp_path):
    paths = table.write(ROWS, tmp_path / "bench", {"wall_s": 12.0, "recipes": {"cgcnn": {"epochs": 8}}})
    record = json.loads(paths["json"].read_text())
    assert record["rows"] == ROWS
    meta = record["meta"]
    assert meta["wall_s"] == 12.0 and len(meta["machine"]["load_average_1_5_15"]) == 3
    assert "commit" in meta["git"] and meta["packages"]["numpy"]
    md = paths["markdown"].read_text()
    assert "| cgcnn | torch | embedded_dielectric_iso | mae | 3.5 | 4.9 |" in md
    assert "![accuracy against throughput](bench.png)" in md and "`cgcnn`: {'epochs': 8}" in md
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("bench/*.tmp*"))  # atomic writes leave nothing behind


def test_merge_replaces_only_the_remeasured_rows_in_matrix_order(tmp_path):
    path = tmp_path / "bench.json"
    old = [dict(ROWS[1], value=1.0), dict(ROWS[0])]
    path.write_text(json.dumps({"rows": old}))
    new = [dict(ROWS[0], value=2.0), {"model": "cgcnn", "backend": "jax", "task": "embedded_dielectric_iso", "value": 3.0}]
    merged = run.merge_rows(path, new)
    assert [(r["model"], r["backend"]) for r in merged] == [("cgcnn", "torch"), ("cgcnn", "jax"), ("tfn", "jax")]
    assert [r["value"] for r in merged] == [2.0, 3.0, 1.0]
