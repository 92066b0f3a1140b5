"""Risk models page, parameter suggestions: current and suggested LT / LTV per market and collateral
(parameter_suggestions of the latest `chainrisk risk var` run)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import streamlit as st

from chainrisk.dashboard.data import query
from chainrisk.dashboard.markets import market_labels, with_market_names
from chainrisk.dashboard.ui import usd_column
from chainrisk.units import BPS


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


def section(db: Path, run_id: int) -> None:
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
