"""Turns Aave V3 records into frames of the shared SQL contract (positions, wallet_health) and raw tables."""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from chainrisk.protocols.aave_v3.account_book import AMOUNTS, AccountBook, Ints
from chainrisk.protocols.aave_v3.account_table import AccountTable
from chainrisk.protocols.aave_v3.account_versions import MarketState
from chainrisk.protocols.aave_v3.constants import MAX_UINT256, PERCENTAGE_FACTOR, WAD
from chainrisk.protocols.aave_v3.events import AaveEvent
from chainrisk.protocols.aave_v3.liquidation import MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
from chainrisk.protocols.aave_v3.maths import RESERVE_FIGURES, reserve_figures
from chainrisk.protocols.aave_v3.reserve import EModeCategory, Reserve
from chainrisk.protocols.aave_v3.version import V3_0, PoolVersion
from chainrisk.protocols.frames import EXACT, HEALTH_WAD_CAP, exact, keyed
from chainrisk.units import HUGEINT_LIMIT, hugeint_or_none

PROTOCOL = "aave-v3"
#: Pool events whose caller (counterparty) also touched the pool.
CALLER_EVENTS = ("Supply", "Borrow", "Repay", "LiquidationCall")


def events_frame(events: list[AaveEvent]) -> pl.DataFrame:
    """The events' rows; an amount past the 38 digits a HUGEINT holds (a supply of 2e38 units where no cap stops it)
    is NULL, unknown rather than refused with every other event of the range."""
    columns = {
        name: [hugeint_or_none(getattr(e, name)) if name in ("amount", "amount2") else getattr(e, name) for e in events]
        for name in AaveEvent.__dataclass_fields__
    }
    return pl.DataFrame(
        columns,
        schema={
            "block_number": pl.Int64,
            "block_hash": pl.Utf8,
            "tx_hash": pl.Utf8,
            "log_index": pl.Int32,
            "contract": pl.Utf8,
            "event": pl.Utf8,
            "reserve": pl.Utf8,
            "wallet": pl.Utf8,
            "counterparty": pl.Utf8,
            "amount": EXACT,
            "amount2": EXACT,
            "debt_asset": pl.Utf8,
            "code": pl.Int32,
            "flag": pl.Boolean,
        },
    ).pipe(exact)


