"""Loaders of real tensor data sets: structures as pymatgen ``Structure``, tensors as full Cartesian arrays.

Every loader returns a DataFrame indexed by a string id (``id``) with a ``structure`` column, one column
per tensor (numpy float64 arrays of shape (3,)*rank in the frame of the structure, see
:mod:`zoo.tasks.datasets.frames`), metadata columns and, with ``fix_frames=True`` (default), the per-row
frame flags of :func:`zoo.tasks.datasets.frames.fix_frames`.

Where the data come from (first match wins):

1. ``data_dir=`` argument, else the ``MATMINER_DATA`` environment variable (``JARVIS_DATA`` for JARVIS):
   a folder holding the file, or a folder whose immediate sub-folders hold it (so
   ``MATMINER_DATA=../shared/data`` finds ``../shared/data/matminer_dielectric_constant/...``). Nothing
   is downloaded; a missing file raises :class:`DataNotFoundError` naming the file(s), the folders
   searched and where to get the data.
2. otherwise online: matminer's own ``matminer.datasets.load_dataset(name, data_home=...)``, which
   downloads matminer's file and checks its sha256 against matminer's metadata, into
   ``$ZOO_CACHE/datasets/matminer`` (default ``~/.cache/crystal-zoo/...``); JARVIS via ``jarvis-tools``
   (``jarvis.db.figshare.data("dft_3d")``) when it is installed.

Local matminer files are checked against matminer's sha256 too (``check_hash=False`` to skip).

Data sets (units; Voigt conversion through :func:`zoo.tasks.tensors.from_voigt`):

- ``mp_dielectric``: matminer ``dielectric_constant`` (Petousis et al., Sci. Data 4, 160134 (2017)),
  1056 rows. ``e_electronic`` (high-frequency) and ``e_total`` (electronic + ionic) 3x3 tensors,
  dimensionless; stored by matminer as JSON strings; raw DFPT output in the calculation frame (not
  symmetrised, so slightly asymmetric: kept as is).
- ``mp_piezoelectric``: matminer ``piezoelectric_tensor`` (de Jong et al., Sci. Data 2, 150053 (2015)),
  941 rows. e_iJ in C/m^2, 3x6 Voigt (xx, yy, zz, yz, xz, xy), stress-like: NO factors, e_ijk = e_iJ
  for J <-> (j,k) and e_ijk = e_ikj. MP reports them in the IEEE standard frame ("ieee" prior).
- ``mp_elastic``: matminer ``elastic_tensor_2015`` (de Jong et al., Sci. Data 2, 150009 (2015)),
  1181 rows; column ``elastic_tensor`` C_IJ in GPa, 6x6 Voigt, stiffness (no factors), IEEE frame.
- ``mp_elastic_matten``: the MatTen JSON layout (Wen et al., Digital Discovery 2024), e.g. its
  100-crystal example file; ``elastic_tensor_full`` C_ijkl in GPa in the structure frame.
- ``jarvis_dft_3d``: JARVIS-DFT ``dft_3d`` records (see :func:`load_jarvis_dft_3d` for the fields).
"""
from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import logging
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from zoo.core.paths import cache_root, resolve_data_dir

from . import frames as _frames

logger = logging.getLogger(__name__)


class DataNotFoundError(FileNotFoundError):
    """A data file is not where the loader looked; the message names the files, folders and source."""


# --------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class DatasetInfo:
    """What a data set is: where it comes from, which columns hold tensors, and how frames are checked.

    ``frame_tol`` / ``frame_atol`` / ``frame_prior`` feed :func:`zoo.tasks.datasets.frames.fix_frames`:
    a tensor T passes when ||T - Sym_G T|| / ||T|| <= frame_tol + defect + frame_atol / ||T||.
    """

    name: str
    version: str
    title: str
    source: str
    url: str
    n_rows: int | None
    tensor_columns: tuple[str, ...]
    units: dict[str, str] = field(default_factory=dict)
    frame_prior: str = "structure"
    frame_tol: float = 1e-3
    frame_atol: float = 0.0
    files: tuple[str, ...] = ()
    citation: str = ""


