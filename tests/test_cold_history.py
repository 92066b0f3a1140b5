"""Cold days (chainrisk.store.history.evict_days): finished days leave wallet_health_buckets for Parquet files, and
the history reads the same as when every bucket stays in the database."""

from __future__ import annotations

import gc
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.errors import UserError
from chainrisk.store.console import run_console_query
from chainrisk.store.db import Store, StoredMarket
from chainrisk.store.history import HistorySettings, cold_files, day_label, frame_of, record_samples
from chainrisk.store.published import connect_reader, published_files
from chainrisk.store.views import query_sql
from chainrisk.units import DAY_S
from tests.databases import feed_pool

T0 = 1_700_006_400  # a day's start (UTC)
HOURLY = HistorySettings(hourly_days=3)
COLD = HistorySettings(hourly_days=3, hot_days=1)


def _samples(
    start: int, hours: int, every_s: int = 5400, wallets: int = 4, shift: int = 0, markets: int = 1
) -> pl.DataFrame:
    """Samples of `wallets` wallets every `every_s` seconds for `hours` hours from `start`, the health factor moving,
    the wallets spread over `markets` markets."""
    times = list(range(start, start + hours * 3600, every_s))
    rows = []
    for i, t in enumerate(times):
        for w in range(wallets):
            hf = 1.0 + ((i * 7 + w * 3 + shift) % 11) / 10
            rows.append(
                {
                    "protocol": "aave-v3",
                    "chain_id": 1,
                    "market": "0xpool" if markets == 1 else f"0xpool{w % markets}",
                    "wallet": f"0xw{w}",
                    "block_number": (t - T0) // 12 + shift,
                    "block_timestamp": t,
                    "health_factor": hf,
                    # Exact figures a double cannot hold (Parquet has no 128-bit integer: chainrisk.store.parquet).
                    "health_factor_wad": int(hf * 10**18) + 1 + 7 * w + i,
                    "collateral_usd": 1000.0 + w,
                    "debt_usd": 1000.0 / hf,
                    "borrowing_power_usd": 10.0,
                    "bad_debt_usd": 0.0,
                    "liquidation_threshold_bps": 8000,
                    "ltv_bps": 7500,
                    "liquidatable": hf < 1,
                }
            )
    return pl.DataFrame(rows).with_columns(pl.col("health_factor_wad").cast(pl.Int128))


def _six_cold_days(store: Store) -> pl.DataFrame:
    """Six days of samples into `store` with cold days (the first four moved to files); returns its history."""
    for day in range(6):
        record_samples(store.con, _samples(T0 + day * DAY_S, 24), COLD, cold_folder=store.cold_folder)
    return _history(store)


def _history(store: Store) -> pl.DataFrame:
    return frame_of(
        store.con, "SELECT * FROM wallet_health_history ORDER BY protocol, chain_id, market, wallet, bucket_start"
    )


#: Each market's sums per bucket as mart_market_health_history defined them before the cold days' sums were stored:
#: over every wallet's bucket, hot or cold (the reference the stored sums must equal).
MARKET_SUMS_OVER_WALLETS = """
SELECT protocol, chain_id, market, bucket_start, bucket_seconds, max(last_block) AS block_number,
    max(last_timestamp) AS block_timestamp, count(*) AS wallets, count(health_factor) AS borrowers,
    sum(collateral_usd) AS collateral_usd, sum(debt_usd) AS debt_usd, sum(bad_debt_usd) AS bad_debt_usd,
    count(*) FILTER (WHERE liquidatable) AS liquidatable_wallets,
    count(*) FILTER (WHERE liquidatable_samples > 0) AS wallets_liquidatable_in_bucket,
    min(health_factor) AS min_health_factor, min(health_factor_min) AS lowest_health_factor, sum(samples) AS samples,
    min(last_block) <> max(last_block) AS mixed_blocks
FROM wallet_health_history GROUP BY ALL ORDER BY protocol, chain_id, market, bucket_start
"""


