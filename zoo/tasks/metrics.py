"""Scores for scalar and tensor targets.

Scalar: ``scalar_metrics`` -> mae, rmse, mape, max_error, r2 (matbench's formulas).

Binary class: ``classification_metrics`` -> accuracy, balanced_accuracy, f1, rocauc, log_loss, with
matbench's threshold (``class_labels``: p > 0.5).

Tensor (arrays are full Cartesian ``(N, 3,...,3)`` in each crystal's own frame): ``tensor_metrics`` ->

- ``mae``: mean absolute error over every Cartesian component of every crystal (target units);
- ``fnorm``: mean over crystals of the Frobenius norm ||T_pred - T_true||_F (GMTNet's "Fnorm");
- ``ewt25`` / ``ewt10`` / ``ewt5``: share of crystals whose relative Frobenius error
  ||T_pred - T_true||_F / ||T_true||_F is below 25 / 10 / 5 % ("energy within threshold" style).
  A crystal with ||T_true||_F = 0 (e.g. the piezo tensor of a centrosymmetric crystal) counts as
  within every threshold only when its prediction is exactly zero; ``n_zero_true`` says how many;
- with point-group operations (``structures=`` or precomputed ``ops=``), the Neumann symmetry
  violation of the predictions ||T - Sym_G T||_F / ||T||_F (Sym_G: average over the crystal's own
  Cartesian point-group operations, ``zoo.symmetry``), mean and median, the same for the reference
  tensors (``true_sym_violation_*``: the noise floor of the data), and GMTNet-style counts:
  ``zero_violations`` of ``zero_constraints`` (components the point group forces to zero that are
  not) and ``equal_violations`` of ``equal_constraints`` (components it forces equal, or equal and
  opposite, that are not). A component is "off" when it misses its constraint by more than
  ``rtol * ||T_pred||_F`` (default rtol = 1e-3: an equivariant model in float32 stays near 1e-6,
  a model that ignores symmetry misses by roughly its own relative error). Constraints are taken
  on the formula's independent components (``zoo.tensors.independent_components``), so the index
  symmetry itself (T_ij = T_ji) is not counted. Linear relations that are not equalities
  (hexagonal C66 = (C11 - C12)/2) show up in the Neumann violation, not in the counts. The counts
  depend on the frame (in a rotated frame few components are forced to zero): they are meant for
  tensors in a standard setting, as the Materials Project data are; the Neumann violation, Fnorm
  and EwT do not depend on the frame;
- with ``crystal_systems=``, ``by_crystal_system[system]`` repeats the scores on each subset.

Point-group operations are computed once per structure (``point_group_ops``), and the analysis of
which components a group forces zero/equal is cached per distinct set of operations, so crystals
that share a setting (all cubic crystals in the standard frame) share the work.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from zoo.symmetry import point_group_ops, rotate_tensor, symmetry_violation
from zoo.symmetry.neumann import group_by_ops, neumann_operator, ops_key

from zoo import tensors as _tensors

EWT_THRESHOLDS = (0.25, 0.10, 0.05)
CLF_THRESH = 0.5  # matbench's: a probability counts as the positive class when p > 0.5
MAPE_THRESHOLD = 1e-5  # matbench masks |y_true| <= 1e-5 out of MAPE
DEFAULT_RTOL = 1e-3
# Rows of the projector are exact to ~1e-15 for ideal crystals, but spglib's operations of DFT-relaxed
# cells (symprec 1e-3) close into a group only to ~1e-7; allowed components have rows of order 1/|G|.
# On 300 MP dielectric crystals the constraint counts are the same for any tolerance in 1e-6..1e-4.
_ROW_ATOL = 1e-5


# ----------------------------------------------------------------------------------------------
# Scalars
# ----------------------------------------------------------------------------------------------
def _stack(y: Any, name: str) -> np.ndarray:
    if hasattr(y, "to_numpy") and getattr(y, "dtype", None) == object:  # pandas Series of arrays
        y = list(y.to_numpy())
    if isinstance(y, (list, tuple)) and len(y) and np.ndim(y[0]) > 0:
        y = np.stack([np.asarray(v, dtype=np.float64) for v in y])
    arr = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.isfinite(arr).sum())
        raise ValueError(f"{name} has {bad} non-finite values (NaN/inf); drop or impute them before scoring")
    return arr


def scalar_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """mae, rmse, mape, max_error, r2, n of a scalar target, in the target's units.

    mae, rmse, max_error and mape are computed exactly as matbench's ``score_array`` (mape: mean
    |(y - p) / y| over |y| > 1e-5 only, a fraction, NaN when no target qualifies); r2 = 1 - SS_res/SS_tot
    (NaN when y_true is constant).
    """
    t = _stack(y_true, "y_true").reshape(-1)
    p = _stack(y_pred, "y_pred").reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}")
    if t.size == 0:
        raise ValueError("cannot score an empty set of predictions")
    err = p - t
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    mask = np.abs(t) > MAPE_THRESHOLD
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mape": float(np.mean(np.fabs(err[mask] / t[mask]))) if mask.any() else float("nan"),
        "max_error": float(np.max(np.abs(err))),
        "r2": float(1.0 - np.sum(err**2) / ss_tot) if ss_tot > 0 else float("nan"),
        "n": int(t.size),
    }


def class_labels(p: Any) -> np.ndarray:
    """Predicted labels: probabilities above matbench's threshold (p > 0.5, strictly), or bools as given.
    The one threshold of crystal-zoo, so a run folder and a matbench record never disagree."""
    p = np.asarray(p)
    return p > CLF_THRESH if p.dtype.kind == "f" else p.astype(bool)


def classification_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """accuracy, balanced_accuracy, f1, rocauc (as matbench), log_loss (probabilities only), n.

    ``y_pred``: probabilities of the positive class (floats) or labels (bools); probabilities are
    thresholded by ``class_labels`` for the label metrics and used as scores for ROC-AUC (NaN when the
    true labels hold a single class)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

    y = np.asarray(y_true).astype(bool).reshape(-1)
    p = np.asarray(y_pred).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but y_pred has {p.size}")
    if y.size == 0:
        raise ValueError("cannot score an empty set of predictions")
    labels = class_labels(p)
    scores = p.astype(np.float64) if p.dtype.kind == "f" else labels.astype(np.float64)
    out = {
        "accuracy": float(accuracy_score(y, labels)),
        "balanced_accuracy": float(balanced_accuracy_score(y, labels)),
        "f1": float(f1_score(y, labels, zero_division=0)),
        "rocauc": float(roc_auc_score(y, scores)) if 0 < y.sum() < y.size else float("nan"),
        "n": int(y.size),
    }
    if p.dtype.kind == "f":
        pc = np.clip(p.astype(np.float64), 1e-12, 1 - 1e-12)
        out["log_loss"] = float(-np.mean(y * np.log(pc) + (~y) * np.log(1 - pc)))
    return out


