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

Local matminer files are checked against matminer's sha256 too (``check_hash=False`` to skip). Local
files are parsed as plain JSON / CSV / POSCAR text: structures are decoded only after an allow-list
check of the classes the file names (``zoo.tasks.files.read_dataframe_json``; matminer's own reader
imports any module an entry names), and a truncated or corrupt file is refused naming it. The frame's
``attrs["data_files"]`` records each local file read and its sha256.

Data sets (units; Voigt conversion through :func:`zoo.tensors.from_voigt`; what each is:
:data:`zoo.tasks.datasets.sources.DATASETS`):

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
- ``jarvis_dft_3d``: JARVIS-DFT ``dft_3d`` records (:mod:`zoo.tasks.datasets.jarvis`).
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
from pathlib import Path
from typing import Callable

import pandas as pd

from zoo.core.io import sha256_file
from zoo.graphs.structures import structure_from_dict
from zoo.tensors import from_voigt

from ..files import DataFileError, read_dataframe_json, read_json_any

from .jarvis import load_jarvis
from .sources import DATASETS, DataNotFoundError, DatasetInfo, as_array, dataset_info, default_cache, finish, local_file


# --------------------------------------------------------------------------------------------- matminer
# matminer is imported inside the functions that read its files: it takes seconds to import, and listing
# the tasks imports this module.
def _matminer_meta(name: str) -> dict:
    from matminer.datasets.utils import _load_dataset_dict

    return _load_dataset_dict()[name]


def _load_matminer_file(name: str, path: Path, check_hash: bool) -> pd.DataFrame:
    """A matminer data file already on disk (``<folder>/<name>.json.gz``), checked against matminer's sha256,
    read as matminer's ``load_dataset`` would, through the allow-list (module docstring)."""
    meta = _matminer_meta(name)
    digest = sha256_file(path)
    if check_hash and meta.get("hash") and digest != meta["hash"]:
        raise DataFileError(f"{path}: sha256 {digest} differs from matminer's {meta['hash']} for {name!r}; the file is "
                            "corrupt or another version: delete it and get it again (or pass check_hash=False to load it anyway)")
    df = read_dataframe_json(path)
    df.attrs["data_files"] = {str(Path(path).resolve()): digest}
    return df


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


def _matminer_frame(name: str, info: DatasetInfo, path: Path | None, cache: str | os.PathLike | None,
                    check_hash: bool) -> pd.DataFrame:
    """matminer's DataFrame of data set ``name``: from the local file ``path``, else downloaded by matminer."""
    if path is None:
        return _load_matminer_online(name, info, cache)
    return _load_matminer_file(name, path, check_hash)


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
    raw = _matminer_frame("dielectric_constant", info, local_file(info, data_dir), cache, check_hash)
    df = pd.DataFrame({
        "structure": list(raw["structure"]),
        "e_total": [as_array(v, (3, 3), f"{m} e_total") for m, v in zip(raw["material_id"], raw["e_total"])],
        "e_electronic": [as_array(v, (3, 3), f"{m} e_electronic")
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
    df.attrs["data_files"] = raw.attrs.get("data_files", {})
    return finish(df, info, fix_frames, progress, **frame_kwargs)


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
    d = read_json_any(path, allowed={})  # plain records: no object of any class
    if not isinstance(d, dict) or "records" not in d:
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
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            text = fh.read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataFileError(f"{path}: cannot be read ({type(exc).__name__}: {exc}); the file is truncated or corrupt: "
                            "delete it and get it again") from None
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
    path = local_file(info, data_dir)
    if path is None or path.name == "piezoelectric_tensor.json.gz":
        rows = _piezo_rows_from_matminer(_matminer_frame("piezoelectric_tensor", info, path, cache, check_hash))
    elif path.name.endswith("_normalized.json.gz"):
        rows = _piezo_rows_from_normalized(path)
    else:
        rows = _piezo_rows_from_csv(path)
    df = pd.DataFrame({
        "structure": [r["structure"] for r in rows],
        "piezoelectric_tensor": [from_voigt(as_array(r["voigt"], (3, 6), f"{r['id']} piezoelectric_tensor"),
                                            kind="piezo_e") for r in rows],
        "formula": [r["formula"] for r in rows],
        "space_group": [int(float(r["space_group"])) for r in rows],
        "point_group": [r["point_group"] for r in rows],
        "eij_max": [float(r["eij_max"]) for r in rows],
        "volume": [float(r["volume"]) for r in rows],
        "nsites": [int(float(r["nsites"])) for r in rows],
    }, index=[r["id"] for r in rows])
    df.attrs["data_files"] = {} if path is None else {str(Path(path).resolve()): sha256_file(path)}
    return finish(df, info, fix_frames, progress, **frame_kwargs)


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
    raw = _matminer_frame("elastic_tensor_2015", info, local_file(info, data_dir), cache, check_hash)
    df = pd.DataFrame({
        "structure": list(raw["structure"]),
        "elastic_tensor": [from_voigt(as_array(v, (6, 6), f"{m} elastic_tensor"), kind="stiffness")
                           for m, v in zip(raw["material_id"], raw["elastic_tensor"])],
        "K_VRH": raw["K_VRH"].astype(float).to_numpy(),
        "G_VRH": raw["G_VRH"].astype(float).to_numpy(),
        "poisson_ratio": raw["poisson_ratio"].astype(float).to_numpy(),
        "formula": list(raw["formula"]),
        "space_group": [int(v) for v in raw["space_group"]],
        "volume": raw["volume"].astype(float).to_numpy(),
        "nsites": [int(v) for v in raw["nsites"]],
    }, index=list(raw["material_id"]))
    df.attrs["data_files"] = raw.attrs.get("data_files", {})
    return finish(df, info, fix_frames, progress, **frame_kwargs)


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
    info = DATASETS["mp_elastic_matten"]
    if path is None:
        path = local_file(info, data_dir)
    if path is None:
        raise DataNotFoundError(
            f"{info.name}: no path, data_dir or MATMINER_DATA given and there is no online source; get "
            f"MatTen's data ({info.url}, or datasets/{info.files[0]} of github.com/wengroup/matten) and "
            f"pass path= or data_dir=.")
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{info.name}: {path} does not exist; see {info.url}")
    from zoo.graphs.structures import STRUCTURE_CLASSES

    d = read_json_any(path, allowed=STRUCTURE_CLASSES)
    for key in ("structure", "elastic_tensor_full"):
        if not isinstance(d, dict) or key not in d:
            raise DataFileError(f"{path}: not MatTen's layout (no {key!r} column); columns: {list(d) if isinstance(d, dict) else type(d).__name__}")
    keys = list(d["structure"])
    df = pd.DataFrame({
        "structure": [structure_from_dict(d["structure"][k], source=f"{path} row {k}", checked=True) for k in keys],
        "elastic_tensor": [as_array(d["elastic_tensor_full"][k], (3, 3, 3, 3), f"row {k} elastic_tensor_full")
                           for k in keys],
        "formula": [d.get("formula_pretty", {}).get(k) for k in keys],
        "crystal_system": [d.get("crystal_system", {}).get(k) for k in keys],
        "matten_split": [d.get("split", {}).get(k) for k in keys],
    }, index=[f"matten-{k}" for k in keys])
    df.attrs["source_file"] = str(path)
    df.attrs["data_files"] = {str(path.resolve()): sha256_file(path)}
    return finish(df, info, fix_frames, progress, **frame_kwargs)


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
    "LOADERS", "load", "load_jarvis", "load_mp_dielectric", "load_mp_elastic", "load_mp_elastic_matten",
    "load_mp_piezoelectric",
]
