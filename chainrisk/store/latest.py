"""Latest-only tables kept without a primary-key index: reads duckdb_tables/duckdb_columns/duckdb_constraints, writes
table_keys (each such table's key, which chainrisk.store.versions reads) and rebuilds those tables once without their
PRIMARY KEY.

Why (measured on the 300-wallet devnet's database, benchmarks/storage.py and README "Storage and history"): every run
replaces the latest-only tables whole (a new block re-stamps every row, and block_number is part of their keys). With a
PRIMARY KEY, DuckDB rewrites each of those tables' ART index at the checkpoint into fresh blocks before it frees the
old ones: the indexes held 37 of the file's 109 used 256 KiB blocks, and the file swung between 32.8 and 45.1 MB on
alternate runs. Without them the same rewrites settle at once (30.4 MB, unchanged run after run). Uniqueness of these
tables never rested on the index: each write deletes the rows it covers and inserts one snapshot in one transaction.
Tables that accumulate (events, versions, snapshot_blocks, sync_state) keep their keys; the health history is
rebuilt without its own by schema version 10 (`rebuild_without_key`; chainrisk.store.schema.history says why).
"""

from __future__ import annotations

from typing import Any

import duckdb

from chainrisk.protocols.adapter import adapters
from chainrisk.store import ledger
from chainrisk.store.schema.chains import CHAIN_TABLES
from chainrisk.store.schema.core import CONTRACT_TABLES
from chainrisk.store.schema.scores import LATEST_ONLY_TABLES, SCORE_TABLES

KEYS_TABLE = "table_keys"
#: The derived tables that hold each source's, market's or chain's latest snapshot only.
DERIVED_LATEST = (*CONTRACT_TABLES, *SCORE_TABLES, *LATEST_ONLY_TABLES, "liquidation_curve", *CHAIN_TABLES)

DDL = f"""
CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (
    table_name VARCHAR PRIMARY KEY,
    key_columns VARCHAR[] NOT NULL
);
"""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def latest_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The main schema's latest-only tables that exist: the derived ones and every adapter's raw snapshot tables
    (its raw_* tables but its events table)."""
    events = {a.events_table for a in adapters().values()}
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND NOT temporary ORDER BY 1"
    ).fetchall()
    names = [str(r[0]) for r in rows]
    return [n for n in names if n in DERIVED_LATEST or (n.startswith("raw_") and n not in events)]


def declared_key(con: duckdb.DuckDBPyConnection, table: str) -> list[str] | None:
    """The key recorded for a table rebuilt without its primary key, or None."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?", [KEYS_TABLE]
    ).fetchall()[0][0]
    if not exists:
        return None
    rows = con.execute(f"SELECT key_columns FROM {KEYS_TABLE} WHERE table_name = ?", [table]).fetchall()
    return [str(c) for c in rows[0][0]] if rows else None


def drop_latest_keys(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Rebuilds every latest-only table that still has a PRIMARY KEY without it (its key recorded in table_keys, its
    key columns NOT NULL as before), on a connection the caller holds a transaction on; returns the tables rebuilt.
    A table with other constraints (UNIQUE, CHECK, FOREIGN KEY) is left as it is."""
    con.execute(DDL)
    # One look at every constraint, then at the columns of the tables to rebuild, not two looks per table: a file
    # already rebuilt (every open after the first) has no key to drop, and a new file has ~30 tables to rebuild
    # (asking table by table cost ~85 ms an open at 40 tables, and ~0.2 s of a new file's creation).
    constraints = _constraints(con)
    keyed = [t for t in latest_tables(con) if [k for k, _ in constraints.get(t, [])] == ["PRIMARY KEY"]]
    columns = _columns(con, keyed)
    for table in keyed:
        _rebuild(con, table, constraints[table][0][1], columns[table], None)
    return keyed


def create_adapter_tables(con: duckdb.DuckDBPyConnection, ddls: list[str]) -> None:
    """Creates protocol adapters' raw tables where missing (`ddls`: their CREATE TABLE IF NOT EXISTS), as every writer
    leaves them: the latest-only ones without their primary key, a new events table with its ledger entry
    (chainrisk.store.ledger). In the caller's transaction."""
    for ddl in ddls:
        con.execute(ddl)
    drop_latest_keys(con)
    ledger.ensure(con)


def rebuild_without_key(con: duckdb.DuckDBPyConnection, table: str, order_by: str | None = None) -> list[str] | None:
    """Rebuilds a main-schema table that has a PRIMARY KEY (and no other constraint but NOT NULL) without it, its key
    recorded in table_keys and its key columns NOT NULL as before, the rows in `order_by` order when given; returns the
    key, or None when there was nothing to rebuild (no key, or other constraints). In the caller's transaction."""
    con.execute(DDL)
    constraints = _constraints(con).get(table, [])
    if [kind for kind, _ in constraints] != ["PRIMARY KEY"]:
        return None
    key = constraints[0][1]
    _rebuild(con, table, key, _columns(con, [table])[table], order_by)
    return key


def _constraints(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, list[str]]]]:
    """(kind, columns) of each main-schema table's constraints but NOT NULL."""
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for table, kind, names in con.execute(
        "SELECT table_name, constraint_type, constraint_column_names FROM duckdb_constraints() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND constraint_type <> 'NOT NULL'"
    ).fetchall():
        found.setdefault(str(table), []).append((str(kind), [str(c) for c in names]))
    return found


def _columns(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """(name, type, nullable, default) of each main-schema table's columns, in order."""
    found: dict[str, list[tuple[Any, ...]]] = {t: [] for t in tables}
    if tables:
        for row in con.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' AND list_contains(?, table_name) "
            "ORDER BY table_name, column_index",
            [tables],
        ).fetchall():
            found[str(row[0])].append(tuple(row[1:]))
    return found


def _rebuild(
    con: duckdb.DuckDBPyConnection, table: str, key: list[str], columns: list[tuple[Any, ...]], order_by: str | None
) -> None:
    definitions = ", ".join(
        f"{_quote(str(name))} {kind}"
        + ("" if nullable and name not in key else " NOT NULL")
        + (f" DEFAULT {default}" if default is not None else "")
        for name, kind, nullable, default in columns
    )
    staged = f"{table}__without_key"
    con.execute(f"CREATE TABLE {_quote(staged)} ({definitions})")
    order = f" ORDER BY {order_by}" if order_by else ""
    con.execute(f"INSERT INTO {_quote(staged)} SELECT * FROM {_quote(table)}{order}")
    con.execute(f"DROP TABLE {_quote(table)}")
    con.execute(f"ALTER TABLE {_quote(staged)} RENAME TO {_quote(table)}")
    con.execute(f"INSERT OR REPLACE INTO {KEYS_TABLE} VALUES (?, ?)", [table, key])
