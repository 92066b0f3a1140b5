"""Market names on the dashboard's pages: each market's label from stg_market_labels, and the `market_name` column
the risk and chains pages show instead of a 0x… id."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from chainrisk.dashboard.data import missing_relations, query
from chainrisk.dashboard.ui import PROTOCOL_NAMES, market_name
from chainrisk.units import MARKET_KEY


def market_labels(db: Path) -> dict[tuple[str, int, str], str]:
    """(protocol, chain_id, market) -> 'Morpho Blue · wstETH/WETH 94.5%'; empty when the labels view is missing
    (a database the risk commands ran on but `chainrisk score` never did)."""
    if missing_relations(db, ("stg_market_labels",)):
        return {}
    frame = query(db, "SELECT protocol, chain_id, market, market_label FROM stg_market_labels")
    return {(p, c, m): market_name(p, label) for p, c, m, label in frame.iter_rows()}


def with_market_names(frame: pl.DataFrame, labels: Mapping[tuple[str, int, str], str]) -> pl.DataFrame:
    """Adds `market_name`: the market's label, a protocol's name for its 'all' rows, 'All markets' for the total."""

    def name(protocol: str, chain_id: int | None, market: str) -> str:
        if market == "all":
            return "All markets" if protocol == "all" else f"{PROTOCOL_NAMES.get(protocol, protocol)} (all markets)"
        known = labels.get((protocol, chain_id, market)) if chain_id is not None else None
        return known or market_name(protocol, market if len(market) <= 42 else f"{market[:10]}…")

    names = [name(*key) for key in frame.select(MARKET_KEY).iter_rows()]
    return frame.with_columns(pl.Series("market_name", names, dtype=pl.String))
