"""Markets indexed side by side: `chainrisk run` with its markets one after the other against several at once.

A run's index phase is round trips: on the 300-wallet devnet a steady run sends ~116 HTTP requests for its six
markets, and a real provider answers each after tens to hundreds of milliseconds. Here every request goes through a
loopback proxy that forwards to the devnet's anvil after `--latency-ms` (the round trip a remote provider adds). With
`--urls one` the six markets are one chain's, read through one proxy (a config of one chain); with `--urls each` each
market is read through a proxy of its own, as six chains (`[chains.<name>]` entries, all of chain 31337). Two
databases take turns on the same blocks: the baseline with `parallel_markets = 1` (one market after the other, the
code before), the candidate with `--parallel` markets at once. Each round mines one block, then runs both (the same
pinned block; no block is mined between them), and checks that the two databases stored the same positions, wallet
health and liquidation curve. Figures go to benchmarks/results/parallel_markets.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from chainrisk.config import ChainConfig, devnet_config  # noqa: E402
from chainrisk.devnet.build import DevnetOptions, build_devnet  # noqa: E402
from chainrisk.devnet.node import stop_process  # noqa: E402
from chainrisk.jobs.run import run_once  # noqa: E402
from chainrisk.rpc import RpcClient  # noqa: E402
from chainrisk.store.db import Store  # noqa: E402
from tests.rpcproxy import CountingProxy  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "parallel_markets.json"
#: Tables whose rows must be the same in both databases after each round (their run ids aside).
COMPARED = {
    "positions": "SELECT * FROM positions",
    "wallet_health": "SELECT * FROM wallet_health",
    "liquidation_curve": "SELECT * FROM liquidation_curve",
}


def _same_tables(left: Path, right: Path) -> dict[str, int]:
    """Rows per compared table, after checking both databases hold the same rows in each."""
    counts = {}
    for table, sql in COMPARED.items():
        with Store(left, read_only=True) as a, Store(right, read_only=True) as b:
            first, second = a.query(sql), b.query(sql)
        keys = first.columns
        if not first.sort(keys).equals(second.sort(keys)):
            raise SystemExit(f"{table}: the parallel run stored other rows than the one-by-one run")
        counts[table] = first.height
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wallets", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=100.0, help="added to each HTTP request (round trip)")
    parser.add_argument("--parallel", type=int, default=4, help="the candidate's parallel_markets")
    parser.add_argument("--urls", choices=("one", "each"), default="one", help="one chain's RPC, or one per market")
    parser.add_argument("--rounds", type=int, default=3, help="steady runs of each side, taking turns")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chainrisk-parallel-") as folder:
        options = DevnetOptions.demo(args.wallets, args.seed)
        manifest = build_devnet(options, Path(folder) / "devnet", detach=False)
        proxies: list[CountingProxy] = []
        try:
            base = devnet_config(manifest, Path(folder) / "unused.duckdb")
            chains, markets = {}, []
            for i, market in enumerate(base.markets):
                if args.urls == "each" or not proxies:
                    proxy = CountingProxy(str(manifest["rpc_url"]), args.latency_ms / 1000).start()
                    proxies.append(proxy)
                    name = f"chain{i}"
                    chains[name] = ChainConfig(name, 31337, f"http://127.0.0.1:{proxy.server_address[1]}")
                markets.append(replace(market, chain=name))
            sides = {
                "one_by_one": replace(
                    base, db=Path(folder) / "one.duckdb", markets=markets, chains=chains, parallel_markets=1
                ),
                "parallel": replace(
                    base,
                    db=Path(folder) / "parallel.duckdb",
                    markets=markets,
                    chains=chains,
                    parallel_markets=args.parallel,
                ),
            }
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
            for config in sides.values():  # first runs: every market's history read once, not compared
                run_once(config, str(manifest["rpc_url"]))
            compared = {}
            for round_ in range(args.rounds):
                with RpcClient(str(manifest["rpc_url"])) as rpc:
                    rpc.call("evm_mine")
                order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
                for side in order:
                    before = sum(p.requests for p in proxies)
                    started = time.perf_counter()
                    report = run_once(sides[side], str(manifest["rpc_url"]))
                    wall = time.perf_counter() - started
                    if report.status != "ok":
                        raise SystemExit(f"{side} run {report.run_id}: {report.summary()}")
                    runs[side].append(
                        {
                            "run_s": round(wall, 2),
                            "index_s_per_market": [r.seconds for r in report.indexed],
                            "index_s_sum": round(sum(r.seconds for r in report.indexed), 2),
                            "score_s": report.score.seconds if report.score else None,
                            "requests": sum(p.requests for p in proxies) - before,
                            "block": report.indexed[0].to_block,
                        }
                    )
                compared = _same_tables(sides["one_by_one"].db, sides["parallel"].db)
        finally:
            for proxy in proxies:
                proxy.stop()
            stop_process(int(manifest["pid"]))
    median = {side: statistics.median(r["run_s"] for r in rows) for side, rows in runs.items()}
    result = {
        "command": "python benchmarks/parallel_markets.py " + " ".join(sys.argv[1:]),
        "chains": len(proxies),
        "parallel_markets": args.parallel,
        "latency_ms": args.latency_ms,
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "runs": runs,
        "median_run_s": median,
        "ratio": round(median["parallel"] / median["one_by_one"], 3),
        "same_rows_after_each_round": compared,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
