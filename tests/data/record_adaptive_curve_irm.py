"""Records tests/data/adaptive_curve_irm_vectors.json from Morpho's own AdaptiveCurveIrm, run by hand (CI only reads
the JSON): `python tests/data/record_adaptive_curve_irm.py GIT_DIR`, GIT_DIR a local clone of
morpho-org/morpho-blue-irm (its sources are read from HEAD; Morpho Blue's, which it imports from its lib/morpho-blue
submodule, from the npm-installed @morpho-org/morpho-blue). Compiles src/adaptive-curve-irm/AdaptiveCurveIrm.sol with
solcjs 0.8.19 (its foundry.toml's profile: via-IR, 999999 runs, paris), deploys it on a scratch anvil with MORPHO set
to an account we send from, and for each case sets `rateAtTarget[id]` (storage slot keccak(id . 0)), then calls
`borrowRate` at a chosen block time with a chosen Market: its BorrowRateUpdate event gives the average rate
(what `borrowRateView` answers: the same `_borrowRate`) and the rate at target it stores; then `borrowRateView` in
that block of the same totals updated then. Nothing of the contract is
committed: only inputs and outputs."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from chainrisk.devnet.node import free_port, start_anvil  # noqa: E402
from chainrisk.devnet.toolchain import _compile, _standard_json, node_modules  # noqa: E402
from chainrisk.rpc import RpcClient  # noqa: E402

OUT = Path(__file__).resolve().parent / "adaptive_curve_irm_vectors.json"
ENTRY = "src/adaptive-curve-irm/AdaptiveCurveIrm.sol"
WAD = 10**18
YEAR = 365 * 24 * 3600
SENDER = "0x00000000000000000000000000000000000b10e0"
PARAMS = ("0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, "0x" + "44" * 20, 86 * WAD // 100)
MARKET_TYPE = "(uint128,uint128,uint128,uint128,uint128,uint128)"
PARAMS_TYPE = "(address,address,address,address,uint256)"


def _sources(git_dir: Path) -> dict[str, dict[str, str]]:
    """The entry and every unit it imports, keyed by the names solc resolves them to."""
    blue = node_modules() / "@morpho-org" / "morpho-blue"
    found: dict[str, dict[str, str]] = {}
    pending = [ENTRY]
    while pending:
        unit = pending.pop()
        if unit in found:
            continue
        if unit.startswith("lib/morpho-blue/"):
            text = (blue / unit.removeprefix("lib/morpho-blue/")).read_text()
        else:
            text = subprocess.run(
                ["git", "--git-dir", str(git_dir), "show", f"HEAD:{unit}"], check=True, capture_output=True, text=True
            ).stdout
        found[unit] = {"content": text}
        for path in re.findall(r'import\s+(?:\{[^}]*\}\s+from\s+)?"([^"]+)"', text):
            parts = unit.split("/")[:-1]
            for piece in path.split("/"):
                if piece == "..":
                    parts.pop()
                elif piece != ".":
                    parts.append(piece)
            pending.append("/".join(parts))
    return found


def _cases(rng: random.Random) -> list[dict[str, int]]:
    minimum, maximum, initial = WAD // 1000 // YEAR, 2 * WAD // YEAR, 4 * WAD // 100 // YEAR
    supplies = [0, 1, 10**6, 10**18, 3 * 10**24]
    utilizations = [0, WAD // 2, 9 * WAD // 10 - 1, 9 * WAD // 10, 9 * WAD // 10 + 1, 95 * WAD // 100, WAD]
    rates = [0, 1, minimum, initial, maximum, maximum + 1]
    elapsed = [0, 1, 12, 3_600, 86_400, 30 * 86_400, YEAR, 10 * YEAR]
    cases = []
    for supply in supplies:
        for utilization in utilizations:
            for rate in rates:
                drawn = rng.choice(elapsed)
                cases.append({"supply": supply, "utilization": utilization, "rate": rate, "elapsed": drawn})
    for _ in range(200):
        supply = rng.choice([rng.randrange(1, 10**30), rng.randrange(1, 10**9)])
        cases.append(
            {
                "supply": supply,
                "utilization": rng.choice([rng.randrange(0, WAD + 1), rng.choice(utilizations)]),
                "rate": rng.choice([rng.randrange(minimum, maximum + 1), rng.choice(rates)]),
                "elapsed": rng.choice([rng.randrange(0, 4 * YEAR), rng.choice(elapsed)]),
            }
        )
    return cases


def main() -> None:
    git_dir = Path(sys.argv[1])
    output = _compile(_standard_json(_sources(git_dir)))
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise SystemExit(errors[0]["formattedMessage"])
    body = output["contracts"][ENTRY]["AdaptiveCurveIrm"]
    bytecode = body["evm"]["bytecode"]["object"] + encode(["address"], [SENDER]).hex()
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        anvil = start_anvil(port, 31337, Path(scratch) / "anvil.log", detach=False)
        try:
            with RpcClient(f"http://127.0.0.1:{port}") as rpc:
                vectors = _record(rpc, bytecode)
        finally:
            anvil.terminate()
    OUT.write_text(
        json.dumps(
            {
                "source": "morpho-org/morpho-blue-irm at a1a87fd, src/adaptive-curve-irm/AdaptiveCurveIrm.sol (with "
                "its libraries; Morpho Blue's interfaces and libraries from @morpho-org/morpho-blue 1.0.0), compiled "
                "with solcjs 0.8.19 (via-IR, 999999 runs, paris) and run on anvil by "
                "tests/data/record_adaptive_curve_irm.py: rateAtTarget[id] set to `start_rate_at_target`, then "
                "borrowRate(marketParams, market) at block time `timestamp`; `avg_rate` and `end_rate_at_target` "
                "are its BorrowRateUpdate event's (avg_rate is what borrowRateView answers at that time); "
                "`rate_view_after` is borrowRateView in that block of the same totals with last_update = `timestamp` "
                "(the rate the IRM charges from then on while the utilization stays).",
                "units": "rates per second, WAD; assets in loan units; times in seconds",
                "vectors": vectors,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"{len(vectors)} vectors -> {OUT}")


def _record(rpc: RpcClient, bytecode: str) -> list[dict[str, Any]]:
    rpc.call("anvil_setBalance", [SENDER, hex(10**24)])
    tx = rpc.call("eth_sendTransaction", [{"from": SENDER, "data": "0x" + bytecode, "gas": hex(10_000_000)}])
    rpc.call("evm_mine", [])
    irm = rpc.call("eth_getTransactionReceipt", [tx])["contractAddress"]
    market_id = keccak(encode([PARAMS_TYPE], [PARAMS]))
    slot = "0x" + keccak(market_id + (0).to_bytes(32, "big")).hex()
    selector = keccak(text=f"borrowRate({PARAMS_TYPE},{MARKET_TYPE})")[:4]
    view_selector = keccak(text=f"borrowRateView({PARAMS_TYPE},{MARKET_TYPE})")[:4]
    timestamp = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    vectors = []
    for case in _cases(random.Random(20261204)):
        timestamp += 11 * YEAR  # past any case's elapsed time
        supply = case["supply"]
        borrow = supply * case["utilization"] // WAD
        last_update = timestamp - case["elapsed"]
        market = (supply, supply, borrow, borrow, last_update, 0)
        rpc.call("anvil_setStorageAt", [irm, slot, "0x" + case["rate"].to_bytes(32, "big").hex()])
        rpc.call("evm_setNextBlockTimestamp", [hex(timestamp)])
        data = "0x" + (selector + encode([PARAMS_TYPE, MARKET_TYPE], [PARAMS, market])).hex()
        tx = rpc.call("eth_sendTransaction", [{"from": SENDER, "to": irm, "data": data, "gas": hex(1_000_000)}])
        rpc.call("evm_mine", [])
        receipt = rpc.call("eth_getTransactionReceipt", [tx])
        if int(receipt["status"], 16) != 1:
            raise SystemExit(f"borrowRate reverted for {case}")
        (log,) = receipt["logs"]
        avg, end = decode(["uint256", "uint256"], bytes.fromhex(log["data"][2:]))
        # Then, in that block, borrowRateView of the same totals updated now: the IRM now holds `end`.
        now = (supply, supply, borrow, borrow, timestamp, 0)
        view = "0x" + (view_selector + encode([PARAMS_TYPE, MARKET_TYPE], [PARAMS, now])).hex()
        (rate_now,) = decode(
            ["uint256"], bytes.fromhex(rpc.call("eth_call", [{"to": irm, "data": view}, "latest"])[2:])
        )
        vectors.append(
            {
                "start_rate_at_target": str(case["rate"]),
                "total_supply_assets": str(supply),
                "total_borrow_assets": str(borrow),
                "last_update": last_update,
                "timestamp": timestamp,
                "avg_rate": str(avg),
                "end_rate_at_target": str(end),
                "rate_view_after": str(rate_now),
            }
        )
    return vectors


if __name__ == "__main__":
    main()
