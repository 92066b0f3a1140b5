"""Markets page: every market with all its figures (the Overview shows the key ones), a chosen market over time, every
pool across protocols by how close it is to its limits (utilization, supply and debt caps), the risk parameters
governance changed (mart_parameter_changes), then each Aave V3
reserve's supply, debt and how much of its caps they use, what each protocol family liquidates against: Compound V3
reserves, Maker/Sky ilk limits, Liquity V1's TCR and Stability Pool; and where Morpho Blue's AdaptiveCurveIrm takes
each market's borrow rate if its utilization stays.

Reads mart_market_summary, mart_market_health_history, mart_lending_pools, stg_aave_v3_reserves with
stg_market_labels, the protocol marts (mart_compound_v3_reserves, mart_maker_ilks, mart_liquity_v1_system) and
stg_morpho_blue_markets with snapshot_blocks; a section whose protocol has no market in the database is left out.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard import governance, rate_curves
from chainrisk.dashboard.data import database_location, missing_relations, query, require
from chainrisk.dashboard.governance import CHANGE_WORDS, CHANGES
from chainrisk.dashboard.ui import (
    CHAIN_COLUMN,
    PROTOCOL_NAMES,
    chain_names,
    count_column,
    health_column,
    key_table,
    market_names,
    naive_utc,
    percent_column,
    series_colour,
    table,
    usd_column,
)
from chainrisk.protocols.morpho_blue.irm import YEAR, adaptive_curve_rate, rate_at
from chainrisk.protocols.morpho_blue.maths import MarketState, w_div_down
from chainrisk.units import RAY

COMPOUND, MAKER, LIQUITY = "mart_compound_v3_reserves", "mart_maker_ilks", "mart_liquity_v1_system"
VIEWS = ("mart_market_summary", COMPOUND, MAKER, LIQUITY)
MORPHO = ("stg_morpho_blue_markets", "snapshot_blocks", "stg_market_labels")
#: Days ahead at which the Morpho section gives an AdaptiveCurveIrm's rate, and the chart's days.
RATE_DAYS = (1, 7, 30)
CHART_DAYS = tuple(range(31))
#: Markets drawn on the rate chart: the largest by borrows whose rate moves.
CHART_MARKETS = 8


def _number(label: str, unit: str, help: str | None = None) -> Any:
    """An amount in `unit` (a token, dai, LUSD, ETH), with thousands separators in the reader's locale."""
    return st.column_config.NumberColumn(f"{label} ({unit})", format="localized", help=help)


def every_market(db: Path) -> pl.DataFrame:
    frame = query(
        db,
        """
        SELECT protocol, market_label, debt_usd, collateral_usd, bad_debt_usd, liquidatable_wallets,
               liquidatable_debt_usd, seizable_collateral_usd, min_health_factor, borrowers, wallets, chain_id,
               block_number, market, protocol AS protocol_id, block_timestamp
        FROM mart_market_summary ORDER BY debt_usd DESC NULLS LAST, protocol, market
        """,
    )
    return frame.with_columns(market_names(frame, "market_label"), pl.col("protocol").replace(PROTOCOL_NAMES))


def render() -> None:
    db = database_location()
    require(db, *VIEWS)
    st.subheader("Every market")
    st.caption(
        "All the figures of each market at its latest scored block; the Overview shows the key ones. Bad debt: debt "
        "the collateral cannot cover after liquidation incentives."
    )
    table(
        chain_names(every_market(db)),
        hide_index=True,
        column_order=[
            "market_label",
            "debt_usd",
            "collateral_usd",
            "bad_debt_usd",
            "liquidatable_wallets",
            "liquidatable_debt_usd",
            "seizable_collateral_usd",
            "min_health_factor",
            "borrowers",
            "wallets",
            "protocol",
            "chain_id",
            "block_number",
            "market",
        ],
        column_config={
            "market_label": st.column_config.TextColumn("market", width="large"),
            "debt_usd": usd_column("debt (USD)"),
            "collateral_usd": usd_column("collateral (USD)"),
            "bad_debt_usd": usd_column("bad debt (USD)"),
            "liquidatable_wallets": st.column_config.NumberColumn("liquidatable", help="Wallets with HF below 1"),
            "liquidatable_debt_usd": usd_column("liquidatable debt (USD)", "What liquidators may repay now"),
            "seizable_collateral_usd": usd_column("seizable collateral (USD)", "What liquidators would take for it"),
            "min_health_factor": health_column("lowest health factor"),
            "chain_id": CHAIN_COLUMN,
            "block_number": count_column("scored block"),
            "market": "market id",
        },
    )
    _over_time(db)
    _limits(db)
    _parameter_changes(db)
    shown = [section(db) for section in (_aave, _compound, _maker, _liquity, _morpho)]
    if not any(shown):
        st.caption(
            "No Aave V3, Compound V3, Maker/Sky, Liquity V1 or Morpho Blue market in this database: their reserves "
            "and caps, ilk limits, Stability Pool cover and rates appear here once one is indexed."
        )


HISTORY = "mart_market_health_history"
#: The USD series of the market-over-time chart: column, name on the chart.
HISTORY_USD = {"collateral_usd": "collateral", "debt_usd": "debt", "bad_debt_usd": "bad debt"}
#: Buckets up to which the lines mark each one with a point (more would crowd them).
POINTS_UP_TO = 60


#: How far back the market-over-time chart reaches, from the market's latest scored block: days (None: all of it).
HISTORY_RANGES = {"last 7 days": 7, "last 30 days": 30, "last 90 days": 90, "everything stored": None}
DEFAULT_RANGE = "last 90 days"


def market_history(db: Path, protocol: str, chain_id: int, market: str, since: int | None = None) -> pl.DataFrame:
    """One market's buckets of the health history from `since` (a timestamp; None: all), summed over its wallets,
    oldest first. The bound is on the buckets' start, which the history's hot table and its cold days' files are
    ordered by, so a recent range reads only recent days."""
    return query(
        db,
        f"""
        SELECT bucket_time, bucket_seconds, block_number, block_time, wallets, borrowers, collateral_usd, debt_usd,
               bad_debt_usd, liquidatable_wallets, wallets_liquidatable_in_bucket, min_health_factor,
               lowest_health_factor, samples, mixed_blocks
        FROM {HISTORY} WHERE protocol = ? AND chain_id = ? AND market = ? AND bucket_start >= ?
        ORDER BY bucket_start
        """,
        protocol,
        chain_id,
        market,
        since if since is not None else -(2**62),
    )


def market_changes(db: Path, protocol: str, chain_id: int, market: str, since: int | None = None) -> pl.DataFrame:
    """The governance changes read for one market from `since` (a timestamp; None: all), one row per snapshot that
    read some, with what changed in words: the marks on its charts over time."""
    if missing_relations(db, (CHANGES,)):
        return pl.DataFrame()
    frame = query(
        db,
        f"""
        SELECT changed_by_time, changed_by_block, item_kind, item, symbol, parameter, change, unit, old_value,
               new_value, old_amount, new_amount
        FROM {CHANGES}
        WHERE protocol = ? AND chain_id = ? AND market = ? AND epoch(changed_by_time) >= ?
        ORDER BY changed_by_block, item_kind, symbol, parameter
        """,
        protocol,
        chain_id,
        market,
        since if since is not None else -(2**62),
    )
    return frame if frame.is_empty() else naive_utc(governance.marks(frame), "changed_by_time")


def _over_time(db: Path) -> None:
    """A chosen market's collateral, debt, bad debt and liquidatable wallets in every bucket of the health history."""
    if missing_relations(db, (HISTORY,)):
        return
    markets = every_market(db).filter(pl.col("wallets") > 0)
    if markets.is_empty():
        return
    st.subheader("A market over time")
    keys = list(markets.select("protocol_id", "chain_id", "market").iter_rows())
    names = dict(zip(keys, markets["market_label"], strict=True))
    latest = dict(zip(keys, markets["block_timestamp"], strict=True))
    left, right = st.columns([3, 1])
    chosen = left.selectbox("Market", keys, format_func=names.__getitem__, key="markets_over_time")
    reach = right.selectbox(
        "Range", list(HISTORY_RANGES), index=list(HISTORY_RANGES).index(DEFAULT_RANGE), key="markets_over_time_range"
    )
    if chosen is None:
        return
    days = HISTORY_RANGES[reach]
    since = None if days is None or latest[chosen] is None else int(latest[chosen]) - days * 86_400
    span = "every stored bucket" if days is None else f"the {reach} up to the market's latest score"
    protocol, chain_id, market = chosen
    history = market_history(db, protocol, chain_id, market, since=since)
    if history.height <= 1:
        st.caption(
            f"One bucket of health history for this market ({span}): every `chainrisk run` and `chainrisk credit "
            "history` adds samples, and this chart draws them once there are two hours' worth."
        )
        return
    mixed = int(history["mixed_blocks"].sum())
    st.caption(
        f"{history.height:,} buckets of the health history ({span}; an hour each, a day beyond the hourly window): "
        "each point sums every wallet's last sample in the bucket, in USD at that sample's oracle prices; a wallet "
        "liquidatable at some sample but not at the last one (a dip that recovered) is in the shaded area only."
        + (
            f" In {mixed:,} bucket{'' if mixed == 1 else 's'} the wallets' last samples are not all of one block "
            "(a wallet left the market, or was sampled alone, within the hour): those sums add figures of different "
            "blocks."
            if mixed
            else ""
        )
    )
    frame = naive_utc(history, "bucket_time", "block_time")
    marks = market_changes(db, protocol, chain_id, market, since=since)
    if not marks.is_empty():
        st.caption(
            f"Dashed lines: the {marks.height:,} snapshot{'' if marks.height == 1 else 's'} that read governance's "
            f"changes to this market's parameters ({int(marks['changes'].sum()):,} in all; what changed in their "
            "tooltip, every one in the table below)."
        )
    tooltip = [
        alt.Tooltip("bucket_time:T", format="%Y-%m-%d %H:%M", title="bucket (UTC)"),
        alt.Tooltip("block_number:Q", format="d", title="last block"),
    ]
    x = alt.X("bucket_time:T", title="time (UTC)")
    left, right = st.columns(2)
    money = frame.unpivot(index=["bucket_time", "block_number"], on=list(HISTORY_USD), variable_name="series")
    money = money.with_columns(pl.col("series").replace(HISTORY_USD))
    lines = (
        alt.Chart(money)
        .mark_line(point=frame.height <= POINTS_UP_TO)
        .encode(
            x=x,
            y=alt.Y("value:Q", title="USD", axis=alt.Axis(format="$,.0f")),
            color=series_colour("series:N", len(HISTORY_USD), None)
            .sort(list(HISTORY_USD.values()))
            .legend(orient="bottom"),
            tooltip=[*tooltip, "series", alt.Tooltip("value:Q", format="$,.2f", title="USD")],
        )
    )
    left.altair_chart(lines + governance.rules(marks) if not marks.is_empty() else lines, width="stretch")
    # Liquidatable at some sample as an area, at the last sample as a line over it: often the same, and a line would
    # hide the other.
    counts = frame.select(
        "bucket_time",
        "block_number",
        pl.col("liquidatable_wallets").alias("last"),
        pl.col("wallets_liquidatable_in_bucket").alias("any"),
        "min_health_factor",
        "lowest_health_factor",
    )
    count_tooltip = [
        *tooltip,
        alt.Tooltip("last:Q", format="d", title="liquidatable at the last sample"),
        alt.Tooltip("any:Q", format="d", title="liquidatable at some sample"),
        alt.Tooltip("min_health_factor:Q", format=".4f", title="weakest HF, last sample"),
        alt.Tooltip("lowest_health_factor:Q", format=".4f", title="lowest HF of any sample"),
    ]
    base = alt.Chart(counts).encode(x=x, tooltip=count_tooltip)
    some = base.mark_area(opacity=0.3, interpolate="step-after", color="#d62728").encode(
        y=alt.Y("any:Q", title="liquidatable wallets", axis=alt.Axis(format="d", tickMinStep=1))
    )
    last = base.mark_line(interpolate="step-after", color="#d62728").encode(y="last:Q")
    right.altair_chart(some + last + governance.rules(marks) if not marks.is_empty() else some + last, width="stretch")
    right.caption("Line: liquidatable at the bucket's last sample; shaded: at some sample of the bucket.")


POOLS = "mart_lending_pools"
#: Pools drawn on the limits chart: those closest to a limit.
CHART_POOLS = 12
#: Pool kinds as the page words them where the view's word is not enough (a Comet's base is the pool it lends).
POOL_KINDS = {"base": "base (lent)"}


def lending_pools(db: Path) -> pl.DataFrame:
    """Every pool a market lends from or caps, across protocols, closest to a limit first."""
    if missing_relations(db, (POOLS,)):
        return pl.DataFrame()
    frame = query(
        db,
        f"""
        SELECT market_label, symbol, pool_kind, nearest_limit, nearest_limit_pct, utilization_pct,
               supply_cap_used_pct, debt_cap_used_pct, supplied_usd, debt_usd, supplied_tokens, debt_tokens,
               supply_cap_tokens, supply_room_tokens, debt_cap_tokens, debt_room_tokens, protocol, chain_id,
               block_number, market, pool
        FROM {POOLS} ORDER BY nearest_limit_pct DESC NULLS LAST, debt_usd DESC NULLS LAST, market_label, symbol
        """,
    )
    return frame.with_columns(
        market_names(frame, "market_label"),
        pl.col("protocol").replace(PROTOCOL_NAMES),
        pl.col("pool_kind").replace(POOL_KINDS),
    )


def _limits(db: Path) -> None:
    frame = lending_pools(db)
    if frame.is_empty():
        return
    st.subheader("Pools closest to their limits")
    st.caption(
        "Every pool a market lends from or caps, across protocols: its utilization (debt over supply; near 100 % its "
        "lenders cannot withdraw) and the share of its supply and debt caps in use (at 100 % the protocol refuses "
        "the next supply or borrow: Aave's caps, a Comet collateral's supply cap, a Maker ilk's debt ceiling). The "
        "`utilization_above` and `cap_used_above` alert rules watch the same figures."
    )
    closest = frame.drop_nulls("nearest_limit_pct").head(CHART_POOLS)
    if not closest.is_empty():
        # One bar per pool: the figure of its nearest limit, coloured by which limit that is.
        shown = closest.select(
            (pl.col("symbol").fill_null("?") + " " + pl.col("pool_kind") + " · " + pl.col("market_label")).alias(
                "pool"
            ),
            pl.col("nearest_limit").alias("limit"),
            pl.col("nearest_limit_pct").alias("limit_used_pct"),
        )
        title = "share of the nearest limit used (%)"
        _share_bars(shown, ("pool", "limit", "limit_used_pct"), title, legend="nearest limit", sort=None, offset=False)
    config = {
        "market_label": st.column_config.TextColumn("market", width="large"),
        "symbol": st.column_config.TextColumn("pool", help="Its token; its kind (reserve, market, ...) below"),
        "pool_kind": "kind",
        "nearest_limit": "nearest limit",
        "nearest_limit_pct": percent_column("nearest limit (%)", "The highest of the three figures"),
        "utilization_pct": percent_column("utilization (%)", "Borrowed over supplied"),
        "supply_cap_used_pct": percent_column("supply cap used (%)"),
        "debt_cap_used_pct": percent_column("debt cap used (%)", "Aave's borrow cap, a Maker ilk's debt ceiling"),
        "supplied_usd": usd_column("supplied (USD)"),
        "debt_usd": usd_column("borrowed (USD)"),
        "supplied_tokens": _number("supplied", "tokens"),
        "debt_tokens": _number("borrowed", "tokens"),
        "supply_cap_tokens": _number("supply cap", "tokens"),
        "debt_cap_tokens": _number("debt cap", "tokens"),
        "supply_room_tokens": _number("supply room", "tokens", "The most a supply may add now (below 0: over the cap)"),
        "debt_room_tokens": _number("debt room", "tokens", "The most a borrow may add now (below 0: over the cap)"),
        "block_number": count_column("snapshot block"),
        "market": "market id",
        "pool": "pool id (asset, or the market itself)",
    }
    key_table(
        frame,
        "markets_pools",
        ("market_label", "symbol", "utilization_pct", "supply_cap_used_pct", "debt_cap_used_pct", "debt_usd"),
        config,
        "every pool",
    )


#: A pool's point on its rate curve: its utilization and its borrow APR now (percent), as the page's frames name them.
RATE_NOW = ("utilization_pct", "variable_borrow_apr_pct")
#: Changes the page's table lists, the newest first (the mart keeps every one).
CHANGES_SHOWN = 1000


def parameter_changes(db: Path) -> pl.DataFrame:
    """The newest CHANGES_SHOWN parameter changes (with listings and removals), each value in its unit as text."""
    if missing_relations(db, (CHANGES,)):
        return pl.DataFrame()
    frame = query(
        db,
        f"""
        SELECT changed_by_time, market_label, item_kind, symbol, parameter, change, unit, old_value, new_value,
               old_amount, new_amount, change_amount, changed_after_time, changed_after_block, changed_by_block,
               changed_at_block, changed_in_tx, protocol, chain_id, market, item
        FROM {CHANGES}
        ORDER BY changed_by_block DESC, protocol, market_label, item_kind, symbol, parameter
        LIMIT {CHANGES_SHOWN}
        """,
    )
    if frame.is_empty():
        return frame
    # A listing or removal reads as such in the "to" column (it has no parameter and no values).
    shown = [governance.values(row) for row in frame.iter_rows(named=True)]
    shown_frame = frame.with_columns(
        market_names(frame, "market_label"),
        pl.Series("was", [s[0] for s in shown], pl.String),
        pl.Series("now", [s[1] for s in shown], pl.String),
        (pl.col("item_kind") + " " + pl.col("symbol").fill_null(pl.col("item"))).alias("item_name"),
        pl.col("change").replace(CHANGE_WORDS),
        pl.col("protocol").replace(PROTOCOL_NAMES),
    )
    return naive_utc(shown_frame, "changed_by_time", "changed_after_time")


def _parameter_changes(db: Path) -> None:
    frame = parameter_changes(db)
    if frame.is_empty():
        return
    st.subheader("Risk parameters governance changed")
    st.caption(
        "Each setting a snapshot read with a value the snapshot before it did not: Aave reserves (with their oracle "
        "sources and rate curves) and e-mode categories, Comet collaterals and configuration, Maker ilks and their "
        "auctions, Morpho Blue fees; and each item listed or no longer read since a market's first snapshot. The "
        "change happened between the two snapshots; where chainrisk read the log of it (Aave's configurator and "
        "oracle, Morpho's SetFee and CreateMarket, a Comet's upgrade and pause, Maker's files) its block and "
        "transaction are under 'Every figure'. Values in the protocol's "
        "units read as percent, tokens or dai, the exact integers in `mart_parameter_changes`. The "
        "`parameter_changed` alert rule sends each one."
    )
    counts = frame.group_by("change").len()
    count = dict(zip(counts["change"].to_list(), counts["len"].to_list(), strict=True))
    columns = st.columns(3)
    columns[0].metric("Settings changed", f"{count.get('changed', 0):,}")
    columns[1].metric("Items listed", f"{count.get('listed', 0):,}")
    columns[2].metric("Items no longer read", f"{count.get(CHANGE_WORDS['gone'], 0):,}")
    if frame.height == CHANGES_SHOWN:
        st.caption(f"The newest {CHANGES_SHOWN:,} shown; every one is in `{CHANGES}`.")
    config = {
        "changed_by_time": st.column_config.DatetimeColumn(
            "read at (UTC)", help="The snapshot that first read the new value"
        ),
        "market_label": st.column_config.TextColumn("market", width="medium"),
        "item_name": st.column_config.TextColumn("item", help="What the setting belongs to"),
        "parameter": "parameter",
        "was": st.column_config.TextColumn(
            "from", width="medium", help="In percent, tokens, dai or USD; flags and addresses as read"
        ),
        "now": st.column_config.TextColumn("to", width="medium", help="Or: listed, no longer read"),
        "change": "change",
        "changed_after_time": st.column_config.DatetimeColumn(
            "changed after (UTC)", help="The snapshot before: the change happened after it"
        ),
        "old_value": "from (exact)",
        "new_value": "to (exact)",
        "old_amount": st.column_config.NumberColumn("from (amount)", format="localized"),
        "new_amount": st.column_config.NumberColumn("to (amount)", format="localized"),
        "change_amount": st.column_config.NumberColumn("change (amount)", format="localized"),
        "unit": "amounts in",
        "changed_after_block": count_column("changed after block"),
        "changed_by_block": count_column("read at block"),
        "changed_at_block": count_column("logged at block", "The block of the log saying so, where one does"),
        "changed_in_tx": st.column_config.TextColumn("transaction", help="The transaction that made the change"),
        "item_kind": None,
        "symbol": None,
        "item": "item id (asset, category, ilk, market)",
        "market": "market id",
    }
    key_table(
        frame,
        "markets_parameter_changes",
        ("changed_by_time", "market_label", "item_name", "parameter", "was", "now"),
        config,
        "every change",
    )