def _market_history(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """mart_market_health_history's figures on `con`, in MARKET_SUMS_OVER_WALLETS' columns and order."""
    found = frame_of(con, f"SELECT * FROM ({query_sql('mart_market_health_history')})")
    order = ["protocol", "chain_id", "market", "bucket_start"]
    return found.sort(order).select(frame_of(con, f"{MARKET_SUMS_OVER_WALLETS} LIMIT 0").columns)


def _same_history(hot: Store, cold: Store) -> None:
    """`cold` (with cold days) reads the history `hot` (every day in the database) holds: each wallet's buckets, and
    each market's sums per bucket, summed over the wallets in `hot` and read from the stored sums of `cold`'s cold
    days (float sums to their rounding: the additions come in another order)."""
    assert_frame_equal(_history(hot), _history(cold))
    reference = frame_of(hot.con, MARKET_SUMS_OVER_WALLETS)
    assert reference.height > 0
    for store in (hot, cold):
        assert_frame_equal(_market_history(store.con), reference, check_exact=False, rel_tol=1e-12, abs_tol=1e-9)


def test_cold_days_read_as_if_kept_in_the_database(tmp_path: Path) -> None:
    folder = tmp_path / "cold"
    with Store(tmp_path / "hot.duckdb") as hot, Store(tmp_path / "cold.duckdb") as cold:
        for day in range(8):
            batch = _samples(T0 + day * DAY_S, 24, markets=2)
            record_samples(hot.con, batch, HOURLY)
            record_samples(cold.con, batch, COLD, cold_folder=folder)
            _same_history(hot, cold)
        # Only the newest days stay in the database; the others are files, one listed per day.
        oldest = cold.con.execute("SELECT min(bucket_start) FROM wallet_health_buckets").fetchall()[0][0]
        assert oldest >= T0 + 6 * DAY_S
        days = [d for _, d, _ in cold_files(cold.con, 1)]
        assert days == [T0 + d * DAY_S for d in range(6)]
        # The same samples again change nothing; a backfill into a cold day (folded into a day bucket) and into a
        # cold day still in the hourly window fold into its file.
        for batch in (
            _samples(T0 + 7 * DAY_S, 24, markets=2),
            _samples(T0 + DAY_S + 1800, 5, shift=3, markets=2),
            _samples(T0 + 5 * DAY_S + 900, 4, shift=5, markets=2),
        ):
            record_samples(hot.con, batch, HOURLY)
            record_samples(cold.con, batch, COLD, cold_folder=folder)
            _same_history(hot, cold)
        # Days later, the window's cold hours fold into days in their files as the database's would.
        for day in range(8, 11):
            batch = _samples(T0 + day * DAY_S, 24, markets=2)
            record_samples(hot.con, batch, HOURLY)
            record_samples(cold.con, batch, COLD, cold_folder=folder)
            _same_history(hot, cold)
        hours = cold.con.execute(
            "SELECT count(*) FROM wallet_health_history WHERE bucket_seconds = 3600 AND bucket_start < ?",
            [T0 + 7 * DAY_S],
        ).fetchall()[0][0]
        assert hours == 0


def test_readers_read_the_cold_days_and_a_publish_keeps_only_the_listed_files(tmp_path: Path) -> None:
    with Store(tmp_path / "hot.duckdb") as hot, Store(tmp_path / "cold.duckdb") as cold:
        batches = [_samples(T0 + day * DAY_S, 24) for day in range(6)] + [_samples(T0 + DAY_S + 1800, 5, shift=3)]
        for batch in batches:
            record_samples(hot.con, batch, HOURLY)
            record_samples(cold.con, batch, COLD, cold_folder=cold.cold_folder)
            catalog = cold.publish()
            with connect_reader(tmp_path / "cold.duckdb") as reader:
                published = frame_of(
                    reader,
                    "SELECT * FROM wallet_health_history ORDER BY protocol, chain_id, market, wallet, bucket_start",
                )
            assert_frame_equal(_history(hot), published)
            listed = {cold.cold_folder / f for _, _, f in cold_files(cold.con)}
            files = set(published_files(catalog))
            assert listed <= files  # the console may read them
            assert listed <= set(cold.cold_folder.glob("*.parquet"))
        assert len(listed) == 4
        # The SQL console, which may read only the snapshot's files, reads the cold days too.
        counted = run_console_query(tmp_path / "cold.duckdb", "SELECT count(*) AS n FROM wallet_health_history")
        assert counted.frame.item() == _history(hot).height
        # With no reader holding an earlier snapshot, a rewritten day's previous file goes with the snapshot naming it.
        gc.collect()
        cold.publish()
        assert set(cold.cold_folder.glob("*.parquet")) == listed


def test_a_reorg_into_a_cold_day_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "cold.duckdb") as store:
        for day in range(6):
            record_samples(store.con, _samples(T0 + day * DAY_S, 24), COLD, cold_folder=store.cold_folder)
        feed_pool(store.con)
        before = _history(store)
        market = StoredMarket("aave-v3", "0xsource", "raw_test_events", ())
        with pytest.raises(UserError, match="moved out of the database"):
            store.rewind(1, [market], keep_through=DAY_S // 12, keep_hash="0x")  # into the second day
        assert_frame_equal(_history(store), before)
        # One within the days still in the database goes on as before.
        store.rewind(1, [market], keep_through=(5 * DAY_S + 3600) // 12, keep_hash="0x")
        assert _history(store).height < before.height


def test_a_database_moved_with_its_published_folder_still_reads_its_cold_days(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    with Store(first / "c.duckdb") as store:
        for day in range(6):
            record_samples(store.con, _samples(T0 + day * DAY_S, 24), COLD, cold_folder=store.cold_folder)
        before = _history(store)
        assert cold_files(store.con)
    first.rename(second)
    with Store(second / "c.duckdb") as store:
        assert_frame_equal(_history(store), before)


def test_a_missing_cold_file_warns_leaves_its_day_out_refuses_writes_into_it_and_reads_again_once_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "c.duckdb"
    with Store(db) as store:
        whole = _six_cold_days(store)
        (_, day, name), *_ = cold_files(store.con)
        folder = store.cold_folder
        store.publish()
    # A restore without the published folder's file: a reader (which cannot change the view) is told in one line.
    (folder / name).rename(tmp_path / name)
    with pytest.raises(UserError, match=f"missing from {folder}.*first: {name}"):
        Store(db, read_only=True)
    # A writer reads around the missing day, says so, and a publish serves readers the same.
    without = whole.filter((pl.col("bucket_start") < day) | (pl.col("bucket_start") >= day + DAY_S))
    assert without.height < whole.height
    with caplog.at_level("WARNING", logger="chainrisk.store"), Store(db) as store:
        assert f"1 health history day file(s) listed in c.duckdb are missing from {folder}" in caplog.text
        assert_frame_equal(_history(store), without)
        # Writing into that day would rewrite it without the missing rows: refused, nothing changed.
        with pytest.raises(UserError, match=f"{name} is missing"):
            record_samples(store.con, _samples(day + 1800, 3, shift=3), COLD, cold_folder=store.cold_folder)
        assert_frame_equal(_history(store), without)
        store.publish()
    with connect_reader(db) as reader:
        published = frame_of(
            reader, "SELECT * FROM wallet_health_history ORDER BY protocol, chain_id, market, wallet, bucket_start"
        )
    assert_frame_equal(published, without)
    with Store(db, read_only=True) as store:
        assert_frame_equal(_history(store), without)
    # Back in place: the next writer reads it again.
    (tmp_path / name).rename(folder / name)
    with Store(db) as store:
        assert_frame_equal(_history(store), whole)
    # With every file in place the view is left as it is: an open writes no catalog change.
    import chainrisk.store.history as history

    def refused(*_: object) -> None:
        raise AssertionError("the cold view was rewritten on an open that changed nothing")

    monkeypatch.setattr(history, "refresh_cold_view", refused)
    with Store(db) as store:
        assert_frame_equal(_history(store), whole)


def test_schema_12_cold_files_lose_their_rounded_exact_health_factor_on_upgrade(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "c.duckdb"
    with Store(db) as store:
        whole = _six_cold_days(store)
        # The files as schema 12 wrote them: DuckDB's Parquet writer turned the HUGEINT into a DOUBLE.
        for _, _, name in cold_files(store.con):
            path = store.cold_folder / name
            store.con.execute(
                f"COPY (SELECT * REPLACE (CAST(health_factor_wad AS DOUBLE) AS health_factor_wad) FROM "
                f"read_parquet('{path}')) TO '{path}.old' (FORMAT parquet)"
            )
            Path(f"{path}.old").replace(path)
        store.con.execute("UPDATE schema_version SET version = 12")
        last_cold = max(d for _, d, _ in cold_files(store.con))
        folder = store.cold_folder
    with caplog.at_level("INFO", logger="chainrisk.store"), Store(db) as store:
        assert "schema 13: 4 cold history file(s) held the exact health factor rounded to a double" in caplog.text
        upgraded = _history(store)
        files = [folder / f for _, _, f in cold_files(store.con)]
        types = {
            str(r[0])
            for f in files
            for r in store.con.execute(
                f"SELECT type FROM parquet_schema('{f}') WHERE name = 'health_factor_wad'"
            ).fetchall()
        }
    cold = pl.col("bucket_start") < last_cold + DAY_S
    # Unknown, not rounded: every cold bucket's exact figure is NULL; nothing else changed, the recent days untouched.
    assert upgraded.filter(cold)["health_factor_wad"].null_count() == upgraded.filter(cold).height > 0
    assert_frame_equal(upgraded.drop("health_factor_wad"), whole.drop("health_factor_wad"))
    assert_frame_equal(upgraded.filter(~cold), whole.filter(~cold))
    assert types and "DOUBLE" not in types


def test_a_schema_17_file_gets_its_cold_days_market_sums_on_upgrade_and_a_restored_file_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file older than the stored market sums (schema 17: no cold_history_markets) gets them from its cold files on
    upgrade, all but a missing file's, whose days the history reads without; once that file is back, the next open
    sums its days too, and each market's history equals the sums over its wallets throughout."""
    db = tmp_path / "c.duckdb"
    with Store(db) as store:
        for day in range(6):
            batch = _samples(T0 + day * DAY_S, 24, markets=2)
            record_samples(store.con, batch, COLD, cold_folder=store.cold_folder)
        reference = frame_of(store.con, MARKET_SUMS_OVER_WALLETS)
        store.con.execute("DROP TABLE cold_history_markets")
        store.con.execute("UPDATE schema_version SET version = 17")
        listed = cold_files(store.con)
        gone = store.cold_folder / listed[1][2]
    gone.rename(tmp_path / "kept.parquet")
    with caplog.at_level("INFO", logger="chainrisk.store"), Store(db) as store:
        assert f"summed the health history of {len(listed) - 1} cold file(s) per market" in caplog.text
        without = frame_of(store.con, MARKET_SUMS_OVER_WALLETS)
        missing_day = pl.col("bucket_start") // DAY_S * DAY_S == listed[1][1]
        assert reference.filter(missing_day).height > 0
        assert_frame_equal(without, reference.filter(~missing_day))
        assert_frame_equal(_market_history(store.con), without, check_exact=False, rel_tol=1e-12, abs_tol=1e-9)
    (tmp_path / "kept.parquet").rename(gone)
    with Store(db) as store:
        assert_frame_equal(_market_history(store.con), reference, check_exact=False, rel_tol=1e-12, abs_tol=1e-9)


def test_months_out_of_the_hourly_window_are_kept_a_file_each_and_read_as_if_in_the_database(tmp_path: Path) -> None:
    folder = tmp_path / "c.duckdb.published" / "data" / "main.wallet_health_cold"
    with Store(tmp_path / "hot.duckdb") as hot, Store(tmp_path / "c.duckdb") as cold:
        assert cold.cold_folder == folder.absolute()
        for day in range(75):  # 2023-11-15 to 2024-01-28: November and December end before the hourly window
            batch = _samples(T0 + day * DAY_S, 24, every_s=6 * 3600)
            record_samples(hot.con, batch, HOURLY)
            record_samples(cold.con, batch, COLD, cold_folder=cold.cold_folder)
            if day % 15 == 14:
                _same_history(hot, cold)
        listed = cold_files(cold.con, 1)
        by_month: dict[str, set[str]] = {}
        for _, day, name in listed:
            by_month.setdefault(day_label(day)[:7], set()).add(name)
        assert by_month["2023-11"] == {next(iter(by_month["2023-11"]))} and len(by_month["2023-12"]) == 1
        assert len({n for _, _, n in listed}) < len(listed) - 40  # 47 days of the two months in two files
        # Each file holds exactly the days that list it.
        for name in {n for _, _, n in listed}:
            held = cold.con.execute(
                f"SELECT DISTINCT bucket_start // {DAY_S} * {DAY_S} FROM read_parquet('{cold.cold_folder / name}')"
            ).fetchall()
            assert sorted(int(r[0]) for r in held) == sorted(d for _, d, n in listed if n == name)
        # A backfill into a merged month folds into it (the month written again with it), as in the database.
        for batch in (_samples(T0 + 20 * DAY_S + 1800, 5, shift=3), _samples(T0 + 3 * DAY_S + 900, 2, shift=5)):
            record_samples(hot.con, batch, HOURLY)
            record_samples(cold.con, batch, COLD, cold_folder=cold.cold_folder)
            _same_history(hot, cold)
        assert len({n for _, d, n in cold_files(cold.con, 1) if day_label(d).startswith("2023-12")}) == 1
        # Readers read the same; once no reader holds an earlier snapshot, only the listed files are left.
        catalog = cold.publish()
        with connect_reader(tmp_path / "c.duckdb") as reader:
            published = frame_of(
                reader, "SELECT * FROM wallet_health_history ORDER BY protocol, chain_id, market, wallet, bucket_start"
            )
        assert_frame_equal(_history(hot), published)
        with connect_reader(tmp_path / "c.duckdb") as reader:
            assert_frame_equal(
                _market_history(reader), _market_history(hot.con), check_exact=False, rel_tol=1e-12, abs_tol=1e-9
            )
        gc.collect()
        cold.publish()
        remaining = set(cold.cold_folder.glob("*.parquet"))
        assert remaining == {cold.cold_folder / n for _, _, n in cold_files(cold.con)}
        assert {cold.cold_folder / n for _, _, n in cold_files(cold.con)} <= set(published_files(catalog))
