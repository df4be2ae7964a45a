"""`zoo predict NAME file.cif ...` of pretrained entries in both backends, side by side: results/pretrained/predict_check.{json,md}.

    .venv/bin/python benchmarks/pretrained_predict_check.py NAME ... [--dtype float32|float64] [--files a.cif ...]

Runs the command line itself (one process per entry and backend, ``--json``), on the golden structures of
``tests/pretrained/data`` unless ``--files`` are given, and records every prediction and the largest difference
between the backends relative to the largest |prediction| of the entry. Entries measured before are kept, so the
file collects every entry's check; a name checked again replaces its record.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoo.core.io import write_json, write_text  # noqa: E402

OUT = ROOT / "results" / "pretrained" / "predict_check"
ZOO = ROOT / ".venv" / "bin" / "zoo"


def predict(name: str, backend: str, files: list[str], dtype: str | None) -> tuple[dict, float]:
    cmd = [str(ZOO), "predict", name, *files, "--backend", backend, "--json"] + (["--dtype", dtype] if dtype else [])
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout), time.perf_counter() - start


def markdown(doc: dict) -> str:
    lines = ["# `zoo predict` in both backends", "",
             "Written by `benchmarks/pretrained_predict_check.py`: one `zoo predict NAME FILES --backend B --json` process per "
             "entry and backend on the golden structures (`tests/pretrained/data/crystal_*.cif`). Relative difference: "
             "max |torch - jax| / max |torch| over every structure and component.", "",
             "| entry | dtype | target (unit) | torch, first structure | max rel. difference torch vs jax | wall s torch / jax | load before |",
             "|---|---|---|---|---|---|---|"]
    for name, r in sorted(doc["entries"].items()):
        first = np.asarray(next(iter(r["predictions"]["torch"].values())))
        shown = f"{float(first):.6g}" if first.ndim == 0 else f"diag {np.round(np.diag(first.reshape(3, -1)[:, :3]), 4).tolist()}"
        lines.append(f"| {name} | {r['dtype']} | {r['target']} ({r['unit'] or '-'}) | {shown} | {r['max_rel_diff']:.2e} | "
                     f"{r['wall_s']['torch']:.1f} / {r['wall_s']['jax']:.1f} | {r['load_before']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="+")
    p.add_argument("--dtype", default=None, help="default: each entry's training dtype (what a user gets)")
    p.add_argument("--files", nargs="*", default=None)
    a = p.parse_args(argv)
    files = a.files or sorted(str(f.relative_to(ROOT)) for f in (ROOT / "tests" / "pretrained" / "data").glob("crystal_*.cif"))
    path = OUT.with_suffix(".json")
    doc = json.loads(path.read_text()) if path.is_file() else {"entries": {}}
    for name in a.names:
        load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
        res, wall = {}, {}
        for backend in ("torch", "jax"):
            res[backend], wall[backend] = predict(name, backend, files, a.dtype)
        t = np.asarray([res["torch"]["predictions"][f] for f in files], dtype=float)
        j = np.asarray([res["jax"]["predictions"][f] for f in files], dtype=float)
        doc["entries"][res["torch"]["model"]] = {
            "dtype": a.dtype or "training dtype", "files": files, "target": res["torch"]["target"], "unit": res["torch"]["unit"],
            "predictions": {b: res[b]["predictions"] for b in res}, "max_rel_diff": float(np.abs(t - j).max() / np.abs(t).max()),
            "wall_s": wall, "load_before": " ".join(load), "machine": f"{platform.processor() or platform.machine()}"}
        print(f"{name}: max rel. difference {doc['entries'][res['torch']['model']]['max_rel_diff']:.2e}")
    write_json(path, doc)
    write_text(OUT.with_suffix(".md"), markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
