"""JARVIS-DFT ``dft_3d``: its records as a DataFrame of structures and full Cartesian tensors.

Offline from a local ``dft_3d`` JSON (``data_dir=`` or ``JARVIS_DATA``), online through ``jarvis-tools``
when it is installed (imported only then). Dielectric tensors are known only on their diagonal, so the
tasks keep the crystals whose point group makes the tensor diagonal in the structure's frame.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoo.symmetry import cartesian_point_group, symmetrize_tensor
from zoo.tasks.files import read_json_any
from zoo.tensors import from_voigt

from . import frames
from .sources import DATASETS, DataNotFoundError, default_cache, finish, frame_options, local_file

# dft_3d fields used (JARVIS-DFT, OptB88vdW unless noted; "na" marks a missing value):
#   jid                       id ("JVASP-1002")
#   atoms                     {"lattice_mat" (rows, Å), "coords", "elements", "cartesian" (bool)}
#   epsx, epsy, epsz          xx, yy, zz of the OptB88vdW optical (LOPTICS, electronic, no local fields)
#                             dielectric tensor at zero frequency, dimensionless, calculation frame
#   mepsx, mepsy, mepsz       the same with the TBmBJ meta-GGA
#   dfpt_piezo_max_eij        max |e_ij| of the DFPT piezoelectric tensor, C/m^2 (the tensor itself is not in dft_3d)
#   elastic_tensor            6x6 finite-difference C_IJ in GPa (VASP "TOTAL ELASTIC MODULI" / 10, rounded to
#                             0.1 GPa by jarvis-tools), in VASP's Voigt order xx, yy, zz, xy, yz, zx
#   formula, spg_number, optb88vdw_bandgap (eV), bulk_modulus_kv, shear_modulus_gv (GPa)
JARVIS_FIELDS = ("jid", "atoms", "epsx", "epsy", "epsz", "mepsx", "mepsy", "mepsz", "dfpt_piezo_max_eij",
                 "elastic_tensor", "formula", "spg_number", "optb88vdw_bandgap", "bulk_modulus_kv",
                 "shear_modulus_gv")
# VASP's order of the symmetric pair index (xx, yy, zz, xy, yz, zx) -> positions in the standard Voigt
# order (xx, yy, zz, yz, xz, xy): standard[I] = vasp[VASP_TO_VOIGT[I]].
VASP_TO_VOIGT = (0, 1, 2, 4, 5, 3)


def load_jarvis_dft_3d(
    data_dir: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
) -> list[dict]:
    """JARVIS-DFT ``dft_3d`` records (list of dicts, jarvis-tools' format; fields: ``JARVIS_FIELDS``).

    Offline: ``path``, or in ``data_dir`` / ``JARVIS_DATA`` (or a sub-folder) the first of
    ``jdft_3d-12-12-2022.json[.zip]``, ``d3-5-16-2021.json``, ``dft_3d.json[.gz|.zip]``. Online: only
    through ``jarvis-tools`` (``jarvis.db.figshare.data("dft_3d")``) when it is installed.
    """
    info = DATASETS["jarvis_dft_3d"]
    if path is None:
        path = local_file(info, data_dir, env="JARVIS_DATA", hint=" (jarvis-tools: jarvis.db.figshare.data('dft_3d'))")
        if path is None:
            try:
                from jarvis.db.figshare import data as jarvis_data
            except ImportError:
                raise DataNotFoundError(
                    f"{info.name}: no data_dir / JARVIS_DATA given and jarvis-tools is not installed. Either "
                    f"`pip install jarvis-tools` (it downloads dft_3d from figshare), or download the dft_3d JSON "
                    f"({info.url}, e.g. jdft_3d-12-12-2022.json.zip) and pass data_dir= (or set JARVIS_DATA)."
                ) from None
            store = Path(cache) if cache is not None else default_cache("jarvis")
            store.mkdir(parents=True, exist_ok=True)
            try:
                return list(jarvis_data("dft_3d", store_dir=str(store)))
            except TypeError:  # older jarvis-tools without store_dir
                return list(jarvis_data("dft_3d"))
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{info.name}: {path} does not exist; get dft_3d from {info.url}")
    records = read_json_any(path)
    if not isinstance(records, list) or (records and not isinstance(records[0], dict)):
        raise ValueError(f"{path}: expected a JSON list of dft_3d records")
    if records and "jid" not in records[0]:
        raise ValueError(f"{path}: records have no 'jid'; is this JARVIS dft_3d?")
    return records


def jarvis_structure(atoms: dict):
    """pymatgen Structure from a JARVIS ``atoms`` dict (lattice rows in Å; coords Cartesian or fractional)."""
    # pymatgen takes about a second to import; listing the tasks imports this module, loading data need not.
    from pymatgen.core import Lattice, Structure

    lattice = Lattice(np.asarray(atoms["lattice_mat"], dtype=np.float64))
    coords = np.asarray(atoms["coords"], dtype=np.float64)
    return Structure(lattice, list(atoms["elements"]), coords, coords_are_cartesian=bool(atoms.get("cartesian")))


def _num(v: Any) -> float:
    """JARVIS value -> float; "na", None, "" and non-numbers -> nan."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def _diagonal_forced(structure, symprec: float) -> bool:
    """True when the structure's point group (in its own frame) forbids off-diagonal dielectric components,
    i.e. the Neumann projection of each off-diagonal unit tensor vanishes."""
    ops = cartesian_point_group(structure, symprec=symprec)
    tol = 1e-6 + frames.symmetry_defect(structure, symprec=symprec)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        E = np.zeros((3, 3))
        E[i, j] = E[j, i] = 1.0
        if np.linalg.norm(symmetrize_tensor(E, ops)) > tol:
            return False
    return True


def load_jarvis(
    data_dir: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    records: list[dict] | None = None,
    fix_frames: bool = True,
    progress: bool = True,
    voigt_order: str = "vasp",
    cache: str | os.PathLike | None = None,
    **frame_kwargs,
) -> pd.DataFrame:
    """JARVIS-DFT ``dft_3d`` as a DataFrame indexed by ``jid``.

    Columns: ``structure``; ``dielectric_optb88vdw`` / ``dielectric_mbj``: diag(epsx, epsy, epsz) /
    diag(mepsx, ...) (3,3) or None when missing; ``dielectric_diagonal_by_symmetry`` (the structure's point
    group forces a diagonal tensor in its frame, so the diagonal IS the tensor; elsewhere dft_3d lacks the
    off-diagonal components and the tasks drop the row); ``piezo_max_eij`` (C/m^2, nan when missing);
    ``elastic_tensor`` (3,3,3,3) GPa or None, converted from ``voigt_order`` "vasp" (xx, yy, zz, xy, yz, zx:
    what jarvis-tools stores) or "standard" (xx, yy, zz, yz, xz, xy); ``formula``, ``space_group``,
    ``band_gap`` (eV), ``bulk_modulus_kv``, ``shear_modulus_gv`` (GPa). With ``fix_frames`` each tensor
    column is checked / fixed on the rows that have it (flags prefixed by the column name:
    ``<col>_frame_status`` ...).
    """
    if voigt_order not in ("vasp", "standard"):
        raise ValueError(f"voigt_order must be 'vasp' or 'standard', got {voigt_order!r}")
    info = DATASETS["jarvis_dft_3d"]
    if records is None:
        records = load_jarvis_dft_3d(data_dir=data_dir, path=path, cache=cache)
    symprec = frame_kwargs.get("symprec", frames.SYMPREC)
    rows = []
    for rec in records:
        jid = rec.get("jid")
        if jid is None or "atoms" not in rec:
            raise ValueError(f"JARVIS record without 'jid' or 'atoms': keys {sorted(rec)[:12]}")
        s = jarvis_structure(rec["atoms"])
        eps = [_num(rec.get(k)) for k in ("epsx", "epsy", "epsz")]
        meps = [_num(rec.get(k)) for k in ("mepsx", "mepsy", "mepsz")]
        C = rec.get("elastic_tensor")
        C_arr = None
        if isinstance(C, (list, tuple)) and np.asarray(C, dtype=object).shape == (6, 6):
            V = np.asarray(C, dtype=np.float64)
            if np.isfinite(V).all() and np.abs(V).sum() > 0:
                if voigt_order == "vasp":
                    p = list(VASP_TO_VOIGT)
                    V = V[np.ix_(p, p)]
                C_arr = from_voigt(V, kind="stiffness")
        has_eps = all(np.isfinite(eps)) or all(np.isfinite(meps))
        rows.append({
            "id": str(jid), "structure": s,
            "dielectric_optb88vdw": np.diag(eps) if all(np.isfinite(eps)) else None,
            "dielectric_mbj": np.diag(meps) if all(np.isfinite(meps)) else None,
            "dielectric_diagonal_by_symmetry": _diagonal_forced(s, symprec) if has_eps else False,
            "piezo_max_eij": _num(rec.get("dfpt_piezo_max_eij")),
            "elastic_tensor": C_arr,
            "formula": rec.get("formula"),
            "space_group": int(_num(rec.get("spg_number"))) if np.isfinite(_num(rec.get("spg_number"))) else -1,
            "band_gap": _num(rec.get("optb88vdw_bandgap")),
            "bulk_modulus_kv": _num(rec.get("bulk_modulus_kv")),
            "shear_modulus_gv": _num(rec.get("shear_modulus_gv")),
        })
    df = pd.DataFrame(rows).set_index("id")
    df = finish(df, info, fix_frames=False, progress=progress)
    if not fix_frames:
        return df
    # Each tensor column is present on some rows only: check the frames of those rows, column by column.
    kw = frame_options(info, frame_kwargs)
    for col in info.tensor_columns:
        have = df[col].map(lambda v: v is not None)
        if not have.any():
            continue
        fixed = frames.fix_frames(df.loc[have, ["structure", col]], [col], progress=progress, **kw)
        df[col] = df[col].astype(object)
        df.loc[have, col] = pd.Series(list(fixed[col]), index=fixed.index, dtype=object)
        for flag in ("frame_status", "frame_ambiguous", "frame_rotation", "frame_defect", "frame_threshold",
                     f"{col}_dev_raw", f"{col}_dev"):
            name = flag if flag.startswith(col) else f"{col}_{flag}"
            df[name] = pd.Series(list(fixed[flag]), index=fixed.index, dtype=object).reindex(df.index)
    return df
