"""Maker indexing speed against the naive way, side by side in one run on one devnet (the Maker stand-ins).

Urn refresh: chainrisk's snapshot of every urn (ilks, OSM prices, every urn through the lens in eth_calls of
1,000 urns, JSON-RPC batches, verdicts and frames) against web3.py asking `Vat.urns(ilk, urn)` and
`Vat.ilks(ilk)` per urn with `contract.functions.X().call()` and judging ink * spot < art * rate; each the median
of three runs. Figures go to benchmarks/results/index_maker.json.
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
from chainrisk.devnet.maker import build_maker
from chainrisk.devnet.node import BlockBuilder, free_port, start_anvil
from chainrisk.jobs.index import index_market
from chainrisk.protocols.maker.adapter import ADAPTER
from chainrisk.rpc import RpcClient
from chainrisk.store.db import Store

RESULTS = Path(__file__).parent / "results" / "index_maker.json"


def _chainrisk_refresh(rpc: RpcClient, chainlog: str, db: Path, block: int, timestamp: int) -> tuple[float, int]:
    """One snapshot of every urn as `chainrisk index` takes it after its logs: (seconds, urns)."""
    with Store(db) as store:
        events = store.query(f"SELECT DISTINCT {', '.join(ADAPTER.account_columns)} FROM raw_maker_events")
    started = time.perf_counter()
    deployment = ADAPTER.discover(rpc, chainlog, block, {})
    snapshot = ADAPTER.snapshot(rpc, deployment, events, 31337, block, timestamp)
    return time.perf_counter() - started, snapshot.accounts


def _naive_refresh(w3: Web3, vat: str, urns: list[tuple[str, str]], block: int) -> tuple[float, int]:
    """web3.py, two calls per urn: Vat.urns and Vat.ilks, then the Vat's own comparison. (seconds, unsafe)."""
    contract = w3.eth.contract(address=Web3.to_checksum_address(vat), abi=load_abi("maker", "Vat").entries)
    started = time.perf_counter()
    unsafe = 0
    for ilk, urn in urns:
        key = bytes.fromhex(ilk[2:])
        ink, art = contract.functions.urns(key, Web3.to_checksum_address(urn)).call(block_identifier=block)
        _, rate, spot, _, _ = contract.functions.ilks(key).call(block_identifier=block)
        unsafe += spot > 0 and ink * spot < art * rate
    return time.perf_counter() - started, unsafe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vaults-per-ilk", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--naive-sample", type=int, default=300, help="urns the naive way refreshes (rate is per urn)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        process = start_anvil(port, 31337, Path(folder) / "anvil.log", detach=False)
        url = f"http://127.0.0.1:{port}"
        try:
            with RpcClient(url) as rpc:
                started = time.perf_counter()
                manifest = build_maker(BlockBuilder(rpc), seed=args.seed, vaults_per_ilk=args.vaults_per_ilk)
                build_s = time.perf_counter() - started
                db = Path(folder) / "bench.duckdb"
                report = index_market("maker", url, manifest["chainlog"], db)
                block = report.to_block
                timestamp = int(rpc.call("eth_getBlockByNumber", [hex(block), False])["timestamp"], 16)
                runs = [_chainrisk_refresh(rpc, manifest["chainlog"], db, block, timestamp) for _ in range(3)]
                ours = statistics.median(seconds for seconds, _ in runs)
                urns = runs[0][1]
            with Store(db) as store:
                pairs = [tuple(r) for r in store.query("SELECT ilk_hex, urn FROM raw_maker_urns ORDER BY urn").rows()]
            sample = pairs[: args.naive_sample]
            w3 = Web3(Web3.HTTPProvider(url))
            naive = statistics.median(_naive_refresh(w3, manifest["vat"], sample, block)[0] for _ in range(3))
        finally:
            process.kill()
            process.wait()
    ours_rate = urns / ours
    naive_rate = len(sample) / naive
    result = {
        "command": f"python benchmarks/index_maker.py --vaults-per-ilk {args.vaults_per_ilk} --seed {args.seed}",
        "devnet": "Maker/Sky stand-ins (chainrisk's own Solidity, not Maker's bytecode)",
        "devnet_build_s": round(build_s, 1),
        "urns_indexed": report.wallets,
        "urns_with_debt": report.wallets_with_debt,
        "events": report.events,
        "first_index_s": report.seconds,
        "refresh": {
            "chainrisk_urns_per_s": round(ours_rate),
            "chainrisk_snapshot_s": round(ours, 3),
            "naive_web3py_urns_per_s": round(naive_rate, 1),
            "naive_sample_urns": len(sample),
            "speedup": round(ours_rate / naive_rate, 1),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
