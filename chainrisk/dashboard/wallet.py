"""Wallet page: one wallet's positions across protocols and markets, its health history (with the governance changes
to its markets and assets marked), its liquidations and a live what-if."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard import governance, liquidations
from chainrisk.dashboard.data import database_location, missing_relations, query, require
from chainrisk.dashboard.ui import (
    count_column,
    health_column,
    key_table,
    market_name,
    market_names,
    naive_utc,
    percent_column,
    series_colour,
    table,
    tokens_column,
    usd,
    usd_column,
)
from chainrisk.dashboard.whatif import AmountChange, apply_scenario, health_by_market, to_base_units
from chainrisk.errors import UserError
from chainrisk.scoring.health import price_fixed
from chainrisk.units import MARKET_KEY

VIEWS = (
    "stg_positions_latest",
    "stg_wallet_risk_latest",
    "mart_wallet_portfolio",
    "mart_at_risk_positions",
    "mart_wallet_health_history",
)
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
#: Price moves the what-if offers, in percent.
PRICE_CHANGE_MIN, PRICE_CHANGE_MAX = -90, 100
#: Borrowers offered in the picker, weakest first.
WEAKEST_OFFERED = 200
PositionKey = tuple[str, int, str, str]


def parse_address(text: str) -> str:
    """A wallet address typed in any case, lowercased as every table stores it."""
    address = text.strip()
    if not ADDRESS.fullmatch(address):
        raise UserError(f"{address!r} is not a wallet address: type 0x followed by 40 hex digits (any case)")
    return address.lower()


def weakest_wallets(db: Path, limit: int = WEAKEST_OFFERED) -> pl.DataFrame:
    return query(
        db,
        """
        SELECT wallet, worst_health_factor, debt_usd, protocols_text FROM mart_wallet_portfolio
        WHERE worst_health_factor IS NOT NULL ORDER BY worst_health_factor, wallet LIMIT ?
        """,
        limit,
    )


def wallet_positions(db: Path, wallet: str) -> pl.DataFrame:
    """The wallet's positions at each market's latest scored block: what the score job valued, exact amounts kept."""
    return query(
        db, "SELECT * FROM stg_positions_latest WHERE wallet = ? ORDER BY protocol, chain_id, market, symbol", wallet
    )


def wallet_health(db: Path, wallet: str) -> pl.DataFrame:
    """The stored health of the wallet in each market, latest block."""
    return query(
        db,
        f"""
        SELECT protocol, market_label, health_factor, liquidatable, collateral_usd, debt_usd, borrowing_power_usd,
               distance_to_liquidation * 100 AS distance_to_liquidation_pct, bad_debt_usd, chain_id, market
        FROM stg_wallet_risk_latest WHERE wallet = ? ORDER BY {", ".join(MARKET_KEY)}
        """,
        wallet,
    )


def liquidation_prices(db: Path, wallet: str) -> pl.DataFrame:
    return query(
        db,
        """
        SELECT protocol, market_label, symbol, price_usd, liquidation_price_usd, liquidation_price_change_pct,
               liquidated_when_price
        FROM mart_at_risk_positions WHERE wallet = ? AND liquidation_price_usd IS NOT NULL
        ORDER BY abs(liquidation_price_change_pct), protocol, market, symbol
        """,
        wallet,
    )


def health_history(db: Path, wallet: str) -> pl.DataFrame:
    return query(
        db,
        """
        SELECT protocol, chain_id, market, market_label, block_number, block_time, health_factor,
               health_factor_min, health_factor_max, samples, bucket_seconds
        FROM mart_wallet_health_history WHERE wallet = ? AND health_factor_min IS NOT NULL
        ORDER BY protocol, chain_id, market, block_number
        """,
        wallet,
    )


def _choose_wallet(db: Path) -> str | None:
    weakest = weakest_wallets(db)
    names = {
        w: f"{w[:8]}…{w[-6:]} · HF {hf:.4f} · {usd(debt)} debt · {protocols}"
        for w, hf, debt, protocols in weakest.iter_rows()
    }
    left, right = st.columns(2)
    # `?wallet=` fills the address, so a link (the at-risk table has one per row) opens a wallet directly.
    typed = left.text_input(
        "Wallet address", value=st.query_params.get("wallet", ""), placeholder="0x… (any case)", key="wallet_address"
    )
    picked = right.selectbox(
        "or one of the weakest borrowers", list(names), format_func=names.__getitem__, key="wallet_weakest"
    )
    if typed.strip():
        try:
            return parse_address(typed)
        except UserError as exc:
            st.warning(str(exc))
            return None
    if picked is None:
        st.info("No borrowers in this database yet; type any wallet address above.")
        return None
    return str(picked)


def render() -> None:
    db = database_location()
    require(db, *VIEWS)
    wallet = _choose_wallet(db)
    if wallet is None:
        return
    with st.spinner("Reading the wallet ..."):
        positions = wallet_positions(db, wallet)
        health = wallet_health(db, wallet)
    if positions.is_empty():
        st.info(f"No positions of {wallet} in the latest scored snapshots.")
        _liquidations(db, wallet)
        _auctions(db, wallet)
        return
    st.markdown(f"#### `{wallet}`")
    borrowing = health.filter(pl.col("health_factor").is_not_null())
    cols = st.columns(4)
    cols[0].metric("Markets", f"{health.height}", help="Markets where the wallet has a position")
    cols[1].metric("Collateral (USD)", usd(float(health["collateral_usd"].sum())))
    cols[2].metric("Debt (USD)", usd(float(health["debt_usd"].sum())))
    weakest = borrowing["health_factor"].min()
    cols[3].metric(
        "Weakest health factor",
        f"{float(weakest):.4f}" if isinstance(weakest, float) else "no debt",
        help="Markets liquidate separately, so the weakest market's health factor, not a blend",
    )

    st.subheader("Health per market")
    key_table(
        health.with_columns(market_names(health)),
        "wallet_health",
        (
            "market_name",
            "health_factor",
            "liquidatable",
            "collateral_usd",
            "debt_usd",
            "borrowing_power_usd",
            "distance_to_liquidation_pct",
            "bad_debt_usd",
        ),
        {
            "protocol": None,
            "market_label": None,
            "market_name": st.column_config.TextColumn("market", width="medium"),
            "market": "market id",
            "health_factor": health_column(),
            "collateral_usd": usd_column("collateral (USD)"),
            "debt_usd": usd_column("debt (USD)"),
            "borrowing_power_usd": usd_column("can still borrow (USD)"),
            "distance_to_liquidation_pct": percent_column(
                "drop to HF 1 (%)",
                "Uniform drop of every non-stable collateral price that brings the health factor to 1 (—: no "
                "non-stable collateral)",
            ),
            "bad_debt_usd": usd_column("bad debt (USD)"),
        },
        "these markets",
    )
    _calls_now(db, wallet)
    st.subheader("Positions")
    key_table(
        positions.with_columns(market_names(positions)).select(
            "market_name",
            "symbol",
            "collateral_tokens",
            "debt_tokens",
            "price_usd",
            "collateral_usd",
            "debt_usd",
            "supplied_tokens",
            "supplied_usd",
            "used_as_collateral",
            "chain_id",
            "market",
        ),
        "wallet_positions",
        ("market_name", "symbol", "collateral_tokens", "debt_tokens", "price_usd", "collateral_usd", "debt_usd"),
        {
            "market_name": st.column_config.TextColumn("market", width="medium"),
            "symbol": "asset",
            "supplied_tokens": tokens_column("supplied (tokens)", "Collateral or not"),
            "collateral_tokens": tokens_column("collateral (tokens)"),
            "debt_tokens": tokens_column("debt (tokens)"),
            "price_usd": usd_column("price (USD)"),
            "supplied_usd": usd_column("supplied (USD)"),
            "collateral_usd": usd_column("collateral (USD)"),
            "debt_usd": usd_column("debt (USD)"),
            "used_as_collateral": "used as collateral",
            "market": "market id",
        },
        "these positions",
    )
    prices = liquidation_prices(db, wallet)
    if not prices.is_empty():
        st.subheader("Liquidation prices")
        st.caption("The asset's price, all other prices held, at which the wallet's health factor in that market is 1.")
        table(
            prices.with_columns(market_names(prices)),
            hide_index=True,
            column_order=[
                "market_name",
                "symbol",
                "price_usd",
                "liquidation_price_usd",
                "liquidation_price_change_pct",
                "liquidated_when_price",
            ],
            column_config={
                "market_name": st.column_config.TextColumn("market", width="medium"),
                "symbol": "asset",
                "price_usd": usd_column("price now (USD)"),
                "liquidation_price_usd": usd_column("liquidation price (USD)"),
                "liquidation_price_change_pct": percent_column(
                    "move to HF 1 (%)",
                    "From the price now to the liquidation price: for a wallet already liquidatable in that market, "
                    "the move that would bring its health factor back to 1",
                ),
                "liquidated_when_price": "liquidated when price",
            },
        )
    history = health_history(db, wallet)
    changes = wallet_changes(db, wallet)
    _history(history, changes)
    _governance_table(changes)
    _liquidations(db, wallet)
    _auctions(db, wallet)
    _what_if(positions, health)


def wallet_changes(db: Path, wallet: str) -> pl.DataFrame:
    """Governance's changes to the markets the wallet is in, read after one of its health samples there: a reserve's or
    collateral's settings where it holds that asset now, every other item of those markets (an e-mode category, a
    Comet's configuration, an ilk, a Morpho market). One row per change, newest first."""
    if missing_relations(db, (governance.CHANGES,)):
        return pl.DataFrame()
    frame = query(
        db,
        f"""
        SELECT c.changed_by_time, c.changed_by_block, c.protocol, c.chain_id, c.market, c.market_label, c.item_kind,
               c.item, c.symbol, c.parameter, c.change, c.unit, c.old_value, c.new_value, c.old_amount, c.new_amount
        FROM {governance.CHANGES} AS c
        WHERE EXISTS (
              SELECT 1 FROM mart_wallet_health_history AS h
              WHERE h.wallet = ? AND h.protocol = c.protocol AND h.chain_id = c.chain_id AND h.market = c.market
                  AND h.block_number <= c.changed_by_block
          )
          AND (c.item_kind NOT IN ('reserve', 'collateral') OR EXISTS (
              SELECT 1 FROM stg_positions_latest AS p
              WHERE p.wallet = ? AND p.protocol = c.protocol AND p.chain_id = c.chain_id AND p.market = c.market
                  AND p.asset = c.item
          ))
        ORDER BY c.changed_by_block DESC, c.market_label, c.item_kind, c.symbol, c.parameter
        """,
        wallet,
        wallet,
    )
    return naive_utc(frame, "changed_by_time")


