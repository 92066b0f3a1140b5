"""One writer at a time per database: an advisory lock file next to it, taken by every writing command.

DuckDB itself refuses a second writing process, but only once the second one opens the file, with an error that
names no culprit. The lock makes overlapping cron runs explicit: the later run says who holds the database and
exits without touching it. `flock` locks die with their process, so a killed run never leaves a stale lock.
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
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise DatabaseBusy(f"{db} is being written by {holder}; not starting {what} (try again later)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"chainrisk {what} (pid {os.getpid()})".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
