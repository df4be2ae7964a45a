"""Getting an entry's files onto this machine, verified: the package copy, else the cache, else a download.

Where files come from, in order:

1. **The package copy** (``zoo/models/<family>/weights/``): published entries ship with crystal-zoo, so an
   offline user and the tests need no network. Used when its size and sha256 match the entry.
2. **The cache**, ``$ZOO_HOME/pretrained/<family>/``. ``ZOO_HOME`` defaults to crystal-zoo's cache root
   (``$ZOO_CACHE``, else the user cache folder from platformdirs): set it to keep weights apart from the
   regenerable graph and data caches (e.g. on a shared, read-only disk).
3. **A download** through pooch (retries, sha256 check on every retrieval; a file that fails the check is
   never moved into the cache) from the entry's URL, or from ``$ZOO_BASE_URL/<family>/<file>`` (a mirror).
   ``ZOO_OFFLINE=1`` never touches the network: a file missing from 1 and 2 is then an error naming where
   to put it. Two processes fetching one entry serialise on a file lock, so the second finds the first's
   verified file instead of downloading it again.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from zoo.core.io import sha256_file
from zoo.core.paths import cache_root

from .registry import Entry, FileRecord

log = logging.getLogger("zoo.pretrained")

HOME_VARIABLE = "ZOO_HOME"
OFFLINE_VARIABLE = "ZOO_OFFLINE"
BASE_URL_VARIABLE = "ZOO_BASE_URL"
LOCK_TIMEOUT_S = 900.0  # how long a second process waits for another's download of the same entry
HTTP_TIMEOUT_S = 60.0  # per connection / read (requests' timeout), not for the whole transfer


class PretrainedError(RuntimeError):
    """Weights that cannot be fetched or used; the message names the file or URL and the fix."""


def home() -> Path:
    """``$ZOO_HOME``, else crystal-zoo's cache root (``$ZOO_CACHE``, else the user cache folder)."""
    env = os.environ.get(HOME_VARIABLE)
    return Path(env).expanduser() if env else cache_root()


def cache_folder(entry: Entry) -> Path:
    return home() / "pretrained" / entry.family


def offline() -> bool:
    return os.environ.get(OFFLINE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def file_url(record: FileRecord) -> str:
    base = os.environ.get(BASE_URL_VARIABLE, "").strip()
    return f"{base.rstrip('/')}/{record.path}" if base else record.url


def verified(path: Path, record: FileRecord) -> bool:
    """Whether ``path`` is the recorded file (size first: a truncated file is not hashed)."""
    return path.is_file() and path.stat().st_size == record.size and sha256_file(path) == record.sha256


def _records(entry: Entry) -> list[FileRecord]:
    return [entry.weights, entry.sidecar]


def _stem(folder: Path, entry: Entry) -> Path:
    return folder / entry.tag


def fetch(entry: Entry, retries: int = 2) -> Path:
    """The verified ``<folder>/<tag>`` stem of an entry's weights pair (module docstring for the order)."""
    package = entry.package_folder
    if all(verified(package / r.name, r) for r in _records(entry)):
        return _stem(package, entry)
    if any((package / r.name).exists() for r in _records(entry)):
        log.warning("%s: the package copy in %s does not match the registry (size or sha256); using the cache", entry.name, package)
    folder = cache_folder(entry)
    if all(verified(folder / r.name, r) for r in _records(entry)):
        return _stem(folder, entry)
    if offline():
        missing = [str(folder / r.name) for r in _records(entry) if not verified(folder / r.name, r)]
        raise PretrainedError(f"{entry.name}: {OFFLINE_VARIABLE} is set and {', '.join(missing)} is missing or does not "
                              f"match its sha256; copy the files there from a machine that ran `zoo download {entry.name}` "
                              f"(or from {file_url(entry.weights).rsplit('/', 1)[0]}/), or unset {OFFLINE_VARIABLE}")
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / f"{entry.tag}.lock"), timeout=LOCK_TIMEOUT_S, thread_local=False)
    try:
        with lock:
            for record in _records(entry):
                _download(record, folder, retries, entry.name)
    except Timeout:
        raise PretrainedError(f"{entry.name}: another process has been downloading it for {LOCK_TIMEOUT_S:.0f} s "
                              f"(lock {lock.lock_file}); wait for it or end it, then retry") from None
    return _stem(folder, entry)


def _download(record: FileRecord, folder: Path, retries: int, name: str) -> None:
    """One file into ``folder`` through pooch (a verified file there is kept as it is)."""
    import pooch

    url = file_url(record)
    if verified(folder / record.name, record):
        return
    registry = pooch.create(path=folder, base_url=url.rsplit("/", 1)[0] + "/", registry={record.name: f"sha256:{record.sha256}"},
                            urls={record.name: url}, retry_if_failed=retries)
    fix = (f"check the network or the mirror ({BASE_URL_VARIABLE}), retry, or work offline: {OFFLINE_VARIABLE}=1 with "
           f"{folder / record.name} copied from a machine that ran `zoo download {name}`")
    try:
        registry.fetch(record.name, downloader=pooch.HTTPDownloader(timeout=HTTP_TIMEOUT_S, progressbar=False))
    except ValueError as exc:  # pooch: the downloaded file's hash is not the known one (it was not kept)
        raise PretrainedError(f"{name}: {url} sent a file whose sha256 is not the registry's {record.sha256} "
                              f"({exc}); nothing was saved. The server or mirror holds a wrong or tampered file: {fix}") from None
    except OSError as exc:  # requests' errors (connection, HTTP status, a cut transfer) are OSErrors too
        raise PretrainedError(f"{name}: cannot download {url} ({type(exc).__name__}: {exc}); {fix}") from None