# ----------------------------------------------------------------------------------------------
# Point-group operators
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SymmetryConstraints:
    """Which independent components a point group forces to zero or to be equal.

    ``zero``: flat (C-order) indices of components forced to zero. ``equal``: (a, b, s) triples meaning
    component a must equal s * component b (s = ±1); b is the first member of a's class in the order
    of ``independent_components``.
    """

    zero: np.ndarray
    equal_a: np.ndarray
    equal_b: np.ndarray
    equal_sign: np.ndarray

    @property
    def n_zero(self) -> int:
        return int(self.zero.size)

    @property
    def n_equal(self) -> int:
        return int(self.equal_a.size)


_CONSTRAINT_CACHE: dict[tuple[bytes, str], SymmetryConstraints] = {}


def symmetry_constraints(ops: np.ndarray, formula: str) -> SymmetryConstraints:
    """Zero / equal constraints of the point group ``ops`` on a tensor with index symmetry ``formula``.

    P = Sym_G · P_index projects onto the tensors the crystal allows. A component a is zero on all of
    them iff row a of P is zero, and a = s·b on all of them iff row a = s·row b; the image of P is
    exactly the allowed set, so this is the same as applying Sym_G to a generic tensor, but exact.
    """
    key = (ops_key(ops), formula)
    hit = _CONSTRAINT_CACHE.get(key)
    if hit is not None:
        return hit
    rank = _tensors.rank_of(formula)
    P = neumann_operator(ops, rank) @ _tensors.index_projector(formula)
    reps = _tensors.independent_flat_indices(formula)
    zero, ea, eb, es = [], [], [], []
    leaders: list[int] = []
    for a in reps:
        row = P[a]
        if np.max(np.abs(row)) < _ROW_ATOL:
            zero.append(a)
            continue
        for b in leaders:
            sign = 1.0 if np.allclose(row, P[b], rtol=0.0, atol=_ROW_ATOL) else (
                -1.0 if np.allclose(row, -P[b], rtol=0.0, atol=_ROW_ATOL) else 0.0)
            if sign:
                ea.append(a)
                eb.append(b)
                es.append(sign)
                break
        else:
            leaders.append(a)
    out = SymmetryConstraints(np.array(zero, dtype=np.int64), np.array(ea, dtype=np.int64),
                              np.array(eb, dtype=np.int64), np.array(es))
    if len(_CONSTRAINT_CACHE) > 4096:
        _CONSTRAINT_CACHE.clear()
    _CONSTRAINT_CACHE[key] = out
    return out


