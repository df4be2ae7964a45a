"""Symmetry violation of a tensor model, crystal by crystal: where the violation of one run folder comes from.

Usage::

    zoo report symmetry_violation runs/<run folder> [--data-dir ../shared/data] [--top 15]

(or ``python -m zoo.reports.symmetry_violation ...``). For every test crystal of the run
(``predictions_test.csv`` written by ``zoo train``) it prints and stores
(``<run>/symmetry_violation.json``, atomic) the crystal's point group (spglib, the symprec the metric
uses), whether the group forces the target tensor to vanish (the dimension of the allowed subspace), the
norms of the true and predicted tensors, and the violation ||T - Sym_G T||_F / ||T||_F of the prediction
(``zoo.symmetry.symmetry_violation``).

The relative violation is ill-conditioned where the group allows (almost) nothing: a crystal whose
point group forbids the tensor (e.g. a centrosymmetric one for a piezoelectric tensor) has an exactly
equivariant model's prediction equal to zero only in exact arithmetic; in float32 what is left is
rounding noise with no symmetry at all, so its *relative* violation is ~1 however small it is. The
report therefore also gives the violation over the crystals whose group allows a non-zero tensor,
and the absolute violation ||T - Sym_G T||_F in the target's unit.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import spglib

from zoo.core.io import write_json
from zoo.symmetry import neumann_operator, point_group_ops, symmetry_violation
from zoo.tensors import index_projector

from .common import ReportError, get_task, resolve_data_dir


def crystal_rows(run: Path, cfg: dict[str, Any], data_dir: Path | None) -> tuple[pd.DataFrame, str]:
    """(one row per test crystal of the run, sorted by violation, largest first; the target's unit).
    ``cfg``: the "train" section of the run's config.json."""
    task = get_task(cfg["task"], data_dir, **cfg.get("task_kwargs", {}))
    task.load()
    spec = task.spec.target
    df = pd.read_csv(run / "predictions_test.csv")
    structures, _ = task.get_test_data(cfg["fold"], include_target=True)
    by_id = dict(zip(task.get_test_ids(cfg["fold"]), structures))
    shape = (3,) * spec.rank
    true_cols = [c for c in df.columns if c.startswith("y_true_")]
    pred_cols = [c for c in df.columns if c.startswith("y_pred_")]
    P = index_projector(spec.formula or "ijkl"[: spec.rank])
    rows = []
    for _, r in df.iterrows():
        s = by_id[r["id"]]
        (ops,) = point_group_ops([s], progress=False)
        T = r[pred_cols].to_numpy(float).reshape(shape)
        Y = r[true_cols].to_numpy(float).reshape(shape)
        M = neumann_operator(ops, spec.rank)
        # dimension of the tensors the crystal allows: trace of Sym_G times the index-symmetry projector
        # (commuting projectors); 0 e.g. for a piezoelectric tensor in a centrosymmetric crystal or in 432
        allowed = int(round(np.trace(M @ P)))
        sym = spglib.get_symmetry_dataset((s.lattice.matrix, s.frac_coords, [site.specie.Z for site in s]), symprec=1e-3)
        flat = T.reshape(-1)
        rows.append({
            "id": r["id"], "formula": s.composition.reduced_formula, "point_group": sym.pointgroup, "order": len(ops),
            "allowed_dim": allowed, "norm_true": float(np.linalg.norm(Y)), "norm_pred": float(np.linalg.norm(T)),
            "violation": symmetry_violation(T, ops), "abs_violation": float(np.linalg.norm(flat - M @ flat)),
        })
    return pd.DataFrame(rows).sort_values("violation", ascending=False), spec.unit


def summarise(out: pd.DataFrame, run: Path, cfg: dict[str, Any], unit: str) -> dict[str, Any]:
    forbids = out["allowed_dim"] == 0
    return {
        "run": run.name, "task": cfg["task"], "fold": cfg["fold"], "n": len(out),
        "violation_mean": float(out["violation"].mean()), "violation_median": float(out["violation"].median()),
        "n_group_forbids_tensor": int(forbids.sum()),
        "violation_mean_where_allowed": float(out.loc[~forbids, "violation"].mean()) if (~forbids).any() else None,
        "violation_mean_where_forbidden": float(out.loc[forbids, "violation"].mean()) if forbids.any() else None,
        "norm_pred_max_where_forbidden": float(out.loc[forbids, "norm_pred"].max()) if forbids.any() else None,
        "norm_pred_median_where_allowed": float(out.loc[~forbids, "norm_pred"].median()) if (~forbids).any() else None,
        "abs_violation_max": float(out["abs_violation"].max()),
        "unit": unit,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--data-dir", default=None,
                   help="folder with the real data files (default: $MATMINER_DATA, else ../shared/data when present)")
    p.add_argument("--top", type=int, default=15, help="crystals with the largest violation to print")
    args = p.parse_args(argv)

    config = args.run / "config.json"
    if not config.is_file() or not (args.run / "predictions_test.csv").is_file():
        print(f"zoo report symmetry_violation: error: {args.run} is not a finished `zoo train` run folder (it needs "
              "config.json and predictions_test.csv)", file=sys.stderr)
        return 2
    cfg = json.loads(config.read_text())["train"]
    try:
        data_dir = resolve_data_dir(args.data_dir, [cfg["task"]])
    except ReportError as exc:
        print(f"zoo report symmetry_violation: error: {exc}", file=sys.stderr)
        return 2
    out, unit = crystal_rows(args.run, cfg, data_dir)
    summary = summarise(out, args.run, cfg, unit)
    print(out.head(args.top).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(json.dumps(summary, indent=1))
    write_json(args.run / "symmetry_violation.json", {"summary": summary, "crystals": out.to_dict(orient="records")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