def _governance_table(changes: pl.DataFrame) -> None:
    if changes.is_empty():
        return
    st.subheader("Governance changes to its markets")
    st.caption(
        "Each risk parameter governance changed, since the wallet's first health sample, of the markets it is in and "
        "the assets it holds there (a reserve's or collateral's settings), and of those markets themselves; read at "
        "the snapshot named, changed after the one before it (`mart_parameter_changes`). The dashed lines on the "
        "health history mark them."
    )
    shown = changes.select(
        "changed_by_time",
        market_names(changes, "market_label").alias("market"),
        pl.Series("change", [governance.change_words(r) for r in changes.iter_rows(named=True)], pl.String),
        "changed_by_block",
    )
    table(
        shown,
        hide_index=True,
        column_config={
            "changed_by_time": st.column_config.DatetimeColumn("read at (UTC)"),
            "market": st.column_config.TextColumn("market", width="medium"),
            "change": st.column_config.TextColumn("what changed", width="large"),
            "changed_by_block": count_column("read at block"),
        },
    )


def _history(history: pl.DataFrame, changes: pl.DataFrame) -> None:
    st.subheader("Health history")
    if history.is_empty():
        st.info("No health history: the wallet has had no debt in any scored block.")
        return
    samples = int(history["samples"].sum())
    if history.group_by(MARKET_KEY).agg(pl.col("samples").sum())["samples"].max() == 1:
        st.caption("One sample so far: every `chainrisk run` and `chainrisk credit history` adds samples per market.")
    else:
        buckets = f"{history.height:,} bucket{'' if history.height == 1 else 's'}"
        st.caption(
            f"{samples:,} samples in {buckets} (an hour each, a day beyond the hourly window): the line is each "
            "bucket's last health factor, the band its lowest and highest."
        )
    frame = naive_utc(history, "block_time")
    frame = frame.with_columns(market_names(frame, "market name"))
    colour = series_colour("market name:N", frame["market name"].n_unique(), "market", long_labels=True)
    lines = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("block_time:T", title="block time (UTC)", axis=alt.Axis(format="%Y-%m-%d %H:%M")),
            y=alt.Y("health_factor:Q", title="health factor", scale=alt.Scale(zero=False)),
            color=colour,
            tooltip=[
                "market name",
                alt.Tooltip("block_number:Q", format="d", title="block"),
                alt.Tooltip("block_time:T", format="%Y-%m-%d %H:%M", title="time (UTC)"),
                alt.Tooltip("health_factor:Q", format=".4f", title="health factor"),
                alt.Tooltip("health_factor_min:Q", format=".4f", title="lowest in the bucket"),
                alt.Tooltip("samples:Q", format="d", title="samples"),
            ],
        )
    )
    band = (
        alt.Chart(frame)
        .mark_area(opacity=0.2)
        .encode(x="block_time:T", y="health_factor_min:Q", y2="health_factor_max:Q", color=colour)
    )
    liquidation = (
        alt.Chart(pl.DataFrame({"health factor": [1.0]})).mark_rule(color="#d62728").encode(y="health factor:Q")
    )
    chart = band + lines + liquidation
    if not changes.is_empty():
        marks = governance.marks(changes.rename({"changed_by_time": "block_time"}), time="block_time")
        chart = chart + governance.rules(marks, time="block_time")
    st.altair_chart(chart, width="stretch")


