"""Health engine at scale: 1M synthetic wallets x 4 positions, health + liquidation prices + a 41-point curve.

Reports the engine's wall time and the process's peak resident memory, and writes them to
benchmarks/results/health.json. Synthetic wallets: two collateral and two debt positions each, drawn
from the devnet's seven assets with Aave V3-like parameters and heavy-tailed sizes.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import polars as pl

from chainrisk.scoring.groups import STABLE_GROUP
from chainrisk.scoring.health import (
    DROPS,
    apply_multipliers,
    axis_coefficients,
    curve_points,
    liquidation_prices,
    position_values,
    prepare,
    wallet_health,
)

RESULTS = Path(__file__).parent / "results" / "health.json"
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
    valued = position_values(apply_multipliers(prepare(positions), None)).collect().lazy()
    health = wallet_health(valued).collect()
    prices = liquidation_prices(valued).collect()
    coefficients = axis_coefficients(valued, pl.col("group") != STABLE_GROUP)
    curve = curve_points(coefficients, DROPS, ["chain_id", "market"]).collect()
    return {"wallets": health.height, "liquidation_prices": prices.height, "curve_points": curve.height}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wallets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    positions = synthetic_positions(args.wallets, args.seed)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        counts = run_engine(positions)
        times.append(time.perf_counter() - started)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "command": f"python benchmarks/health.py --wallets {args.wallets} --seed {args.seed} --repeat {args.repeat}",
        "positions": positions.height,
        **counts,
        "engine_seconds_best": round(min(times), 3),
        "engine_seconds_all": [round(t, 3) for t in times],
        "peak_rss_mib": round(peak_mib),
        "rss_before_engine_mib": round(before / 1024),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
