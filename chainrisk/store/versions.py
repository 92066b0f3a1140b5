"""Raw state stored by change: every adapter's raw snapshot table `T` holds each indexed source's latest snapshot, and
`history.T` every value a row key held, from the block it was first read at (`block_number`) to the block it was
replaced or gone at (`valid_to_block`, NULL while current). A snapshot that changes nothing adds no row, and
`as_of` gives back any snapshotted block's rows exactly as they were written then.

Reads and writes history.<raw table>; reads duckdb_constraints() for each table's key. SQL on a connection the
caller holds a transaction on.
"""

from __future__ import annotations

import duckdb
import polars as pl

from chainrisk.errors import UserError
from chainrisk.store import ledger
from chainrisk.store.latest import declared_key
from chainrisk.store.schema.history import HISTORY_SCHEMA

#: Columns that name the snapshot rather than the state: not compared, and set to the asked block by as_of.
SNAPSHOT_COLUMNS = ("block_number", "block_timestamp")
VALID_TO = "valid_to_block"
FIRST_BLOCK = "version_block"


def _columns(con: duckdb.DuckDBPyConnection, table: str, schema: str = "main") -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
        [schema, table],
    ).fetchall()
    return [str(r[0]) for r in rows]


def key_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The raw table's primary key without block_number: what identifies one piece of state across snapshots."""
    rows = con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() WHERE schema_name = 'main' AND table_name = ? "
        "AND constraint_type = 'PRIMARY KEY'",
        [table],
    ).fetchall()
    if not rows:
        declared = declared_key(con, table)  # a latest-only table kept without its index (chainrisk.store.latest)
        if declared is not None:
            return [c for c in declared if c not in SNAPSHOT_COLUMNS]
        raise ValueError(f"{table} has no primary key; a raw snapshot table needs one to be stored by change")
    return [str(c) for c in rows[0][0] if c not in SNAPSHOT_COLUMNS]