def _calls_now(db: Path, wallet: str) -> None:
    """The liquidation calls a keeper can send against the wallet now, where it is liquidatable."""
    if missing_relations(db, (liquidations.CALLS_VIEW,)):
        return
    frame = liquidations.wallet_calls(db, wallet)
    if frame.is_empty():
        return
    st.subheader("Liquidation now")
    st.caption(
        "What each call a keeper can send against this wallet would do at the market's latest snapshot, as its "
        "contract executes it (Aave: every pair of collateral and debt, the one to send first), or why it reverts."
    )
    key_table(
        frame,
        "wallet_liquidation_calls",
        (
            "market_label",
            "call",
            "debt_symbol",
            "debt_repaid_tokens",
            "debt_repaid_usd",
            "collateral_symbol",
            "collateral_seized_tokens",
            "keeper_gain_usd",
            "blocked",
        ),
        {**liquidations.CALL_CONFIG, "wallet page": None},  # the page is this wallet's already
        "these calls",
    )


def _liquidations(db: Path, wallet: str) -> None:
    if missing_relations(db, (liquidations.VIEW,)):
        return
    frame = liquidations.liquidation_rows(db, wallet=wallet, limit=None)
    if frame.is_empty():
        return
    st.subheader("Liquidations")
    st.caption(
        f"Every liquidation of this wallet the indexed contracts logged ({frame.height:,} rows; a Comet absorb is a "
        "debt row and one row per collateral it took): USD at each event's time where `chainrisk credit history` "
        "recorded the prices, else at the latest snapshot (the `USD from` column)."
    )
    key_table(
        frame,
        "wallet_liquidations",
        (
            "block_time",
            "market_label",
            "debt_repaid_tokens",
            "debt_symbol",
            "debt_repaid_usd",
            "collateral_seized_tokens",
            "collateral_symbol",
            "collateral_seized_usd",
        ),
        {**liquidations.ROW_CONFIG, "wallet page": None},  # the page is this wallet's already
        "these liquidations",
    )


