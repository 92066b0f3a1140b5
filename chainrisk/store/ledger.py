"""The running row count and content hash of tables too large to hash at every publish.

A publish decides what to write for a table by its row count and order-free content hash (the sum of its rows'
hashes, chainrisk.store.published). Computing those reads the whole table: for the health buckets at a year (612M
at the goal size) that is minutes per run, however little the run added (benchmarks/publish_checks.py: one hour's
10,000 buckets published in 1.7 s at 2.4M stored, 14.2 s at 24.4M). So the writers of a ledgered table keep its
count and hash in `table_ledger` as they change it, in the same transaction: before deleting rows they subtract
those rows' figures, after inserting rows they add them, each computed over just those rows (the rows a run
touches, found through the table's zone maps). Both are sums, so the order and grouping of the changes do not
matter.

The ledger is a shortcut, never the truth: the publisher uses it only while it agrees with the table's row count
(a count reads no column) and checks what it publishes against it, falling back to hashing the table when they
disagree; a Store opening a file whose ledger is missing or disagrees with that count computes it again from the
table (once). Every writer of a ledgered table goes through `subtract` / `add` (deletes, inserts) or `revise` (an
UPDATE: the rows' hashes before and after, from one read of them before it); tests/test_ledger.py and
tests/test_versions_ledger.py run each writer and compare the ledger with a full hash."""

from __future__ import annotations

import re
from typing import Any

import duckdb

from chainrisk.store.parquet import quote as _quote

#: Tables whose count and hash the writers keep (schema.table, as the publisher names them), besides every
#: protocol's raw events table (EVENTS: appended by `Store.write_events`, cut back by a reorg rewind) and every raw
#: snapshot table's versions (VERSIONS: history.<raw table>, chainrisk.store.versions: versions opened, closed,
#: reopened and forgotten by `record_versions` and `rewind_versions`). snapshot_blocks: one row per source and
#: snapshot, written with it by `Store.write_snapshot`, cut back by a reorg rewind.
LEDGERED = ("main.wallet_health_buckets", "main.snapshot_blocks")
EVENTS = re.compile(r"^main\.raw_[a-z0-9_]+_events$")
VERSIONS = re.compile(r"^history\.raw_[a-z0-9_]+$")


def ledgered(table: str) -> bool:
    """Whether the writers of `table` (schema.table) keep its ledger."""
    return table in LEDGERED or EVENTS.match(table) is not None or VERSIONS.match(table) is not None


DDL = """
CREATE TABLE IF NOT EXISTS table_ledger (
    table_name VARCHAR NOT NULL,
    row_count BIGINT NOT NULL,
    content_hash HUGEINT NOT NULL
);
CREATE TABLE IF NOT EXISTS table_deletions (
    table_name VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    low BIGINT NOT NULL,
    high BIGINT
);
"""
#: Deletion records kept per table (a publish needs the ones since the previous publish; one a day per chain is
#: written by the downsampling, so this is years of them).
KEEP_DELETIONS = 10_000


def _sql_name(table: str) -> str:
    schema, name = table.split(".", 1)
    return f"{_quote(schema)}.{_quote(name)}"


def column_types(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """The (column, type) pairs of `table` ("schema.name") in declared order."""
    schema, name = table.split(".", 1)
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [schema, name],
    ).fetchall()
    return [(str(c), str(t)) for c, t in rows]


def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The table's columns in declared order (the order the content hash takes them in)."""
    return [c for c, _ in column_types(con, table)]


def stats_sql(column_names: list[str], source: str) -> str:
    """count(*) and the order-free content hash of `source`'s rows, the columns taken in `column_names`' order."""
    listed = ", ".join(_quote(c) for c in column_names)
    return f"SELECT count(*), coalesce(sum(hash({listed})::HUGEINT), 0) FROM {source}"


def _stats(con: duckdb.DuckDBPyConnection, table: str, rows_sql: str, params: Any = None) -> tuple[int, int]:
    row = con.execute(stats_sql(columns(con, table), f"({rows_sql})"), params or []).fetchall()[0]
    return int(row[0]), int(row[1])


def _apply(con: duckdb.DuckDBPyConnection, table: str, count: int, digest: int) -> None:
    if not count:
        return
    con.execute(
        "UPDATE table_ledger SET row_count = row_count + ?, content_hash = content_hash + ?::HUGEINT "
        "WHERE table_name = ?",
        [count, str(digest), table],
    )


def subtract(con: duckdb.DuckDBPyConnection, table: str, rows_sql: str, params: Any = None) -> None:
    """Takes the rows `rows_sql` selects (`SELECT * FROM <table> ...`, about to be deleted) out of the ledger."""
    if ledgered(table):
        count, digest = _stats(con, table, rows_sql, params)
        _apply(con, table, -count, -digest)


def add(con: duckdb.DuckDBPyConnection, table: str, rows_sql: str, params: Any = None) -> None:
    """Adds the rows `rows_sql` selects (`SELECT * FROM <table> ...`, just inserted) to the ledger."""
    if ledgered(table):
        count, digest = _stats(con, table, rows_sql, params)
        _apply(con, table, count, digest)


