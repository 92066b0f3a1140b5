"""raw_aave_v3_reserves' accrued columns at any block time, from the reserve state a version stores:
getReserveNormalizedIncome and getReserveNormalizedVariableDebt (ReserveLogic.getNormalizedIncome/getNormalizedDebt,
aave-dao/aave-v3-origin src/contracts/protocol/libraries/logic/ReserveLogic.sol) through chainrisk's own maths."""

from __future__ import annotations

from typing import Any

import polars as pl

from chainrisk.protocols.aave_v3.maths import RESERVE_FIGURES, normalized_debt, normalized_income, reserve_figures
from chainrisk.protocols.aave_v3.rebuild import reserves_of

RESERVES = "raw_aave_v3_reserves"
ACCRUED_COLUMNS = {RESERVES: ("normalized_income", "normalized_variable_debt", *RESERVE_FIGURES)}


def accrue(table: str, rows: pl.DataFrame, timestamp: int) -> list[dict[str, Any]]:
    """The reserves' normalized income and variable debt at block timestamp `timestamp`, and their totals and supply
    cap figures then (maths.reserve_figures), row by row (`rows`: one source's reserves, of one pool version)."""
    if table != RESERVES:
        raise ValueError(f"{table} has no accrued columns")
    reserves, version = reserves_of(rows)
    by_asset = {r.asset: r for r in reserves}
    found = []
    for asset in rows["asset"].to_list():
        reserve = by_asset[asset]
        income, debt = normalized_income(reserve, timestamp), normalized_debt(version, reserve, timestamp)
        figures = reserve_figures(version, reserve, income, debt, timestamp)
        found.append({"normalized_income": income, "normalized_variable_debt": debt, **figures})
    return found
