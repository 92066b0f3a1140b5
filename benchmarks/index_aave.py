"""Aave V3 indexing speed against the naive way, side by side in one run on one devnet, per pool version.

Wallet refresh: chainrisk reads every account through the lens (eth_call with state override, JSON-RPC
batches) and computes account data; the naive way asks web3.py `contract.functions.X().call()` for each
read (configuration, e-mode, the token balances per touched reserve), and, as a second baseline, one
`getUserAccountData` call per wallet, whose six fields must equal chainrisk's for every sampled wallet (else the
benchmark stops: a fast wrong answer is no result). Log decoding: chainrisk's hex slicing against eth-abi decoding
of each log (topics and data) with the event ABI. `--version 3.0.2` runs the aave-v3-core market,
`--version 3.6` the aave-v3-origin 3.6.0 bytecode (the same population drives both); figures go to
benchmarks/results/index_aave.json (3.0.2) and index_aave_3.6.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from web3 import Web3

from chainrisk.abi import _type_str, event_topic, load_abi
from chainrisk.devnet.build import DevnetOptions, build_devnet
from chainrisk.devnet.extras import BASE_PROTOCOLS
from chainrisk.devnet.node import free_port, stop_process
from chainrisk.devnet.prices import parse_start
from chainrisk.devnet.toolchain import aave_origin_contracts
from chainrisk.jobs.index import index_aave_v3
from chainrisk.protocols.aave_v3 import normalise
from chainrisk.protocols.aave_v3.account import is_borrowing, is_collateral
from chainrisk.protocols.aave_v3.account_book import AccountBook
from chainrisk.protocols.aave_v3.account_table import account_table
from chainrisk.protocols.aave_v3.events import POOL_TOPICS, TRANSFER_TOPIC, decode_log, token_kinds
from chainrisk.protocols.aave_v3.snapshot import discover, read_accounts, read_emode_categories, read_reserves
from chainrisk.rpc import RpcClient
from chainrisk.store.db import Store

RESULTS = {
    "3.0.2": Path(__file__).parent / "results" / "index_aave.json",
    "3.6": Path(__file__).parent / "results" / "index_aave_3.6.json",
}
ZERO_ADDRESS = "0x" + "0" * 40


def _chainrisk_refresh(
    rpc: RpcClient, provider: str, wallets: list[str], masks: dict[str, int], block: int
) -> tuple[float, dict[str, tuple[int, ...]]]:
    """Seconds to refresh every wallet, and each wallet's six getUserAccountData fields as chainrisk computes them."""
    started = time.perf_counter()
    deployment = discover(rpc, provider, block)
    reserves = read_reserves(rpc, deployment, block)
    categories = read_emode_categories(rpc, deployment, {r.config.emode_category for r in reserves}, block)
    accounts = read_accounts(rpc, deployment, reserves, wallets, masks, block)
    timestamp = int(rpc.call("eth_getBlockByNumber", [hex(block), False])["timestamp"], 16)
    market = normalise.market_state(reserves, categories, deployment.version, timestamp)
    book = AccountBook.of(accounts)
    table = account_table(book, market)
    normalise.contract_frames(book, table, 31337, provider, block, timestamp, deployment.base_currency_unit)
    seconds = time.perf_counter() - started
    columns = (
        table.total_collateral_base,
        table.total_debt_base,
        table.available_borrows_base,
        table.current_liquidation_threshold,
        table.ltv,
        table.health_factor,
    )
    fields: dict[str, tuple[int, ...]] = {
        wallet: tuple(int(c[i]) for c in columns) for i, wallet in enumerate(book.wallets.to_list())
    }
    return seconds, fields


