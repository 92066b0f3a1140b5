"""Risk models page, parameter advice: current and proposed LT / LTV / bonus / cap per market and collateral, side by
side with their reasons and their backtest through the historical windows (parameter_suggestions, parameter_advice
and parameter_backtest of the latest `chainrisk risk var` run)."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard.data import missing_relations, query
from chainrisk.dashboard.markets import market_labels, with_market_names
from chainrisk.dashboard.ui import count_column, table, usd, usd_column, usd_short
from chainrisk.units import BPS

ADVICE_TABLES = ("parameter_advice", "parameter_backtest")
#: The advice table's columns, current beside proposed.
ADVICE_COLUMNS = [
    "market_name",
    "symbol",
    "current_lt_pct",
    "suggested_lt_pct",
    "lt_change_bps",
    "current_ltv_pct",
    "suggested_ltv_pct",
    "ltv_change_bps",
    "bonus_pct",
    "suggested_bonus_pct",
    "collateral_usd",
    "cap_usd",
    "bad_debt_current_usd",
    "bad_debt_proposed_usd",
    "liquidated_debt_current_usd",
    "liquidated_debt_proposed_usd",
    "reasons",
]
#: The columns the advice table shows, all visible at 1400 px: thresholds and LTVs now and proposed, and why; the
#: bonus, cap and backtest sums of the same rows are in the expander under it.
KEY_ADVICE_COLUMNS = [
    "market_name",
    "symbol",
    "current_lt_pct",
    "suggested_lt_pct",
    "current_ltv_pct",
    "suggested_ltv_pct",
    "reasons",
]
#: The per-window backtest table's columns.
BACKTEST_COLUMNS = [
    "market_name",
    "symbol",
    "window_name",
    "current_lt_pct",
    "proposed_lt_pct",
    "liquidations_current",
    "liquidations_proposed",
    "liquidated_debt_current_usd",
    "liquidated_debt_proposed_usd",
    "bad_debt_current_usd",
    "bad_debt_proposed_usd",
]
CAP_HELP = "Collateral the market can hold and still liquidate profitably after an extreme drop (at most 2x today's)"


def parameter_suggestions(db: Path, run_id: int) -> pl.DataFrame:
    """Current and proposed liquidation threshold and LTV in %, their changes in bps; with the advice's bonus, cap,
    backtest sums and reasons where the run stored them (NULL for a run from before the advice)."""
    advice = not missing_relations(db, ADVICE_TABLES)
    extra = (
        """, (a.suggested_bonus_bps - ?) / 100 AS suggested_bonus_pct, a.bonus_change_bps, a.cap_usd,
               a.cap_multiple, a.lt_ceiling_bps / 100 AS lt_ceiling_pct, a.bad_debt_current_usd,
               a.bad_debt_proposed_usd, a.liquidated_debt_current_usd, a.liquidated_debt_proposed_usd,
               a.liquidations_current, a.liquidations_proposed, a.newly_liquidatable_wallets, a.reasons"""
        if advice
        else ""
    )
    joined = "LEFT JOIN parameter_advice a USING (run_id, protocol, chain_id, market, symbol)" if advice else ""
    return query(
        db,
        f"""
        SELECT protocol, chain_id, market, symbol, series, collateral_usd,
               (liquidation_bonus_bps - ?) / 100 AS bonus_pct, current_lt_bps / 100 AS current_lt_pct,
               suggested_lt_bps / 100 AS suggested_lt_pct, lt_change_bps, current_ltv_bps / 100 AS current_ltv_pct,
               suggested_ltv_bps / 100 AS suggested_ltv_pct, ltv_change_bps, tail_move * 100 AS tail_move_pct,
               horizon_hours, confidence {extra}
        FROM parameter_suggestions s {joined} WHERE run_id = ? ORDER BY protocol, market, symbol
        """,
        BPS,
        *([BPS] if advice else []),
        run_id,
    )


def whole_book_backtest(db: Path, run_id: int) -> pl.DataFrame:
    """Per window: liquidated debt and bad debt of the whole book with today's parameters and with every proposal."""
    if missing_relations(db, ADVICE_TABLES):
        return pl.DataFrame()
    return query(
        db,
        """
        SELECT window_name, variant, liquidations, liquidated_debt_usd, bad_debt_usd FROM parameter_backtest
        WHERE run_id = ? AND market = 'all' AND symbol = 'all' ORDER BY window_name, variant
        """,
        run_id,
    )


