"""Shared pieces of the dashboard's pages: number formats, table column formats, and the guard every page runs in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard.data import NoData
from chainrisk.errors import UserError
from chainrisk.networks import chain_name
from chainrisk.protocols.adapter import adapters

#: Each protocol's name for people, as its adapter gives it ("aave-v3" -> "Aave V3").
PROTOCOL_NAMES = {name: adapter.label for name, adapter in adapters().items()}


def series_colour(field: str, series: int, title: str | None = None, *, long_labels: bool = False) -> alt.Color:
    """A colour per series of a chart with `series` of them: Streamlit's palette has ten, its first two both blue, so
    an eleventh series took the first one's colour again (a replay's DAI and aDevWETH, drawn alike); ten distinct
    hues up to ten series, twenty (ten hues, dark and light) up to twenty. With `long_labels` (market names) the
    legend goes under the chart, unabridged: beside it, Vega cut them to 160 px ("Aave V3 · chainrisk devne…"), and
    markets of one pair and LLTV differ only at the end of their names."""
    colour = alt.Color(field, title=title, scale=alt.Scale(scheme="tableau10" if series <= 10 else "tableau20"))
    return colour.legend(orient="bottom", columns=2, labelLimit=0) if long_labels else colour


def usd(value: float | None) -> str:
    """Whole dollars with thousands separators ("—" when no USD price is known)."""
    return "—" if value is None else f"${value:,.0f}"


def price(value: float | None) -> str:
    """A token's USD price to four significant digits (whole dollars from $1,000): "$1,843", "$27.41", "$0.9812"
    ("—" without one)."""
    if value is None:
        return "—"
    return f"${value:,.0f}" if abs(value) >= 1000 else f"${value:.4g}"


def liquidated_if(when: str | None, liquidation_price: float | None, fixed: bool | None = False) -> str | None:
    """The liquidation price with its direction, one phrase: "falls below $1,843" (None without a price; "never:
    valued at par" for a debt the protocol values at par, which no market price of it liquidates)."""
    if fixed:
        return "never: valued at par"
    return None if when is None or liquidation_price is None else f"{when} {price(liquidation_price)}"


def usd_short(value: float | None) -> str:
    """Dollars in three significant figures ("$3.01M", "$618k", "$950") for metrics, whose width is small."""
    return "—" if value is None else "$" + amount_short(value)


def amount_short(value: float | None) -> str:
    """An amount in three significant figures ("3.01M", "618k", "950"): a metric in a unit its label names (DAI)."""
    if value is None:
        return "—"
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:,.0f}"


def human_age(seconds: float | None) -> str:
    """An age in the largest unit that keeps it readable: "45 s", "12 min", "3.5 h", "2.0 days", "4.5 years"."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds < 365 * 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds / (365.25 * 86400):.1f} years"


def usd_column(label: str, help: str | None = None) -> Any:
    return st.column_config.NumberColumn(label, format="dollar", help=help)


def count_column(label: str, help: str | None = None) -> Any:
    """A count (wallets, liquidations) or a block number, shown as a whole number."""
    return st.column_config.NumberColumn(label, format="%d", help=help)


def percent_column(label: str, help: str | None = None) -> Any:
    """For values already in percent (12.5 means 12.5 %)."""
    return st.column_config.NumberColumn(label, format="%.1f%%", help=help)


def health_column(label: str = "health factor", help: str | None = None) -> Any:
    return st.column_config.NumberColumn(label, format="%.4f", help=help)


def tokens_column(label: str, help: str | None = None) -> Any:
    """Token amounts in whole tokens (never raw wei)."""
    return st.column_config.NumberColumn(label, format="%.6f", help=help)


#: What a wallet link shows: the address's first ten hex digits, taken from the URL it opens (which has all 40).
WALLET_LINK_TEXT = r"wallet=(0x[0-9a-fA-F]{10})"


def with_wallet_links(frame: pl.DataFrame) -> pl.DataFrame:
    """Adds a "wallet page" column: a relative URL opening each row's wallet on the Wallet page (the URL names both)."""
    return frame.with_columns(pl.format("?page=wallet&wallet={}", "wallet").alias("wallet page"))