DATASETS: dict[str, DatasetInfo] = {
    "mp_dielectric": DatasetInfo(
        name="mp_dielectric", version="1", title="Materials Project DFPT dielectric tensors",
        source="matminer dielectric_constant", url="https://ndownloader.figshare.com/files/13213475",
        n_rows=1056, tensor_columns=("e_total", "e_electronic"),
        units={"e_total": "dimensionless", "e_electronic": "dimensionless"},
        # Calculation frame. The raw DFPT tensors scatter around their symmetric form by up to 1.6 % (e_electronic)
        # and 7 % (e_total, exactly symmetric cells; 13 % on the most distorted one) and no candidate rotation
        # reduces any row's deviation (README.md): that scatter is calculation noise, hence 0.1.
        frame_prior="structure", frame_tol=0.1,
        files=("dielectric_constant.json.gz",),
        citation="Petousis et al., Sci. Data 4, 160134 (2017)"),
    "mp_piezoelectric": DatasetInfo(
        name="mp_piezoelectric", version="1", title="Materials Project DFPT piezoelectric tensors",
        source="matminer piezoelectric_tensor", url="https://ndownloader.figshare.com/files/13220621",
        n_rows=941, tensor_columns=("piezoelectric_tensor",), units={"piezoelectric_tensor": "C/m^2"},
        # MP symmetrised these tensors and printed them to 6 decimals (C/m^2): accepted tensors on exactly
        # symmetric cells deviate <= 4e-7, every rejected candidate by >= 0.03; 1e-3 sits in that gap.
        frame_prior="ieee", frame_tol=1e-3,
        files=("piezoelectric_tensor.json.gz", "piezoelectric_tensor_normalized.json.gz",
               "piezoelectric_tensor.csv.gz", "piezoelectric_tensor.csv"),
        citation="de Jong et al., Sci. Data 2, 150053 (2015)"),
    "mp_elastic": DatasetInfo(
        name="mp_elastic", version="1", title="Materials Project elastic tensors (2015)",
        source="matminer elastic_tensor_2015", url="https://ndownloader.figshare.com/files/13220603",
        n_rows=1181, tensor_columns=("elastic_tensor",), units={"elastic_tensor": "GPa"},
        # Not measured here (the file is not in shared/data). MP symmetrised these tensors; components may be
        # rounded to 1 GPa: <= 0.5 GPa each, <= 4.5 GPa in the Frobenius norm of the 81 components.
        frame_prior="ieee", frame_tol=1e-3, frame_atol=4.5,
        files=("elastic_tensor_2015.json.gz",),
        citation="de Jong et al., Sci. Data 2, 150009 (2015)"),
    "mp_elastic_matten": DatasetInfo(
        name="mp_elastic_matten", version="1", title="MP elastic tensors, MatTen layout",
        source="MatTen (wengroup/matten) datasets/*.json", url="https://doi.org/10.5281/zenodo.8190849",
        n_rows=None, tensor_columns=("elastic_tensor",), units={"elastic_tensor": "GPa"},
        # 8 printed decimals, symmetrised: all 100 of the example file deviate < 1e-12.
        frame_prior="structure", frame_tol=1e-3,
        files=("example_crystal_elasticity_tensor_n100.json",),
        citation="Wen et al., Digital Discovery 3, 869 (2024)"),
    "jarvis_dft_3d": DatasetInfo(
        name="jarvis_dft_3d", version="1", title="JARVIS-DFT 3D",
        source="JARVIS-DFT dft_3d (jarvis-tools figshare)", url="https://doi.org/10.6084/m9.figshare.6815699",
        n_rows=None, tensor_columns=("dielectric_optb88vdw", "dielectric_mbj", "elastic_tensor"),
        units={"dielectric_optb88vdw": "dimensionless", "dielectric_mbj": "dimensionless",
               "elastic_tensor": "GPa", "piezo_max_eij": "C/m^2"},
        # Not measured here (no JARVIS file in shared/data). jarvis-tools rounds C_IJ to 0.1 GPa (0.05 GPa
        # each, 0.45 GPa Frobenius); the finite-difference tensors are not symmetrised: 2 % allowed.
        frame_prior="structure", frame_tol=0.02, frame_atol=0.45,
        files=("jdft_3d-12-12-2022.json.zip", "jdft_3d-12-12-2022.json", "d3-5-16-2021.json",
               "dft_3d.json", "dft_3d.json.gz", "dft_3d.json.zip"),
        citation="Choudhary et al., npj Comput. Mater. 6, 173 (2020)"),
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; available: {sorted(DATASETS)}") from None


# --------------------------------------------------------------------------------------------- files
def find_file(names: Sequence[str], folder: Path, why: str, info: DatasetInfo, hint: str = "") -> Path:
    """First of ``names`` (globs allowed) in ``folder`` or one of its immediate sub-folders."""
    folder = Path(folder)
    searched = [folder] + (sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else [])
    for name in names:
        for d in searched:
            hits = sorted(glob.glob(str(d / name)))
            if hits:
                return Path(hits[0])
    where = ", ".join(str(d) for d in searched[:8]) + (" ..." if len(searched) > 8 else "")
    raise DataNotFoundError(
        f"{info.name}: none of the files {list(names)} is in {folder} (set by {why}); searched: {where}"
        + ("" if folder.is_dir() else " (that folder does not exist)")
        + f". Get the data from {info.url} ({info.source}){hint}, put the file in that folder (or pass "
        f"data_dir=), or unset data_dir/MATMINER_DATA to let the loader download it."
    )


def default_cache(sub: str) -> Path:
    """``$ZOO_CACHE/datasets/<sub>`` (default ``~/.cache/crystal-zoo/datasets/<sub>``)."""
    return cache_root() / "datasets" / sub


def _matminer_meta(name: str) -> dict:
    from matminer.datasets.utils import _load_dataset_dict

    return _load_dataset_dict()[name]


def _load_matminer_file(name: str, path: Path, check_hash: bool) -> pd.DataFrame:
    """A matminer data file already on disk (``<folder>/<name>.json.gz``), checked against matminer's sha256."""
    from matminer.datasets import load_dataset

    meta = _matminer_meta(name)
    if check_hash and meta.get("hash"):
        from zoo.core.io import sha256_file

        digest = sha256_file(path)
        if digest != meta["hash"]:
            raise ValueError(f"{path}: sha256 {digest} differs from matminer's {meta['hash']} for {name!r}; "
                             f"the file is corrupt or another version (pass check_hash=False to load it anyway)")
    return load_dataset(name, data_home=str(path.parent), download_if_missing=False)


def _load_matminer_online(name: str, info: DatasetInfo, cache: str | os.PathLike | None) -> pd.DataFrame:
    from matminer.datasets import load_dataset

    home = Path(cache) if cache is not None else default_cache("matminer")
    home.mkdir(parents=True, exist_ok=True)
    try:
        return load_dataset(name, data_home=str(home), download_if_missing=True)
    except Exception as exc:
        raise DataNotFoundError(
            f"{info.name}: matminer could not download {name!r} from {info.url} into {home} ({exc}). Without "
            f"network, put matminer's {name}.json.gz in a folder and pass data_dir= (or set MATMINER_DATA)."
        ) from exc


def _as_array(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A nested list / JSON string / array -> float64 array of ``shape`` (ValueError naming ``what``)."""
    if isinstance(value, str):
        value = json.loads(value)
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{what}: expected shape {shape}, got {arr.shape}")
    return arr


def _from_voigt(V: np.ndarray, kind: str) -> np.ndarray:
    try:
        from zoo.tensors import from_voigt
    except ImportError as exc:  # written by another part of the project
        raise ImportError("converting Voigt data needs tasks.tensors.from_voigt (tasks/tensors.py)") from exc
    return np.asarray(from_voigt(V, kind=kind), dtype=np.float64)


def _finish(df: pd.DataFrame, info: DatasetInfo, fix_frames: bool, progress: bool,
            columns: Sequence[str] | None = None, **frame_kwargs) -> pd.DataFrame:
    df.index = df.index.map(str)
    df.index.name = "id"
    if df.index.has_duplicates:
        dup = sorted(set(df.index[df.index.duplicated()]))[:10]
        raise ValueError(f"{info.name}: duplicated ids {dup}")
    df.attrs["dataset"] = info.name
    df.attrs["dataset_version"] = info.version
    if not fix_frames:
        return df
    kw = dict(tol=info.frame_tol, atol=info.frame_atol, prior=info.frame_prior)
    kw.update(frame_kwargs)
    return _frames.fix_frames(df, list(columns or info.tensor_columns), progress=progress, **kw)


# --------------------------------------------------------------------------------------------- MP dielectric
def load_mp_dielectric(
    data_dir: str | os.PathLike | None = None,
    fix_frames: bool = True,
    progress: bool = True,
    check_hash: bool = True,
    cache: str | os.PathLike | None = None,
    **frame_kwargs,
) -> pd.DataFrame:
    """Materials Project dielectric tensors (matminer ``dielectric_constant``, 1056 rows).

    Columns: ``structure``, ``e_total`` and ``e_electronic`` ((3,3), dimensionless), ``formula``,
    ``space_group``, ``band_gap`` (eV), ``n``, ``poly_electronic``, ``poly_total``, ``pot_ferroelectric``,
    ``volume`` (Å^3), ``nsites`` + frame flags. Offline file: ``dielectric_constant.json.gz``.
    """
    info = DATASETS["mp_dielectric"]
    folder, why = resolve_data_dir(data_dir)
    if folder is None:
        raw = _load_matminer_online("dielectric_constant", info, cache)
    else:
        raw = _load_matminer_file("dielectric_constant", find_file(info.files, folder, why, info), check_hash)
    df = pd.DataFrame({
        "structure": list(raw["structure"]),
        "e_total": [_as_array(v, (3, 3), f"{m} e_total") for m, v in zip(raw["material_id"], raw["e_total"])],
        "e_electronic": [_as_array(v, (3, 3), f"{m} e_electronic")
                         for m, v in zip(raw["material_id"], raw["e_electronic"])],
        "formula": list(raw["formula"]),
        "space_group": [int(v) for v in raw["space_group"]],
        "band_gap": raw["band_gap"].astype(float).to_numpy(),
        "n": raw["n"].astype(float).to_numpy(),
        "poly_electronic": raw["poly_electronic"].astype(float).to_numpy(),
        "poly_total": raw["poly_total"].astype(float).to_numpy(),
        "pot_ferroelectric": raw["pot_ferroelectric"].astype(bool).to_numpy(),
        "volume": raw["volume"].astype(float).to_numpy(),
        "nsites": [int(v) for v in raw["nsites"]],
    }, index=list(raw["material_id"]))
    return _finish(df, info, fix_frames, progress, **frame_kwargs)


# --------------------------------------------------------------------------------------------- MP piezo
def _piezo_rows_from_matminer(raw: pd.DataFrame) -> list[dict]:
    rows = []
    for _, r in raw.iterrows():
        rows.append({"id": r["material_id"], "structure": r["structure"], "voigt": r["piezoelectric_tensor"],
                     "formula": r.get("formula"), "space_group": r.get("space_group"),
                     "point_group": r.get("point_group"), "eij_max": r.get("eij_max"), "volume": r.get("volume"),
                     "nsites": r.get("nsites")})
    return rows


def _structure_from_poscar(text: str, what: str):
    from pymatgen.core import Structure

    try:
        return Structure.from_str(text, fmt="poscar")
    except Exception as exc:
        raise ValueError(f"{what}: cannot read its POSCAR ({exc})") from exc


def _piezo_rows_from_normalized(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        d = json.load(fh)
    if "records" not in d:
        raise ValueError(f"{path}: not the normalized piezoelectric JSON (no 'records' key)")
    rows = []
    for r in d["records"]:
        # The POSCAR carries the explicit Cartesian lattice of the calculation; the CIF only cell parameters.
        rows.append({"id": r["material_id"], "structure": _structure_from_poscar(r["poscar"], r["material_id"]),
                     "voigt": r["piezoelectric_tensor"], "formula": r.get("formula"),
                     "space_group": r.get("space_group"), "point_group": r.get("point_group"),
                     "eij_max": r.get("eij_max"), "volume": r.get("volume"), "nsites": r.get("nsites")})
    return rows


def _piezo_rows_from_csv(path: Path) -> list[dict]:
    """matminer's old CSV: a '# ref' line, then a header of 13 names over 14 fields (leading pandas index)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        text = fh.read()
    if text.startswith("#"):
        text = text.split("\n", 1)[1]
    csv.field_size_limit(min(2**31 - 1, 10**9))
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    rows = []
    for fields in reader:
        if not fields:
            continue
        if len(fields) == len(header) + 1:  # unnamed leading index column
            fields = fields[1:]
        rec = dict(zip(header, fields))
        mid = rec["material_id"]
        rows.append({"id": mid, "structure": _structure_from_poscar(rec["poscar"], mid),
                     "voigt": json.loads(rec["piezoelectric_tensor"]), "formula": rec.get("formula"),
                     "space_group": rec.get("space_group"), "point_group": rec.get("point_group"),
                     "eij_max": rec.get("eij_max"), "volume": rec.get("volume"), "nsites": rec.get("nsites")})
    return rows


def load_mp_piezoelectric(
    data_dir: str | os.PathLike | None = None,
    fix_frames: bool = True,
    progress: bool = True,
    check_hash: bool = True,
    cache: str | os.PathLike | None = None,
    **frame_kwargs,
) -> pd.DataFrame:
    """Materials Project piezoelectric tensors (matminer ``piezoelectric_tensor``, 941 rows).

    ``piezoelectric_tensor``: e_ijk (3,3,3) in C/m^2 from MP's 3x6 Voigt e_iJ with no factors (e is
    stress-like), e_ijk = e_ikj. Also ``formula``, ``space_group``, ``point_group``, ``eij_max`` (C/m^2),
    ``volume`` (Å^3), ``nsites`` + frame flags. Offline files, first found: matminer's
    ``piezoelectric_tensor.json.gz``, ``piezoelectric_tensor_normalized.json.gz`` (records with ``poscar``),
    the old matminer ``piezoelectric_tensor.csv[.gz]``.
    """
    info = DATASETS["mp_piezoelectric"]
    folder, why = resolve_data_dir(data_dir)
    if folder is None:
        rows = _piezo_rows_from_matminer(_load_matminer_online("piezoelectric_tensor", info, cache))
    else:
        path = find_file(info.files, folder, why, info)
        if path.name == "piezoelectric_tensor.json.gz":
            rows = _piezo_rows_from_matminer(_load_matminer_file("piezoelectric_tensor", path, check_hash))
        elif path.name.endswith("_normalized.json.gz"):
            rows = _piezo_rows_from_normalized(path)
        else:
            rows = _piezo_rows_from_csv(path)
    df = pd.DataFrame({
        "structure": [r["structure"] for r in rows],
        "piezoelectric_tensor": [_from_voigt(_as_array(r["voigt"], (3, 6), f"{r['id']} piezoelectric_tensor"),
                                             "piezo_e") for r in rows],
        "formula": [r["formula"] for r in rows],
        "space_group": [int(float(r["space_group"])) for r in rows],
        "point_group": [r["point_group"] for r in rows],
        "eij_max": [float(r["eij_max"]) for r in rows],
        "volume": [float(r["volume"]) for r in rows],
        "nsites": [int(float(r["nsites"])) for r in rows],
    }, index=[r["id"] for r in rows])
    return _finish(df, info, fix_frames, progress, **frame_kwargs)


# --------------------------------------------------------------------------------------------- MP elastic
def load_mp_elastic(
    data_dir: str | os.PathLike | None = None,
    fix_frames: bool = True,
    progress: bool = True,
    check_hash: bool = True,
    cache: str | os.PathLike | None = None,
    **frame_kwargs,
) -> pd.DataFrame:
    """Materials Project elastic tensors (matminer ``elastic_tensor_2015``, 1181 rows).

    ``elastic_tensor``: C_ijkl (3,3,3,3) in GPa from matminer's ``elastic_tensor`` (6x6 Voigt stiffness,
    no factors; IEEE frame, symmetrised, "ieee" prior). Also ``K_VRH``, ``G_VRH`` (GPa),
    ``poisson_ratio``, ``formula``, ``space_group``, ``volume`` (Å^3), ``nsites`` + frame flags.
    Offline file: ``elastic_tensor_2015.json.gz``. (matminer's ``elastic_tensor_original``, unsymmetrised
    and in the conventional standard cell's orientation, is not used.)
    """
    info = DATASETS["mp_elastic"]
    folder, why = resolve_data_dir(data_dir)
    if folder is None:
        raw = _load_matminer_online("elastic_tensor_2015", info, cache)
    else:
        raw = _load_matminer_file("elastic_tensor_2015", find_file(info.files, folder, why, info), check_hash)
    df = pd.DataFrame({
        "structure": list(raw["structure"]),
        "elastic_tensor": [_from_voigt(_as_array(v, (6, 6), f"{m} elastic_tensor"), "stiffness")
                           for m, v in zip(raw["material_id"], raw["elastic_tensor"])],
        "K_VRH": raw["K_VRH"].astype(float).to_numpy(),
        "G_VRH": raw["G_VRH"].astype(float).to_numpy(),
        "poisson_ratio": raw["poisson_ratio"].astype(float).to_numpy(),
        "formula": list(raw["formula"]),
        "space_group": [int(v) for v in raw["space_group"]],
        "volume": raw["volume"].astype(float).to_numpy(),
        "nsites": [int(v) for v in raw["nsites"]],
    }, index=list(raw["material_id"]))
    return _finish(df, info, fix_frames, progress, **frame_kwargs)


def load_mp_elastic_matten(
    data_dir: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    fix_frames: bool = True,
    progress: bool = True,
    **frame_kwargs,
) -> pd.DataFrame:
    """Elastic tensors in MatTen's JSON layout (pandas column-oriented: ``{"structure": {"0": ...}, ...}``).

    ``path``: the JSON file; else ``example_crystal_elasticity_tensor_n100.json`` in ``data_dir`` /
    ``MATMINER_DATA`` (or a sub-folder). There is no online source (MatTen's full set is on Zenodo).
    Ids are ``matten-<row key>`` (the file has no material ids). Columns: ``structure``,
    ``elastic_tensor`` (``elastic_tensor_full``, (3,3,3,3), GPa), ``formula``, ``crystal_system``,
    ``matten_split`` + frame flags.
    """
    from pymatgen.core import Structure

    info = DATASETS["mp_elastic_matten"]
    if path is None:
        folder, why = resolve_data_dir(data_dir)
        if folder is None:
            raise DataNotFoundError(
                f"{info.name}: no path, data_dir or MATMINER_DATA given and there is no online source; get "
                f"MatTen's data ({info.url}, or datasets/{info.files[0]} of github.com/wengroup/matten) and "
                f"pass path= or data_dir=.")
        path = find_file(info.files, folder, why, info)
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{info.name}: {path} does not exist; see {info.url}")
    with open(path, encoding="utf-8") as fh:
        d = json.load(fh)
    for key in ("structure", "elastic_tensor_full"):
        if key not in d:
            raise ValueError(f"{path}: not MatTen's layout (no {key!r} column); columns: {list(d)}")
    keys = list(d["structure"])
    df = pd.DataFrame({
        "structure": [Structure.from_dict(d["structure"][k]) for k in keys],
        "elastic_tensor": [_as_array(d["elastic_tensor_full"][k], (3, 3, 3, 3), f"row {k} elastic_tensor_full")
                           for k in keys],
        "formula": [d.get("formula_pretty", {}).get(k) for k in keys],
        "crystal_system": [d.get("crystal_system", {}).get(k) for k in keys],
        "matten_split": [d.get("split", {}).get(k) for k in keys],
    }, index=[f"matten-{k}" for k in keys])
    df.attrs["source_file"] = str(path)
    return _finish(df, info, fix_frames, progress, **frame_kwargs)


# --------------------------------------------------------------------------------------------- JARVIS
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


def _read_json_any(path: Path) -> Any:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(".json")]
            if len(names) != 1:
                raise ValueError(f"{path}: expected one .json inside the zip, found {names}")
            return json.loads(z.read(names[0]).decode("utf-8"))
    with open(path, "rb") as fh:
        magic = fh.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


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
        folder, why = resolve_data_dir(data_dir, env="JARVIS_DATA")
        if folder is None:
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
        path = find_file(info.files, folder, why, info, hint=" (jarvis-tools: jarvis.db.figshare.data('dft_3d'))")
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{info.name}: {path} does not exist; get dft_3d from {info.url}")
    records = _read_json_any(path)
    if not isinstance(records, list) or (records and not isinstance(records[0], dict)):
        raise ValueError(f"{path}: expected a JSON list of dft_3d records")
    if records and "jid" not in records[0]:
        raise ValueError(f"{path}: records have no 'jid'; is this JARVIS dft_3d?")
    return records


def jarvis_structure(atoms: dict):
    """pymatgen Structure from a JARVIS ``atoms`` dict (lattice rows in Å; coords Cartesian or fractional)."""
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
    from zoo.symmetry import cartesian_point_group, symmetrize_tensor

    ops = cartesian_point_group(structure, symprec=symprec)
    tol = 1e-6 + _frames.symmetry_defect(structure, symprec=symprec)
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
    symprec = frame_kwargs.get("symprec", _frames.SYMPREC)
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
                C_arr = _from_voigt(V, "stiffness")
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
    df = _finish(df, info, fix_frames=False, progress=progress)
    if not fix_frames:
        return df
    kw = dict(tol=info.frame_tol, atol=info.frame_atol, prior=info.frame_prior)
    kw.update(frame_kwargs)
    for col in info.tensor_columns:
        have = df[col].map(lambda v: v is not None)
        if not have.any():
            continue
        fixed = _frames.fix_frames(df.loc[have, ["structure", col]], [col], progress=progress, **kw)
        df[col] = df[col].astype(object)
        df.loc[have, col] = pd.Series(list(fixed[col]), index=fixed.index, dtype=object)
        for flag in ("frame_status", "frame_ambiguous", "frame_rotation", "frame_defect", "frame_threshold",
                     f"{col}_dev_raw", f"{col}_dev"):
            name = flag if flag.startswith(col) else f"{col}_{flag}"
            df[name] = pd.Series(list(fixed[flag]), index=fixed.index, dtype=object).reindex(df.index)
    return df


# --------------------------------------------------------------------------------------------- dispatch
LOADERS: dict[str, Callable[..., pd.DataFrame]] = {
    "mp_dielectric": load_mp_dielectric,
    "mp_piezoelectric": load_mp_piezoelectric,
    "mp_elastic": load_mp_elastic,
    "mp_elastic_matten": load_mp_elastic_matten,
    "jarvis_dft_3d": load_jarvis,
}


def load(name: str, **kwargs) -> pd.DataFrame:
    """Load data set ``name`` (one of ``DATASETS``); kwargs go to its loader."""
    dataset_info(name)
    return LOADERS[name](**kwargs)


__all__ = [
    "DATASETS", "DataNotFoundError", "DatasetInfo", "JARVIS_FIELDS", "LOADERS", "VASP_TO_VOIGT", "dataset_info",
    "find_file", "jarvis_structure", "load", "load_jarvis", "load_jarvis_dft_3d", "load_mp_dielectric",
    "load_mp_elastic", "load_mp_elastic_matten", "load_mp_piezoelectric",
]
