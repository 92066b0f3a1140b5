"""DuckDB access for jobs: reads/writes sync_state, every adapter's raw_* tables (the latest snapshot, and their
versions in the history schema), positions, wallet_health, the score tables, snapshot_blocks and the health history.

Snapshot, score and chain tables hold the latest snapshot only (each write replaces its source's, market's or chain's
rows); what came before lives in the raw tables' versions (chainrisk.store.versions) and the bucketed
wallet_health_history (chainrisk.store.history).

Every write of a block range, a snapshot, a score or a reorg rewind is one transaction: delete what it covers,
insert, move the watermark. A run killed at any point leaves the file as it was before that transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from chainrisk.errors import UserError
from chainrisk.protocols.adapter import Adapter, adapters
from chainrisk.store import ledger
from chainrisk.store.exact import registered
from chainrisk.store.history import (
    BUCKETS,
    COLD_VIEW,
    HistorySettings,
    cold_view_reads_missing,
    ensure_cold_view,
    forget_inexact_cold_figures,
    record_samples,
    roll_up_cold_days,
)
from chainrisk.store.latest import DDL as LATEST_DDL
from chainrisk.store.latest import create_adapter_tables, drop_latest_keys
from chainrisk.store.migrate import migrate_to_9, migrate_to_10, migrate_to_11
from chainrisk.store.schema import DDL, MIGRATIONS, SCHEMA_VERSION
from chainrisk.store.schema.chains import CHAIN_TABLES
from chainrisk.store.schema.core import CONTRACT_TABLES
from chainrisk.store.schema.credit import CREDIT_TABLES, HISTORY_TABLES
from chainrisk.store.schema.history import HISTORY_SCHEMA
from chainrisk.store.schema.scores import LATEST_ONLY_TABLES, SCORE_TABLES
from chainrisk.store.versions import (
    FIRST_BLOCK,
    VALID_TO,
    as_of,
    has_history,
    key_columns,
    record_versions,
    rewind_versions,
)

#: Each indexed source's latest snapshot (a Morpho market left with no position has no rows in it), in a fixed
#: order: float sums then come out bit-identical however the file's rows happen to be laid out.
log = logging.getLogger("chainrisk.store")

LATEST_POSITIONS = """
SELECT p.* FROM positions p JOIN sync_state s
  ON p.protocol = s.protocol AND p.chain_id = s.chain_id AND p.source = s.market AND p.block_number = s.snapshot_block
ORDER BY p.protocol, p.chain_id, p.market, p.wallet, p.asset
"""
#: Each indexed source's latest `wallet_health`: the protocols' own exact figures the score checks the engine against.
LATEST_WALLET_HEALTH = """
SELECT h.* FROM wallet_health h JOIN sync_state s
  ON h.protocol = s.protocol AND h.chain_id = s.chain_id AND h.source = s.market AND h.block_number = s.snapshot_block
ORDER BY h.protocol, h.chain_id, h.market, h.wallet
"""
#: Every market's description (`markets`) at its indexed source's latest snapshot.
LATEST_MARKETS = """
SELECT m.* FROM markets m JOIN sync_state s
  ON m.protocol = s.protocol AND m.chain_id = s.chain_id AND m.source = s.market AND m.block_number = s.snapshot_block
ORDER BY m.protocol, m.chain_id, m.market
"""
#: Each market's wallet_risk at its latest scored block.
LATEST_WALLET_RISK = """
SELECT w.* FROM wallet_risk w JOIN scored_markets s
  ON w.protocol = s.protocol AND w.chain_id = s.chain_id AND w.market = s.market AND w.block_number = s.block_number
"""


#: Columns that stamp a latest-only row with the snapshot it belongs to (a new block changes nothing else).
STAMP_COLUMNS = ("block_number", "block_timestamp")
#: The snapshots' blocks, one row per source and snapshot; its writers keep its ledger (chainrisk.store.ledger).
SNAPSHOT_BLOCKS = "main.snapshot_blocks"


def _plain(value: Any) -> Any:
    """An exact amount as a Python int (DuckDB gives HUGEINT back as a Decimal), anything else as it is."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def _series(name: str, values: list[Any], dtype: pl.DataType) -> pl.Series:
    """A column of `dtype` from Python values; exact amounts through Int128 (polars refuses a DECIMAL column built
    from ints of mixed sizes, a small one first: "unexpected value ... found value of type Int64")."""
    if isinstance(dtype, pl.Decimal) or dtype.is_integer():
        return pl.Series(name, values, dtype=pl.Int128).cast(dtype)
    return pl.Series(name, values, dtype=dtype)


def _same_value(left: Any, right: Any) -> bool:
    """Equal as stored values: a HUGEINT read back (Decimal) equals the int it was written from."""
    return bool(_plain(left) == _plain(right)) and (left is None) == (right is None)


def _quoted(column: str) -> str:
    return f'"{column}"'


def wal_path(path: Path) -> Path:
    """The write-ahead log DuckDB keeps beside `path`."""
    return path.with_name(path.name + ".wal")


