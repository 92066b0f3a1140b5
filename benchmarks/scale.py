"""Mainnet-scale run on one machine: `--accounts` Aave V3 borrowers and `--morpho-markets` Morpho Blue markets holding
`--morpho-positions` borrow positions, on the devnet's real bytecode, then `chainrisk run` timed as users run it.

The chain: the devnet (both protocols, a small population), then the accounts opened in bulk the cheap way a chain
allows: a funder supplies WETH on behalf of each new wallet (Aave's `supply(onBehalfOf)`, Morpho's
`supplyCollateral(onBehalf)`), and each wallet, impersonated on anvil, borrows USDC against it (30-75 % of what it
may borrow, so health factors spread). Morpho's extra markets are WETH/USDC at distinct LLTVs (each one enabled by
the owner, as governance does), over the devnet's WETH/USDC oracle. Transactions go to anvil in JSON-RPC batches and
are mined a thousand to a block.

Measured, each `chainrisk run --devnet` in a process of its own (peak memory is that process's VmHWM):
- the first run: index every market from block 0, score, publish;
- a steady-state run after `--changed` wallets borrowed more (about two thirds Aave, a third Morpho);
- reader latency: `mart_market_summary` read through the published copy in a loop, idle and during that run.
Goals (issue 22): steady-state run < 60 s and < 4 GiB. Figures go to benchmarks/results/scale-ACCOUNTS.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from chainrisk.abi import Abi, load_abi
from chainrisk.devnet.build import DevnetOptions, build_devnet
from chainrisk.devnet.node import DEPLOYER, TX_GAS, free_port, stop_process
from chainrisk.devnet.prices import parse_start
from chainrisk.devnet.toolchain import aave_artifact
from chainrisk.rpc import RpcClient
from chainrisk.store.published import connect_reader
from chainrisk.store.views import query_sql

RESULTS = Path(__file__).parent / "results"
FUNDER = "0x" + keccak(b"scale:funder").hex()[-40:]
TXS_PER_BLOCK = 1_000
#: The bulk load stops when anvil's resident memory passes this share of the machine's (anvil keeps every
#: transaction: a 100,000-borrower load reached 22.9 GiB of 23 before it was stopped by hand).
ANVIL_MEMORY_SHARE = 0.5
WAD = 10**18
MAX_UINT = 2**256 - 1


def _resident_mib(pid: int, field_name: str = "VmRSS") -> int:
    """A process's resident memory (or its peak, VmHWM) in MiB from /proc; 0 once it has gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) // 1024 for line in lines if line.startswith(f"{field_name}:")), 0)


