"""Frame consistency of the real tensor data sets, measured (the numbers in zoo/tasks/datasets/README.md).

For every row: the point group of the structure (spglib, several symprec), its symmetry defect, and the
relative symmetry deviation of the tensor(s) as stored, after pymatgen's inverse IEEE rotation, and the
best of the setting rotations; then the statuses that ``zoo.tasks.datasets.frames.fix_frames`` assigns with
the data set's tolerance. Prints a summary and writes it as JSON with ``--out``.

    OMP_NUM_THREADS=1 zoo report frames --data ../shared/data --out frames.json

(or ``python -m zoo.reports.frames ...``; ``--data`` defaults to ``$MATMINER_DATA``, else ../shared/data).

Slow-ish (a few minutes for the ~2100 rows on one core): it runs spglib and pymatgen per row.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings

import numpy as np
import spglib
from tqdm.auto import tqdm

from zoo.core import paths
from zoo.core.io import write_json
from zoo.symmetry import cartesian_point_group, rotate_tensor, symmetry_violation
from zoo.tasks.datasets import frames as F
from zoo.tasks.datasets import loaders, sources
from zoo.tensors import default_formula, isotropic_part

from .common import SHARED_DATA


def _spacegroup(structure, symprec):
    ds = spglib.get_symmetry_dataset((structure.lattice.matrix, structure.frac_coords, structure.atomic_numbers),
                                     symprec=symprec)
    return None if ds is None else int(ds.number)


def _q(x, qs=(0.5, 0.9, 0.99, 1.0)):
    x = np.asarray(x, dtype=float)
    return {f"q{int(q * 1000) / 10:g}": float(np.quantile(x, q)) for q in qs} if len(x) else {}


def analyse(name: str, df, info: sources.DatasetInfo, progress: bool = True) -> dict:
    cols = list(info.tensor_columns)
    out: dict = {"dataset": name, "n": len(df), "columns": cols, "tol": info.frame_tol, "atol": info.frame_atol,
                 "prior": info.frame_prior, "symprec": F.SYMPREC}
    # 1. symprec: how often spglib reproduces the recorded space group
    if "space_group" in df.columns:
        out["spacegroup_match"] = {
            str(sp): float(np.mean([_spacegroup(s, sp) == int(g) for s, g in zip(df["structure"], df["space_group"])]))
            for sp in (1e-3, 1e-2, 1e-1)}
    # 2. per-row deviations of every candidate frame
    rows = []
    for idx, row in tqdm(list(df.iterrows()), desc=name, disable=not progress, leave=False):
        s = row["structure"]
        Ts = [np.asarray(row[c], dtype=float) for c in cols]
        ops = cartesian_point_group(s, symprec=F.SYMPREC)
        defect = F.symmetry_defect(s)
        R = F.ieee_rotation(s)

        def dev(M):
            return max(symmetry_violation(rotate_tensor(T, M), ops) for T in Ts)

        d_asis = max(symmetry_violation(T, ops) for T in Ts)
        d_ieee = dev(R.T)
        d_set = min(dev(R.T @ Q.T) for Q in F.SETTING_ROTATIONS)
        # how much any rotation can change the tensor at most, relative: ||T - iso(T)|| / ||T||
        aniso = max(np.linalg.norm(T - isotropic_part(T, default_formula(T.ndim))) / np.linalg.norm(T) for T in Ts)
        rows.append({"id": idx, "n_ops": len(ops), "defect": defect, "as_is": d_asis, "ieee": d_ieee,
                     "setting": d_set, "anisotropy": aniso})
    dev = {k: np.array([r[k] for r in rows]) for k in rows[0]} if rows else {}
    defect = dev["defect"]
    out["defect"] = _q(defect)
    out["n_vacuous"] = int(np.sum(dev["n_ops"] == 1))  # point group 1: every frame passes
    out["consistent_as_is"] = int(np.sum(dev["as_is"] <= info.frame_tol + defect))
    exact = defect < 1e-6
    out["as_is_dev_exact_cells"] = _q(dev["as_is"][exact])
    best = np.minimum(np.minimum(dev["as_is"], dev["ieee"]), dev["setting"])
    out["best_dev_exact_cells"] = _q(best[exact])
    distorted = (defect >= 1e-6) & (best <= info.frame_tol + defect)
    out["best_dev_over_defect_distorted"] = _q(best[distorted] / defect[distorted])
    out["rows_best_fails"] = int(np.sum(best > info.frame_tol + defect))
    excess = best - defect
    failing = excess[best > info.frame_tol + defect]
    out["smallest_failing_excess"] = float(failing.min()) if len(failing) else None
    # a rotation that lowers the deviation >3x on a row with deviation > 1e-3: the frame was wrong
    out["rows_improvable_3x"] = int(np.sum((dev["as_is"] > 1e-3) & (np.minimum(dev["ieee"], dev["setting"]) < dev["as_is"] / 3)))
    out["anisotropy"] = _q(dev["anisotropy"])
    # a wrong frame can only be seen where rotating changes the tensor by more than the tolerance
    out["rows_anisotropy_gt_tol"] = int(np.sum(dev["anisotropy"] > info.frame_tol))
    # 3. statuses as the loaders assign them
    fixed = F.fix_frames(df, cols, tol=info.frame_tol, atol=info.frame_atol, prior=info.frame_prior,
                         progress=progress)
    out["status_counts"] = F.frame_counts(fixed)
    out["status_x_ambiguous"] = {
        s: {"ambiguous": int(((fixed.frame_status == s) & fixed.frame_ambiguous).sum()),
            "unique": int(((fixed.frame_status == s) & ~fixed.frame_ambiguous).sum())} for s in F.STATUSES}
    out["consistent_after"] = int((fixed.frame_status != F.STATUS_INCONSISTENT).sum())
    out["inconsistent_ids"] = list(fixed.index[fixed.frame_status == F.STATUS_INCONSISTENT])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="folder with the data sets (sub-folders allowed; default: "
                    "$MATMINER_DATA, else ../shared/data next to the checkout)")
    ap.add_argument("--datasets", nargs="*", default=["mp_dielectric", "mp_piezoelectric", "mp_elastic_matten"])
    ap.add_argument("--out", default=None, help="write the summary as JSON here")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    data, _ = paths.resolve_data_dir(args.data)
    data = data or SHARED_DATA
    summary = {}
    for name in args.datasets:
        info = sources.dataset_info(name)
        try:
            df = loaders.load(name, data_dir=data, fix_frames=False, progress=not args.no_progress)
        except sources.DataNotFoundError as exc:
            print(f"{name}: skipped ({exc})", file=sys.stderr)
            continue
        summary[name] = analyse(name, df, info, progress=not args.no_progress)
        print(json.dumps(summary[name], indent=1))
    if args.out:
        write_json(args.out, summary)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
