"""Devnet build speed: deploy time, and wallets populated per second against the naive one-tx-per-block way.

Both runs build the same seeded devnet in this process, on two anvil nodes started one after the other.
The baseline sends each transaction with web3.py (`eth.send_transaction`), mines it alone and waits for
its receipt, as a script on an automining node would. Figures go to benchmarks/results/devnet.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from web3 import Web3

from chainrisk.devnet.build import DevnetOptions, build_devnet
from chainrisk.devnet.extras import BASE_PROTOCOLS
from chainrisk.devnet.node import TX_GAS, BlockBuilder, Receipt, Tx, free_port, stop_process
from chainrisk.devnet.prices import parse_start

RESULTS = Path(__file__).parent / "results" / "devnet.json"


class NaiveBuilder(BlockBuilder):
    """One transaction per block through web3.py, waiting for each receipt."""

    def mine(self, advance_s: int = 0) -> list[Receipt]:
        self.timestamp += advance_s
        w3 = Web3(Web3.HTTPProvider(self.rpc.url))
        txs, self.queue = self.queue, []
        receipts = []
        for tx in txs:
            receipts.append(self._one(w3, tx))
        return receipts

    def _one(self, w3: Web3, tx: Tx) -> Receipt:
        payload: dict[str, Any] = {"from": tx.sender, "data": tx.data, "gas": TX_GAS, "gasPrice": 0}
        if tx.to is not None:
            payload["to"] = Web3.to_checksum_address(tx.to)
        payload["from"] = Web3.to_checksum_address(tx.sender)
        tx_hash = w3.eth.send_transaction(payload)  # type: ignore[arg-type]
        self.rpc.call("evm_mine", [self.timestamp])
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
        ok = receipt["status"] == 1
        if not ok:
            self.reverted[tx.label] = self.reverted.get(tx.label, 0) + 1
        address = receipt.get("contractAddress")
        return Receipt(tx, ok, str(address).lower() if address else None, [dict(log) for log in receipt["logs"]])


def _run(builder: type[BlockBuilder], wallets: int, days: float, seed: int) -> dict[str, Any]:
    # The main build only (the other protocols' builds are not what the naive way is compared on).
    options = DevnetOptions(wallets, days, seed, free_port(), parse_start("2022-05-01"), 4, BASE_PROTOCOLS)
    with tempfile.TemporaryDirectory() as folder:
        manifest = build_devnet(options, Path(folder), detach=False, builder_type=builder)
    stop_process(int(manifest["pid"]))
    timings = manifest["timings"]
    return {
        "deploy_s": timings["deploy_s"],
        "population_s": timings["population_s"],
        "wallets_per_s": round(wallets / timings["population_s"], 1),
        "head_block": manifest["head_block"],
        "aave_liquidations": manifest["history"]["aave_liquidations"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wallets", type=int, default=300)
    parser.add_argument("--days", type=float, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    ours = _run(BlockBuilder, args.wallets, args.days, args.seed)
    naive = _run(NaiveBuilder, args.wallets, args.days, args.seed)
    result = {
        "command": f"python benchmarks/devnet.py --wallets {args.wallets} --days {args.days:g} --seed {args.seed}",
        "chainrisk": ours,
        "naive_web3py_one_tx_per_block": naive,
        "speedup": round(naive["population_s"] / ours["population_s"], 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
