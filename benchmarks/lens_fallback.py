"""What a node without eth_call state overrides costs: the devnet's lensed markets indexed through lenses, and by plain
getters (chainrisk.protocols.lens), side by side.

On a 300-wallet devnet of every protocol, each market whose accounts are read through a lens (Aave V3.0.2 and V3.6,
Maker/Sky and Liquity stand-ins) is indexed into a new file at one block through a counting proxy, `--rounds` times
each way in turns: as the node is (the lenses), and through the proxy playing a node that refuses the override. Each
index's HTTP requests, JSON-RPC calls and seconds are counted per market; the first (lensed) and the last (plain)
files must hold the same positions and wallet health (Maker's prices aside: without the OSM's override they are the
Vat's spot's, by design). Figures go to benchmarks/results/lens_fallback.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chainrisk.config import devnet_config
from chainrisk.devnet.build import DevnetOptions, build_devnet
from chainrisk.devnet.node import stop_process
from chainrisk.jobs.index import index_market
from chainrisk.protocols.lens import LENS_UNANSWERED
from chainrisk.rpc import RpcClient
from chainrisk.store.db import Store
from tests.rpcproxy import CountingProxy

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "lens_fallback.json"
LENSED = ("aave-v3", "liquity-v1", "maker")
#: Compared between the two ways: what the engine scores (Maker's prices left out, as tests/test_lens_fallback.py).
COMPARED = (
    "SELECT protocol, market, wallet, asset, collateral_amount, debt_amount FROM positions ORDER BY ALL",
    "SELECT protocol, market, wallet, health_factor_wad, health_factor FROM wallet_health ORDER BY ALL",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wallets", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="indexes of each way, taking turns")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    output = args.output.resolve()
    rows: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="chainrisk-lens-fallback-") as folder:
        state = Path(folder)
        options = DevnetOptions.demo(args.wallets, args.seed)
        manifest = build_devnet(options, state / "devnet", detach=False)
        try:
            with RpcClient(str(manifest["rpc_url"])) as rpc:
                head = rpc.head()
            markets = [m for m in devnet_config(manifest, state / "x.duckdb").markets if m.protocol in LENSED]
            files: dict[str, Path] = {}
            for round_ in range(args.rounds):
                ways = ("lens", "plain") if round_ % 2 == 0 else ("plain", "lens")
                for way in ways:
                    db = state / f"{way}-{round_}.duckdb"
                    files[way] = db
                    with CountingProxy(
                        str(manifest["rpc_url"]), overrides=None if way == "lens" else "refuse"
                    ) as proxy:
                        for market in markets:
                            requests, calls, started = proxy.requests, proxy.calls, time.perf_counter()
                            report = index_market(
                                market.protocol, proxy.url, market.address, db, options=market.options, to_block=head
                            )
                            unanswered = report.faults_absorbed.get(LENS_UNANSWERED, 0)
                            if (unanswered > 0) != (way == "plain"):
                                raise SystemExit(f"{market.name}: {unanswered} lens calls unanswered the {way} way")
                            rows.setdefault(market.name, {}).setdefault(way, []).append(
                                {
                                    "seconds": round(time.perf_counter() - started, 3),
                                    "requests": proxy.requests - requests,
                                    "calls": proxy.calls - calls,
                                    "wallets": report.wallets,
                                }
                            )
                    print(f"round {round_ + 1} {way}: done", flush=True)
            with Store(files["lens"], read_only=True) as lens, Store(files["plain"], read_only=True) as plain:
                for sql in COMPARED:
                    if not lens.query(sql).equals(plain.query(sql)):
                        raise SystemExit(f"the plain getters stored other rows than the lenses: {sql}")
        finally:
            stop_process(int(manifest["pid"]))
    summary = {
        name: {
            way: {
                "median_seconds": statistics.median(r["seconds"] for r in runs),
                "calls": runs[0]["calls"],
                "requests": runs[0]["requests"],
                "wallets": runs[0]["wallets"],
            }
            for way, runs in ways_.items()
        }
        for name, ways_ in rows.items()
    }
    result = {
        "command": "python benchmarks/lens_fallback.py " + " ".join(sys.argv[1:]),
        "cpu_count": os.cpu_count(),
        "load_average": [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]],
        "block": head,
        "summary": summary,
        "runs": rows,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
