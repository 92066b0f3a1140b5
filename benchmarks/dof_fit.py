"""Student-t degrees-of-freedom fits (chainrisk.risk.calibration.fit_dof) against the whole grid's likelihood, side by
side on the same returns: random windows (100 to 26,000 hours) of every hourly series in ../shared/data, their 1 h
and 24 h log returns standardised by a RiskMetrics EWMA (lambda 0.94) as calibrate does. Reports both times and how
many fits differ. Figures to benchmarks/results/dof_fit.json."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chainrisk.risk.calibration import (  # noqa: E402
    _DOF_GRID,
    RISKMETRICS_LAMBDA,
    _t_loglik_unit_variance,
    ewma_covariances,
    filtered_residuals,
    fit_dof,
    load_price_panel,
)


def whole_grid(z: np.ndarray) -> float:
    """The dof of greatest likelihood over every point of the grid (fit_dof before the coarse search)."""
    z = z[np.isfinite(z)]
    return float(_DOF_GRID[int(np.argmax(_t_loglik_unit_variance(z, _DOF_GRID)))])


def standardised(moves: np.ndarray) -> np.ndarray:
    """Each move over the RiskMetrics volatility forecast before it, as calibrate filters its residuals."""
    column = moves[:, None]
    result: np.ndarray = filtered_residuals(column, ewma_covariances(column, RISKMETRICS_LAMBDA))[:, 0]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=40, help="random windows per series (default 40)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "dof_fit.json")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    panel = load_price_panel()
    fits = differing = 0
    seconds = {"fit_dof": 0.0, "whole_grid": 0.0}
    for symbol in panel.columns[1:]:
        prices = panel.get_column(symbol).drop_nulls().to_numpy()
        returns = np.diff(np.log(prices[prices > 0]))
        for _ in range(args.windows):
            length = int(rng.integers(100, max(101, min(len(returns), 26_000))))
            start = int(rng.integers(0, max(1, len(returns) - length + 1)))
            window = returns[start : start + length]
            for hours in (1, 24):
                moves = window[: len(window) // hours * hours].reshape(-1, hours).sum(axis=1)
                if len(moves) < 20:
                    continue
                z = standardised(moves)
                started = time.perf_counter()
                ours = fit_dof(z)
                seconds["fit_dof"] += time.perf_counter() - started
                started = time.perf_counter()
                theirs = whole_grid(z)
                seconds["whole_grid"] += time.perf_counter() - started
                fits += 1
                differing += ours != theirs
    report = {
        "command": "python benchmarks/dof_fit.py " + " ".join(sys.argv[1:]),
        "series": len(panel.columns) - 1,
        "fits": fits,
        "differing": differing,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "speedup": round(seconds["whole_grid"] / seconds["fit_dof"], 2),
        "load_average": os.getloadavg(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