def wallet_link_column() -> Any:
    """The column format of `with_wallet_links`' links: headed "wallet", the address shortened, a click opens it. Tables
    show it instead of the 42-character address (hidden with `column_config={"wallet": None}` or left out of their
    column order), which would take a third of a 1400 px screen."""
    return st.column_config.LinkColumn(
        "wallet", display_text=WALLET_LINK_TEXT, help="The wallet (its first 10 hex digits): opens the Wallet page"
    )


def run_guarded(render: Callable[[], None]) -> None:
    """Draws a page; missing data becomes a note with what to run, any failure one line (never a traceback)."""
    try:
        render()
    except NoData as exc:
        st.info(str(exc))
    except UserError as exc:
        st.error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except Exception as exc:  # the dashboard never shows a traceback
        detail = str(exc).splitlines()[0] if str(exc) else ""
        st.error(f"Something went wrong while drawing this page: {type(exc).__name__}: {detail}")


def naive_utc(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """Times as naive UTC, which Altair draws as they are (a zone would be shifted to the browser's)."""
    return frame.with_columns(pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None) for c in columns)


def market_name(protocol: str, label: str) -> str:
    """'Morpho Blue · wstETH/WETH 94.5%'; a label that already names its protocol ('Aave V3 0x…') stays as it is."""
    name = PROTOCOL_NAMES.get(protocol, protocol)
    return label if label.startswith(name) else f"{name} · {label}"


def market_names(
    frame: pl.DataFrame, name: str = "market_name", protocol: str = "protocol", label: str = "market_label"
) -> pl.Series:
    """Column `name`: each row's market_name of its own `protocol` and `label` columns (one column instead of two, so
    a table keeps its width for figures; markets.with_market_names looks the labels up by market instead)."""
    names = [market_name(str(p), str(m)) for p, m in frame.select(protocol, label).iter_rows()]
    return pl.Series(name, names, dtype=pl.String)


#: How a table shows `chain_id` once chain_names made it a name.
CHAIN_COLUMN = st.column_config.TextColumn("chain", help="The chain the market lives on, by name (else its chain id)")


def chain_names(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with `chain_id` shown as the chain's name ('Base'; 'chain 777777' for one chainrisk does not name),
    for a table's eyes only: its rows and order stay."""
    if "chain_id" not in frame.columns:
        return frame
    names = {chain: chain_name(int(chain)) for chain in frame["chain_id"].drop_nulls().unique()}
    return frame.with_columns(pl.col("chain_id").replace_strict(names, default=None, return_dtype=pl.String))


#: What a table shows for a missing figure (NULL: no such cap, no USD price, no debt): Streamlit's own placeholder
#: reads "None", Python's word, not a reader's.
MISSING = "—"


def table(data: Any, **options: Any) -> Any:
    """st.dataframe with MISSING shown for a missing figure."""
    return st.dataframe(data, placeholder=MISSING, **options)


def key_table(frame: pl.DataFrame, key: str, columns: tuple[str, ...], config: dict[str, Any], what: str) -> None:
    """`columns` (the row's name first) in a table that fits 1400 px (tests/test_browser.py checks the ones it names by
    `key`), every other figure of `frame` in an expander under it; `chain_id` by the chain's name (chain_names)."""
    frame = chain_names(frame)
    if "chain_id" in frame.columns and config.get("chain_id", "") is not None:
        config = {**config, "chain_id": CHAIN_COLUMN}
    with st.container(key=key):
        table(frame, hide_index=True, column_order=columns, column_config=config)
    with st.expander(f"Every figure of {what}"):
        others = [c for c in frame.columns if c not in columns and config.get(c, "") is not None]
        table(frame, hide_index=True, column_order=[columns[0], *others], column_config=config)
