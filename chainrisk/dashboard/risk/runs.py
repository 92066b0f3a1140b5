"""Which risk runs the Risk models page shows: the latest of each kind, the caption naming it, and the sentence
saying what to run when a kind has never run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chainrisk.dashboard.data import missing_relations, query

KINDS = ("stress", "var", "optimise", "cascade")
#: What each kind is called on the page.
KIND_NAMES = {"stress": "historical replay", "var": "VaR / ES", "optimise": "optimisation", "cascade": "cascade"}
#: The options a first run of each kind needs or most likely wants, after `chainrisk risk KIND --db DB`.
KIND_OPTIONS = {"stress": "", "var": "", "optimise": " --below 1.2", "cascade": " --shock WETH=-30%"}
#: The VaR model's loss measures, as people say them.


def no_run_hint(db: Path, kind: str = "stress") -> str:
    """The one sentence that says which command writes what is missing."""
    command = f"`chainrisk risk {kind} --db {db}{KIND_OPTIONS[kind]}`"
    if kind == "stress":
        return (
            f"No risk model has been run on this database yet: run {command} (then `risk var`, `risk optimise` "
            "and `risk cascade` the same way) and reload this page."
        )
    backtest = " (with `--backtest 2022-01-01..2022-12-31` to check it against history)" if kind == "var" else ""
    return f"No {KIND_NAMES[kind]} run in this database yet: run {command}{backtest} and reload this page."


def latest_runs(db: Path) -> dict[str, dict[str, Any]]:
    """The latest risk_runs row of each kind (none when the file predates the risk models)."""
    if missing_relations(db, ("risk_runs",)):
        return {}
    frame = query(
        db,
        """
        SELECT run_id, kind, started_at, seconds, block_number, wallets, params, notes FROM risk_runs
        QUALIFY row_number() OVER (PARTITION BY kind ORDER BY run_id DESC) = 1
        """,
    )
    return {str(row["kind"]): row for row in frame.iter_rows(named=True)}


def run_caption(run: Mapping[str, Any]) -> str:
    """Which run a section shows: id, when, on which positions, and its parameters in words."""
    started = run["started_at"]
    params = json.loads(run["params"] or "{}")
    return (
        f"Run #{run['run_id']} · written {started:%Y-%m-%d %H:%M} UTC in {run['seconds'] or 0:.1f} s · positions at "
        f"block {run['block_number'] or 0:,} ({run['wallets'] or 0:,} borrowing positions) · "
        + describe_params(run["kind"], params)
    )


def describe_params(kind: str, params: Mapping[str, Any]) -> str:
    """A run's parameters as a sentence."""
    if kind == "stress":
        overrides = ", ".join(f"{s} → {v}" for s, v in (params.get("series") or {}).items()) or "none"
        return (
            f"windows {', '.join(params.get('windows') or [])}; one step every {params.get('step_hours')} h; "
            f"price series overrides: {overrides}"
        )
    if kind == "var":
        start, end = params.get("calibration_window") or (None, None)
        backtest = params.get("backtest")
        return (
            f"{params.get('scenarios', 0):,} scenarios (seed {params.get('seed')}); horizons "
            f"{', '.join(f'{h} h' for h in params.get('horizons') or [])}; confidence "
            f"{', '.join(f'{c:.0%}' for c in params.get('confidences') or [])}; covariance {params.get('method')}, "
            + (
                f"calibrated on the price data from {start or 'its start'} to {end or 'its end'}; "
                if start or end
                else "calibrated on all the price data; "
            )
            + (f"backtest {backtest[0]}..{backtest[1]}" if backtest else "no backtest")
        )
    if kind == "optimise":
        swaps = ", ".join(params.get("swap_into") or []) or "none"
        balances = (
            "balances read from the chain"
            if params.get("balances") == "chain"
            else "any top-up or repayment assumed fundable"
        )
        shifts = ", ".join(f"{s:+d}" for s in params.get("shifts_bps") or [])
        return (
            f"target health {params.get('target')} for the weakest {params.get('limit')} positions under "
            f"{params.get('below')}; swaps into: {swaps}; {balances}; threshold shifts {shifts} bps"
        )
    if kind == "cascade":
        shock = ", ".join(f"{s} {(m - 1):+.0%}" for s, m in (params.get("shock") or {}).items())
        depths = ", ".join(f"{s} ${d:,.0f}" for s, d in (params.get("depth_usd_at_2pct") or {}).items())
        return (
            f"shock {shock}; market depth for a 2 % move: {depths or 'defaults per asset class'} "
            f"({params.get('depth_shape')} impact); at most {params.get('max_rounds')} rounds"
        )
    return ", ".join(f"{k}: {v}" for k, v in params.items())