def reserves_frame(
    reserves: list[Reserve],
    chain_id: int,
    market: str,
    block: int,
    base_unit: int,
    version: PoolVersion = V3_0,
    pool_revision: int | None = None,
    timestamp: int | None = None,
) -> pl.DataFrame:
    """Reserve rows with the pool's version (as read from its views) and what that version has: the liquidation
    grace period end (3.1+), the deficit (3.3+) and isolation mode and siloed borrowing (before 3.7: their bits,
    deprecated there, may still hold an old value), NULL for a version without them; and the reserve's totals at the
    block (`timestamp`): its tokens' stored supplies, the totalSupply each token answers and the supply cap as the pool
    checks it (maths.reserve_figures)."""
    rows = []
    # Grace periods came with 3.1, deficits with 3.3's liquidation rules.
    has_grace, has_deficit = version.has_grace_period, version.position_size_close_factor
    for r in reserves:
        cfg: dict[str, object] = asdict(r.config)
        if not version.has_isolation_mode:
            cfg |= dict.fromkeys(("borrowable_in_isolation", "siloed_borrowing", "debt_ceiling"))
        rows.append(
            {
                "asset": r.asset,
                "symbol": r.symbol,
                "reserve_id": r.reserve_id,
                "configuration": hex(r.configuration_word),
                **cfg,
                "a_token": r.a_token,
                "variable_debt_token": r.variable_debt_token,
                "stable_debt_token": r.stable_debt_token,
                "liquidity_index": r.liquidity_index,
                "variable_borrow_index": r.variable_borrow_index,
                "liquidity_rate": r.liquidity_rate,
                "variable_borrow_rate": r.variable_borrow_rate,
                "last_update_timestamp": r.last_update_timestamp,
                "normalized_income": r.normalized_income,
                "normalized_variable_debt": r.normalized_variable_debt,
                "price": r.price,
                "price_usd": r.price / base_unit if r.price else None,
                "isolation_mode_total_debt": r.isolation_mode_total_debt if version.has_isolation_mode else None,
                "pool_version": f"{version.major}.{version.minor}",
                "pool_revision": pool_revision,
                "liquidation_grace_period_until": r.liquidation_grace_period_until if has_grace else None,
                "deficit": r.deficit if has_deficit else None,
                **_supplies(r, version, timestamp),
                "price_source": r.price_source,
                "interest_rate_strategy": r.interest_rate_strategy,
                **dict(zip(RATE_CURVE_COLUMNS, r.rate_curve or (None,) * len(RATE_CURVE_COLUMNS), strict=True)),
            }
        )
    exact_columns = (
        "liquidity_index",
        "variable_borrow_index",
        "liquidity_rate",
        "variable_borrow_rate",
        "normalized_income",
        "normalized_variable_debt",
        "price",
        "isolation_mode_total_debt",
        "deficit",
        *SUPPLY_COLUMNS,
        *RESERVE_FIGURES,
        *RATE_CURVE_COLUMNS,
    )
    frame = pl.DataFrame(
        rows,
        schema_overrides={
            **{c: EXACT for c in exact_columns},
            "pool_revision": pl.Int64,
            "liquidation_grace_period_until": pl.Int64,
            "price_usd": pl.Float64,
            "borrowable_in_isolation": pl.Boolean,
            "siloed_borrowing": pl.Boolean,
            "debt_ceiling": pl.Int64,
            "stable_debt_last_update": pl.Int64,
            "price_source": pl.Utf8,
            "interest_rate_strategy": pl.Utf8,
        },
        infer_schema_length=None,
    )
    return keyed(frame, chain_id, market, block)


#: raw_aave_v3_reserves' interest rate curve (Reserve.rate_curve, ray; NULL where the strategy answers no known getter).
RATE_CURVE_COLUMNS = (
    "optimal_usage_ratio",
    "base_variable_borrow_rate",
    "variable_rate_slope1",
    "variable_rate_slope2",
)
#: raw_aave_v3_reserves' stored supplies (exact): the tokens' scaled totals, the treasury's accrued share, and before
#: 3.2 the stable debt's principal and average rate (NULL from 3.2, and where a token did not answer).
SUPPLY_COLUMNS = (
    "a_token_scaled_total_supply",
    "variable_debt_scaled_total_supply",
    "accrued_to_treasury",
    "stable_debt_principal",
    "stable_debt_avg_rate",
)


def _supplies(r: Reserve, version: PoolVersion, timestamp: int | None) -> dict[str, int | None]:
    """A reserve's supply and total columns (SUPPLY_COLUMNS, stable_debt_last_update, maths.RESERVE_FIGURES)."""
    stable = version.has_stable_debt
    return {
        "a_token_scaled_total_supply": r.a_token_scaled_supply,
        "variable_debt_scaled_total_supply": r.variable_debt_scaled_supply,
        "accrued_to_treasury": r.accrued_to_treasury,
        "stable_debt_principal": r.stable_principal if stable else None,
        "stable_debt_avg_rate": r.stable_avg_rate if stable else None,
        "stable_debt_last_update": r.stable_last_update if stable else None,
        **reserve_figures(version, r, r.normalized_income, r.normalized_variable_debt, timestamp),
    }


