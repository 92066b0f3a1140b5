"""Risk models page, VaR / ES: the latest `chainrisk risk var` run (var_results, var_calibration, var_backtest*), then
its parameter suggestions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard.data import missing_relations, query
from chainrisk.dashboard.markets import market_labels, with_market_names
from chainrisk.dashboard.risk.parameters import section as parameters_section
from chainrisk.dashboard.ui import count_column, naive_utc, percent_column, table, usd, usd_column, usd_short
from chainrisk.store.schema.risk import NOTES_SEPARATOR

#: The VaR model's loss measures, as people say them.
MEASURES = {
    "bad_debt_usd": "bad debt",
    "liquidatable_debt_usd": "liquidatable debt",
    "seizable_collateral_usd": "seizable collateral",
}
#: The Kupiec test's level: a p-value below it rejects the VaR model.
KUPIEC_LEVEL = 0.05
HOURS_PER_YEAR = 24 * 365


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


def loss_odds(db: Path, run_id: int) -> pl.DataFrame:
    """The whole book's share of scenarios that lose anything, per measure, at the run's shortest horizon (none for
    a run from before var_odds)."""
    if missing_relations(db, ("var_odds",)):
        return pl.DataFrame()
    return query(
        db,
        """
        SELECT metric, loss_probability, worst_usd FROM var_odds
        WHERE run_id = ? AND scope = 'total'
          AND horizon_hours = (SELECT min(horizon_hours) FROM var_odds WHERE run_id = ?)
        ORDER BY metric
        """,
        run_id,
        run_id,
    )


def plain_words(row: Mapping[str, Any], chance: float | None, horizon: int) -> str:
    """One measure's headline in words: a VaR of $0 is fewer scenarios losing anything than the confidence leaves out
    (for bad debt: the book is safe at that confidence), else how large the tail is."""
    measure, level = row["measure"], row["confidence_pct"]
    share = f"{chance:.2%}" if chance is not None else "an unknown share"
    tail = f"{100 - level:.0f} %"
    safe = "; the book is safe from it at this confidence" if row["metric"] == "bad_debt_usd" else ""
    if row["var_usd"] <= 0:
        if not chance:
            return f"**{measure.capitalize()}: none** in any {horizon} h scenario{safe}."
        return (
            f"**{measure.capitalize()}: $0 at {level:.0f} %** over {horizon} h: only {share} of scenarios produce any "
            f"(fewer than the {tail} the VaR leaves out){safe}; the worst {tail} average {usd(row['es_usd'])} (ES)."
        )
    return (
        f"**{measure.capitalize()}: {usd(row['var_usd'])} or more in {tail} of {horizon} h scenarios** ({share} "
        f"produce any; the worst {tail} average {usd(row['es_usd'])})."
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


def section(db: Path, run: Mapping[str, Any]) -> None:
    run_id = int(run["run_id"])
    results = with_market_names(var_results(db, run_id), market_labels(db))
    if results.is_empty():
        st.info("This VaR run wrote no results.")
        return
    for note in str(run.get("notes") or "").split(NOTES_SEPARATOR):
        if note.startswith("left out"):  # wallet-markets the price series cannot move (jobs.risk.with_price_series)
            st.warning(f"Not in these figures: {note}.")
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
    odds = loss_odds(db, run_id)
    if not odds.is_empty():
        chance = dict(zip(odds["metric"], odds["loss_probability"], strict=True))
        said = [
            plain_words(row, chance.get(row["metric"]), horizon)
            for row in headline.iter_rows(named=True)
            if row["metric"] in chance
        ]
        st.markdown("  \n".join(said))
    st.subheader("VaR vs ES, whole book")
    measures = total["measure"].unique(maintain_order=True).to_list()
    for col, measure in zip(st.columns(len(measures)), measures, strict=True):
        with col:
            st.altair_chart(_var_chart(total.filter(pl.col("measure") == measure), measure), width="stretch")
    config = {
        "market_name": "where",
        "measure": "loss measure",
        "horizon_hours": count_column("horizon (h)"),
        "confidence_pct": percent_column("confidence"),
        "var_usd": usd_column("VaR (USD)"),
        "es_usd": usd_column("ES (USD)", "Mean loss in the scenarios beyond the VaR"),
        "mean_usd": usd_column("mean (USD)", "Mean loss over every scenario"),
        "scenarios": count_column("scenarios"),
    }
    order = ["market_name", "measure", "horizon_hours", "confidence_pct", "var_usd", "es_usd", "mean_usd", "scenarios"]
    for scope, title in (("total", "Whole book"), ("protocol", "Per protocol"), ("market", "Per market")):
        rows = results.filter(pl.col("scope") == scope)
        if rows.is_empty():
            continue
        st.subheader(f"{title}: VaR and ES (USD)")
        table(rows, hide_index=True, column_order=order[1:] if scope == "total" else order, column_config=config)
    _calibration(db, run_id)
    _backtest(db, run_id)
    parameters_section(db, run_id)


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
    table(
        calibration,
        hide_index=True,
        column_config={
            "horizon_hours": count_column("horizon (h)"),
            "volatility_pct": st.column_config.NumberColumn("volatility (%)", format="%.2f%%", help="Over the horizon"),
            "annualised_pct": st.column_config.NumberColumn("annualised (%)", format="%.1f%%"),
            "asset_dof": st.column_config.NumberColumn(
                "dof", format="%.1f", help="Student-t degrees of freedom fitted to this series"
            ),
            "joint_dof": st.column_config.NumberColumn(
                "joint dof", format="%.1f", help="Degrees of freedom of the joint (all series) fit"
            ),
            "method": "covariance",
            "observations": count_column("returns used"),
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