def _auctions(db: Path, wallet: str) -> None:
    """A Maker urn's auctions: what each sold, raised and left the Vow short, or, running, its price against the
    oracle's."""
    if missing_relations(db, (liquidations.AUCTIONS_VIEW,)):
        return
    frame = liquidations.auction_rows(db, wallet=wallet.lower(), limit=None)
    if frame.is_empty():
        return
    st.subheader("Auctions")
    st.caption(
        "Each Maker/Sky auction a bark of this vault started: running ones at the Clipper's price now against the "
        "oracle's, ended ones by what their takes raised and the debt they left the Vow short (whole DAI)."
    )
    key_table(
        frame,
        "wallet_auctions",
        ("market_label", "status", "age_h", "tab_left", "lot_left_tokens", "collateral_symbol", "raised", "shortfall"),
        {**liquidations.AUCTION_CONFIG, "wallet page": None},  # the page is this wallet's already
        "these auctions",
    )


def _position_options(positions: pl.DataFrame, amount: str) -> dict[PositionKey, str]:
    """Positions holding a non-zero `amount` column, keyed for AmountChange, with a label for people."""
    held = positions.filter(pl.col(f"{amount}_amount") > 0)
    return {
        (p, c, m, a): f"{s} in {market_name(p, label)} (holds {_held(tokens, raw)})"
        for p, c, m, a, s, label, tokens, raw in held.select(
            *MARKET_KEY, "asset", "symbol", "market_label", f"{amount}_tokens", f"{amount}_amount"
        ).iter_rows()
    }


def _held(tokens: float | None, raw: object) -> str:
    """A holding in whole tokens; in raw units for a token without decimals() (its whole-token amount is unknown)."""
    return f"{raw} raw units, decimals unknown" if tokens is None else f"{tokens:,.6f}"


