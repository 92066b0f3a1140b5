"""Health engine stage by stage: CPU seconds of each stage of the scale run, ours against an earlier engine, in turns.

The scale run of benchmarks/health.py (1M synthetic wallets x 4 positions: positions valued, wallet health,
liquidation prices, the curve's coefficients on one axis, the 41-point curve) with each stage's CPU seconds (every
thread's) and wall time. On a machine others share, one process's best of three moves by a third from run to run;
here processes of ours and of the earlier engine (`--previous-engine FOLDER`, an earlier commit's `chainrisk`
package: `git archive COMMIT chainrisk | tar -x -C FOLDER`) take turns, `--rounds` each, and the medians over every
run of each side are compared. Figures go to benchmarks/results/health_stages.json. With `--shock` the book is valued
at shocked oracle prices (SHOCK: the non-stable assets down 25-40 %, as stress, cascade and replay reprice a book), so
the value stage includes the shock's join.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "health_stages.json"
STAGES = ("value", "health", "prices", "coefficients", "curve")
#: The `--shock` run's multipliers of the synthetic book's oracle prices.
SHOCK = {"WETH": 0.7, "wstETH": 0.7, "WBTC": 0.75, "LINK": 0.6}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stage_runs(wallets: int, seed: int, repeat: int, shock: bool = False) -> list[dict[str, Any]]:
    """`repeat` runs of the engine on the synthetic book (at SHOCK's prices with `shock`), each stage's CPU and wall
    seconds (this process's engine)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from health import synthetic_positions

    from chainrisk.scoring.groups import STABLE_GROUP
    from chainrisk.scoring.health import (
        DROPS,
        axis_coefficients,
        curve_points,
        liquidation_prices,
        value_positions,
        wallet_health,
    )

    positions = synthetic_positions(wallets, seed)
    multipliers = pl.DataFrame({"symbol": list(SHOCK), "multiplier": list(SHOCK.values())}) if shock else None
    runs = []
    for _ in range(repeat):
        marks = [(time.perf_counter(), _cpu())]
        valued = value_positions(positions, multipliers).collect().lazy()
        marks.append((time.perf_counter(), _cpu()))
        wallet_health(valued).collect()
        marks.append((time.perf_counter(), _cpu()))
        liquidation_prices(valued).collect()
        marks.append((time.perf_counter(), _cpu()))
        coefficients = axis_coefficients(valued, pl.col("group") != STABLE_GROUP)
        marks.append((time.perf_counter(), _cpu()))
        curve_points(coefficients, DROPS, ["chain_id", "market"]).collect()
        marks.append((time.perf_counter(), _cpu()))
        run: dict[str, Any] = {}
        for name, (w0, c0), (w1, c1) in zip(STAGES, marks[:-1], marks[1:], strict=True):
            run[name] = {"cpu": round(c1 - c0, 3), "wall": round(w1 - w0, 3)}
        run["total"] = {"cpu": round(marks[-1][1] - marks[0][1], 3), "wall": round(marks[-1][0] - marks[0][0], 3)}
        runs.append(run)
    return runs


def _in_process(package: Path | None, wallets: int, seed: int, repeat: int, shock: bool) -> list[dict[str, Any]]:
    """stage_runs in a process of its own, with `package` (a folder holding a `chainrisk` package) first on the path."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "runs.json"
        command = [sys.executable, __file__, "--wallets", str(wallets), "--seed", str(seed), "--repeat", str(repeat)]
        command += ["--runs-only", str(output), *(["--shock"] if shock else [])]
        environment = dict(os.environ)
        if package is not None:
            environment["PYTHONPATH"] = str(package)
        subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL)
        runs: list[dict[str, Any]] = json.loads(output.read_text())
    return runs


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        name: {kind: round(statistics.median(r[name][kind] for r in runs), 3) for kind in ("cpu", "wall")}
        for name in (*STAGES, "total")
    } | {
        "total_cpu_best": min(r["total"]["cpu"] for r in runs),
        "total_wall_best": min(r["total"]["wall"] for r in runs),
    }


def _load_average() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wallets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="engine runs per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes of each side, taking turns")
    parser.add_argument("--previous-engine", type=Path, help="folder holding an earlier `chainrisk` (required)")
    parser.add_argument("--shock", action="store_true", help="value the book at SHOCK's prices")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--runs-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.runs_only is not None:
        args.runs_only.write_text(json.dumps(stage_runs(args.wallets, args.seed, args.repeat, args.shock)))
        return
    if args.previous_engine is None:
        parser.error("--previous-engine FOLDER is required (git archive COMMIT chainrisk | tar -x -C FOLDER)")
    ours: list[dict[str, Any]] = []
    previous: list[dict[str, Any]] = []
    load_before = _load_average()
    for _ in range(args.rounds):
        previous += _in_process(args.previous_engine, args.wallets, args.seed, args.repeat, args.shock)
        ours += _in_process(None, args.wallets, args.seed, args.repeat, args.shock)
    result = {
        "command": f"python benchmarks/health_stages.py --wallets {args.wallets} --seed {args.seed} --repeat "
        f"{args.repeat} --rounds {args.rounds} --previous-engine {args.previous_engine}"
        + (" --shock" if args.shock else "")
        + (f" --output {args.output}" if args.output != RESULTS else ""),
        "runs_each": len(ours),
        "load_average_1_5_15_before": load_before,
        "load_average_1_5_15": _load_average(),
        "ours_median": _medians(ours),
        "previous_median": _medians(previous),
        "ours": ours,
        "previous": previous,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("ours", "previous")}, indent=2))


if __name__ == "__main__":
    main()
