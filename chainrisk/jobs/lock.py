"""One writer at a time per database: an advisory lock file next to it, taken by every writing command.

DuckDB itself refuses a second writing process, but only once the second one opens the file, with an error that
names no culprit. The lock makes overlapping cron runs explicit: the later run says who holds the database and
exits without touching it. `flock` locks die with their process, so a killed run never leaves a stale lock; the
file itself is removed when the command ends (a killed run leaves an unlocked file, which the next one reuses).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chainrisk.errors import UserError


class DatabaseBusy(UserError):
    """Another chainrisk process is writing the database."""


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


@contextmanager
def writer_lock(db: Path, what: str) -> Iterator[None]:
    """Holds the database's writer lock for the block, or raises DatabaseBusy at once (never waits)."""
    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _locked(path, db, what)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"chainrisk {what} (pid {os.getpid()})".encode(), 0)
        yield
    finally:
        # Removed while still held: a process that opened it meanwhile finds it is no longer the path's file.
        path.unlink(missing_ok=True)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _locked(path: Path, db: Path, what: str) -> int:
    """An open, exclusively locked descriptor of the lock file at `path` (DatabaseBusy when another holds it). A
    file removed by its last holder between our open and our lock is not the lock any more: open the path again."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DatabaseBusy(f"{db} is being written by {holder}; not starting {what} (try again later)") from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            return fd
        os.close(fd)
