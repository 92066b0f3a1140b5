"""A database written by schema version 1 (Aave only) opens under the current version with nothing lost."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from chainrisk.errors import UserError
from chainrisk.store.db import Store
from chainrisk.store.schema import SCHEMA_VERSION

V1 = Path(__file__).parent / "data" / "schema_v1.sql"
WALLET = "0x" + "ab" * 20
POOL = "0x" + "cd" * 20
WETH = "0x" + "ee" * 20


def _v1_database(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(V1.read_text())
        con.execute("INSERT INTO schema_version VALUES (1)")
        con.execute(
            "INSERT INTO positions VALUES ('aave-v3', 1, ?, ?, ?, 'WETH', 100, 1700000000, 18, "
            "3000000000000000000, 3000000000000000000, 0, true, false, 200000000000, 2000.0, 6000.0, 6000.0, 0.0, "
            "8000, 8250, 10500, 0)",
            [POOL, WALLET, WETH],
        )
        con.execute(
            "INSERT INTO wallet_health VALUES ('aave-v3', 1, ?, ?, 100, 1700000000, 6000.0, 0.0, NULL, NULL, "
            "600000000000, 0, 480000000000, 8250, 8000, 0)",
            [POOL, WALLET],
        )


def test_version_1_file_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    _v1_database(db)
    with Store(db) as store:
        positions = store.query("SELECT * FROM positions")
        version = store.query("SELECT version FROM schema_version")
        health = store.query("SELECT source FROM wallet_health")
    assert version["version"].to_list() == [SCHEMA_VERSION]
    row = positions.row(0, named=True)
    assert (row["wallet"], row["collateral_amount"], row["price"]) == (WALLET, 3 * 10**18, 200_000_000_000)
    assert row["source"] == POOL and health["source"].to_list() == [POOL]
    assert row["price_scale"] == 10**18
    assert row["collateral_base"] == 3 * 10**18 * 200_000_000_000 // 10**18
    assert row["liquidation_threshold_wad"] == 8250 * 10**14
    assert row["health_rule"] == "average-threshold" and row["close_factor"] == 0.5
    assert row["base_currency_usd"] == pytest.approx(1e-8)
    # Reopening is a no-op; the upgraded file accepts the new tables' writes.
    with Store(db) as store:
        assert store.query("SELECT count(*) AS n FROM positions")["n"][0] == 1
    # The file as version 1 left it is kept beside the upgraded one.
    with duckdb.connect(str(db.with_name("old.duckdb.schema-v1.bak")), read_only=True) as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
        assert con.execute("SELECT count(*) FROM positions").fetchall() == [(1,)]


def test_version_2_file_gains_the_job_tables_and_keeps_its_history(tmp_path: Path) -> None:
    """Version 3 added scored_markets, runs and the alert tables; a version 2 file (two snapshots) keeps both."""
    db = tmp_path / "v2.duckdb"
    _v1_database(db)
    with Store(db) as store:  # now the current version: make it a version 2 file again
        store.con.execute("INSERT INTO positions SELECT * REPLACE (200 AS block_number) FROM positions")
        for table in ("scored_markets", "runs", "alert_state", "alert_events"):
            store.con.execute(f"DROP TABLE {table}")
        store.con.execute("UPDATE schema_version SET version = 2")
    with Store(db) as store:
        tables = set(store.query("SELECT table_name FROM information_schema.tables")["table_name"].to_list())
        blocks = store.query("SELECT DISTINCT block_number FROM positions ORDER BY 1")["block_number"].to_list()
        version = store.query("SELECT version FROM schema_version")["version"].to_list()
    assert {"scored_markets", "runs", "alert_state", "alert_events"} <= tables
    assert blocks == [100, 200] and version == [SCHEMA_VERSION]
    assert db.with_name("v2.duckdb.schema-v2.bak").is_file()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION + 1])
    with pytest.raises(UserError, match="newer chainrisk"):
        Store(db)
