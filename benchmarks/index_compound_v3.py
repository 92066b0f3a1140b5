"""Compound V3 snapshot refresh speed against per-call web3.py, side by side in one run on one stand-in devnet.

Refresh: chainrisk reads the market and every account's userBasic, then userCollateral of the assets it has
entered, in JSON-RPC batches, and computes balances, health and absorb predictions (the adapter's `snapshot`);
the naive way asks web3.py `contract.functions.X().call()` for borrowBalanceOf of each wallet and
collateralBalanceOf of each wallet and asset. Both read the same block. Figures go to
benchmarks/results/index_compound_v3.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from web3 import Web3

from chainrisk.devnet.compound_v3 import CometDevnetOptions, build_compound_v3
from chainrisk.devnet.node import BlockBuilder, free_port, start_anvil, stop_process
from chainrisk.devnet.prices import parse_start
from chainrisk.jobs.index import index_market
from chainrisk.protocols.compound_v3.adapter import ADAPTER
from chainrisk.protocols.compound_v3.snapshot import COMET
from chainrisk.rpc import RpcClient
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wallets", type=int, default=2_000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--naive-sample", type=int, default=300, help="wallets web3.py refreshes (rate is per wallet)")
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
        finally:
            stop_process(process.pid)
    ours_rate = accounts / ours
    naive_rate = len(sample) / naive
    result = {
        "command": f"python benchmarks/index_compound_v3.py --wallets {args.wallets} --days {args.days:g} "
        f"--seed {args.seed} --naive-sample {args.naive_sample}",
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
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