def _naive_refresh(w3: Web3, provider: str, wallets: list[str], block: int) -> float:
    """web3.py, one call per read, the same reads chainrisk makes."""
    started = time.perf_counter()
    pool_abi = load_abi("aave-v3", "IPool").entries
    token_abi = load_abi("aave-v3", "IAToken").entries
    provider_contract = w3.eth.contract(
        address=Web3.to_checksum_address(provider), abi=load_abi("aave-v3", "IPoolAddressesProvider").entries
    )
    pool = w3.eth.contract(address=provider_contract.functions.getPool().call(block_identifier=block), abi=pool_abi)
    assets = pool.functions.getReservesList().call(block_identifier=block)
    tokens = []
    for asset in assets:
        data = pool.functions.getReserveData(asset).call(block_identifier=block)
        # 3.2+ has no stable debt: the legacy struct's stable debt token is the zero address, nothing to read.
        tokens.append([w3.eth.contract(address=a, abi=token_abi) for a in (data[8], data[10], data[9])])
    for wallet in wallets:
        user = Web3.to_checksum_address(wallet)
        config = pool.functions.getUserConfiguration(user).call(block_identifier=block)[0]
        pool.functions.getUserEMode(user).call(block_identifier=block)
        for reserve_id, (a_token, variable, stable) in enumerate(tokens):
            if is_collateral(config, reserve_id) or is_borrowing(config, reserve_id):
                a_token.functions.scaledBalanceOf(user).call(block_identifier=block)
                variable.functions.scaledBalanceOf(user).call(block_identifier=block)
                if stable.address != ZERO_ADDRESS:
                    stable.functions.balanceOf(user).call(block_identifier=block)
    return time.perf_counter() - started


def _naive_account_data(
    w3: Web3, pool_address: str, wallets: list[str], block: int
) -> tuple[float, dict[str, tuple[int, ...]]]:
    started = time.perf_counter()
    pool = w3.eth.contract(address=Web3.to_checksum_address(pool_address), abi=load_abi("aave-v3", "IPool").entries)
    answers = {
        wallet: tuple(pool.functions.getUserAccountData(Web3.to_checksum_address(wallet)).call(block_identifier=block))
        for wallet in wallets
    }
    return time.perf_counter() - started, answers


def _eth_abi_decode_all(logs: list[dict[str, Any]]) -> float:
    """Per-log decoding with eth-abi: indexed values from topics, the rest from data, by the event ABI."""
    # 3.0's events, and those later versions added (DeficitCreated, ...) from aave-v3-origin's compiled Pool.
    entries = [*load_abi("aave-v3", "IPool").entries, *aave_origin_contracts()["PoolInstance"].abi]
    events = {e["name"]: e for e in entries if e.get("type") == "event"}
    transfer = next(
        e for e in load_abi("aave-v3", "IAToken").entries if e.get("type") == "event" and e["name"] == "Transfer"
    )
    by_topic = {t: events[name] for t, name in POOL_TOPICS.items()} | {
        event_topic("Transfer(address,address,uint256)"): transfer
    }
    started = time.perf_counter()
    for log in logs:
        abi = by_topic.get(log["topics"][0])
        if abi is None:
            continue
        indexed = [p for p in abi["inputs"] if p["indexed"]]
        plain = [p for p in abi["inputs"] if not p["indexed"]]
        for param, word in zip(indexed, log["topics"][1:], strict=True):
            abi_decode([_type_str(param)], bytes.fromhex(word[2:]))
        abi_decode([_type_str(p) for p in plain], bytes.fromhex(log["data"][2:]))
    return time.perf_counter() - started


