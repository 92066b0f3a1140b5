"""Risk models page: the latest `chainrisk risk stress|var|optimise|cascade` run of each kind, for risk stewards.

Reads risk_runs and the result tables keyed by its run_id (stress_replay_*, var_*, parameter_suggestions,
optimise_*, threshold_sensitivity, cascade_*), with market names from stg_market_labels when the file has it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard.data import database_location, missing_relations, query
from chainrisk.dashboard.ui import (
    PROTOCOL_NAMES,
    health_column,
    market_name,
    naive_utc,
    percent_column,
    tokens_column,
    usd,
    usd_column,
    usd_short,
    wallet_link_column,
    with_wallet_links,
)
from chainrisk.units import BPS

KINDS = ("stress", "var", "optimise", "cascade")
#: What each kind is called on the page.
KIND_NAMES = {"stress": "historical replay", "var": "VaR / ES", "optimise": "optimisation", "cascade": "cascade"}
#: The options a first run of each kind needs or most likely wants, after `chainrisk risk KIND --db DB`.
KIND_OPTIONS = {"stress": "", "var": "", "optimise": " --below 1.2", "cascade": " --shock WETH=-30%"}
#: The VaR model's loss measures, as people say them.
MEASURES = {
    "bad_debt_usd": "bad debt",
    "liquidatable_debt_usd": "liquidatable debt",
    "seizable_collateral_usd": "seizable collateral",
}
#: First-liquidated wallets listed at most per window (earliest first); how many there are in all is said beside.
WALLETS_SHOWN = 500
#: The Kupiec test's level: a p-value below it rejects the VaR model.
KUPIEC_LEVEL = 0.05
HOURS_PER_YEAR = 24 * 365
MARKET_KEY = ["protocol", "chain_id", "market"]


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


def market_labels(db: Path) -> dict[tuple[str, int, str], str]:
    """(protocol, chain_id, market) -> 'Morpho Blue · wstETH/WETH 94.5%'; empty when the labels view is missing
    (a database the risk commands ran on but `chainrisk score` never did)."""
    if missing_relations(db, ("stg_market_labels",)):
        return {}
    frame = query(db, "SELECT protocol, chain_id, market, market_label FROM stg_market_labels")
    return {(p, c, m): market_name(p, label) for p, c, m, label in frame.iter_rows()}


def with_market_names(frame: pl.DataFrame, labels: Mapping[tuple[str, int, str], str]) -> pl.DataFrame:
    """Adds `market_name`: the market's label, a protocol's name for its 'all' rows, 'All markets' for the total."""

    def name(protocol: str, chain_id: int | None, market: str) -> str:
        if market == "all":
            return "All markets" if protocol == "all" else f"{PROTOCOL_NAMES.get(protocol, protocol)} (all markets)"
        known = labels.get((protocol, chain_id, market)) if chain_id is not None else None
        return known or market_name(protocol, market if len(market) <= 42 else f"{market[:10]}…")

    names = [name(*key) for key in frame.select(MARKET_KEY).iter_rows()]
    return frame.with_columns(pl.Series("market_name", names, dtype=pl.String))


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


# --- historical replays ---------------------------------------------------------------------------------------------


def stress_windows(db: Path, run_id: int) -> list[str]:
    """The run's windows, earliest first."""
    frame = query(
        db,
        "SELECT window_name FROM stress_replay_steps WHERE run_id = ? GROUP BY window_name ORDER BY min(time), 1",
        run_id,
    )
    return [str(w) for w in frame["window_name"]]


def stress_totals(db: Path, run_id: int, window: str) -> pl.DataFrame:
    """The whole book (scope total) at every step of one window."""
    return query(
        db,
        """
        SELECT step, time, wallets, liquidatable_wallets, liquidatable_debt_usd, seizable_collateral_usd, bad_debt_usd,
               debt_usd, collateral_usd
        FROM stress_replay_steps WHERE run_id = ? AND window_name = ? AND scope = 'total' ORDER BY step
        """,
        run_id,
        window,
    )


def worst_step(totals: pl.DataFrame) -> dict[str, Any]:
    """The step with the most bad debt; among equals (no bad debt at all, say) the most liquidatable debt, then the
    earliest."""
    return totals.sort(
        "bad_debt_usd", "liquidatable_debt_usd", "step", descending=[True, True, False], nulls_last=True
    ).row(0, named=True)


def stress_prices(db: Path, run_id: int, window: str) -> pl.DataFrame:
    """Each symbol's price change since the window's start (%), per step."""
    return query(
        db,
        """
        SELECT time, symbol, series, (multiplier - 1) * 100 AS change_pct
        FROM stress_replay_prices WHERE run_id = ? AND window_name = ? ORDER BY symbol, step
        """,
        run_id,
        window,
    )


def stress_wallets(db: Path, run_id: int, window: str, limit: int = WALLETS_SHOWN) -> tuple[pl.DataFrame, int, int]:
    """Wallets (per market) liquidatable at some step, first liquidated first (at most `limit`), how many there are,
    and how many borrowing positions the replay followed."""
    where = "FROM stress_replay_wallets WHERE run_id = ? AND window_name = ?"
    rows = query(
        db,
        f"""
        SELECT wallet, protocol, chain_id, market, first_liquidatable_time, health_factor_start, min_health_factor,
               debt_usd_start, max_bad_debt_usd
        {where} AND first_liquidatable_step IS NOT NULL
        ORDER BY first_liquidatable_step, min_health_factor, wallet, market LIMIT ?
        """,
        run_id,
        window,
        limit,
    )
    counts = query(
        db,
        f"SELECT count(*) FILTER (WHERE first_liquidatable_step IS NOT NULL) AS hit, count(*) AS n {where}",
        run_id,
        window,
    ).row(0, named=True)
    return rows, int(counts["hit"]), int(counts["n"])


