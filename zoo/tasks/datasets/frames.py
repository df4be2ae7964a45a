"""Is a tensor expressed in the Cartesian frame of its own structure? Measure, and repair by rotation.

A Cartesian tensor only means something together with the axes it was written in. Our contract
(``zoo.tasks.spec.TargetSpec``) is: the frame of the structure's Cartesian coordinates. Materials Project
stores some tensors in the IEEE-1987 standard orientation instead (de Jong et al. 2015 piezoelectric
tensors, the 2015 elastic tensors), i.e. rotated with respect to the structure that comes with them.

Test (Neumann's principle). A property tensor is invariant under the crystal's point group G written
as Cartesian rotations in the SAME frame as the tensor. With G from the structure
(:func:`zoo.symmetry.cartesian_point_group`, symprec ``SYMPREC``)

    dev(T) = ||T - Sym_G(T)|| / ||T||,    Sym_G(T) = (1/|G|) sum_g g.T   (Frobenius norms)

is ~0 for a tensor in the structure's frame and O(0.1 - 1) in a frame rotated by anything outside G's
normaliser. A tensor passes when dev <= tol + defect + atol/||T||: ``tol`` is the data's relative
precision, ``atol`` its absolute one (rounding, in the tensor's units) and ``defect``
(:func:`symmetry_defect`) how far the structure's symmetry operations are from being rotations: on a cell
that is symmetric only within symprec the operations, hence Sym_G, are uncertain by that much.

The test is necessary, not sufficient: a rotation by an element of the holohedry outside G (a 180 deg
turn about z for 3m, a 90 deg turn for -43m) maps a G-invariant tensor onto another G-invariant one
(for odd rank often -T), and for point group 1 every frame passes. So we only try frames with a physical
origin, in the order set by the data set's ``prior`` ("structure": calculation frame first; "ieee":
MP's IEEE frame first):

- ``"as_is"``: the tensor as stored.
- ``"ieee"``: the tensor is in pymatgen's IEEE frame of the structure. ``Tensor.get_ieee_rotation`` (run
  on the structure idealised at ``symprec`` in its own orientation) gives R with T_ieee = R.T_struct, so
  T_struct = R^T.T_ieee (``rotate_tensor(T, R.T)``).
- ``"ieee_setting"`` (``search=True``, only when neither passes): R^T Q^T for Q among 72 setting rotations
  (the 24 proper signed axis permutations, and those after a 45 or 30 degree turn about x3), because
  pymatgen's current IEEE rules do not reproduce the frame MP used in 2015 for some settings (tetragonal
  cells with c < a get x3 along a, since it compares unsorted lengths; mm2/4mm polar axes are ignored).

``ambiguous`` is set when another tried frame also passes but gives a different tensor: the symmetry
cannot tell them apart and the choice rests on the prior (as_is / ieee) or on nothing (ieee_setting,
where T and -T typically both pass). Rows no frame fixes are ``"inconsistent"`` and left unrotated.
``fix_frames`` records per row ``frame_status``, ``frame_rotation`` (M, applied as
T_new = rotate_tensor(T_old, M)), ``frame_ambiguous``, ``frame_defect``, ``frame_threshold``,
``n_point_group_ops`` and per tensor column ``<col>_dev_raw`` / ``<col>_dev``. Measured counts for the
data sets: zoo/tasks/datasets/README.md.
"""
from __future__ import annotations

import itertools
import logging
import warnings
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from zoo.symmetry import cartesian_point_group, rotate_tensor, symmetry_violation

logger = logging.getLogger(__name__)

# Symmetry tolerance (Angstrom) for the point group of a structure. 0.1 Å reproduces the space-group
# numbers that Materials Project recorded with its data: 100 % of the 1056 dielectric rows and 99.7 %
# of the 941 piezoelectric rows, against 97.7 % / 95.0 % at 0.01 Å and 95.8 % / 89.3 % at 0.001 Å
# (measured by zoo.reports.frames; README.md of this package). The tensors were symmetrised by
# MP with that symmetry, so that is the group they must obey.
SYMPREC = 0.1

STATUS_AS_IS = "as_is"
STATUS_IEEE = "ieee"
STATUS_SETTING = "ieee_setting"
STATUS_INCONSISTENT = "inconsistent"
STATUSES = (STATUS_AS_IS, STATUS_IEEE, STATUS_SETTING, STATUS_INCONSISTENT)


