"""Collateral optimisation speed: plans for a market's weakest wallets, against an earlier engine in the same run.

The market: benchmarks/health.py's synthetic Aave V3 book (`--wallets` wallets, two collateral and two debt
positions each, seven assets). The `--plans` wallets with the lowest health under `--below` (among those holding
each asset once) get a plan to `--target` (`chainrisk.risk.optimise.optimise_wallet`, as `chainrisk risk optimise`
calls it per wallet, with the balances it assumes without a node: `ample_balances`), timed per wallet.

Baseline, with `--previous-engine FOLDER` (an earlier commit's `chainrisk` package, `git archive COMMIT chainrisk |
tar -x -C FOLDER`): the same script in a process of its own on that package, on the same book, for the first
`--previous-plans` of those wallets (an engine that rebuilds each amount it tries from the whole market can take
minutes a wallet on a large book); the ratio is of the mean seconds a wallet. Both engines' plans for those wallets
(every action's kind, asset and exact amount, the health after) are checked equal before the ratio is reported.
Figures go to benchmarks/results/optimise.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from health import synthetic_positions

from chainrisk.jobs.risk import ample_balances
from chainrisk.risk.optimise import optimise_wallet
from chainrisk.scoring.health import stress

RESULTS = Path(__file__).resolve().parent / "results" / "optimise.json"


def weakest(positions: pl.DataFrame, below: float, count: int) -> list[str]:
    """The `count` least healthy wallets under `below` among those holding each asset once: the generator may draw
    one asset for both of a wallet's debts, which no market's book holds (a plan's actions are per asset)."""
    single = positions.group_by("wallet").agg(pl.col("symbol").n_unique() == pl.len()).filter(pl.col("symbol"))
    health = stress(positions).join(single.select("wallet"), on="wallet").filter(pl.col("health_factor") < below)
    return health.sort("health_factor", "wallet").head(count)["wallet"].to_list()


def plan_all(positions: pl.DataFrame, wallets: list[str], target: float) -> tuple[list[float], list[dict[str, Any]]]:
    """Seconds and plan of each wallet, in order."""
    seconds, plans = [], []
    with_usd = positions.with_columns(debt_usd=_debt_usd())
    for wallet in wallets:
        balances = ample_balances(with_usd, wallet)
        started = time.perf_counter()
        plan = optimise_wallet(positions, wallet, balances, target)
        seconds.append(time.perf_counter() - started)
        plans.append(
            {
                "wallet": wallet,
                "feasible": plan.feasible,
                "health_after": plan.health_after,
                "actions": [[a.kind, a.symbol, str(a.amount), a.into, str(a.received)] for a in plan.actions],
            }
        )
    return seconds, plans


def _debt_usd() -> pl.Expr:
    """The synthetic book has no USD column; ample_balances sizes the balances by the wallet's debt in USD."""
    units = pl.lit(10).cast(pl.Float64).pow(pl.col("decimals"))
    return pl.col("debt_amount").cast(pl.Float64) / units * pl.col("price_usd")


def previous_engine_run(package: Path, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "previous.json"
        command = [sys.executable, __file__, "--wallets", str(args.wallets), "--seed", str(args.seed)]
        command += ["--plans", str(args.previous_plans), "--below", str(args.below), "--target", str(args.target)]
        command += ["--output", str(output)]
        environment = {**os.environ, "PYTHONPATH": str(package)}
        subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL)
        result: dict[str, Any] = json.loads(output.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wallets", type=int, default=100_000, help="wallets in the synthetic market")
    parser.add_argument("--plans", type=int, default=20, help="wallets planned (the weakest under --below)")
    parser.add_argument("--below", type=float, default=1.2)
    parser.add_argument("--target", type=float, default=1.25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--previous-engine", type=Path, help="folder holding an earlier commit's chainrisk package")
    parser.add_argument("--previous-plans", type=int, default=2, help="wallets the earlier engine plans")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    positions = synthetic_positions(args.wallets, args.seed)
    wallets = weakest(positions, args.below, args.plans)
    seconds, plans = plan_all(positions, wallets, args.target)
    result: dict[str, Any] = {
        "command": "python benchmarks/optimise.py " + " ".join(sys.argv[1:]),
        "market_wallets": args.wallets,
        "positions": positions.height,
        "plans": len(plans),
        "feasible": sum(p["feasible"] for p in plans),
        "seconds_per_wallet": seconds,
        "mean_seconds_per_wallet": sum(seconds) / len(seconds) if seconds else None,
        "load_average": [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]],
        "plan_details": plans,
    }
    if args.previous_engine is not None:
        previous = previous_engine_run(args.previous_engine, args)
        compared = previous["plan_details"]
        if compared != plans[: len(compared)]:
            raise SystemExit("the earlier engine's plans differ from ours: no ratio")
        result["previous_engine"] = {
            "folder": str(args.previous_engine),
            "plans": len(compared),
            "seconds_per_wallet": previous["seconds_per_wallet"],
            "mean_seconds_per_wallet": previous["mean_seconds_per_wallet"],
            "plans_equal": True,
        }
        ours = sum(seconds[: len(compared)]) / len(compared)
        result["speedup_on_the_same_wallets"] = previous["mean_seconds_per_wallet"] / ours
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: v for k, v in result.items() if k not in ("plan_details", "seconds_per_wallet")}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