# --- VaR / ES -------------------------------------------------------------------------------------------------------


def var_results(db: Path, run_id: int) -> pl.DataFrame:
    return query(
        db,
        """
        SELECT scope, protocol, chain_id, market, metric, horizon_hours, confidence * 100 AS confidence_pct, var_usd,
               es_usd, mean_usd, scenarios
        FROM var_results WHERE run_id = ?
        ORDER BY CASE scope WHEN 'total' THEN 0 WHEN 'protocol' THEN 1 ELSE 2 END, protocol, market, metric,
                 horizon_hours, confidence
        """,
        run_id,
    ).with_columns(pl.col("metric").replace(MEASURES).alias("measure"))


def var_calibration(db: Path, run_id: int) -> pl.DataFrame:
    """Volatility per series and horizon, over the horizon and annualised (both in %), and the fat-tail fits."""
    return query(
        db,
        """
        SELECT series, horizon_hours, volatility * 100 AS volatility_pct,
               volatility * sqrt(? / horizon_hours) * 100 AS annualised_pct, asset_dof, joint_dof, method,
               observations, window_start, window_end
        FROM var_calibration WHERE run_id = ? ORDER BY horizon_hours, series
        """,
        HOURS_PER_YEAR,
        run_id,
    )


def backtest_summary(db: Path, run_id: int) -> pl.DataFrame:
    return query(
        db,
        """
        SELECT metric, horizon_hours, confidence, observations, exceedances, expected_rate, observed_rate,
               lr_statistic, p_value
        FROM var_backtest_summary WHERE run_id = ? ORDER BY metric, horizon_hours, confidence
        """,
        run_id,
    )


def backtest_series(db: Path, run_id: int, metric: str, horizon_hours: int, confidence: float) -> pl.DataFrame:
    return query(
        db,
        """
        SELECT time, var_usd, realised_usd, exceedance FROM var_backtest
        WHERE run_id = ? AND metric = ? AND horizon_hours = ? AND confidence = ? ORDER BY time
        """,
        run_id,
        metric,
        horizon_hours,
        confidence,
    )


def number(value: float | None, spec: str) -> str:
    """A figure for a metric card, "—" when there is none (NULL or NaN)."""
    return "—" if value is None or math.isnan(value) else format(value, spec)


def kupiec_verdict(row: Mapping[str, Any]) -> tuple[bool, str]:
    """(passes, one plain sentence) for a backtest summary row."""
    n, hits, p = int(row["observations"] or 0), int(row["exceedances"] or 0), row["p_value"]
    expected = (row["expected_rate"] or 0.0) * n
    level = f"{row['confidence']:.0%} VaR"
    if n == 0 or p is None or math.isnan(p):
        return False, "No period could be tested: the backtest window holds no complete horizon of prices."
    if p >= KUPIEC_LEVEL:
        return True, (
            f"The model holds up: {hits} losses above the {level} in {n} periods, where {expected:.1f} were expected, "
            f"is within chance (Kupiec p = {p:.3f} ≥ {KUPIEC_LEVEL})."
        )
    if hits > expected:
        return False, (
            f"The model understates risk: {hits} losses above the {level} in {n} periods, where {expected:.1f} were "
            f"expected, is too many to be chance (Kupiec p = {p:.3f} < {KUPIEC_LEVEL})."
        )
    return False, (
        f"The model is too cautious: {hits} losses above the {level} in {n} periods, where {expected:.1f} were "
        f"expected, is too few to be chance (Kupiec p = {p:.3f} < {KUPIEC_LEVEL})."
    )


def parameter_suggestions(db: Path, run_id: int) -> pl.DataFrame:
    """Current and suggested liquidation threshold and LTV in %, their changes in bps."""
    return query(
        db,
        """
        SELECT protocol, chain_id, market, symbol, series, collateral_usd,
               (liquidation_bonus_bps - ?) / 100 AS bonus_pct, current_lt_bps / 100 AS current_lt_pct,
               suggested_lt_bps / 100 AS suggested_lt_pct, lt_change_bps, current_ltv_bps / 100 AS current_ltv_pct,
               suggested_ltv_bps / 100 AS suggested_ltv_pct, ltv_change_bps, tail_move * 100 AS tail_move_pct,
               horizon_hours, confidence
        FROM parameter_suggestions WHERE run_id = ? ORDER BY protocol, market, symbol
        """,
        BPS,
        run_id,
    )


# --- optimisation ---------------------------------------------------------------------------------------------------


def optimise_plans(db: Path, run_id: int) -> pl.DataFrame:
    """Plans, weakest health first."""
    return query(
        db,
        """
        SELECT wallet, protocol, chain_id, market, health_before, health_after, target_health, feasible, cost_usd,
               actions, reason
        FROM optimise_plans WHERE run_id = ? ORDER BY health_before NULLS LAST, wallet, market
        """,
        run_id,
    )


