"""A steady run's round trips: `chainrisk run --devnet` of two code trees through a proxy with a provider's latency.

A run's index phase waits on round trips. Here every HTTP request to the 300-wallet devnet's anvil goes through a
loopback proxy that forwards it after `--latency-ms`, and accepts each new connection after `--connect-ms` (the TCP
and TLS handshakes a remote HTTPS provider costs before a connection's first request). The baseline tree (an earlier
commit's `git archive`) and the candidate (this checkout by default) run as processes of their own, in turns on the
same blocks: one empty block (evm_mine), then both runs with no block between, `--rounds` times, after a first run of
each that reads every market's history (not compared). Each run's HTTP requests and new connections are counted at
the proxy, and after every round the two databases must hold the same positions, wallet health and liquidation curve.
`--candidate-args` and `--baseline-args` add arguments to each side's runs (`--aggregate-calls 100` against
`--aggregate-calls 0`: the same tree with and without packing); the JSON-RPC calls each run sends, what providers bill,
are counted too. Figures go to
benchmarks/results/round_trips.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The benchmark beside this one (the tables it compares) and the checkout's tests (their counting proxy).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from parallel_markets import COMPARED

from chainrisk.devnet.build import DevnetOptions, build_devnet
from chainrisk.devnet.node import stop_process
from chainrisk.rpc import RpcClient
from chainrisk.store.db import Store
from tests.rpcproxy import CountingProxy

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "round_trips.json"


def _run(tree: Path, state: Path, db: Path, url: str, extra: Sequence[str] = ()) -> str:
    """One `chainrisk run --devnet` of `tree`'s code in a process of its own (`extra`: more arguments); its summary
    line."""
    env = {**os.environ, "PYTHONPATH": str(tree), "CHAINRISK_STATE_DIR": str(state)}
    done = subprocess.run(
        [sys.executable, "-m", "chainrisk.cli", "run", "--devnet", "--rpc-url", url, "--db", str(db), *extra],
        cwd=tree,  # `python -m` puts the working folder first on sys.path: the run imports its tree's package
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{tree}: run failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return done.stdout.strip().splitlines()[-1]


def _same_tables(left: Path, right: Path) -> dict[str, int]:
    counts = {}
    for table, sql in COMPARED.items():
        with Store(left, read_only=True) as a, Store(right, read_only=True) as b:
            first, second = a.query(sql).drop("run_id", strict=False), b.query(sql).drop("run_id", strict=False)
        if not first.sort(first.columns).equals(second.sort(first.columns)):
            raise SystemExit(f"{table}: the candidate stored other rows than the baseline")
        counts[table] = first.height
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="a chainrisk tree (the code before)")
    parser.add_argument("--candidate", type=Path, default=ROOT)
    parser.add_argument("--wallets", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=100.0, help="added to each HTTP request")
    parser.add_argument("--connect-ms", type=float, default=200.0, help="added to each new connection")
    parser.add_argument("--rounds", type=int, default=5, help="steady runs of each side, taking turns")
    parser.add_argument("--candidate-args", default="", help="more arguments for the candidate's runs (one string)")
    parser.add_argument("--baseline-args", default="", help="more arguments for the baseline's runs (one string)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    extra = {"baseline": args.baseline_args.split(), "candidate": args.candidate_args.split()}
    trees = {"baseline": args.baseline.resolve(), "candidate": args.candidate.resolve()}
    for name, tree in trees.items():
        if not (tree / "chainrisk" / "__init__.py").is_file():
            raise SystemExit(f"{name}: {tree} is not a chainrisk tree")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="chainrisk-round-trips-") as folder:
        state = Path(folder)
        options = DevnetOptions.demo(args.wallets, args.seed)
        manifest = build_devnet(options, state / "devnet", detach=False)
        proxy = CountingProxy(str(manifest["rpc_url"]), args.latency_ms / 1000, args.connect_ms / 1000).start()
        url = proxy.url
        dbs = {name: state / f"{name}.duckdb" for name in trees}
        compared: dict[str, int] = {}
        try:
            first: dict[str, int] = {}
            for name, tree in trees.items():  # first runs: every market's history read once, not compared
                calls = proxy.calls
                print(f"{name} first run: {_run(tree, state, dbs[name], url, extra[name])}", flush=True)
                first[name] = proxy.calls - calls
            for round_ in range(args.rounds):
                with RpcClient(str(manifest["rpc_url"])) as rpc:
                    rpc.call("evm_mine")
                for name in list(trees) if round_ % 2 == 0 else list(reversed(trees)):
                    requests, connections, calls = proxy.requests, proxy.connections, proxy.calls
                    started = time.perf_counter()
                    line = _run(trees[name], state, dbs[name], url, extra[name])
                    runs[name].append(
                        {
                            "run_s": round(time.perf_counter() - started, 2),
                            "requests": proxy.requests - requests,
                            "connections": proxy.connections - connections,
                            "calls": proxy.calls - calls,
                            "line": line,
                        }
                    )
                    print(f"round {round_ + 1} {name}: {runs[name][-1]}", flush=True)
                compared = _same_tables(dbs["baseline"], dbs["candidate"])
        finally:
            proxy.stop()
            stop_process(int(manifest["pid"]))
    median = {name: statistics.median(r["run_s"] for r in rows) for name, rows in runs.items()}
    result = {
        "command": "python benchmarks/round_trips.py " + " ".join(sys.argv[1:]),
        "latency_ms": args.latency_ms,
        "connect_ms": args.connect_ms,
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "runs": runs,
        "median_run_s": median,
        "median_requests": {n: statistics.median(r["requests"] for r in rows) for n, rows in runs.items()},
        "median_connections": {n: statistics.median(r["connections"] for r in rows) for n, rows in runs.items()},
        "median_calls": {n: statistics.median(r["calls"] for r in rows) for n, rows in runs.items()},
        "first_run_calls": first,
        "ratio": round(median["candidate"] / median["baseline"], 3),
        "same_rows_after_each_round": compared,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
