"""Compound V3 snapshot refresh speed against per-call web3.py, side by side in one run on one stand-in devnet.

Refresh: chainrisk reads the market and every account's userBasic, then userCollateral of the assets it has
entered, in JSON-RPC batches, and computes balances, health and absorb predictions (the adapter's `snapshot`);
the naive way asks web3.py `contract.functions.X().call()` for borrowBalanceOf of each wallet and
collateralBalanceOf of each wallet and asset. Both read the same block. Figures go to
benchmarks/results/index_compound_v3.json.

Steady (`--steady-blocks N`): the market indexed to N blocks before the head, then to the head, in two copies side by
side: the adapter's snapshot_since taking the collateral of the accounts no event touched since from the previous
snapshot's rows, against the same index reading every account's collateral (previous_tables emptied: the code
before); userCollateral calls counted, the two databases' raw accounts and collateral and positions checked equal.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from web3 import Web3

from chainrisk.devnet.compound_v3 import CometDevnetOptions, build_compound_v3
from chainrisk.devnet.node import BlockBuilder, free_port, start_anvil, stop_process
from chainrisk.devnet.prices import parse_start
from chainrisk.jobs.index import index_market
from chainrisk.protocols.compound_v3.adapter import ADAPTER, CompoundV3Adapter
from chainrisk.protocols.compound_v3.snapshot import COMET
from chainrisk.rpc import RpcClient
from chainrisk.rpc import client as rpc_client
from chainrisk.store.db import Store

RESULTS = Path(__file__).parent / "results" / "index_compound_v3.json"


def _chainrisk_refresh(url: str, comet: str, oracle: str, db: Path, block: int, timestamp: int) -> tuple[float, int]:
    """Seconds for the adapter's discover and snapshot at `block`, and the accounts it read."""
    with Store(db) as store:
        columns = ", ".join(ADAPTER.account_columns)
        events = store.query(f"SELECT DISTINCT {columns} FROM {ADAPTER.events_table}")
    with RpcClient(url) as rpc:
        started = time.perf_counter()
        deployment = ADAPTER.discover(rpc, comet, block, {"usd_oracle": oracle})
        snapshot = ADAPTER.snapshot(rpc, deployment, events, 31337, block, timestamp)
        return time.perf_counter() - started, snapshot.accounts


def _naive_refresh(url: str, comet: str, wallets: list[str], assets: list[str], block: int) -> float:
    """web3.py, one call per read: borrowBalanceOf per wallet, collateralBalanceOf per wallet and asset."""
    w3 = Web3(Web3.HTTPProvider(url))
    market = w3.eth.contract(address=Web3.to_checksum_address(comet), abi=COMET.entries)
    checksummed = [Web3.to_checksum_address(a) for a in assets]
    started = time.perf_counter()
    for wallet in wallets:
        user = Web3.to_checksum_address(wallet)
        market.functions.borrowBalanceOf(user).call(block_identifier=block)
        for asset in checksummed:
            market.functions.collateralBalanceOf(user, asset).call(block_identifier=block)
    return time.perf_counter() - started


def _steady(
    url: str, comet: str, oracle: dict[str, str], early: Path, db: Path, block: int, reuse: bool
) -> dict[str, Any]:
    """A copy of `early` (indexed some blocks back) indexed to `block`: seconds and userCollateral calls."""
    shutil.copy(early, db)
    selector = "0x" + COMET.selector("userCollateral").hex()
    asked = [0]
    exchange = rpc_client.RpcClient._exchange

    def counted(self: RpcClient, calls: Any, pending: list[int]) -> Any:
        asked[0] += sum(1 for i in pending if calls[i][0] == "eth_call" and calls[i][1][0]["data"].startswith(selector))
        return exchange(self, calls, pending)

    tables = CompoundV3Adapter.previous_tables
    rpc_client.RpcClient._exchange = counted  # type: ignore[method-assign]
    CompoundV3Adapter.previous_tables = tables if reuse else ()
    try:
        started = time.perf_counter()
        index_market("compound-v3", url, comet, db, options=oracle, to_block=block)
        seconds = time.perf_counter() - started
    finally:
        rpc_client.RpcClient._exchange = exchange  # type: ignore[method-assign]
        CompoundV3Adapter.previous_tables = tables
    return {"s": round(seconds, 3), "user_collateral_calls": asked[0]}


