"""A database written by schema version 1 (Aave only) opens under the current version with nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.errors import UserError
from chainrisk.store.db import Store
from chainrisk.store.history import HistorySettings, record_samples
from chainrisk.store.schema import SCHEMA_VERSION
from chainrisk.store.schema.scores import WALLET_USD_COLUMNS

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
    """Version 3 added scored_markets, runs and the alert tables; a version 2 file (two snapshots) keeps both
    as snapshot_blocks, its latest in positions."""
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
        snapshots = store.query("SELECT block_number FROM snapshot_blocks ORDER BY 1")["block_number"].to_list()
        version = store.query("SELECT version FROM schema_version")["version"].to_list()
    assert {"scored_markets", "runs", "alert_state", "alert_events"} <= tables
    # Schema 9 keeps the latest snapshot of derived tables; the record of both snapshots stays.
    assert blocks == [200] and snapshots == [100, 200] and version == [SCHEMA_VERSION]
    assert db.with_name("v2.duckdb.schema-v2.bak").is_file()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION + 1])
    with pytest.raises(UserError, match="newer chainrisk"):
        Store(db)


V8 = Path(__file__).parent / "data" / "schema_v8.sql"
OTHER = "0x" + "ba" * 20
HOUR_START = 1_700_002_800  # a whole hour: blocks 100 and 200 fall in it, the credit sample (block 50) a day before


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, object]]) -> None:
    con.register("rows", pl.DataFrame(rows))
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM rows")
    con.unregister("rows")


def _v8_database(path: Path) -> dict[int, pl.DataFrame]:
    """A version 8 file as that version left it after two runs (blocks 100 and 200) and one credit sample (block 50);
    returns the raw balances each snapshot wrote."""
    balances = {
        100: pl.DataFrame({"wallet": [WALLET, OTHER], "scaled_a_token": [10**18, 5 * 10**17]}),
        200: pl.DataFrame({"wallet": [WALLET], "scaled_a_token": [10**18]}),  # OTHER withdrew everything
    }
    with duckdb.connect(str(path)) as con:
        con.execute(V8.read_text())
        con.execute("INSERT INTO schema_version VALUES (8)")
        con.execute(
            "INSERT INTO sync_state VALUES ('aave-v3', 1, ?, 0, 200, '0x2', 200, '0x2', ?)", [POOL, HOUR_START + 99]
        )
        for block, health in ((100, 1.5), (200, 1.2)):
            ts = HOUR_START + block // 2
            common = {
                "protocol": "aave-v3",
                "chain_id": 1,
                "market": POOL,
                "wallet": WALLET,
                "block_number": block,
                "block_timestamp": ts,
            }
            _insert(
                con,
                "positions",
                [
                    common
                    | {
                        "asset": WETH,
                        "symbol": "WETH",
                        "decimals": 18,
                        "supplied_amount": 3 * 10**18,
                        "collateral_amount": 3 * 10**18,
                        "debt_amount": 0,
                        "used_as_collateral": True,
                        "is_borrowing": False,
                        "price": 2 * 10**11,
                        "ltv_bps": 8000,
                        "liquidation_threshold_bps": 8250,
                        "liquidation_bonus_bps": 10500,
                        "emode_category": 0,
                        "source": POOL,
                    }
                ],
            )
            _insert(
                con,
                "wallet_health",
                [
                    common
                    | {
                        "total_collateral_base": 6 * 10**11,
                        "total_debt_base": 4 * 10**11,
                        "available_borrows_base": 0,
                        "liquidation_threshold_bps": 8250,
                        "ltv_bps": 8000,
                        "emode_category": 0,
                        "source": POOL,
                        "health_factor": health,
                    }
                ],
            )
            _insert(
                con,
                "wallet_risk",
                [
                    common
                    | {
                        "collateral_usd": 6000.0,
                        "debt_usd": 4000.0,
                        "health_factor": health,
                        "borrowing_power_usd": 800.0,
                        "liquidatable": False,
                        "close_factor": 0.5,
                        "liquidatable_debt_usd": 0.0,
                        "seizable_collateral_usd": 0.0,
                        "bad_debt_usd": 0.0,
                        "liquidation_threshold_bps": 8250,
                        "ltv_bps": 8000,
                    }
                ],
            )
            raw = balances[block].with_columns(
                pl.lit(1, pl.Int64).alias("chain_id"),
                pl.lit(POOL).alias("market"),
                pl.lit(block, pl.Int64).alias("block_number"),
                pl.lit(WETH).alias("asset"),
                pl.lit(0).alias("scaled_variable_debt"),
                pl.lit(0).alias("stable_debt"),
            )
            _insert(con, "raw_aave_v3_balances", raw.to_dicts())
        _insert(
            con,
            "scored_markets",
            [
                {
                    "protocol": "aave-v3",
                    "chain_id": 1,
                    "market": POOL,
                    "source": POOL,
                    "block_number": 200,
                    "block_timestamp": HOUR_START + 100,
                    "wallets": 1,
                    "scored_at": datetime(2023, 11, 14, tzinfo=UTC),
                }
            ],
        )
        _insert(
            con,
            "health_history",
            [
                {
                    "protocol": "aave-v3",
                    "chain_id": 1,
                    "market": POOL,
                    "wallet": WALLET,
                    "block_number": 50,
                    "block_timestamp": HOUR_START - 86_400,
                    "collateral_usd": 6000.0,
                    "debt_usd": 2000.0,
                    "health_factor": 2.475,
                    "borrowing_power_usd": 2800.0,
                    "liquidation_threshold_bps": 8250,
                    "ltv_bps": 8000,
                    "liquidatable": False,
                }
            ],
        )
        stored = {}
        for block in balances:
            sql = f"SELECT * FROM raw_aave_v3_balances WHERE block_number = {block} ORDER BY wallet, asset"
            frame = pl.from_arrow(con.sql(sql).to_arrow_table())
            assert isinstance(frame, pl.DataFrame)
            stored[block] = frame
    return stored


def test_version_8_file_keeps_its_history_in_the_one_history(tmp_path: Path) -> None:
    """Schema 9: a version 8 file's scores and credit samples fold into wallet_health_history, its raw snapshots into
    versions that give each snapshot back exactly, and the snapshot and score tables keep their latest block."""
    db = tmp_path / "v8.duckdb"
    written = _v8_database(db)
    with Store(db) as store:
        history = store.query("SELECT * FROM wallet_health_history ORDER BY bucket_start")
        tables = set(store.query("SELECT table_name FROM duckdb_tables()")["table_name"].to_list())
        rebuilt = {block: store.raw_as_of("raw_aave_v3_balances", 1, POOL, block) for block in written}
        never_written = store.raw_as_of("raw_aave_v3_emode_categories", 1, POOL, 100)
        with pytest.raises(UserError, match="latest snapshot only"):  # predictions: no versions kept
            store.raw_as_of("raw_aave_v3_liquidations", 1, POOL, 100)
        latest = store.query("SELECT DISTINCT block_number FROM raw_aave_v3_balances")["block_number"].to_list()
        scored = store.query("SELECT DISTINCT block_number FROM wallet_risk")["block_number"].to_list()
        versions = store.query("SELECT count(*) AS n FROM history.raw_aave_v3_balances")["n"][0]
    assert "health_history" not in tables
    credit, runs = history.row(0, named=True), history.row(1, named=True)
    assert (credit["samples"], credit["last_block"], credit["health_factor"]) == (1, 50, 2.475)
    assert (runs["bucket_start"], runs["bucket_seconds"], runs["samples"]) == (HOUR_START, 3600, 2)
    assert (runs["first_block"], runs["last_block"], runs["health_factor"]) == (100, 200, 1.2)
    assert (runs["health_factor_min"], runs["health_factor_max"], runs["health_factor_min_block"]) == (1.2, 1.5, 200)
    for block, frame in written.items():
        assert_frame_equal(rebuilt[block], frame)
    assert versions == 2, "WALLET's unchanged balance is one version; OTHER's one, closed at block 200"
    assert latest == [200] and scored == [200]
    assert never_written.is_empty() and "liquidation_threshold" in never_written.columns


#: wallet_health_history as versions 9 (with the PRIMARY KEY) and 10 (without) wrote it.
HISTORY_TABLE_V10 = """
CREATE TABLE wallet_health_history (
    protocol VARCHAR NOT NULL, chain_id BIGINT NOT NULL, market VARCHAR NOT NULL, wallet VARCHAR NOT NULL,
    bucket_start BIGINT NOT NULL, bucket_seconds INTEGER NOT NULL, samples BIGINT NOT NULL, first_block BIGINT NOT NULL,
    first_timestamp BIGINT NOT NULL, last_block BIGINT NOT NULL, last_timestamp BIGINT NOT NULL, health_factor DOUBLE,
    health_factor_wad HUGEINT, health_factor_min DOUBLE, health_factor_min_block BIGINT, health_factor_max DOUBLE,
    collateral_usd DOUBLE, debt_usd DOUBLE, borrowing_power_usd DOUBLE, bad_debt_usd DOUBLE,
    liquidation_threshold_bps INTEGER, ltv_bps INTEGER, liquidatable BOOLEAN, liquidatable_samples BIGINT NOT NULL{key}
)"""


def _history_samples() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "protocol": "aave-v3",
            "chain_id": 1,
            "market": POOL,
            "wallet": [WALLET, OTHER, "0x" + "0f" * 20] * 20,
            "block_number": [100 + i for i in range(60)],
            "block_timestamp": [HOUR_START + i * 3000 for i in range(60)],  # two days: day and hour buckets
            "health_factor": [1.0 + i / 64 for i in range(60)],
            "health_factor_wad": pl.Series([10**18 + i for i in range(60)], dtype=pl.Int128),
            "collateral_usd": [100.0 + i for i in range(60)],
            "debt_usd": 50.0,
            "borrowing_power_usd": 10.0,
            "bad_debt_usd": 0.0,
            "liquidation_threshold_bps": 8250,
            "ltv_bps": 8000,
            "liquidatable": False,
        }
    )


def _old_history_file(db: Path, samples: pl.DataFrame, settings: HistorySettings, version: int) -> pl.DataFrame:
    """A version 9 or 10 file whose wallet_health_history table (with its PRIMARY KEY in 9) holds the buckets of
    `samples`, stored in the reverse of their order by key (so an upgrade that kept the stored order shows it);
    returns its rows as they were stored."""
    with Store(db) as store:
        record_samples(store.con, samples, settings)
        rows = store.query("SELECT * FROM wallet_health_history ORDER BY ALL DESC")
        store.con.execute("DROP VIEW wallet_health_history")
        store.con.execute("DROP TABLE wallet_health_buckets")
        store.con.execute("DROP TABLE wallet_health_keys")
        key = ", PRIMARY KEY (protocol, chain_id, market, wallet, bucket_start)" if version == 9 else ""
        store.con.execute(HISTORY_TABLE_V10.format(key=key))
        store.con.register("stored_rows", rows)
        store.con.execute("INSERT INTO wallet_health_history SELECT * FROM stored_rows")
        store.con.unregister("stored_rows")
        store.con.execute(f"UPDATE schema_version SET version = {version}")
        assert store.query("SELECT * FROM wallet_health_history").equals(rows)
    return rows


def _upgraded(db: Path, samples: pl.DataFrame, settings: HistorySettings) -> dict[str, object]:
    """What the upgraded file holds: its version, the history as stored (bucket order) and its columns, the stored
    tables' constraints and nullable columns, and the history after later samples were folded in."""
    with Store(db) as store:
        version = store.query("SELECT version FROM schema_version")["version"].to_list()
        stored = store.query(
            "SELECT h.* FROM wallet_health_buckets b JOIN wallet_health_keys k USING (key_id) "
            "JOIN wallet_health_history h ON (h.protocol, h.chain_id, h.market, h.wallet, h.bucket_start) = "
            "(k.protocol, k.chain_id, k.market, k.wallet, b.bucket_start) ORDER BY b.rowid"
        )
        columns = store.con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'wallet_health_history' "
            "ORDER BY column_index"
        ).fetchall()
        constraints = store.con.execute(
            "SELECT constraint_type FROM duckdb_constraints() WHERE table_name LIKE 'wallet_health_%' "
            "AND constraint_type <> 'NOT NULL'"
        ).fetchall()
        nullable = dict(
            store.con.execute(
                "SELECT column_name, is_nullable FROM duckdb_columns() "
                "WHERE table_name IN ('wallet_health_buckets', 'wallet_health_keys')"
            ).fetchall()
        )
        kind = store.con.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_name = 'wallet_health_history'"
        ).fetchall()
        last = samples.tail(3).with_columns(pl.col("block_number") + 1, pl.col("block_timestamp") + 60)
        record_samples(store.con, last, settings)
        folded = store.query(
            "SELECT count(*) AS n, count(DISTINCT (protocol, chain_id, market, wallet, bucket_start)) AS keys, "
            "sum(samples)::BIGINT AS samples FROM wallet_health_history"
        ).row(0, named=True)
    return {
        "version": version,
        "stored": stored,
        "columns": columns,
        "constraints": constraints,
        "nullable": nullable,
        "kind": kind,
        "folded": folded,
    }


