"""The bucketed health history (chainrisk.store.history) on small frames: samples fold into hour buckets keeping the
last, lowest and highest health factor; buckets older than the hourly window fold into days without losing a dip;
the same block sampled twice counts once; [storage] settings are checked."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from chainrisk.errors import UserError
from chainrisk.store.db import Store
from chainrisk.store.history import HistorySettings, parse_storage, record_samples

HOUR, DAY = 3600, 86_400
NOW = 1_700_000_000 // DAY * DAY  # a midnight


def _samples(*rows: tuple[int, int, float | None]) -> pl.DataFrame:
    """(block, timestamp, health factor) samples of one wallet in one market."""
    return pl.DataFrame(
        {
            "protocol": ["aave-v3"] * len(rows),
            "chain_id": [1] * len(rows),
            "market": ["0xpool"] * len(rows),
            "wallet": ["0xwallet"] * len(rows),
            "block_number": [r[0] for r in rows],
            "block_timestamp": [r[1] for r in rows],
            "health_factor": [r[2] for r in rows],
            "collateral_usd": [100.0] * len(rows),
            "debt_usd": [50.0] * len(rows),
            "borrowing_power_usd": [10.0] * len(rows),
            "liquidation_threshold_bps": [8000] * len(rows),
            "ltv_bps": [7000] * len(rows),
            "liquidatable": [r[2] is not None and r[2] < 1 for r in rows],
        }
    )


def _buckets(store: Store) -> list[dict[str, object]]:
    return store.query("SELECT * FROM wallet_health_history ORDER BY bucket_start").to_dicts()


def test_samples_fold_into_hours_keeping_the_dip(tmp_path: Path) -> None:
    with Store(tmp_path / "h.duckdb") as store:
        added = record_samples(store.con, _samples((10, NOW + 60, 1.5), (11, NOW + 600, 0.97)), HistorySettings())
        added += record_samples(
            store.con, _samples((12, NOW + 1200, 1.3), (13, NOW + HOUR + 5, 1.4)), HistorySettings()
        )
        # The same block scored again (a run on an unchanged head) is not a new sample.
        added += record_samples(store.con, _samples((13, NOW + HOUR + 5, 1.4)), HistorySettings())
        hour, next_hour = _buckets(store)
    assert added == 4
    assert (hour["bucket_start"], hour["bucket_seconds"], hour["samples"]) == (NOW, HOUR, 3)
    assert (hour["first_block"], hour["last_block"], hour["health_factor"]) == (10, 12, 1.3)
    assert (hour["health_factor_min"], hour["health_factor_min_block"], hour["health_factor_max"]) == (0.97, 11, 1.5)
    assert (hour["liquidatable"], hour["liquidatable_samples"]) == (False, 1)
    assert (next_hour["bucket_start"], next_hour["samples"], next_hour["health_factor"]) == (NOW + HOUR, 1, 1.4)


def test_hours_older_than_the_window_fold_into_days(tmp_path: Path) -> None:
    settings = HistorySettings(hourly_days=2)
    old = NOW - 3 * DAY
    with Store(tmp_path / "h.duckdb") as store:
        record_samples(
            store.con, _samples((1, old + 100, 2.0), (2, old + 5 * HOUR, 0.9), (3, old + 20 * HOUR, 1.8)), settings
        )
        assert [b["bucket_seconds"] for b in _buckets(store)] == [HOUR] * 3, "within the window of the newest sample"
        record_samples(store.con, _samples((9, NOW + 10, 1.2)), settings)  # time moves on: those hours are old now
        day, today = _buckets(store)
        # A sample from the old day arriving late (a backfill) goes to the day bucket directly.
        record_samples(store.con, _samples((4, old + 22 * HOUR, 3.0)), settings)
        late = _buckets(store)[0]
    assert (day["bucket_start"], day["bucket_seconds"], day["samples"]) == (old, DAY, 3)
    assert (day["first_block"], day["last_block"], day["health_factor"]) == (1, 3, 1.8)
    assert (day["health_factor_min"], day["health_factor_min_block"], day["health_factor_max"]) == (0.9, 2, 2.0)
    assert (today["bucket_seconds"], today["samples"]) == (HOUR, 1)
    assert (late["samples"], late["last_block"], late["health_factor"], late["health_factor_max"]) == (4, 4, 3.0, 3.0)


def test_a_day_folds_only_once_all_of_it_is_older_than_the_window(tmp_path: Path) -> None:
    """The window's edge inside a day keeps that day's hours hourly (no deletion each hour); the next day edge folds
    them all at once."""
    settings = HistorySettings(hourly_days=2)
    edge_day = NOW - 2 * DAY
    with Store(tmp_path / "h.duckdb") as store:
        record_samples(store.con, _samples((1, edge_day + HOUR, 1.0), (2, edge_day + 3 * HOUR, 1.1)), settings)
        # Five hours past midnight: the window's exact edge is 5 h into edge_day, past both buckets' ends.
        record_samples(store.con, _samples((3, NOW + 5 * HOUR, 1.2)), settings)
        assert [b["bucket_seconds"] for b in _buckets(store)] == [HOUR, HOUR, HOUR]
        record_samples(store.con, _samples((4, NOW + DAY + 10, 1.3)), settings)  # the window's edge leaves that day
        assert [(b["bucket_start"], b["bucket_seconds"]) for b in _buckets(store)] == [
            (edge_day, DAY),
            (NOW + 5 * HOUR, HOUR),
            (NOW + DAY, HOUR),
        ]


def test_storage_settings_are_checked() -> None:
    assert parse_storage(None, "c.toml") == HistorySettings(hourly_days=90)
    assert parse_storage({"hourly_days": 30}, "c.toml").hourly_seconds == 30 * DAY
    for raw, message in (
        ({"hourly_days": 0}, "at least 1"),
        ({"hourly_days": "90"}, "whole number"),
        ({"daily": 1}, "unknown key 'daily'"),
        ([1], "must be a table"),
    ):
        with pytest.raises(UserError, match=message):
            parse_storage(raw, "c.toml")


def test_each_bucket_is_one_row_without_an_index(tmp_path: Path) -> None:
    """wallet_health_history has no primary-key index (schema version 10; since 11 a view over wallet_health_buckets and
    wallet_health_keys, neither indexed): a bucket's key stays one row because each write folds it with its stored row,
    and a key one number because each write numbers only the keys not numbered yet. Three wallets in two markets sampled
    every 20 minutes over four days, in runs of five samples each re-sending the previous run's last one (the same block
    again), then a backfill of earlier samples landing in buckets already downsampled to days: every sample counted
    once, every key one row."""
    settings = HistorySettings(hourly_days=2)
    keys = [(wallet, market) for wallet in ("0xa", "0xb", "0xc") for market in ("0xpool", "0xother")]
    start = NOW - 4 * DAY

    def batch(blocks: range) -> pl.DataFrame:
        return pl.concat(
            _samples(*((b, start + b * 1200, 1.0 + (b * 7 + n) % 50 / 100) for b in blocks)).with_columns(
                pl.lit(wallet).alias("wallet"), pl.lit(market).alias("market")
            )
            for n, (wallet, market) in enumerate(keys)
        )

    with Store(tmp_path / "h.duckdb") as store:
        added = sum(
            record_samples(store.con, batch(range(max(first - 1, 100), first + 5)), settings)
            for first in range(100, 4 * 72, 5)
        )
        added += record_samples(store.con, batch(range(10, 100)), settings)  # the backfill, days ago
        constraints = store.query(
            "SELECT constraint_type FROM duckdb_constraints() WHERE table_name LIKE 'wallet_health_%' "
            "AND constraint_type <> 'NOT NULL'"
        )
        numbered = store.query(
            "SELECT count(*) AS n, count(DISTINCT key_id) AS ids, count(DISTINCT (protocol, chain_id, market, wallet)) "
            "AS keys FROM wallet_health_keys"
        ).row(0, named=True)
        stored = store.query(
            "SELECT count(*) AS n, count(DISTINCT (protocol, chain_id, market, wallet, bucket_start)) AS keys, "
            "sum(samples)::BIGINT AS samples, count(DISTINCT bucket_seconds) AS sizes FROM wallet_health_history"
        ).row(0, named=True)
    fed = len(keys) * len(range(10, 290))  # blocks 10 to 289 (the last run, from block 285, ends at 289)
    assert constraints.is_empty()
    assert numbered == {"n": len(keys), "ids": len(keys), "keys": len(keys)}
    assert stored["n"] == stored["keys"] > 0
    assert added == stored["samples"] == fed
    assert stored["sizes"] == 2, "hour buckets and day buckets both written"


def test_a_finished_days_hours_are_stored_again_by_key(tmp_path: Path) -> None:
    """Runs append their buckets in time order; once the newest sample is in the next day, the finished day's hour
    buckets are stored again sorted by key (a key's hours together, which DuckDB compresses better), every figure as
    it was; the new day's buckets stay in time order."""
    wallets = ("0xc", "0xa", "0xb")

    def run(block: int, ts: int) -> pl.DataFrame:
        return pl.concat(
            _samples((block, ts, 1.0 + n / 10 + block / 1000)).with_columns(pl.lit(w).alias("wallet"))
            for n, w in enumerate(wallets)
        )

    def stored(store: Store) -> list[tuple[str, int]]:
        return [
            (r["wallet"], r["bucket_start"])
            for r in store.query(
                "SELECT k.wallet, b.bucket_start FROM wallet_health_buckets b JOIN wallet_health_keys k USING (key_id) "
                "ORDER BY b.rowid"
            ).to_dicts()
        ]

    with Store(tmp_path / "h.duckdb") as store:
        for hour in range(3):
            record_samples(store.con, run(10 + hour, NOW + hour * HOUR + 60), HistorySettings())
        in_time_order = stored(store)
        before = store.query("SELECT * FROM wallet_health_history ORDER BY ALL")
        record_samples(store.con, run(20, NOW + DAY + 60), HistorySettings())  # the next day's first run
        after = stored(store)
        kept = store.query(f"SELECT * FROM wallet_health_history WHERE bucket_start < {NOW + DAY} ORDER BY ALL")
    assert [start for _, start in in_time_order] == [NOW + h * HOUR for h in range(3) for _ in wallets]
    assert sorted(in_time_order) == sorted((w, NOW + h * HOUR) for h in range(3) for w in wallets)
    assert sorted(after) == sorted([*in_time_order, *((w, NOW + DAY) for w in wallets)])
    finished = [row for row in after if row[1] < NOW + DAY]
    assert finished == sorted(finished), "the finished day's hours by key"
    assert sorted(row for row in after if row[1] >= NOW + DAY) == sorted((w, NOW + DAY) for w in wallets)
    assert kept.equals(before)