def _same(left: Path, right: Path) -> None:
    for table in ("raw_compound_v3_accounts", "raw_compound_v3_collateral", "positions", "wallet_health"):
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        with Store(left, read_only=True) as a, Store(right, read_only=True) as b:
            if not a.query(sql).equals(b.query(sql)):
                raise SystemExit(f"{table}: the steady index with reuse stored other rows than the full read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wallets", type=int, default=2_000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--naive-sample", type=int, default=300, help="wallets web3.py refreshes (rate is per wallet)")
    parser.add_argument("--steady-blocks", type=int, default=0, help="a steady index over this many blocks (0: none)")
    parser.add_argument("--rounds", type=int, default=3, help="steady indexes of each side, taking turns")
    args = parser.parse_args()
    options = CometDevnetOptions(wallets=args.wallets, days=args.days, seed=args.seed, bare=False)
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        process = start_anvil(port, 31337, Path(folder) / "anvil.log", detach=False)
        url = f"http://127.0.0.1:{port}"
        try:
            with RpcClient(url) as rpc:
                builder = BlockBuilder(rpc, timestamp=int(parse_start(options.start).timestamp()) - 86_400)
                started = time.perf_counter()
                manifest = build_compound_v3(builder, options)
                build_s = time.perf_counter() - started
            db = Path(folder) / "bench.duckdb"
            oracle = {"usd_oracle": manifest["usd_oracle"]}
            report = index_market("compound-v3", url, manifest["comet"], db, options=oracle)
            block = report.to_block
            with RpcClient(url) as rpc:
                timestamp = int(rpc.call("eth_getBlockByNumber", [hex(block), False])["timestamp"], 16)
            runs = [
                _chainrisk_refresh(url, manifest["comet"], manifest["usd_oracle"], db, block, timestamp)
                for _ in range(3)
            ]
            ours = statistics.median(seconds for seconds, _ in runs)
            accounts = runs[0][1]
            with Store(db) as store:
                wallets = store.query(
                    f"SELECT wallet FROM raw_compound_v3_accounts WHERE block_number = {block} ORDER BY wallet"
                )["wallet"].to_list()
            assets = [a for s, a in manifest["tokens"].items() if s != "USDC"]
            sample = wallets[: args.naive_sample]
            naive = statistics.median(_naive_refresh(url, manifest["comet"], sample, assets, block) for _ in range(3))
            steady: dict[str, Any] = {}
            if args.steady_blocks:
                early = Path(folder) / "early.duckdb"
                index_market(
                    "compound-v3", url, manifest["comet"], early, options=oracle, to_block=block - args.steady_blocks
                )
                with Store(early) as store:
                    touched = store.query(
                        "SELECT count(DISTINCT w) AS n FROM (SELECT wallet AS w FROM raw_compound_v3_events "
                        "UNION ALL SELECT counterparty FROM raw_compound_v3_events) WHERE w IS NOT NULL"
                    )
                sides: dict[str, list[dict[str, Any]]] = {"reuse": [], "full": []}
                for n in range(args.rounds):
                    order = ("reuse", "full") if n % 2 == 0 else ("full", "reuse")
                    for side in order:
                        db_side = Path(folder) / f"steady-{side}.duckdb"
                        sides[side].append(
                            _steady(url, manifest["comet"], oracle, early, db_side, block, side == "reuse")
                        )
                    _same(Path(folder) / "steady-reuse.duckdb", Path(folder) / "steady-full.duckdb")
                with Store(Path(folder) / "steady-reuse.duckdb") as store:
                    since = store.query(
                        "SELECT count(DISTINCT w) AS n FROM (SELECT wallet AS w FROM raw_compound_v3_events "
                        f"WHERE block_number > {block - args.steady_blocks} UNION ALL SELECT counterparty "
                        f"FROM raw_compound_v3_events WHERE block_number > {block - args.steady_blocks}) "
                        "WHERE w IS NOT NULL"
                    )
                median = {k: statistics.median(r["s"] for r in v) for k, v in sides.items()}
                steady = {
                    "blocks": args.steady_blocks,
                    "wallets_named_before": int(touched["n"][0]),
                    "wallets_named_in_the_blocks": int(since["n"][0]),
                    "runs": sides,
                    "median_s": median,
                    "ratio": round(median["reuse"] / median["full"], 3),
                    "same_rows": True,
                }
        finally:
            stop_process(process.pid)
    ours_rate = accounts / ours
    naive_rate = len(sample) / naive
    result = {
        "command": f"python benchmarks/index_compound_v3.py --wallets {args.wallets} --days {args.days:g} "
        f"--seed {args.seed} --naive-sample {args.naive_sample} --steady-blocks {args.steady_blocks} "
        f"--rounds {args.rounds}",
        "devnet_build_s": round(build_s, 1),
        "accounts_indexed": accounts,
        "accounts_with_debt": report.wallets_with_debt,
        "first_index_s": report.seconds,
        "collateral_assets": len(assets),
        "refresh": {
            "chainrisk_s": round(ours, 3),
            "chainrisk_wallets_per_s": round(ours_rate),
            "naive_web3py_wallets": len(sample),
            "naive_web3py_s": round(naive, 3),
            "naive_web3py_wallets_per_s": round(naive_rate, 1),
            "speedup": round(ours_rate / naive_rate, 1),
        },
        "steady": steady,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
