"""Monte-Carlo VaR speed: 10k scenarios x 100k wallets, against a naive loop of the engine's stress() per scenario.

Positions: benchmarks/health.py's synthetic wallets (two collateral and two debt positions each, seven assets).
Calibration: 168 h EWMA on the real hourly prices. Our path: build the per-wallet book once, simulate the scenario
multipliers, revalue every wallet under every scenario (bad debt, liquidatable debt, seized collateral per market),
then the VaR / ES table; the best of `--repeat` runs. Baseline: chainrisk.scoring.health.stress() called once per
scenario on the same positions, for `--naive-scenarios` scenarios, timed in the same run and extrapolated per
scenario. Both paths' per-scenario totals are checked to agree (within 1e-7 of the book's debt) on those
scenarios before the ratio is reported.
Figures go to benchmarks/results/var.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from health import synthetic_positions

from chainrisk.risk.calibration import calibrate
from chainrisk.risk.var import build_book, revalue, risk_table, simulate_multipliers
from chainrisk.scoring.health import stress

RESULTS = Path(__file__).resolve().parent / "results" / "var.json"
HORIZON_HOURS = 168


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wallets", type=int, default=100_000)
    parser.add_argument("--scenarios", type=int, default=10_000)
    parser.add_argument("--naive-scenarios", type=int, default=5, help="scenarios run through stress() one by one")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    positions = synthetic_positions(args.wallets, args.seed)
    symbols = sorted(set(positions["symbol"].to_list()))
    calibration = calibrate(symbols, horizon_hours=HORIZON_HOURS)

    def ours() -> tuple[dict[str, float], pl.DataFrame, np.ndarray, Any]:
        started = time.perf_counter()
        book = build_book(positions, calibration.symbols, calibration.assets)
        built = time.perf_counter()
        multipliers = simulate_multipliers(calibration, args.scenarios, args.seed)
        simulated = time.perf_counter()
        losses = revalue(book, multipliers)
        revalued = time.perf_counter()
        table = risk_table(losses, HORIZON_HOURS)
        done = time.perf_counter()
        phases = {
            "build_book": built - started,
            "simulate": simulated - built,
            "revalue": revalued - simulated,
            "var_table": done - revalued,
            "total": done - started,
        }
        return phases, table, multipliers, losses

    runs = [ours() for _ in range(args.repeat)]
    best = min(runs, key=lambda r: r[0]["total"])
    phases, table, multipliers, losses = best

    naive_times = []
    worst_gap = 0.0
    for s in range(args.naive_scenarios):
        shock = pl.DataFrame(
            {
                "symbol": symbols,
                "multiplier": [
                    float(multipliers[s, calibration.assets.index(calibration.symbols[x])]) for x in symbols
                ],
            }
        )
        started = time.perf_counter()
        health = stress(positions, shock)
        naive_times.append(time.perf_counter() - started)
        # Relative to the book's debt: the engine floors shocked oracle prices (up to 1e-8 of a value), we do not.
        debt = float(health["debt_usd"].sum())
        for metric in ("bad_debt_usd", "liquidatable_debt_usd", "seizable_collateral_usd"):
            theirs = float(health[metric].sum())
            mine = float(losses.metric(metric)[s].sum())
            gap = abs(mine - theirs) / debt
            assert gap < 1e-7, (s, metric, mine, theirs)
            worst_gap = max(worst_gap, gap)
    per_scenario = float(np.mean(naive_times))
    naive_total = per_scenario * args.scenarios
    total = table.filter(pl.col("scope") == "total")
    result = {
        "command": (
            f"python benchmarks/var.py --wallets {args.wallets} --scenarios {args.scenarios}"
            f" --naive-scenarios {args.naive_scenarios} --seed {args.seed} --repeat {args.repeat}"
        ),
        "wallets": args.wallets,
        "positions": positions.height,
        "scenarios": args.scenarios,
        "horizon_hours": HORIZON_HOURS,
        "calibration": {"method": calibration.method, "dof": calibration.dof, "observations": calibration.observations},
        "seconds_best": {k: round(v, 3) for k, v in phases.items()},
        "seconds_all_totals": [round(r[0]["total"], 3) for r in runs],
        "naive_stress_seconds_per_scenario": round(per_scenario, 4),
        "naive_stress_scenarios_timed": args.naive_scenarios,
        "naive_stress_seconds_extrapolated": round(naive_total, 1),
        "speedup_vs_naive": round(naive_total / phases["total"], 1),
        "max_gap_vs_stress_totals_over_book_debt": worst_gap,
        "total_var": total.select("metric", "confidence", "var_usd", "es_usd").to_dicts(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