def row_backtests(db: Path, run_id: int) -> pl.DataFrame:
    """Each market and collateral's backtest per window, current and proposed parameters side by side."""
    if missing_relations(db, ADVICE_TABLES):
        return pl.DataFrame()
    return query(
        db,
        """
        SELECT c.protocol, c.chain_id, c.market, c.symbol, c.window_name, c.lt_bps / 100 AS current_lt_pct,
               p.lt_bps / 100 AS proposed_lt_pct, c.liquidations AS liquidations_current,
               p.liquidations AS liquidations_proposed, c.liquidated_debt_usd AS liquidated_debt_current_usd,
               p.liquidated_debt_usd AS liquidated_debt_proposed_usd, c.bad_debt_usd AS bad_debt_current_usd,
               p.bad_debt_usd AS bad_debt_proposed_usd
        FROM parameter_backtest c JOIN parameter_backtest p
          ON p.run_id = c.run_id AND p.protocol = c.protocol AND p.chain_id = c.chain_id AND p.market = c.market
         AND p.symbol = c.symbol AND p.window_name = c.window_name AND p.variant = 'proposed'
        WHERE c.run_id = ? AND c.variant = 'current' AND c.symbol <> 'all'
        ORDER BY c.protocol, c.market, c.symbol, c.window_name
        """,
        run_id,
    )


def section(db: Path, run_id: int) -> None:
    st.subheader("Parameter advice")
    suggestions = parameter_suggestions(db, run_id)
    if suggestions.is_empty():
        st.info("No suggestion: no market has both collateral and debt with a price series.")
        return
    first = suggestions.row(0, named=True)
    advised = "reasons" in suggestions.columns
    if advised:
        _headline(db, run_id, suggestions)
        st.caption(
            f"Per market and collateral: a threshold (LT) that still covers the debt and the bonus after the "
            f"{first['confidence']:.1%} {first['horizon_hours']} h move (the oracle's lag and the liquidators' delay) "
            "and the slippage of selling the largest positions at market depth; an LTV a position opened at the limit "
            "keeps above the threshold after an ordinary (99 %) move; a bonus that pays for the oracle's lag and that "
            "slippage; a cap whose liquidations sell within the bonus. Changes move in steps of at most the "
            "configured bps, and a threshold is raised only when the backtest of today's book through the historical "
            "crashes adds no bad debt. Each row says why. What a protocol lets change: Morpho Blue fixes a market's "
            "LLTV and derives its incentive from it, so a proposed LLTV is a new market's, at that LLTV's incentive "
            "and only at one governance has enabled (another market of the same Morpho uses it); Maker's chop is a "
            "penalty the protocol keeps, not a keeper's bonus, so it is never moved and does not lower the threshold; "
            "Compound V3's buyers get the store front's share of the bonus; "
            "Liquity V1 has no governance, so its rows propose nothing; only Aave V3 and Compound V3 cap a "
            "collateral's supply (elsewhere the cap column is what the market's depth absorbs)."
        )
    else:
        st.caption(
            f"From each collateral's {first['horizon_hours']} h {first['confidence']:.0%} tail move against its "
            "market's debt (this run predates the backtested advice: run `chainrisk risk var` again for it)."
        )
    named = with_market_names(suggestions, market_labels(db))
    config = {
        "market_name": st.column_config.TextColumn("market", width=220),
        "symbol": "collateral",
        "collateral_usd": usd_column("collateral (USD)"),
        "bonus_pct": st.column_config.NumberColumn("bonus now (%)", format="%.2f%%"),
        "suggested_bonus_pct": st.column_config.NumberColumn("bonus proposed (%)", format="%.2f%%"),
        "current_lt_pct": st.column_config.NumberColumn("LT now (%)", format="%.2f%%"),
        "suggested_lt_pct": st.column_config.NumberColumn("LT proposed (%)", format="%.2f%%"),
        "lt_change_bps": st.column_config.NumberColumn("LT change (bps)", format="%+d"),
        "current_ltv_pct": st.column_config.NumberColumn("LTV now (%)", format="%.2f%%"),
        "suggested_ltv_pct": st.column_config.NumberColumn("LTV proposed (%)", format="%.2f%%"),
        "ltv_change_bps": st.column_config.NumberColumn("LTV change (bps)", format="%+d"),
        "cap_usd": usd_column("cap proposed (USD)", CAP_HELP),
        "bad_debt_current_usd": usd_column("backtest bad debt now (USD)", "The market's, summed over the windows"),
        "bad_debt_proposed_usd": usd_column("backtest bad debt proposed (USD)"),
        "liquidated_debt_current_usd": usd_column("backtest liquidated debt now (USD)"),
        "liquidated_debt_proposed_usd": usd_column("backtest liquidated debt proposed (USD)"),
        "reasons": st.column_config.TextColumn("why", width="medium", help="Hover or widen for the whole text"),
    }
    with st.container(key="risk_advice"):
        table(named, hide_index=True, column_order=KEY_ADVICE_COLUMNS, column_config=config)
    if advised:
        others = [c for c in ADVICE_COLUMNS if c in named.columns and c not in KEY_ADVICE_COLUMNS]
        with st.expander("Changes in bps, bonus, cap and backtest of each row"):
            table(named.select("market_name", "symbol", *others), hide_index=True, column_config=config)
    backtests = row_backtests(db, run_id)
    if not backtests.is_empty():
        with st.expander(f"Backtest per window ({backtests.height:,} rows): each market with one change at a time"):
            table(
                with_market_names(backtests, market_labels(db)),
                hide_index=True,
                column_order=BACKTEST_COLUMNS,
                column_config={
                    "market_name": "market",
                    "symbol": "collateral",
                    "window_name": "window",
                    "current_lt_pct": st.column_config.NumberColumn("LT now (%)", format="%.2f%%"),
                    "proposed_lt_pct": st.column_config.NumberColumn("LT proposed (%)", format="%.2f%%"),
                    "liquidations_current": count_column("liquidations now"),
                    "liquidations_proposed": count_column("liquidations proposed"),
                    "liquidated_debt_current_usd": usd_column("liquidated debt now (USD)"),
                    "liquidated_debt_proposed_usd": usd_column("liquidated debt proposed (USD)"),
                    "bad_debt_current_usd": usd_column("bad debt now (USD)"),
                    "bad_debt_proposed_usd": usd_column("bad debt proposed (USD)"),
                },
            )


