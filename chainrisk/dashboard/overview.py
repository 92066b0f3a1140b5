"""Overview page: totals, a data-quality note, health distribution, collateral at risk vs price drop, markets, the
weakest borrowers across protocols and data freshness.

Everything is aggregated in DuckDB (a few dozen rows reach Python), so the first view stays fast on a
database of a million positions.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard.data import database_location, query, require
from chainrisk.dashboard.quality import render_note
from chainrisk.dashboard.ui import (
    PROTOCOL_NAMES,
    count_column,
    health_column,
    human_age,
    key_table,
    market_names,
    table,
    usd,
    usd_column,
    usd_short,
    wallet_link_column,
    with_wallet_links,
)

#: Health factors drawn in the histogram: below HF_MIN and above HF_MAX are counted in the end bins.
HF_MIN, HF_MAX = 0.5, 10.0
#: Histogram bin width in log10 units (each bin spans a factor of about 1.06).
HF_BIN_LOG_WIDTH = 0.025
ALL_NON_STABLE = ("all_crypto", "all non-stable")
#: Borrowers listed at most (weakest first); how many there are in all is said beside them.
BORROWER_LIMIT = 200
#: The Markets table's columns, all visible at 1400 px; the rest are on the Markets page.
MARKET_COLUMNS = (
    "market_name",
    "debt_usd",
    "collateral_usd",
    "bad_debt_usd",
    "liquidatable_wallets",
    "min_health_factor",
    "borrowers",
)
#: The Borrowers table's columns, all visible at 1400 px (the protocols, chain and market counts are in the data).
BORROWER_COLUMNS = (
    "wallet page",
    "worst_health_factor",
    "worst_market_name",
    "collateral_usd",
    "debt_usd",
    "bad_debt_usd",
    "liquidatable_markets",
)
#: The Data freshness table's columns, in order: what, how old, how far (the chain and contract in its expander).
FRESHNESS_COLUMNS = ("source_name", "snapshot age", "snapshot_time", "snapshot_block", "scored ago", "events_to_block")
VIEWS = (
    "stg_market_labels",
    "stg_scored_markets",
    "mart_market_summary",
    "mart_wallet_portfolio",
    "mart_health_buckets",
    "stg_wallet_risk_latest",
    "mart_liquidation_curve",
    "mart_market_freshness",
)


def totals(db: Path) -> dict[str, Any]:
    """The headline figures over every market's latest block."""
    markets = query(
        db,
        """
        SELECT sum(collateral_usd) AS collateral_usd, sum(debt_usd) AS debt_usd,
               coalesce(sum(liquidatable_wallets), 0) AS liquidatable, sum(bad_debt_usd) AS bad_debt_usd,
               count(DISTINCT protocol) AS protocols, string_agg(DISTINCT protocol, ', ' ORDER BY protocol) AS names
        FROM mart_market_summary
        """,
    ).row(0, named=True)
    borrowers = query(db, "SELECT count(*) AS n FROM mart_wallet_portfolio WHERE markets_with_debt > 0")["n"][0]
    return {**markets, "borrowing_wallets": int(borrowers)}


def health_buckets(db: Path) -> pl.DataFrame:
    return query(db, "SELECT bucket, bucket_order, wallets, debt_usd FROM mart_health_buckets ORDER BY bucket_order")


def health_histogram(db: Path) -> pl.DataFrame:
    """Borrowing positions (wallet and market) per log-spaced health-factor bin, with the bin's edges."""
    bins = math.ceil((math.log10(HF_MAX) - math.log10(HF_MIN)) / HF_BIN_LOG_WIDTH)
    counts = query(
        db,
        """
        WITH borrowers AS (
            SELECT log10(least(greatest(health_factor, ?), ?)) - log10(?) AS position
            FROM stg_wallet_risk_latest WHERE health_factor IS NOT NULL
        )
        SELECT least(floor(position / ?), ? - 1)::BIGINT AS bin, count(*) AS positions
        FROM borrowers GROUP BY ALL ORDER BY bin
        """,
        HF_MIN,
        HF_MAX,
        HF_MIN,
        HF_BIN_LOG_WIDTH,
        bins,
    )
    start = math.log10(HF_MIN)
    return counts.with_columns(
        (10 ** (start + pl.col("bin") * HF_BIN_LOG_WIDTH)).alias("from"),
        (10 ** (start + (pl.col("bin") + 1) * HF_BIN_LOG_WIDTH)).clip(upper_bound=HF_MAX).alias("to"),
    )


