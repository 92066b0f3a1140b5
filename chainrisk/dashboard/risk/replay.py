"""Risk models page, historical replays: the latest `chainrisk risk stress` run, window by window (stress_replay_*)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard.data import query
from chainrisk.dashboard.markets import market_labels, with_market_names
from chainrisk.dashboard.ui import (
    health_column,
    naive_utc,
    series_colour,
    table,
    usd,
    usd_column,
    usd_short,
    wallet_link_column,
    with_wallet_links,
)

#: First-liquidated wallets listed at most per window (earliest first); how many there are in all is said beside.
WALLETS_SHOWN = 500


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


def section(db: Path, run: Mapping[str, Any]) -> None:
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
    first_hit = with_wallet_links(with_market_names(wallets, market_labels(db)))
    table(
        first_hit,
        hide_index=True,
        column_order=[
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
            "debt_usd_start": usd_column("debt then (USD)", "The debt at the window's start"),
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
            color=series_colour("symbol (series):N", frame["symbol (series)"].n_unique(), "symbol (series)"),
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
