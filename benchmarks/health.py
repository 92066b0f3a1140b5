"""Health engine speed: at scale, and against Aave's own JS library (@aave/math-utils) in the same run.

At scale: 1M synthetic wallets x 4 positions, health + liquidation prices + a 41-point curve; the engine's wall
time, the process's peak resident memory and the engine's own peak (the high-water mark reset just before it, after
the generator's freed temporaries were handed back to the system), and the load average as the runs ended (the
machine may be shared: a wall time means little without it) with the CPU seconds of each run (every thread's, far
less moved by other work than the wall time). With `--previous-engine FOLDER` (an earlier commit's `chainrisk` package,
`git archive COMMIT chainrisk | tar -x -C FOLDER`) the same scale run of that engine, in a process of its own just
before and just after ours, is the baseline side by side.

Baseline: `tests/aave_math_utils.mjs` runs formatReserves + formatUserSummary on the same synthetic wallets as raw
rows (reserves at index 1e27 with zero rates, so scaled balances are the amounts; a user-configuration bitmap per
wallet) and times itself without I/O: the mean of `--repeat` runs. Our engine's health (positions to wallet_health)
and its full run (health, liquidation prices, a 41-point curve) on the same wallets: the best of ten runs. Every
health factor and the set of wallets under 1 are checked against the library's before the ratios are reported.

Incremental: the same synthetic book scored in full (wallet health, liquidation prices and the liquidation curve on
every shock axis: `chainrisk.scoring.incremental.score_book`), then the next block's snapshot, in which a share of the
wallets borrowed 1 % more and prices did not move, rescored from it (`rescore_book`, finding the changed wallets
itself, and told them) against scoring that snapshot in full, the baseline, in the same run; the results are checked
equal before the ratios are reported (integers and verdicts exactly, USD sums to float rounding).

Synthetic wallets: two collateral and two debt positions each, drawn from the devnet's seven assets with Aave
V3-like parameters and heavy-tailed sizes. Figures go to benchmarks/results/health.json.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

from chainrisk.devnet.toolchain import run_node_json
from chainrisk.scoring.groups import STABLE_GROUP
from chainrisk.scoring.health import (
    DROPS,
    axis_coefficients,
    curve_points,
    liquidation_prices,
    stress,
    value_positions,
    wallet_health,
)
from chainrisk.scoring.incremental import HOLDER_KEY, rescore_book, score_book
from chainrisk.units import BPS, RAY

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "health.json"
MATH_UTILS_SCRIPT = ROOT / "tests" / "aave_math_utils.mjs"
MATH_UTILS = ROOT / "node_modules" / "@aave" / "math-utils"
#: Relative agreement of health factors defined the same way (floored average threshold, as the contract).
HF_TOLERANCE = Fraction(1, 10**9)
#: Runs of our engine against the library: a few tens of milliseconds each, so a best of ten costs nothing.
ENGINE_RUNS = 10
#: symbol, decimals, price (USD), liquidation threshold, LTV, bonus (bps)
ASSETS = [
    ("WETH", 18, 2000.0, 8300, 8050, 10500),
    ("wstETH", 18, 2200.0, 8100, 7850, 10600),
    ("WBTC", 8, 30000.0, 7800, 7300, 10500),
    ("USDC", 6, 1.0, 8000, 7700, 10450),
    ("DAI", 18, 1.0, 8000, 7700, 10500),
    ("USDT", 6, 1.0, 7600, 7400, 10450),
    ("LINK", 18, 7.0, 6800, 5300, 10700),
]


def synthetic_positions(wallets: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = wallets * 4
    asset = np.concatenate(
        [
            rng.integers(0, 3, wallets),
            rng.choice([2, 6], wallets),
            rng.integers(3, 6, wallets),
            rng.integers(3, 6, wallets),
        ]
    )
    is_collateral = np.concatenate([np.ones(2 * wallets, bool), np.zeros(2 * wallets, bool)])
    size_usd = np.tile(np.minimum(1_000 * (1 + rng.pareto(1.16, wallets)), 5e7), 4)
    table = np.array([[a[1], a[2], a[3], a[4], a[5]] for a in ASSETS])
    decimals = table[asset, 0].astype(np.int64)
    price_usd = table[asset, 1]
    threshold = table[asset, 2].astype(np.int64)
    health = np.tile(rng.uniform(0.9, 3.0, wallets), 4)
    # Collateral: size split 70/30; debt: sized for the drawn health factor, split 60/40.
    share = np.where(np.arange(n) < wallets, 0.7, np.where(np.arange(n) < 2 * wallets, 0.3, 0.0))
    debt_share = np.where(np.arange(n) < 3 * wallets, 0.6, 0.4) * ~is_collateral
    collateral_usd = size_usd * share
    debt_usd = size_usd * 0.78 / health * debt_share
    amount_collateral = (collateral_usd / price_usd * 10.0 ** np.minimum(decimals, 10)).astype(np.int64)
    amount_debt = (debt_usd / price_usd * 10.0 ** np.minimum(decimals, 10)).astype(np.int64)
    scale = pl.Series(10 ** np.maximum(decimals - 10, 0)).cast(pl.Int128)
    symbols = np.array([a[0] for a in ASSETS])
    frame = pl.DataFrame(
        {
            "protocol": "aave-v3",
            "chain_id": 1,
            "market": "0xsynthetic",
            "wallet": pl.Series(np.tile(np.arange(wallets), 4)).cast(pl.Utf8),
            "asset": symbols[asset],
            "symbol": symbols[asset],
            "block_number": 1,
            "block_timestamp": 1,
            "decimals": decimals,
            "collateral_amount": pl.Series(amount_collateral).cast(pl.Int128) * scale,
            "debt_amount": pl.Series(amount_debt).cast(pl.Int128) * scale,
            "price": pl.Series((price_usd * 1e8).astype(np.int64)).cast(pl.Int128),
            "price_usd": price_usd,
            "liquidation_threshold_bps": threshold,
            "ltv_bps": table[asset, 3].astype(np.int64),
            "liquidation_bonus_bps": table[asset, 4].astype(np.int64),
        }
    )
    return frame


def run_engine(positions: pl.DataFrame) -> dict[str, int]:
    valued = value_positions(positions).collect().lazy()
    health = wallet_health(valued).collect()
    prices = liquidation_prices(valued).collect()
    coefficients = axis_coefficients(valued, pl.col("group") != STABLE_GROUP)
    curve = curve_points(coefficients, DROPS, ["chain_id", "market"]).collect()
    return {"wallets": health.height, "liquidation_prices": prices.height, "curve_points": curve.height}


def run_health(positions: pl.DataFrame) -> pl.DataFrame:
    """What @aave/math-utils computes: from position rows to every wallet's account figures."""
    return stress(positions)