def run(args: argparse.Namespace, version: str) -> dict[str, Any]:
    """Builds the devnet with `version`'s market, indexes it, and times the refresh and decoding ways."""
    options = DevnetOptions(
        args.wallets,
        args.days,
        args.seed,
        free_port(),
        parse_start("2022-05-06"),
        4,
        BASE_PROTOCOLS,
        aave_version=version,
    )
    with tempfile.TemporaryDirectory() as folder:
        manifest = build_devnet(options, Path(folder) / "devnet", detach=False)
        try:
            provider = manifest["aave_v3"]["pool_addresses_provider"]
            db = Path(folder) / "bench.duckdb"
            report = index_aave_v3(manifest["rpc_url"], provider, db)
            with Store(db) as store:
                wallets = store.query("SELECT wallet FROM wallet_health ORDER BY wallet")["wallet"].to_list()
                held = store.query(
                    "SELECT DISTINCT wallet, reserve FROM raw_aave_v3_events WHERE event = 'ATokenTransfer'"
                )
            block = report.to_block
            with RpcClient(manifest["rpc_url"]) as rpc:
                deployment = discover(rpc, provider, block)
                reserves = read_reserves(rpc, deployment, block)
                ids = {r.asset: r.reserve_id for r in reserves}
                masks: dict[str, int] = {}
                for wallet, reserve in held.iter_rows():
                    masks[wallet] = masks.get(wallet, 0) | (1 << ids[reserve])
                refreshes = [_chainrisk_refresh(rpc, provider, wallets, masks, block) for _ in range(3)]
                ours = statistics.median(seconds for seconds, _ in refreshes)
                computed = refreshes[0][1]
                kinds = token_kinds(reserves)
                query = {
                    "address": [manifest["aave_v3"]["pool"], *kinds],
                    "topics": [[*POOL_TOPICS, TRANSFER_TOPIC]],
                    "fromBlock": "0x0",
                    "toBlock": hex(block),
                }
                logs = rpc.call("eth_getLogs", [query])
            started = time.perf_counter()
            for _ in range(5):
                for log in logs:
                    decode_log(log, kinds)
            ours_decode = (time.perf_counter() - started) / 5
            naive_decode = _eth_abi_decode_all(logs)
            w3 = Web3(Web3.HTTPProvider(manifest["rpc_url"]))
            sample = wallets[: args.naive_sample]
            naive = _naive_refresh(w3, provider, sample, block)
            naive_account, answers = _naive_account_data(w3, manifest["aave_v3"]["pool"], sample, block)
        finally:
            stop_process(int(manifest["pid"]))
    differing = [w for w in sample if computed[w] != answers[w]]
    if differing:
        raise SystemExit(f"{version}: chainrisk's account data differ from getUserAccountData for {differing[:3]}")
    ours_rate = len(wallets) / ours
    naive_rate = len(sample) / naive
    account_rate = len(sample) / naive_account
    return {
        "command": (
            f"python benchmarks/index_aave.py --version {version} --wallets {args.wallets} --days {args.days:g} "
            f"--seed {args.seed}"
        ),
        "pool_version": str(deployment.version),
        "pool_revision": deployment.pool_revision,
        "wallets_indexed": len(wallets),
        "wallets_with_debt": report.wallets_with_debt,
        "first_index_s": report.seconds,
        "refresh": {
            "chainrisk_wallets_per_s": round(ours_rate),
            "naive_web3py_reads_wallets_per_s": round(naive_rate, 1),
            "naive_web3py_getUserAccountData_wallets_per_s": round(account_rate, 1),
            "speedup_vs_reads": round(ours_rate / naive_rate, 1),
            "speedup_vs_getUserAccountData": round(ours_rate / account_rate, 1),
            "getUserAccountData_equal_wallets": len(sample),
        },
        "log_decoding": {
            "logs": len(logs),
            "chainrisk_logs_per_s": round(len(logs) / ours_decode),
            "eth_abi_logs_per_s": round(len(logs) / naive_decode),
            "speedup": round(naive_decode / ours_decode, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", choices=[*RESULTS, "both"], default="3.0.2", help="the Aave market's bytecode")
    parser.add_argument("--wallets", type=int, default=5_000)
    parser.add_argument("--days", type=float, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--naive-sample", type=int, default=300, help="wallets the naive ways refresh (rate is per wallet)"
    )
    args = parser.parse_args()
    for version in list(RESULTS) if args.version == "both" else [args.version]:
        result = run(args, version)
        RESULTS[version].parent.mkdir(parents=True, exist_ok=True)
        RESULTS[version].write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