#: One lock per file (by resolved path) that this process's Stores of it take to write: to open it (the migration's
#: check), for each transaction, to checkpoint and to publish. `chainrisk run` indexes the markets of several chains in
#: threads (chainrisk.jobs.run.index_markets), each with its own Store of the one instance: their reads run side by side
#: and their writes one at a time, so two markets' transactions never conflict on a shared row (the events tables'
#: ledger entry, sync_state) and a checkpoint never runs inside another thread's transaction.
_WRITER_LOCKS: dict[Path, threading.RLock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(key: Path) -> threading.RLock:
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(key, threading.RLock())


#: Files whose DuckDB instance is kept open (keep_open), by resolved path: the connection keeping it, or None until the
#: block's first writable Store has opened the file.
_KEPT: dict[Path, duckdb.DuckDBPyConnection | None] = {}


@contextmanager
def keep_open(path: Path) -> Iterator[None]:
    """Keeps `path`'s DuckDB instance open from the first writable Store this process opens on it in the block to the
    block's end: every later Store is a cursor of that instance instead of a database opened and closed again, and
    a writable one checkpoints when it closes, as a closing instance did. Nothing is opened or created before a job
    opens the file itself (a run refused for a wrong chain leaves no file behind).

    Why (README "Storage and history"): each checkpoint writes its metadata into a fresh metadata block, and DuckDB
    reuses the pages an earlier checkpoint freed only within the instance that freed them, so the first rewrite of a
    run whose jobs each opened the file took more blocks for good. Transactions are what they were: a crash still
    leaves the file as it was before the transaction it cut."""
    key = path.resolve()
    if key in _KEPT:
        yield
        return
    _KEPT[key] = None
    try:
        yield
    finally:
        keeper = _KEPT.pop(key)
        if keeper is not None:
            keeper.close()


#: Whether the file has schema_version, its comment (the schema mark), the md5 of the names of its tables and views
#: (the DDL creates two views too), and how many tables and views it has.
_SCHEMA_STATE_SQL = (
    "SELECT count(*) FILTER (WHERE kind = 'table' AND schema_name = 'main' AND name = 'schema_version'), "
    "any_value(comment) FILTER (WHERE kind = 'table' AND schema_name = 'main' AND name = 'schema_version'), "
    "md5(coalesce(string_agg(kind || ' ' || schema_name || '.' || name, ',' ORDER BY kind, schema_name, name), '')), "
    "count(*) "
    "FROM (SELECT 'table' AS kind, schema_name, table_name AS name, comment FROM duckdb_tables() "
    "WHERE database_name = current_database() AND NOT temporary UNION ALL SELECT 'view', schema_name, view_name, NULL "
    "FROM duckdb_views() WHERE database_name = current_database() AND NOT internal AND NOT temporary)"
)
#: What a file made whole by this code's DDL carries (as schema_version's comment): the DDL's digest; a change to the
#: DDL, the ledger's or the latest tables' key table, or the schema version, makes every file whole again once.
_SCHEMA_DIGEST = hashlib.sha256("\0".join((str(SCHEMA_VERSION), DDL, ledger.DDL, LATEST_DDL)).encode()).hexdigest()[:16]


def _schema_mark(tables: str) -> str:
    """The schema mark of a file whose tables' and views' names digest to `tables`: one dropped or added behind
    chainrisk's back (or an adapter's raw table created since) changes it, and the next open makes the file whole
    again."""
    return f"chainrisk schema {SCHEMA_VERSION} {_SCHEMA_DIGEST} tables {tables}"


@dataclass(frozen=True)
class StoredMarket:
    """One indexed contract and the tables it writes, as a reorg rewind needs them."""

    protocol: str  #: adapter name
    market: str  #: the indexed contract
    events_table: str  #: its raw events table (keyed by market)
    snapshot_tables: tuple[str, ...]  #: tables its snapshots write (raw ones keyed by market, shared ones by source)


@dataclass(frozen=True)
class SyncState:
    from_block: int  #: first block the market is indexed from
    events_to_block: int | None  #: logs stored through this block
    events_to_block_hash: str | None  #: its hash, to notice a reorg
    snapshot_block: int | None  #: block of the latest snapshot
    snapshot_block_hash: str | None  #: its hash


class Store:
    """One DuckDB file. Use as a context manager; writers hold DuckDB's single-writer lock while open."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._read_only = read_only
        key = self.path.resolve()
        self._writer = _writer_lock(key)
        if read_only:
            self._open(key, read_only)
            return
        with self._writer:
            self._open(key, read_only)

    def _open(self, key: Path, read_only: bool) -> None:
        kept = _KEPT.get(key)
        self._kept = kept is not None
        if kept is not None:
            # Inside keep_open: a cursor of the open instance (already migrated; a reader of this process reads what
            # the run wrote, as a read-only open after its commit would).
            self.con = kept.cursor()
            return
        # DuckDB names the database after its file up to the first dot, and a database named like a schema hides it:
        # every read of history.<table> would be refused as ambiguous.
        catalog = self.path.name.split(".", 1)[0]
        if catalog.lower() == HISTORY_SCHEMA:
            raise UserError(
                f"{self.path}: a database file named {catalog}.* hides chainrisk's "
                f"`{HISTORY_SCHEMA}` schema in DuckDB; rename the file (for example to chainrisk.duckdb)"
            )
        if read_only and not self.path.is_file():
            raise UserError(f"no database at {self.path}; run `chainrisk index` first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not read_only and (not self.path.exists() or self.path.stat().st_size == 0):
            self._create()
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            raise UserError(f"cannot open {self.path}: {str(exc).splitlines()[0]}") from None
        except duckdb.Error as exc:
            raise UserError(f"{self.path} is not a chainrisk DuckDB file ({type(exc).__name__})") from None
        state = self._first(_SCHEMA_STATE_SQL)
        self._refuse_foreign(state)
        if not read_only:
            self._migrate(state)
            if key in _KEPT:
                # The block's first writable open: a second connection to the instance (DuckDB's instance cache) keeps
                # it open after this Store closes (keep_open).
                _KEPT[key] = duckdb.connect(str(self.path))
                self._kept = True
        elif gone := self._cold_view_reads_missing():
            self.con.close()
            raise UserError(
                f"{self.path}: {len(gone)} health history day file(s) are missing from {self.cold_folder} (first: "
                f"{gone[0]}); restore them from the backup of the published folder, or run any writing command "
                "(`chainrisk run`, `score`) once so the history reads without them"
            )

    def _refuse_foreign(self, state: tuple[Any, ...] | None) -> None:
        """One line, before anything is written, for a DuckDB file chainrisk did not make: tables or views but no
        schema_version (every chainrisk file has one from version 1; `state` is _SCHEMA_STATE_SQL's row). Before, a
        writing command made chainrisk's schema inside it (or stopped on a BinderException where it had a `positions`
        table of its own), and a published snapshot given as --db (views over Parquet files) stopped the same way."""
        if state is None or state[0] or not state[3]:
            return
        self.con.close()
        if self.path.parent.name.endswith(".published"):
            source = self.path.parent.with_name(self.path.parent.name.removesuffix(".published"))
            raise UserError(
                f"{self.path} is a snapshot published for readers (views over Parquet files), not the database; "
                f"give --db {source}"
            )
        raise UserError(
            f"{self.path} is a DuckDB database chainrisk did not make ({state[3]} tables or views, no schema_version); "
            "give --db a chainrisk database, or a new file to create"
        )

    def _create(self) -> None:
        """A new file, made whole under a temporary name and renamed into place. DuckDB refuses a file whose header
        was never written (even an empty one), so a run killed while creating it would lock out every later run;
        an empty file holds nothing and is replaced the same way."""
        partial = self.path.with_name(self.path.name + ".new")
        for leftover in (partial, wal_path(partial), wal_path(self.path)):
            leftover.unlink(missing_ok=True)
        try:
            self.con = duckdb.connect(str(partial))
        except duckdb.Error as exc:
            raise UserError(f"cannot create {self.path}: {str(exc).splitlines()[0]}") from None
        try:
            self._migrate()
        finally:
            self.con.close()
        os.replace(partial, self.path)

    def writing(self) -> threading.RLock:
        """This process's writer lock of the file (_writer_lock), for work that must see no other thread's write
        between its reads and its own (a reorg repair's check and rewind)."""
        return self._writer

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT, rolled back on any exception (including KeyboardInterrupt); one at a time among this
        process's Stores of the file (_writer_lock)."""
        with self._writer:
            self.con.execute("BEGIN")
            try:
                yield
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")

    def _insert(self, table: str, frame: pl.DataFrame) -> None:
        if frame.height:
            # Exact amounts travel in 64-bit halves (Arrow has no 128-bit integer), stored as HUGEINT (store.exact).
            with registered(self.con, "incoming", frame):
                self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")

    def _replace_rows(
        self, table: str, scope: str, params: list[Any], frame: pl.DataFrame, *, restamp: bool = True
    ) -> None:
        """Replaces the rows of `table` that `scope` (a condition on its columns) selects with `frame`. When they are
        the same rows but for the snapshot stamp (block_number and block_timestamp, one value each in `frame`: a new
        block on an unchanged chain), only the stamp is updated: DuckDB then rewrites two columns at the checkpoint
        instead of every column of the table (README "Storage and history": what an unchanged run adds). Without
        `restamp` (the raw snapshot tables), such rows are left as they are, stamp included: the table is not written
        at all, and its stamp stays the block of the last snapshot that changed it (sync_state holds the snapshot's)."""
        stamps = [c for c in STAMP_COLUMNS if c in frame.columns]
        types = dict(ledger.column_types(self.con, f"main.{table}"))
        columns = list(types)
        if (
            frame.height
            and stamps
            and set(columns) <= set(frame.columns)
            and all(frame[c].n_unique() == 1 and frame[c].null_count() == 0 for c in stamps)
        ):
            compared = ", ".join(_quoted(c) for c in columns if c not in stamps)
            # Counts and order-free hashes first: rows that differ (most runs on a live chain, where interest moves
            # every balance) are told apart without EXCEPT ALL's hash table of both sides (~3 s of a steady run at
            # 251,188 wallets); equal figures are confirmed row by row, so a hash collision cannot pass for equal.
            # (The frame's columns hashed as the table's types: a value hashes by its type, as EXCEPT ALL does not.)
            typed = ", ".join(f"CAST({_quoted(c)} AS {types[c]})" for c in columns if c not in stamps)

            def figures(listed: str) -> str:
                return f"row(count(*), coalesce(sum(hash({listed})::HUGEINT), 0))"

            with registered(self.con, "replacing", frame):
                try:
                    differing = self._first(
                        f"SELECT (SELECT {figures(compared)} FROM {table} WHERE {scope}) IS DISTINCT FROM "
                        f"(SELECT {figures(typed)} FROM replacing)",
                        params,
                    )
                    if differing is not None and not differing[0]:
                        differing = self._first(
                            f"SELECT EXISTS (SELECT {compared} FROM {table} WHERE {scope} EXCEPT ALL SELECT "
                            f"{compared} FROM replacing)",
                            params,
                        )
                except duckdb.ConversionException:
                    differing = (True,)  # a column the frame carries in another type: compare by replacing
            if differing is not None and not differing[0]:
                if not restamp:
                    return
                assignments = ", ".join(f"{_quoted(c)} = ?" for c in stamps)
                self.con.execute(
                    f"UPDATE {table} SET {assignments} WHERE {scope}", [*(frame[c][0] for c in stamps), *params]
                )
                return
        self.con.execute(f"DELETE FROM {table} WHERE {scope}", params)
        self._insert(table, frame)

    def _insert_versioned(
        self, table: str, frame: pl.DataFrame, chain_id: int, source: str, block: int, versioned: pl.DataFrame
    ) -> None:
        """Replaces a raw snapshot of a source with `frame` and records what changed in its versions from
        `versioned` (`frame`, or `frame` with accrued columns carried: `_carry_accrued`), typed as the table, so an
        empty or all-NULL column compares as stored."""
        self._replace_rows(table, "chain_id = ? AND market = ?", [chain_id, source], frame, restamp=False)
        types = ledger.column_types(self.con, f"main.{table}")
        select = ", ".join(
            f"CAST({_quoted(c) if c in frame.columns else 'NULL'} AS {t}) AS {_quoted(c)}" for c, t in types
        )
        with registered(self.con, "snapshot_rows", versioned):
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE snapshot_typed AS SELECT {select} FROM snapshot_rows")
        record_versions(self.con, table, chain_id, source, block, "snapshot_typed")
        self.con.execute("DROP TABLE snapshot_typed")

    def _first(self, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
        """First row of a query, reading the whole result (DuckDB 2 refuses new work while a result is open)."""
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0] if rows else None

    def _migrate(self, existing: tuple[Any, ...] | None = None) -> None:
        """Creates a new file's tables, or upgrades an older file in one transaction (nothing is dropped).

        A file this code already made whole (its schema mark equal to this code's, its tables and views the same as
        then) skips the tables' DDL and the primary-key check: ~65 of an open's ~150 ms on the full devnet's file. The
        ledger's check against the tables' row counts and the cold days' view run on every open, as they guard
        against writes behind chainrisk's back, not against its own code."""
        if existing is None:  # a new file (_create), or a caller that has not read its state
            existing = self._first(_SCHEMA_STATE_SQL)
        version = None
        if existing and existing[0]:
            row = self._first("SELECT max(version) FROM schema_version")
            version = row[0] if row else None
            if version is not None and version > SCHEMA_VERSION:
                raise UserError(
                    f"{self.path} was written by a newer chainrisk (schema {version} > {SCHEMA_VERSION}); "
                    "upgrade chainrisk to open it"
                )
        if version is not None and version < SCHEMA_VERSION:
            # A copy of the file as the older chainrisk left it, so an upgrade can always be undone.
            self.con.execute("CHECKPOINT")
            backup = self.path.with_name(f"{self.path.name}.schema-v{version}.bak")
            if not backup.exists():
                shutil.copyfile(self.path, backup)
        mark = _schema_mark(str(existing[2])) if existing else None
        made_whole = version == SCHEMA_VERSION and existing is not None and existing[1] == mark
        with self._transaction():
            if not made_whole:
                self._make_whole(version)
            # The health buckets' running count and hash, set from the table when missing or off (a migration). The
            # ledger's own table exists: in the mark's table names, or created by _make_whole.
            ledger.ensure(self.con, create=False)
            missing = ensure_cold_view(self.con, self.cold_folder)
        if missing:
            log.warning(
                "chainrisk: warning: %d health history day file(s) listed in %s are missing from %s (first: %s); "
                "the history reads without those days until they are restored (from the backup of the published "
                "folder)",
                len(missing),
                self.path.name,
                self.cold_folder,
                missing[0],
            )

    def _make_whole(self, version: int | None) -> None:
        """In _migrate's transaction: this code's tables created where missing, a file of an older `version` migrated,
        the latest-only tables' keys dropped, and the schema mark set."""
        # Tables new in this version are created on every open (IF NOT EXISTS); changed ones migrate once.
        self.con.execute(DDL)
        self.con.execute(ledger.DDL)  # before the migrations: those that fold samples write through it
        if version != SCHEMA_VERSION:
            for step in range((version or SCHEMA_VERSION) + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS.get(step, []):
                    self.con.execute(statement)
                if step == 9 and version is not None:
                    migrate_to_9(self.con)
                if step == 10 and version is not None:
                    migrate_to_10(self.con)
                if step == 11 and version is not None:
                    migrate_to_11(self.con)
                if step == 13 and version is not None:
                    forget_inexact_cold_figures(self.con, self.cold_folder)
                if step == 18 and version is not None:
                    roll_up_cold_days(self.con, self.cold_folder)
            self.con.execute("DELETE FROM schema_version")
            self.con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION])
        # Latest-only tables without their primary-key index (chainrisk.store.latest says why, measured).
        drop_latest_keys(self.con)
        state = self._first(_SCHEMA_STATE_SQL)
        self.con.execute(f"COMMENT ON TABLE schema_version IS '{_schema_mark(str(state[2]) if state else '')}'")

    def _cold_view_reads_missing(self) -> list[str]:
        """Missing cold files the history view still reads (none in a file older than schema 12)."""
        listed = self._first("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'cold_history_files'")
        return cold_view_reads_missing(self.con, self.cold_folder) if listed and listed[0] else []

    def publish(self) -> Path:
        """Checkpoints and publishes a read-only snapshot for readers (chainrisk.store.published); returns the
        catalog readers now open."""
        from chainrisk.store.published import publish

        with self._writer:
            self.con.execute("CHECKPOINT")
            return publish(self.con, self.path).catalog

    def ensure_tables(self, ddl: str) -> None:
        """Creates a protocol adapter's raw tables if missing (its latest-only ones without their index)."""
        with self._transaction():
            create_adapter_tables(self.con, [ddl])

    @property
    def cold_folder(self) -> Path:
        """Where the health history's cold days go (chainrisk.store.history.evict_days): beside the published
        snapshots' files, which name them, so readers read them where they lie."""
        from chainrisk.store.published import COLD_DATA, published_dir

        return published_dir(self.path).absolute() / COLD_DATA

    def close(self) -> None:
        if self._kept and not self._read_only:
            # What closing the instance did (keep_open). A transaction an error left open refuses it: closing rolls
            # that back, as closing the instance did, the next checkpoint writes what was committed before it, and
            # the error itself is what the caller sees.
            with self._writer, contextlib.suppress(duckdb.Error):
                self.con.execute("CHECKPOINT")
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- sync state ------------------------------------------------------------------------------------------
    def sync_state(self, protocol: str, chain_id: int, market: str) -> SyncState | None:
        row = self._first(
            "SELECT from_block, events_to_block, events_to_block_hash, snapshot_block, snapshot_block_hash "
            "FROM sync_state WHERE protocol = ? AND chain_id = ? AND market = ?",
            [protocol, chain_id, market],
        )
        return SyncState(*row) if row else None

    def chains_of_market(self, protocol: str, market: str) -> list[int]:
        rows = self.con.execute(
            "SELECT DISTINCT chain_id FROM sync_state WHERE protocol = ? AND market = ?", [protocol, market]
        ).fetchall()
        return [r[0] for r in rows]

    def _ensure_state(self, protocol: str, chain_id: int, market: str, from_block: int) -> None:
        self.con.execute(
            "INSERT INTO sync_state (protocol, chain_id, market, from_block) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [protocol, chain_id, market, from_block],
        )

    # -- events ----------------------------------------------------------------------------------------------
    def write_events(
        self,
        protocol: str,
        chain_id: int,
        market: str,
        from_block: int,
        to_block: int,
        to_block_hash: str,
        events: pl.DataFrame,
        *,
        table: str,
        start_block: int,
    ) -> None:
        """Replaces the events of [from_block, to_block] and moves the watermark to to_block, atomically."""
        with self._transaction():
            self._ensure_state(protocol, chain_id, market, start_block)
            span = f"{table} WHERE chain_id = ? AND market = ? AND block_number BETWEEN ? AND ?"
            where = [chain_id, market, from_block, to_block]
            ledger.subtract(self.con, f"main.{table}", f"SELECT * FROM {span}", where)  # chainrisk.store.ledger
            self.con.execute(f"DELETE FROM {span}", where)
            self._insert(table, events)
            ledger.add(self.con, f"main.{table}", f"SELECT * FROM {span}", where)
            self.con.execute(
                "UPDATE sync_state SET events_to_block = ?, events_to_block_hash = ? "
                "WHERE protocol = ? AND chain_id = ? AND market = ?",
                [to_block, to_block_hash, protocol, chain_id, market],
            )

    def markets_at_watermark(self, chain_id: int, block: int, block_hash: str) -> list[tuple[str, str]]:
        """(protocol, market) of every market of a chain whose logs are stored through `block`, of hash
        `block_hash`: markets indexed against the same chain (markets run together share their watermark)."""
        rows = self.con.execute(
            "SELECT protocol, market FROM sync_state WHERE chain_id = ? AND events_to_block = ? "
            "AND events_to_block_hash = ? ORDER BY protocol, market",
            [chain_id, block, block_hash],
        ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def stored_block_hashes(
        self, chain_id: int, markets: Sequence[StoredMarket], *, after: int, through: int
    ) -> dict[int, set[str]]:
        """Every block hash the file holds for `markets` in blocks (after, through]: those of their events, and
        their watermark and snapshot hashes."""
        pairs: list[tuple[int | None, str | None]] = []
        for m in markets:
            pairs += self.con.execute(
                f"SELECT DISTINCT block_number, block_hash FROM {m.events_table} "
                "WHERE chain_id = ? AND market = ? AND block_number > ? AND block_number <= ?",
                [chain_id, m.market, after, through],
            ).fetchall()
            state = self.sync_state(m.protocol, chain_id, m.market)
            if state is not None:
                pairs += [
                    (state.events_to_block, state.events_to_block_hash),
                    (state.snapshot_block, state.snapshot_block_hash),
                ]
        hashes: dict[int, set[str]] = {}
        for number, block_hash in pairs:
            if number is not None and block_hash is not None and after < number <= through:
                hashes.setdefault(int(number), set()).add(str(block_hash))
        return hashes

    def rewind(self, chain_id: int, markets: Sequence[StoredMarket], *, keep_through: int, keep_hash: str) -> None:
        """Drops everything `markets` hold from blocks after `keep_through` (a reorg replaced them): their events,
        their snapshots and the scores computed from those snapshots; moves their watermark back to
        `keep_through` (of hash `keep_hash`) and forgets a snapshot that was dropped. One transaction."""
        after = [chain_id, keep_through]
        with self._transaction():
            for m in markets:
                # The risk-isolated markets this contract's snapshots fed (scores are keyed by them, not by source).
                fed = [
                    r[0]
                    for r in self.con.execute(
                        "SELECT DISTINCT market FROM positions WHERE protocol = ? AND chain_id = ? AND source = ?",
                        [m.protocol, chain_id, m.market],
                    ).fetchall()
                ]
                dropped_events = f"{m.events_table} WHERE chain_id = ? AND block_number > ? AND market = ?"
                events_after = [*after, m.market]
                ledger.subtract(self.con, f"main.{m.events_table}", f"SELECT * FROM {dropped_events}", events_after)
                self.con.execute(f"DELETE FROM {dropped_events}", events_after)
                for table in m.snapshot_tables:
                    if table in CONTRACT_TABLES:
                        where, keys = "source = ? AND protocol = ?", [m.market, m.protocol]
                    else:
                        where, keys = "market = ?", [m.market]
                        rewind_versions(self.con, table, chain_id, m.market, keep_through)
                    self.con.execute(
                        f"DELETE FROM {table} WHERE chain_id = ? AND block_number > ? AND {where}", [*after, *keys]
                    )
                for table in SCORE_TABLES:
                    self.con.execute(
                        f"DELETE FROM {table} WHERE chain_id = ? AND block_number > ? AND protocol = ? "
                        "AND list_contains(?, market)",
                        [*after, m.protocol, fed],
                    )
                # Buckets that took a sample from a dropped block (their min and max cannot be unpicked).
                dropped = (
                    "wallet_health_buckets WHERE chain_id = ? AND last_block > ? AND key_id IN "
                    "(SELECT key_id FROM wallet_health_keys WHERE chain_id = ? AND protocol = ? "
                    "AND list_contains(?, market))"
                )
                dropped_params = [*after, chain_id, m.protocol, fed]
                cold = dropped.replace("wallet_health_buckets", COLD_VIEW, 1)
                if self.con.execute(f"SELECT count(*) FROM {cold}", dropped_params).fetchall()[0][0]:
                    raise UserError(
                        f"a reorg on chain {chain_id} reaches back past block {keep_through}, into health history "
                        "days already moved out of the database ([storage] hot_days); nothing was changed"
                    )
                ledger.subtract(self.con, BUCKETS, f"SELECT * FROM {dropped}", dropped_params)
                low = self.con.execute(f"SELECT min(bucket_start) FROM {dropped}", dropped_params).fetchall()[0][0]
                self.con.execute(f"DELETE FROM {dropped}", dropped_params)
                ledger.record_deletion(self.con, BUCKETS, low, None)  # a publish replaces the buckets from there on
                forgotten = "snapshot_blocks WHERE chain_id = ? AND block_number > ? AND protocol = ? AND source = ?"
                ledger.subtract(self.con, SNAPSHOT_BLOCKS, f"SELECT * FROM {forgotten}", [*after, m.protocol, m.market])
                self.con.execute(f"DELETE FROM {forgotten}", [*after, m.protocol, m.market])
                # Totals over every market of the chain ('all') counted the dropped snapshots too.
                self.con.execute(
                    "DELETE FROM liquidation_curve WHERE chain_id = ? AND block_number > ? "
                    "AND (list_contains(?, market) OR market = 'all')",
                    [*after, fed],
                )
                self.con.execute(
                    "UPDATE sync_state SET events_to_block = ?, events_to_block_hash = ?, "
                    "snapshot_block = if(snapshot_block > ?, NULL, snapshot_block), "
                    "snapshot_block_hash = if(snapshot_block > ?, NULL, snapshot_block_hash), "
                    "snapshot_timestamp = if(snapshot_block > ?, NULL, snapshot_timestamp) "
                    "WHERE protocol = ? AND chain_id = ? AND market = ?",
                    [keep_through, keep_hash, *[keep_through] * 3, m.protocol, chain_id, m.market],
                )
            self.con.execute("DELETE FROM wallet_portfolio WHERE chain_id = ? AND block_number > ?", after)
            for table in CHAIN_TABLES:  # looked through positions some of which were dropped
                self.con.execute(f"DELETE FROM {table} WHERE chain_id = ? AND block_number > ?", after)
            for table in HISTORY_TABLES:  # sampled from blocks the chain no longer has
                self.con.execute(f"DELETE FROM {table} WHERE chain_id = ? AND block_number > ?", after)
            for table in CREDIT_TABLES:
                self.con.execute(f"DELETE FROM {table} WHERE chain_id = ? AND as_of_block > ?", after)

    def latest_positions(self) -> pl.DataFrame:
        """`positions` of every indexed source's latest snapshot, in a fixed order (LATEST_POSITIONS)."""
        return self.query(LATEST_POSITIONS)

    def latest_wallet_health(self) -> pl.DataFrame:
        """`wallet_health` of every indexed source's latest snapshot (LATEST_WALLET_HEALTH)."""
        return self.query(LATEST_WALLET_HEALTH)

    def latest_markets(self) -> pl.DataFrame:
        """`markets` of every indexed source's latest snapshot (LATEST_MARKETS)."""
        return self.query(LATEST_MARKETS)

    def latest_wallet_risk(self) -> pl.DataFrame:
        """`wallet_risk` of every market's latest scored block (LATEST_WALLET_RISK)."""
        return self.query(LATEST_WALLET_RISK)

    def query(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        frame = pl.from_arrow(self.con.sql(sql, params=params or []).to_arrow_table())
        assert isinstance(frame, pl.DataFrame)
        return frame

    def _carry_accrued(
        self,
        adapter: Adapter[Any],
        table: str,
        frames: Mapping[str, pl.DataFrame],
        chain_id: int,
        source: str,
        block: int,
        timestamp: int,
    ) -> pl.DataFrame:
        """`frames[table]` with the accrued columns (Adapter.accrued_columns) of each row whose state is its current
        version's put back to that version's values, where the adapter's `accrue` of the version at `timestamp`
        gives exactly what the snapshot read: interest accruing with time then opens no version, and `raw_as_of`
        recomputes those columns for any block. A row whose recomputation differs keeps what was read (a version
        then opens, as for any change): what is stored stays exact whatever the deployment's maths."""
        frame, accrued = frames[table], adapter.accrued_columns.get(table, ())
        if not accrued or not frame.height or not set(accrued) <= set(frame.columns):
            return frame
        if not has_history(self.con, table):
            return frame
        history = f"{HISTORY_SCHEMA}.{table}"
        current = self.query(
            f"SELECT * EXCLUDE ({VALID_TO}) FROM {history} WHERE chain_id = ? AND market = ? AND block_number < ? "
            f"AND ({VALID_TO} IS NULL OR {VALID_TO} >= ?)",
            [chain_id, source, block, block],
        )
        if not current.height:
            return frame
        recomputed = adapter.accrue(table, current, timestamp, lambda name: frames[name])
        keys = key_columns(self.con, table)
        state = [c for c in frame.columns if c in current.columns and c not in accrued and c not in STAMP_COLUMNS]
        stored = {
            tuple(row[k] for k in keys): (row, again)
            for row, again in zip(current.iter_rows(named=True), recomputed, strict=True)
        }
        values = {c: [_plain(v) for v in frame[c].to_list()] for c in accrued}
        carried = 0
        for i, row in enumerate(frame.iter_rows(named=True)):
            found = stored.get(tuple(row[k] for k in keys))
            if found is None:
                continue
            version, again = found
            if all(_same_value(row[c], version[c]) for c in state) and all(
                _same_value(row[c], again[c]) for c in accrued
            ):
                carried += 1
                for c in accrued:
                    values[c][i] = _plain(version[c])
        if not carried:
            return frame
        return frame.with_columns(_series(c, values[c], frame[c].dtype) for c in accrued)

    def append_run(self, runs_table: str, run: pl.DataFrame, results: Mapping[str, pl.DataFrame]) -> int:
        """Inserts `run` (one row) and every frame of `results` under the next `run_id` of `runs_table`, in one
        transaction; returns that id."""
        with self._transaction():
            row = self._first(f"SELECT coalesce(max(run_id), 0) + 1 FROM {runs_table}")
            run_id = int(row[0]) if row else 1
            tag = pl.lit(run_id, pl.Int64).alias("run_id")
            self._insert(runs_table, run.with_columns(tag))
            for table, frame in results.items():
                self._insert(table, frame.with_columns(tag))
        return run_id

    def replace_scores(
        self, frames: dict[str, pl.DataFrame], blocks: pl.DataFrame, history: HistorySettings | None = None
    ) -> int:
        """Replaces the score tables' rows of every (chain_id, market) in `blocks` (whatever block they were of;
        totals over every market, market 'all', of those chains too) and the latest-only wallet_portfolio as a
        whole, and folds the new wallet_risk rows into the health history, atomically; returns the new samples."""
        self.con.register("scored_blocks", blocks.select("chain_id", "market", "block_number"))
        with self._transaction():
            for table, frame in frames.items():
                scope = "true"
                if table not in LATEST_ONLY_TABLES:
                    scope = (
                        f"EXISTS (SELECT 1 FROM scored_blocks s WHERE {table}.chain_id = s.chain_id "
                        f"AND ({table}.market = s.market OR {table}.market = 'all'))"
                    )
                self._replace_rows(table, scope, [], frame)
            added = record_samples(
                self.con, frames["wallet_risk"], history or HistorySettings(), cold_folder=self.cold_folder
            )
        self.con.unregister("scored_blocks")
        return added

    def replace_chain_tables(self, frames: Mapping[str, pl.DataFrame], chain_id: int, block: int) -> None:
        """Replaces the collateralization-chain tables' rows of `chain_id` (its latest block only is kept) with
        `frames`, the look-through at `block`, atomically."""
        with self._transaction():
            for table, frame in frames.items():
                if table not in CHAIN_TABLES:
                    raise ValueError(f"{table} is not a chain table")
                self._replace_rows(table, "chain_id = ?", [chain_id], frame)

    def replace_history(
        self,
        frames: Mapping[str, pl.DataFrame],
        chain_id: int,
        blocks: Sequence[int],
        history: HistorySettings | None = None,
    ) -> None:
        """Replaces the credit history tables' rows of (`chain_id`, each of `blocks`) with `frames`, the health
        samples (`wallet_health_history`) folded into the one health history, atomically."""
        with self._transaction():
            for table, frame in frames.items():
                if table == "wallet_health_history":
                    # A backfill samples old blocks one at a time: its days move out at the next score, not after
                    # each sample (each would write its day's file again).
                    settings = history or HistorySettings()
                    record_samples(self.con, frame, settings, cold_folder=self.cold_folder, evict=False)
                    continue
                if table not in HISTORY_TABLES:
                    raise ValueError(f"{table} is not a credit history table")
                self.con.execute(
                    f"DELETE FROM {table} WHERE chain_id = ? AND list_contains(?, block_number)",
                    [chain_id, list(blocks)],
                )
                self._insert(table, frame)

    def append_rows(self, frames: Mapping[str, pl.DataFrame]) -> None:
        """Appends each frame to its table, all in one transaction."""
        with self._transaction():
            for table, frame in frames.items():
                self._insert(table, frame)

    def replace_credit(self, frames: Mapping[str, pl.DataFrame], chain_id: int, as_of_block: int, version: str) -> None:
        """Replaces the credit score tables' rows of (`chain_id`, `as_of_block`, model `version`), atomically."""
        with self._transaction():
            for table, frame in frames.items():
                if table not in CREDIT_TABLES:
                    raise ValueError(f"{table} is not a credit score table")
                self.con.execute(
                    f"DELETE FROM {table} WHERE chain_id = ? AND as_of_block = ? AND model_version = ?",
                    [chain_id, as_of_block, version],
                )
                self._insert(table, frame)

    # -- snapshots -------------------------------------------------------------------------------------------
    def write_snapshot(
        self,
        protocol: str,
        chain_id: int,
        market: str,
        block: int,
        block_hash: str,
        timestamp: int,
        frames: dict[str, pl.DataFrame],
    ) -> None:
        """Replaces the source's latest snapshot with the one at `block`, records what changed in the raw tables'
        versions and the block in snapshot_blocks and sync_state, atomically."""
        adapter = adapters().get(protocol)
        with self._transaction():
            for table, frame in frames.items():
                # Raw tables are keyed by the indexed contract (`market`); the shared contract tables hold one
                # row set per risk-isolated market, all from the same indexed `source`.
                if table in CONTRACT_TABLES:
                    scope = "chain_id = ? AND source = ? AND protocol = ?"
                    self._replace_rows(table, scope, [chain_id, market, protocol], frame)
                elif adapter is not None and table in adapter.latest_only_tables:
                    self._replace_rows(table, "chain_id = ? AND market = ?", [chain_id, market], frame, restamp=False)
                else:
                    versioned = frame
                    if adapter is not None:
                        versioned = self._carry_accrued(adapter, table, frames, chain_id, market, block, timestamp)
                    self._insert_versioned(table, frame, chain_id, market, block, versioned)
            # The source's snapshots from `block` on replaced by this one, the ledger kept (chainrisk.store.ledger).
            retaken = "snapshot_blocks WHERE protocol = ? AND chain_id = ? AND source = ? AND block_number >= ?"
            ledger.subtract(self.con, SNAPSHOT_BLOCKS, f"SELECT * FROM {retaken}", [protocol, chain_id, market, block])
            self.con.execute(f"DELETE FROM {retaken}", [protocol, chain_id, market, block])
            self.con.execute(
                "INSERT INTO snapshot_blocks VALUES (?, ?, ?, ?, ?, ?)",
                [protocol, chain_id, market, block, block_hash, timestamp],
            )
            ledger.add(self.con, SNAPSHOT_BLOCKS, f"SELECT * FROM {retaken}", [protocol, chain_id, market, block])
            self.con.execute(
                "UPDATE sync_state SET snapshot_block = ?, snapshot_block_hash = ?, snapshot_timestamp = ? "
                "WHERE protocol = ? AND chain_id = ? AND market = ?",
                [block, block_hash, timestamp, protocol, chain_id, market],
            )

    def raw_as_of(self, table: str, chain_id: int, source: str, block: int) -> pl.DataFrame:
        """A raw snapshot table's rows of `source` as the snapshot at `block` wrote them (chainrisk.store.versions),
        the accrued columns of versions read before `block` recomputed for its time by the adapter's `accrue`
        (they were carried only where that recomputation gave what each snapshot read: `_carry_accrued`)."""
        adapter = next((a for a in adapters().values() if table in a.tables()), None)
        if adapter is not None and table in adapter.latest_only_tables:
            raise UserError(f"{table} holds each source's latest snapshot only (a prediction, not state)")
        rows = as_of(self.con, table, chain_id, source, block, first_blocks=True)
        accrued = adapter.accrued_columns.get(table, ()) if adapter is not None else ()
        if FIRST_BLOCK not in rows.columns:
            return rows
        earlier = rows[FIRST_BLOCK] < block
        rows = rows.drop(FIRST_BLOCK)
        if adapter is None or not accrued or not earlier.any():
            return rows
        found = self._first(
            "SELECT block_timestamp FROM snapshot_blocks WHERE chain_id = ? AND source = ? AND block_number = ?",
            [chain_id, source, block],
        )
        assert found is not None  # as_of checked the snapshot exists
        again = adapter.accrue(table, rows, int(found[0]), lambda name: self.raw_as_of(name, chain_id, source, block))
        mask = earlier.to_list()
        return rows.with_columns(
            _series(
                c,
                [_plain(a[c] if m else v) for a, m, v in zip(again, mask, rows[c].to_list(), strict=True)],
                rows[c].dtype,
            )
            for c in accrued
        )
