"""A past Aave V3 snapshot's positions rebuilt from its raw tables as stored (raw_aave_v3_reserves, _emode_categories,
_accounts, _balances): the records the snapshot read, back from their rows, through the same maths and frames."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from chainrisk.protocols.aave_v3 import normalise, quality
from chainrisk.protocols.aave_v3.account_book import AccountBook
from chainrisk.protocols.aave_v3.account_table import account_table
from chainrisk.protocols.aave_v3.reserve import EModeCategory, Reserve
from chainrisk.protocols.aave_v3.snapshot import configuration_of
from chainrisk.protocols.aave_v3.version import PoolVersion


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _maybe(value: Any) -> int | None:
    """An exact column that may be NULL (not read, or a row written before it existed)."""
    return int(value) if value is not None else None


def reserves_of(rows: pl.DataFrame) -> tuple[list[Reserve], PoolVersion]:
    """The Reserve records raw_aave_v3_reserves rows were written from, and the pool's version."""
    reserves = []
    version = PoolVersion(3, 0)
    for row in rows.sort("reserve_id").iter_rows(named=True):
        version = PoolVersion.parse(row["pool_version"] or "3.0")
        word = int(row["configuration"], 16)
        reserves.append(
            Reserve(
                asset=row["asset"],
                symbol=row["symbol"] or "",
                reserve_id=row["reserve_id"],
                configuration_word=word,
                config=configuration_of(word, version),
                a_token=row["a_token"],
                variable_debt_token=row["variable_debt_token"],
                stable_debt_token=row["stable_debt_token"],
                liquidity_index=_int(row["liquidity_index"]),
                variable_borrow_index=_int(row["variable_borrow_index"]),
                liquidity_rate=_int(row["liquidity_rate"]),
                variable_borrow_rate=_int(row["variable_borrow_rate"]),
                last_update_timestamp=_int(row["last_update_timestamp"]),
                normalized_income=_int(row["normalized_income"]),
                normalized_variable_debt=_int(row["normalized_variable_debt"]),
                price=_int(row["price"]),
                isolation_mode_total_debt=_int(row["isolation_mode_total_debt"]),
                liquidation_grace_period_until=_int(row["liquidation_grace_period_until"]),
                deficit=_int(row["deficit"]),
                price_known=bool(row["price"]),
                a_token_scaled_supply=_maybe(row.get("a_token_scaled_total_supply")),
                variable_debt_scaled_supply=_maybe(row.get("variable_debt_scaled_total_supply")),
                accrued_to_treasury=_maybe(row.get("accrued_to_treasury")),
                stable_principal=_maybe(row.get("stable_debt_principal")),
                stable_avg_rate=_maybe(row.get("stable_debt_avg_rate")),
                stable_last_update=_maybe(row.get("stable_debt_last_update")),
                price_source=row.get("price_source"),
                interest_rate_strategy=row.get("interest_rate_strategy"),
                rate_curve=_curve(row),
            )
        )
    return reserves, version


def _curve(row: dict[str, Any]) -> tuple[int, int, int, int] | None:
    """A stored reserve row's interest rate curve (None where it was not read)."""
    values = [_maybe(row.get(column)) for column in normalise.RATE_CURVE_COLUMNS]
    if any(v is None for v in values):
        return None
    optimal, base, slope1, slope2 = (int(v or 0) for v in values)
    return optimal, base, slope1, slope2


def categories_of(rows: pl.DataFrame) -> list[EModeCategory]:
    return [
        EModeCategory(
            category_id=row["category_id"],
            ltv=row["ltv"],
            liquidation_threshold=row["liquidation_threshold"],
            liquidation_bonus=row["liquidation_bonus"],
            price_source=row["price_source"],
            label=row["label"],
            price_source_price=_int(row["price_source_price"]),
            collateral_bitmap=int(row["collateral_bitmap"] or "0x0", 16),
            borrowable_bitmap=int(row["borrowable_bitmap"] or "0x0", 16),
            ltvzero_bitmap=int(row["ltvzero_bitmap"] or "0x0", 16),
            isolated=bool(row.get("isolated")),
        )
        for row in rows.sort("category_id").iter_rows(named=True)
    ]


def base_unit_of(rows: pl.DataFrame) -> int:
    """AaveOracle.BASE_CURRENCY_UNIT, a power of ten, back from the reserves' exact and USD prices (price_usd =
    price / unit); 1e8 (USD markets) when no reserve has a price."""
    for price, usd in rows.select("price", "price_usd").iter_rows():
        if price and usd:
            return int(10 ** round(math.log10(int(price) / usd)))
    return 10**8


def rebuild_positions(
    raw: dict[str, pl.DataFrame], chain_id: int, source: str, block: int, timestamp: int
) -> pl.DataFrame:
    """The positions the snapshot at `block` scored, from the raw tables' rows of that snapshot."""
    base_unit = base_unit_of(raw["raw_aave_v3_reserves"])
    reserves, version = reserves_of(raw["raw_aave_v3_reserves"])
    categories = categories_of(raw["raw_aave_v3_emode_categories"])
    book = AccountBook.from_frames(raw["raw_aave_v3_accounts"], raw["raw_aave_v3_balances"], reserves)
    state = normalise.market_state(reserves, categories, version, timestamp)
    table = account_table(book, state)
    positions, health = normalise.contract_frames(book, table, chain_id, source, block, timestamp, base_unit)
    positions, _ = quality.without_unknowns(positions, health, table, book.wallets, reserves)
    return positions
