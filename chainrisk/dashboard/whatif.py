"""What-if for one wallet: its latest positions with prices moved and amounts changed, re-scored by the health engine.

Prices and amounts stay exact integers. The engine values a position at its snapshot price with the adapter's
exact `collateral_base` / `debt_base` (the chain's own figures), so a row whose price or amount changes gets
those columns recomputed here as the engine computes any other price, floor(amount * price / price_scale);
untouched rows keep the chain's values, and a scenario with no change reproduces the stored health factor exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

import polars as pl

from chainrisk.errors import UserError
from chainrisk.scoring.health import value_positions, wallet_health
from chainrisk.units import BPS, MARKET_KEY

#: Columns of `positions` that hold exact integers (HUGEINT, read as Decimal(38,0)).
EXACT_COLUMNS = (
    "supplied_amount",
    "collateral_amount",
    "debt_amount",
    "price",
    "price_scale",
    "collateral_base",
    "debt_base",
    "liquidation_threshold_wad",
)


@dataclass(frozen=True)
class AmountChange:
    """Collateral added to, or debt repaid on, one position (token base units, exact)."""

    protocol: str  #: the position's protocol
    chain_id: int  #: its chain
    market: str  #: its market
    asset: str  #: the token's address
    collateral_delta: int = 0  #: added collateral (base units, >= 0)
    debt_delta: int = 0  #: change of debt (base units, <= 0 to repay)


def to_base_units(tokens: str | Decimal, decimals: int) -> int:
    """Whole-token amount typed by a person ("1.5") in the token's base units, exactly (rounded down)."""
    try:
        amount = Decimal(str(tokens).strip().replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise UserError(f"{tokens!r} is not an amount; type a number of tokens such as 1.5") from None
    if not amount.is_finite() or amount < 0:
        raise UserError(f"{tokens!r} is not an amount; type a positive number of tokens such as 1.5")
    return int(amount.scaleb(decimals).to_integral_value(rounding=ROUND_FLOOR))


def exact(positions: pl.DataFrame) -> pl.DataFrame:
    """The positions with their exact columns as Int128 (Python ints when read out)."""
    return positions.with_columns(pl.col(c).cast(pl.Int128) for c in EXACT_COLUMNS if c in positions.columns)


def apply_scenario(
    positions: pl.DataFrame, price_change_bps: Mapping[str, int], changes: Sequence[AmountChange] = ()
) -> pl.DataFrame:
    """The positions with each symbol's oracle price moved by `price_change_bps` (-9000 is -90 %), floored as
    apply_multipliers floors a shocked price (a price the protocol fixes, `price_fixed`, stays), and the amount
    `changes` applied (debt never below zero)."""
    frame = exact(positions)
    rows = frame.to_dicts()
    for row in rows:
        change_bps = 0 if row.get("price_fixed") else price_change_bps.get(row["symbol"], 0)
        mine = [
            c
            for c in changes
            if (c.protocol, c.chain_id, c.market, c.asset)
            == (row["protocol"], row["chain_id"], row["market"], row["asset"])
        ]
        if change_bps == 0 and not mine:
            continue
        price = row["price"] * (BPS + change_bps) // BPS
        collateral = row["collateral_amount"] + sum(c.collateral_delta for c in mine)
        debt = max(row["debt_amount"] + sum(c.debt_delta for c in mine), 0)
        unit = row["price_scale"] if row.get("price_scale") else 10 ** row["decimals"]
        row["supplied_amount"] += collateral - row["collateral_amount"]
        row.update(
            price=price,
            collateral_amount=collateral,
            debt_amount=debt,
            is_borrowing=debt > 0,
            collateral_base=collateral * price // unit,
            debt_base=debt * price // unit,
        )
    return pl.DataFrame(rows, schema=frame.schema, orient="row")


def health_by_market(positions: pl.DataFrame) -> pl.DataFrame:
    """Per market: collateral and debt (USD), health factor and whether it is liquidatable, by the engine."""
    if positions.is_empty():
        return pl.DataFrame(
            schema={
                "protocol": pl.String,
                "chain_id": pl.Int64,
                "market": pl.String,
                "collateral_usd": pl.Float64,
                "debt_usd": pl.Float64,
                "health_factor": pl.Float64,
                "liquidatable": pl.Boolean,
            }
        )
    valued = value_positions(positions)
    return (
        wallet_health(valued)
        .select(*MARKET_KEY, "collateral_usd", "debt_usd", "health_factor", "liquidatable")
        .sort(MARKET_KEY)
        .collect()
    )
