"""`chainrisk export` read by real Spark (pyspark, local mode): the devnet's database exported in two steps (a snapshot
mid-replay, then the head), each export adding only its new rows in new files; Spark SQL over the lake reproduces
DuckDB's mart_market_summary and a wallet's mart_wallet_health_history."""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pyspark import SparkContext
from pyspark.sql import SparkSession

from chainrisk.cli import main
from chainrisk.config import devnet_config
from chainrisk.jobs.export import EXPORT_TABLES, MANIFEST, read_manifest
from chainrisk.jobs.index import index_market
from chainrisk.jobs.score import score
from chainrisk.store.views import query_sql

#: How far behind the head the first snapshot is indexed (blocks): the replay moves prices and positions in between.
FIRST_SNAPSHOT_BEHIND = 40

#: mart_market_summary in Spark SQL over the lake's tables (views of the same names), as queries/ reads them in
#: DuckDB: the lake keeps every exported snapshot of scored_markets, so "latest" is its highest block per market.
SPARK_VIEWS = {
    "scored_latest": """
        SELECT protocol, chain_id, market, source, block_number, block_timestamp, wallets, scored_at
        FROM (
            SELECT *, row_number() OVER (
                PARTITION BY protocol, chain_id, market ORDER BY block_number DESC, scored_at DESC
            ) AS recency
            FROM scored_markets
        )
        WHERE recency = 1""",
    "market_labels": """
        WITH described AS (
            SELECT protocol, chain_id, market,
                max_by(nullif(name, ''), block_number) AS market_name,
                max_by(nullif(parameters, ''), block_number) AS market_parameters
            FROM markets GROUP BY protocol, chain_id, market
        ),
        known AS (
            SELECT protocol, chain_id, market FROM scored_latest
            UNION
            SELECT protocol, chain_id, market FROM described
        ),
        named AS (
            SELECT k.protocol, k.chain_id, k.market, d.market_name, d.market_parameters,
                CASE WHEN length(k.market) > 42 THEN concat(substring(k.market, 1, 10), '…') ELSE k.market END
                    AS short_market
            FROM known AS k LEFT JOIN described AS d
                ON k.protocol = d.protocol AND k.chain_id = d.chain_id AND k.market = d.market
        ),
        labelled AS (
            SELECT *,
                CASE
                    WHEN market_name IS NOT NULL AND market_parameters IS NOT NULL
                        THEN concat(market_name, ' · ', market_parameters)
                    WHEN market_name IS NOT NULL THEN market_name
                    ELSE short_market
                END AS name
            FROM named
        )
        SELECT protocol, chain_id, market,
            CASE
                WHEN count(*) OVER (PARTITION BY chain_id, name) > 1 AND name <> short_market
                    THEN concat(name, ' (', short_market, ')')
                ELSE name
            END AS market_label
        FROM labelled""",
    "wallet_risk_labelled": """
        SELECT r.protocol, r.chain_id, r.market, coalesce(l.market_label, r.market) AS market_label, r.wallet,
            r.block_number, r.block_timestamp, timestamp_seconds(r.block_timestamp) AS block_time,
            r.collateral_usd, r.debt_usd, r.health_factor, r.health_factor IS NOT NULL AS is_borrower,
            r.liquidatable, r.liquidatable_debt_usd, r.seizable_collateral_usd, r.bad_debt_usd
        FROM wallet_risk AS r LEFT JOIN market_labels AS l
            ON r.protocol = l.protocol AND r.chain_id = l.chain_id AND r.market = l.market""",
    "mart_market_summary": """
        WITH markets_now AS (
            SELECT s.*, l.market_label, timestamp_seconds(s.block_timestamp) AS block_time
            FROM scored_latest AS s LEFT JOIN market_labels AS l
                ON s.protocol = l.protocol AND s.chain_id = l.chain_id AND s.market = l.market
        ),
        wallets AS (
            SELECT r.* FROM wallet_risk_labelled AS r JOIN scored_latest AS s
                ON r.protocol = s.protocol AND r.chain_id = s.chain_id AND r.market = s.market
                AND r.block_number = s.block_number
        ),
        totals AS (
            SELECT protocol, chain_id, market,
                count(*) AS wallets,
                count(*) FILTER (WHERE is_borrower) AS borrowers,
                sum(collateral_usd) AS collateral_usd,
                sum(debt_usd) AS debt_usd,
                count(*) FILTER (WHERE liquidatable) AS liquidatable_wallets,
                sum(liquidatable_debt_usd) AS liquidatable_debt_usd,
                sum(seizable_collateral_usd) AS seizable_collateral_usd,
                sum(bad_debt_usd) AS bad_debt_usd,
                min(health_factor) AS min_health_factor
            FROM wallets GROUP BY protocol, chain_id, market
        )
        SELECT m.protocol, m.chain_id, m.market, m.market_label, m.source,
            coalesce(t.wallets, 0) AS wallets,
            coalesce(t.borrowers, 0) AS borrowers,
            coalesce(t.collateral_usd, 0) AS collateral_usd,
            coalesce(t.debt_usd, 0) AS debt_usd,
            coalesce(t.liquidatable_wallets, 0) AS liquidatable_wallets,
            coalesce(t.liquidatable_debt_usd, 0) AS liquidatable_debt_usd,
            coalesce(t.seizable_collateral_usd, 0) AS seizable_collateral_usd,
            coalesce(t.bad_debt_usd, 0) AS bad_debt_usd,
            t.min_health_factor, m.block_number, m.block_timestamp, m.block_time, m.scored_at
        FROM markets_now AS m LEFT JOIN totals AS t
            ON m.protocol = t.protocol AND m.chain_id = t.chain_id AND m.market = t.market""",
    "wallet_health_history_now": """
        SELECT * FROM (
            SELECT *, row_number() OVER (
                PARTITION BY protocol, chain_id, market, wallet, bucket_start ORDER BY last_block DESC
            ) AS version
            FROM wallet_health_history
        )
        WHERE version = 1""",
    "mart_wallet_health_history": """
        SELECT h.protocol, h.chain_id, h.market, coalesce(l.market_label, h.market) AS market_label, h.wallet,
            h.last_block AS block_number, h.last_timestamp AS block_timestamp,
            timestamp_seconds(h.last_timestamp) AS block_time, timestamp_seconds(h.bucket_start) AS bucket_time,
            h.bucket_seconds, h.samples, h.health_factor, h.health_factor_min, h.health_factor_max, h.collateral_usd,
            h.debt_usd, h.bad_debt_usd, h.liquidatable, s.block_number IS NOT NULL AS is_latest
        FROM wallet_health_history_now AS h
        LEFT JOIN market_labels AS l
            ON h.protocol = l.protocol AND h.chain_id = l.chain_id AND h.market = l.market
        LEFT JOIN scored_latest AS s
            ON h.protocol = s.protocol AND h.chain_id = s.chain_id AND h.market = s.market
            AND s.block_number = h.last_block""",
}
#: Float sums: Spark and DuckDB add the same doubles in different orders, so sums agree to rounding, not bit for bit.
SUMMED = ("collateral_usd", "debt_usd", "liquidatable_debt_usd", "seizable_collateral_usd", "bad_debt_usd")