def optimise_actions(db: Path, run_id: int) -> pl.DataFrame:
    """Every plan's steps in token units and USD (never raw base units), a swap's proceeds in tokens of what it buys."""
    return query(
        db,
        """
        SELECT wallet, protocol, chain_id, market, seq + 1 AS step, kind, symbol, amount_tokens, amount_usd, cost_usd,
               into_symbol, received_tokens
        FROM optimise_actions WHERE run_id = ? ORDER BY wallet, protocol, market, seq
        """,
        run_id,
    )


def tokens_text(amount: float | None) -> str:
    """A token amount for a sentence: six significant figures, thousands separated."""
    if amount is None:
        return "?"
    return f"{amount:,.2f}" if abs(amount) >= 1_000 else f"{amount:.6g}"


def action_text(kind: str, symbol: str, tokens: float | None, usd_value: float | None, into: str | None) -> str:
    """'repay 0.0712 WETH ($175)', 'swap 1.5 wstETH ($4,010) into USDC'."""
    verb = {"add": "add", "repay": "repay", "swap": "swap"}.get(kind, kind)
    text = f"{verb} {tokens_text(tokens)} {symbol} ({usd(usd_value)})"
    return f"{text} into {into}" if into else text


def with_action_summaries(plans: pl.DataFrame, actions: pl.DataFrame) -> pl.DataFrame:
    """Adds `steps`: each plan's actions in one line."""
    key = ["wallet", "protocol", "chain_id", "market"]
    summaries: dict[tuple[Any, ...], list[str]] = {}
    for row in actions.iter_rows(named=True):
        text = action_text(row["kind"], row["symbol"], row["amount_tokens"], row["amount_usd"], row["into_symbol"])
        summaries.setdefault(tuple(row[k] for k in key), []).append(text)
    steps = ["; ".join(summaries.get(k, [])) for k in plans.select(key).iter_rows()]
    return plans.with_columns(pl.Series("steps", steps, dtype=pl.String))


def threshold_sensitivity(db: Path, run_id: int) -> pl.DataFrame:
    return query(
        db,
        """
        SELECT protocol, chain_id, market, symbol, shift_bps, liquidatable_wallets,
               liquidatable_wallets_change::BIGINT AS liquidatable_wallets_change, liquidatable_collateral_usd,
               liquidatable_collateral_usd_change, liquidatable_debt_usd_change, bad_debt_usd_change
        FROM threshold_sensitivity WHERE run_id = ? ORDER BY protocol, market, symbol, shift_bps
        """,
        run_id,
    )


def sensitivity_by_symbol(db: Path, run_id: int) -> pl.DataFrame:
    """Per collateral symbol and shift, summed over markets: the change in collateral of liquidatable wallets."""
    return query(
        db,
        """
        SELECT symbol, shift_bps, sum(liquidatable_collateral_usd_change) AS collateral_change_usd,
               sum(liquidatable_wallets_change)::BIGINT AS wallets_change
        FROM threshold_sensitivity WHERE run_id = ? GROUP BY symbol, shift_bps ORDER BY symbol, shift_bps
        """,
        run_id,
    )


# --- cascade --------------------------------------------------------------------------------------------------------


def cascade_rounds(db: Path, run_id: int) -> pl.DataFrame:
    return query(
        db,
        """
        SELECT round, liquidatable_wallets, new_liquidatable_wallets, liquidated_debt_usd,
               cumulative_liquidated_debt_usd, collateral_sold_usd, amplification
        FROM cascade_rounds WHERE run_id = ? ORDER BY round
        """,
        run_id,
    )


def cascade_prices(db: Path, run_id: int, shock: Mapping[str, float]) -> pl.DataFrame:
    """Per symbol after the last round: the shock, the sales' impact and the resulting price change, all in %."""
    final = query(
        db,
        """
        SELECT symbol, cumulative_sold_usd, impact * 100 AS impact_pct, (multiplier - 1) * 100 AS price_change_pct
        FROM cascade_prices WHERE run_id = ? AND round = (SELECT max(round) FROM cascade_prices WHERE run_id = ?)
        ORDER BY symbol
        """,
        run_id,
        run_id,
    )
    shocks = [(shock.get(s, 1.0) - 1) * 100 for s in final["symbol"]]
    return final.with_columns(pl.Series("shock_pct", shocks, dtype=pl.Float64))


# --- the page -------------------------------------------------------------------------------------------------------


def render() -> None:
    db = database_location()
    with st.spinner("Reading the latest risk runs ..."):
        runs = latest_runs(db)
    if not runs:
        st.info(no_run_hint(db))
        return
    st.caption(
        "The latest run of each risk model (`chainrisk risk stress|var|optimise|cascade`), on the positions of the "
        "block it names. Amounts are in USD at the snapshot's oracle prices unless a column says token units."
    )
    tabs = st.tabs(["Historical replays", "VaR / ES", "Optimisation", "Cascade"])
    sections = {"stress": _stress, "var": _var, "optimise": _optimise, "cascade": _cascade}
    for tab, kind in zip(tabs, KINDS, strict=True):
        with tab:
            run = runs.get(kind)
            if run is None:
                st.info(no_run_hint(db, kind))
                continue
            st.caption(run_caption(run))
            sections[kind](db, run)


