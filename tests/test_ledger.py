"""The health buckets' ledger (chainrisk.store.ledger): every writer keeps the running count and hash equal to the
table's own, and a publish checks a run's revision of the buckets by it, reading only the newest published rows,
falling back to hashing everything when the ledger cannot be trusted."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl

from chainrisk.store import ledger
from chainrisk.store.db import Store, StoredMarket
from chainrisk.store.history import BUCKETS, HistorySettings, record_samples
from chainrisk.store.published import connect_reader, publish_file, read_manifest
from tests.databases import feed_pool

HOUR, DAY = 3600, 86_400
NOW = 1_700_000_000 // DAY * DAY  # a midnight
WALLETS = [f"0x{i:040x}" for i in range(30)]


def _samples(block: int, timestamp: int, markets: tuple[str, ...] = ("0xpool", "0xother")) -> pl.DataFrame:
    """One sample per wallet and market at `block`, health factors varying by wallet and block."""
    rows = [(w, m) for w in WALLETS for m in markets]
    return pl.DataFrame(
        {
            "protocol": ["aave-v3"] * len(rows),
            "chain_id": [1] * len(rows),
            "market": [m for _, m in rows],
            "wallet": [w for w, _ in rows],
            "block_number": [block] * len(rows),
            "block_timestamp": [timestamp] * len(rows),
            "health_factor": [1 + (i * 7 + block) % 13 / 10 for i in range(len(rows))],
            "health_factor_wad": pl.Series([10**18 + i * 10**15 + block for i in range(len(rows))], dtype=pl.Int128),
            "collateral_usd": [100.0 + i for i in range(len(rows))],
            "debt_usd": [50.0 + block % 7 for _ in rows],
            "borrowing_power_usd": [10.0] * len(rows),
            "liquidation_threshold_bps": [8000] * len(rows),
            "ltv_bps": [7000] * len(rows),
            "liquidatable": [False] * len(rows),
        }
    )


def _truth(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    row = con.execute(ledger.stats_sql(ledger.columns(con, BUCKETS), "wallet_health_buckets")).fetchall()[0]
    return int(row[0]), int(row[1])


def _kept(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    rows = con.execute("SELECT row_count, content_hash FROM table_ledger WHERE table_name = ?", [BUCKETS]).fetchall()
    assert len(rows) == 1
    return int(rows[0][0]), int(rows[0][1])


def test_every_writer_keeps_the_ledger_equal_to_the_table(tmp_path: Path) -> None:
    settings = HistorySettings(hourly_days=1)
    with Store(tmp_path / "l.duckdb") as store:
        assert _kept(store.con) == _truth(store.con) == (0, 0)
        block = 100
        # Runs every 20 minutes for three days: buckets extended, new hours, finished days re-sorted, hours older
        # than the window folded into days (deleted and replaced).
        for step in range(3 * 72):
            block += 1
            record_samples(store.con, _samples(block, NOW + step * 1200 + 7), settings)
            if step % 9 == 0:
                assert _kept(store.con) == _truth(store.con), step
        assert _kept(store.con) == _truth(store.con)
        days = store.con.execute("SELECT count(*) FROM wallet_health_buckets WHERE bucket_seconds = 86400").fetchall()
        assert days[0][0] > 0  # the downsampling ran
        # The same block sampled again changes nothing, the ledger neither.
        before = _kept(store.con)
        record_samples(store.con, _samples(block, NOW + 215 * 1200 + 7), settings)
        assert _kept(store.con) == before == _truth(store.con)
        # A reorg rewind drops the buckets that took a sample from a dropped block.
        feed_pool(store.con)
        store.rewind(
            1, [StoredMarket("aave-v3", "0xsource", "raw_test_events", ())], keep_through=block - 3, keep_hash="0x"
        )
        assert _kept(store.con)[0] < before[0]
        assert _kept(store.con) == _truth(store.con)


def test_a_store_rebuilds_a_missing_or_stale_ledger(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path) as store:
        record_samples(store.con, _samples(10, NOW + 60), HistorySettings())
    with duckdb.connect(str(path)) as con:  # rows written behind the ledger's back, then no ledger at all
        con.execute(
            "INSERT INTO wallet_health_buckets SELECT * REPLACE (bucket_start + 3600 AS bucket_start) FROM "
            "wallet_health_buckets"
        )
        assert ledger.read(con, BUCKETS) is None  # its count disagrees: not trusted
    with Store(path) as store:
        assert _kept(store.con) == _truth(store.con)
        store.con.execute("DROP TABLE table_ledger")
    with Store(path) as store:
        assert _kept(store.con) == _truth(store.con)


def _published_buckets(path: Path) -> list[tuple[object, ...]]:
    with connect_reader(path) as con:
        return sorted(con.execute("SELECT * FROM wallet_health_history").fetchall())


def _stored_buckets(path: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return sorted(con.execute("SELECT * FROM wallet_health_history").fetchall())


def _entry(catalog: Path) -> dict[str, object]:
    manifest = read_manifest(catalog)
    assert manifest is not None
    entry: dict[str, object] = manifest["tables"][BUCKETS]
    return {**entry, "how": manifest["written"]["tables"].get(BUCKETS)}


def test_a_publish_checks_a_runs_revision_by_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "p.duckdb"
    block = 10
    for step in range(3):
        with Store(path) as store:
            block += 1
            record_samples(store.con, _samples(block, NOW + step * 1500 + 60), HistorySettings())
        catalog = publish_file(path)
        assert _published_buckets(path) == _stored_buckets(path)
    entry = _entry(catalog)
    assert entry["how"] == "upsert" and entry["checked_by_ledger"] is True
    # Rows changed behind the ledger's back (its count then disagrees): the publish hashes everything instead, and
    # still publishes what the table holds.
    with duckdb.connect(str(path)) as con:
        con.execute("DELETE FROM wallet_health_buckets WHERE key_id = 1")
    with Store(path, read_only=True) as store:
        assert ledger.read(store.con, BUCKETS) is None
    catalog = publish_file(path)
    assert _published_buckets(path) == _stored_buckets(path)
    assert "checked_by_ledger" not in _entry(catalog)
    # A ledger that is wrong but agrees on the count (a writer that bypassed it): the revision's check against it
    # fails, the publish hashes everything and publishes the table as it is.
    with Store(path) as store:  # the Store's open rebuilt the ledger from the table (its count disagreed)
        assert _kept(store.con) == _truth(store.con)
        block += 1
        record_samples(store.con, _samples(block, NOW + 4 * 1500 + 60), HistorySettings())
        store.con.execute("UPDATE wallet_health_buckets SET debt_usd = debt_usd + 1 WHERE key_id = 2")
        store.con.execute("UPDATE table_ledger SET content_hash = content_hash + 1")
    catalog = publish_file(path)
    assert _published_buckets(path) == _stored_buckets(path)
    entry = _entry(catalog)
    assert "checked_by_ledger" not in entry
    manifest = json.loads(catalog.with_suffix(".json").read_text())
    with duckdb.connect(str(path), read_only=True) as con:
        assert int(manifest["tables"][BUCKETS]["hash"]) == _truth(con)[1]


def _events(blocks: range, salt: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "chain_id": [1] * len(blocks),
            "market": ["0xsource"] * len(blocks),
            "block_number": list(blocks),
            "amount": pl.Series([b * 10**20 + salt for b in blocks], dtype=pl.Int128),
        }
    )


def test_raw_events_writes_and_a_rewind_keep_their_ledger(tmp_path: Path) -> None:
    path = tmp_path / "e.duckdb"
    table = "main.raw_test_events"
    with Store(path) as store:
        store.ensure_tables(
            "CREATE TABLE IF NOT EXISTS raw_test_events (chain_id BIGINT, market VARCHAR, block_number BIGINT, "
            "amount HUGEINT)"
        )
        assert ledger.read(store.con, table) == (0, 0)

        def truth() -> tuple[int, int]:
            row = store.con.execute(ledger.stats_sql(ledger.columns(store.con, table), table)).fetchall()[0]
            return int(row[0]), int(row[1])

        def write(first: int, last: int, salt: int) -> None:
            store.write_events(
                "aave-v3",
                1,
                "0xsource",
                first,
                last,
                f"0x{last:x}",
                _events(range(first, last + 1), salt),
                table="raw_test_events",
                start_block=1,
            )

        write(1, 50, 0)
        write(51, 80, 0)
        write(70, 90, 1)  # a range written again (a retried batch): its rows replaced
        assert ledger.read(store.con, table) == truth() and truth()[0] == 90
        store.rewind(1, [StoredMarket("aave-v3", "0xsource", "raw_test_events", ())], keep_through=60, keep_hash="0x")
        assert ledger.read(store.con, table) == truth() and truth()[0] == 60
    catalog = publish_file(path)
    with Store(path) as store:
        write_more = _events(range(61, 71), 2)
        store.write_events("aave-v3", 1, "0xsource", 61, 70, "0x46", write_more, table="raw_test_events", start_block=1)
    catalog = publish_file(path)
    manifest = read_manifest(catalog)
    assert manifest is not None and manifest["written"]["tables"][table] == "append"
    with connect_reader(path) as con, duckdb.connect(str(path), read_only=True) as stored:
        query = "SELECT * FROM raw_test_events ORDER BY block_number"
        assert con.execute(query).fetchall() == stored.execute(query).fetchall()


#: Seconds between the downsampling test's runs: hours with a sample and hours without, every fold of a day.
RUN_EVERY = 10_000


def test_downsampling_and_a_rewind_publish_the_ranges_they_deleted_not_the_whole_history(tmp_path: Path) -> None:
    """A day's hours folded into days, and a reorg rewind, delete buckets: the publish drops the published rows of the
    recorded range (a tombstone) and writes the table's rows in it again, checked by the ledger, instead of writing
    the whole history; readers see exactly the table through every run and a rewrite."""
    path = tmp_path / "d.duckdb"
    settings = HistorySettings(hourly_days=1)
    block, folds, seen = 100, [], 0
    for step in range(4 * 86400 // RUN_EVERY):  # runs every 2 h 47 min for four days
        with Store(path) as store:
            block += 1
            record_samples(store.con, _samples(block, NOW + step * RUN_EVERY + 7), settings)
        entry = _entry(publish_file(path))
        if int(entry["deletions_seq"]) > seen:  # type: ignore[call-overload]  # this run folded a day
            seen = int(entry["deletions_seq"])  # type: ignore[call-overload]
            folds.append(entry["how"])
            assert entry["how"] in ("upsert", "upsert+merge") and entry["checked_by_ledger"] is True, entry
            assert entry.get("tombstones")
        assert _published_buckets(path) == _stored_buckets(path), step
    assert len(folds) >= 2, folds  # days were folded, each published as its range
    # A reorg rewind drops the newest buckets: published as a range too.
    with Store(path) as store:
        feed_pool(store.con)
        before = _kept(store.con)
        store.rewind(
            1, [StoredMarket("aave-v3", "0xsource", "raw_test_events", ())], keep_through=block - 2, keep_hash="0x"
        )
        assert _kept(store.con)[0] < before[0]
    entry = _entry(publish_file(path))
    assert entry["how"] in ("upsert", "upsert+merge") and entry["checked_by_ledger"] is True
    assert _published_buckets(path) == _stored_buckets(path)
    # A fold whose deletion record is gone (pruned): the checks fail, the table is written whole, still exact.
    with Store(path) as store:
        block += 1
        record_samples(store.con, _samples(block, NOW + 6 * 86400 + 7), settings)
        assert int(store.con.execute("SELECT max(seq) FROM table_deletions").fetchall()[0][0]) > seen + 1
        store.con.execute("DELETE FROM table_deletions")
    entry = _entry(publish_file(path))
    assert entry["how"] == "rewrite" and "tombstones" not in entry
    assert _published_buckets(path) == _stored_buckets(path)
