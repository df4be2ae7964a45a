"""Task files: JSON that may be compressed (gzip, bzip2) or zipped whatever its name says, and specs as JSON.

Results files keep matbench's layout (``zoo.tasks.base``); these are the readers and writers under it.
"""
from __future__ import annotations

import bz2
import gzip
import json
import os
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from zoo.core.io import atomic_path, json_default

from .spec import TargetSpec, TaskSpec


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


def read_json_any(path: str | os.PathLike) -> Any:
    """Read JSON from ``path``: plain, gzip- or bzip2-compressed whatever its name says (matbench 0.6 writes
    plain JSON even to a ``.json.gz`` name, matbench issue #249; later versions compress it; matbench's
    reference artifacts are ``.json.bz2``), or the one ``.json`` inside a ``.zip`` (JARVIS' figshare files)."""
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(".json")]
            if len(names) != 1:
                raise ValueError(f"{path}: expected one .json inside the zip, found {names}")
            return json.loads(z.read(names[0]).decode("utf-8"))
    with open(path, "rb") as fh:
        magic = fh.read(3)
    opener = gzip.open if magic[:2] == b"\x1f\x8b" else bz2.open if magic == b"BZh" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


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