def _stress(db: Path, run: Mapping[str, Any]) -> None:
    run_id = int(run["run_id"])
    if run["notes"]:
        st.caption(f"Notes: {run['notes']}")
    windows = stress_windows(db, run_id)
    if not windows:
        st.info("This replay run wrote no steps.")
        return
    window = st.selectbox("Window", windows, key="risk_window")
    totals = stress_totals(db, run_id, window)
    if totals.is_empty():
        st.info(f"This run stored no whole-book steps for {window}.")
        return
    worst = worst_step(totals)
    peak = totals.sort("liquidatable_debt_usd", "step", descending=[True, False], nulls_last=True).row(0, named=True)
    wallets, hit, followed = stress_wallets(db, run_id, window)
    st.markdown(
        f"**{window}**, {totals.row(0, named=True)['time']:%Y-%m-%d %H:%M} to "
        f"{totals.row(-1, named=True)['time']:%Y-%m-%d %H:%M} UTC: the "
        "window's real price moves applied to today's positions, held as they are (nobody tops up, repays or is "
        "liquidated along the path)."
    )
    # The worst point's date and time need the widest card.
    cols = st.columns([1.3, 1, 1, 1.3])
    cols[0].metric(
        "Worst point (UTC)",
        f"{worst['time']:%Y-%m-%d %H:%M}",
        help=f"Step {worst['step']}: the most bad debt (then the most liquidatable debt, then the earliest)",
    )
    cols[1].metric(
        "Bad debt at worst (USD)",
        usd_short(worst["bad_debt_usd"]),
        help=f"{usd(worst['bad_debt_usd'])}: debt the collateral cannot cover after liquidation bonuses",
    )
    cols[2].metric(
        "Liquidatable debt then (USD)",
        usd_short(worst["liquidatable_debt_usd"]),
        help=f"{usd(worst['liquidatable_debt_usd'])}: what liquidators may repay at that point; the most at any "
        f"step: {usd(peak['liquidatable_debt_usd'])} at {peak['time']:%Y-%m-%d %H:%M} UTC",
    )
    cols[3].metric(
        "Liquidatable at some step",
        f"{hit:,} of {followed:,}",
        help="Borrowing positions (a wallet in one market) whose health factor falls below 1 at any step, of all "
        "the replay followed",
    )
    st.subheader("Liquidatable debt and bad debt along the window")
    st.altair_chart(_stress_chart(totals, worst), width="stretch")
    st.subheader("Price path")
    st.altair_chart(_price_chart(stress_prices(db, run_id, window)), width="stretch")
    st.caption("Each market symbol's price as a % change from the window's start (the series it follows in brackets).")

    st.subheader("Wallets first liquidated")
    if not hit:
        st.info(f"No position falls below health factor 1 at any step of {window}.")
        return
    shown = f"The first {wallets.height:,} of {hit:,}" if hit > wallets.height else f"All {hit:,}"
    st.caption(
        f"{shown} positions liquidatable at some step, in the order they first become so; health factors are without "
        "any liquidation along the path."
    )
    table = with_wallet_links(with_market_names(wallets, market_labels(db)))
    st.dataframe(
        table,
        hide_index=True,
        column_order=[
            "wallet",
            "wallet page",
            "market_name",
            "first_liquidatable_time",
            "health_factor_start",
            "min_health_factor",
            "debt_usd_start",
            "max_bad_debt_usd",
        ],
        column_config={
            "wallet page": wallet_link_column(),
            "market_name": "market",
            "first_liquidatable_time": st.column_config.DatetimeColumn(
                "first liquidatable (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "health_factor_start": health_column("HF at start"),
            "min_health_factor": health_column("lowest HF", "The lowest health factor at any step"),
            "debt_usd_start": usd_column("debt at start (USD)"),
            "max_bad_debt_usd": usd_column("most bad debt (USD)", "The largest bad debt at any step"),
        },
    )


def _stress_chart(totals: pl.DataFrame, worst: Mapping[str, Any]) -> alt.LayerChart:
    long = (
        naive_utc(totals, "time")
        .select(
            "time",
            pl.col("liquidatable_debt_usd").alias("liquidatable debt"),
            pl.col("bad_debt_usd").alias("bad debt"),
            "liquidatable_wallets",
        )
        .unpivot(index=["time", "liquidatable_wallets"], variable_name="measure", value_name="USD")
    )
    lines = (
        alt.Chart(long)
        .mark_line()
        .encode(
            x=alt.X("time:T", title="time (UTC)"),
            y=alt.Y("USD:Q", title="USD", axis=alt.Axis(format="$,.0f")),
            color=alt.Color(
                "measure:N",
                scale=alt.Scale(domain=["liquidatable debt", "bad debt"], range=["#1f77b4", "#d62728"]),
                title=None,
            ),
            tooltip=[
                alt.Tooltip("time:T", format="%Y-%m-%d %H:%M", title="time (UTC)"),
                "measure",
                alt.Tooltip("USD:Q", format="$,.0f"),
                alt.Tooltip("liquidatable_wallets:Q", format=",", title="liquidatable positions"),
            ],
        )
    )
    at = naive_utc(pl.DataFrame({"time": [worst["time"]]}), "time")
    rule = alt.Chart(at).mark_rule(color="#7f7f7f", strokeDash=[4, 3]).encode(x="time:T")
    chart = alt.LayerChart(layer=[lines, rule])
    return chart


def _price_chart(prices: pl.DataFrame) -> alt.Chart:
    frame = naive_utc(prices, "time").with_columns(pl.format("{} ({})", "symbol", "series").alias("symbol (series)"))
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("time:T", title="time (UTC)"),
            y=alt.Y("change_pct:Q", title="price change since start (%)"),
            color=alt.Color("symbol (series):N", title="symbol (series)"),
            tooltip=[
                alt.Tooltip("time:T", format="%Y-%m-%d %H:%M", title="time (UTC)"),
                "symbol",
                "series",
                alt.Tooltip("change_pct:Q", format="+.2f", title="change (%)"),
            ],
        )
        .properties(height=220)
    )
    return chart


