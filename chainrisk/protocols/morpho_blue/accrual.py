"""raw_morpho_blue_markets' accrued totals at any block time, from the market state a version stores and the IRM's
borrow rate it read: Morpho._accrueInterest (morpho-org/morpho-blue src/Morpho.sol) through chainrisk's own maths."""

from __future__ import annotations

from typing import Any

import polars as pl

from chainrisk.protocols.morpho_blue.maths import MarketState, accrue_interest
from chainrisk.units import ZERO_ADDRESS

MARKETS = "raw_morpho_blue_markets"
TOTALS = ("total_supply_assets", "total_supply_shares", "total_borrow_assets", "total_borrow_shares")
ACCRUED_COLUMNS = {MARKETS: tuple(f"accrued_{t}" for t in TOTALS)}


def stored_state(row: dict[str, Any]) -> MarketState:
    """IMorpho.market(id) as a raw_morpho_blue_markets row stores it (before accrual)."""
    return MarketState(
        total_supply_assets=int(row["total_supply_assets"]),
        total_supply_shares=int(row["total_supply_shares"]),
        total_borrow_assets=int(row["total_borrow_assets"]),
        total_borrow_shares=int(row["total_borrow_shares"]),
        last_update=int(row["last_update"]),
        fee=int(row["fee"]),
    )


def accrue(table: str, rows: pl.DataFrame, timestamp: int) -> list[dict[str, Any]]:
    """Each market's totals accrued to `timestamp` (as stored where the IRM failed: interest unknown, or none due)."""
    if table != MARKETS:
        raise ValueError(f"{table} has no accrued columns")
    out = []
    for row in rows.iter_rows(named=True):
        state = stored_state(row)
        rate = int(row["borrow_rate"]) if row["borrow_rate"] is not None else None
        if rate is not None or timestamp <= state.last_update:
            state = accrue_interest(state, rate or 0, timestamp, has_irm=row["irm"] != ZERO_ADDRESS).market
        out.append({f"accrued_{t}": getattr(state, t) for t in TOTALS})
    return out