def _index_all(devnet: dict[str, Any], db: Path, to_block: int | None) -> None:
    for market in devnet_config(devnet, db).markets:
        index_market(market.protocol, devnet["rpc_url"], market.address, db, options=market.options, to_block=to_block)
    score(db)


def _digests(lake: Path) -> dict[str, str]:
    return {p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in lake.rglob("*.parquet")}


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    """Spark in local mode on one core (Java from Debian: `make java`)."""
    session = (
        SparkSession.builder.master("local[1]")
        .appName("chainrisk-export-test")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "1")
        # Kilobytes of data: compiling generated code and re-planning cost more than they save here.
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    yield session
    gateway = session.sparkContext._gateway
    session.stop()
    # stop() leaves the JVM (up to the driver's 1 GiB) running until this worker exits, through the rest of the
    # suite: its gateway is shut and its process ended with the module.
    process = getattr(gateway, "proc", None)
    if gateway is not None:
        gateway.shutdown()
    if process is not None:
        process.terminate()
        process.wait(timeout=60)
    SparkContext._gateway, SparkContext._jvm = None, None


@pytest.fixture(scope="module")
def exported(devnet: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(database, lake, digests of the first export's files): exported mid-replay, then again at the head."""
    folder = tmp_path_factory.mktemp("lake")
    db, lake = folder / "chainrisk.duckdb", folder / "lake"
    _index_all(devnet, db, int(devnet["head_block"]) - FIRST_SNAPSHOT_BEHIND)
    assert main(["export", "--db", str(db), "--to", str(lake)]) == 0
    first = _digests(lake)
    _index_all(devnet, db, None)
    assert main(["export", "--db", str(db), "--to", str(lake)]) == 0
    return db, lake, first


def test_each_export_adds_only_new_rows_in_new_files(exported: tuple[Path, Path, dict[str, str]]) -> None:
    db, lake, first = exported
    after = _digests(lake)
    assert first and all(after[name] == digest for name, digest in first.items())  # never rewritten
    manifest = read_manifest(lake)
    assert manifest is not None and [e["sequence"] for e in manifest["exports"]] == [1, 2]
    listed = {f for e in manifest["exports"] for files in e["files"].values() for f in files}
    assert listed == set(after)
    with duckdb.connect(str(db), read_only=True) as con:
        # The database keeps the latest snapshot (schema 9); the lake keeps each export's: the head's whole snapshot
        # came with the second export, the first snapshot stays beside it.
        for table in ("positions", "wallet_risk", "wallet_health", "markets"):
            stored = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            in_lake, blocks = con.execute(
                f"SELECT count(*), count(DISTINCT block_number) "
                f"FROM read_parquet('{lake}/{table}/**/*.parquet', hive_partitioning = true)"
            ).fetchall()[0]
            first_rows, second_rows = (e["rows"][table] for e in manifest["exports"])
            assert second_rows == stored > 0 and in_lake == first_rows + second_rows and blocks == 2, table
        # The health buckets: each export adds the buckets sampled since; the newest version of each is the database's.
        buckets = con.execute("SELECT count(*) FROM wallet_health_history").fetchall()[0][0]
        newest = con.execute(
            f"SELECT count(DISTINCT (protocol, chain_id, market, wallet, bucket_start)) "
            f"FROM read_parquet('{lake}/wallet_health_history/**/*.parquet', hive_partitioning = true)"
        ).fetchall()[0][0]
        assert newest == buckets > 0
        # scored_markets is latest-only in the database; the lake keeps both snapshots of it.
        snapshots = con.execute(
            f"SELECT count(DISTINCT block_number) FROM read_parquet('{lake}/scored_markets/**/*.parquet')"
        ).fetchall()[0][0]
        assert snapshots == 2
    # A third export with nothing new adds no file, and the watermark is per table in the manifest.
    assert main(["export", "--db", str(db), "--to", str(lake)]) == 0
    again = read_manifest(lake)
    assert again is not None and again["exports"][2]["rows"] == dict.fromkeys(again["exports"][2]["rows"], 0)
    assert _digests(lake) == after
    assert set(again["tables"]) <= set(EXPORT_TABLES) and (lake / MANIFEST).is_file()


def test_a_crashed_export_leaves_nothing_counted_twice(
    exported: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    """A file moved in by an export that died before writing the manifest is dropped by the next export."""
    db, lake, _ = exported
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    orphan = next(copy.glob("wallet_risk/*/*/*.parquet")).with_name("export-999999-0.parquet")
    shutil.copyfile(next(copy.glob("wallet_risk/*/*/*.parquet")), orphan)
    assert main(["export", "--db", str(db), "--to", str(copy)]) == 0
    assert not orphan.exists()
    with duckdb.connect() as con:
        counts = [
            con.execute(f"SELECT count(*) FROM read_parquet('{folder}/wallet_risk/**/*.parquet')").fetchall()[0][0]
            for folder in (lake, copy)
        ]
    assert counts[0] == counts[1] > 0


def _spark_rows(spark: SparkSession, lake: Path, sql: str) -> list[dict[str, Any]]:
    for table in ("markets", "scored_markets", "wallet_risk", "positions", "wallet_health_history"):
        spark.read.parquet(str(lake / table)).createOrReplaceTempView(table)
    for name, body in SPARK_VIEWS.items():
        spark.sql(body).createOrReplaceTempView(name)
    return [row.asDict() for row in spark.sql(sql).collect()]


def _duck_rows(db: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _utc(value: Any) -> Any:
    """Spark hands timestamps back naive in the session's zone (UTC here); DuckDB's carry their zone."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def test_spark_reproduces_mart_market_summary(exported: tuple[Path, Path, dict[str, str]], spark: SparkSession) -> None:
    db, lake, _ = exported
    key = ("protocol", "chain_id", "market")
    ours = {tuple(r[k] for k in key): r for r in _duck_rows(db, query_sql("mart_market_summary"))}
    theirs = {tuple(r[k] for k in key): r for r in _spark_rows(spark, lake, "SELECT * FROM mart_market_summary")}
    assert ours and set(theirs) == set(ours)
    assert sum(r["borrowers"] for r in ours.values()) > 0
    for market, row in ours.items():
        other = theirs[market]
        assert set(other) == set(row)
        for column, value in row.items():
            if column in SUMMED:
                assert math.isclose(other[column], value, rel_tol=1e-12, abs_tol=1e-9), (market, column)
            else:
                assert _utc(other[column]) == _utc(value), (market, column)


def test_spark_reproduces_a_wallets_health_history_and_exact_amounts(
    exported: tuple[Path, Path, dict[str, str]], spark: SparkSession
) -> None:
    db, lake, _ = exported
    # A borrower whose health moved between the two snapshots.
    wallet, market = _duck_rows(
        db,
        "SELECT wallet, market FROM wallet_health_history WHERE health_factor IS NOT NULL GROUP BY ALL "
        "HAVING count(*) = 2 AND count(DISTINCT health_factor) = 2 ORDER BY min(health_factor), wallet LIMIT 1",
    )[0].values()
    order = "ORDER BY block_number"
    ours = _duck_rows(
        db,
        f"WITH h AS ({query_sql('mart_wallet_health_history')}) SELECT * FROM h WHERE wallet = ? AND market = ? "
        + order,
        [wallet, market],
    )
    theirs = _spark_rows(
        spark,
        lake,
        f"SELECT * FROM mart_wallet_health_history WHERE wallet = '{wallet}' AND market = '{market}' {order}",
    )
    assert len(ours) == 2 and [r["is_latest"] for r in ours] == [False, True]
    assert [{k: _utc(v) for k, v in r.items()} for r in theirs] == [{k: _utc(v) for k, v in r.items()} for r in ours]
    # Exact amounts: DECIMAL(38,0) in the lake, Spark's sums equal DuckDB's HUGEINT sums to the wei.
    sums = "SELECT protocol, sum(debt_amount) AS debt, sum(collateral_amount) AS collateral FROM positions"
    exact = {r["protocol"]: (r["debt"], r["collateral"]) for r in _duck_rows(db, sums + " GROUP BY protocol")}
    # The lake holds both snapshots of positions; the database the latest (each protocol's highest block).
    at_head = (
        "SELECT p.protocol, sum(p.debt_amount) AS debt, sum(p.collateral_amount) AS collateral FROM positions AS p "
        "JOIN (SELECT protocol, max(block_number) AS head FROM positions GROUP BY protocol) AS h "
        "ON p.protocol = h.protocol AND p.block_number = h.head GROUP BY p.protocol"
    )
    spark_exact = {r["protocol"]: (r["debt"], r["collateral"]) for r in _spark_rows(spark, lake, at_head)}
    assert spark_exact == {p: (Decimal(d), Decimal(c)) for p, (d, c) in exact.items()}
    assert all(isinstance(d, Decimal) and d > 10**18 for d, _ in spark_exact.values())
