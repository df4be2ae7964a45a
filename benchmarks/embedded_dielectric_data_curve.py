"""Is the TFN on embedded_dielectric limited by its model or by its data? Issue #11's evidence for the 0.5x bar.

Two measurements, written to ``--out`` (table.md, results.json, data_curve.png):

1. **Data curve.** ``zoo train tfn --task embedded_dielectric --task-arg n_crystals=N --fold 0`` for several N
   (the run folders are the inputs). Each generated data set is its own task, so each run is compared with
   the floors of *its own* fold 0: the training mean symmetrised to each test crystal's point group and the
   element-linear model (``zoo.tasks.baselines``, the floors of ``results/floors``). The ratio TFN / best floor
   against the number of training crystals says whether more data of the same kind would move it.
2. **How far physics alone goes.** The generator is the Thole-damped point-dipole model
   (``zoo.tasks.embedded.dielectric``). Its undamped, mean-field limit is Clausius-Mossotti with the
   free-atom polarisabilities, ε = (1 + 2x)/(1 - x) with x = 4π Σα / (3V), isotropic. We report how many
   crystals that limit sends through the polarisation catastrophe (x >= 1) and its Fnorm where it does not,
   i.e. how much of the target a read-out shaped like Clausius-Mossotti could carry without learning the
   damping and the local fields. The split of every predictor's error into the isotropic part (Tr/3) and the
   anisotropic rest says where the error is.

    .venv/bin/python benchmarks/embedded_dielectric_data_curve.py runs/s26_curve/n*/2026* --out results/tfn/embedded_data_curve
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from zoo import tasks
from zoo.tasks.baselines import ElementLinearBaseline, MeanBaseline
from zoo.tasks.embedded.dielectric import polarizabilities


def _split_errors(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Mean Frobenius error of (N, 3, 3) predictions, and of its isotropic part (Tr/3 times the identity)
    and anisotropic rest (they add in squares per crystal: ||E||^2 = 3 (Tr E / 3)^2 + ||E - Tr E / 3||^2)."""
    err = pred - true
    iso = np.trace(err, axis1=1, axis2=2) / 3.0
    aniso = err - iso[:, None, None] * np.eye(3)
    return {"fnorm": float(np.linalg.norm(err.reshape(len(err), -1), axis=1).mean()),
            "fnorm_iso": float((np.abs(iso) * math.sqrt(3.0)).mean()),
            "fnorm_aniso": float(np.linalg.norm(aniso.reshape(len(err), -1), axis=1).mean())}