def curve_axes(db: Path) -> list[tuple[str, str]]:
    """The (axis_kind, axis) shocks of the chain-wide curve, 'all non-stable' first, then groups, assets, depegs.
    An asset outside every correlated group is a group of its own; that group is left out as the asset's twin."""
    frame = query(db, "SELECT DISTINCT axis_kind, axis FROM mart_liquidation_curve WHERE market = 'all'")
    present = {(str(kind), str(axis)) for kind, axis in frame.iter_rows()}
    axes = [a for a in present if not (a[0] == "group" and ("asset", a[1]) in present)]
    return sorted(axes, key=lambda a: (a != ALL_NON_STABLE, a[0] != "group", a[0], a[1]))


def axis_label(axis: tuple[str, str]) -> str:
    kind, name = axis
    return {"all_crypto": name, "group": f"{name} and correlated", "depeg": f"{name} depeg"}.get(kind, name)


def total_curve(db: Path, axis: tuple[str, str]) -> pl.DataFrame:
    """Collateral, debt and bad debt liquidatable after each drop along one axis, summed over chains."""
    return query(
        db,
        """
        SELECT drop_pct AS "price drop (%)", sum(liquidatable_collateral_usd) AS "collateral at risk (USD)",
               sum(liquidatable_debt_usd) AS "debt at risk (USD)", sum(bad_debt_usd) AS "bad debt (USD)",
               sum(liquidatable_wallets) AS "liquidatable wallets"
        FROM mart_liquidation_curve WHERE market = 'all' AND axis_kind = ? AND axis = ?
        GROUP BY drop_pct ORDER BY drop_pct
        """,
        *axis,
    )


def markets(db: Path) -> pl.DataFrame:
    """Every market, the largest debt first; `market_name` is its label with the protocol's name."""
    frame = query(
        db,
        """
        SELECT protocol, chain_id, market_label, wallets, borrowers, collateral_usd, debt_usd,
               liquidatable_wallets, liquidatable_debt_usd, bad_debt_usd, min_health_factor, market
        FROM mart_market_summary ORDER BY debt_usd DESC NULLS LAST, protocol, market
        """,
    )
    return frame.with_columns(pl.col("protocol").replace(PROTOCOL_NAMES), market_names(frame))


def weakest_borrowers(db: Path, limit: int) -> tuple[pl.DataFrame, int]:
    """Wallets with debt, one row per chain and wallet over every protocol and market, weakest health factor first
    (at most `limit`), and how many such wallets there are in all."""
    rows = query(
        db,
        """
        SELECT wallet, protocols, markets, worst_health_factor, worst_protocol, worst_market_label, collateral_usd,
               debt_usd, liquidatable_markets, bad_debt_usd, chain_id
        FROM mart_wallet_portfolio WHERE worst_health_factor IS NOT NULL
        ORDER BY worst_health_factor, chain_id, wallet LIMIT ?
        """,
        limit,
    )
    total = query(db, "SELECT count(*) AS n FROM mart_wallet_portfolio WHERE worst_health_factor IS NOT NULL")["n"][0]
    protocols = pl.col("protocols").list.eval(pl.element().replace(PROTOCOL_NAMES)).list.join(", ")
    names = market_names(rows, "worst_market_name", "worst_protocol", "worst_market_label")
    return rows.with_columns(protocols, names), int(total)


