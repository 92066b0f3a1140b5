"""Runs & alerts page: the last `chainrisk run` passes, the alert events they sent, and alerts still active."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard.data import database_location, query, require
from chainrisk.dashboard.ui import CHAIN_COLUMN, chain_names, count_column, human_age, key_table, naive_utc, table

TABLES = ("stg_runs", "alert_events", "alert_state")
#: Runs and alert events listed at most (newest first).
RUNS_SHOWN, EVENTS_SHOWN = 100, 1_000


def last_runs(db: Path, limit: int = RUNS_SHOWN) -> pl.DataFrame:
    """Newest first (stg_runs); `summary` is the run's one line in words (the JSON details beside it in the table
    are for analysts' SQL, not for this page); a run without alert rules sent 0 alerts; `rpc_requests` and
    `rpc_calls` what its markets and look-through asked of the RPCs (what providers bill), NULL when not recorded."""
    frame = query(
        db,
        """
        SELECT run_id, status, started_at, seconds, markets, markets_failed, wallets, liquidatable, alerts_sent,
               rpc_requests, rpc_calls, line AS summary
        FROM stg_runs ORDER BY run_id DESC LIMIT ?
        """,
        limit,
    )
    return frame.with_columns(pl.col("seconds").map_elements(human_age, return_dtype=pl.String).alias("duration")).drop(
        "seconds"
    )


def alert_events(db: Path, limit: int = EVENTS_SHOWN) -> pl.DataFrame:
    return query(
        db,
        """
        SELECT sent_at, event, rule, subject, value, threshold, channel, delivered, error, run_id, chain_id,
               block_number
        FROM alert_events ORDER BY sent_at DESC, rule, subject LIMIT ?
        """,
        limit,
    )


def active_alerts(db: Path) -> pl.DataFrame:
    return query(
        db,
        """
        SELECT rule, subject, channel, value, since_block, changed_at
        FROM alert_state WHERE active ORDER BY changed_at DESC, rule, subject, channel
        """,
    )


def render() -> None:
    db = database_location()
    require(db, *TABLES)
    runs = last_runs(db)
    st.subheader("Last runs")
    if runs.is_empty():
        st.info(
            "No runs recorded yet: `chainrisk run` (once, e.g. from cron) or `chainrisk watch` (a loop) records one "
            "per pass; `chainrisk score` alone does not."
        )
    else:
        latest = runs.row(0, named=True)
        cols = st.columns(4)
        cols[0].metric("Last run", f"#{latest['run_id']}", help=str(latest["started_at"]))
        cols[1].metric("Status", str(latest["status"]))
        cols[2].metric("Markets failed", f"{latest['markets_failed'] or 0}")
        cols[3].metric("Alerts sent", f"{latest['alerts_sent'] or 0}")
        if latest["summary"]:
            st.caption(str(latest["summary"]))  # "run 7 ok in 3.5 s; 6/6 markets indexed; ..."
        key_table(
            runs,
            "runs_table",
            (
                "run_id",
                "status",
                "started_at",
                "duration",
                "markets",
                "markets_failed",
                "wallets",
                "liquidatable",
                "alerts_sent",
                "rpc_requests",
                "rpc_calls",
            ),
            {
                "run_id": count_column("run"),
                "started_at": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                "markets_failed": "failed markets",
                "alerts_sent": "alerts sent",
                "rpc_requests": count_column(
                    "RPC requests", "HTTP requests the run's markets and look-through sent, retries included"
                ),
                "rpc_calls": count_column("RPC calls", "JSON-RPC calls in those requests: what providers bill"),
            },
            "these runs",
        )
        usage = runs.drop_nulls("rpc_calls")
        if usage.height > 1:
            st.caption("RPC calls per run (what a provider bills and rate-limits), newest on the right")
            st.altair_chart(_usage_chart(usage), width="stretch")

    st.subheader("Active alerts")
    active = active_alerts(db)
    if active.is_empty():
        st.info("No alert is active: no rule is breached at the latest scored block.")
    else:
        table(
            active,
            hide_index=True,
            column_config={
                "value": st.column_config.NumberColumn("value (HF, USD, % or minutes)", format="%.4g"),
                "since_block": count_column("since block"),
                "changed_at": st.column_config.DatetimeColumn("since (UTC)", format="YYYY-MM-DD HH:mm"),
            },
        )

    st.subheader("Alert events")
    events = alert_events(db)
    if events.is_empty():
        st.info("No alert events yet: rules under `[alerts]` in chainrisk.toml send one when a breach starts or ends.")
        return
    st.altair_chart(_timeline(events), width="stretch")
    table(
        chain_names(events),
        hide_index=True,
        column_config={
            "sent_at": st.column_config.DatetimeColumn("sent (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "value": st.column_config.NumberColumn("value (HF, USD, % or minutes)", format="%.4g"),
            "threshold": st.column_config.NumberColumn("threshold (HF, USD, % or minutes)", format="%.4g"),
            "run_id": count_column("run"),
            "chain_id": CHAIN_COLUMN,
            "block_number": count_column("block"),
        },
    )


def _usage_chart(runs: pl.DataFrame) -> alt.Chart:
    chart: alt.Chart = (
        alt.Chart(naive_utc(runs.select("run_id", "started_at", "rpc_requests", "rpc_calls"), "started_at"))
        .mark_bar()
        .encode(
            x=alt.X("run_id:O", title="run"),
            y=alt.Y("rpc_calls:Q", title="RPC calls"),
            tooltip=[
                alt.Tooltip("run_id:O", title="run"),
                alt.Tooltip("started_at:T", title="started (UTC)", format="%Y-%m-%d %H:%M:%S"),
                alt.Tooltip("rpc_requests:Q", title="requests", format=","),
                alt.Tooltip("rpc_calls:Q", title="calls", format=","),
            ],
        )
    )
    return chart


def _timeline(events: pl.DataFrame) -> alt.Chart:
    frame = naive_utc(events, "sent_at")
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_point(filled=True, size=90)
        .encode(
            x=alt.X("sent_at:T", title="sent (UTC)"),
            y=alt.Y("rule:N", title=None),
            color=alt.Color(
                "event:N", scale=alt.Scale(domain=["breach", "recovery"], range=["#d62728", "#2ca02c"]), title="event"
            ),
            shape=alt.Shape("delivered:N", title="delivered"),
            tooltip=[
                "rule",
                "subject",
                "event",
                "channel",
                alt.Tooltip("value:Q", format=".4g"),
                alt.Tooltip("threshold:Q", format=".4g"),
                "delivered",
                "error",
                alt.Tooltip("sent_at:T", format="%Y-%m-%d %H:%M:%S"),
            ],
        )
    )
    return chart
