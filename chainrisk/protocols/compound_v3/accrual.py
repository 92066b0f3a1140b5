"""Compound V3's accrued raw columns at any block time, from the state a version stores: the indices
Comet.accruedInterestIndices gives (compound-finance/comet contracts/Comet.sol), getReserves at them (where the base
token's balance was stored), and accounts' present values at them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import polars as pl

from chainrisk.protocols.compound_v3.maths import (
    Indices,
    RateModel,
    Totals,
    accrued_interest_indices,
    present_value_borrow,
    present_value_supply,
    reserves,
)

MARKETS = "raw_compound_v3_markets"
ACCOUNTS = "raw_compound_v3_accounts"
ACCRUED_COLUMNS = {
    MARKETS: ("accrued_supply_index", "accrued_borrow_index", "reserves"),
    ACCOUNTS: ("balance", "borrow_balance"),
}


def _record(kind: type[Totals] | type[RateModel], row: dict[str, Any]) -> Any:
    return kind(**{f.name: int(row[f.name]) for f in fields(kind)})


def accrue(
    table: str, rows: pl.DataFrame, timestamp: int, related: Callable[[str], pl.DataFrame]
) -> list[dict[str, Any]]:
    """Markets: the accrued indices at `timestamp` and getReserves at them (as stored where the base token's balance
    was not); accounts: balanceOf and borrowBalanceOf at their market's."""
    if table == MARKETS:
        out = []
        for row in rows.iter_rows(named=True):
            totals = _record(Totals, row)
            indices = accrued_interest_indices(totals, _record(RateModel, row), timestamp)
            balance = row.get("base_balance")
            held = int(row["reserves"]) if balance is None else reserves(int(balance), totals, indices)
            out.append(
                {"accrued_supply_index": indices.supply, "accrued_borrow_index": indices.borrow, "reserves": held}
            )
        return out
    if table == ACCOUNTS:
        markets = {
            (r["chain_id"], r["market"]): Indices(int(r["accrued_supply_index"]), int(r["accrued_borrow_index"]))
            for r in related(MARKETS).iter_rows(named=True)
        }
        out = []
        for row in rows.iter_rows(named=True):
            at = markets[(row["chain_id"], row["market"])]
            principal = int(row["principal"])
            out.append(
                {
                    "balance": present_value_supply(at.supply, principal) if principal > 0 else 0,
                    "borrow_balance": present_value_borrow(at.borrow, -principal) if principal < 0 else 0,
                }
            )
        return out
    raise ValueError(f"{table} has no accrued columns")