def freshness(db: Path) -> pl.DataFrame:
    """Per indexed source: how far logs and snapshots reach and how old they are, in words. Ages are taken
    against the clock when drawn, not when the (cached) query ran."""
    frame = query(
        db,
        """
        WITH counted AS (
            SELECT protocol, chain_id, source, count(DISTINCT market) AS markets FROM stg_scored_markets GROUP BY ALL
        )
        SELECT f.protocol, f.chain_id, f.source, f.events_to_block, f.snapshot_block, f.snapshot_time,
               f.scored_block, f.scored_at,
               coalesce(l.market_label, CASE WHEN c.markets = 1 THEN '1 market' ELSE c.markets || ' markets' END,
                        'not scored yet') AS source_label
        FROM mart_market_freshness AS f
        LEFT JOIN stg_market_labels AS l
            ON l.protocol = f.protocol AND l.chain_id = f.chain_id AND l.market = f.source
        LEFT JOIN counted AS c ON c.protocol = f.protocol AND c.chain_id = f.chain_id AND c.source = f.source
        ORDER BY f.protocol, f.chain_id, f.source
        """,
    )
    # A source that is itself a market (an Aave pool, a Comet) by its label, else by its protocol and how many
    # markets it holds (Morpho Blue's singleton, Maker's ChainLog): never by its address alone.
    frame = frame.with_columns(market_names(frame, "source_name", label="source_label"))
    now = datetime.now(UTC)

    def age(column: str) -> pl.Expr:
        seconds = (pl.lit(now) - pl.col(column)).dt.total_seconds(fractional=True)
        return seconds.map_elements(human_age, return_dtype=pl.String)

    return frame.with_columns(
        pl.col("protocol").replace(PROTOCOL_NAMES),
        age("snapshot_time").alias("snapshot age"),
        age("scored_at").alias("scored ago"),
    ).drop("scored_at")


def render() -> None:
    db = database_location()
    with st.spinner("Reading the latest scores ..."):
        require(db, *VIEWS)
        figures = totals(db)
        buckets, histogram, axes = health_buckets(db), health_histogram(db), curve_axes(db)
    cols = st.columns(6)
    cols[0].metric("Collateral (USD)", usd_short(figures["collateral_usd"]), help=usd(figures["collateral_usd"]))
    cols[1].metric("Debt (USD)", usd_short(figures["debt_usd"]), help=usd(figures["debt_usd"]))
    cols[2].metric("Borrowing wallets", f"{figures['borrowing_wallets']:,}", help="Wallets with debt in any market")
    cols[3].metric(
        "Liquidatable now",
        f"{int(figures['liquidatable']):,}",
        help="Wallet positions (a wallet in one market) with health factor below 1",
    )
    cols[4].metric(
        "Bad debt (USD)",
        usd_short(figures["bad_debt_usd"]),
        help=f"{usd(figures['bad_debt_usd'])}: debt the collateral cannot cover after liquidation bonuses",
    )
    cols[5].metric("Protocols", f"{figures['protocols']}", help=figures["names"])
    render_note(db)

    left, right = st.columns(2)
    with left:
        st.subheader("Debt and wallets by health factor")
        _buckets_chart(buckets)
    with right:
        st.subheader("Health factors of borrowers")
        _histogram_chart(histogram)

    st.subheader("Collateral at risk vs price drop")
    if axes:
        axis = st.selectbox("Shock", axes, format_func=axis_label, key="overview_axis")
        _curve_chart(total_curve(db, axis))
    else:
        st.info("No liquidation curve in this database yet: run `chainrisk score`.")

    st.subheader("Markets")
    st.caption(
        "The key figures of each market, the largest debt first; every figure (wallets, liquidatable debt, ids) "
        "on the [Markets page](?page=markets)."
    )
    with st.container(key="overview_markets"):
        table(
            markets(db),
            hide_index=True,
            column_order=MARKET_COLUMNS,
            column_config={
                "market_name": st.column_config.TextColumn("market", width=300),
                "debt_usd": usd_column("debt (USD)"),
                "collateral_usd": usd_column("collateral (USD)"),
                "bad_debt_usd": usd_column("bad debt (USD)", "Debt the collateral cannot cover after liquidation"),
                "liquidatable_wallets": st.column_config.NumberColumn("liquidatable", help="Wallets with HF below 1"),
                "min_health_factor": health_column("lowest HF", "The weakest borrower's health factor"),
                "borrowers": st.column_config.NumberColumn("borrowers", help="Wallets with debt"),
            },
        )
    _borrowers_table(db)
    st.subheader("Data freshness")
    st.caption(
        "Snapshot age: the snapshot block's chain time against the clock now (a devnet replays the past: it looks old)."
    )
    key_table(
        freshness(db),
        "overview_freshness",
        FRESHNESS_COLUMNS,
        {
            "source_name": st.column_config.TextColumn(
                "indexed", width=260, help="The market, or the contract holding several"
            ),
            "source": "contract",
            "events_to_block": count_column("logs to block"),
            "snapshot_block": count_column("snapshot block"),
            "snapshot_time": st.column_config.DatetimeColumn("snapshot time (UTC)", format="YYYY-MM-DD HH:mm"),
            "scored_block": count_column("scored block"),
        },
        "these sources",
    )


