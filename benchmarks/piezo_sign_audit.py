"""Is the sign of the MP piezoelectric tensors tied to their structures? An audit of the data and of the models.

A piezoelectric tensor is odd under inversion: invert the crystal and the tensor changes sign. An
O(3)-equivariant model therefore predicts the sign from the structure's orientation (which way the polar
axis or the cation-anion bonds point). That is only learnable when the data pair each tensor with a
structure in the same orientation. Two measurements:

1. **Data.** For the binary wurtzites (6mm, 4 sites) and zincblendes (-43m, 2 sites), the tensor projected
   on d, the unit vector of the shortest cation -> anion bond (the c-parallel one for wurtzite):
   e_ddd = e_ijk d_i d_j d_k (C/m^2). For the wurtzites this is e33 in the convention where +c runs from
   cation to anion along that bond, the convention in which AlN, GaN, InN and ZnO all have e33 > 0
   (Bernardini, Fiorentini & Vanderbilt, PRB 56, R10024, 1997). In a data set whose tensors follow their
   structures, chemically close compounds agree in sign.
2. **Models.** On the test predictions of run folders (``predictions_test.csv``), per point group: how often
   the prediction has the sign of the truth (cos(T, P) > 0.5 among |cos| > 0.5), against the floors fitted on
   the same folds (symmetrised training mean, element-linear) and the zero tensor; and the Fnorm that each
   would reach if its sign were free: min(||T - P||, ||T + P||).

    python benchmarks/piezo_sign_audit.py --data-dir ../shared/data/matminer_piezoelectric_tensor \\
        --runs runs/s24_piezo/tfn_f*/2026* --out results/tfn/piezo/sign_audit
"""
from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np
import pandas as pd

from zoo.core.io import write_json, write_text
from zoo.symmetry import point_group_ops
from zoo.tasks.datasets import load_cached
from zoo.training.data import build_task


def bond_projection(structure, tensor: np.ndarray, c_parallel: bool) -> float:
    """e_ddd along the shortest cation -> anion bond (c_parallel: the bond most parallel to the 6-fold axis)."""
    cat, an = sorted(structure.composition.elements, key=lambda e: e.X)
    i = next(k for k, site in enumerate(structure) if site.specie == cat)
    nbs = [n for n in structure.get_neighbors(structure[i], 4.0) if n.specie == an]
    if c_parallel:
        lengths = structure.lattice.abc
        axis = structure.lattice.matrix[int(np.argmax(np.abs(np.asarray(lengths) - np.median(lengths))))]
        axis = axis / np.linalg.norm(axis)
        # the c-parallel bond is the shortest anion straight above or below (a second, longer one lies on the
        # other side within the search radius in the larger cells, and would flip the sign)
        parallel = [n for n in nbs if abs((n.coords - structure[i].coords) @ axis) / n.nn_distance > 0.95]
        nb = min(parallel, key=lambda n: n.nn_distance)
    else:
        nb = min(nbs, key=lambda n: n.nn_distance)
    d = nb.coords - structure[i].coords
    d = d / np.linalg.norm(d)
    return float(np.einsum("ijk,i,j,k->", tensor, d, d, d))


