"""Published read-only copies of a chainrisk DuckDB file: what the dashboard and analysts' SQL open.

DuckDB lets one process write a file and refuses readers from other processes meanwhile. So jobs write the
main file and, after each score, publish it: the checkpointed file is copied to `<db>.published/<stamp>.duckdb`
and the pointer `<db>.published/CURRENT` is replaced atomically (rename). Readers open the copy the pointer
names, read-only, and never meet the writer's lock; a copy is immutable once named. The newest few copies are
kept so a reader that opened the previous one keeps reading it (on POSIX an unlinked open file stays readable).
Readers never fall back to the main file: even a read-only open takes a lock that would make the writer's next
open fail, so a reader could break a run. Until the first publish there is simply nothing to read.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from chainrisk.errors import UserError

#: Published copies kept besides the current one (readers that opened them before the switch keep working).
KEEP_PREVIOUS = 2
POINTER = "CURRENT"
T = TypeVar("T")


def published_dir(db: Path) -> Path:
    return db.with_name(db.name + ".published")


def publish_file(db: Path) -> Path:
    """Copies a checkpointed, quiescent `db` (the caller holds the writer connection and writes nothing during
    the copy) and points readers at the copy. Returns the copy."""
    folder = published_dir(db)
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / f"{time.time_ns()}-{os.getpid()}.duckdb"
    partial = copy.with_suffix(".partial")
    try:
        shutil.copyfile(db, partial)
        os.replace(partial, copy)
    except BaseException:
        # A full disk or an interrupt: readers keep the previous copy; no half copy is left behind.
        partial.unlink(missing_ok=True)
        raise
    pointer = folder / f"{POINTER}.{os.getpid()}.tmp"
    pointer.write_text(copy.name)
    os.replace(pointer, folder / POINTER)
    _prune(folder, keep=copy.name)
    return copy


def _prune(folder: Path, keep: str) -> None:
    copies = sorted(folder.glob("*.duckdb"), key=lambda p: p.name, reverse=True)
    for old in [c for c in copies if c.name != keep][KEEP_PREVIOUS:]:
        old.unlink(missing_ok=True)
    for stale in folder.glob("*.partial"):
        if time.time() - stale.stat().st_mtime > 3600:
            stale.unlink(missing_ok=True)


def current_copy(db: Path) -> Path | None:
    """The published copy readers should open, or None when nothing was published yet."""
    pointer = published_dir(db) / POINTER
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return None
    copy = pointer.parent / name
    return copy if name and copy.is_file() else None


def reader_path(db: Path) -> Path:
    """The published copy readers open; UserError when there is none yet."""
    copy = current_copy(db)
    if copy is not None:
        return copy
    if not db.is_file():
        raise UserError(f"no database at {db}; run `chainrisk index` and `chainrisk score` first")
    raise UserError(
        f"nothing published from {db} yet: run `chainrisk score` (or `chainrisk run`), which publishes the "
        "read-only copy readers use"
    )


def open_published(db: Path, open_copy: Callable[[Path], T]) -> T:
    """`open_copy(path of the published copy)`, asked again when it raises duckdb.IOException: the copy was
    pruned between reading the pointer and opening it (a reader slower than two publishes)."""
    last_error = ""
    for attempt in range(5):
        try:
            return open_copy(reader_path(db))
        except duckdb.IOException as exc:
            last_error = str(exc).splitlines()[0]
            time.sleep(0.1 * (attempt + 1))
    raise UserError(f"cannot read the published copy of {db}: {last_error}")


def connect_reader(db: Path, config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published copy."""
    return open_published(db, lambda path: duckdb.connect(str(path), read_only=True, config=config or {}))