def ensure_history(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """history.<table> with the raw table's columns and valid_to_block; columns an adapter added since are added.
    A new table's ledger is set (empty), and set again from the table when a column is added (every row's hash
    changes with it)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {HISTORY_SCHEMA}")
    changed = not _columns(con, table, HISTORY_SCHEMA)  # created now
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {HISTORY_SCHEMA}.{table} AS SELECT *, NULL::BIGINT AS {VALID_TO} "
        f"FROM main.{table} LIMIT 0"
    )
    have = set(_columns(con, table, HISTORY_SCHEMA))
    types = dict(ledger.column_types(con, f"main.{table}"))
    for column in _columns(con, table):
        if column not in have:
            con.execute(f'ALTER TABLE {HISTORY_SCHEMA}.{table} ADD COLUMN "{column}" {types[column]}')
            changed = True
    if changed:
        ledger.rebuild(con, f"{HISTORY_SCHEMA}.{table}")


def _same(left: str, right: str, columns: list[str]) -> str:
    return " AND ".join(f'{left}."{c}" IS NOT DISTINCT FROM {right}."{c}"' for c in columns)


def record_versions(
    con: duckdb.DuckDBPyConnection, table: str, chain_id: int, source: str, block: int, incoming: str
) -> int:
    """Records the snapshot at `block` of one source (`market` = source) held by the registered relation `incoming`:
    versions from `block` on are dropped first (a snapshot taken again), then rows whose values are new open a
    version and current ones no longer read are closed at `block`. Returns the versions added."""
    ensure_history(con, table)
    history = f"{HISTORY_SCHEMA}.{table}"
    columns = _columns(con, table)
    values = [c for c in columns if c not in SNAPSHOT_COLUMNS]
    where = "chain_id = $chain AND market = $source"
    params = {"chain": chain_id, "source": source, "block": block}
    current = f"SELECT * FROM {history} WHERE {where} AND {VALID_TO} IS NULL"
    # Nothing to record (most snapshots of most sources): no version at or after `block` to drop or reopen, and the
    # snapshot's rows are the current versions' values. Counts and order-free hashes tell most changed snapshots
    # apart in one scan of each side; equal ones are confirmed by the anti-joins both ways (a hash collision cannot
    # pass for unchanged). This spares the dozen statements below, which would change nothing (~45 ms a table: 0.85 s
    # of a devnet run's 19 raw tables).
    listed = ", ".join(f'"{c}"' for c in values)
    figures = f"row(count(*), coalesce(sum(hash({listed})::HUGEINT), 0))"
    candidate = con.execute(
        f"SELECT NOT EXISTS (SELECT 1 FROM {history} WHERE {where} AND (block_number >= $block "
        f"OR {VALID_TO} >= $block)) AND (SELECT {figures} FROM {incoming}) = (SELECT {figures} FROM ({current}))",
        params,
    ).fetchall()[0][0]
    if candidate:
        differing = con.execute(
            f"SELECT EXISTS (SELECT 1 FROM {incoming} i ANTI JOIN ({current}) h ON {_same('h', 'i', values)}) "
            f"OR EXISTS (SELECT 1 FROM ({current}) h ANTI JOIN {incoming} i ON {_same('h', 'i', values)})",
            {"chain": chain_id, "source": source},
        ).fetchall()[0][0]
        if not differing:
            return 0
    retaken = f"SELECT * FROM {history} WHERE {where} AND block_number >= $block"
    ledger.subtract(con, history, retaken, params)
    con.execute(f"DELETE FROM {history} WHERE {where} AND block_number >= $block", params)
    reopened = f"SELECT * FROM {history} WHERE {where} AND {VALID_TO} >= $block"
    ledger.revise(con, history, reopened, {VALID_TO: "NULL"}, params)
    con.execute(f"UPDATE {history} SET {VALID_TO} = NULL WHERE {where} AND {VALID_TO} >= $block", params)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE new_versions AS SELECT i.* FROM {incoming} i "
        f"ANTI JOIN ({current}) h ON {_same('h', 'i', values)}",
        {"chain": chain_id, "source": source},
    )
    gone = (
        f"h.chain_id = $chain AND h.market = $source AND h.{VALID_TO} IS NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {incoming} i WHERE {_same('h', 'i', values)})"
    )
    ledger.revise(con, history, f"SELECT h.* FROM {history} h WHERE {gone}", {VALID_TO: "$block"}, params)
    con.execute(f"UPDATE {history} h SET {VALID_TO} = $block WHERE {gone}", params)
    con.execute(f"INSERT INTO {history} BY NAME SELECT * FROM new_versions")
    # The rows just inserted, as the table holds them (the columns the new versions lack NULL: valid_to_block).
    have = {str(d[0]) for d in con.execute("SELECT * FROM new_versions LIMIT 0").description or []}
    inserted = ", ".join(f'"{c}"' if c in have else f'NULL AS "{c}"' for c in _columns(con, table, HISTORY_SCHEMA))
    ledger.add(con, history, f"SELECT {inserted} FROM new_versions")
    added = int(con.execute("SELECT count(*) FROM new_versions").fetchall()[0][0])
    con.execute("DROP TABLE new_versions")
    return added


def has_history(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether history.<table> exists (a raw table some snapshot has written since versions began)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", [HISTORY_SCHEMA, table]
    ).fetchall()
    return bool(found[0][0])


def rewind_versions(con: duckdb.DuckDBPyConnection, table: str, chain_id: int, source: str, keep_through: int) -> None:
    """Forgets the versions read after `keep_through` (a reorg replaced those blocks)."""
    if not has_history(con, table):
        return
    history = f"{HISTORY_SCHEMA}.{table}"
    params = [chain_id, source, keep_through]
    dropped = f"{history} WHERE chain_id = ? AND market = ? AND block_number > ?"
    ledger.subtract(con, history, f"SELECT * FROM {dropped}", params)  # chainrisk.store.ledger
    con.execute(f"DELETE FROM {dropped}", params)
    reopened = f"{history} WHERE chain_id = ? AND market = ? AND {VALID_TO} > ?"
    ledger.revise(con, history, f"SELECT * FROM {reopened}", {VALID_TO: "NULL"}, params)
    con.execute(f"UPDATE {history} SET {VALID_TO} = NULL WHERE chain_id = ? AND market = ? AND {VALID_TO} > ?", params)


def as_of(
    con: duckdb.DuckDBPyConnection, table: str, chain_id: int, source: str, block: int, *, first_blocks: bool = False
) -> pl.DataFrame:
    """The raw table's rows of `source` as the snapshot at `block` wrote them (block_number, and block_timestamp
    where the table has one, set to that snapshot's), in key order; with `first_blocks`, each row's version's first
    block too (`version_block`: where its accrued columns were read; chainrisk.store.db.Store.raw_as_of). UserError
    when `block` was never snapshotted."""
    snapshot = con.execute(
        "SELECT block_timestamp FROM snapshot_blocks WHERE chain_id = ? AND source = ? AND block_number = ?",
        [chain_id, source, block],
    ).fetchall()
    if not snapshot:
        raise UserError(f"no snapshot of {source} at block {block} on chain {chain_id} is stored")
    columns = _columns(con, table)
    if not _columns(con, table, HISTORY_SCHEMA):  # never written since versions began: it held nothing
        empty = pl.from_arrow(con.sql(f"SELECT * FROM main.{table} LIMIT 0").to_arrow_table())
        assert isinstance(empty, pl.DataFrame)
        return empty
    replace = [f"{block}::BIGINT AS block_number"]
    if "block_timestamp" in columns:
        replace.append(f"{int(snapshot[0][0])}::BIGINT AS block_timestamp")
    keys = ", ".join(f'"{c}"' for c in key_columns(con, table))
    selected = ", ".join([*(f'"{c}"' for c in columns), *([FIRST_BLOCK] if first_blocks else [])])
    sql = (
        f"SELECT {selected} FROM (SELECT * REPLACE ({', '.join(replace)}), block_number AS {FIRST_BLOCK} "
        f"FROM {HISTORY_SCHEMA}.{table} "
        f"WHERE chain_id = ? AND market = ? AND block_number <= ? AND ({VALID_TO} IS NULL OR {VALID_TO} > ?)) "
        f"ORDER BY {keys}"
    )
    frame = pl.from_arrow(con.sql(sql, params=[chain_id, source, block, block]).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame
