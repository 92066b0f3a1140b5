"""Compound V3's accrued raw columns at any block time, from the state a version stores: the indices
Comet.accruedInterestIndices gives (compound-finance/comet contracts/Comet.sol) and accounts' present values at them."""

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
)

MARKETS = "raw_compound_v3_markets"
ACCOUNTS = "raw_compound_v3_accounts"
ACCRUED_COLUMNS = {MARKETS: ("accrued_supply_index", "accrued_borrow_index"), ACCOUNTS: ("balance", "borrow_balance")}


def _record(kind: type[Totals] | type[RateModel], row: dict[str, Any]) -> Any:
    return kind(**{f.name: int(row[f.name]) for f in fields(kind)})


def accrue(
    table: str, rows: pl.DataFrame, timestamp: int, related: Callable[[str], pl.DataFrame]
) -> list[dict[str, Any]]:
    """Markets: the accrued indices at `timestamp`; accounts: balanceOf and borrowBalanceOf at their market's."""
    if table == MARKETS:
        out = []
        for row in rows.iter_rows(named=True):
            indices = accrued_interest_indices(_record(Totals, row), _record(RateModel, row), timestamp)
            out.append({"accrued_supply_index": indices.supply, "accrued_borrow_index": indices.borrow})
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
