"""The Markets page's "A market over time" read, on any database with a published snapshot (a folder `scale.py --keep`
left, or a user's own): the page's own query (chainrisk.dashboard.markets_page.market_history over
mart_market_health_history, which reads the cold days' market sums stored with their files) against the baseline,
the same bucket sums taken over every wallet's bucket at each read (what that view did before schema 18), side by
side in one process on the same snapshot, for the `--markets` markets with the most wallets, each over the page's
default range (its last 90 days) and over everything stored; `--rounds` reads of each, the two in turns, the
dashboard's cache cleared before each read. The two answers are checked equal (counts and blocks exactly, USD sums to
float rounding) before anything is reported.

Figures go to benchmarks/results/market_history.json (or `--output`): per market and range the buckets and wallets
read, each side's reads (p50, max) and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from chainrisk.dashboard import data
from chainrisk.dashboard.markets_page import DEFAULT_RANGE, HISTORY_RANGES, market_history
from chainrisk.store.published import connect_reader

RESULTS = Path(__file__).resolve().parent / "results"
#: The baseline: each market's bucket sums over its wallets' buckets, read from every bucket (hot and cold) at each
#: read, in the columns market_history returns (mart_market_health_history's definition before schema 18).
OVER_WALLETS = """
SELECT to_timestamp(bucket_start) AS bucket_time, bucket_seconds, max(last_block) AS block_number,
    to_timestamp(max(last_timestamp)) AS block_time, count(*) AS wallets, count(health_factor) AS borrowers,
    sum(collateral_usd) AS collateral_usd, sum(debt_usd) AS debt_usd, sum(bad_debt_usd) AS bad_debt_usd,
    count(*) FILTER (WHERE liquidatable) AS liquidatable_wallets,
    count(*) FILTER (WHERE liquidatable_samples > 0) AS wallets_liquidatable_in_bucket,
    min(health_factor) AS min_health_factor, min(health_factor_min) AS lowest_health_factor, sum(samples) AS samples,
    min(last_block) <> max(last_block) AS mixed_blocks
FROM stg_wallet_health_history
WHERE protocol = ? AND chain_id = ? AND market = ? AND bucket_start >= ?
GROUP BY bucket_start, bucket_seconds ORDER BY bucket_start
"""


def baseline_history(db: Path, protocol: str, chain_id: int, market: str, since: int) -> pl.DataFrame:
    """OVER_WALLETS for one market from `since`, through the dashboard's reader (a fresh connection, as the page's)."""
    return data.query(db, OVER_WALLETS, protocol, chain_id, market, since)


def _timed(read: Any) -> tuple[float, pl.DataFrame]:
    data._cached_query.clear()  # every read reaches the database, as the first load of each published snapshot does
    started = time.perf_counter()
    frame = read()
    return time.perf_counter() - started, frame


def compare(db: Path, market: tuple[str, int, str], since: int, rounds: int) -> dict[str, Any]:
    """`rounds` reads of the page's query and of the baseline for one market from `since`, in turns; their answers
    checked equal."""
    protocol, chain_id, name = market
    ours: list[float] = []
    theirs: list[float] = []
    found = baseline = pl.DataFrame()
    for _ in range(rounds):
        seconds, found = _timed(lambda: market_history(db, protocol, chain_id, name, since=since))
        ours.append(seconds)
        seconds, baseline = _timed(lambda: baseline_history(db, protocol, chain_id, name, since))
        theirs.append(seconds)
    assert_frame_equal(
        found.select(baseline.columns), baseline, check_exact=False, rel_tol=1e-9, abs_tol=1e-6, check_dtypes=False
    )
    return {
        "buckets": found.height,
        "wallet_buckets_summed_by_the_baseline": int(baseline["wallets"].sum()),
        "page_query_ms": {"p50": round(statistics.median(ours) * 1000, 1), "max": round(max(ours) * 1000, 1)},
        "baseline_ms": {"p50": round(statistics.median(theirs) * 1000, 1), "max": round(max(theirs) * 1000, 1)},
        "ratio_of_medians": round(statistics.median(ours) / statistics.median(theirs), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a chainrisk database with a published snapshot")
    parser.add_argument("--markets", type=int, default=3, help="the markets with the most wallets read")
    parser.add_argument("--rounds", type=int, default=5, help="reads of each side per market and range")
    parser.add_argument("--output", default="market_history.json", help="results file name in benchmarks/results")
    args = parser.parse_args()
    with connect_reader(args.db) as con:
        markets = con.execute(
            "SELECT protocol, chain_id, market, max(bucket_start) AS newest, max(wallets) AS wallets, count(*) "
            "FROM mart_market_health_history GROUP BY ALL ORDER BY wallets DESC, market LIMIT ?",
            [args.markets],
        ).fetchall()
    result: dict[str, Any] = {
        "command": f"python benchmarks/market_history.py --db DB --markets {args.markets} --rounds {args.rounds}",
        "markets": [],
    }
    for protocol, chain_id, market, newest, wallets, buckets in markets:
        days = HISTORY_RANGES[DEFAULT_RANGE]
        assert days is not None
        ranges = {DEFAULT_RANGE: int(newest) - days * 86_400, "everything stored": -(2**62)}
        entry: dict[str, Any] = {"market": [protocol, chain_id, market], "wallets": wallets, "buckets_stored": buckets}
        for label, since in ranges.items():
            entry[label] = compare(args.db, (protocol, int(chain_id), market), since, args.rounds)
            print(label, market, json.dumps(entry[label]))
        result["markets"].append(entry)
    result["load_average_1_5_15"] = list(os.getloadavg())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
