"""Task files: JSON that may be compressed (gzip, bzip2) or zipped whatever its name says, and specs as JSON.

Results files keep matbench's layout (``zoo.tasks.base``); these are the readers and writers under it.

Reading never runs what a file names: JSON is parsed as plain data, and the objects a data file may
hold are decoded only after ``zoo.core.safejson.check_classes`` has checked every ``@module``/``@class``
in it against an allow-list (``read_dataframe_json``: matminer's data-frame files, whose structures are
pymatgen dicts). A file that cannot be read (truncated, not JSON, not the compression it claims) raises
``DataFileError`` naming it.
"""
from __future__ import annotations

import bz2
import gzip
import json
import os
import zipfile
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

from zoo.core.io import atomic_path, json_default
from zoo.core.safejson import object_hook

from .spec import TargetSpec, TaskSpec


class DataFileError(ValueError):
    """A data file that cannot be read or is not what it should be; the message names it and the fix."""


def spec_to_dict(spec: TaskSpec) -> dict[str, Any]:
    """The spec as stored in a results file (``spec_from_dict`` reads it back)."""
    d = asdict(spec)
    d["metrics"] = list(spec.metrics)
    return d


def spec_from_dict(d: dict[str, Any]) -> TaskSpec:
    d = dict(d)
    d["target"] = TargetSpec(**d["target"])
    d["metrics"] = tuple(d.get("metrics", ()))
    return TaskSpec(**d)


def read_json_any(path: str | os.PathLike, allowed: Mapping[str, tuple[str, ...]] | None = None) -> Any:
    """Read JSON from ``path``: plain, gzip- or bzip2-compressed whatever its name says (matbench 0.6 writes
    plain JSON even to a ``.json.gz`` name, matbench issue #249; later versions compress it; matbench's
    reference artifacts are ``.json.bz2``), or the one ``.json`` inside a ``.zip`` (JARVIS' figshare files).
    A file that cannot be read raises ``DataFileError`` naming it (``FileNotFoundError`` when missing).
    With ``allowed``, every ``@module``/``@class`` the file names is checked as it is parsed
    (``zoo.core.safejson``)."""
    path = Path(path)
    hook = None if allowed is None else object_hook(allowed, str(path))
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.endswith(".json")]
                if len(names) != 1:
                    raise DataFileError(f"{path}: expected one .json inside the zip, found {names}")
                return json.loads(z.read(names[0]).decode("utf-8"), object_hook=hook)
        with open(path, "rb") as fh:
            magic = fh.read(3)
        opener = gzip.open if magic[:2] == b"\x1f\x8b" else bz2.open if magic == b"BZh" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            return json.load(fh, object_hook=hook)
    except (FileNotFoundError, DataFileError):
        raise
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFileError(f"{path}: cannot be read ({type(exc).__name__}: {exc}); the file is truncated or corrupt "
                            "(an interrupted download or copy?): delete it and get it again") from None


def read_dataframe_json(path: str | os.PathLike, allowed: Mapping[str, tuple[str, ...]] | None = None):
    """A matminer / pandas "split" JSON data frame (``{"index", "columns", "data"}``, what matminer's
    ``load_dataframe_from_json`` reads), with its objects decoded only after the allow-list check: the
    same frame matminer gives, without importing anything the file names (module docstring)."""
    import numpy as np
    import pandas as pd

    from zoo.graphs.structures import STRUCTURE_CLASSES, structure_from_dict

    d = read_json_any(path, allowed=STRUCTURE_CLASSES if allowed is None else allowed)
    if not isinstance(d, dict) or set(d) != {"index", "columns", "data"}:
        keys = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise DataFileError(f"{path}: not a matminer data-frame file (expected the keys index, columns, data; found {keys})")

    def decode(value, row):
        if not isinstance(value, dict):
            return value
        if value.get("@class") in ("Structure", "IStructure"):
            return structure_from_dict(value, source=f"{path} row {row}", checked=True)
        if value.get("@module") == "numpy" and value.get("@class") == "array":  # monty's encoding of an array
            dtype = np.dtype(value.get("dtype", "float64"))
            if dtype.kind not in "biufc":
                raise DataFileError(f"{path} row {row}: an array of dtype {dtype} (only numbers are read)")
            return np.asarray(value["data"], dtype=dtype)
        return value

    data = [[decode(v, k) for v in row] for k, row in enumerate(d["data"])]
    return pd.DataFrame(data=data, index=d["index"], columns=d["columns"])


def write_json_any(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically; gzip-compressed when the name ends in ``.gz``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".gz":
            # mtime=0: the same results give the same bytes
            with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                gz.write(json.dumps(obj, default=json_default).encode("utf-8"))
        else:
            tmp.write_text(json.dumps(obj, default=json_default))