def _var(db: Path, run: Mapping[str, Any]) -> None:
    run_id = int(run["run_id"])
    results = with_market_names(var_results(db, run_id), market_labels(db))
    if results.is_empty():
        st.info("This VaR run wrote no results.")
        return
    total = results.filter(pl.col("scope") == "total")
    horizon, confidence = int(total["horizon_hours"].min()), float(total["confidence_pct"].max())  # type: ignore[arg-type]
    st.markdown(
        "**Value at Risk (VaR)**: the loss that simulated price moves over the horizon exceed only with the "
        "confidence's complement (1 % of scenarios at 99 %); **Expected Shortfall (ES)**: the mean loss in those "
        "worst scenarios. Losses are in USD at today's positions, held as they are."
    )
    headline = total.filter((pl.col("horizon_hours") == horizon) & (pl.col("confidence_pct") == confidence))
    cols = st.columns(max(headline.height, 1))
    for col, row in zip(cols, headline.iter_rows(named=True), strict=False):
        col.metric(
            f"{row['measure'].capitalize()}: VaR / ES, {confidence:.0f} %, {horizon} h (USD)",
            f"{usd_short(row['var_usd'])} / {usd_short(row['es_usd'])}",
            help=f"VaR {usd(row['var_usd'])}; ES {usd(row['es_usd'])}; mean over every scenario {usd(row['mean_usd'])}",
        )
    st.subheader("VaR vs ES, whole book")
    measures = total["measure"].unique(maintain_order=True).to_list()
    for col, measure in zip(st.columns(len(measures)), measures, strict=True):
        with col:
            st.altair_chart(_var_chart(total.filter(pl.col("measure") == measure), measure), width="stretch")
    config = {
        "market_name": "where",
        "measure": "loss measure",
        "horizon_hours": st.column_config.NumberColumn("horizon (h)", format="%d"),
        "confidence_pct": percent_column("confidence"),
        "var_usd": usd_column("VaR (USD)"),
        "es_usd": usd_column("ES (USD)", "Mean loss in the scenarios beyond the VaR"),
        "mean_usd": usd_column("mean (USD)", "Mean loss over every scenario"),
        "scenarios": st.column_config.NumberColumn("scenarios", format="%d"),
    }
    order = ["market_name", "measure", "horizon_hours", "confidence_pct", "var_usd", "es_usd", "mean_usd", "scenarios"]
    for scope, title in (("total", "Whole book"), ("protocol", "Per protocol"), ("market", "Per market")):
        rows = results.filter(pl.col("scope") == scope)
        if rows.is_empty():
            continue
        st.subheader(f"{title}: VaR and ES (USD)")
        st.dataframe(rows, hide_index=True, column_order=order[1:] if scope == "total" else order, column_config=config)
    _calibration(db, run_id)
    _backtest(db, run_id)
    _suggestions(db, run_id)


