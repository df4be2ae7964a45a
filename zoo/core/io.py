"""Atomic file writes: results and checkpoints are never half-written.

Every writer goes to a temporary file in the same folder and ``os.replace``s it into place, so a kill
at any moment leaves either the old file or the new one, never a truncated one. A write that fails
(a full disk, no permission) removes its temporary file and raises ``OSError`` with the errno and the
*destination* path, also when the writer was a library that reports the OS error only in its message
(safetensors: "... (os error 28)"), so the caller can say which file could not be written and why.
"""
from __future__ import annotations

import contextlib
import errno as _errno
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates 0600 files; give results the usual permissions (0666 minus the umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except Exception as exc:
        translated = as_os_error(exc, path)
        if translated is exc:
            raise
        raise translated from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def as_os_error(exc: BaseException, path: str | os.PathLike) -> BaseException:
    """``exc`` as an ``OSError`` naming ``path`` when it is one (or a library error whose message carries
    "os error N"); any other exception unchanged."""
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None:
        m = re.search(r"os error (\d+)", str(exc))
        code = int(m.group(1)) if m else None
    if code is None:
        return exc
    return OSError(code, os.strerror(code), str(path))


DISK_FULL = (_errno.ENOSPC, _errno.EDQUOT)  # no space left / disk quota exceeded


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=json_default) + "\n")


def append_jsonl(path: str | os.PathLike, obj: Any) -> None:
    """Append one JSON line (a line is written in one call; readers skip an incomplete last line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(obj, default=json_default) + "\n"
    try:
        with open(path, "a") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise as_os_error(exc, path) from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    rows = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill: drop it
                break
    return rows


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for numpy arrays and scalars and paths."""
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