def _timed(work: Callable[[], object], repeat: int) -> list[float]:
    """Wall time of each of `repeat` runs of `work`."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return times


def _rss_mib(field: str) -> float:
    """A figure of /proc/self/status (VmRSS: now, VmHWM: high-water mark), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _load_average() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def previous_engine_run(package: Path, wallets: int, seed: int, repeat: int) -> dict[str, Any]:
    """The scale run of an earlier engine (`package`: a folder holding its `chainrisk` package) in a process of its
    own, with this script: the baseline measured side by side with ours."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "previous.json"
        command = [sys.executable, __file__, "--wallets", str(wallets), "--seed", str(seed), "--repeat", str(repeat)]
        command += ["--math-utils-wallets", "0", "--incremental-wallets", "0", "--output", str(output)]
        environment = {**os.environ, "PYTHONPATH": str(package)}
        subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL)
        scale: dict[str, Any] = json.loads(output.read_text())["scale"]
    return scale


def _release_freed_memory() -> None:
    """Hands the memory the C allocator holds after frees back to the system (glibc's malloc_trim): the generator's
    temporaries would otherwise stay resident and count in the engine's peak."""
    libc = ctypes.util.find_library("c")
    if libc is not None and hasattr(ctypes.CDLL(libc), "malloc_trim"):
        ctypes.CDLL(libc).malloc_trim(0)


def scale_run(wallets: int, seed: int, repeat: int) -> dict[str, Any]:
    positions = synthetic_positions(wallets, seed)
    generation_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _release_freed_memory()
    resident = _rss_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM: from here it is the peak while the engine runs
    counts: dict[str, int] = {}
    cpu: list[float] = []

    def engine() -> None:
        started = _cpu_seconds()
        counts.update(run_engine(positions))
        cpu.append(_cpu_seconds() - started)

    load_before = _load_average()
    times = _timed(engine, repeat)
    return {
        "positions": positions.height,
        **counts,
        "engine_seconds_best": round(min(times), 3),
        "engine_seconds_all": [round(t, 3) for t in times],
        # CPU seconds of every thread: what the engine costs, much less moved by other work on the machine.
        "engine_cpu_seconds_best": round(min(cpu), 3),
        "engine_cpu_seconds_all": [round(t, 3) for t in cpu],
        "load_average_1_5_15_before": load_before,
        "load_average_1_5_15": _load_average(),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_during_engine_mib": round(_rss_mib("VmHWM")),
        "rss_before_engine_mib": round(resident),
        "peak_rss_generating_positions_mib": round(generation_peak),
    }


def one_row_per_asset(positions: pl.DataFrame) -> pl.DataFrame:
    """Merges a wallet's two positions in one asset (the contract holds one row per wallet and asset)."""
    amounts = ["collateral_amount", "debt_amount"]
    return (
        positions.group_by("wallet", "asset", maintain_order=True)
        .agg(pl.col(amounts).sum(), pl.all().exclude(amounts).first())
        .select(positions.columns)
    )


def math_utils_payload(positions: pl.DataFrame, repeat: int) -> dict[str, Any]:
    """The script's input for `positions`: raw reserve, balance and configuration rows as the indexer stores them.

    Reserves sit at index 1e27 with zero rates, updated at the snapshot's own timestamp, so a scaled balance is the
    amount itself. Integers go as decimal strings, as the script expects.
    """
    timestamp = int(positions["block_timestamp"][0])
    reserve_ids = {symbol: i for i, (symbol, *_) in enumerate(ASSETS)}
    reserves = [
        {
            "reserve_id": str(i),
            "chain_id": str(positions["chain_id"][0]),
            "market": positions["market"][0],
            "asset": symbol,
            "symbol": symbol,
            "decimals": str(decimals),
            "ltv": str(ltv),
            "liquidation_threshold": str(threshold),
            "liquidation_bonus": str(bonus),
            "reserve_factor": "0",
            "liquidity_index": str(RAY),
            "variable_borrow_index": str(RAY),
            "liquidity_rate": "0",
            "variable_borrow_rate": "0",
            "last_update_timestamp": str(timestamp),
            "borrow_cap": "0",
            "supply_cap": "0",
            "debt_ceiling": "0",
            "isolation_mode_total_debt": "0",
            "price": str(round(price * 10**8)),
            "emode_category": "0",
        }
        for i, (symbol, decimals, price, threshold, ltv, bonus) in enumerate(ASSETS)
    ]
    users: dict[str, dict[str, Any]] = {}
    rows = positions.select("wallet", "asset", "collateral_amount", "debt_amount").iter_rows()
    for wallet, asset, collateral, debt in rows:
        user = users.setdefault(wallet, {"wallet": wallet, "emode": "0", "configuration": 0, "userReserves": []})
        reserve = reserve_ids[asset]
        # UserConfiguration bitmap: bit 2 id borrowing, bit 2 id + 1 used as collateral.
        if debt > 0:
            user["configuration"] |= 1 << (2 * reserve)
        if collateral > 0:
            user["configuration"] |= 1 << (2 * reserve + 1)
        user["userReserves"].append(
            {"asset": asset, "scaled_a_token": str(collateral), "scaled_variable_debt": str(debt), "stable_debt": "0"}
        )
    return {
        "currentTimestamp": timestamp,
        "reserves": reserves,
        "emodeCategories": [],
        "users": [
            {
                "wallet": u["wallet"],
                "emode": u["emode"],
                "user_configuration": str(u["configuration"]),
                "userReserves": u["userReserves"],
            }
            for u in users.values()
        ],
        "repeat": repeat,
    }


def run_math_utils(payload: dict[str, Any]) -> dict[str, Any]:
    """Runs the script on `payload`, written to a file (node reading a pipe can fail with EAGAIN)."""
    if shutil.which("node") is None or not MATH_UTILS.is_dir():
        raise SystemExit("health.py: node or node_modules/@aave/math-utils is missing; run `make setup`")
    try:
        result: dict[str, Any] = run_node_json(MATH_UTILS_SCRIPT, payload, timeout_s=None)
    except RuntimeError as exc:
        raise SystemExit(f"health.py: {exc}") from None
    return result


def check_against_math_utils(ours: pl.DataFrame, library: dict[str, Any]) -> dict[str, Any]:
    """Asserts that every wallet's health factor and the set of wallets under 1 agree with the library's.

    The contract (and we) floor each asset's value to base units and the collateral-weighted average threshold to
    whole bps; the library floors neither (see tests/test_aave_math_utils.py). So our threshold is the floor of the
    library's, give or take a hair where the library's average sits just under a whole bps; the library's totals
    with our threshold give our HF to 1e-9; and the library's own HF exceeds ours by less than 1 / threshold.
    """
    theirs = {u["wallet"]: u for u in library["users"]}
    assert set(theirs) == set(ours["wallet"]), "wallets differ"
    hair = Fraction(1, 10**6)  # bps
    worst_same = worst_raw = Fraction(0)
    under_ours: set[str] = set()
    under_theirs: set[str] = set()
    near_one: set[str] = set()
    rows = ours.select("wallet", "health_factor", "liquidation_threshold_bps", "liquidatable").iter_rows()
    for wallet, health_factor, threshold_bps, liquidatable in rows:
        lib = theirs[wallet]
        assert health_factor is not None and lib["healthFactor"] != "-1", wallet  # every synthetic wallet borrows
        hf = Fraction(health_factor)
        threshold = Fraction(lib["currentLiquidationThreshold"]) * BPS
        assert threshold_bps - hair < threshold < threshold_bps + 1, (wallet, float(threshold), threshold_bps)
        collateral = Fraction(lib["totalCollateralMarketReferenceCurrency"])
        debt = Fraction(lib["totalBorrowsMarketReferenceCurrency"])
        same = collateral * threshold_bps / BPS / debt
        raw = Fraction(lib["healthFactor"]) / hf - 1
        assert abs(same / hf - 1) < HF_TOLERANCE, (wallet, float(same / hf - 1))
        assert -HF_TOLERANCE < raw < Fraction(1, threshold_bps) + HF_TOLERANCE, (wallet, float(raw))
        worst_same, worst_raw = max(worst_same, abs(same / hf - 1)), max(worst_raw, abs(raw))
        if liquidatable:
            under_ours.add(wallet)
        if same < 1:
            under_theirs.add(wallet)
        if abs(hf - 1) < HF_TOLERANCE:
            near_one.add(wallet)
    differing = under_ours ^ under_theirs
    assert differing <= near_one, f"wallets under HF 1 differ away from HF 1: {sorted(differing)[:5]}"
    return {
        "wallets_compared": ours.height,
        "wallets_under_hf_1": len(under_ours),
        "wallets_under_hf_1_differing": len(differing),
        "wallets_within_1e-9_of_hf_1": len(near_one),
        "max_relative_hf_difference_same_threshold": float(worst_same),
        "max_relative_hf_difference_library_unfloored_threshold": float(worst_raw),
    }


def math_utils_run(wallets: int, seed: int, repeat: int) -> dict[str, Any]:
    positions = one_row_per_asset(synthetic_positions(wallets, seed))
    library = run_math_utils(math_utils_payload(positions, repeat))
    ours = run_health(positions)
    checks = check_against_math_utils(ours, library)
    health_times = _timed(lambda: run_health(positions), ENGINE_RUNS)
    engine_times = _timed(lambda: run_engine(positions), ENGINE_RUNS)
    # The script reports the sum over its runs, so the library's figure is a mean (its first run, JIT warm-up
    # included, is within a few % of the others).
    library_seconds = library["seconds_per_repeat"]
    return {
        "wallets": wallets,
        "positions": positions.height,
        "math_utils_seconds_mean": round(library_seconds, 4),
        "math_utils_runs": library["repeat"],
        "math_utils_us_per_wallet": round(library_seconds / wallets * 1e6, 3),
        "health_seconds_best": round(min(health_times), 4),
        "health_seconds_all": [round(t, 4) for t in health_times],
        "health_us_per_wallet": round(min(health_times) / wallets * 1e6, 3),
        "engine_seconds_best": round(min(engine_times), 4),
        "engine_seconds_all": [round(t, 4) for t in engine_times],
        "engine_us_per_wallet": round(min(engine_times) / wallets * 1e6, 3),
        "ratio_health": round(library_seconds / min(health_times), 1),
        "ratio_health_mean": round(library_seconds / statistics.mean(health_times), 1),
        "ratio_full_engine_vs_library_health": round(library_seconds / min(engine_times), 1),
        "checks": checks,
    }


def incremental_run(wallets: int, changed_share: float, seed: int, repeat: int) -> dict[str, Any]:
    """A full score of the next snapshot against rescoring only the wallets that changed in it."""
    positions = synthetic_positions(wallets, seed)
    previous = score_book(positions)
    borrowers = np.random.default_rng(seed + 1).choice(wallets, int(wallets * changed_share), replace=False)
    touched = pl.col("wallet").is_in(pl.Series(borrowers).cast(pl.Utf8).implode())
    after = positions.with_columns(
        pl.col("block_number") + 1,
        pl.col("block_timestamp") + 12,
        pl.when(touched).then(pl.col("debt_amount") * 101 // 100).otherwise(pl.col("debt_amount")).alias("debt_amount"),
    )
    changed = after.filter(touched).select(HOLDER_KEY).unique()
    full = score_book(after)
    found = rescore_book(previous, after)
    told = rescore_book(previous, after, changed)
    key = ["protocol", "chain_id", "market", "wallet"]
    for ours in (found, told):
        # Integers and verdicts exactly; float sums to their last bits (polars' threaded sums add in varying order).
        assert_frame_equal(ours.wallet_health.sort(key), full.wallet_health.sort(key), rel_tol=1e-12, abs_tol=0)
        by_position = [*key, "asset", "collateral_usd_now", "debt_usd_now"]
        prices = ours.liquidation_prices.sort(by_position)
        assert_frame_equal(prices, full.liquidation_prices.sort(by_position), rel_tol=1e-12, abs_tol=0)
        assert_frame_equal(ours.liquidation_curve, full.liquidation_curve, rel_tol=1e-9, abs_tol=1e-6)
    full_times = _timed(lambda: score_book(after), repeat)
    found_times = _timed(lambda: rescore_book(previous, after), repeat)
    told_times = _timed(lambda: rescore_book(previous, after, changed), repeat)
    return {
        "wallets": wallets,
        "positions": positions.height,
        "changed_wallets": changed.height,
        "full_score_seconds_best": round(min(full_times), 3),
        "rescore_finding_changes_seconds_best": round(min(found_times), 3),
        "rescore_told_changes_seconds_best": round(min(told_times), 3),
        "ratio_finding_changes": round(min(full_times) / min(found_times), 1),
        "ratio_told_changes": round(min(full_times) / min(told_times), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wallets", type=int, default=1_000_000, help="wallets of the scale run (0: skip it)")
    parser.add_argument("--math-utils-wallets", type=int, default=20_000, help="wallets against @aave/math-utils")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the scale run and of the library")
    parser.add_argument("--incremental-wallets", type=int, default=200_000, help="wallets of the rescore (0: skip)")
    parser.add_argument("--changed-share", type=float, default=0.01, help="share of wallets changed for the rescore")
    parser.add_argument(
        "--previous-engine",
        type=Path,
        help="a folder holding an earlier `chainrisk` package (git archive COMMIT chainrisk | tar -x -C FOLDER): its "
        "scale run, in a process of its own before and after ours, is the baseline",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the figures go")
    args = parser.parse_args()
    command = (
        f"python benchmarks/health.py --wallets {args.wallets} --math-utils-wallets {args.math_utils_wallets}"
        f" --seed {args.seed} --repeat {args.repeat} --incremental-wallets {args.incremental_wallets}"
        f" --changed-share {args.changed_share}"
    )
    if args.previous_engine is not None:
        command += f" --previous-engine {args.previous_engine}"
    result: dict[str, Any] = {"command": command}
    if args.wallets > 0:
        previous = (
            []
            if args.previous_engine is None
            else [previous_engine_run(args.previous_engine, args.wallets, args.seed, args.repeat)]
        )
        result["scale"] = scale_run(args.wallets, args.seed, args.repeat)
        if args.previous_engine is not None:
            previous.append(previous_engine_run(args.previous_engine, args.wallets, args.seed, args.repeat))
            result["scale_previous_engine_before_and_after"] = previous
    if args.math_utils_wallets > 0:
        result["vs_aave_math_utils"] = math_utils_run(args.math_utils_wallets, args.seed, args.repeat)
    if args.incremental_wallets > 0:
        result["incremental"] = incremental_run(args.incremental_wallets, args.changed_share, args.seed, args.repeat)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
