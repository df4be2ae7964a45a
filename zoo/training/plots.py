"""Learning-curve and parity plots of a run (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.core.io import atomic_path
from zoo.tasks.metrics import scalar_metrics


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    _pyplot().close(fig)
    return path


def learning_curve(rows: Sequence[dict[str, Any]], path: str | os.PathLike, metric: str, best_epoch: int | None = None,
                   title: str = "") -> Path:
    """Training and validation loss (normalised units, log scale) and the validation score ``metric``
    (a key of the rows, e.g. the run's selection score ``val_mae``) per epoch."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    epochs = [r["epoch"] for r in rows]
    for key, label in (("train_loss", "train loss"), ("val_loss", "validation loss")):
        vals = [r.get(key, np.nan) for r in rows]
        ax.plot(epochs, vals, marker="o" if len(rows) < 30 else None, ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (standardised target)")
    if rows and all(np.isfinite(r.get(k, np.nan)) and r.get(k, 0) > 0 for r in rows for k in ("train_loss", "val_loss")):
        ax.set_yscale("log")
    handles, labels = ax.get_legend_handles_labels()
    if rows and metric in rows[0]:
        ax2 = ax.twinx()
        (h,) = ax2.plot(epochs, [r.get(metric, np.nan) for r in rows], color="tab:green", ls="--", label=metric.replace("_", " "))
        ax2.set_ylabel(metric.replace("_", " ") + " (task units)")
        handles.append(h)
        labels.append(h.get_label())
    if best_epoch:
        ax.axvline(best_epoch, color="grey", ls=":", lw=1)
        labels.append(f"best epoch {best_epoch}")
        handles.append(ax.lines[-1])
    ax.legend(handles, labels, fontsize=8, loc="upper right")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def parity(y_true: np.ndarray, y_pred: np.ndarray, path: str | os.PathLike, target=None, title: str = "") -> Path:
    """Predicted vs true. Tensors: every Cartesian component, diagonal and off-diagonal coloured apart.
    Classes: histogram of the predicted probability for each true class."""
    plt = _pyplot()
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    kind = getattr(target, "kind", "scalar")
    unit = getattr(target, "unit", "")
    name = getattr(target, "name", "target")
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    if kind == "class":
        bins = np.linspace(0, 1, 21)
        for cls, colour in ((False, "tab:blue"), (True, "tab:orange")):
            sel = y_true.astype(bool) == cls
            ax.hist(y_pred[sel], bins=bins, alpha=0.6, color=colour, label=f"true {int(cls)} (n={int(sel.sum())})")
        ax.set_xlabel(f"predicted P({name})")
        ax.set_ylabel("count")
        ax.legend(fontsize=8)
    else:
        if kind == "tensor" and y_true.ndim > 1:
            n = y_true.shape[0]
            flat_t, flat_p = y_true.reshape(n, -1), y_pred.reshape(n, -1)
            idx = np.stack(np.unravel_index(np.arange(flat_t.shape[1]), y_true.shape[1:]), axis=1)
            diag = np.all(idx == idx[:, :1], axis=1)
            ax.scatter(flat_t[:, ~diag].ravel(), flat_p[:, ~diag].ravel(), s=6, alpha=0.5, label="off-diagonal")
            ax.scatter(flat_t[:, diag].ravel(), flat_p[:, diag].ravel(), s=6, alpha=0.5, label="diagonal (i=j=...)")
            ax.legend(fontsize=8)
            lo_hi = np.concatenate([flat_t.ravel(), flat_p.ravel()])
        else:
            ax.scatter(y_true, y_pred, s=8, alpha=0.6)
            lo_hi = np.concatenate([y_true.ravel(), y_pred.ravel()])
        if lo_hi.size:
            lo, hi = float(np.min(lo_hi)), float(np.max(lo_hi))
            pad = 0.05 * (hi - lo or 1.0)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.8)
            ax.set_xlim(lo - pad, hi + pad)
            ax.set_ylim(lo - pad, hi + pad)
            mae = scalar_metrics(y_true, y_pred)["mae"]  # over every component of every tensor
            ax.text(0.04, 0.95, f"MAE {mae:.4g} {unit}\nn = {len(y_true)}", transform=ax.transAxes, va="top", fontsize=8)
        u = f" ({unit})" if unit else ""
        ax.set_xlabel(f"true {name}{u}")
        ax.set_ylabel(f"predicted {name}{u}")
        ax.set_aspect("equal", adjustable="box")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)