def _amount_change(positions: pl.DataFrame, key: PositionKey | None, tokens: str, *, repay: bool) -> list[AmountChange]:
    if key is None or not tokens.strip():
        return []
    protocol, chain_id, market, asset = key
    decimals = positions.filter(
        (pl.col("protocol") == protocol)
        & (pl.col("chain_id") == chain_id)
        & (pl.col("market") == market)
        & (pl.col("asset") == asset)
    )["decimals"][0]
    if decimals is None:  # a token without decimals(): a whole-token amount has no size in its units
        return []
    units = to_base_units(tokens, int(decimals))
    if units == 0:
        return []
    if repay:
        return [AmountChange(protocol, chain_id, market, asset, debt_delta=-units)]
    return [AmountChange(protocol, chain_id, market, asset, collateral_delta=units)]


def _what_if(positions: pl.DataFrame, health: pl.DataFrame) -> None:
    st.subheader("What if")
    st.caption(
        "Move prices, add collateral or repay debt: the health engine re-scores the wallet's latest positions at "
        "once, with the protocols' own integer maths (a price moves every market holding that asset, but not a debt "
        "the protocol values at par: dai in a Maker/Sky vault, LUSD in a Liquity trove)."
    )
    moving = positions.filter(~price_fixed(positions.columns))
    symbols = sorted(set(moving["symbol"].drop_nulls().to_list()))
    columns = st.columns(max(min(len(symbols), 4), 1))
    change_bps: dict[str, int] = {}
    for i, symbol in enumerate(symbols):
        percent = columns[i % len(columns)].slider(
            f"{symbol} price change (%)",
            PRICE_CHANGE_MIN,
            PRICE_CHANGE_MAX,
            0,
            step=1,
            format="%d%%",
            key=f"whatif_price_{symbol}",
        )
        change_bps[symbol] = int(percent) * 100
    add_options = _position_options(positions, "collateral")
    repay_options = _position_options(positions, "debt")
    cols = st.columns(4)
    add_on = cols[0].selectbox(
        "Add collateral to", list(add_options), format_func=add_options.__getitem__, key="whatif_add_on"
    )
    add_tokens = cols[1].text_input("collateral to add (tokens)", "0", key="whatif_add_tokens")
    repay_on = cols[2].selectbox(
        "Repay debt of", list(repay_options), format_func=repay_options.__getitem__, key="whatif_repay_on"
    )
    repay_tokens = cols[3].text_input("debt to repay (tokens)", "0", key="whatif_repay_tokens")
    try:
        changes = _amount_change(positions, add_on, add_tokens, repay=False)
        changes += _amount_change(positions, repay_on, repay_tokens, repay=True)
    except UserError as exc:
        st.warning(str(exc))
        return
    after = health_by_market(apply_scenario(positions, change_bps, changes))
    scenario = health.select(*MARKET_KEY, "market_label", "health_factor", "liquidatable").join(
        after.rename(
            {
                "health_factor": "health_factor_after",
                "liquidatable": "liquidatable_after",
                "collateral_usd": "collateral_usd_after",
                "debt_usd": "debt_usd_after",
            }
        ),
        on=MARKET_KEY,
        how="left",
    )
    # The metrics, the table and the warning name markets alike.
    scenario = scenario.with_columns(market_names(scenario))
    metric_columns = st.columns(max(min(scenario.height, 4), 1))
    for i, row in enumerate(scenario.iter_rows(named=True)):
        _what_if_metric(metric_columns[i % len(metric_columns)], row)
    key_table(
        scenario,
        "wallet_what_if",
        (
            "market_name",
            "health_factor",
            "health_factor_after",
            "liquidatable",
            "liquidatable_after",
            "collateral_usd_after",
            "debt_usd_after",
        ),
        {
            "protocol": None,
            "market_label": None,
            "market_name": st.column_config.TextColumn("market", width="medium"),
            "market": "market id",
            "health_factor": health_column("HF now"),
            "liquidatable": "liquidatable now",
            "health_factor_after": health_column("HF what-if"),
            "liquidatable_after": "liquidatable what-if",
            "collateral_usd_after": usd_column("collateral what-if (USD)"),
            "debt_usd_after": usd_column("debt what-if (USD)"),
        },
        "this scenario",
    )
    liquidatable = scenario.filter(pl.col("liquidatable_after").fill_null(False))
    if liquidatable.height:
        st.warning(f"Liquidatable in this scenario: {', '.join(liquidatable['market_name'])}.")
    else:
        st.success("No market of this wallet would be liquidatable in this scenario.")


def _what_if_metric(column: Any, row: dict[str, Any]) -> None:
    now, after = row["health_factor"], row["health_factor_after"]
    label = f"What-if HF · {row['market_name']}"
    if after is None:
        column.metric(label, "no debt")
    elif now is None:
        column.metric(label, f"{after:.4f}")
    else:
        column.metric(label, f"{after:.4f}", delta=f"{after - now:+.4f}" if after != now else None)