def revise(
    con: duckdb.DuckDBPyConnection, table: str, rows_sql: str, changes: dict[str, str], params: Any = None
) -> None:
    """Moves the ledger from the rows `rows_sql` selects (`SELECT * FROM <table> ...`, about to be updated by
    `SET column = expression` for each of `changes`) to the same rows updated, computed before the update in one read
    of them (the count stays). An expression may name the row's columns and `params` by name ($name), as the
    UPDATE's would (positional `?` parameters are `rows_sql`'s only)."""
    if not ledgered(table):
        return
    pairs = column_types(con, table)
    types = dict(pairs)
    names = [c for c, _ in pairs]
    old = ", ".join(_quote(c) for c in names)
    new = ", ".join(f"CAST(({changes[c]}) AS {types[c]})" if c in changes else _quote(c) for c in names)
    digest = con.execute(
        f"SELECT coalesce(sum(hash({new})::HUGEINT) - sum(hash({old})::HUGEINT), 0) FROM ({rows_sql})", params or []
    ).fetchall()[0][0]
    if int(digest):
        con.execute(
            "UPDATE table_ledger SET content_hash = content_hash + ?::HUGEINT WHERE table_name = ?",
            [str(int(digest)), table],
        )


def rebuild(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Sets the table's ledger from the whole table (a new file, a migration, a file written without a ledger)."""
    count, digest = _stats(con, table, f"SELECT * FROM {_sql_name(table)}")
    con.execute("DELETE FROM table_ledger WHERE table_name = ?", [table])
    con.execute("INSERT INTO table_ledger VALUES (?, ?, ?::HUGEINT)", [table, count, str(digest)])


def row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {_sql_name(table)}").fetchall()[0][0])


def read(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int] | None:
    """The ledger's (count, hash) of `table` when it agrees with the table's row count, else None."""
    if not ledgered(table):
        return None
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name = 'table_ledger'"
    ).fetchall()[0][0]
    if not exists:
        return None
    rows = con.execute("SELECT row_count, content_hash FROM table_ledger WHERE table_name = ?", [table]).fetchall()
    if len(rows) != 1:
        return None
    count, digest = int(rows[0][0]), int(rows[0][1])
    return (count, digest) if count == row_count(con, table) else None


def ensure(con: duckdb.DuckDBPyConnection, create: bool = True) -> None:
    """Creates the ledger (unless `create` is False: the caller knows it exists) and sets every ledgered table's
    figures that are missing or disagree with its row count (in the caller's transaction)."""
    if create:
        con.execute(DDL)
    tables = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND NOT temporary"
    ).fetchall()
    names = [str(t) for (t,) in tables if ledgered(str(t))]
    if not names:
        return
    # Every ledgered table's row count and ledger entry in one query (table by table cost ~50 ms an open).
    counts = " UNION ALL ".join(f"SELECT ? AS table_name, count(*) AS row_count FROM {_sql_name(t)}" for t in names)
    agreeing = {
        str(r[0])
        for r in con.execute(
            f"SELECT c.table_name FROM ({counts}) c JOIN (SELECT table_name, count(*) AS entries, "
            "any_value(row_count) AS row_count FROM table_ledger GROUP BY table_name) l "
            "ON l.table_name = c.table_name AND l.entries = 1 AND l.row_count = c.row_count",
            names,
        ).fetchall()
    }
    for table in names:
        if table not in agreeing:
            rebuild(con, table)


def record_deletion(con: duckdb.DuckDBPyConnection, table: str, low: int | None, high: int | None) -> None:
    """Records that rows of `table` whose range column (the publisher's UPSERT_NEAR column: bucket_start for the
    buckets) lies in [low, high) (high None: no bound) were deleted or replaced, in the writer's transaction: a publish
    then drops the published rows of that range and writes the table's rows in it again, instead of rewriting the
    whole table (chainrisk.store.published). `low` None (nothing was deleted): no record."""
    if low is None:
        return
    con.execute(
        "INSERT INTO table_deletions SELECT ?, coalesce(max(seq), 0) + 1, ?, ? FROM table_deletions", [table, low, high]
    )
    con.execute(
        "DELETE FROM table_deletions WHERE table_name = ? AND seq <= "
        "(SELECT max(seq) FROM table_deletions WHERE table_name = ?) - ?",
        [table, table, KEEP_DELETIONS],
    )


def deletions(
    con: duckdb.DuckDBPyConnection, table: str, after: int
) -> tuple[int, list[tuple[int, int | None]] | None]:
    """The newest deletion record's number of `table` and the [low, high) ranges recorded after number `after` (a file
    without the records table: none); the ranges are None when records after `after` were pruned already."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name = 'table_deletions'"
    ).fetchall()[0][0]
    if not exists:
        return 0, []
    rows = con.execute(
        "SELECT seq, low, high FROM table_deletions WHERE table_name = ? AND seq > ? ORDER BY seq", [table, after]
    ).fetchall()
    newest = max([after, *(int(r[0]) for r in rows)])
    if rows and int(rows[0][0]) != after + 1:
        return newest, None  # records in between were pruned
    return newest, [(int(low), None if high is None else int(high)) for _, low, high in rows]