def _run_predictions(run: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    df = pd.read_csv(run / "predictions_test.csv")
    comps = [a + b for a in "xyz" for b in "xyz"]
    true = df[[f"y_true_{c}" for c in comps]].to_numpy().reshape(-1, 3, 3)
    pred = df[[f"y_pred_{c}" for c in comps]].to_numpy().reshape(-1, 3, 3)
    return df["id"].astype(str).tolist(), true, pred


@functools.lru_cache(maxsize=None)
def _fold_floors(task_name: str, kwargs_json: str, fold: int) -> tuple[dict, int, int, int | None]:
    """(floors, training+validation size, test size, data set rows) of one fold of one generated data set;
    runs of several seeds on the same data set share it."""
    kwargs = json.loads(kwargs_json)
    task = tasks.get(task_name, progress=False, **{k: v for k, v in kwargs.items() if k != "progress"})
    task.load()
    train_x, train_y = task.get_train_and_val_data(fold)
    test_x, test_y = task.get_test_data(fold, include_target=True)
    true_all = np.stack([np.asarray(t, dtype=np.float64) for t in test_y])
    floors = {}
    for name, model in (("mean", MeanBaseline()), ("element-linear", ElementLinearBaseline())):
        pred = model.fit(list(train_x), list(train_y)).predict(list(test_x))
        floors[name] = _split_errors(np.asarray(pred, dtype=np.float64), true_all)
    return floors, len(train_x), len(true_all), (len(task.df) if hasattr(task, "df") else None)


def measure_run(run: Path) -> dict:
    cfg = json.loads((run / "config.json").read_text())["train"]
    metrics = json.loads((run / "metrics.json").read_text())
    kwargs = dict(cfg.get("task_kwargs") or {})
    n_crystals = int(kwargs.get("n_crystals", 2000))
    floors, n_train_val, n_test, n_rows = _fold_floors(cfg["task"], json.dumps(kwargs, sort_keys=True), int(cfg["fold"]))
    # Every test crystal, as the floors: those without a graph (an atom with no neighbour within the radius)
    # carry the run's fallback prediction (metrics.json "test_all"; "test" leaves them out).
    ids, true, pred = _run_predictions(run)
    failures = json.loads((run / "failures.json").read_text()) if (run / "failures.json").exists() else {}
    tfn = _split_errors(pred, true)
    best = min(floors.values(), key=lambda f: f["fnorm"])
    return {
        "run": run.name, "seed": int(cfg["seed"]), "n_crystals": n_crystals, "n_rows": n_rows,
        "n_train_val": n_train_val, "n_test": n_test, "n_test_no_graph": sum(i in failures for i in ids),
        "epochs_run": metrics.get("epochs_run"), "best_epoch": metrics.get("best_epoch"),
        "train_time_s": (metrics.get("time_s") or {}).get("train"), "recipe": cfg.get("recipe"),
        "tfn": tfn, "tfn_fnorm_test_all": (metrics.get("test_all") or metrics.get("test") or {}).get("fnorm"), "floors": floors,
        "ratio_to_best_floor": tfn["fnorm"] / best["fnorm"],
    }


def clausius_mossotti(n_crystals: int = 2000, seed: int = 0) -> dict:
    """Undamped Clausius-Mossotti with the generator's own free-atom polarisabilities, on every crystal."""
    from zoo.tasks.embedded.dataset import build_embedded_dataset

    df = build_embedded_dataset(n_crystals, seed, progress=False)
    eps = np.stack(df["dielectric"].to_numpy()).astype(np.float64)
    x = np.array([4.0 * math.pi * polarizabilities(s).sum() / (3.0 * s.volume) for s in df["structure"]])
    ok = x < 1.0
    cm = ((1.0 + 2.0 * x[ok]) / (1.0 - x[ok]))[:, None, None] * np.eye(3)
    mean_floor = _split_errors(np.broadcast_to(eps.mean(0), eps.shape), eps)
    return {
        "n": len(eps), "x_quantiles": dict(zip(["min", "q10", "median", "q90", "max"],
                                                 np.quantile(x, [0, 0.1, 0.5, 0.9, 1.0]).round(3).tolist())),
        "catastrophe_fraction": float(1.0 - ok.mean()),
        "cm_where_defined": _split_errors(cm, eps[ok]),
        "mean_where_defined": _split_errors(np.broadcast_to(eps.mean(0), eps[ok].shape), eps[ok]),
        "mean_all": mean_floor,
        "true_norm_quantiles": np.quantile(np.linalg.norm(eps.reshape(len(eps), -1), axis=1),
                                           [0.1, 0.5, 0.9, 0.99]).round(2).tolist(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="zoo train run folders of tfn on embedded_dielectric")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    rows = sorted((measure_run(r) for r in args.runs), key=lambda r: (r["n_train_val"], r["seed"]))
    cm = clausius_mossotti()
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"machine": os.uname().nodename, "cpus": os.cpu_count(), "load_1min": os.getloadavg()[0],
            "command": " ".join([Path(sys.argv[0]).name] + [str(a) for a in (argv or sys.argv[1:])])}
    tmp = args.out / "results.json.tmp"
    tmp.write_text(json.dumps({"runs": rows, "clausius_mossotti": cm, "meta": meta}, indent=1))
    tmp.replace(args.out / "results.json")

    lines = ["| n_crystals | seed | train+val | test (no graph) | TFN Fnorm (iso / aniso) | mean floor | element-linear floor | TFN / best floor | epochs (best) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, f = r["tfn"], r["floors"]
        lines.append(f"| {r['n_crystals']} | {r['seed']} | {r['n_train_val']} | {r['n_test']} ({r['n_test_no_graph']}) | "
                     f"**{t['fnorm']:.3f}** ({t['fnorm_iso']:.3f} / {t['fnorm_aniso']:.3f}) | "
                     f"{f['mean']['fnorm']:.3f} ({f['mean']['fnorm_iso']:.3f} / {f['mean']['fnorm_aniso']:.3f}) | "
                     f"{f['element-linear']['fnorm']:.3f} ({f['element-linear']['fnorm_iso']:.3f} / {f['element-linear']['fnorm_aniso']:.3f}) | "
                     f"**{r['ratio_to_best_floor']:.3f}** | {r['epochs_run']} ({r['best_epoch']}) |")
    c = cm["cm_where_defined"]
    lines += ["", f"Clausius-Mossotti with the free-atom polarisabilities (undamped, isotropic), all {cm['n']} crystals of "
              f"n_crystals=2000: x = 4πΣα/3V quantiles {cm['x_quantiles']}; **{100 * cm['catastrophe_fraction']:.1f} %** "
              f"of the crystals have x >= 1 (catastrophe). Where defined: Fnorm {c['fnorm']:.3f} (iso {c['fnorm_iso']:.3f} / "
              f"aniso {c['fnorm_aniso']:.3f}) vs the overall mean tensor on the same crystals {cm['mean_where_defined']['fnorm']:.3f}."]
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = sorted({r["n_train_val"] for r in rows})
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for k, seed in enumerate(sorted({r["seed"] for r in rows})):  # one line per seed: the spread is the point
        rs = [r for r in rows if r["seed"] == seed]
        x = [r["n_train_val"] for r in rs]
        ax.plot(x, [r["ratio_to_best_floor"] for r in rs], "o-", color=f"C{2 * k}", label=f"TFN / best floor (Fnorm), seed {seed}")
        ax.plot(x, [r["tfn"]["fnorm_iso"] / min(f["fnorm"] for f in r["floors"].values()) for r in rs], "s--",
                color=f"C{2 * k + 1}", label=f"isotropic part of the error / best floor, seed {seed}")
    ax.axhline(0.5, color="k", lw=0.8, ls=":", label="issue #11 bar (0.5)")
    ax.set_xscale("log")
    ax.set_xticks(n, [str(v) for v in n])
    ax.minorticks_off()
    ax.set_xlabel("training + validation crystals (fold 0)")
    ax.set_ylabel("ratio")
    ax.set_ylim(0, 1.1)
    ax.legend(fontsize=7)
    ax.set_title("embedded_dielectric: TFN (tfn.rank2) vs data size")
    fig.tight_layout()
    fig.savefig(args.out / "data_curve.png", dpi=120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
