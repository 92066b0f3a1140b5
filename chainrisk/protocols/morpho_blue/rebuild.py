"""A past Morpho Blue snapshot's positions rebuilt from its raw tables as stored (raw_morpho_blue_markets and
raw_morpho_blue_positions): the records the snapshot read, back from their rows, through the same maths and frames."""

from __future__ import annotations

from typing import Any

import polars as pl

from chainrisk.protocols.morpho_blue import normalise
from chainrisk.protocols.morpho_blue.accrual import stored_state
from chainrisk.protocols.morpho_blue.maths import MarketState, accrues
from chainrisk.protocols.morpho_blue.snapshot import Deployment, Market, MarketParams, Position, Token


def _token(row: dict[str, Any], role: str) -> Token:
    """The market's loan or collateral Token (`role`) from its raw_morpho_blue_markets columns."""
    return Token(
        row[f"{role}_token"],
        row[f"{role}_symbol"],
        row[f"{role}_decimals"],
        row[f"{role}_price_usd"],
        usd_source=row.get(f"{role}_usd_source"),
    )


def markets_of(rows: pl.DataFrame, timestamp: int) -> list[Market]:
    """The Market records raw_morpho_blue_markets rows were written from (the accrued state: its totals)."""
    markets = []
    for row in rows.iter_rows(named=True):
        state = stored_state(row)
        accrued = MarketState(
            total_supply_assets=int(row["accrued_total_supply_assets"]),
            total_supply_shares=int(row["accrued_total_supply_shares"]),
            total_borrow_assets=int(row["accrued_total_borrow_assets"]),
            total_borrow_shares=int(row["accrued_total_borrow_shares"]),
            last_update=timestamp,
            fee=int(row["fee"]),
        )
        collateral = _token(row, "collateral") if int(row["collateral_token"], 16) else None  # idle: none
        rate = int(row["borrow_rate"]) if row["borrow_rate"] is not None else None
        markets.append(
            Market(
                params=MarketParams(
                    row["market_id"],
                    row["loan_token"],
                    row["collateral_token"],
                    row["oracle"],
                    row["irm"],
                    int(row["lltv"]),
                ),
                state=state,
                borrow_rate=rate,
                accrued=accrued,
                price=int(row["price"]) if row["price"] is not None else None,
                loan=_token(row, "loan"),
                collateral=collateral,
                # An IRM that failed, or a rate at which Morpho's accrual reverts, leaves the stored state
                # unaccrued: interest since its last update unknown (as the snapshot said).
                interest_known=accrues(state, rate, timestamp),
            )
        )
    return markets


def rebuild_positions(
    raw: dict[str, pl.DataFrame], chain_id: int, source: str, block: int, timestamp: int
) -> pl.DataFrame:
    """The positions the snapshot at `block` scored, from the raw tables' rows of that snapshot."""
    markets = markets_of(raw["raw_morpho_blue_markets"], timestamp)
    positions = [
        Position(
            row["market_id"], row["wallet"], *(int(row[k]) for k in ("supply_shares", "borrow_shares", "collateral"))
        )
        for row in raw["raw_morpho_blue_positions"].iter_rows(named=True)
    ]
    deployment = Deployment(morpho=source, fee_recipient="")
    frames, _ = normalise.contract_frames(markets, positions, deployment, chain_id, block, timestamp)
    return frames