def _violation_stats(flat: np.ndarray, ops_list, formula: str, rtol: float) -> dict[str, Any]:
    rank = _tensors.rank_of(formula)
    n = len(flat)
    viol = np.zeros(n)
    norms = np.linalg.norm(flat, axis=1)
    zero_v = zero_c = eq_v = eq_c = 0
    for ops, idx in group_by_ops(ops_list).values():
        x = flat[idx]
        d = np.linalg.norm(x - x @ neumann_operator(ops, rank).T, axis=1)
        nrm = norms[idx]
        viol[idx] = np.where(nrm > 0, d / np.where(nrm > 0, nrm, 1.0), 0.0)
        con = symmetry_constraints(ops, formula)
        tol = rtol * nrm[:, None]
        zero_v += int(np.sum(np.abs(x[:, con.zero]) > tol))
        eq_v += int(np.sum(np.abs(x[:, con.equal_a] - con.equal_sign * x[:, con.equal_b]) > tol))
        zero_c += con.n_zero * len(idx)
        eq_c += con.n_equal * len(idx)
    return {"per_crystal": viol, "zero_violations": zero_v, "zero_constraints": zero_c,
            "equal_violations": eq_v, "equal_constraints": eq_c}


def frame_candidates() -> np.ndarray:
    """(48, 3, 3) proper rotations that relabel axes: the 24 signed axis permutations of det +1, each
    also followed by a 30° turn about z (the a-axis conventions of hexagonal settings differ by it)."""
    import itertools

    out = []
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    rz30 = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    for extra in (np.eye(3), rz30):
        for perm in itertools.permutations(range(3)):
            for signs in itertools.product((1.0, -1.0), repeat=3):
                P = np.zeros((3, 3))
                P[range(3), perm] = signs
                if np.linalg.det(P) > 0:
                    out.append(P @ extra)
    out.sort(key=lambda R: np.abs(R - np.eye(3)).sum())  # identity first
    return np.stack(out)


def align_to_point_group(T: Any, ops: np.ndarray, rotations: np.ndarray | None = None,
                         tol: float = 1e-3) -> tuple[np.ndarray, float, bool]:
    """Find the frame in which a tensor obeys its crystal's point group (data given in another frame).

    Tries ``rotate_tensor(T, R)`` for R in ``rotations`` (default ``frame_candidates()``, identity
    first) and returns (R, violation, ambiguous): the first R whose Neumann violation is below ``tol``
    (else the R of smallest violation), and whether several candidates give different tensors that
    are all symmetric. Ambiguity is real, not numerical: symmetry cannot tell a polar tensor from its
    sign-flipped copy, nor an mm2 tensor from its a <-> b swap, so ambiguous crystals need the data's
    own frame convention (or should be left out).
    """
    T = np.asarray(T, dtype=np.float64)
    rotations = frame_candidates() if rotations is None else np.asarray(rotations, dtype=np.float64)
    norm = np.linalg.norm(T)
    if norm == 0.0:
        return np.eye(3), 0.0, False
    best, best_v, good = None, np.inf, []
    for R in rotations:
        Tr = rotate_tensor(T, R)
        v = symmetry_violation(Tr, ops)
        if v < tol:
            good.append(Tr)
            if best is None or best_v >= tol:
                best, best_v = R, v
        elif v < best_v and (best is None or best_v >= tol):
            best, best_v = R, v
    ambiguous = any(np.linalg.norm(g - good[0]) > tol * norm for g in good[1:])
    return best, float(best_v), ambiguous


