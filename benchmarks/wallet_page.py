"""The Wallet page's health history read, on any database with a published snapshot (a folder `scale.py --keep` left,
or a user's own): its own query (chainrisk.dashboard.wallet.health_history, every bucket of every market of one wallet,
the cold files included) for `--wallets` random borrowers, one read each (none is cached: each wallet is read once),
with the operating system's page cache as it is, then with it dropped before each read (`--drop-caches`, root on
Linux: what a read costs when the year's files are not in memory, as on a machine whose RAM is smaller than them).

Figures go to benchmarks/results/wallet_page.json (or `--output`): per pass the reads' p50, p95 and max, and the
buckets a wallet read; with the cold files' row groups and footer bytes, which set what a read scans.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import duckdb

from chainrisk.dashboard.wallet import health_history
from chainrisk.store.published import COLD_DATA, connect_reader, published_dir

RESULTS = Path(__file__).resolve().parent / "results"


def _drop_page_cache() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("1\n")


def summary(latencies: list[float]) -> dict[str, float]:
    """How many, p50, p95 and max (ms) of `latencies` (seconds)."""
    ordered = sorted(latencies)
    return {
        "reads": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def wallet_reads(db: Path, wallets: list[str], drop: bool = False) -> dict[str, Any]:
    """The Wallet page's health history of each of `wallets`, one read each (a wallet read once is never cached):
    summary() of the seconds, and the median buckets a wallet read; with `drop`, the page cache dropped before each."""
    seconds, rows = [], []
    for wallet in wallets:
        if drop:
            _drop_page_cache()
        started = time.perf_counter()
        rows.append(health_history(db, wallet).height)
        seconds.append(time.perf_counter() - started)
    return {**summary(seconds), "buckets_per_wallet_median": statistics.median(rows) if rows else 0}


def _cold_files(db: Path) -> dict[str, Any]:
    files = sorted(str(p) for p in (published_dir(db) / COLD_DATA).glob("*.parquet"))
    if not files:
        return {"files": 0}
    with duckdb.connect() as con:
        found = con.execute(
            "SELECT count(*), sum(num_rows), sum(num_row_groups), sum(footer_size) FROM parquet_file_metadata(?)",
            [files],
        ).fetchall()[0]
    return {"files": found[0], "rows": int(found[1]), "row_groups": int(found[2]), "footer_bytes": int(found[3])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a chainrisk database with a published snapshot")
    parser.add_argument("--wallets", type=int, default=20, help="borrowers read per pass")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drop-caches", action="store_true", help="also a pass with the page cache dropped")
    parser.add_argument("--output", default="wallet_page.json", help="results file name in benchmarks/results")
    args = parser.parse_args()
    with connect_reader(args.db) as con:
        borrowers = [r[0] for r in con.execute("SELECT wallet FROM stg_wallet_risk_latest ORDER BY wallet").fetchall()]
    rng = random.Random(args.seed)
    picked = rng.sample(borrowers, min(len(borrowers), 2 * args.wallets))
    result: dict[str, Any] = {
        "command": "python benchmarks/wallet_page.py --db DB "
        f"--wallets {args.wallets} --seed {args.seed}" + (" --drop-caches" if args.drop_caches else ""),
        "cold_files": _cold_files(args.db),
        "page_cache_as_it_is": wallet_reads(args.db, picked[: args.wallets]),
    }
    if args.drop_caches:
        result["page_cache_dropped_before_each_read"] = wallet_reads(args.db, picked[args.wallets :], drop=True)
    result["load_average_1_5_15"] = list(os.getloadavg())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