def emode_frame(
    categories: list[EModeCategory], chain_id: int, market: str, block: int, version: PoolVersion = V3_0
) -> pl.DataFrame:
    """Category rows; the 3.2+ collateral and borrowable bitmaps and the 3.6 ltvzero bitmap as hex words (uint128
    overflows HUGEINT), the 3.7 isolated flag, NULL for a version without them (bit i = reserve id i)."""
    columns = (
        "category_id",
        "ltv",
        "liquidation_threshold",
        "liquidation_bonus",
        "price_source",
        "label",
        "price_source_price",
    )
    bitmaps = not version.emode_by_reserve_category
    rows = [
        (
            *(getattr(c, k) for k in columns),
            hex(c.collateral_bitmap) if bitmaps else None,
            hex(c.borrowable_bitmap) if bitmaps else None,
            hex(c.ltvzero_bitmap) if version.emode_decoupled else None,
            c.isolated if version.isolated_emode else None,
        )
        for c in categories
    ]
    frame = pl.DataFrame(
        rows,
        schema={
            "category_id": pl.Int32,
            "ltv": pl.Int32,
            "liquidation_threshold": pl.Int32,
            "liquidation_bonus": pl.Int32,
            "price_source": pl.Utf8,
            "label": pl.Utf8,
            "price_source_price": EXACT,
            "collateral_bitmap": pl.Utf8,
            "borrowable_bitmap": pl.Utf8,
            "ltvzero_bitmap": pl.Utf8,
            "isolated": pl.Boolean,
        },
        orient="row",
    )
    return keyed(frame, chain_id, market, block)


def accounts_frame(book: AccountBook, chain_id: int, market: str, block: int) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "wallet": book.wallets,
            "user_configuration": book.configurations,
            "emode_category": pl.Series(book.emodes, dtype=pl.Int32),
        },
        schema={"wallet": pl.Utf8, "user_configuration": pl.Utf8, "emode_category": pl.Int32},
    )
    return keyed(frame, chain_id, market, block)


def storable(book: AccountBook) -> AccountBook:
    """`book` without the accounts holding a scaled balance past the 38 digits a HUGEINT holds (a reserve without a
    supply cap, a token of absurd supply): the raw tables cannot hold them, so they have no raw rows, and a later
    snapshot, not finding them there, reads them again."""
    largest = max((getattr(book, c).max() for c in AMOUNTS if len(getattr(book, c))), default=0)
    if largest < HUGEINT_LIMIT:
        return book
    oversized = np.zeros(len(book), dtype=bool)
    for c in AMOUNTS:
        oversized[book.holder[(getattr(book, c) >= HUGEINT_LIMIT).astype(bool)]] = True
    return book.where(~oversized)


def balances_frame(book: AccountBook, reserves: list[Reserve], chain_id: int, market: str, block: int) -> pl.DataFrame:
    """The raw balances the lens read: scaled aToken and variable debt, stable debt, per wallet and reserve (the
    reserves `reserves` lists)."""
    asset_by_id = {r.reserve_id: r.asset for r in reserves}
    listed = np.flatnonzero(np.isin(book.reserve_id, list(asset_by_id)))

    frame = pl.DataFrame(
        {
            "wallet": book.wallets.gather(book.holder[listed]),
            "asset": pl.Series(book.reserve_id[listed]).replace_strict(asset_by_id, return_dtype=pl.Utf8),
            **{c: pl.Series(getattr(book, c)[listed].tolist(), dtype=EXACT) for c in AMOUNTS},
        },
        schema={
            "wallet": pl.Utf8,
            "asset": pl.Utf8,
            "scaled_a_token": EXACT,
            "scaled_variable_debt": EXACT,
            "stable_debt": EXACT,
        },
    )
    return keyed(frame, chain_id, market, block)


def market_state(
    reserves: list[Reserve], categories: list[EModeCategory], version: PoolVersion, timestamp: int
) -> MarketState:
    """What every account of the pool is computed against at the snapshot block (`timestamp`)."""
    return MarketState(version, {r.reserve_id: r for r in reserves}, {c.category_id: c for c in categories}, timestamp)


def _floats(values: Ints) -> list[float]:
    return [float(v) for v in values]


def _only_accounts(table: AccountTable, accounts: npt.NDArray[np.intp]) -> AccountTable:
    """`table`'s per-account figures of `accounts` only (its rows as they are)."""
    per_account = [f.name for f in fields(table) if f.name not in ("version", "rows")]
    return replace(table, **{name: getattr(table, name)[accounts] for name in per_account})