def data_audit(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for mid, r in df.iterrows():
        s, pg = r["structure"], r["point_group"]
        if len(s.composition) != 2 or (pg, len(s)) not in (("6mm", 4), ("-43m", 2)):
            continue
        t = np.asarray(r["piezoelectric_tensor"], dtype=float)
        rows.append({"id": mid, "formula": r["formula"], "point_group": pg, "frame_status": r["frame_status"],
                     "e_ddd": bond_projection(s, t, c_parallel=pg == "6mm"), "norm": float(np.linalg.norm(t))})
    return pd.DataFrame(rows)


def polytype_pairs(data: pd.DataFrame) -> pd.DataFrame:
    """Compounds present both as a binary wurtzite and a binary zincblende: their two e_ddd."""
    wz = data[data.point_group == "6mm"].groupby("formula").e_ddd.first()
    zb = data[data.point_group == "-43m"].groupby("formula").e_ddd.first()
    both = sorted(set(wz.index) & set(zb.index))
    return pd.DataFrame({"formula": both, "e_ddd_6mm": wz[both].to_numpy(), "e_ddd_-43m": zb[both].to_numpy()})


def _sign_stats(T: np.ndarray, P: np.ndarray) -> dict[str, float]:
    nt, npred = np.linalg.norm(T, axis=1), np.linalg.norm(P, axis=1)
    ok = (nt > 1e-9) & (npred > 1e-9)
    cos = np.where(ok, (T * P).sum(1) / np.maximum(nt * npred, 1e-30), 0.0)
    decided = np.abs(cos) > 0.5
    return {"n": int(len(T)), "sign_right": float((cos > 0.5).sum() / max(decided.sum(), 1)),
            "fnorm": float(np.linalg.norm(T - P, axis=1).mean()),
            "fnorm_sign_free": float(np.minimum(np.linalg.norm(T - P, axis=1), np.linalg.norm(T + P, axis=1)).mean())}


def model_audit(task, point_groups: pd.Series, run_dirs: list[Path], floors: tuple[str, ...] = ("mean", "element_linear")) -> dict:
    from zoo.reports.floors import make_floor

    preds: dict[str, list] = {"model": [], "zero": [], **{f: [] for f in floors}}
    truth, groups, ids_all = [], [], []
    for run in run_dirs:
        fold = int(json.loads((run / "config.json").read_text())["train"]["fold"])
        csv = pd.read_csv(run / "predictions_test.csv")
        t = csv[[c for c in csv if c.startswith("y_true")]].to_numpy()
        p = csv[[c for c in csv if c.startswith("y_pred")]].to_numpy()
        ids = [str(i) for i in csv["id"]]
        train_x, train_y = task.get_train_and_val_data(fold)
        test_x = [task.df.loc[i, "structure"] for i in ids]
        ops = point_group_ops(test_x, progress=False)
        for f in floors:
            fl = make_floor(f).fit(train_x.to_list(), train_y.to_list())
            preds[f].append(np.asarray(fl.predict(test_x, ops=ops), dtype=float).reshape(len(ids), -1))
        preds["model"].append(p)
        preds["zero"].append(np.zeros_like(t))
        truth.append(t)
        groups += [point_groups[i] for i in ids]
        ids_all += ids
    T = np.concatenate(truth)
    P = {k: np.concatenate(v) for k, v in preds.items()}
    groups = np.asarray(groups)
    out = {"all": {k: _sign_stats(T, v) for k, v in P.items()}, "by_point_group": {}, "largest": []}
    # how much of the error the largest tensors carry, and how much of them the model reproduces
    nt, err = np.linalg.norm(T, axis=1), np.linalg.norm(T - P["model"], axis=1)
    order = np.argsort(-nt)
    for frac in (0.01, 0.05, 0.2):
        top = order[: max(1, int(round(frac * len(nt))))]
        out["largest"].append({"share": frac, "n": int(len(top)), "min_norm": float(nt[top].min()),
                               "share_of_model_error": float(err[top].sum() / err.sum()),
                               "model_error_over_norm": float(np.mean(err[top] / nt[top]))})
    for g in pd.Series(groups).value_counts().index:
        m = groups == g
        out["by_point_group"][g] = {k: _sign_stats(T[m], v[m]) for k, v in P.items()}
    return out


def markdown(data: pd.DataFrame, models: dict | None) -> str:
    lines = ["# Piezoelectric sign audit (`benchmarks/piezo_sign_audit.py`)", "",
             "## Data: e_ddd along the cation -> anion bond (C/m^2)", ""]
    for pg in ("6mm", "-43m"):
        d = data[data.point_group == pg].sort_values("formula")
        lines += [f"**{pg}** ({len(d)} binaries): {int((d.e_ddd > 0).sum())} positive, {int((d.e_ddd < 0).sum())} negative.", "",
                  "| formula | id | e_ddd | norm |", "|---|---|---|---|"]
        lines += [f"| {r.formula} | {r.id} | {r.e_ddd:+.3f} | {r.norm:.3f} |" for r in d.itertuples()]
        lines.append("")
    pairs = polytype_pairs(data)
    if len(pairs):
        agree = int((np.sign(pairs.e_ddd_6mm) == np.sign(pairs["e_ddd_-43m"])).sum())
        lines += ["## The same compound as wurtzite and as zincblende", "",
                  "The two polytypes share their tetrahedral bonds, so along the cation -> anion bond the response has the same "
                  "sign (the quasi-cubic relation e33(wz) ~ (2/sqrt 3) e14(zb)). "
                  f"**{agree} of {len(pairs)} compounds agree in sign.**", "",
                  "| formula | e_ddd 6mm | e_ddd -43m | same sign |", "|---|---|---|---|"]
        lines += [f"| {r.formula} | {r.e_ddd_6mm:+.3f} | {r._3:+.3f} | {'yes' if np.sign(r.e_ddd_6mm) == np.sign(r._3) else '**no**'} |"
                  for r in pairs.itertuples()]
        lines.append("")
    if models:
        names = list(models["all"])
        lines += ["## Models and floors on the test folds", "",
                  "sign right: share of crystals with cos(T, P) > 0.5 among those with |cos| > 0.5 (the zero tensor decides none); "
                  "Fnorm sign-free: mean min(||T - P||, ||T + P||).", "",
                  "| point group | n | " + " | ".join(f"{k} sign right" for k in names if k != "zero") + " | "
                  + " | ".join(f"{k} Fnorm" for k in names) + " | " + " | ".join(f"{k} Fnorm sign-free" for k in names) + " |",
                  "|---|---|" + "---|" * (3 * len(names) - 1)]
        for g, st in [("all", models["all"]), *models["by_point_group"].items()]:
            n = next(iter(st.values()))["n"]
            lines.append(f"| {g} | {n} | " + " | ".join(f"{st[k]['sign_right']:.2f}" for k in names if k != "zero") + " | "
                         + " | ".join(f"{st[k]['fnorm']:.3f}" for k in names) + " | "
                         + " | ".join(f"{st[k]['fnorm_sign_free']:.3f}" for k in names) + " |")
    if models:
        lines += ["", "## The largest tensors", "", "| largest | n | norm at least (C/m²) | share of the model's Fnorm | model error / norm there |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['share']:.0%} | {r['n']} | {r['min_norm']:.2f} | {r['share_of_model_error']:.2f} | {r['model_error_over_norm']:.2f} |"
                  for r in models["largest"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--runs", nargs="*", default=[], help="run folders (globs) with predictions_test.csv")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    task = build_task("mp_piezoelectric", {}, a.data_dir, progress=False)
    task.load()
    # the data set the task loaded (frame-fixed tensors, point groups, frame flags; the same load, not a second
    # frame check), restricted to the task's crystals
    full = load_cached("mp_piezoelectric", {"data_dir": a.data_dir, "progress": False}).loc[task.df.index]
    data = data_audit(full)
    runs = sorted({Path(p) for g in a.runs for p in glob.glob(g)})
    models = model_audit(task, full["point_group"], runs) if runs else None
    a.out.mkdir(parents=True, exist_ok=True)
    result = {"data": data.to_dict(orient="records"), "polytype_pairs": polytype_pairs(data).to_dict(orient="records"),
              "models": models, "runs": [str(r) for r in runs]}
    write_json(a.out / "sign_audit.json", result)
    write_text(a.out / "README.md", markdown(data, models))
    print(markdown(data, models))
    return result


if __name__ == "__main__":
    main()
