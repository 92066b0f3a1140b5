"""Risk models page, cascade: the latest `chainrisk risk cascade` run, round by round (cascade_rounds, _prices)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard.data import query
from chainrisk.dashboard.ui import count_column, table, usd, usd_column, usd_short


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
    """Per symbol after the last round: the shock, the sales' impact and the resulting price change, all in %. The
    shock is round 0's price (the shock alone, carried through the asset graph to wrappers); a run from before round
    0 was stored has only the shocks it was given."""
    final = query(
        db,
        """
        SELECT symbol, cumulative_sold_usd, impact * 100 AS impact_pct, (multiplier - 1) * 100 AS price_change_pct,
               (SELECT (s.multiplier - 1) * 100 FROM cascade_prices s
                WHERE s.run_id = p.run_id AND s.round = 0 AND s.symbol = p.symbol) AS shocked_pct
        FROM cascade_prices p
        WHERE run_id = ? AND round = (SELECT max(round) FROM cascade_prices WHERE run_id = ?) ORDER BY symbol
        """,
        run_id,
        run_id,
    )
    given = pl.Series([(shock.get(s, 1.0) - 1) * 100 for s in final["symbol"]], dtype=pl.Float64)
    return final.with_columns(pl.col("shocked_pct").fill_null(given).alias("shock_pct")).drop("shocked_pct")


def section(db: Path, run: Mapping[str, Any]) -> None:
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
    table(
        rounds.drop("amplification"),
        hide_index=True,
        column_config={
            "round": count_column("round"),
            "liquidatable_wallets": st.column_config.NumberColumn(
                "liquidated (so far)", format="%d", help="Positions liquidated by the end of this round"
            ),
            "new_liquidatable_wallets": count_column("new this round"),
            "liquidated_debt_usd": usd_column("liquidated debt this round (USD)"),
            "cumulative_liquidated_debt_usd": usd_column("cumulative liquidated debt (USD)"),
            "collateral_sold_usd": usd_column("collateral sold this round (USD)"),
        },
    )
    st.subheader("Price impact per symbol")
    prices = cascade_prices(db, run_id, params.get("shock") or {})
    st.altair_chart(_impact_chart(prices), width="stretch")
    table(
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
