"""The real tensor data sets: what each one is (``DATASETS``) and how a loader finds and finishes its file.

Shared by the Materials Project / MatTen loaders (:mod:`zoo.tasks.datasets.loaders`) and the JARVIS one
(:mod:`zoo.tasks.datasets.jarvis`): the data-set registry, the search for a local file
(``data_dir=`` or an environment variable, the folder or its immediate sub-folders), and the last step
of every loader (string ids, data-set name and version in ``df.attrs``, the frame check of
:func:`zoo.tasks.datasets.frames.fix_frames`).
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from zoo.core.paths import DATA_VARIABLE, cache_root, resolve_data_dir

from . import frames


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


def local_file(info: DatasetInfo, data_dir: str | os.PathLike | None, env: str = DATA_VARIABLE,
               hint: str = "") -> Path | None:
    """The data set's file from ``data_dir``, else from the folder in ``$env``; None when neither is set
    (the loader then downloads, where the data set has an online source)."""
    folder, why = resolve_data_dir(data_dir, env=env)
    return None if folder is None else find_file(info.files, folder, why, info, hint=hint)


def as_array(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A nested list / JSON string / array -> float64 array of ``shape`` (ValueError naming ``what``)."""
    if isinstance(value, str):
        value = json.loads(value)
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{what}: expected shape {shape}, got {arr.shape}")
    return arr


def frame_options(info: DatasetInfo, frame_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``frames.fix_frames`` for this data set: its tolerances and prior, overridden
    by what the caller passed."""
    return {"tol": info.frame_tol, "atol": info.frame_atol, "prior": info.frame_prior, **frame_kwargs}


def finish(df: pd.DataFrame, info: DatasetInfo, fix_frames: bool, progress: bool, **frame_kwargs) -> pd.DataFrame:
    """String ids named "id" (unique), the data set's name and version in ``df.attrs``, and with
    ``fix_frames`` the frame check of every tensor column."""
    df.index = df.index.map(str)
    df.index.name = "id"
    if df.index.has_duplicates:
        dup = sorted(set(df.index[df.index.duplicated()]))[:10]
        raise ValueError(f"{info.name}: duplicated ids {dup}")
    df.attrs["dataset"] = info.name
    df.attrs["dataset_version"] = info.version
    if not fix_frames:
        return df
    return frames.fix_frames(df, list(info.tensor_columns), progress=progress, **frame_options(info, frame_kwargs))