# --------------------------------------------------------------------------------------------- basics
def _spglib_dataset(structure, symprec: float):
    import spglib

    cell = (np.asarray(structure.lattice.matrix, dtype=np.float64), np.asarray(structure.frac_coords),
            np.asarray(structure.atomic_numbers))
    return spglib.get_symmetry_dataset(cell, symprec=symprec)


def idealized_structure(structure, symprec: float = SYMPREC, dataset=None):
    """The structure symmetrised at ``symprec`` (spglib's idealised standard conventional cell) but
    rotated back into the ORIGINAL Cartesian frame, so that frame-dependent analyses (pymatgen's IEEE
    rotation, which runs spglib at its own default 0.01 Å) see the symmetry found at ``symprec``.

    spglib: idealised lattice columns = R_std . (transformed input lattice columns), so in the input
    frame the lattice rows are ``std_lattice @ R_std``. ``dataset``: spglib's dataset of ``structure``
    at ``symprec`` if already computed.
    """
    from pymatgen.core import Lattice, Structure

    ds = dataset if dataset is not None else _spglib_dataset(structure, symprec)
    if ds is None:
        raise ValueError(f"spglib found no symmetry for {structure.composition.reduced_formula} at symprec {symprec}")
    lattice = np.asarray(ds.std_lattice) @ np.asarray(ds.std_rotation_matrix)
    return Structure(Lattice(lattice), [int(z) for z in ds.std_types], np.asarray(ds.std_positions))


def ieee_rotation(structure, symprec: float | None = SYMPREC, refine: bool = True, dataset=None) -> np.ndarray:
    """pymatgen's IEEE rotation R of ``structure`` (T_ieee = R.T_struct), as a float64 array.

    With ``symprec`` the structure is first idealised in place (:func:`idealized_structure`) so that
    pymatgen classifies it with the same symmetry as our check; ``None`` uses the structure as given.
    """
    from pymatgen.core.tensors import Tensor

    s = idealized_structure(structure, symprec, dataset) if symprec is not None else structure
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about rotation tolerance for distorted cells
        return np.asarray(Tensor.get_ieee_rotation(s, refine_rotation=refine), dtype=np.float64)


