"""Latest-only tables without their primary-key index (chainrisk.store.latest) and the stamp-only rewrite of an
unchanged snapshot (Store._replace_rows)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from chainrisk.protocols.adapter import adapters
from chainrisk.store import db
from chainrisk.store.db import Store
from chainrisk.store.latest import DERIVED_LATEST, declared_key
from chainrisk.store.versions import key_columns


def _constraints(store: Store, table: str) -> list[str]:
    rows = store.con.execute(
        "SELECT constraint_type FROM duckdb_constraints() WHERE table_name = ? AND constraint_type <> 'NOT NULL'",
        [table],
    ).fetchall()
    return [str(r[0]) for r in rows]


def test_latest_tables_lose_their_index_and_keep_their_key(tmp_path: Path) -> None:
    with Store(tmp_path / "c.duckdb") as store:
        store.ensure_tables(adapters()["aave-v3"].ddl)  # as indexing the protocol first does
        for table in ("wallet_risk", "positions", "raw_aave_v3_balances"):
            assert _constraints(store, table) == [], table
        assert declared_key(store.con, "wallet_risk") == ["protocol", "chain_id", "market", "block_number", "wallet"]
        # The raw versions still know each raw table's key (without the snapshot's block).
        assert "block_number" not in key_columns(store.con, "raw_aave_v3_balances")
        assert key_columns(store.con, "raw_aave_v3_balances")[:2] == ["chain_id", "market"]
        # Tables that accumulate keep theirs; the health history has none (its index was most of its bytes).
        for table in ("snapshot_blocks", "sync_state", "raw_aave_v3_events"):
            assert _constraints(store, table) == ["PRIMARY KEY"], table
        assert _constraints(store, "wallet_health_history") == []
        nullable = store.con.execute(
            "SELECT is_nullable FROM duckdb_columns() WHERE table_name = 'wallet_risk' AND column_name = 'wallet'"
        ).fetchall()
        assert nullable == [(False,)]
        keys = {str(r[0]) for r in store.con.execute("SELECT table_name FROM table_keys").fetchall()}
        assert {"wallet_risk", "positions", "liquidation_curve", "raw_aave_v3_balances"} <= keys
        for table in DERIVED_LATEST:
            assert "PRIMARY KEY" not in _constraints(store, table), table
    with Store(tmp_path / "c.duckdb") as store:  # a second open changes nothing
        assert _constraints(store, "wallet_risk") == []


def test_an_unchanged_snapshot_only_moves_its_stamp(tmp_path: Path) -> None:
    with Store(tmp_path / "c.duckdb") as store:
        store.con.execute(
            "CREATE TABLE toy (chain_id BIGINT, wallet VARCHAR, amount HUGEINT, price DOUBLE, n BIGINT, "
            "block_number BIGINT)"
        )
        # Columns of other types than the table's (Int128 travels as a decimal, Int32 into BIGINT) and a NULL: the
        # rows are still found unchanged.
        frame = pl.DataFrame(
            {
                "chain_id": [1, 1],
                "wallet": ["a", "b"],
                "amount": [10**30, 5],
                "price": [0.1, None],
                "n": [3, None],
                "block_number": [7, 7],
            },
            schema={
                "chain_id": pl.Int64,
                "wallet": pl.Utf8,
                "amount": pl.Int128,
                "price": pl.Float64,
                "n": pl.Int32,
                "block_number": pl.Int64,
            },
        )
        store._replace_rows("toy", "chain_id = ?", [1], frame)
        row_ids = store.con.execute("SELECT rowid FROM toy ORDER BY wallet").fetchall()
        store._replace_rows("toy", "chain_id = ?", [1], frame.with_columns(pl.lit(8).alias("block_number")))
        # Updated in place (the same rows), stamped with the new block.
        assert store.con.execute("SELECT rowid FROM toy ORDER BY wallet").fetchall() == row_ids
        assert store.con.execute("SELECT wallet, amount, block_number FROM toy ORDER BY wallet").fetchall() == [
            ("a", 10**30, 8),
            ("b", 5, 8),
        ]
        changed = frame.with_columns(pl.Series("amount", [10**30, 6], pl.Int128), pl.lit(9).alias("block_number"))
        store._replace_rows("toy", "chain_id = ?", [1], changed)
        assert store.con.execute("SELECT wallet, amount, block_number FROM toy ORDER BY wallet").fetchall() == [
            ("a", 10**30, 9),
            ("b", 6, 9),
        ]
        store._replace_rows("toy", "chain_id = ?", [1], changed.head(1))  # a row gone: replaced, not re-stamped
        assert store.con.execute("SELECT count(*) FROM toy").fetchall() == [(1,)]


def _statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement Store opens run from now on (duckdb connections are wrapped to record them)."""
    seen: list[str] = []
    real = duckdb.connect

    class Recording:
        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self._con = con

        def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
            seen.append(sql)
            return self._con.execute(sql, *args)

        def __getattr__(self, name: str) -> object:
            return getattr(self._con, name)

    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: Recording(real(*a, **k)))
    return seen


def test_an_open_makes_the_file_whole_only_when_its_tables_or_the_code_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schema mark (schema_version's comment) lets an open of a file this code made whole skip the DDL; a table or
    view dropped or added by hand, or another DDL, makes the next open make it whole again."""
    path = tmp_path / "c.duckdb"
    with Store(path) as store:
        store.ensure_tables(adapters()["aave-v3"].ddl)  # a table created after the open: the next one looks again
    seen = _statements(monkeypatch)
    with Store(path):
        pass
    assert any(sql.startswith("COMMENT ON TABLE schema_version") for sql in seen)
    seen.clear()
    with Store(path):
        pass
    assert not [sql for sql in seen if "CREATE TABLE" in sql or sql.startswith("COMMENT")], seen
    # A view or a table dropped by hand comes back; one of the user's own stays, and so does the mark after.
    by_hand = duckdb.connect(str(path))
    by_hand.execute("DROP VIEW wallet_health_history")  # a view the DDL creates, alone
    by_hand.close()
    with Store(path) as store:
        views = "SELECT count(*) FROM duckdb_views() WHERE view_name = 'wallet_health_history'"
        assert store.con.execute(views).fetchall() == [(1,)]
    by_hand = duckdb.connect(str(path))
    by_hand.execute("DROP TABLE runs")
    by_hand.execute("CREATE TABLE my_notes (note VARCHAR)")
    by_hand.close()
    with Store(path) as store:
        tables = {str(r[0]) for r in store.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert {"runs", "my_notes"} <= tables
    seen.clear()
    with Store(path):
        pass
    assert not [sql for sql in seen if "CREATE TABLE" in sql], seen
    # Code whose DDL differs (another digest) makes the file whole once.
    monkeypatch.setattr(db, "_SCHEMA_DIGEST", "another-ddl")
    seen.clear()
    with Store(path):
        pass
    assert any(sql.startswith("COMMENT ON TABLE schema_version") for sql in seen)