def _borrowers_table(db: Path) -> None:
    st.subheader("Borrowers across protocols")
    rows, total = weakest_borrowers(db, BORROWER_LIMIT)
    if not total:
        st.info("No wallet has debt in the latest scores.")
        return
    shown = f"The weakest {rows.height:,} of {total:,} borrowers" if total > rows.height else f"All {total:,} borrowers"
    st.caption(
        f"{shown}: one row per wallet over every market it uses, in every protocol indexed. Markets "
        "liquidate separately, so the weakest health factor is shown, with the market it is in, not a blend."
    )
    with st.container(key="overview_borrowers"):
        table(
            with_wallet_links(rows),
            hide_index=True,
            column_order=BORROWER_COLUMNS,
            column_config={
                "wallet page": wallet_link_column(),
                "worst_health_factor": health_column("worst HF", "The lowest health factor over its markets"),
                "worst_market_name": st.column_config.TextColumn(
                    "where", width=280, help="The market of the worst health factor"
                ),
                "collateral_usd": usd_column("collateral (USD)", "Over every market"),
                "debt_usd": usd_column("debt (USD)", "Over every market"),
                "bad_debt_usd": usd_column("bad debt (USD)", "Debt its collateral cannot cover, over every market"),
                "liquidatable_markets": st.column_config.NumberColumn(
                    "liquidatable in", help="Markets where its health factor is below 1"
                ),
            },
        )


def _buckets_chart(buckets: pl.DataFrame) -> None:
    base = alt.Chart(buckets).encode(
        x=alt.X("bucket:N", sort=alt.SortField("bucket_order"), title="health factor"),
        tooltip=[
            alt.Tooltip("bucket:N", title="health factor"),
            alt.Tooltip("wallets:Q", format=",", title="wallets (count)"),
            alt.Tooltip("debt_usd:Q", format="$,.0f", title="debt (USD)"),
        ],
    )
    debt = base.mark_bar().encode(y=alt.Y("debt_usd:Q", title="debt (USD)", axis=alt.Axis(format="$,.0f")))
    wallets = base.mark_line(point=True, color="#d62728").encode(
        y=alt.Y("wallets:Q", title="wallets (count, line)", axis=alt.Axis(format=",d"))
    )
    st.altair_chart(alt.layer(debt, wallets).resolve_scale(y="independent"), width="stretch")


def _histogram_chart(histogram: pl.DataFrame) -> None:
    x_scale = alt.Scale(type="log", domain=[HF_MIN, HF_MAX], nice=False)
    bars = (
        alt.Chart(histogram)
        .mark_rect()
        .encode(
            x=alt.X(
                "from:Q",
                scale=x_scale,
                title=f"health factor (log scale; below {HF_MIN} and above {HF_MAX:.0f} in the end bins)",
            ),
            x2="to:Q",
            y=alt.Y("positions:Q", title="borrowing positions (count)"),
            y2=alt.datum(0),
            tooltip=[
                alt.Tooltip("from:Q", format=".3f", title="from HF"),
                alt.Tooltip("to:Q", format=".3f", title="to HF"),
                alt.Tooltip("positions:Q", format=",", title="positions"),
            ],
        )
    )
    liquidation = (
        alt.Chart(pl.DataFrame({"health factor": [1.0]}))
        .mark_rule(color="#d62728", strokeDash=[4, 3])
        .encode(x=alt.X("health factor:Q", scale=x_scale))
    )
    st.altair_chart(bars + liquidation, width="stretch")


def _curve_chart(curve: pl.DataFrame) -> None:
    long = curve.drop("liquidatable wallets").unpivot(index="price drop (%)", variable_name="measure", value_name="USD")
    chart = (
        alt.Chart(long)
        .mark_line()
        .encode(
            x=alt.X("price drop (%):Q", title="price drop (%)"),
            y=alt.Y("USD:Q", title="USD", axis=alt.Axis(format="$,.0f")),
            color=alt.Color("measure:N", title=None),
            tooltip=["measure", alt.Tooltip("price drop (%):Q", format=".1f"), alt.Tooltip("USD:Q", format="$,.0f")],
        )
    )
    st.altair_chart(chart, width="stretch")
    st.caption(
        "Each point: the wallets whose health factor falls below 1 when the chosen prices drop by that much "
        "(all other prices held), their collateral and debt, and the debt their collateral cannot cover."
    )
