"""Risk models page, optimisation: the latest `chainrisk risk optimise` run's plans and actions (optimise_*) and
its threshold sensitivity."""

from __future__ import annotations

import json
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
    tokens_column,
    usd,
    usd_column,
    usd_short,
    wallet_link_column,
    with_wallet_links,
)


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


def section(db: Path, run: Mapping[str, Any]) -> None:
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