def _memory_total_mib() -> int:
    lines = Path("/proc/meminfo").read_text().splitlines()
    return next(int(line.split()[1]) // 1024 for line in lines if line.startswith("MemTotal:"))


def _wallet(kind: str, index: int) -> str:
    return "0x" + keccak(f"scale:{kind}:{index}".encode()).hex()[-40:]


@dataclass
class Sender:
    """Sends transactions in JSON-RPC batches and mines them, every receipt required to succeed."""

    rpc: RpcClient
    timestamp: int
    anvil_pid: int  #: watched: anvil keeps every block's state in memory, and a shared machine must not swap
    nonces: dict[str, int] = field(default_factory=dict)
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sent: int = 0

    def call(self, sender: str, abi: Abi, to: str, fn: str, *args: Any) -> None:
        key = sender.lower()
        if key not in self.nonces:
            self.nonces[key] = int(self.rpc.call("eth_getTransactionCount", [sender, "pending"]), 16)
        payload = {"from": sender, "to": to, "data": abi.encode(fn, *args), "gas": hex(TX_GAS), "gasPrice": "0x0"}
        payload["nonce"] = hex(self.nonces[key])
        self.nonces[key] += 1
        self.pending.append((fn, payload))
        if len(self.pending) >= TXS_PER_BLOCK:
            self.mine()

    def fresh(self, wallet: str) -> None:
        """A wallet that never sent a transaction: nonce 0, no need to ask the node."""
        self.nonces.setdefault(wallet.lower(), 0)

    def mine(self) -> None:
        if not self.pending:
            return
        labels = [label for label, _ in self.pending]
        self.rpc.batch([("eth_sendTransaction", [payload]) for _, payload in self.pending])
        self.pending = []
        self.timestamp += 12
        self.rpc.call("evm_mine", [self.timestamp])
        receipts = self.rpc.call("eth_getBlockReceipts", ["latest"]) or []
        failed = [label for label, r in zip(labels, receipts, strict=False) if int(r["status"], 16) != 1]
        if len(receipts) != len(labels) or failed:
            raise SystemExit(f"bulk load: {len(receipts)} of {len(labels)} mined, reverted: {failed[:5]}")
        self.sent += len(labels)
        anvil_mib, limit_mib = _resident_mib(self.anvil_pid), _memory_total_mib() * ANVIL_MEMORY_SHARE
        if anvil_mib > limit_mib:
            raise SystemExit(
                f"bulk load stopped after {self.sent:,} transactions: anvil holds {anvil_mib:,} MiB, over "
                f"{ANVIL_MEMORY_SHARE:.0%} of this machine's memory; give fewer --accounts / --morpho-positions"
            )


def _load(manifest: dict[str, Any], args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    """Opens the accounts and markets; returns what was opened (the wallets by protocol, for the changes later)."""
    rpc = RpcClient(manifest["rpc_url"])
    head = rpc.call("eth_getBlockByNumber", ["latest", False])
    sender = Sender(rpc, int(head["timestamp"], 16), int(manifest["pid"]))
    pool_abi, morpho_abi = load_abi("aave-v3", "IPool"), load_abi("morpho-blue", "IMorpho")
    mint_abi = Abi(aave_artifact("MintableERC20").abi)
    tokens, pool = manifest["tokens"], manifest["aave_v3"]["pool"]
    morpho = manifest["morpho_blue"]["morpho"]
    weth, usdc = tokens["WETH"], tokens["USDC"]
    eth_usd, usdc_unit = 2_000, 10**6  # conservative: the devnet's May 2022 ETH stays above this
    devnet_market = next(
        m for m in manifest["morpho_blue"]["markets"] if (m["collateral_symbol"], m["loan_symbol"]) == ("WETH", "USDC")
    )
    sizes_usd = [rng.uniform(2_000, 40_000) for _ in range(args.accounts + args.morpho_positions)]
    weth_total = sum(int(s / eth_usd * WAD) for s in sizes_usd) + WAD
    usdc_liquidity = int(sum(sizes_usd) * usdc_unit)
    # Caps sized for the devnet's population would stop a mainnet-sized book: lifted (0 = none), as governance
    # raises them when a market grows.
    configurator = load_abi("aave-v3", "IPoolConfigurator")
    for token in (weth, usdc):
        sender.call(DEPLOYER, configurator, manifest["aave_v3"]["pool_configurator"], "setSupplyCap", token, 0)
        sender.call(DEPLOYER, configurator, manifest["aave_v3"]["pool_configurator"], "setBorrowCap", token, 0)
    for token, amount in ((weth, weth_total), (usdc, 2 * usdc_liquidity)):
        sender.call(FUNDER, mint_abi, token, "mint", amount)
        sender.call(FUNDER, mint_abi, token, "approve", pool, MAX_UINT)
        sender.call(FUNDER, mint_abi, token, "approve", morpho, MAX_UINT)
    sender.call(FUNDER, pool_abi, pool, "supply", usdc, usdc_liquidity, FUNDER, 0)
    sender.mine()

    aave_wallets = [_wallet("aave", i) for i in range(args.accounts)]
    for start in range(0, len(aave_wallets), TXS_PER_BLOCK // 2):
        opened = aave_wallets[start : start + TXS_PER_BLOCK // 2]
        for i, wallet in enumerate(opened, start):
            sender.call(FUNDER, pool_abi, pool, "supply", weth, int(sizes_usd[i] / eth_usd * WAD), wallet, 0)
        sender.mine()
        for i, wallet in enumerate(opened, start):
            sender.fresh(wallet)
            borrow = int(sizes_usd[i] * 0.805 * rng.uniform(0.3, 0.75) * usdc_unit)
            sender.call(wallet, pool_abi, pool, "borrow", usdc, borrow, 2, 0, wallet)
        sender.mine()

    # 70.0001 %, 70.0101 %, ...: off the whole basis points the devnet's own markets enabled (enabling twice reverts).
    lltvs = [int(0.70 * WAD) + i * 10**14 + 10**12 for i in range(args.morpho_markets)]
    params = [(usdc, weth, devnet_market["oracle"], devnet_market["irm"], lltv) for lltv in lltvs]
    for lltv in lltvs:
        sender.call(DEPLOYER, morpho_abi, morpho, "enableLltv", lltv)
    sender.mine()
    for market in params:
        sender.call(DEPLOYER, morpho_abi, morpho, "createMarket", market)
    sender.mine()
    morpho_wallets = [_wallet("morpho", i) for i in range(args.morpho_positions)]
    per_market = [0] * len(params)
    placed = [rng.randrange(len(params)) for _ in morpho_wallets]
    sizes = sizes_usd[args.accounts :]
    for i, index in enumerate(placed):
        per_market[index] += int(sizes[i] * usdc_unit)
    for market, need in zip(params, per_market, strict=True):
        if need:
            sender.call(FUNDER, morpho_abi, morpho, "supply", market, need, 0, FUNDER, b"")
    sender.mine()
    for start in range(0, len(morpho_wallets), TXS_PER_BLOCK // 2):
        chunk = range(start, min(start + TXS_PER_BLOCK // 2, len(morpho_wallets)))
        for i in chunk:
            collateral = int(sizes[i] / eth_usd * WAD)
            sender.call(
                FUNDER, morpho_abi, morpho, "supplyCollateral", params[placed[i]], collateral, morpho_wallets[i], b""
            )
        sender.mine()
        for i in chunk:
            sender.fresh(morpho_wallets[i])
            lltv = params[placed[i]][4]
            borrow = int(sizes[i] * lltv / WAD * rng.uniform(0.3, 0.75) * usdc_unit)
            sender.call(
                morpho_wallets[i],
                morpho_abi,
                morpho,
                "borrow",
                params[placed[i]],
                borrow,
                0,
                morpho_wallets[i],
                morpho_wallets[i],
            )
        sender.mine()
    rpc.close()
    return {
        "sender": sender,
        "aave": aave_wallets,
        "morpho": list(zip(morpho_wallets, [params[p] for p in placed], strict=True)),
        "txs": sender.sent,
    }


def _change(manifest: dict[str, Any], loaded: dict[str, Any], changed: int, rng: random.Random) -> None:
    """`changed` wallets borrow a little more: two thirds of them on Aave, the rest on Morpho."""
    sender: Sender = loaded["sender"]
    sender.rpc = RpcClient(manifest["rpc_url"])
    pool_abi, morpho_abi = load_abi("aave-v3", "IPool"), load_abi("morpho-blue", "IMorpho")
    usdc = manifest["tokens"]["USDC"]
    on_aave = changed * 2 // 3
    for wallet in rng.sample(loaded["aave"], on_aave):
        sender.call(wallet, pool_abi, manifest["aave_v3"]["pool"], "borrow", usdc, 10 * 10**6, 2, 0, wallet)
    for wallet, market in rng.sample(loaded["morpho"], changed - on_aave):
        sender.call(
            wallet, morpho_abi, manifest["morpho_blue"]["morpho"], "borrow", market, 10 * 10**6, 0, wallet, wallet
        )
    sender.mine()
    sender.rpc.close()


def _peak_rss_mib(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _resident_mib(pid, "VmHWM"))
        stop.wait(0.2)


def _run(db: Path, state: Path) -> dict[str, Any]:
    """One `chainrisk run --devnet` in its own process: seconds, peak memory, its summary line."""
    env = {**os.environ, "CHAINRISK_STATE_DIR": str(state)}
    command = [sys.executable, "-m", "chainrisk.cli", "run", "--devnet", "--db", str(db)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop, peak = threading.Event(), [0]
    watcher = threading.Thread(target=_peak_rss_mib, args=(process.pid, stop, peak))
    watcher.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(f"chainrisk run failed ({process.returncode}): {err.strip()[-500:]}")
    summary = out.strip().splitlines()[-1]
    # The run's own time (the line says "run N ok in X s"); `seconds` adds the process's start and imports.
    reported = float(summary.split(" ok in ", 1)[1].split(" s", 1)[0])
    return {"seconds": round(seconds, 1), "run_reported_s": reported, "peak_rss_mib": peak[0], "summary": summary}


def _read_latencies(db: Path, stop: threading.Event, until: int = 0) -> list[float]:
    """Seconds per read of mart_market_summary through the published copy, until `stop` (or `until` reads)."""
    sql, latencies = query_sql("mart_market_summary"), list[float]()
    while not stop.is_set() and (not until or len(latencies) < until):
        started = time.perf_counter()
        with connect_reader(db) as con:
            con.execute(sql).fetchall()
        latencies.append(time.perf_counter() - started)
        time.sleep(0.05)
    return latencies


def _summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "reads": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=200_000, help="Aave V3 borrowers opened in bulk")
    parser.add_argument("--morpho-markets", type=int, default=1_000)
    parser.add_argument("--morpho-positions", type=int, default=50_000)
    parser.add_argument("--changed", type=int, default=300, help="wallets that borrow more before the steady run")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder)
        # Only the last states in anvil's memory (with every block's state a 100,000-borrower load filled 23 GiB);
        # anvil still grows about 80 KiB per transaction it keeps, so ~150,000 transactions fit half of 23 GiB.
        options = DevnetOptions(
            50, 1, args.seed, free_port(), parse_start("2022-05-01"), 24, anvil_args=("--prune-history", "256")
        )
        manifest = build_devnet(options, state / "devnet", detach=False)
        try:
            started = time.perf_counter()
            loaded = _load(manifest, args, rng)
            load_seconds = time.perf_counter() - started
            db = state / "scale.duckdb"
            first = _run(db, state)
            _change(manifest, loaded, args.changed, rng)
            idle = _read_latencies(db, threading.Event(), until=20)
            stop = threading.Event()
            during: list[float] = []
            reader = threading.Thread(target=lambda: during.extend(_read_latencies(db, stop)))
            reader.start()
            steady = _run(db, state)
            stop.set()
            reader.join()
            size_mib = round(sum(p.stat().st_size for p in state.rglob("scale.duckdb*") if p.is_file()) / 2**20, 1)
        finally:
            stop_process(int(manifest["pid"]))
    result = {
        "command": (
            f"python benchmarks/scale.py --accounts {args.accounts} --morpho-markets {args.morpho_markets} "
            f"--morpho-positions {args.morpho_positions} --changed {args.changed} --seed {args.seed}"
        ),
        "chain": {
            "aave_accounts": args.accounts,
            "morpho_markets": args.morpho_markets,
            "morpho_positions": args.morpho_positions,
            "bulk_load_txs": loaded["txs"],
            "bulk_load_s": round(load_seconds, 1),
        },
        "first_run": first,
        "steady_state_run": {**steady, "changed_wallets": args.changed},
        "goals": {
            "steady_state_under_60_s": steady["seconds"] < 60,
            "steady_state_under_4_gib": steady["peak_rss_mib"] < 4096,
        },
        "reader_latency_idle": _summary(idle),
        "reader_latency_during_run": _summary(during) if during else None,
        "database_and_published_copies_mib": size_mib,
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"scale-{args.accounts}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
