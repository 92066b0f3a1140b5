"""Liquity V1 refresh speed against per-call web3.py, side by side in one run on one devnet (the Liquity V1
stand-ins: chainrisk's own Solidity, not Liquity's bytecode).

chainrisk's refresh reads every trove owner seen in the events (`Troves` and `rewardSnapshots`, JSON-RPC batches),
the system state, and computes pending rewards, ICR, the verdicts, the predicted liquidation batch and the shared
frames; the baseline asks web3.py `getEntireDebtAndColl(borrower).call()` once per trove, which gives debt and
collateral only. Figures go to benchmarks/results/index_liquity_v1.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from web3 import Web3

from chainrisk.abi import load_abi
from chainrisk.devnet.liquity_v1 import LABEL, build_liquity
from chainrisk.devnet.node import BlockBuilder, free_port, start_anvil
from chainrisk.jobs.index import index_market
from chainrisk.protocols.liquity_v1.normalise import snapshot_frames
from chainrisk.protocols.liquity_v1.snapshot import discover, read_system, read_troves
from chainrisk.rpc import RpcClient
from chainrisk.store.db import Store

RESULTS = Path(__file__).parent / "results" / "index_liquity_v1.json"


def _chainrisk_refresh(rpc: RpcClient, trove_manager: str, wallets: list[str], block: int) -> float:
    started = time.perf_counter()
    deployment = discover(rpc, trove_manager, block)
    troves = read_troves(rpc, deployment, wallets, block)
    system = read_system(rpc, deployment, block)
    snapshot_frames(deployment, system, troves, 31337, block, 0)
    return time.perf_counter() - started


def _naive_refresh(w3: Web3, trove_manager: str, troves: list[str], block: int) -> float:
    """web3.py, one getEntireDebtAndColl call per trove."""
    started = time.perf_counter()
    contract = w3.eth.contract(
        address=Web3.to_checksum_address(trove_manager), abi=load_abi("liquity-v1", "ITroveManager").entries
    )
    for trove in troves:
        contract.functions.getEntireDebtAndColl(Web3.to_checksum_address(trove)).call(block_identifier=block)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--troves", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--naive-sample", type=int, default=300, help="troves the baseline reads (rate is per trove)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        process = start_anvil(port, 31337, Path(folder) / "anvil.log", detach=False)
        url = f"http://127.0.0.1:{port}"
        try:
            with RpcClient(url) as rpc:
                started = time.perf_counter()
                manifest = build_liquity(BlockBuilder(rpc), troves=args.troves, seed=args.seed)
                build_s = time.perf_counter() - started
                db = Path(folder) / "bench.duckdb"
                report = index_market("liquity-v1", url, manifest["trove_manager"], db)
                with Store(db) as store:
                    seen = store.query("SELECT DISTINCT wallet FROM raw_liquity_v1_events ORDER BY 1")["wallet"]
                    active = store.query("SELECT wallet FROM raw_liquity_v1_troves ORDER BY 1")["wallet"].to_list()
                block = report.to_block
                ours = statistics.median(
                    _chainrisk_refresh(rpc, manifest["trove_manager"], seen.to_list(), block) for _ in range(3)
                )
            sample = active[: args.naive_sample]
            naive = _naive_refresh(Web3(Web3.HTTPProvider(url)), manifest["trove_manager"], sample, block)
        finally:
            process.terminate()
            process.wait(timeout=10)
    ours_rate, naive_rate = len(active) / ours, len(sample) / naive
    result = {
        "command": f"python benchmarks/index_liquity_v1.py --troves {args.troves} --seed {args.seed}",
        "devnet": LABEL,
        "devnet_build_s": round(build_s, 1),
        "troves_seen": seen.len(),
        "troves_active": len(active),
        "first_index_s": report.seconds,
        "refresh": {
            "chainrisk_troves_per_s": round(ours_rate),
            "naive_web3py_getEntireDebtAndColl_troves_per_s": round(naive_rate, 1),
            "speedup": round(ours_rate / naive_rate, 1),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