def _headline(db: Path, run_id: int, suggestions: pl.DataFrame) -> None:
    """How many rows change, and the whole book's backtest with every proposal at once."""
    changed = suggestions.filter(
        (pl.col("lt_change_bps") != 0) | (pl.col("ltv_change_bps") != 0) | (pl.col("bonus_change_bps") != 0)
    )
    raised = suggestions.filter(pl.col("lt_change_bps") > 0).height
    lowered = suggestions.filter(pl.col("lt_change_bps") < 0).height
    book = whole_book_backtest(db, run_id)
    totals = {v: book.filter(pl.col("variant") == v) for v in ("current", "proposed")}
    bad = {v: float(f["bad_debt_usd"].sum()) for v, f in totals.items()}
    repaid = {v: float(f["liquidated_debt_usd"].sum()) for v, f in totals.items()}
    cols = st.columns(3)
    cols[0].metric(
        "Rows with a change",
        f"{changed.height} of {suggestions.height}",
        help=f"Thresholds raised: {raised}; lowered: {lowered}",
    )
    cols[1].metric(
        "Backtest bad debt, now → proposed (USD)",
        f"{usd_short(bad['current'])} → {usd_short(bad['proposed'])}",
        help=f"{usd(bad['current'])} → {usd(bad['proposed'])}: today's book with every proposal at once, summed "
        "over the historical windows",
    )
    cols[2].metric(
        "Backtest liquidated debt, now → proposed (USD)",
        f"{usd_short(repaid['current'])} → {usd_short(repaid['proposed'])}",
        help=f"{usd(repaid['current'])} → {usd(repaid['proposed'])}: what liquidators repaid along the windows",
    )
    if not book.is_empty():
        for col, measure in zip(st.columns(2), ("bad_debt_usd", "liquidated_debt_usd"), strict=True):
            with col:
                st.altair_chart(_backtest_chart(book, measure), width="stretch")


def _backtest_chart(book: pl.DataFrame, measure: str) -> alt.Chart:
    """One measure of the whole book's backtest per window, today's parameters beside every proposal at once."""
    title = {"bad_debt_usd": "bad debt", "liquidated_debt_usd": "liquidated debt"}[measure]
    chart: alt.Chart = (
        alt.Chart(book.select("window_name", "variant", pl.col(measure).alias("USD")), title=f"Backtest {title}")
        .mark_bar()
        .encode(
            x=alt.X("window_name:N", title=None, sort=None, axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("variant:N", sort=["current", "proposed"]),
            y=alt.Y("USD:Q", title="USD", axis=alt.Axis(format="$,.0f")),
            color=alt.Color("variant:N", sort=["current", "proposed"], title=None),
            tooltip=["window_name", "variant", alt.Tooltip("USD:Q", format="$,.0f")],
        )
        .properties(height=220)
    )
    return chart
