"""raw_morpho_blue_markets' time-moved figures at any block time, from the market state a version stores: the IRM's
borrow rate (an AdaptiveCurveIrm's from its rateAtTarget through chainrisk's port of it, irm.py; any other IRM's
as read, since it moves only with the market's state) and the accrued totals, Morpho._accrueInterest
(morpho-org/morpho-blue src/Morpho.sol) through chainrisk's own maths."""

from __future__ import annotations

from typing import Any

import polars as pl

from chainrisk.protocols.morpho_blue.irm import adaptive_curve_rate
from chainrisk.protocols.morpho_blue.maths import MarketState, accrue_interest, accrues
from chainrisk.units import ZERO_ADDRESS

MARKETS = "raw_morpho_blue_markets"
TOTALS = ("total_supply_assets", "total_supply_shares", "total_borrow_assets", "total_borrow_shares")
ACCRUED_COLUMNS = {MARKETS: ("borrow_rate", *(f"accrued_{t}" for t in TOTALS))}


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


def borrow_rate(row: dict[str, Any], state: MarketState, timestamp: int) -> int | None:
    """The IRM's borrowRateView at `timestamp`: an AdaptiveCurveIrm's from its stored rate at target (which only
    moves when the market's state does), any other's as stored (None where the IRM failed)."""
    stored, target = row["borrow_rate"], row.get("rate_at_target")
    if stored is None:
        return None
    return int(stored) if target is None else adaptive_curve_rate(int(target), state, timestamp)[0]


def accrue(table: str, rows: pl.DataFrame, timestamp: int) -> list[dict[str, Any]]:
    """Each market's borrow rate and totals accrued to `timestamp` (as stored where the IRM failed or Morpho's own
    accrual would revert with its rate: interest unknown, the market frozen; or none due)."""
    if table != MARKETS:
        raise ValueError(f"{table} has no accrued columns")
    out = []
    for row in rows.iter_rows(named=True):
        state = stored_state(row)
        rate = borrow_rate(row, state, timestamp)
        if accrues(state, rate, timestamp):
            state = accrue_interest(state, rate or 0, timestamp, has_irm=row["irm"] != ZERO_ADDRESS).market
        out.append({"borrow_rate": rate, **{f"accrued_{t}": getattr(state, t) for t in TOTALS}})
    return out