def _rot_z(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _setting_rotations() -> list[np.ndarray]:
    """Proper signed axis permutations (24), then those composed with 45 and 30 degree turns about x3;
    identity first, each group ordered by rotation angle so that the smallest change is tried first."""
    perms = []
    for p in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            Q = np.zeros((3, 3))
            for i, j in enumerate(p):
                Q[i, j] = signs[i]
            if np.linalg.det(Q) > 0:
                perms.append(Q)

    def angle(Q):
        return float(np.arccos(np.clip((np.trace(Q) - 1.0) / 2.0, -1.0, 1.0)))

    perms.sort(key=lambda Q: (round(angle(Q), 9), tuple(Q.ravel())))
    out = list(perms)
    for deg in (45.0, 30.0):
        extra = sorted((Q @ _rot_z(deg) for Q in perms), key=lambda Q: (round(angle(Q), 9), tuple(Q.ravel())))
        out.extend(extra)
    return out


SETTING_ROTATIONS = _setting_rotations()


# --------------------------------------------------------------------------------------------- one row
def symmetry_defect(structure, symprec: float = SYMPREC, dataset=None) -> float:
    """How far the structure's symmetry operations are from being rotations: max_g ||R_g R_g^T - I||_F
    with R_g = L^T W_g L^-T the Cartesian form of spglib's integer operation W_g (L: lattice rows).

    Zero for a cell that is exactly symmetric; up to ~2 x (strain) for a cell symmetric only within
    ``symprec``. The orthogonalised operations we average over are uncertain by this much, so a tensor
    cannot be held to a symmetry deviation below it (measured: accepted MP piezoelectric tensors on
    distorted cells have deviation / defect = 0.1 - 0.9).
    """
    L = np.asarray(structure.lattice.matrix, dtype=np.float64)
    ds = dataset if dataset is not None else _spglib_dataset(structure, symprec)
    if ds is None:
        return 0.0
    W = np.asarray(ds.rotations, dtype=np.float64)
    R = np.einsum("ji,njk,kl->nil", L, W, np.linalg.inv(L).T)
    return float(max(np.linalg.norm(r @ r.T - np.eye(3)) for r in R))


def _differs(a: Sequence[np.ndarray], b: Sequence[np.ndarray], rel: float) -> bool:
    return any(np.linalg.norm(x - y) > rel * max(np.linalg.norm(y), 1e-300) for x, y in zip(a, b))


def fix_one(
    tensors: Sequence[np.ndarray],
    structure,
    tol: float,
    prior: str = "structure",
    atol: float = 0.0,
    symprec: float = SYMPREC,
    search: bool = True,
) -> dict:
    """Frame check / repair of the tensors of one structure (they share its frame).

    A candidate rotation M (T -> rotate_tensor(T, M)) passes when every tensor's symmetry deviation is
    <= ``tol + symmetry_defect(structure) + atol / ||T||`` (``atol``: the absolute precision of the
    components in the data's units, e.g. from rounding; the threshold of the largest tensor is reported). ``prior`` says which frame the data set documents:
    "structure" (calculation frame: try the tensor as it is, then the IEEE inverse) or "ieee" (MP's
    IEEE-standard tensors: try the IEEE inverse first, then as it is). When neither passes and ``search``
    is set, the setting rotations are tried (status "ieee_setting").

    ``ambiguous`` is True when another tried candidate also passes but gives a different tensor: the
    structure's symmetry cannot tell the frames apart (always the case for point group 1; for a polar
    rank-3 tensor often T vs -T), so the accepted one rests on the prior only.

    Returns ``{"status", "rotation", "ambiguous", "dev_raw", "dev", "n_ops", "defect", "threshold"}``.
    """
    if prior not in ("structure", "ieee"):
        raise ValueError(f"prior must be 'structure' or 'ieee', got {prior!r}")
    tensors = [np.asarray(t, dtype=np.float64) for t in tensors]
    ops = cartesian_point_group(structure, symprec=symprec)
    ds = _spglib_dataset(structure, symprec)  # shared by the defect and the IEEE rotation
    defect = symmetry_defect(structure, symprec=symprec, dataset=ds)
    thresholds = [tol + defect + (atol / np.linalg.norm(t) if np.linalg.norm(t) > 0 else 0.0) for t in tensors]
    threshold = min(thresholds)
    dev_raw = [symmetry_violation(t, ops) for t in tensors]
    base = {"n_ops": int(len(ops)), "dev_raw": dev_raw, "defect": defect, "threshold": threshold}

    def ok(devs) -> bool:
        return all(d <= t for d, t in zip(devs, thresholds))

    def trial(M):
        rotated = [rotate_tensor(t, M) for t in tensors]
        return rotated, [symmetry_violation(t, ops) for t in rotated]

    candidates = [(STATUS_AS_IS, np.eye(3), tensors, dev_raw)]
    try:
        R_ieee = ieee_rotation(structure, symprec=symprec, dataset=ds)
    except Exception as exc:  # pymatgen/spglib cannot standardise the cell: only "as is" can be tried
        logger.debug("no IEEE rotation for %s: %s", structure.composition.reduced_formula, exc)
        R_ieee = None
    if R_ieee is not None:
        candidates.append((STATUS_IEEE, R_ieee.T, *trial(R_ieee.T)))
    if prior == "ieee":
        candidates.reverse()
    passing = [c for c in candidates if ok(c[3])]
    if passing:
        status, M, rotated, dev = passing[0]
        ambiguous = any(_differs(c[2], rotated, 3 * threshold) for c in passing[1:])
        return {**base, "status": status, "rotation": M, "dev": dev, "ambiguous": bool(ambiguous)}

    if search and R_ieee is not None:
        found = []
        for Q in SETTING_ROTATIONS:
            M = R_ieee.T @ Q.T
            rotated, dev = trial(M)
            if ok(dev):
                found.append((M, rotated, dev))
        if found:
            M, rotated, dev = found[0]
            ambiguous = any(_differs(f[1], rotated, 3 * threshold) for f in found[1:])
            return {**base, "status": STATUS_SETTING, "rotation": M, "dev": dev, "ambiguous": bool(ambiguous)}
    return {**base, "status": STATUS_INCONSISTENT, "rotation": np.eye(3), "dev": list(dev_raw), "ambiguous": False}


# --------------------------------------------------------------------------------------------- frames
def _columns(columns: str | Iterable[str]) -> list[str]:
    return [columns] if isinstance(columns, str) else list(columns)


def _iter(rows, progress: bool, desc: str):
    if not progress:
        return rows
    from tqdm.auto import tqdm

    return tqdm(rows, desc=desc, leave=False)


def check_frames(
    df: pd.DataFrame,
    columns: str | Iterable[str],
    tol: float,
    atol: float = 0.0,
    structure_column: str = "structure",
    symprec: float = SYMPREC,
    progress: bool = True,
) -> pd.DataFrame:
    """Measure, without changing anything, whether each row's tensors are in its structure's frame.

    ``columns`` hold full Cartesian tensors (numpy arrays). Returns a DataFrame on ``df.index`` with
    ``n_ops``, ``defect`` (:func:`symmetry_defect`), ``<col>_dev`` (relative deviation from the point-group
    average) and ``consistent`` (every column's deviation <= tol + defect + atol / ||T||).
    """
    cols = _columns(columns)
    _require(df, cols + [structure_column])
    rows = []
    for _, row in _iter(list(df.iterrows()), progress, "frame check"):
        s = row[structure_column]
        ops = cartesian_point_group(s, symprec=symprec)
        defect = symmetry_defect(s, symprec=symprec)
        devs, ok = {}, True
        for c in cols:
            T = np.asarray(row[c], dtype=np.float64)
            devs[f"{c}_dev"] = symmetry_violation(T, ops)
            norm = np.linalg.norm(T)
            ok &= devs[f"{c}_dev"] <= tol + defect + (atol / norm if norm > 0 else 0.0)
        rows.append({"n_ops": len(ops), "defect": defect, **devs, "consistent": bool(ok)})
    return pd.DataFrame(rows, index=df.index)


def fix_frames(
    df: pd.DataFrame,
    columns: str | Iterable[str],
    tol: float,
    prior: str = "structure",
    atol: float = 0.0,
    structure_column: str = "structure",
    symprec: float = SYMPREC,
    search: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Rotate each row's tensors into its structure's frame where needed (see :func:`fix_one`).

    Returns a copy of ``df`` with the tensor columns replaced and flag columns added: ``frame_status``
    (one of ``STATUSES``), ``frame_rotation`` (3x3 M, applied as T_new = rotate_tensor(T_old, M)),
    ``frame_ambiguous``, ``frame_defect``, ``frame_threshold``, ``n_point_group_ops``, and per tensor
    column ``<col>_dev_raw`` / ``<col>_dev`` (before / after). All tensor columns of a row share one
    rotation (they were computed on the same cell).
    """
    cols = _columns(columns)
    _require(df, cols + [structure_column])
    out = df.copy()
    results = []
    for _, row in _iter(list(df.iterrows()), progress, "frame fix"):
        results.append(fix_one([row[c] for c in cols], row[structure_column], tol=tol, prior=prior, atol=atol,
                               symprec=symprec, search=search))
    for k, c in enumerate(cols):
        out[c] = [np.asarray(t, dtype=np.float64) if r["status"] in (STATUS_AS_IS, STATUS_INCONSISTENT)
                  else rotate_tensor(np.asarray(t, dtype=np.float64), r["rotation"])
                  for t, r in zip(df[c], results)]
        out[f"{c}_dev_raw"] = [r["dev_raw"][k] for r in results]
        out[f"{c}_dev"] = [r["dev"][k] for r in results]
    out["frame_status"] = [r["status"] for r in results]
    out["frame_rotation"] = [r["rotation"] for r in results]
    out["frame_ambiguous"] = [r["ambiguous"] for r in results]
    out["frame_defect"] = [r["defect"] for r in results]
    out["frame_threshold"] = [r["threshold"] for r in results]
    out["n_point_group_ops"] = [r["n_ops"] for r in results]
    logger.info("frames of %s: %s (tol %.3g + defect, symprec %.3g Å, prior %s)", cols, frame_counts(out),
                tol, symprec, prior)
    return out


def frame_counts(df: pd.DataFrame) -> dict[str, int]:
    """{status: count} of a frame-fixed DataFrame, every status present (0 where none), plus
    ``"ambiguous"`` (rows whose accepted rotation was not unique)."""
    vc = df["frame_status"].value_counts()
    out = {s: int(vc.get(s, 0)) for s in STATUSES}
    out["ambiguous"] = int(df["frame_ambiguous"].sum())
    return out


def _require(df: pd.DataFrame, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"DataFrame has no column(s) {missing}; it has {list(df.columns)}")


__all__ = [
    "SETTING_ROTATIONS", "STATUSES", "STATUS_AS_IS", "STATUS_IEEE", "STATUS_INCONSISTENT", "STATUS_SETTING",
    "SYMPREC", "check_frames", "symmetry_defect", "fix_frames", "fix_one", "frame_counts", "idealized_structure", "ieee_rotation",
]
