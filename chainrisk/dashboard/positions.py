"""At-risk positions page: every borrower's positions with liquidation prices, filtered and limited in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import streamlit as st

from chainrisk.dashboard.data import database_location, query, require
from chainrisk.dashboard.ui import (
    CHAIN_COLUMN,
    PROTOCOL_NAMES,
    chain_names,
    health_column,
    liquidated_if,
    market_name,
    market_names,
    percent_column,
    table,
    tokens_column,
    usd_column,
    wallet_link_column,
    with_wallet_links,
)

#: Rows drawn at most; the count of all matching rows is shown beside them.
ROW_LIMIT = 5_000
VIEWS = ("mart_at_risk_positions", "mart_market_summary", "stg_position_risk_latest")
#: In the order shown: who and how weak, then the asset's liquidation price, then amounts, then identifiers.
COLUMNS = """wallet, health_factor, protocol, market_label, symbol, liquidation_price_usd, liquidation_price_change_pct,
    liquidated_when_price, price_fixed, price_usd, collateral_usd, debt_usd, collateral_tokens, debt_tokens,
    wallet_collateral_usd, wallet_debt_usd, liquidatable, chain_id, market, asset"""
#: The columns the table shows, all visible at 1400 px: who, how weak, where, and at which price of which asset it
#: is liquidated (the direction beside the price); every column is in the expander below it and in the CSV.
KEY_COLUMNS = (
    "wallet page",
    "health_factor",
    "market_name",
    "symbol",
    "liquidated_if_price",
    "liquidation_price_change_pct",
    "collateral_usd",
    "debt_usd",
)
#: What names a row in the expander's table of the other columns (same rows, same order).
IDENTITY = ("wallet", "market_name", "symbol")


@dataclass(frozen=True)
class Filters:
    protocols: tuple[str, ...] = ()  #: empty: every protocol
    markets: tuple[str, ...] = ()  #: market ids; empty: every market
    symbols: tuple[str, ...] = ()  #: asset symbols; empty: every asset
    max_health_factor: float = 1.5  #: wallets at or below this health factor
    min_debt_usd: float = 0.0  #: wallets owing at least this much in the market (USD)


def _where(filters: Filters) -> tuple[str, list[object]]:
    """The WHERE clause (fixed fragments, values only as parameters) and its parameters."""
    clauses = ["health_factor <= ?", "coalesce(wallet_debt_usd, 0) >= ?"]
    params: list[object] = [filters.max_health_factor, filters.min_debt_usd]
    for column, values in (("protocol", filters.protocols), ("market", filters.markets), ("symbol", filters.symbols)):
        if values:
            clauses.append(f"{column} = ANY(?)")
            params.append(list(values))
    return " AND ".join(clauses), params


def at_risk_positions(db: Path, filters: Filters, limit: int) -> tuple[pl.DataFrame, int]:
    """The weakest matching positions (at most `limit`, health factor ascending) and how many match in all."""
    where, params = _where(filters)
    rows = query(
        db,
        f"SELECT {COLUMNS} FROM mart_at_risk_positions WHERE {where} "
        "ORDER BY health_factor, wallet, protocol, market, symbol LIMIT ?",
        *params,
        limit,
    )
    total = query(db, f"SELECT count(*) AS n FROM mart_at_risk_positions WHERE {where}", *params)["n"][0]
    phrases = [
        liquidated_if(when, at, fixed)
        for when, at, fixed in rows.select("liquidated_when_price", "liquidation_price_usd", "price_fixed").iter_rows()
    ]
    named = rows.with_columns(
        market_names(rows),
        pl.Series("liquidated_if_price", phrases, pl.String),
        pl.col("protocol").replace(PROTOCOL_NAMES),
    )
    return named, int(total)


def filter_options(db: Path) -> dict[str, pl.DataFrame]:
    """What the filters offer: protocols, markets (id, label, protocol) and asset symbols present. Read from the
    small views rather than the at-risk mart, whose joins cost most of a second each on a million positions."""
    return {
        "protocols": query(db, "SELECT DISTINCT protocol FROM mart_market_summary ORDER BY protocol"),
        "markets": query(
            db, "SELECT DISTINCT protocol, market, market_label FROM mart_market_summary ORDER BY protocol, market"
        ),
        "symbols": query(db, "SELECT DISTINCT symbol FROM stg_position_risk_latest ORDER BY symbol"),
    }


def render() -> None:
    db = database_location()
    require(db, *VIEWS)
    options = filter_options(db)
    markets = options["markets"]
    labels = {
        m: market_name(p, label) for p, m, label in markets.select("protocol", "market", "market_label").iter_rows()
    }
    cols = st.columns([1.4, 2, 1.6, 1.5, 1])
    protocols = cols[0].multiselect(
        "Protocol",
        options["protocols"]["protocol"].to_list(),
        format_func=lambda p: PROTOCOL_NAMES.get(p, p),
        key="positions_protocols",
    )
    chosen_markets = cols[1].multiselect(
        "Market", list(labels), format_func=labels.__getitem__, key="positions_markets"
    )
    symbols = cols[2].multiselect("Asset", options["symbols"]["symbol"].to_list(), key="positions_symbols")
    max_hf = cols[3].slider(
        "Health factor at most",
        0.0,
        10.0,
        Filters().max_health_factor,
        step=0.05,
        format="%.2f",
        key="positions_max_hf",
    )
    min_debt = cols[4].number_input(
        "Wallet debt at least (USD)", min_value=0.0, value=0.0, step=1_000.0, key="positions_min_debt"
    )
    filters = Filters(tuple(protocols), tuple(chosen_markets), tuple(symbols), float(max_hf), float(min_debt))
    with st.spinner("Finding positions ..."):
        rows, total = at_risk_positions(db, filters, ROW_LIMIT)
    if total > rows.height:
        st.caption(
            f"Showing the weakest {rows.height:,} of {total:,} matching positions; narrow the filters to see more."
        )
    else:
        st.caption(f"{total:,} matching positions, weakest first. Click a column header to sort.")
    st.caption(
        "Liquidation price: the asset's price, all other prices held, at which the wallet's health factor in that "
        "market reaches 1. Health factor and wallet totals are per market (markets liquidate separately)."
    )
    column_config = {
        "wallet page": wallet_link_column(),
        "chain_id": CHAIN_COLUMN,
        "market_name": st.column_config.TextColumn("market", width=240),
        "market_label": None,
        "symbol": "asset",
        "health_factor": health_column("HF", "The wallet's health factor in this market"),
        "wallet_collateral_usd": usd_column("wallet collateral (USD)"),
        "wallet_debt_usd": usd_column("wallet debt (USD)"),
        "collateral_tokens": tokens_column("collateral (tokens)"),
        "debt_tokens": tokens_column("debt (tokens)"),
        "collateral_usd": usd_column("collateral (USD)", "This asset's collateral in the market"),
        "debt_usd": usd_column("debt (USD)", "This asset's debt in the market"),
        "price_usd": usd_column("price (USD)"),
        "liquidated_if_price": st.column_config.TextColumn(
            "liquidated if price",
            help="The asset's price, all other prices held, at which the health factor reaches 1: collateral when its "
            "price falls below it, debt when its price rises above it; never for a debt the protocol values at par "
            "(dai in a Maker/Sky vault, LUSD in a Liquity trove)",
        ),
        "liquidated_when_price": "liquidated when price",
        "price_fixed": st.column_config.CheckboxColumn(
            "valued at par", help="The protocol values this debt at par (dai in Maker/Sky, LUSD in Liquity)"
        ),
        "liquidation_price_usd": usd_column("liquidation price (USD)"),
        "liquidation_price_change_pct": percent_column("move to it (%)", "From the price now to the liquidation price"),
        "market": "market id",
        "asset": "token",
    }
    shown = chain_names(rows)  # the CSV below keeps the chain id
    # A link per row opens the wallet on the Wallet page (in a new tab: the URL names page and wallet).
    with st.container(key="positions_table"):
        table(with_wallet_links(shown), hide_index=True, column_order=KEY_COLUMNS, column_config=column_config)
    with st.expander("The other columns of these positions (price, amounts in tokens, wallet totals, ids)"):
        others = [c for c in shown.columns if c not in KEY_COLUMNS and c not in IDENTITY]
        table(shown.select(*IDENTITY, *others), hide_index=True, column_config=column_config)
    st.download_button(
        "Download these rows as CSV",
        rows.write_csv(),
        "at_risk_positions.csv",
        "text/csv",
        help=f"The rows shown above (at most {ROW_LIMIT:,}), with the filters applied.",
    )