def _share_bars(
    frame: pl.DataFrame, bar: tuple[str, str, str], title: str, *, legend: str | None, sort: str | None, offset: bool
) -> None:
    """Horizontal bars of a share in percent: `bar` names the frame's label, kind and percent columns; one bar per label
    (one per label and kind, side by side, with `offset`), coloured by kind, on a 0-100 % axis, the full mark dashed."""
    label, kind, value = bar
    encoding: dict[str, Any] = {"yOffset": f"{kind}:N"} if offset else {}
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"{value}:Q", title=title, scale=alt.Scale(domain=[0, 100], clamp=True)),
            y=alt.Y(f"{label}:N", title=None, sort=sort, axis=alt.Axis(labelLimit=320)),
            color=alt.Color(f"{kind}:N", title=legend),
            tooltip=[label, kind, alt.Tooltip(f"{value}:Q", title="used (%)", format=".2f")],
            **encoding,
        )
    )
    full = alt.Chart(pl.DataFrame({"x": [100.0]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
    st.altair_chart(bars + full, width="stretch")


AAVE = ("stg_aave_v3_reserves", "stg_market_labels")
#: The cap-usage chart is drawn when some reserve uses at least this share of a cap (below, the bars are invisible).
CAP_CHART_FROM_PCT = 1.0


def aave_reserves(db: Path) -> pl.DataFrame:
    """Each Aave V3 reserve at its market's latest snapshot: totals in whole tokens, utilization and cap usage."""
    if missing_relations(db, AAVE):
        return pl.DataFrame()
    return query(
        db,
        """
        SELECT coalesce(l.market_label, r.market) AS market_label, r.symbol, r.chain_id,
               r.total_supplied_tokens AS supplied_tokens, r.total_debt_tokens AS debt_tokens,
               r.total_supplied_usd, r.total_debt_usd, r.utilization_pct,
               r.supply_cap_tokens, r.supply_cap_used_pct, r.borrow_cap_tokens, r.borrow_cap_used_pct,
               r.supply_cap_headroom_tokens AS supply_headroom_tokens,
               r.borrow_cap_headroom_tokens AS borrow_headroom_tokens,
               r.supply_apr_pct, r.variable_borrow_apr_pct, r.reserve_factor_bps / 100 AS reserve_factor_pct,
               r.frozen, r.paused, r.block_number, r.asset, r.market, r.interest_rate_strategy,
               r.optimal_usage_ratio, r.base_variable_borrow_rate, r.variable_rate_slope1, r.variable_rate_slope2
        FROM stg_aave_v3_reserves AS r
        LEFT JOIN stg_market_labels AS l
            ON l.protocol = 'aave-v3' AND l.chain_id = r.chain_id AND l.market = r.market
        WHERE r.is_latest
        ORDER BY r.total_debt_usd DESC NULLS LAST, market_label, r.symbol
        """,
    )


def _aave_curve(db: Path, frame: pl.DataFrame) -> None:
    """The chosen reserve's interest rate curve, where the reserve is on it now and (dashed) the curve before
    governance last moved it."""
    pools = frame.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in rate_curves.AAVE_CURVE))
    pools = pools.with_columns((pl.col("symbol") + " · " + pl.col("market_label")).alias("name"))

    def caption(reserve: dict[str, Any]) -> str:
        optimum = int(reserve["optimal_usage_ratio"]) / RAY * 100
        return (
            f"The variable borrow APR its interest rate strategy ({reserve['interest_rate_strategy']}) charges at each "
            f"utilization, by the pool's own formula (slope 1 up to the optimal {optimum:.4g} %, slope 2 beyond); the "
            "point: the rate the pool charges now, at the utilization this page counts (borrowed over supplied; the "
            "pool divides by its cash plus debt). Dashed, where governance changed the curve: the curve before its "
            "latest change."
        )

    curves = partial(rate_curves.aave_curves, db)
    rate_curves.show(pools, "markets_aave_curve", "Interest rate curve of", curves, RATE_NOW, caption)


def _aave(db: Path) -> bool:
    frame = aave_reserves(db)
    if frame.is_empty():
        return False
    st.subheader("Aave V3: reserves and caps")
    st.caption(
        "What each reserve's aToken and debt tokens hold at the latest snapshot (exact totals, shown in whole tokens), "
        "its utilization (debt over supply) and how much of its supply and borrow caps is used, as the pool's own "
        "checks count it (the supply cap also holds the treasury's accrued share); headroom: the most a supply or "
        "borrow may add now."
    )
    capped = frame.filter(pl.col("supply_cap_used_pct").is_not_null() | pl.col("borrow_cap_used_pct").is_not_null())
    highest = capped.select(pl.max_horizontal(pl.col("supply_cap_used_pct", "borrow_cap_used_pct").max())).item()
    if not capped.is_empty() and (highest is None or highest < CAP_CHART_FROM_PCT):
        st.caption(f"No reserve uses {CAP_CHART_FROM_PCT:g} % or more of a cap: nothing to chart.")
    elif not capped.is_empty():
        long = capped.select(
            (pl.col("symbol") + " · " + pl.col("market_label")).alias("reserve"),
            pl.col("supply_cap_used_pct").alias("supply cap"),
            pl.col("borrow_cap_used_pct").alias("borrow cap"),
        ).unpivot(index="reserve", variable_name="cap", value_name="used_pct")
        bars = ("reserve", "cap", "used_pct")
        _share_bars(long.drop_nulls("used_pct"), bars, "share of the cap used (%)", legend=None, sort="-x", offset=True)
    config = {
        "market_label": st.column_config.TextColumn("market", width="medium"),
        "symbol": "reserve",
        "supplied_tokens": _number("supplied", "tokens", "The aToken's totalSupply()"),
        "debt_tokens": _number("borrowed", "tokens", "The debt tokens' totalSupply() (variable and stable)"),
        "total_supplied_usd": usd_column("supplied (USD)"),
        "total_debt_usd": usd_column("borrowed (USD)"),
        "utilization_pct": percent_column("utilization (%)", "Borrowed over supplied"),
        "supply_cap_tokens": _number("supply cap", "tokens", "0: no cap"),
        "supply_cap_used_pct": percent_column("supply cap used (%)"),
        "borrow_cap_tokens": _number("borrow cap", "tokens", "0: no cap"),
        "borrow_cap_used_pct": percent_column("borrow cap used (%)"),
        "supply_headroom_tokens": _number("supply headroom", "tokens", "The most a supply may add now"),
        "borrow_headroom_tokens": _number("borrow headroom", "tokens", "The most a borrow may add now"),
        "supply_apr_pct": percent_column("supply APR (%)"),
        "variable_borrow_apr_pct": percent_column("borrow APR (%)"),
        "reserve_factor_pct": percent_column("reserve factor (%)"),
        "block_number": count_column("snapshot block"),
        "market": "market (PoolAddressesProvider)",
    }
    key_table(
        frame,
        "markets_aave",
        (
            "market_label",
            "symbol",
            "total_supplied_usd",
            "total_debt_usd",
            "utilization_pct",
            "supply_cap_used_pct",
            "borrow_cap_used_pct",
        ),
        config,
        "these reserves",
    )
    _aave_curve(db, frame)
    return True


def _compound(db: Path) -> bool:
    frame = query(db, f"SELECT * FROM {COMPOUND} ORDER BY chain_id, market_label")
    if frame.is_empty():
        return False
    st.subheader("Compound V3: reserves")
    st.caption(
        "Comet absorbs an underwater account whole and charges what its collateral does not cover to the reserves. "
        "Shock: every non-stable price about 30 % lower (the liquidation curve's first step past 30 %; its bad debt "
        "there). Amounts in the market's base token unless marked USD."
    )
    config = {
        "market_label": st.column_config.TextColumn("market", width="medium"),
        "base_symbol": "base",
        "reserves_tokens": _number("reserves", "base", "getReserves()"),
        "target_reserves_tokens": _number("target", "base", "targetReserves(): above it, buyCollateral stops"),
        "reserves_to_target_pct": percent_column("of target (%)"),
        "reserves_usd": usd_column("reserves (USD)"),
        "liquidatable_accounts": st.column_config.NumberColumn("absorbable now", help="isLiquidatable accounts"),
        "absorb_shortfall_tokens": _number(
            "absorb loss", "base", "Debt the absorbable accounts' collateral does not cover"
        ),
        "reserves_after_absorb_tokens": _number(
            "reserves after absorb", "base", "Before the seized collateral is sold back (buyCollateral)"
        ),
        "shock_drop_pct": percent_column("shock: drop (%)"),
        "shock_bad_debt_usd": usd_column(
            "shock bad debt (USD)", "Bad debt with every non-stable price down by the shock drop"
        ),
        "reserves_cover_shock": st.column_config.CheckboxColumn("reserves cover it"),
        "first_uncovered_drop_pct": percent_column(
            "runs out at drop (%)",
            "Smallest drop of every non-stable price whose bad debt exceeds the reserves (—: not up to a 90 % drop)",
        ),
        "utilization_pct": percent_column("utilization (%)"),
        "collateral_held_usd": usd_column(
            "collateral held (USD)",
            "Collateral absorbs took that the Comet has not sold yet: it becomes base reserves only when bought, at "
            "the store front's discount and while the reserves are under target (Liquidations page: store front)",
        ),
        "usd_route": st.column_config.TextColumn(
            "USD from",
            help="The token whose USD price converts Comet's prices to USD, and the contract it was read from; "
            "empty: no USD price",
        ),
        "market": "Comet",
    }
    key_table(
        frame,
        "markets_compound",
        (
            "market_label",
            "reserves_tokens",
            "reserves_to_target_pct",
            "liquidatable_accounts",
            "absorb_shortfall_tokens",
            "shock_bad_debt_usd",
            "first_uncovered_drop_pct",
        ),
        config,
        "these Comets",
    )
    _comet_curve(db)
    return True


def comet_models(db: Path) -> pl.DataFrame:
    """Each Comet at its latest snapshot with its borrow rate model (exact), utilization and borrow APR now."""
    if missing_relations(db, ("stg_compound_v3_markets", "stg_market_labels")):
        return pl.DataFrame()
    columns = ", ".join(f"m.{c}" for c in rate_curves.COMET_CURVE)
    frame = query(
        db,
        f"""
        SELECT coalesce(l.market_label, m.market) AS market_label, m.chain_id, m.market, m.utilization_pct,
               m.borrow_apr_pct, {columns}
        FROM stg_compound_v3_markets AS m
        LEFT JOIN stg_market_labels AS l
          ON l.protocol = 'compound-v3' AND l.chain_id = m.chain_id AND l.market = m.market
        WHERE m.is_latest
        ORDER BY m.borrow_amount DESC NULLS LAST, m.chain_id, m.market
        """,
    )
    return frame.with_columns(pl.col("market_label").alias("name"))


def _comet_curve(db: Path) -> None:
    """The chosen Comet's borrow rate curve, where it is now and (dashed) the curve before governance last moved it."""

    def caption(comet: dict[str, Any]) -> str:
        kink = int(comet["borrow_kink"]) / 1e16
        return (
            "The borrow APR the Comet's rate model charges at each utilization (Comet.getBorrowRate: base plus the "
            f"low slope up to its kink at {kink:.4g} %, the high slope beyond; per second, times a year), and the "
            "Comet's point now (getUtilization). Dashed, where governance changed the model (an upgrade): the "
            "model before its latest change."
        )

    curves = partial(rate_curves.comet_curves, db)
    now = ("utilization_pct", "borrow_apr_pct")
    rate_curves.show(comet_models(db), "markets_compound_curve", "Borrow rate curve of", curves, now, caption)


def _maker(db: Path) -> bool:
    frame = query(db, f"SELECT * FROM {MAKER} ORDER BY chain_id, market")
    if frame.is_empty():
        return False
    st.subheader("Maker/Sky: ilk limits")
    st.caption(
        "Debt ceiling used: Art x rate against line. Liquidation room: how much auction debt (tab = debt x chop) "
        "Dog may still start, per ilk (hole - dirt) and Dog-wide (Hole - Dirt); an unsafe vault beyond it waits. "
        "Amounts in dai."
    )
    config = {
        "market_label": st.column_config.TextColumn("ilk", width="medium", help="With its liquidation ratio (LR)"),
        "debt_dai": _number("debt", "dai"),
        "line_dai": _number("ceiling", "dai", "line"),
        "line_used_pct": st.column_config.NumberColumn("ceiling used (%)", format="%.2f%%"),
        "dust_dai": _number("dust", "dai", "The smallest debt a vault may carry"),
        "unsafe_urns": st.column_config.NumberColumn("unsafe vaults"),
        "unsafe_tab_dai": _number("their tab", "dai", "Debt x chop: what their auctions need room for"),
        "liquidation_room_dai": _number("room left", "dai", "The smaller of ilk and Dog-wide room"),
        "room_covers_unsafe": st.column_config.CheckboxColumn("room covers them"),
        "hole_room_dai": _number("ilk room", "dai", "hole - dirt"),
        "global_room_dai": _number("Dog room", "dai", "Hole - Dirt"),
        "bad_debt_dai": _number("bad debt", "dai", "Debt unsafe vaults' collateral cannot cover"),
        "penalty_pct": percent_column("penalty (%)", "chop - 1"),
        "fee_per_year_pct": percent_column("stability fee (%/year)"),
        "price_usd": usd_column("price (USD)"),
        "price_next_usd": usd_column("next price (USD)", "The OSM's queued price, current within the hour"),
        "urns": st.column_config.NumberColumn("vaults"),
    }
    key_table(
        frame,
        "markets_maker",
        (
            "market_label",
            "debt_dai",
            "line_used_pct",
            "dust_dai",
            "unsafe_urns",
            "unsafe_tab_dai",
            "liquidation_room_dai",
            "room_covers_unsafe",
        ),
        config,
        "these ilks",
    )
    return True


def _liquity(db: Path) -> bool:
    frame = query(db, f"SELECT * FROM {LIQUITY} ORDER BY chain_id, market")
    if frame.is_empty():
        return False
    st.subheader("Liquity V1: system")
    st.caption(
        "Recovery Mode starts when the total collateral ratio (TCR) falls below the critical ratio (CCR, 150 %); "
        "then every trove under it may be liquidated. The Stability Pool absorbs liquidated debt first; what it "
        "cannot cover is redistributed to the other troves. Amounts in LUSD unless marked."
    )
    config = {
        "market_label": st.column_config.TextColumn("system", width="medium", help="With its MCR"),
        "tcr_pct": percent_column("TCR (%)"),
        "recovery_mode": st.column_config.CheckboxColumn("Recovery Mode", help="TCR under CCR now"),
        "price_usd": usd_column("ETH price (USD)"),
        "recovery_mode_price_usd": usd_column("Recovery Mode at (USD)", "The ETH price at which TCR = CCR"),
        "price_drop_to_recovery_pct": percent_column("ETH drop to RM (%)", "The ETH drop that starts Recovery Mode"),
        "stability_pool_lusd": _number("Stability Pool", "LUSD"),
        "liquidatable_troves": st.column_config.NumberColumn("liquidatable", help="Troves under MCR now"),
        "liquidatable_debt_lusd": _number("liquidatable debt", "LUSD"),
        "sp_cover_pct": percent_column("pool covers (%)", "Stability Pool ÷ liquidatable debt"),
        "below_ccr_troves": st.column_config.NumberColumn(
            "under CCR", help="Troves Recovery Mode would make liquidatable"
        ),
        "below_ccr_debt_lusd": _number("debt under CCR", "LUSD", "Liquidatable if Recovery Mode starts"),
        "sp_cover_below_ccr_pct": percent_column(
            "covers in RM (%)", "Stability Pool ÷ the debt of the troves under CCR: its cover in Recovery Mode"
        ),
        "batch_debt_to_redistribute_lusd": _number(
            "redistributed now", "LUSD", "Debt a batch liquidation now would pass to the other troves"
        ),
        "system_debt_lusd": _number("system debt", "LUSD"),
        "system_coll_eth": _number("system collateral", "ETH"),
        "market": "TroveManager",
    }
    key_table(
        frame,
        "markets_liquity",
        (
            "market_label",
            "tcr_pct",
            "recovery_mode",
            "price_drop_to_recovery_pct",
            "stability_pool_lusd",
            "liquidatable_troves",
            "sp_cover_pct",
            "sp_cover_below_ccr_pct",
        ),
        config,
        "these systems",
    )
    return True


def _apr_pct(rate: int) -> float:
    """A per-second rate (WAD) as percent a year, as stg_morpho_blue_markets gives borrow_apr_pct."""
    return rate / 1e18 * YEAR * 100


def _totals(supply: int, borrow: int, last_update: int) -> MarketState:
    """A market's stored totals as its IRM reads them (shares and fee: the rate reads neither)."""
    return MarketState(supply, 0, borrow, 0, last_update, 0)


def _apr_ahead(target: int, supply: int, borrow: int, last_update: int, timestamp: int, days: int) -> float:
    """The APR an AdaptiveCurveIrm holding `target` charges `days` after `timestamp`, the market's stored totals
    (last updated at `last_update`) held."""
    return _apr_pct(rate_at(target, _totals(supply, borrow, last_update), timestamp + days * 86_400))


def _projected(values: tuple[Any, ...]) -> tuple[int, int, int, int, int] | None:
    """A market's rate at target, supply and borrow totals, last update and snapshot time as exact integers (the
    reader gives HUGEINT as int or Decimal); None when one is unknown (NULL rate at target: not an AdaptiveCurveIrm)."""
    if any(v is None for v in values):
        return None
    target, supply, borrow, last_update, timestamp = (int(v) for v in values)
    return target, supply, borrow, last_update, timestamp


def adapted_rate_at_target(target: int, supply: int, borrow: int, last_update: int, timestamp: int) -> int:
    """An AdaptiveCurveIrm's rate at target adapted from the market's last update to `timestamp` (irm), the market's
    stored totals held: the curve the market is on at that time."""
    return adaptive_curve_rate(target, _totals(supply, borrow, last_update), timestamp)[1]


def morpho_rates(db: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each Morpho Blue market at its latest snapshot with, under an AdaptiveCurveIrm (where chainrisk's port of it
    reproduced the rate read: `rate_at_target` stored), the borrow APR its IRM charges RATE_DAYS ahead if the market's
    utilization stays (irm.rate_at, exact to the contract for that utilization); and the chart's long frame of those
    rates over CHART_DAYS for the CHART_MARKETS largest by borrows whose rate moves."""
    frame = query(
        db,
        """
        SELECT coalesce(l.market_label, m.market) AS market_label, m.chain_id, m.market, m.utilization_pct,
               m.borrow_apr_pct, m.rate_at_target_apr_pct, m.borrow_usd, m.supply_usd, m.usd_route, m.rate_at_target,
               m.total_supply_assets, m.total_borrow_assets, m.last_update, s.block_timestamp, m.block_number, m.irm
        FROM stg_morpho_blue_markets AS m
        JOIN snapshot_blocks AS s
          ON s.protocol = 'morpho-blue' AND s.chain_id = m.chain_id AND s.source = m.source
         AND s.block_number = m.block_number
        LEFT JOIN stg_market_labels AS l
          ON l.protocol = 'morpho-blue' AND l.chain_id = m.chain_id AND l.market = m.market
        WHERE m.is_latest
        ORDER BY m.borrow_usd DESC NULLS LAST, m.chain_id, m.market
        """,
    )
    exact = ("rate_at_target", "total_supply_assets", "total_borrow_assets", "last_update", "block_timestamp")
    inputs = [_projected(values) for values in frame.select(exact).iter_rows()]

    def ahead(days: int, rows: list[int]) -> pl.Series:
        found = []
        for i in rows:
            known = inputs[i]
            found.append(None if known is None else _apr_ahead(*known, days))
        return pl.Series(f"apr_in_{days}d_pct", found, dtype=pl.Float64)

    everyone = list(range(frame.height))
    rates = frame.with_columns(ahead(days, everyone) for days in RATE_DAYS)
    # The chart: the largest markets (by borrows, the frame's order) whose rate moves, each day of the next 30 (only
    # those: a chain holds thousands of markets, and each projection is exact integer maths in Python).
    now = ahead(0, everyone)
    moving = [i for i in everyone if now[i] is not None and now[i] != rates["apr_in_30d_pct"][i]][:CHART_MARKETS]
    long = pl.concat(
        [
            pl.DataFrame(
                {"market_label": frame["market_label"].gather(moving), "day": [days] * len(moving)},
                schema={"market_label": pl.String, "day": pl.Int64},
            ).with_columns(ahead(days, moving).alias("apr_pct"))
            for days in CHART_DAYS
        ]
    )
    # For the rate curve: the IRM's rate at target adapted to the snapshot's time (the curve the market is on then),
    # exact, and the market's point on it: the stored totals' utilization (what the IRM reads) and the rate there.
    adapted = [None if known is None else adapted_rate_at_target(*known) for known in inputs]
    stored = [None if known is None else (w_div_down(known[2], known[1]) if known[1] else 0) / 1e16 for known in inputs]
    rates = rates.drop(exact).with_columns(
        pl.Series("rate_at_target_now", adapted, dtype=pl.Int128),
        pl.Series("curve_utilization_pct", stored, dtype=pl.Float64),
        now.alias("apr_on_curve_pct"),
    )
    return rates, long


def _morpho(db: Path) -> bool:
    if missing_relations(db, MORPHO):
        return False
    rates, paths = morpho_rates(db)
    if rates.is_empty():
        return False
    # The rates ahead only where some market runs an AdaptiveCurveIrm: for the others they would be columns of None.
    adaptive = bool(rates["rate_at_target_apr_pct"].is_not_null().any())
    st.subheader("Morpho Blue: borrow rates")
    explained = "APRs: the per-second rate x 365 days."
    if adaptive:
        explained = (
            "Under Morpho's AdaptiveCurveIrm a market's rate at target (its rate at 90 % utilization) keeps adapting "
            "while utilization is off that target, at 50 a year times the normalised distance from it: at 100 % it "
            "doubles about every 5 days, at 95 % every 10, and at 0 % it halves about every 5 (morpho-blue-irm's "
            "ConstantsLib). The rates ahead are what the IRM would charge then if the market's utilization stayed "
            "where it is (any supply, borrow or repay moves it); None where a market's IRM is another one. " + explained
        )
    else:
        explained = (
            "As read at the snapshot. None of these markets runs Morpho's AdaptiveCurveIrm, the IRM whose rate moves "
            "with time alone and the one whose rates ahead chainrisk projects. " + explained
        )
    st.caption(explained)
    config = {
        "market_label": st.column_config.TextColumn("market", width="medium"),
        "utilization_pct": percent_column("utilization (%)"),
        "borrow_apr_pct": st.column_config.NumberColumn("APR now (%)", format="%.2f%%", help="borrowRateView"),
        "rate_at_target_apr_pct": st.column_config.NumberColumn(
            "at target (%)", format="%.2f%%", help="The IRM's rateAtTarget, a year of it: its rate at 90 % utilization"
        ),
        **{
            f"apr_in_{days}d_pct": st.column_config.NumberColumn(
                f"in {days} d (%)", format="%.2f%%", help=f"The APR in {days} days if utilization stays where it is"
            )
            for days in RATE_DAYS
        },
        "borrow_usd": usd_column("borrowed (USD)"),
        "supply_usd": usd_column("supplied (USD)"),
        "usd_route": st.column_config.TextColumn(
            "USD from",
            help="Where the market's USD price comes from: the loan token's own (a USD feed or the USD oracle, with "
            "the contract read), or the collateral's through the market's oracle; empty: no USD price",
        ),
        "block_number": count_column("block"),
        "market": "market id",
        "irm": "IRM",
    }
    ahead = ("rate_at_target_apr_pct", *(f"apr_in_{days}d_pct" for days in RATE_DAYS)) if adaptive else ()
    key_table(
        # The curve's inputs stay off the table (an Int128 no table takes; the point: the APR now's own figures).
        rates.drop("rate_at_target_now", "curve_utilization_pct", "apr_on_curve_pct"),
        "markets_morpho",
        (
            "market_label",
            "utilization_pct",
            "borrow_apr_pct",
            *ahead,
            "borrow_usd",
            *(() if adaptive else ("supply_usd",)),
        ),
        config,
        "these markets",
    )
    if not paths.is_empty():
        markets = paths["market_label"].n_unique()
        chart = (
            alt.Chart(paths)
            .mark_line()
            .encode(
                x=alt.X("day:Q", title="days ahead"),
                y=alt.Y("apr_pct:Q", title="borrow APR (%)"),
                color=series_colour("market_label:N", markets, title=None, long_labels=True),
                tooltip=["market_label", "day", alt.Tooltip("apr_pct:Q", title="APR (%)", format=".2f")],
            )
        )
        st.altair_chart(chart, width="stretch")
        st.caption(
            f"The {markets} largest markets by borrows whose rate moves, utilization held: the borrow APR over the "
            "next 30 days."
        )
    _morpho_curve(rates)
    return True


def _morpho_curve(rates: pl.DataFrame) -> None:
    """The chosen AdaptiveCurveIrm market's curve at its rate at target now, and where the market is on it."""
    pools = rates.filter(pl.col("rate_at_target_now").is_not_null()).with_columns(pl.col("market_label").alias("name"))

    def caption(market: dict[str, Any]) -> str:
        return (
            "The borrow APR the market's AdaptiveCurveIrm charges at each utilization at its rate at target now (the "
            "rate at 90 % utilization; a quarter of it at 0 %, four times it at 100 %; morpho-blue-irm's "
            "AdaptiveCurveIrm and ConstantsLib), and where the market is on it. The rate at target itself moves while "
            "utilization stays off 90 % (the rates ahead above); Morpho's governance sets no parameter of it."
        )

    rate_curves.show(
        pools,
        "markets_morpho_curve",
        "Rate curve of",
        rate_curves.morpho_curve,
        ("curve_utilization_pct", "apr_on_curve_pct"),
        caption,
    )
