"""Schema 9's upgrade of a version 8 file, nothing of its history lost: every stored score (wallet_risk at every block)
and credit health sample (health_history) folded into wallet_health_history; every raw snapshot replayed in block
order into the raw tables' versions; snapshot_blocks filled from the stored snapshots; then the snapshot, score and
chain tables cut to their latest snapshot. Schema 10's: wallet_health_history rebuilt without its primary-key index,
every bucket kept. Schema 11's: its rows split into numbered keys and buckets keyed by the number, every bucket
kept. Reads and writes every table of the file, in the caller's transaction."""

from __future__ import annotations

import duckdb

from chainrisk.store.history import HEALTH_KEY, KEY, SAMPLE_COLUMNS, HistorySettings, frame_of, record_samples
from chainrisk.store.latest import rebuild_without_key
from chainrisk.store.schema.chains import CHAIN_TABLES
from chainrisk.store.schema.core import CONTRACT_TABLES
from chainrisk.store.schema.history import ENCODE, HISTORY_VIEW_DDL
from chainrisk.store.schema.scores import SCORE_TABLES
from chainrisk.store.versions import ensure_history, record_versions


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        str(r[0]) for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
    }


def raw_snapshot_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Adapters' raw tables that hold snapshots (a block_number, no log_index: not an events table)."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_columns() WHERE schema_name = 'main' AND table_name LIKE 'raw\\_%' ESCAPE '\\' "
        "GROUP BY table_name HAVING bool_or(column_name = 'block_number') AND NOT bool_or(column_name = 'log_index') "
        "ORDER BY table_name"
    ).fetchall()
    return [str(r[0]) for r in rows]


def _keep_latest(con: duckdb.DuckDBPyConnection, table: str, group: list[str]) -> None:
    """Deletes every row of `table` but those of the newest block of each `group`."""
    keys = ", ".join(group)
    con.execute(
        f"DELETE FROM {table} WHERE ({keys}, block_number) NOT IN "
        f"(SELECT ({keys}, max(block_number)) FROM {table} GROUP BY {keys})"
    )


def migrate_to_9(con: duckdb.DuckDBPyConnection, history: HistorySettings | None = None) -> None:
    """Upgrades a version 8 file's contents in place (see the module docstring); its tables exist already."""
    settings = history or HistorySettings()
    tables = _tables(con)
    scores = frame_of(con, f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM wallet_risk ORDER BY block_number")
    record_samples(con, scores, settings)
    if "health_history" in tables:
        credit = [c for c in SAMPLE_COLUMNS if c not in ("health_factor_wad", "bad_debt_usd")]
        frame = frame_of(con, f"SELECT {', '.join(credit)} FROM health_history ORDER BY block_number")
        record_samples(con, frame, settings)
        con.execute("DROP TABLE health_history")
    con.execute(
        "INSERT INTO snapshot_blocks SELECT p.protocol, p.chain_id, p.source, p.block_number, "
        "coalesce(any_value(s.snapshot_block_hash) FILTER (s.snapshot_block = p.block_number), ''), "
        "any_value(p.block_timestamp) FROM (SELECT protocol, chain_id, source, block_number, block_timestamp "
        "FROM positions UNION SELECT protocol, chain_id, source, block_number, block_timestamp FROM wallet_health) p "
        "LEFT JOIN sync_state s ON s.protocol = p.protocol AND s.chain_id = p.chain_id AND s.market = p.source "
        "WHERE p.source IS NOT NULL GROUP BY ALL ON CONFLICT DO NOTHING"
    )
    for table in raw_snapshot_tables(con):
        ensure_history(con, table)  # a table no snapshot wrote a row to has its (empty) versions too
        snapshots = con.execute(
            f"SELECT DISTINCT chain_id, market, block_number FROM {table} ORDER BY chain_id, market, block_number"
        ).fetchall()
        for chain_id, market, block in snapshots:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE snapshot_typed AS SELECT * FROM {table} "
                "WHERE chain_id = ? AND market = ? AND block_number = ?",
                [chain_id, market, block],
            )
            record_versions(con, table, int(chain_id), str(market), int(block), "snapshot_typed")
        con.execute("DROP TABLE IF EXISTS snapshot_typed")
        _keep_latest(con, table, ["chain_id", "market"])
    for table in CONTRACT_TABLES:
        _keep_latest(con, table, ["protocol", "chain_id", "coalesce(source, market)"])
    for table in SCORE_TABLES:
        if table != "scored_markets":
            _keep_latest(con, table, ["protocol", "chain_id", "market"])
    _keep_latest(con, "liquidation_curve", ["chain_id", "market"])
    for table in CHAIN_TABLES:
        _keep_latest(con, table, ["chain_id"])


def migrate_to_10(con: duckdb.DuckDBPyConnection) -> None:
    """Upgrades a version 9 file: wallet_health_history without its PRIMARY KEY (its ART index was most of a bucket's
    bytes, chainrisk.store.schema.history), the buckets rewritten in time order as runs append them. A file whose
    table has no key already (created by version 10's DDL during this upgrade) is left as it is, and so is a file
    whose wallet_health_history is version 11's view (a version 8 file: its history went into version 11's tables)."""
    if _health_history_is_table(con):
        rebuild_without_key(con, "wallet_health_history", order_by=", ".join(("bucket_start", *KEY[:-1])))


def _health_history_is_table(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_name = 'wallet_health_history'"
    ).fetchall()
    return bool(row) and row[0][0] == "BASE TABLE"


def migrate_to_11(con: duckdb.DuckDBPyConnection) -> None:
    """Upgrades a version 10 file: each key of wallet_health_history numbered in wallet_health_keys, its buckets
    moved into wallet_health_buckets under that number in the order they were stored (time order, finished days by
    key), the table dropped and wallet_health_history made the view over the two (same columns, same rows). The
    42-character wallet took ~23 of a bucket's bytes in time order (chainrisk.store.schema.history). A file whose
    wallet_health_history is already the view is left as it is."""
    if not _health_history_is_table(con):
        return
    key = ", ".join(HEALTH_KEY)
    con.execute(
        f"INSERT INTO wallet_health_keys SELECT (SELECT coalesce(max(key_id), 0) FROM wallet_health_keys) "
        f"+ row_number() OVER (ORDER BY {key}), {key} FROM (SELECT DISTINCT {key} FROM wallet_health_history "
        f"EXCEPT SELECT {key} FROM wallet_health_keys)"
    )
    con.execute(
        f"INSERT INTO wallet_health_buckets BY NAME SELECT * EXCLUDE (stored_at) FROM (SELECT {ENCODE} FROM "
        f"(SELECT k.key_id, h.* EXCLUDE (protocol, market, wallet) FROM (SELECT rowid AS stored_at, * "
        f"FROM wallet_health_history) h JOIN wallet_health_keys k USING ({key}))) ORDER BY stored_at"
    )
    con.execute("DROP TABLE wallet_health_history")
    con.execute(HISTORY_VIEW_DDL)