def test_version_9_file_keeps_every_bucket_without_the_index(tmp_path: Path) -> None:
    """Schema 10: a version 9 file's wallet_health_history (with its PRIMARY KEY) is rebuilt without the index,
    every bucket kept as it was (then schema 11 numbers its keys); later samples still fold into one row per
    bucket."""
    db = tmp_path / "v9.duckdb"
    settings = HistorySettings(hourly_days=1)
    samples = _history_samples()
    before = _old_history_file(db, samples, settings, 9)
    assert {r["bucket_seconds"] for r in before.to_dicts()} == {3600, 86_400} and before.height > 4
    upgraded = _upgraded(db, samples, settings)
    assert upgraded["version"] == [SCHEMA_VERSION] and upgraded["constraints"] == []
    stored = upgraded["stored"]
    assert isinstance(stored, pl.DataFrame)
    assert_frame_equal(stored.sort(pl.all()), before.sort(pl.all()))
    nullable = upgraded["nullable"]
    assert isinstance(nullable, dict)
    assert not nullable["wallet"] and not nullable["key_id"] and not nullable["samples"] and nullable["health_factor"]
    assert upgraded["folded"] == {"n": before.height, "keys": before.height, "samples": 63}
    with duckdb.connect(str(db.with_name("v9.duckdb.schema-v9.bak")), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM wallet_health_history").fetchall() == [(before.height,)]


def test_version_10_file_keeps_every_bucket_under_an_integer_key(tmp_path: Path) -> None:
    """Schema 11: a version 10 file's wallet_health_history table becomes wallet_health_keys (one number per
    protocol, chain, market and wallet) and wallet_health_buckets keyed by it, and wallet_health_history the view
    over them: every bucket and every figure as it was, the same columns and types, the buckets in the order the
    file stored them; later samples still fold into one row per bucket."""
    db = tmp_path / "v10.duckdb"
    settings = HistorySettings(hourly_days=1)
    samples = _history_samples()
    before = _old_history_file(db, samples, settings, 10)
    with duckdb.connect(str(db), read_only=True) as con:
        old_columns = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'wallet_health_history' "
            "ORDER BY column_index"
        ).fetchall()
    upgraded = _upgraded(db, samples, settings)
    assert upgraded["version"] == [SCHEMA_VERSION] == [20]
    assert upgraded["kind"] == [("VIEW",)]
    assert upgraded["columns"] == old_columns
    stored = upgraded["stored"]
    assert isinstance(stored, pl.DataFrame)
    assert_frame_equal(stored, before)  # every bucket, every figure, in the stored order
    assert upgraded["constraints"] == []
    assert upgraded["folded"] == {"n": before.height, "keys": before.height, "samples": 63}
    with duckdb.connect(str(db), read_only=True) as con:
        keys = con.execute(
            "SELECT count(*), count(DISTINCT key_id), count(DISTINCT (protocol, chain_id, market, wallet)) "
            "FROM wallet_health_keys"
        ).fetchall()
    assert keys == [(3, 3, 3)]
    with duckdb.connect(str(db.with_name("v10.duckdb.schema-v10.bak")), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM wallet_health_history").fetchall() == [(before.height,)]


def _migrated_positions(
    tmp_path: Path, version: int, new_column: str, rows: list[tuple[str, str, str, bool]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A file of schema `version` (without `new_column`) holding one position per (protocol, market, asset,
    borrowing), 1e18 of collateral or of debt: its positions before, and after the Store migrates it to today's."""
    db = tmp_path / f"v{version}.duckdb"
    Store(db).close()
    with duckdb.connect(str(db)) as con:
        con.execute(f"ALTER TABLE positions DROP COLUMN {new_column}")
        con.execute(f"UPDATE schema_version SET version = {version}")
        _insert_positions(con, rows)
        before = con.sql("SELECT * FROM positions ORDER BY ALL").pl()
    with Store(db) as store:
        after = store.query("SELECT * FROM positions ORDER BY protocol, market, asset")
        assert store.query("SELECT version FROM schema_version")["version"].to_list() == [SCHEMA_VERSION] == [20]
    return before, after


def _insert_positions(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str, str, bool]]) -> None:
    """One position row per (protocol, market, asset, borrowing): 1e18 of collateral or of debt, the rest zero."""
    for protocol, market, asset, borrowing in rows:
        amounts = (0, 10**18) if borrowing else (10**18, 0)
        con.execute(
            "INSERT INTO positions (protocol, chain_id, market, wallet, asset, block_number, block_timestamp, "
            "supplied_amount, collateral_amount, debt_amount, used_as_collateral, is_borrowing, price, ltv_bps, "
            "liquidation_threshold_bps, liquidation_bonus_bps, emode_category) "
            "VALUES (?, 1, ?, ?, ?, 100, 1700000000, 0, ?, ?, ?, ?, 100000000, 0, 0, 10000, 0)",
            [protocol, market, WALLET, asset, *amounts, not borrowing, borrowing],
        )


def test_version_13_file_marks_the_prices_its_protocols_fix(tmp_path: Path) -> None:
    """Schema 14 adds positions.price_fixed: the stored debt rows of Maker/Sky (dai at par) and Liquity (LUSD at one
    dollar) are marked, their collateral rows and every other protocol's rows are not; nothing else changes."""
    rows = [
        ("maker", "ETH-A", WETH, False),
        ("maker", "ETH-A", "0xdai", True),
        ("liquity-v1", POOL, "0xeth", False),
        ("liquity-v1", POOL, "0xlusd", True),
        ("aave-v3", POOL, "0xdai", True),
    ]
    before, after = _migrated_positions(tmp_path, 13, "price_fixed", rows)
    marked = {(r["protocol"], r["asset"]): r["price_fixed"] for r in after.iter_rows(named=True)}
    assert marked == {
        ("maker", WETH): False,
        ("maker", "0xdai"): True,
        ("liquity-v1", "0xeth"): False,
        ("liquity-v1", "0xlusd"): True,
        ("aave-v3", "0xdai"): None,
    }
    # Schema 16 gives the Maker rows their recovery (the next test); the rest is as it was.
    recovery = "liquidation_recovery_wad"
    assert_frame_equal(after.drop("price_fixed", recovery).sort(pl.all()), before.drop(recovery).sort(pl.all()))


def test_version_14_file_counts_the_holders_liquidatable_already(tmp_path: Path) -> None:
    """Schema 15 adds liquidation_distance.liquidatable_now: earlier runs' rows keep every figure, the count unknown
    (NULL: their first_drop counted those holders)."""
    db = tmp_path / "v14.duckdb"
    Store(db).close()
    with duckdb.connect(str(db)) as con:
        con.execute("ALTER TABLE liquidation_distance DROP COLUMN liquidatable_now")
        con.execute("UPDATE schema_version SET version = 14")
        con.execute(
            "INSERT INTO liquidation_distance (run_id, protocol, chain_id, market, symbol, holders, first_drop) "
            "VALUES (1, 'aave-v3', 1, ?, 'WETH', 3, 0.0)",
            [POOL],
        )
    with Store(db) as store:
        after = store.query("SELECT * FROM liquidation_distance")
        version = store.query("SELECT version FROM schema_version")["version"].to_list()
    assert version == [SCHEMA_VERSION] == [20]
    assert after.select("holders", "first_drop", "liquidatable_now").rows() == [(3, 0.0, None)]


def test_version_15_file_recovers_maker_collateral_in_full(tmp_path: Path) -> None:
    """Schema 16 adds positions.liquidation_recovery_wad: the stored Maker/Sky rows recover their whole value (chop is
    the Vow's penalty, not a keeper's cut), every other protocol's rows stay NULL (1 / bonus, as before); nothing else
    changes."""
    rows = [("maker", "ETH-A", WETH, False), ("maker", "ETH-A", "0xdai", True), ("aave-v3", POOL, WETH, False)]
    before, after = _migrated_positions(tmp_path, 15, "liquidation_recovery_wad", rows)
    recovery = {(r["protocol"], r["asset"]): r["liquidation_recovery_wad"] for r in after.iter_rows(named=True)}
    assert recovery == {("maker", WETH): 10**18, ("maker", "0xdai"): 10**18, ("aave-v3", WETH): None}
    assert_frame_equal(after.drop("liquidation_recovery_wad").sort(pl.all()), before.sort(pl.all()))


def test_version_16_file_lets_a_wallet_s_usd_be_unknown(tmp_path: Path) -> None:
    """Schema 17 drops NOT NULL from wallet_risk's USD figures (a market without a USD price is scored, its USD
    NULL): the stored rows keep every figure, and a row without USD can be written after the upgrade."""
    db = tmp_path / "v16.duckdb"
    Store(db).close()
    columns = ", ".join(WALLET_USD_COLUMNS)
    insert = (
        "INSERT INTO wallet_risk (protocol, chain_id, market, wallet, block_number, block_timestamp, liquidatable, "
        f"close_factor, liquidation_threshold_bps, ltv_bps, {columns}) VALUES ('aave-v3', 1, ?, ?, ?, 1700000000, "
        f"false, 0.5, 8000, 7500, {', '.join('?' * len(WALLET_USD_COLUMNS))})"
    )
    with duckdb.connect(str(db)) as con:
        for column in WALLET_USD_COLUMNS:
            con.execute(f"ALTER TABLE wallet_risk ALTER COLUMN {column} SET NOT NULL")
        con.execute("UPDATE schema_version SET version = 16")
        con.execute(insert, [POOL, WALLET, 100, *range(1, len(WALLET_USD_COLUMNS) + 1)])
        with pytest.raises(duckdb.ConstraintException):
            con.execute(insert, [POOL, WALLET, 101, *([None] * len(WALLET_USD_COLUMNS))])
        before = con.sql("SELECT * FROM wallet_risk").pl()
    with Store(db) as store:
        assert store.query("SELECT version FROM schema_version")["version"].to_list() == [SCHEMA_VERSION] == [20]
        store.con.execute(insert, [POOL, WALLET, 101, *([None] * len(WALLET_USD_COLUMNS))])
        after = store.query("SELECT * FROM wallet_risk ORDER BY block_number")
    assert_frame_equal(after.filter(pl.col("block_number") == 100), before)
    unknown = after.filter(pl.col("block_number") == 101).select(WALLET_USD_COLUMNS)
    assert unknown.null_count().row(0) == (1,) * len(WALLET_USD_COLUMNS)


def test_version_18_file_lets_an_exact_sum_of_the_chain_tables_be_unknown(tmp_path: Path) -> None:
    """Schema 19 drops NOT NULL from the chain tables' exact sums (wallet_exposure's long, short and net amounts,
    base_asset_exposure's collateral amount: a sum of an odd token's amounts that could reach 38 digits is left
    unknown): the stored rows keep every figure, and a row without them can be written after the upgrade."""
    db = tmp_path / "v18.duckdb"
    Store(db).close()
    exposure = (
        "INSERT INTO wallet_exposure (chain_id, block_number, wallet, base_asset, long_amount, short_amount, "
        "net_amount, max_depth) VALUES (1, ?, ?, ?, ?, ?, ?, 0)"
    )
    base = (
        "INSERT INTO base_asset_exposure (chain_id, block_number, base_asset, collateral_amount, backed_debt_usd, "
        "backed_borrowers, collateral_wallets, max_depth, naive_collateral_usd) VALUES (1, ?, ?, ?, 0, 0, 1, 0, 0)"
    )
    columns = {
        "wallet_exposure": ("long_amount", "short_amount", "net_amount"),
        "base_asset_exposure": ("collateral_amount",),
    }
    with duckdb.connect(str(db)) as con:
        for table, names in columns.items():
            for column in names:
                con.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL")
        con.execute("UPDATE schema_version SET version = 18")
        con.execute(exposure, [100, WALLET, WETH, 3 * 10**37, 10**18, 3 * 10**37 - 10**18])
        con.execute(base, [100, WETH, 3 * 10**37])
        with pytest.raises(duckdb.ConstraintException):
            con.execute(base, [101, WETH, None])
        before = {table: con.sql(f"SELECT * FROM {table}").pl() for table in columns}
    with Store(db) as store:
        assert store.query("SELECT version FROM schema_version")["version"].to_list() == [SCHEMA_VERSION]
        store.con.execute(exposure, [101, WALLET, WETH, None, None, None])
        store.con.execute(base, [101, WETH, None])
        after = {table: store.query(f"SELECT * FROM {table} ORDER BY block_number") for table in columns}
    for table, names in columns.items():
        assert_frame_equal(after[table].filter(pl.col("block_number") == 100), before[table])
        assert after[table].filter(pl.col("block_number") == 101).select(names).null_count().row(0) == (1,) * len(names)


def test_version_19_file_gains_the_close_factor_s_size_rule(tmp_path: Path) -> None:
    """Schema 20 adds positions.full_close_below_base (Aave 3.3+: a wallet whose debt or collateral is worth under
    $2,000 may be liquidated whole): the stored rows keep every figure, the new column NULL until the next snapshot
    of the market writes it."""
    rows = [("aave-v3", POOL, WETH, False), ("maker", "ETH-A", WETH, False)]
    before, after = _migrated_positions(tmp_path, 19, "full_close_below_base", rows)
    assert after["full_close_below_base"].to_list() == [None, None]
    assert_frame_equal(after.drop("full_close_below_base").sort(pl.all()), before.sort(pl.all()))
