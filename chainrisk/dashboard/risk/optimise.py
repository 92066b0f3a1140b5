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

from chainrisk.dashboard.data import has_column, missing_relations, query
from chainrisk.dashboard.markets import market_labels, with_market_names
from chainrisk.dashboard.ui import (
    count_column,
    health_column,
    series_colour,
    table,
    tokens_column,
    usd,
    usd_column,
    usd_short,
    wallet_link_column,
    with_wallet_links,
)


def optimise_plans(db: Path, run_id: int) -> pl.DataFrame:
    """Plans, weakest health first (a plan out of reach has no cost: nothing it could do reaches the target)."""
    return query(
        db,
        """
        SELECT wallet, protocol, chain_id, market, health_before, health_after, target_health, feasible,
               CASE WHEN feasible THEN cost_usd END AS cost_usd, actions, reason
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
    """Every market, collateral and shift; `read_at_pct`: the fall of the collateral's base the row was read at (0:
    today's prices; NULL for a run from before liquidation_distance)."""
    distance = not missing_relations(db, ("liquidation_distance",))
    read_at = "-d.sensitivity_drop * 100" if distance else "NULL::DOUBLE"
    joined = "LEFT JOIN liquidation_distance d USING (run_id, protocol, chain_id, market, symbol)" if distance else ""
    return query(
        db,
        f"""
        SELECT protocol, chain_id, market, symbol, shift_bps, {read_at} AS read_at_pct, liquidatable_wallets,
               liquidatable_wallets_change::BIGINT AS liquidatable_wallets_change, liquidatable_collateral_usd,
               liquidatable_collateral_usd_change, liquidatable_debt_usd_change, bad_debt_usd_change
        FROM threshold_sensitivity t {joined} WHERE run_id = ? ORDER BY protocol, market, symbol, shift_bps
        """,
        run_id,
    )


def liquidation_distance(db: Path, run_id: int) -> pl.DataFrame:
    """Per market and collateral: the fall of its base at which its first holder is liquidated, nearest first (none
    for a run from before liquidation_distance)."""
    if missing_relations(db, ("liquidation_distance",)):
        return pl.DataFrame()
    # Schema 15's count; a snapshot published before it has none (and its first_drop counted those holders).
    now = "liquidatable_now" if has_column(db, "liquidation_distance", "liquidatable_now") else "NULL::BIGINT"
    return query(
        db,
        f"""
        SELECT protocol, chain_id, market, symbol, base_symbol, holders, holders_debt_usd, -first_drop * 100 AS
               first_drop_pct, first_wallet, first_wallet_debt_usd, -median_drop * 100 AS median_drop_pct,
               holders_within_10pct, debt_within_10pct_usd, {now} AS liquidatable_now
        FROM liquidation_distance WHERE run_id = ? ORDER BY first_drop NULLS LAST, protocol, market, symbol
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
        table(
            with_wallet_links(plans),
            hide_index=True,
            column_order=[
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
                "market_name": st.column_config.TextColumn("market", width=200),
                "health_before": health_column("HF before"),
                "health_after": health_column("HF after"),
                "feasible": st.column_config.CheckboxColumn("reaches target"),
                "cost_usd": usd_column("cost (USD)"),
                "steps": st.column_config.TextColumn("actions (token units, USD)"),
                "reason": "note",
            },
        )
        with st.expander(f"Every action, step by step ({actions.height:,}), in token units and USD"):
            table(
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
                    "step": count_column("step"),
                    "kind": "action",
                    "symbol": "asset",
                    "amount_tokens": tokens_column("amount (tokens)"),
                    "amount_usd": usd_column("amount (USD)"),
                    "cost_usd": usd_column("cost (USD)"),
                    "into_symbol": "swapped into",
                    "received_tokens": tokens_column("received (tokens)"),
                },
            )
    _distance(db, run_id, labels)
    st.subheader("Threshold sensitivity")
    sensitivity = threshold_sensitivity(db, run_id)
    if sensitivity.is_empty():
        st.info("This run has no threshold sensitivity (no position holds collateral).")
        return
    read = sensitivity["read_at_pct"].drop_nulls()
    where = (
        "read where liquidations start: each market and collateral at the first 5 % step of its base's fall past its "
        "first liquidation (column 'read at'; 0 where none comes before -90 %, and today's healthy book moves no "
        "one)"
        if read.len()
        else "at today's prices"
    )
    st.caption(
        f"Each collateral's liquidation threshold moved by the shift (in bps, everything else as it is), {where}: the "
        "change in collateral of liquidatable wallets (USD), summed over markets. A lower threshold makes more "
        "wallets liquidatable; bad debt depends on prices and bonuses only, so it does not move."
    )
    st.altair_chart(_sensitivity_chart(sensitivity_by_symbol(db, run_id)), width="stretch")
    table(
        with_market_names(sensitivity, labels),
        hide_index=True,
        column_order=[
            "market_name",
            "symbol",
            "read_at_pct",
            "shift_bps",
            "liquidatable_wallets",
            "liquidatable_wallets_change",
            "liquidatable_collateral_usd",
            "liquidatable_collateral_usd_change",
            "liquidatable_debt_usd_change",
            "bad_debt_usd_change",
        ],
        column_config={
            "market_name": st.column_config.TextColumn("market", width=200),
            "symbol": "collateral",
            "read_at_pct": st.column_config.NumberColumn(
                "read at (%)", format="%+.0f%%", help="The fall of the collateral's base the row is read at"
            ),
            "shift_bps": st.column_config.NumberColumn("threshold shift (bps)", format="%+d"),
            "liquidatable_wallets": count_column("liquidatable positions"),
            "liquidatable_wallets_change": st.column_config.NumberColumn("change (positions)", format="%+d"),
            "liquidatable_collateral_usd": usd_column("liquidatable collateral (USD)"),
            "liquidatable_collateral_usd_change": usd_column("change in liquidatable collateral (USD)"),
            "liquidatable_debt_usd_change": usd_column("change in repayable debt (USD)"),
            "bad_debt_usd_change": usd_column("change in bad debt (USD)"),
        },
    )


def _distance(db: Path, run_id: int, labels: Mapping[tuple[str, int, str], str]) -> None:
    """How far each collateral's base may fall before its first holder is liquidated, said plainly first."""
    distance = liquidation_distance(db, run_id)
    if distance.is_empty():
        return
    st.subheader("Distance to the first liquidation")
    named = with_market_names(distance, labels)
    near = named.filter(pl.col("first_drop_pct").is_not_null())
    safe = sorted(set(named["symbol"].to_list()) - set(near["symbol"].to_list()))
    said = []
    if near.height:
        first = near.row(0, named=True)
        said.append(
            f"The nearest liquidation: **{first['symbol']}** in {first['market_name']}, if {first['base_symbol']} "
            f"falls {-first['first_drop_pct']:.1f} % ({usd(first['first_wallet_debt_usd'])} of debt)."
        )
    else:
        said.append("**No position falls** before its collateral's base loses 90 %: the book is safe from price moves.")
    if safe:
        said.append(f"Safe past a 90 % fall of their base: {', '.join(safe)}.")
    already = int(named["liquidatable_now"].fill_null(0).sum())
    if already:
        said.append(
            f"Not counted: {already:,} holding(s) (a wallet's collateral in a market) liquidatable already at "
            "today's prices; the first liquidation is the first of the others."
        )
    st.markdown(" ".join(said))
    table(
        named,
        hide_index=True,
        column_order=[
            "market_name",
            "symbol",
            "base_symbol",
            "first_drop_pct",
            "first_wallet",
            "first_wallet_debt_usd",
            "median_drop_pct",
            "holders",
            "liquidatable_now",
            "holders_within_10pct",
            "debt_within_10pct_usd",
            "holders_debt_usd",
        ],
        column_config={
            "market_name": st.column_config.TextColumn("market", width=200),
            "symbol": "collateral",
            "base_symbol": "its base",
            "first_drop_pct": st.column_config.NumberColumn(
                "first liquidation at (%)", format="%+.1f%%", help="The base's fall at which a holder first goes"
            ),
            "first_wallet": st.column_config.TextColumn(
                "first wallet", width="small", help="The first position liquidated (its wallet's address)"
            ),
            "first_wallet_debt_usd": usd_column("its debt (USD)"),
            "median_drop_pct": st.column_config.NumberColumn(
                "median holder at (%)", format="%+.1f%%", help="Empty when most holders never go before -90 %"
            ),
            "holders": count_column("borrowing holders"),
            "liquidatable_now": st.column_config.NumberColumn(
                "liquidatable now", format="%d", help="Holders liquidatable already: not the first liquidation's"
            ),
            "holders_within_10pct": count_column("within a 10 % fall"),
            "debt_within_10pct_usd": usd_column("their debt (USD)"),
            "holders_debt_usd": usd_column("all holders' debt (USD)"),
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
            color=series_colour("symbol:N", by_symbol["symbol"].n_unique(), "collateral"),
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