def contract_frames(
    book: AccountBook, table: AccountTable, chain_id: int, market: str, block: int, timestamp: int, base_unit: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(positions, wallet_health) rows for the public SQL contract, from account_table's columns (`table`, of
    `book`): a position row per reserve with a supply or a debt, a health row per account."""
    version = table.version
    rows = table.rows
    held = (rows.supplied != 0) | (rows.debt != 0)
    # A balance no HUGEINT holds has no row; an account the pool cannot value, or whose values no HUGEINT holds,
    # keeps its rows' amounts but not their values, and has no health row (quality.oversized_issues says why).
    oversized = table.oversized_accounts
    any_oversized = bool(oversized.any())
    if any_oversized:
        held &= ~((rows.supplied >= HUGEINT_LIMIT) | (rows.debt >= HUGEINT_LIMIT)).astype(bool)
    kept = np.flatnonzero(held)
    term = rows.term[kept]

    def per_position(values: list[Any], dtype: type[pl.DataType]) -> pl.Series:
        """A figure of each row's (reserve, e-mode) terms, over the positions kept."""
        return pl.Series(values, dtype=dtype).gather(term)

    reserves, terms = rows.reserves, rows.rules
    owners = rows.account[kept]
    supplied, debt, price, unit = rows.supplied[kept], rows.debt[kept], rows.price[kept], rows.unit[kept]
    # GenericLogic counts a supply as collateral when its bit is set and, before 3.6, the reserve's own threshold
    # is not 0 (3.6 counts any flagged supply: a reserve may be collateral only in an e-mode).
    collateral = np.where(rows.counts_as_collateral[kept], supplied, np.zeros(len(kept), dtype=object))
    # Python's int / int is the correctly rounded quotient; the object columns keep exactly that figure.
    price_usd: Ints = price / base_unit
    # The pool's own values: floored collateral; debt floored before 3.5, rounded up from 3.5.
    collateral_base = np.where(collateral != 0, rows.collateral_base[kept], 0)
    debt_base = np.where(rows.borrowing[kept], rows.debt_base[kept], debt * price // unit)
    if any_oversized:
        unvalued = np.flatnonzero(oversized[owners])
        collateral_base, debt_base = collateral_base.astype(object), debt_base.astype(object)
        collateral_base[unvalued] = None
        debt_base[unvalued] = None
    emodes = pl.Series(book.emodes, dtype=pl.Int32)
    position_columns: dict[str, object] = {
        "wallet": book.wallets.gather(owners),
        "asset": per_position([r.asset for r in reserves], pl.Utf8),
        "symbol": per_position([r.symbol for r in reserves], pl.Utf8),
        "decimals": per_position([r.config.decimals for r in reserves], pl.Int32),
        "supplied_amount": supplied.tolist(),
        "collateral_amount": collateral.tolist(),
        "debt_amount": debt.tolist(),
        "used_as_collateral": rows.used_as_collateral[kept],
        "is_borrowing": rows.borrowing[kept],
        "price": price.tolist(),
        "price_usd": _floats(price_usd),
        "supplied_usd": _floats(supplied / unit * price_usd),
        "collateral_usd": _floats(collateral / unit * price_usd),
        "debt_usd": _floats(debt / unit * price_usd),
        "ltv_bps": per_position([r.ltv for r in terms], pl.Int32),
        "liquidation_threshold_bps": per_position([r.liquidation_threshold for r in terms], pl.Int32),
        "liquidation_bonus_bps": per_position([r.liquidation_bonus for r in terms], pl.Int32),
        "emode_category": emodes.gather(owners),
        "price_scale": unit.tolist(),
        "collateral_base": collateral_base.tolist(),
        "debt_base": debt_base.tolist(),
    }
    has_debt = table.health_factor != MAX_UINT256
    wallets, emodes_rated = book.wallets, emodes
    if any_oversized:
        rated = np.flatnonzero(~oversized)
        table, has_debt = _only_accounts(table, rated), has_debt[rated]
        wallets, emodes_rated = wallets.gather(rated), emodes.gather(rated)
    health_columns: dict[str, object] = {
        "wallet": wallets,
        "collateral_usd": _floats(table.total_collateral_base / base_unit),
        "debt_usd": _floats(table.total_debt_base / base_unit),
        "health_factor": [h / WAD if d else None for h, d in zip(table.health_factor, has_debt, strict=True)],
        "health_factor_wad": [
            min(h, HEALTH_WAD_CAP) if d else None for h, d in zip(table.health_factor, has_debt, strict=True)
        ],
        "total_collateral_base": table.total_collateral_base.tolist(),
        "total_debt_base": table.total_debt_base.tolist(),
        "available_borrows_base": table.available_borrows_base.tolist(),
        "liquidation_threshold_bps": table.current_liquidation_threshold.tolist(),
        "ltv_bps": table.ltv.tolist(),
        "emode_category": emodes_rated,
    }
    position_frame = pl.DataFrame(
        position_columns,
        schema={
            "wallet": pl.Utf8,
            "asset": pl.Utf8,
            "symbol": pl.Utf8,
            "decimals": pl.Int32,
            "supplied_amount": EXACT,
            "collateral_amount": EXACT,
            "debt_amount": EXACT,
            "used_as_collateral": pl.Boolean,
            "is_borrowing": pl.Boolean,
            "price": EXACT,
            "price_usd": pl.Float64,
            "supplied_usd": pl.Float64,
            "collateral_usd": pl.Float64,
            "debt_usd": pl.Float64,
            "ltv_bps": pl.Int32,
            "liquidation_threshold_bps": pl.Int32,
            "liquidation_bonus_bps": pl.Int32,
            "emode_category": pl.Int32,
            "price_scale": EXACT,
            "collateral_base": EXACT,
            "debt_base": EXACT,
        },
    )
    health_frame = pl.DataFrame(
        health_columns,
        schema={
            "wallet": pl.Utf8,
            "collateral_usd": pl.Float64,
            "debt_usd": pl.Float64,
            "health_factor": pl.Float64,
            "health_factor_wad": EXACT,
            "total_collateral_base": EXACT,
            "total_debt_base": EXACT,
            "available_borrows_base": EXACT,
            "liquidation_threshold_bps": pl.Int32,
            "ltv_bps": pl.Int32,
            "emode_category": pl.Int32,
        },
    )
    labels = [
        pl.lit(PROTOCOL).alias("protocol"),
        pl.lit(timestamp, pl.Int64).alias("block_timestamp"),
        pl.lit(market).alias("source"),
    ]
    rules = [
        (pl.col("liquidation_threshold_bps").cast(EXACT) * WAD // PERCENTAGE_FACTOR)
        .cast(pl.Decimal(38, 0))
        .alias("liquidation_threshold_wad"),
        (pl.col("liquidation_bonus_bps").cast(EXACT) * WAD // PERCENTAGE_FACTOR)
        .cast(pl.Decimal(38, 0))
        .alias("liquidation_bonus_wad"),
        pl.lit(1 / base_unit).alias("base_currency_usd"),
        # GenericLogic: the floored average threshold before 3.5, the exact threshold-weighted sum from 3.5.
        pl.lit("weighted-threshold" if version.directional_rounding else "average-threshold").alias("health_rule"),
        # LiquidationLogic: DEFAULT_LIQUIDATION_CLOSE_FACTOR 50 %, all of it at CLOSE_FACTOR_HF_THRESHOLD 0.95 or
        # below; from 3.3 all of it too where the debt or the collateral is worth under
        # MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD ($2,000), and then never only half of it (MustNotLeaveDust).
        pl.lit(0.5).alias("close_factor"),
        pl.lit(0.95).alias("full_close_below_health"),
        pl.lit(MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD if version.position_size_close_factor else None, EXACT).alias(
            "full_close_below_base"
        ),
    ]
    return (
        keyed(position_frame, chain_id, market, block).with_columns(*labels, *rules),
        keyed(health_frame, chain_id, market, block).with_columns(labels),
    )