def _var_chart(rows: pl.DataFrame, measure: str) -> alt.Chart:
    frame = (
        rows.with_columns(pl.format("{} h · {}%", "horizon_hours", pl.col("confidence_pct").round(1)).alias("case"))
        .select("measure", "case", pl.col("var_usd").alias("VaR"), pl.col("es_usd").alias("ES"))
        .unpivot(index=["measure", "case"], variable_name="statistic", value_name="USD")
    )
    chart: alt.Chart = (
        alt.Chart(frame, title=measure)
        .mark_bar()
        .encode(
            x=alt.X("case:N", title="horizon · confidence", sort=None, axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("statistic:N", sort=["VaR", "ES"]),
            y=alt.Y("USD:Q", title="USD", axis=alt.Axis(format="$,.0f")),
            color=alt.Color("statistic:N", sort=["VaR", "ES"], title=None),
            tooltip=["case", "statistic", alt.Tooltip("USD:Q", format="$,.0f")],
        )
        .properties(height=260)
    )
    return chart


def _calibration(db: Path, run_id: int) -> None:
    st.subheader("Calibration")
    calibration = var_calibration(db, run_id)
    if calibration.is_empty():
        st.info("This run stored no calibration.")
        return
    st.caption(
        "Volatility: the standard deviation of the log price return over the horizon, and the same annualised "
        f"(times √({HOURS_PER_YEAR} / horizon in hours)), both in %. Degrees of freedom (dof) of the Student-t "
        "fits: the fewer, the fatter the tails; scenarios draw from the joint fit."
    )
    st.dataframe(
        calibration,
        hide_index=True,
        column_config={
            "horizon_hours": st.column_config.NumberColumn("horizon (h)", format="%d"),
            "volatility_pct": st.column_config.NumberColumn("volatility over the horizon (%)", format="%.2f%%"),
            "annualised_pct": st.column_config.NumberColumn("annualised volatility (%)", format="%.1f%%"),
            "asset_dof": st.column_config.NumberColumn("dof, this series", format="%.1f"),
            "joint_dof": st.column_config.NumberColumn("dof, joint", format="%.1f"),
            "method": "covariance",
            "observations": st.column_config.NumberColumn("returns used", format="%d"),
            "window_start": st.column_config.DatetimeColumn("data from (UTC)", format="YYYY-MM-DD"),
            "window_end": st.column_config.DatetimeColumn("data to (UTC)", format="YYYY-MM-DD"),
        },
    )


def _backtest(db: Path, run_id: int) -> None:
    st.subheader("Backtest")
    summary = backtest_summary(db, run_id)
    if summary.is_empty():
        st.info(
            "This run has no backtest: `chainrisk risk var --backtest 2022-01-01..2022-12-31` checks the 24 h 99 % "
            "liquidatable-debt VaR against what real prices did."
        )
        return
    for row in summary.iter_rows(named=True):
        measure = MEASURES.get(row["metric"], row["metric"])
        label = f"{row['horizon_hours']} h {row['confidence']:.0%} VaR of {measure}"
        expected = (row["expected_rate"] or 0.0) * (row["observations"] or 0)
        cols = st.columns(4)
        cols[0].metric(
            "Periods tested", f"{row['observations'] or 0:,}", help=f"Non-overlapping {row['horizon_hours']} h periods"
        )
        cols[1].metric(
            "Exceedances (expected)",
            f"{row['exceedances'] or 0:,} ({expected:.1f})",
            help=f"Periods whose realised loss beat the {label}; expected: {row['expected_rate'] or 0.0:.1%} of "
            "the periods",
        )
        cols[2].metric(
            "Kupiec LR", number(row["lr_statistic"], ".2f"), help="Likelihood ratio of the proportion-of-failures test"
        )
        cols[3].metric(
            "Kupiec p-value", number(row["p_value"], ".3f"), help=f"Below {KUPIEC_LEVEL}: the model is rejected"
        )
        passes, verdict = kupiec_verdict(row)
        (st.success if passes else st.warning)(verdict)
        series = backtest_series(db, run_id, row["metric"], row["horizon_hours"], row["confidence"])
        if not series.is_empty():
            st.altair_chart(_backtest_chart(series, label), width="stretch")
            st.caption(
                f"Each period: the {label} calibrated on the data before it, and the loss the period's real price move "
                "gave today's book (USD); red points: exceedances."
            )


def _backtest_chart(series: pl.DataFrame, label: str) -> alt.LayerChart:
    frame = naive_utc(series, "time")
    long = frame.select("time", pl.col("realised_usd").alias("realised"), pl.col("var_usd").alias("VaR")).unpivot(
        index="time", variable_name="series", value_name="USD"
    )
    lines = (
        alt.Chart(long, title=f"{label}: realised vs VaR")
        .mark_line()
        .encode(
            x=alt.X("time:T", title="period start (UTC)"),
            y=alt.Y("USD:Q", title="USD", axis=alt.Axis(format="$,.0f")),
            color=alt.Color(
                "series:N", scale=alt.Scale(domain=["VaR", "realised"], range=["#7f7f7f", "#1f77b4"]), title=None
            ),
            tooltip=[alt.Tooltip("time:T", format="%Y-%m-%d"), "series", alt.Tooltip("USD:Q", format="$,.0f")],
        )
    )
    hits = (
        alt.Chart(frame.filter(pl.col("exceedance")))
        .mark_point(color="#d62728", filled=True, size=70)
        .encode(
            x="time:T",
            y="realised_usd:Q",
            tooltip=[
                alt.Tooltip("time:T", format="%Y-%m-%d", title="exceedance"),
                alt.Tooltip("realised_usd:Q", format="$,.0f", title="realised (USD)"),
                alt.Tooltip("var_usd:Q", format="$,.0f", title="VaR (USD)"),
            ],
        )
    )
    chart = alt.LayerChart(layer=[lines, hits])
    return chart


def _suggestions(db: Path, run_id: int) -> None:
    st.subheader("Parameter suggestions")
    suggestions = parameter_suggestions(db, run_id)
    if suggestions.is_empty():
        st.info("No suggestion: no market has both collateral and debt with a price series.")
        return
    first = suggestions.row(0, named=True)
    st.caption(
        f"From each collateral's {first['horizon_hours']} h {first['confidence']:.0%} tail move against its market's "
        "debt: a liquidation threshold (LT) that still covers the debt and the bonus after that move, and an LTV "
        "that a new position at the limit survives; floored to whole bps. A positive change means the model allows "
        "more than today; a negative one asks for less. Morpho Blue has one LLTV, shown as both LT and LTV."
    )
    st.dataframe(
        with_market_names(suggestions, market_labels(db)),
        hide_index=True,
        column_order=[
            "market_name",
            "symbol",
            "series",
            "collateral_usd",
            "bonus_pct",
            "tail_move_pct",
            "current_lt_pct",
            "suggested_lt_pct",
            "lt_change_bps",
            "current_ltv_pct",
            "suggested_ltv_pct",
            "ltv_change_bps",
        ],
        column_config={
            "market_name": "market",
            "symbol": "collateral",
            "series": "price series",
            "collateral_usd": usd_column("collateral (USD)"),
            "bonus_pct": st.column_config.NumberColumn("liquidation bonus (%)", format="%.2f%%"),
            "tail_move_pct": st.column_config.NumberColumn(
                "tail move (%)", format="%.2f%%", help="The collateral's value against the debt at the tail quantile"
            ),
            "current_lt_pct": st.column_config.NumberColumn("LT now (%)", format="%.2f%%"),
            "suggested_lt_pct": st.column_config.NumberColumn("LT suggested (%)", format="%.2f%%"),
            "lt_change_bps": st.column_config.NumberColumn("LT change (bps)", format="%+d"),
            "current_ltv_pct": st.column_config.NumberColumn("LTV now (%)", format="%.2f%%"),
            "suggested_ltv_pct": st.column_config.NumberColumn("LTV suggested (%)", format="%.2f%%"),
            "ltv_change_bps": st.column_config.NumberColumn("LTV change (bps)", format="%+d"),
        },
    )


def _optimise(db: Path, run: Mapping[str, Any]) -> None:
    run_id = int(run["run_id"])
    labels = market_labels(db)
    actions = with_market_names(optimise_actions(db, run_id), labels)
    plans = with_action_summaries(with_market_names(optimise_plans(db, run_id), labels), actions)
    st.subheader("Plans to restore health")
    if plans.is_empty():
        params = json.loads(run["params"] or "{}")
        st.info(f"No position was under health factor {params.get('below')} when this run read the scores.")
    else:
        planned = plans.filter(pl.col("feasible") & (pl.col("actions") > 0))
        target = plans["target_health"][0]
        cost = float(planned["cost_usd"].fill_null(0.0).sum())
        cols = st.columns(4)
        cols[0].metric("Positions planned for", f"{plans.height:,}", help="A wallet in one market")
        cols[1].metric(f"Plans reaching HF {target:g}", f"{planned.height:,}")
        cols[2].metric("Out of reach", f"{plans.filter(~pl.col('feasible')).height:,}", help="See each row's note")
        cols[3].metric("Total cost (USD)", usd_short(cost), help=f"{usd(cost)} over the plans that reach the target")
        st.caption(
            "The cheapest actions (adding collateral, repaying debt, swapping collateral) that bring each position to "
            "the target health factor, checked by the exact health engine; cost in USD at the snapshot's prices."
        )
        st.dataframe(
            with_wallet_links(plans),
            hide_index=True,
            column_order=[
                "wallet",
                "wallet page",
                "market_name",
                "health_before",
                "health_after",
                "cost_usd",
                "steps",
                "feasible",
                "reason",
            ],
            column_config={
                "wallet page": wallet_link_column(),
                "market_name": "market",
                "health_before": health_column("HF before"),
                "health_after": health_column("HF after"),
                "feasible": st.column_config.CheckboxColumn("reaches target"),
                "cost_usd": usd_column("cost (USD)"),
                "steps": st.column_config.TextColumn("actions (token units, USD)"),
                "reason": "note",
            },
        )
        with st.expander(f"Every action, step by step ({actions.height:,}), in token units and USD"):
            st.dataframe(
                actions,
                hide_index=True,
                column_order=[
                    "wallet",
                    "market_name",
                    "step",
                    "kind",
                    "symbol",
                    "amount_tokens",
                    "amount_usd",
                    "cost_usd",
                    "into_symbol",
                    "received_tokens",
                ],
                column_config={
                    "market_name": "market",
                    "step": st.column_config.NumberColumn("step", format="%d"),
                    "kind": "action",
                    "symbol": "asset",
                    "amount_tokens": tokens_column("amount (tokens)"),
                    "amount_usd": usd_column("amount (USD)"),
                    "cost_usd": usd_column("cost (USD)"),
                    "into_symbol": "swapped into",
                    "received_tokens": tokens_column("received (tokens)"),
                },
            )
    st.subheader("Threshold sensitivity")
    sensitivity = threshold_sensitivity(db, run_id)
    if sensitivity.is_empty():
        st.info("This run has no threshold sensitivity (no position holds collateral).")
        return
    st.caption(
        "Each collateral's liquidation threshold moved by the shift (in bps, everything else as now): the change in "
        "collateral of liquidatable wallets (USD), summed over markets. A lower threshold makes more wallets "
        "liquidatable; bad debt depends on prices and bonuses only, so it does not move."
    )
    st.altair_chart(_sensitivity_chart(sensitivity_by_symbol(db, run_id)), width="stretch")
    st.dataframe(
        with_market_names(sensitivity, labels),
        hide_index=True,
        column_order=[
            "market_name",
            "symbol",
            "shift_bps",
            "liquidatable_wallets",
            "liquidatable_wallets_change",
            "liquidatable_collateral_usd",
            "liquidatable_collateral_usd_change",
            "liquidatable_debt_usd_change",
            "bad_debt_usd_change",
        ],
        column_config={
            "market_name": "market",
            "symbol": "collateral",
            "shift_bps": st.column_config.NumberColumn("threshold shift (bps)", format="%+d"),
            "liquidatable_wallets": st.column_config.NumberColumn("liquidatable positions", format="%d"),
            "liquidatable_wallets_change": st.column_config.NumberColumn("change (positions)", format="%+d"),
            "liquidatable_collateral_usd": usd_column("liquidatable collateral (USD)"),
            "liquidatable_collateral_usd_change": usd_column("change in liquidatable collateral (USD)"),
            "liquidatable_debt_usd_change": usd_column("change in repayable debt (USD)"),
            "bad_debt_usd_change": usd_column("change in bad debt (USD)"),
        },
    )


def _sensitivity_chart(by_symbol: pl.DataFrame) -> alt.Chart:
    chart: alt.Chart = (
        alt.Chart(by_symbol)
        .mark_line(point=True)
        .encode(
            x=alt.X("shift_bps:Q", title="liquidation threshold shift (bps)"),
            y=alt.Y(
                "collateral_change_usd:Q",
                title="change in liquidatable collateral (USD)",
                axis=alt.Axis(format="$,.0f"),
            ),
            color=alt.Color("symbol:N", title="collateral"),
            tooltip=[
                "symbol",
                alt.Tooltip("shift_bps:Q", format="+d", title="shift (bps)"),
                alt.Tooltip("collateral_change_usd:Q", format="$,.0f", title="change (USD)"),
                alt.Tooltip("wallets_change:Q", format="+d", title="change (positions)"),
            ],
        )
        .properties(height=280)
    )
    return chart


def _cascade(db: Path, run: Mapping[str, Any]) -> None:
    run_id = int(run["run_id"])
    params = json.loads(run["params"] or "{}")
    rounds = cascade_rounds(db, run_id)
    if rounds.is_empty():
        st.info("This cascade run wrote no rounds.")
        return
    last = rounds.row(-1, named=True)
    amplification = last["amplification"]
    stopped = rounds.height >= int(params.get("max_rounds") or 0) > 0
    cols = st.columns(4)
    cols[0].metric(
        "Amplification",
        "n/a" if amplification is None else f"{amplification:.3f}x",
        help="Debt liquidated after every round ÷ debt liquidated by the shock alone (round 1); n/a: nobody is "
        "liquidated",
    )
    cols[1].metric(
        "Rounds",
        f"{rounds.height}",
        help="Stopped at the most rounds allowed: may not have settled" if stopped else "Until no new wallet fell",
    )
    cols[2].metric("Positions liquidated", f"{last['liquidatable_wallets']:,}", help="Over every round")
    cols[3].metric(
        "Liquidated debt (USD)",
        usd_short(last["cumulative_liquidated_debt_usd"]),
        help=f"{usd(last['cumulative_liquidated_debt_usd'])} over every round; round 1: "
        f"{usd(rounds['liquidated_debt_usd'][0])}",
    )
    st.caption(
        "Round 1 liquidates what the shock alone makes liquidatable; liquidators then sell the seized collateral "
        "through each asset's market depth, which moves its price further and can liquidate more, round by round."
    )
    st.subheader("Cumulative liquidated debt per round")
    st.altair_chart(_rounds_chart(rounds), width="stretch")
    st.dataframe(
        rounds.drop("amplification"),
        hide_index=True,
        column_config={
            "round": st.column_config.NumberColumn("round", format="%d"),
            "liquidatable_wallets": st.column_config.NumberColumn("liquidated positions (so far)", format="%d"),
            "new_liquidatable_wallets": st.column_config.NumberColumn("new this round", format="%d"),
            "liquidated_debt_usd": usd_column("liquidated debt this round (USD)"),
            "cumulative_liquidated_debt_usd": usd_column("cumulative liquidated debt (USD)"),
            "collateral_sold_usd": usd_column("collateral sold this round (USD)"),
        },
    )
    st.subheader("Price impact per symbol")
    prices = cascade_prices(db, run_id, params.get("shock") or {})
    st.altair_chart(_impact_chart(prices), width="stretch")
    st.dataframe(
        prices,
        hide_index=True,
        column_order=["symbol", "shock_pct", "cumulative_sold_usd", "impact_pct", "price_change_pct"],
        column_config={
            "shock_pct": st.column_config.NumberColumn("shock (%)", format="%+.2f%%"),
            "cumulative_sold_usd": usd_column("collateral sold (USD)", "Seized and sold over every round"),
            "impact_pct": st.column_config.NumberColumn(
                "impact of the sales (%)", format="%.3f%%", help="Price fall the sales cause through market depth"
            ),
            "price_change_pct": st.column_config.NumberColumn(
                "price change after the last round (%)", format="%+.2f%%", help="Shock and impact together"
            ),
        },
    )


def _rounds_chart(rounds: pl.DataFrame) -> alt.Chart:
    chart: alt.Chart = (
        alt.Chart(rounds)
        .mark_bar(size=36)
        .encode(
            x=alt.X("round:O", title="round", axis=alt.Axis(labelAngle=0)),
            y=alt.Y(
                "cumulative_liquidated_debt_usd:Q",
                title="cumulative liquidated debt (USD)",
                axis=alt.Axis(format="$,.0f"),
            ),
            tooltip=[
                alt.Tooltip("round:O"),
                alt.Tooltip("cumulative_liquidated_debt_usd:Q", format="$,.0f", title="cumulative (USD)"),
                alt.Tooltip("liquidated_debt_usd:Q", format="$,.0f", title="this round (USD)"),
                alt.Tooltip("new_liquidatable_wallets:Q", format=",", title="new positions"),
            ],
        )
        .properties(height=260)
    )
    return chart


def _impact_chart(prices: pl.DataFrame) -> alt.Chart:
    """Each symbol's final price change split into the shock and what the sales added (multiplicatively, so the
    parts are the shock and final minus shock)."""
    parts = prices.select(
        "symbol",
        pl.col("shock_pct").alias("shock"),
        (pl.col("price_change_pct") - pl.col("shock_pct")).alias("sales impact"),
    ).unpivot(index="symbol", variable_name="part", value_name="change_pct")
    chart: alt.Chart = (
        alt.Chart(parts)
        .mark_bar()
        .encode(
            x=alt.X("symbol:N", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("change_pct:Q", title="price change (%)"),
            color=alt.Color("part:N", sort=["shock", "sales impact"], title=None),
            order=alt.Order("part:N"),
            tooltip=["symbol", "part", alt.Tooltip("change_pct:Q", format="+.3f", title="change (%)")],
        )
        .properties(height=240)
    )
    return chart
