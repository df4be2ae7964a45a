"""Locks on run folders and result folders: one writer at a time, across processes.

Built on ``filelock.FileLock`` (an ``fcntl``/``msvcrt`` lock on a file next to what it guards): the
operating system drops the lock when its process ends, however it ends (``kill -9`` included), so a
crash never leaves a stale lock behind. The lock file itself stays (an empty ``.lock``); it is not a
sign that anything is running. Nothing waits: a second writer is refused at once with ``LockedError``,
whose message names what is locked and what to do, because two trainings of one run or two
reproductions writing one results file must not run side by side at all.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

LOCK_NAME = ".lock"


class LockedError(RuntimeError):
    """Another process holds the lock; the message names the folder and what to do."""


@contextlib.contextmanager
def hold(folder: str | os.PathLike, what: str, fix: str) -> Iterator[Path]:
    """Hold ``<folder>/.lock`` for the block, or raise ``LockedError``: "<what> is in use by another
    process (<lock file>); <fix>"."""
    from filelock import FileLock, Timeout

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    # thread_local=False: one lock object per process and folder is all this needs, and the default
    # thread-local reentrancy would let a second thread of the same process through unnoticed.
    lock = FileLock(str(path), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise LockedError(f"{what} is in use by another process (lock {path}); {fix}") from None
    try:
        yield path
    finally:
        lock.release()