# ----------------------------------------------------------------------------------------------
# Tensors
# ----------------------------------------------------------------------------------------------
def _basic_tensor_scores(t: np.ndarray, p: np.ndarray) -> dict[str, float]:
    n = len(t)
    err = (p - t).reshape(n, -1)
    fn = np.linalg.norm(err, axis=1)
    tn = np.linalg.norm(t.reshape(n, -1), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(tn > 0, fn / np.where(tn > 0, tn, 1.0), np.where(fn == 0, 0.0, np.inf))
    out = {"n": int(n), "mae": float(np.mean(np.abs(err))), "fnorm": float(np.mean(fn)),
           "rmse": float(np.sqrt(np.mean(err**2)))}
    for thr in EWT_THRESHOLDS:
        out[f"ewt{round(thr * 100)}"] = float(np.mean(rel < thr))
    out["n_zero_true"] = int(np.sum(tn == 0))
    return out


def tensor_metrics(y_true: Any, y_pred: Any, structures: Sequence[Any] | None = None, formula: str | None = None,
                   crystal_systems: Sequence[str] | None = None, ops: Sequence[np.ndarray] | None = None,
                   rtol: float = DEFAULT_RTOL, progress: bool | None = None) -> dict[str, Any]:
    """Scores of tensor predictions (see the module docstring for every key).

    ``y_true``/``y_pred``: (N, 3,...,3) arrays (or sequences of (3,...,3) arrays). ``formula``: index
    symmetry (default: this repo's formula for the rank, ``zoo.tensors.default_formula``). ``ops``:
    precomputed point-group operations per crystal (overrides ``structures``).
    """
    t = _stack(y_true, "y_true")
    p = _stack(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
    rank = t.ndim - 1
    if rank < 1 or t.shape[1:] != (3,) * rank:
        hint = " (Voigt arrays: convert with tasks.tensors.from_voigt first)" if 6 in t.shape[1:] else ""
        raise ValueError(f"tensor metrics need full Cartesian (N, 3,...,3) arrays, got {t.shape}{hint}")
    if len(t) == 0:
        raise ValueError("cannot score an empty set of predictions")
    formula = formula or _tensors.default_formula(rank)
    if _tensors.rank_of(formula) != rank:
        raise ValueError(f"formula {formula!r} is rank {_tensors.rank_of(formula)} but the tensors are rank {rank}")

    out: dict[str, Any] = _basic_tensor_scores(t, p)
    if ops is None and structures is not None:
        if len(structures) != len(t):
            raise ValueError(f"got {len(t)} tensors but {len(structures)} structures")
        ops = point_group_ops(structures, progress=progress)
    viol_pred = viol_true = None
    if ops is not None:
        ops = list(ops)
        if len(ops) != len(t):
            raise ValueError(f"got {len(t)} tensors but {len(ops)} sets of point-group operations")
        sp = _violation_stats(p.reshape(len(p), -1), ops, formula, rtol)
        st = _violation_stats(t.reshape(len(t), -1), ops, formula, rtol)
        viol_pred, viol_true = sp["per_crystal"], st["per_crystal"]
        out.update({
            "sym_violation_mean": float(np.mean(viol_pred)),
            "sym_violation_median": float(np.median(viol_pred)),
            "true_sym_violation_mean": float(np.mean(viol_true)),
            "true_sym_violation_median": float(np.median(viol_true)),
            "zero_violations": sp["zero_violations"], "zero_constraints": sp["zero_constraints"],
            "equal_violations": sp["equal_violations"], "equal_constraints": sp["equal_constraints"],
            "rtol": rtol,
        })
    if crystal_systems is not None:
        systems = np.asarray(list(crystal_systems), dtype=object)
        if len(systems) != len(t):
            raise ValueError(f"got {len(t)} tensors but {len(systems)} crystal systems")
        by: dict[str, dict[str, Any]] = {}
        for name in sorted(set(systems.tolist())):
            m = systems == name
            sub = _basic_tensor_scores(t[m], p[m])
            if viol_pred is not None:
                sub["sym_violation_mean"] = float(np.mean(viol_pred[m]))
                sub["sym_violation_median"] = float(np.median(viol_pred[m]))
            by[str(name)] = sub
        out["by_crystal_system"] = by
    return out


__all__ = ["CLF_THRESH", "EWT_THRESHOLDS", "SymmetryConstraints", "align_to_point_group", "class_labels", "classification_metrics",
           "frame_candidates", "scalar_metrics",
           "symmetry_constraints", "tensor_metrics"]
