"""Published read-only snapshots of a chainrisk DuckDB file, what the dashboard, exports and analysts' SQL open:
reads every table and view of the writer's file; writes `<db>.published/` (Parquet files, catalogs, manifests).

DuckDB lets one process write a file and refuses readers from other processes meanwhile. So jobs write the main file
and, after each run, publish it into `<db>.published/`:

- `data/<schema>.<table>/<snapshot>-<n>.parquet`: the tables' rows, written once and never changed;
- `snapshot-<n>.json`: the manifest of snapshot n (its block, and per table its columns, row count, content hash,
  watermark and the list of files that hold its rows);
- `snapshot-<n>.duckdb`: a small DuckDB file holding no data, only views: one per table over exactly the files the
  manifest names (`read_parquet([...])`, every column cast back to its declared type), and the writer's own views
  (the analysts' stg_*/mart_* views of `queries/`) on top, so a reader's SQL is the same as against the main file;
  a copy of the previous catalog with only the changed tables' views replaced, while the writer's views are the same
  (see _write_catalog);
- `CURRENT`: the name of the current snapshot's catalog, replaced atomically (rename) once all of it is written.

Readers open the catalog CURRENT names, read-only (`connect_reader`), and see one manifest's files: a consistent
snapshot however many publishes follow while they read: a publish deletes a previous snapshot only once no reader
holds it (chainrisk's readers by a shared flock on its manifest, any other process by DuckDB's own read lock on its
catalog; see _claim), so the folder keeps the current snapshot and the ones still being read.

What a publish writes grows with the new data, not with the file. Per table, against the previous manifest:
- a table whose row count and content hash (the sum of the rows' hashes, order-free) did not change is not written:
  the new manifest names the same files;
- an append-only table (one with a watermark column, APPEND_MARKS: the raw events, snapshot_blocks, runs, the risk
  runs' tables, the credit samples) gets one new file of the rows above the previous watermark, when the previous
  rows plus those make up the table exactly (count and hash add up); otherwise (a reorg rewound it, a backfill wrote
  below the watermark) the table is rewritten whole;
- a table whose rows are revised in place (UPSERT_KEYS: wallet_health_buckets, whose hour buckets later runs extend;
  and every `history.*` table of raw versions, whose `valid_to_block` is set when a value is replaced) gets one new
  file of the rows whose mark moved past the watermark, and its view keeps the newest version of each key (the file
  names sort by snapshot). Rows its writers deleted (the daily downsampling of old hour buckets into days, a reorg
  rewind) are published by the range they recorded (chainrisk.store.ledger.record_deletion): the new file holds every
  row the table has in that range, and a tombstone in the manifest drops the older files' rows in it. When the
  resolved view's count and hash are not the table's (a deletion nobody recorded), the table is rewritten whole;
- any other table (the latest-only derived tables) is rewritten whole when it changed;
- a table with more than MAX_FILES files has its files after the first (the table written whole) merged into one
  while they hold under 1/TAIL_SHARE of the first's rows, and is rewritten whole past that: opening years of runs
  stays fast, and the whole table is written again only each time it has grown by an eighth of itself.
Files no kept manifest names are deleted. The check reads each table once (counting and hashing, no write).

Why not a copy of the file (the previous publisher) or DuckLake? Measured on the 300-wallet devnet
(benchmarks/storage.py, README "Storage and history"), the copy wrote the whole file (34 MB) every run and kept
three (102 MB); this layout writes what changed, 0.49 MB a run after an empty block (32 files; an empty block still
moves every interest index), and the folder settles at 4.8 MB. It spends more time than a file copy at that size
(0.6-1.1 s, reading each table once), but its bytes follow the change, not the file. DuckLake's extension
(`duckdb-ext-ducklake` 1.4.4 on PyPI) is built for DuckDB 1.4.4 and DuckDB 2.0.1, which chainrisk uses, refuses to
load it, so it could not be measured.

Readers never fall back to the main file: even a read-only open takes a lock that would make the writer's next open
fail, so a reader could break a run. Until the first publish there is simply nothing to read. A folder an older
chainrisk published (full `*.duckdb` copies) is read as it is until the first publish of this version, which writes
the new layout whole and deletes the old copies.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from chainrisk.errors import UserError
from chainrisk.store import ledger
from chainrisk.store.history import BUCKET_KEY
from chainrisk.store.parquet import PARQUET_OPTIONS, write_exact
from chainrisk.store.parquet import literal as _literal
from chainrisk.store.parquet import quote as _quote
from chainrisk.store.schema.history import HISTORY_SCHEMA

try:
    import fcntl
except ImportError:  # Windows: no flock; snapshots are kept by count there (KEEP_PREVIOUS)
    fcntl = None  # type: ignore[assignment]

#: Where readers cannot be seen (no flock: Windows), the snapshots kept besides the current one. Elsewhere a previous
#: snapshot is kept exactly while a reader holds it (see _prune).
KEEP_PREVIOUS = 2
#: Files a table may have before a publish compacts them into one.
MAX_FILES = 12
#: The files after a table's first are merged into one while they hold fewer than 1/TAIL_SHARE of its rows.
TAIL_SHARE = 8
POINTER = "CURRENT"
#: Block size of the catalogs (DuckDB's smallest).
CATALOG_BLOCK_SIZE = 16_384
DATA = "data"
#: The health history's cold days (chainrisk.store.history.evict_days): files the writer lists in cold_history_files,
#: named by each manifest's "cold" list and kept while a kept manifest names them.
COLD_DATA = f"{DATA}/main.wallet_health_cold"
FORMAT_VERSION = 2
#: Watermark columns of append-only tables, the first one a table has (a table without one is rewritten whole).
APPEND_MARKS = ("block_number", "run_id", "as_of_block")
#: Tables revised in place: (key of a row, its mark: the block column that moves when the row is revised).
#: (wallet_health_history is the writer's view over wallet_health_buckets and wallet_health_keys: published as a view.)
UPSERT_KEYS: dict[str, tuple[tuple[str, ...], str]] = {"main.wallet_health_buckets": (BUCKET_KEY, "last_block")}
#: The key column a revision's rows are near in (a run revises the newest buckets): with the table's ledger
#: (chainrisk.store.ledger), what a publish reads to check a revision is the published rows from the revision's
#: lowest value of it on, not the whole table.
UPSERT_NEAR = {"main.wallet_health_buckets": "bucket_start"}
#: Deletion ranges (chainrisk.store.ledger.record_deletion) a publish turns into tombstones at most; more since the
#: previous publish (a long pause, many reorgs) and the table is written whole.
MAX_RANGES = 64
#: history.<raw table> rows: one per value from a block on; closing one sets valid_to_block (the only revision).
VALID_TO = "valid_to_block"
#: Columns that stamp a latest-only row with its snapshot (chainrisk.store.db.STAMP_COLUMNS).
STAMP_COLUMNS = ("block_number", "block_timestamp")
#: DuckDB memory a publish may take. Uncapped, DuckDB keeps every block a publish reads cached (up to 80 % of the
#: machine) and an ordered COPY buffers row groups: rewriting a 4.87M-bucket health history (280 MiB in the file)
#: peaked at 917 MiB, and the run on top of a simulated year (24M buckets rewritten) at 5,083 MiB; under 500MB the
#: same COPY peaked at 570 MiB, as fast. Sorts and joins past it spill to the writer's temporary directory.
PUBLISH_MEMORY_LIMIT = "1GB"
_SNAPSHOT = re.compile(r"^snapshot-(\d+)\.(json|duckdb)$")
T = TypeVar("T")


def published_dir(db: Path) -> Path:
    return db.with_name(db.name + ".published")


@dataclass(frozen=True)
class PublishReport:
    catalog: Path  #: the catalog readers now open
    snapshot: int  #: its number
    files: int  #: Parquet files this publish wrote
    bytes: int  #: their size
    rows: int  #: rows they hold
    tables_written: dict[str, str]  #: table -> how it was written ("append", "upsert", "rewrite"); unchanged absent
    seconds: float


# -- writing ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Table:
    schema: str
    name: str
    columns: tuple[tuple[str, str], ...]  #: (column, DuckDB type)

    @property
    def full(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql_name(self) -> str:
        return f"{_quote(self.schema)}.{_quote(self.name)}"

    def shape(self) -> tuple[tuple[str, ...], str] | None:
        """(key, mark SQL) of a table revised in place, or None."""
        names = [c for c, _ in self.columns]
        if self.full in UPSERT_KEYS:
            key, mark = UPSERT_KEYS[self.full]
            return (key, _quote(mark)) if mark in names and set(key) <= set(names) else None
        if self.schema == HISTORY_SCHEMA and VALID_TO in names and "block_number" in names:
            key = tuple(c for c in names if c != VALID_TO)
            return key, f"greatest(block_number, coalesce({VALID_TO}, block_number))"
        return None

    def past(self, mark: str, value: int) -> str:
        """The condition on a row whose `mark` (shape's or append_mark's) passed `value`. For a history table, whose
        mark is greatest(block_number, coalesce(valid_to_block, block_number)), the same rows found as those of
        `block_number > value` and those of `valid_to_block > value`, each a filter DuckDB applies while scanning its
        column (zone maps, then only the passing rows' other columns read), where the expression or their OR had it
        read every column of the table: 20M versions, a run's 20,000 hashed in 0.05 s instead of 0.5 s and 0.3 s."""
        if self.schema != HISTORY_SCHEMA or self.shape() is None:
            return f"{mark} > {int(value)}"
        return (
            f"rowid IN (SELECT rowid FROM {self.sql_name} WHERE block_number > {int(value)} UNION ALL "
            f"SELECT rowid FROM {self.sql_name} WHERE {_quote(VALID_TO)} > {int(value)})"
        )

    def same_key(self, left: str, right: str) -> str:
        """The join condition of rows `left` and `right` sharing a key (of `shape`): by equality (USING), or for a
        history table, whose key holds every value column, some of them NULL, by IS NOT DISTINCT FROM (equality would
        keep both versions of a key holding a NULL)."""
        shape = self.shape()
        assert shape is not None
        if self.schema != HISTORY_SCHEMA:
            return f"USING ({', '.join(_quote(c) for c in shape[0])})"
        return "ON " + " AND ".join(f"{left}.{_quote(c)} IS NOT DISTINCT FROM {right}.{_quote(c)}" for c in shape[0])

    def unstamped(self) -> _Table:
        """The table without its stamp columns (for the hash of what a re-stamp leaves unchanged)."""
        return _Table(self.schema, self.name, tuple(c for c in self.columns if c[0] not in STAMP_COLUMNS))

    def append_mark(self) -> str | None:
        names = {c for c, _ in self.columns}
        return next((_quote(m) for m in APPEND_MARKS if m in names), None)

    def hash_sql(self, source: str) -> str:
        """count(*) and the order-free content hash of `source`'s rows (columns as declared): the ledger's own
        definition, so the figures its writers keep and the ones a publish computes are the same sums."""
        return ledger.stats_sql([c for c, _ in self.columns], source)


def _tables(con: duckdb.DuckDBPyConnection) -> list[_Table]:
    rows = con.execute(
        "SELECT c.schema_name, c.table_name, list(c.column_name ORDER BY c.column_index), "
        "list(c.data_type ORDER BY c.column_index) FROM duckdb_columns() c JOIN duckdb_tables() t "
        "ON c.database_name = t.database_name AND c.schema_name = t.schema_name AND c.table_name = t.table_name "
        "WHERE c.database_name = current_database() AND NOT t.temporary GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    return [_Table(str(s), str(n), tuple(zip(map(str, cs), map(str, ts), strict=True))) for s, n, cs, ts in rows]


def _stamps(con: duckdb.DuckDBPyConnection, table: _Table) -> dict[str, int] | None:
    """The table's stamp columns (those of STAMP_COLUMNS it has) and their values when each holds one value on every
    row, else None."""
    names = [c for c, _ in table.columns]
    present = [c for c in STAMP_COLUMNS if c in names]
    if not present or len(present) == len(names):
        return None
    checks = ", ".join(f"min({_quote(c)}), max({_quote(c)}), count({_quote(c)})" for c in present)
    row = con.execute(f"SELECT count(*), {checks} FROM {table.sql_name}").fetchall()[0]
    values: dict[str, int] = {}
    for i, column in enumerate(present):
        low, high, filled = row[1 + 3 * i : 4 + 3 * i]
        if not row[0] or low is None or low != high or filled != row[0]:
            return None
        values[column] = int(low)
    return values


def _stats(con: duckdb.DuckDBPyConnection, table: _Table, source: str) -> tuple[int, int]:
    row = con.execute(table.hash_sql(source)).fetchall()[0]
    return int(row[0]), int(row[1])


def _paths(folder: Path, files: list[str]) -> str:
    """A SQL list of the published files' paths."""
    return "[" + ", ".join(_literal(folder / f) for f in files) + "]"


def _newest_per_key(paths: str, key: tuple[str, ...], where: str = "true") -> str:
    """The rows of `paths` (a SQL list of revision files, named by snapshot) keeping each key's newest version (of
    the keys `where` keeps: a condition on key columns only)."""
    columns = ", ".join(_quote(c) for c in key)
    return (
        f"SELECT * EXCLUDE (_published_file) FROM read_parquet({paths}, union_by_name = true, "
        f"filename = '_published_file') WHERE {where} QUALIFY row_number() OVER (PARTITION BY {columns} ORDER BY "
        "_published_file DESC) = 1"
    )


def _in_range(near: str, low: int, high: int | None) -> str:
    """SQL: the UPSERT_NEAR column `near` lies in [low, high) (high None: no bound)."""
    above = f"{near} >= {int(low)}"
    return above if high is None else f"({above} AND {near} < {int(high)})"


def _ranges_sql(table: _Table, ranges: list[tuple[int, int | None]]) -> str:
    """SQL: a row's UPSERT_NEAR value lies in any of `ranges`."""
    near = _quote(UPSERT_NEAR[table.full])
    return " OR ".join(_in_range(near, low, high) for low, high in ranges) or "false"


def _tombstoned(table: _Table, tombstones: list[Any], folder: Path, file_column: str | None) -> str:
    """SQL: a tombstone removes the row: it lies in the tombstone's range and comes from a file before the tombstone's
    (files sort by snapshot). `file_column`: the column holding the row's file; None: the table's whole file, which
    comes before every tombstone."""
    near = _quote(UPSERT_NEAR[table.full]) if tombstones else ""
    parts = []
    for name, low, high in tombstones:
        inside = _in_range(near, low, high)
        parts.append(inside if file_column is None else f"({file_column} < {_literal(folder / name)} AND {inside})")
    return " OR ".join(parts) or "false"


def _reader_select(
    table: _Table,
    files: list[str],
    folder: Path,
    stamps: dict[str, int] | None = None,
    where: str = "true",
    tombstones: list[Any] | None = None,
) -> str:
    """The view's SELECT: the files' rows with every column cast to its declared type (newest version per key for a
    table revised in place, without the rows its `tombstones` removed; `stamps` put on every row of a re-stamped
    table); `where`, a condition on key columns only, keeps some keys' rows (the Parquet row groups outside it are
    skipped by their statistics).

    A tombstone (file, low, high) says the rows whose UPSERT_NEAR value lies in [low, high) were deleted (or
    replaced) before `file` was written: rows of earlier files in that range are gone, and `file` holds every row the
    table had in it then (chainrisk.store.ledger.record_deletion)."""
    tombstones = tombstones or []
    stamps = stamps or {}
    casts = ", ".join(
        f"CAST({int(stamps[c]) if c in stamps else _quote(c)} AS {t}) AS {_quote(c)}" for c, t in table.columns
    )
    if not files:
        return f"SELECT {casts} FROM (SELECT {', '.join(f'NULL AS {_quote(c)}' for c, _ in table.columns)}) LIMIT 0"
    shape = table.shape()
    whole_where = f"({where}) AND NOT ({_tombstoned(table, tombstones, folder, None)})" if tombstones else where
    if shape is None or len(files) == 1:
        return f"SELECT {casts} FROM read_parquet({_paths(folder, files)}, union_by_name = true) WHERE {whole_where}"
    # The first file is the table written whole, the others the revisions since (the newest per key wins). The
    # revisions are resolved among themselves and the whole file's rows they replace dropped by an anti-join: the
    # large file is scanned once and never sorted (20M rows, 3 revision files: 1.5 s against 8.6 s for a window over
    # every file, same rows).
    revised_where = where
    if tombstones:
        revised_where = f"({where}) AND NOT ({_tombstoned(table, tombstones, folder, '_published_file')})"
    whole = f"read_parquet({_literal(folder / files[0])}, union_by_name = true)"
    return (
        f"WITH revised AS ({_newest_per_key(_paths(folder, files[1:]), shape[0], revised_where)}) SELECT {casts} "
        f"FROM (SELECT * FROM revised UNION ALL BY NAME SELECT whole.* FROM {whole} AS whole "
        f"ANTI JOIN revised {table.same_key('whole', 'revised')} WHERE {whole_where})"
    )


def _write(con: duckdb.DuckDBPyConnection, table: _Table, where: str, target: Path) -> int:
    """Writes the table's rows matching `where` to `target` (wide integers exact); returns the rows written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_exact(con, table.columns, f"{table.sql_name} WHERE {where}", target)


def _compact_tail(
    con: duckdb.DuckDBPyConnection,
    table: _Table,
    files: list[str],
    folder: Path,
    snapshot: int,
    written: list[Path],
    tombstones: list[Any] | None = None,
) -> tuple[list[str], str, list[Path], list[Any]] | None:
    """A table's files after an append or a revision: as they are up to MAX_FILES; beyond, the files after the first
    (the table written whole) merged into one (for a table revised in place, the newest version of each key), while
    they hold fewer than 1/TAIL_SHARE of the first file's rows; None (rewrite the table whole) past that. So a publish
    writes what the run changed plus, now and then, the recent files again, and the whole table only each time it has
    grown by a share of itself: amortised, its cost follows the new data, not the table. The merged file has the
    tail's tombstones applied; they then apply to the first file alone (returned pointing at the merged file)."""
    shape = table.shape()
    kind = "append" if shape is None else "upsert"
    tombstones = tombstones or []
    if len(files) <= MAX_FILES:
        return files, kind, written, tombstones
    tail = _paths(folder, files[1:])
    whole = _literal(folder / files[0])
    tail_rows, whole_rows = con.execute(
        f"SELECT (SELECT count(*) FROM read_parquet({tail}, union_by_name = true)), "
        f"(SELECT count(*) FROM read_parquet({whole}))"
    ).fetchall()[0]
    if int(tail_rows) * TAIL_SHARE > int(whole_rows):
        for path in written:
            path.unlink(missing_ok=True)
        return None
    every = f"SELECT * FROM read_parquet({tail}, union_by_name = true)"
    alive = f"NOT ({_tombstoned(table, tombstones, folder, '_published_file')})" if tombstones else "true"
    select = every if shape is None else _newest_per_key(tail, shape[0], alive)
    name = f"{DATA}/{table.full}/{snapshot:08d}-merged.parquet"
    target = folder / name
    partial = target.with_name(target.name + ".partial")
    con.execute(f"COPY ({select}) TO {_literal(partial)} ({PARQUET_OPTIONS})")
    os.replace(partial, target)
    for path in written:  # this publish's own file is in the merged one: never named by a manifest
        path.unlink(missing_ok=True)
    return [files[0], name], f"{kind}+merge", [target], [[name, low, high] for _, low, high in tombstones]


def _publish_table(
    con: duckdb.DuckDBPyConnection, table: _Table, before: dict[str, Any] | None, folder: Path, snapshot: int
) -> tuple[dict[str, Any], str | None, list[Path]]:
    """The table's manifest entry for `snapshot`, how it was written (None: unchanged) and the files written."""
    ledgered = ledger.read(con, table.full)  # the writers' running count and hash (chainrisk.store.ledger)
    count, digest = ledgered if ledgered is not None else _stats(con, table, table.sql_name)
    columns = [list(c) for c in table.columns]
    entry: dict[str, Any] = {"columns": columns, "rows": count, "hash": str(digest)}
    shape = table.shape()
    mark = shape[1] if shape else table.append_mark()
    same_columns = before is not None and before["columns"] == columns
    # Ranges the writers deleted rows in since the previous publish (chainrisk.store.ledger.record_deletion): None
    # when they cannot be known (records pruned, too many, a manifest from before them: then rows deleted since make
    # the checks below fail and the table is written whole).
    ranges: list[tuple[int, int | None]] | None = []
    if shape is not None and table.full in UPSERT_NEAR:
        seen = before.get("deletions_seq") if before is not None else None
        entry["deletions_seq"], ranges = ledger.deletions(con, table.full, int(seen or 0))
        if seen is None or (ranges is not None and len(ranges) > MAX_RANGES):
            ranges = None
    if before is not None and same_columns and before["rows"] == count and before["hash"] == str(digest):
        return {**before, **entry}, None, []
    stamps = _stamps(con, table) if shape is None else None
    if stamps is not None:
        # A latest-only table re-stamped by a new block and otherwise unchanged: the same files, the new stamp
        # put on by the view (one value per stamp column across the table).
        entry["unstamped_hash"] = str(_stats(con, table.unstamped(), table.sql_name)[1])
        unchanged = before is not None and same_columns and before["rows"] == count
        if unchanged and before is not None and before.get("unstamped_hash") == entry["unstamped_hash"]:
            return {**entry, "stamps": stamps, "watermark": None, "files": before["files"]}, "restamp", []
    directory = f"{DATA}/{table.full}"

    def watermark(above: int | None = None) -> int | None:
        """The mark's highest value; `above`: a value the table's rows reached before and none was lowered since
        (rows were only added or revised upwards), so only the rows past it are read (zone maps)."""
        if mark is None:
            return None
        where = "true" if above is None else table.past(mark, above)
        value = con.execute(f"SELECT max({mark}) FROM {table.sql_name} WHERE {where}").fetchall()[0][0]
        return above if value is None else int(value)

    previous_mark = before.get("watermark") if before is not None and same_columns else None
    if (
        before is not None
        and same_columns
        and not before.get("stamps")
        and mark is not None
        and previous_mark is not None
        and before["files"]
    ):
        where = table.past(mark, previous_mark)
        if ranges:  # the rows in a deleted range are written again, whatever their mark
            where = f"{where} OR {_ranges_sql(table, ranges)}"
        new_rows, new_hash = _stats(con, table, f"(SELECT * FROM {table.sql_name} WHERE {where})")
        name = f"{directory}/{snapshot:08d}-{len(before['files'])}.parquet"
        files = [*before["files"], name]
        tombstones = [*before.get("tombstones", []), *([name, low, high] for low, high in ranges or [])]
        if shape is None:
            if before["rows"] + new_rows == count and int(before["hash"]) + new_hash == digest:
                written = [folder / name] if new_rows else []
                if new_rows:
                    _write(con, table, where, folder / name)
                else:
                    files = before["files"]
                merged = _compact_tail(con, table, files, folder, snapshot, written)
                if merged is not None:
                    kept, how, written, _ = merged
                    return {**entry, "watermark": watermark(previous_mark), "files": kept}, how, written
        elif new_rows and ranges is not None:
            _write(con, table, where, folder / name)
            resolved = None
            if ledgered is not None and table.full in UPSERT_NEAR:
                resolved = _revised_stats(con, table, before, folder, name, (new_rows, new_hash), ranges)
            elif ledgered is not None and table.schema == HISTORY_SCHEMA:
                resolved = _revised_versions_stats(con, table, before, folder, name, (new_rows, new_hash))
            if resolved != (count, digest):
                if ledgered is not None:  # the ledger and the files disagree: both from scratch
                    count, digest = _stats(con, table, table.sql_name)
                    entry.update(rows=count, hash=str(digest))
                resolved = _stats(con, table, f"({_reader_select(table, files, folder, tombstones=tombstones)})")
            else:
                entry["checked_by_ledger"] = True
            if resolved == (count, digest):
                merged = _compact_tail(con, table, files, folder, snapshot, [folder / name], tombstones)
                if merged is not None:
                    kept, how, written, tombstones = merged
                    if tombstones:
                        entry["tombstones"] = tombstones
                    return {**entry, "watermark": watermark(previous_mark), "files": kept}, how, written
            else:
                (folder / name).unlink()
    name = f"{directory}/{snapshot:08d}-0.parquet"
    if not count:
        return {**entry, "watermark": None, "files": []}, "rewrite", []
    _write(con, table, "true", folder / name)
    return {**entry, "watermark": watermark(), "files": [name]}, "rewrite", [folder / name]


def _revised_stats(
    con: duckdb.DuckDBPyConnection,
    table: _Table,
    before: dict[str, Any],
    folder: Path,
    revision: str,
    added: tuple[int, int],
    ranges: list[tuple[int, int | None]],
) -> tuple[int, int]:
    """Count and hash of the view over `before`'s files plus the revision file (and its tombstones over `ranges`),
    from the previous view's (its manifest's, checked when it was published) and the rows the revision replaces,
    deletes and adds: reads the published rows in `ranges` and from the lowest UPSERT_NEAR value of the revision's
    other rows on, not the whole table."""
    key = table.shape()
    assert key is not None
    near = _quote(UPSERT_NEAR[table.full])
    in_ranges = _ranges_sql(table, ranges)
    low = con.execute(
        f"SELECT min({near}) FROM read_parquet({_literal(folder / revision)}) WHERE NOT ({in_ranges})"
    ).fetchall()[0][0]
    bounds = [*(_in_range(near, a, b) for a, b in ranges), *([f"{near} >= {int(low)}"] if low is not None else [])]
    if not bounds:
        return int(before["rows"]), int(before["hash"])
    previous = _reader_select(
        table, before["files"], folder, where=" OR ".join(bounds), tombstones=before.get("tombstones")
    )
    columns = ", ".join(_quote(c) for c in key[0])
    # Replaced or deleted: the previous rows in a deleted range, and the others whose key the revision has.
    replaced = _stats(
        con,
        table,
        f"(WITH p AS ({previous}) SELECT * FROM p WHERE {in_ranges} UNION ALL SELECT p.* FROM p "
        f"SEMI JOIN read_parquet({_literal(folder / revision)}) n USING ({columns}) WHERE NOT ({in_ranges}))",
    )
    return int(before["rows"]) - replaced[0] + added[0], int(before["hash"]) - replaced[1] + added[1]


def _revised_versions_stats(
    con: duckdb.DuckDBPyConnection,
    table: _Table,
    before: dict[str, Any],
    folder: Path,
    revision: str,
    added: tuple[int, int],
) -> tuple[int, int]:
    """_revised_stats for a history.<raw table> of versions, reading no published row: a version's key is every
    column but valid_to_block, so the published row a revision row replaces is known without reading it.

    Every published row's mark is at most the previous watermark W. A revision row (mark past W) with block_number
    past W began after W and replaces nothing; one from W or before was closed past W and replaces the published row
    of its key, which was open: the same row with valid_to_block NULL, subtracted here. When that row was not
    published open (a rewind reopened a version closed by W and a later run closed it again; a snapshot taken again
    at an older block), these figures are not the table's: they would be only if the table held two rows of one key,
    which its writers never write (chainrisk.store.versions), or the sums collided, as any content hash can. The
    caller then checks the view whole."""
    mark = int(before["watermark"])
    valid_to = _quote(VALID_TO)
    reopened = f"NULL::{dict(table.columns)[VALID_TO]} AS {valid_to}"
    closed = (
        f"(SELECT * REPLACE ({reopened}) FROM ({_reader_select(table, [revision], folder)}) "
        f"WHERE {valid_to} IS NOT NULL AND block_number <= {mark})"
    )
    replaced = _stats(con, table, closed)
    return int(before["rows"]) - replaced[0] + added[0], int(before["hash"]) - replaced[1] + added[1]


@dataclass(frozen=True)
class _View:
    schema: str
    sql: str  #: its CREATE VIEW statement, as DuckDB renders it
    #: What tells it from another version of itself: the digest chainrisk's install_views puts in its comment (DuckDB
    #: renders some SQL differently from one load of the file to the next: an EXCLUDE list's order), else its SQL.
    identity: str


def _writer_views(con: duckdb.DuckDBPyConnection) -> list[_View]:
    rows = con.execute(
        "SELECT schema_name, view_name, sql, comment FROM duckdb_views() WHERE NOT internal "
        "AND database_name = current_database() ORDER BY view_oid"
    ).fetchall()
    return [_View(str(s), str(q), f"{s}.{n}: {c}" if c else str(q)) for s, n, q, c in rows]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _catalog_digests(
    folder: Path, tables: list[_Table], manifest: dict[str, Any], views: list[_View]
) -> tuple[dict[str, str], dict[str, Any]]:
    """Each table view's SELECT, and what the manifest records of the catalog: a digest of every table view's SQL and
    one of the writer's views' identities, by which the next publish sees what its catalog can keep."""
    selects = {}
    for table in tables:
        entry = manifest["tables"][table.full]
        tombstones = entry.get("tombstones")
        selects[table.full] = _reader_select(table, entry["files"], folder, entry.get("stamps"), tombstones=tombstones)
    digests = {
        "tables": {name: _digest(f"{name}\n{select}") for name, select in selects.items()},
        "views": _digest(json.dumps(sorted(v.identity for v in views))),
    }
    return selects, digests


def _write_catalog(
    path: Path,
    folder: Path,
    tables: list[_Table],
    manifest: dict[str, Any],
    views: list[_View],
    previous: tuple[Path, dict[str, Any]] | None = None,
) -> None:
    """The snapshot's catalog: a view per table over its files, then the writer's views (in passes until every one
    whose inputs exist is created: a view may read another created after it). Records the catalog's digests in
    `manifest` ("catalog").

    With `previous` (the current catalog and its manifest, its views over the same folder and the same writer's
    views), the catalog is its views copied into a new file, with only the table views whose SQL changed replaced,
    and those of tables gone dropped: an unchanged run replaces a few of 86 views, where creating every view binds
    each over its files and the writer's views over them (0.8 s on the devnet, the largest fixed cost of a publish).
    DuckDB binds a view when it is queried, not when a view it reads is replaced, so the writer's views read the new
    ones. A catalog that cannot be revised (one DuckDB cannot open) is made whole."""
    selects, digests = _catalog_digests(folder, tables, manifest, views)
    manifest["catalog"] = digests
    if previous is not None and _revise_catalog(path, folder, selects, digests, *previous):
        return
    path.unlink(missing_ok=True)
    # Blocks of 16 KiB, not DuckDB's 256 KiB: a catalog holds only views; 0.8 MB in the default, 0.57 MB so.
    with duckdb.connect(str(path), config={"default_block_size": str(CATALOG_BLOCK_SIZE)}) as cat:
        for schema in sorted({t.schema for t in tables} | {v.schema for v in views}):
            cat.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
        for table in tables:
            cat.execute(f"CREATE VIEW {table.sql_name} AS {selects[table.full]}")
        pending = views
        while pending:
            failed: list[_View] = []
            errors: list[str] = []
            for view in pending:
                try:
                    cat.execute(f"USE {_quote(view.schema)}")
                    cat.execute(view.sql)
                except duckdb.CatalogException as exc:
                    failed.append(view)
                    errors.append(str(exc).splitlines()[0])
            if len(failed) == len(pending):
                raise UserError(f"cannot publish the database's views: {errors[0]}")
            pending = failed
        cat.execute("CHECKPOINT")


def _revise_catalog(
    path: Path, folder: Path, selects: dict[str, str], digests: dict[str, Any], current: Path, previous: dict[str, Any]
) -> bool:
    """Writes `path` as `current` revised (see _write_catalog); False, leaving no file, where it cannot be."""
    before = previous.get("catalog")
    if not isinstance(before, dict) or previous.get("folder") != str(folder) or before.get("views") != digests["views"]:
        return False
    kept: dict[str, str] = before.get("tables") or {}
    path.unlink(missing_ok=True)
    try:
        # Copied view by view into a new file, not as a file: DuckDB writes a file's whole catalog anew at each
        # checkpoint before it frees the old one, so a copied file revised in place holds two catalogs' worth of
        # blocks (2.1 MB for the devnet's 1.0 MB), where the new file, checkpointed once when it is detached, holds
        # one. COPY FROM DATABASE carries each view as stored, without binding it (0.1 s for the devnet's 190 views).
        with duckdb.connect() as con:
            con.execute(f"ATTACH {_literal(str(current))} AS _current (READ_ONLY)")
            con.execute(f"ATTACH {_literal(str(path))} AS _revised (BLOCK_SIZE {CATALOG_BLOCK_SIZE})")
            con.execute("COPY FROM DATABASE _current TO _revised (SCHEMA)")
            con.execute("DETACH _current")
            con.execute("USE _revised")
            for name in kept.keys() - selects.keys():
                schema, table = name.split(".", 1)
                con.execute(f"DROP VIEW IF EXISTS {_quote(schema)}.{_quote(table)}")
            for name, select in selects.items():
                if kept.get(name) != digests["tables"][name]:
                    schema, table = name.split(".", 1)
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
                    con.execute(f"CREATE OR REPLACE VIEW {_quote(schema)}.{_quote(table)} AS {select}")
            con.execute("USE memory")
            con.execute("DETACH _revised")
    except (OSError, duckdb.Error):
        path.unlink(missing_ok=True)
        Path(f"{path}.wal").unlink(missing_ok=True)
        return False
    return True


def _manifest_of(catalog: Path) -> Path:
    return catalog.with_suffix(".json")


def read_manifest(catalog: Path) -> dict[str, Any] | None:
    """The manifest of a published catalog (None for a full copy an older chainrisk published)."""
    try:
        manifest: dict[str, Any] = json.loads(_manifest_of(catalog).read_text())
    except FileNotFoundError:
        return None
    return manifest


def publish(con: duckdb.DuckDBPyConnection, db: Path) -> PublishReport:
    """Publishes what `con` (the writer's connection to `db`, writing nothing meanwhile) holds now, and points readers
    at it. A publish that fails (a full disk, an interrupt) leaves readers on the previous snapshot; files it wrote
    are named by no manifest and go at the next publish. DuckDB's memory is capped at PUBLISH_MEMORY_LIMIT meanwhile,
    then reset to DuckDB's default (chainrisk's writers set no limit of their own; reading the setting back to restore
    it would round it down a little at every publish of a long `watch`)."""
    con.execute(f"SET memory_limit = {_literal(PUBLISH_MEMORY_LIMIT)}")
    try:
        return _publish(con, db)
    finally:
        con.execute("RESET memory_limit")


def _publish(con: duckdb.DuckDBPyConnection, db: Path) -> PublishReport:
    started = time.perf_counter()
    folder = published_dir(db).absolute()  # the views name their files by absolute path
    folder.mkdir(parents=True, exist_ok=True)
    current = current_copy(db)
    previous = read_manifest(current) if current is not None else None
    if previous is not None and previous.get("format_version") != FORMAT_VERSION:
        previous = None
    snapshot = max([previous["snapshot"] if previous else 0, *_snapshots(folder)]) + 1
    tables = _tables(con)
    entries: dict[str, Any] = {}
    how: dict[str, str] = {}
    written: list[Path] = []
    for table in tables:
        before = previous["tables"].get(table.full) if previous else None
        entries[table.full], kind, files = _publish_table(con, table, before, folder, snapshot)
        written += files
        if kind:
            how[table.full] = kind
    block = None
    if any(t.full == "main.snapshot_blocks" for t in tables):
        block = con.execute("SELECT max(block_number) FROM snapshot_blocks").fetchall()[0][0]
    sizes = [p.stat().st_size for p in written]
    manifest = {
        "format_version": FORMAT_VERSION,
        "snapshot": snapshot,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "block": block,
        #: Where the files were when the catalog's views were written (they name them by absolute path).
        "folder": str(folder),
        "written": {"files": len(written), "bytes": sum(sizes), "tables": how},
        #: Seconds spent checking and writing the tables (the catalog and pointer follow in milliseconds).
        "seconds": round(time.perf_counter() - started, 3),
        "tables": entries,
        #: The health history's cold days' files (relative to the folder), read by the view wallet_health_cold.
        "cold": _cold_files(con),
    }
    catalog = folder / f"snapshot-{snapshot:08d}.duckdb"
    partial = folder / f".snapshot-{snapshot:08d}.{os.getpid()}.partial"
    try:
        kept = (current, previous) if current is not None and previous is not None else None
        _write_catalog(partial, folder, tables, manifest, _writer_views(con), kept)
        temporary = folder / f".{catalog.stem}.json.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(manifest, indent=1) + "\n")
        os.replace(temporary, _manifest_of(catalog))
        os.replace(partial, catalog)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    pointer = folder / f"{POINTER}.{os.getpid()}.tmp"
    pointer.write_text(catalog.name)
    os.replace(pointer, folder / POINTER)
    _prune(folder)
    rows = _rows_in(written) if written else 0
    return PublishReport(catalog, snapshot, len(written), sum(sizes), rows, how, time.perf_counter() - started)


def _cold_files(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The cold days' files the writer lists, relative to `folder` (none before schema 12 or without cold days)."""
    listed = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name = 'cold_history_files'"
    ).fetchall()[0][0]
    if not listed:
        return []
    files = con.execute("SELECT DISTINCT file FROM cold_history_files ORDER BY 1").fetchall()
    return [f"{COLD_DATA}/{r[0]}" for r in files]


def _rows_in(files: list[Path]) -> int:
    paths = "[" + ", ".join(_literal(p) for p in files) + "]"
    with duckdb.connect() as con:
        return int(con.execute(f"SELECT sum(num_rows) FROM parquet_file_metadata({paths})").fetchall()[0][0] or 0)


def _snapshots(folder: Path) -> list[int]:
    return sorted({int(m.group(1)) for p in folder.iterdir() if (m := _SNAPSHOT.match(p.name))})


def _prune(folder: Path) -> None:
    """Deletes the previous snapshots no reader holds and every file no kept manifest names (an older chainrisk's full
    copies included), and partial files over an hour old (a crashed publish's). The current snapshot is always kept;
    where readers cannot be seen (no flock), the KEEP_PREVIOUS newest before it too."""
    _release_lingering()
    snapshots = _snapshots(folder)
    if fcntl is None or not _flock_works(folder / f"snapshot-{snapshots[-1]:08d}.json" if snapshots else folder):
        _delete_unnamed(folder, snapshots[-(KEEP_PREVIOUS + 1) :])
        return
    with ExitStack() as locks:  # the claimed snapshots' locks, held until their files are gone
        kept = snapshots[-1:] + [n for n in snapshots[:-1] if not _claim(folder, n, locks)]
        _delete_unnamed(folder, kept)


def _claim(folder: Path, number: int, locks: ExitStack) -> bool:
    """Whether snapshot `number` may be deleted; when True, `locks` holds what keeps new readers out of it.

    Two kinds of reader are seen. chainrisk's own (`open_published`: the dashboard, the console, exports) hold a
    shared flock on the snapshot's manifest for as long as their connection lives; flock belongs to the open file,
    so many readers in one process (the dashboard's threads) each hold their own. Any other process that opened the
    catalog itself (an analyst's duckdb shell) holds DuckDB's read lock on it (fcntl), which a write lock tests. A
    catalog this process has open outside open_published is seen by its descriptor: fcntl locks never conflict
    within a process, and closing any descriptor of a file would drop this process's locks on it."""
    assert fcntl is not None
    catalog = folder / f"snapshot-{number:08d}.duckdb"
    try:
        fd = os.open(_manifest_of(catalog), os.O_RDONLY)
    except FileNotFoundError:
        return True  # no manifest (a crashed publish's catalog): nothing can read it
    locks.callback(os.close, fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    if _open_here(catalog):
        return False
    try:
        handle = locks.enter_context(open(catalog, "r+b"))  # noqa: SIM115 (held until `locks` closes)
    except FileNotFoundError:
        return True
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # this process held no lock on the file that closing the handle could drop
    return True


def _flock_works(path: Path) -> bool:
    """Whether flock works on `path`'s file system (some network file systems refuse it: readers are then not seen,
    and snapshots are kept by count)."""
    assert fcntl is not None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True  # held exclusively by another publish: it works
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def _open_here(path: Path) -> bool:
    """Whether this process has `path` open (Linux's /proc; elsewhere: no). /proc names a descriptor's file by its
    resolved path: `path` is resolved too (a folder reached through a symlink)."""
    target = os.path.realpath(path)
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return False
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) == target:
                return True
        except OSError:
            continue
    return False


def _delete_unnamed(folder: Path, kept: list[int]) -> None:
    named: set[str] = set()
    for number in kept:
        manifest = read_manifest(folder / f"snapshot-{number:08d}.duckdb")
        for entry in (manifest or {}).get("tables", {}).values():
            named.update(entry["files"])
        named.update((manifest or {}).get("cold", []))
    for path in folder.iterdir():
        match = _SNAPSHOT.match(path.name)
        if match and int(match.group(1)) not in kept:
            path.unlink(missing_ok=True)
        elif path.suffix == ".duckdb" and not match:
            path.unlink(missing_ok=True)  # a full copy an older chainrisk published
        elif path.name.endswith((".partial", ".tmp")) and time.time() - path.stat().st_mtime > 3600:
            path.unlink(missing_ok=True)
    data = folder / DATA
    if data.is_dir():
        for path in data.rglob("*.parquet*"):  # files of older snapshots, and a failed publish's (.partial too)
            if path.relative_to(folder).as_posix() not in named:
                path.unlink(missing_ok=True)
        for directory in data.iterdir():
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()


def publish_file(db: Path) -> Path:
    """Publishes a database no process holds open (tests, tools); returns the catalog readers now open."""
    with duckdb.connect(str(db), read_only=True) as con:
        return publish(con, db).catalog


# -- reading ---------------------------------------------------------------------------------------------------------
def current_copy(db: Path) -> Path | None:
    """The published catalog readers should open (or an older chainrisk's full copy), or None when nothing was
    published yet."""
    pointer = published_dir(db) / POINTER
    seen = None
    while True:
        try:
            name = pointer.read_text().strip()
        except FileNotFoundError:
            return None
        copy = pointer.parent / name
        if name and copy.is_file():
            return copy
        if name == seen:
            return None
        # The catalog it named is gone: a publish swapped the pointer and pruned it after we read it; read it again.
        seen = name


def reader_path(db: Path) -> Path:
    """The published catalog readers open; UserError when there is none yet."""
    copy = current_copy(db)
    if copy is not None:
        return copy
    if not db.is_file():
        raise UserError(f"no database at {db}; run `chainrisk index` and `chainrisk score` first")
    raise UserError(
        f"nothing published from {db} yet: run `chainrisk score` (or `chainrisk run`), which publishes the "
        "read-only snapshot readers use"
    )


def published_files(catalog: Path) -> list[Path]:
    """The Parquet files a catalog's views read (none for an older chainrisk's full copy); duckdb.IOException when
    its manifest was pruned meanwhile (the caller asks for the current catalog again)."""
    if _SNAPSHOT.match(catalog.name) is None:
        return []
    manifest = read_manifest(catalog)
    if manifest is None:
        raise duckdb.IOException(f"the snapshot {catalog.name} was pruned while opening it")
    # The paths the catalog's views name (a folder copied elsewhere still names the files where they were written).
    folder = Path(manifest.get("folder", catalog.parent))
    tables = [folder / f for entry in manifest["tables"].values() for f in entry["files"]]
    return tables + [folder / f for f in manifest.get("cold", [])]


def open_published(db: Path, open_copy: Callable[[Path], T]) -> T:
    """`open_copy(path of the published catalog)`, holding the snapshot (a shared flock on its manifest, see _claim)
    for as long as what it returns lives (and after it, while this process still has the catalog open: a cursor of
    it; see _release), so no publish deletes its files meanwhile. Asked again when the snapshot
    was pruned between reading the pointer and holding it, or when `open_copy` raises duckdb.IOException."""
    _release_lingering()
    last_error = ""
    for attempt in range(5):
        held: int | None = None
        try:
            catalog = reader_path(db)
            held = _hold(catalog)
            opened = open_copy(catalog)
        except duckdb.IOException as exc:
            if held is not None:
                os.close(held)
            last_error = str(exc).splitlines()[0]
            time.sleep(0.1 * (attempt + 1))
            continue
        except BaseException:
            if held is not None:
                os.close(held)
            raise
        if held is not None:
            _held(catalog)
            weakref.finalize(opened, _release, held, catalog)
        return opened
    raise UserError(f"cannot read the published snapshot of {db}: {last_error}")


#: Readers' holds whose object lives, per catalog (open_published).
_HOLDS: dict[Path, int] = {}
#: Holds (descriptor -> catalog) whose reader object is gone while this process still had the catalog open and held it
#: no other way: a cursor() of the reader still reads the snapshot. Released once the catalog is closed here (checked
#: at each open_published and publish).
_LINGERING: dict[int, Path] = {}
_LINGERING_LOCK = threading.RLock()  # a finalizer may run (garbage collection) while it is held


def _held(catalog: Path) -> None:
    with _LINGERING_LOCK:
        _HOLDS[catalog] = _HOLDS.get(catalog, 0) + 1


def _release(held: int, catalog: Path) -> None:
    """Ends a reader's hold on `catalog` when its object is gone; the last hold of the catalog lingers while the
    catalog is still open in this process (DuckDB's own read lock alone would not keep it: closing any other
    descriptor of the file, as the console's attach does, drops it)."""
    with _LINGERING_LOCK:
        _HOLDS[catalog] -= 1
        if not _HOLDS[catalog]:
            del _HOLDS[catalog]
            if catalog not in _LINGERING.values() and _open_here(catalog):
                _LINGERING[held] = catalog
                return
    os.close(held)


def _release_lingering() -> None:
    """Ends the lingering holds whose catalog this process no longer has open."""
    with _LINGERING_LOCK:
        for held, catalog in list(_LINGERING.items()):
            if not _open_here(catalog):
                del _LINGERING[held]
                os.close(held)


def _hold(catalog: Path) -> int | None:
    """A descriptor of the catalog's manifest under a shared flock (closing it lets a publish delete the snapshot);
    None when there is nothing to hold (an older chainrisk's full copy, or no flock on this platform).
    duckdb.IOException when the snapshot is being or was pruned."""
    if fcntl is None or _SNAPSHOT.match(catalog.name) is None:
        return None
    try:
        fd = os.open(_manifest_of(catalog), os.O_RDONLY)
    except FileNotFoundError:
        raise duckdb.IOException(f"the snapshot {catalog.name} was pruned while opening it") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a publish deletes it (milliseconds), then sees it gone
    except OSError:  # a file system without flock: nothing to hold (the publish keeps snapshots by count there)
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    if os.fstat(fd).st_nlink == 0:
        os.close(fd)
        raise duckdb.IOException(f"the snapshot {catalog.name} was pruned while opening it")
    return fd


def connect_reader(db: Path, config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published snapshot (its tables are views over the snapshot's files)."""
    return open_published(db, lambda path: duckdb.connect(str(path), read_only=True, config=config or {}))
