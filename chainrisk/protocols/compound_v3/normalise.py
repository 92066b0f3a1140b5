"""Turns Compound V3 (Comet) records into its raw frames and the shared `positions` / `wallet_health` contract.

A Comet is its own risk unit (`market` = `source` = the indexed contract). Its base currency is the unit of
Comet's prices (8 decimals of the currency its feeds quote: USD, or ETH for the WETH markets): a collateral's
`collateral_base` is mulPrice(balance, price, scale) and the debt's `debt_base` the magnitude of
signedMulPrice(presentValue(principal), basePrice, baseScale), so the engine's per-position rule, sum of
floor(collateral_base x liquidateCollateralFactor / 1e18) against the debt, is Comet.isLiquidatable's check.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

import polars as pl

from chainrisk.protocols.compound_v3.constants import FACTOR_PER_BPS, WAD
from chainrisk.protocols.compound_v3.events import CometEvent
from chainrisk.protocols.compound_v3.maths import (
    AbsorbOutcome,
    Holding,
    absorb_outcome,
    borrow_capacity,
    collateral_value,
    debt_value,
    health_factor_wad,
    is_liquidatable,
    liquidation_capacity,
    mul_price,
    present_value_borrow,
    present_value_supply,
)
from chainrisk.protocols.compound_v3.snapshot import Account, Market
from chainrisk.protocols.frames import EXACT, HEALTH_SCHEMA, HEALTH_WAD_CAP, POSITION_SCHEMA, exact, keyed
from chainrisk.protocols.quality import Issue
from chainrisk.units import HUGEINT_LIMIT, hugeint_or_none

PROTOCOL = "compound-v3"

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "block_number": pl.Int64(),
    "block_hash": pl.Utf8(),
    "tx_hash": pl.Utf8(),
    "log_index": pl.Int32(),
    "event": pl.Utf8(),
    "wallet": pl.Utf8(),
    "counterparty": pl.Utf8(),
    "asset": pl.Utf8(),
    "amount": EXACT(),
    "value": EXACT(),
    "collateral_amount": EXACT(),
}


def events_frame(events: list[CometEvent]) -> pl.DataFrame:
    columns = {name: [getattr(e, name) for e in events] for name in EVENT_SCHEMA}
    return exact(pl.DataFrame(columns, schema=EVENT_SCHEMA))


def market_frame(market: Market, chain_id: int, block: int) -> pl.DataFrame:
    """raw_compound_v3_markets: one row, the market's configuration, totals, rates and reserves."""
    row = {
        "base_token": market.base.address,
        "base_symbol": market.base.symbol,
        "base_decimals": market.base.decimals,
        "base_price_feed": market.base_price_feed,
        "base_price": hugeint_or_none(market.base_price),
        "base_scale": market.base_scale,
        **asdict(market.totals),
        **asdict(market.model),
        "utilization": market.utilization,
        "supply_rate": market.supply_rate,
        "borrow_rate": market.borrow_rate,
        "accrued_supply_index": market.accrued.supply,
        "accrued_borrow_index": market.accrued.borrow,
        "store_front_price_factor": market.store_front_price_factor,
        "target_reserves": market.target_reserves,
        "reserves": market.reserves,
        "base_balance": market.base_balance,
        "base_borrow_min": market.base_borrow_min,
        "num_assets": len(market.assets),
        "base_currency_usd": market.usd_per_price_unit,
        "usd_route": market.usd_route,
    }
    small = {"base_decimals": pl.Int32, "last_accrual_time": pl.Int64, "pause_flags": pl.Int32, "num_assets": pl.Int32}
    text = {"base_token", "base_symbol", "base_price_feed", "usd_route"}
    schema = {k: small.get(k, pl.Utf8 if k in text else EXACT) for k in row} | {"base_currency_usd": pl.Float64}
    return keyed(pl.DataFrame([row], schema=schema), chain_id, market.comet, block)


def market_row(market: Market) -> dict[str, object]:
    """The market's `markets` row: named as Compound names its Comets (cUSDCv3), reserves absorbing bad debt first
    (absorb charges them what the collateral does not cover), supply and borrow at present value."""
    symbol = market.base.symbol
    return {
        "market": market.comet,
        "name": f"c{symbol}v3" if symbol and not symbol.startswith("0x") else None,
        "parameters": liquidate_factors(market),
        "loan_asset": market.base.address,
        "bad_debt_rule": "reserves",
        "supply_amount": present_value_supply(market.accrued.supply, market.totals.total_supply_base),
        "debt_amount": present_value_borrow(market.accrued.borrow, market.totals.total_borrow_base),
        "reserves_amount": market.reserves,
    }


def liquidate_factors(market: Market) -> str | None:
    """The market's liquidate collateral factors as its label's parameters: 'liquidate CF 83.0%', or the range
    over its collaterals ('liquidate CF 70.0-90.0%'); None without a collateral."""
    tenths = sorted({(a.liquidate_collateral_factor * 1000 + WAD // 2) // WAD for a in market.assets})
    if not tenths:
        return None
    low, high = (f"{t // 10}.{t % 10}" for t in (tenths[0], tenths[-1]))
    return f"liquidate CF {low}%" if low == high else f"liquidate CF {low}-{high}%"


def assets_frame(market: Market, chain_id: int, block: int) -> pl.DataFrame:
    """raw_compound_v3_assets: getAssetInfo of each collateral, its price and what the protocol holds."""
    rows = [
        {
            "asset_offset": a.offset,
            "asset": a.token.address,
            "symbol": a.token.symbol,
            "decimals": a.token.decimals,
            "price_feed": a.price_feed,
            "price": hugeint_or_none(a.price),
            "scale": a.scale,
            "borrow_collateral_factor": a.borrow_collateral_factor,
            "liquidate_collateral_factor": a.liquidate_collateral_factor,
            "liquidation_factor": a.liquidation_factor,
            "supply_cap": a.supply_cap,
            "total_supply_asset": a.total_supply,
            "collateral_reserves": a.reserves,
            "price_usd": _usd(a.price, market.usd_per_price_unit),
        }
        for a in market.assets
    ]
    schema = {
        "asset_offset": pl.Int32,
        "asset": pl.Utf8,
        "symbol": pl.Utf8,
        "decimals": pl.Int32,
        "price_feed": pl.Utf8,
        "price": EXACT,
        "scale": EXACT,
        "borrow_collateral_factor": EXACT,
        "liquidate_collateral_factor": EXACT,
        "liquidation_factor": EXACT,
        "supply_cap": EXACT,
        "total_supply_asset": EXACT,
        "collateral_reserves": EXACT,
        "price_usd": pl.Float64,
    }
    return keyed(pl.DataFrame(rows, schema=schema), chain_id, market.comet, block)


def accounts_frames(
    accounts: list[Account], market: Market, chain_id: int, block: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """raw_compound_v3_accounts (userBasic, with the balances accrued to the snapshot) and
    raw_compound_v3_collateral (userCollateral of the entered assets), for accounts holding anything."""
    indices = market.accrued
    rows: list[dict[str, object]] = []
    collateral: list[dict[str, object]] = []
    for a in accounts:
        if not (a.principal or a.collateral):
            continue
        rows.append(
            {
                "wallet": a.wallet,
                "principal": a.principal,
                "base_tracking_index": a.base_tracking_index,
                "base_tracking_accrued": a.base_tracking_accrued,
                "assets_in": a.assets_in,
                "balance": present_value_supply(indices.supply, a.principal) if a.principal > 0 else 0,
                "borrow_balance": present_value_borrow(indices.borrow, -a.principal) if a.principal < 0 else 0,
            }
        )
        collateral.extend({"wallet": a.wallet, "asset": asset, "balance": b} for asset, b in a.collateral.items())
    accounts_schema = {
        "wallet": pl.Utf8,
        "principal": EXACT,
        "base_tracking_index": EXACT,
        "base_tracking_accrued": EXACT,
        "assets_in": pl.Int64,
        "balance": EXACT,
        "borrow_balance": EXACT,
    }
    collateral_schema = {"wallet": pl.Utf8, "asset": pl.Utf8, "balance": EXACT}
    return (
        keyed(pl.DataFrame(rows, schema=accounts_schema), chain_id, market.comet, block),
        keyed(pl.DataFrame(collateral, schema=collateral_schema), chain_id, market.comet, block),
    )


def holdings(account: Account, market: Market) -> list[Holding] | None:
    """The account's entered collateral as Comet's checks read it; None when a price it needs is unknown (a
    reverting feed: Comet's own check would revert too)."""
    found = []
    for asset in market.assets:
        balance = account.collateral.get(asset.token.address)
        if balance is None:
            continue
        if asset.price is None:
            return None
        found.append(
            Holding(
                balance,
                bool(account.assets_in >> asset.offset & 1),
                asset.price,
                asset.scale,
                asset.borrow_collateral_factor,
                asset.liquidate_collateral_factor,
                asset.liquidation_factor,
            )
        )
    return found


def oversized_tokens(account: Account, market: Market) -> set[str]:
    """The tokens whose figures for `account` reach 38 digits at Comet's prices: an entered collateral whose value
    does, every entered collateral when only their total does, the base token when the debt's value does. Such a
    value may pass 2^256 in Comet's own mulPrice or mulFactor, which then revert, and no HUGEINT holds it either way:
    the wallet keeps its amounts, not its values, and has no health (oversized_issues names it). Under 38 digits
    every product Comet's checks form stays far inside 2^255."""
    values = {
        a.token.address: mul_price(balance, a.price, a.scale)
        for a in market.assets
        if a.price is not None
        and (balance := account.collateral.get(a.token.address))
        and account.assets_in >> a.offset & 1
    }
    found = {token for token, value in values.items() if value >= HUGEINT_LIMIT}
    if not found and sum(values.values()) >= HUGEINT_LIMIT:
        found = set(values)
    base_price = market.base_price
    if base_price is not None and debt_value(account.principal, market.accrued, base_price, market.base_scale) >= (
        HUGEINT_LIMIT
    ):
        found.add(market.base.address)
    return found


def oversized_wallets(accounts: list[Account], market: Market) -> dict[str, set[str]]:
    """oversized_tokens of every account that has any."""
    return {a.wallet: found for a in accounts if (found := oversized_tokens(a, market))}


def oversized_issues(market: Market, oversized: dict[str, set[str]]) -> list[Issue]:
    """One `oracle_overflow` row per token some wallet's oversized figures name, with how many wallets."""
    counts = Counter(token for tokens in oversized.values() for token in tokens)
    symbols = {market.base.address: ("base", market.base.symbol)}
    symbols |= {a.token.address: ("collateral", a.token.symbol) for a in market.assets}
    found = []
    for token in sorted(counts):
        role, symbol = symbols[token]
        figure = "debt" if role == "base" else "collateral"
        detail = (
            f"{role} {symbol}: {counts[token]} wallet(s) whose {figure} value at Comet's price has 38 digits or more "
            "(Comet's own check may pass 2^256 and revert; no HUGEINT holds it)"
        )
        found.append(Issue(market.comet, token, "oracle_overflow", detail, "those wallets' values and health"))
    return found


Prediction = tuple[Account, AbsorbOutcome, bool, int | None]


def absorb_predictions(
    accounts: list[Account], market: Market, oversized: dict[str, set[str]] | None = None
) -> list[Prediction]:
    """(account, absorb outcome, liquidatable, health_factor_wad) of every borrower whose prices are known and whose
    figures fit (not in `oversized`); an outcome a HUGEINT cannot hold (a credit past 38 digits in base units at a
    tiny base price) is left out too."""
    found: list[Prediction] = []
    if market.base_price is None:
        return found
    for account in accounts:
        held = holdings(account, market)
        if account.principal >= 0 or held is None or account.wallet in (oversized or {}):
            continue
        debt = debt_value(account.principal, market.accrued, market.base_price, market.base_scale)
        outcome = absorb_outcome(
            account.principal, market.accrued, market.totals, market.base_price, market.base_scale, held
        )
        if any(abs(figure) >= HUGEINT_LIMIT for figure in asdict(outcome).values()):
            continue
        found.append((account, outcome, is_liquidatable(debt, held), health_factor_wad(debt, held)))
    return found


def absorbs_frame(predictions: list[Prediction], market: Market, chain_id: int, block: int) -> pl.DataFrame:
    """raw_compound_v3_absorbs: per borrower, what absorb() would do now (Comet.absorbInternal's arithmetic)."""
    rows = [
        {
            "wallet": a.wallet,
            "liquidatable": liquidatable,
            "health_factor_wad": min(hf, HEALTH_WAD_CAP) if hf is not None else None,
            **asdict(outcome),
        }
        for a, outcome, liquidatable, hf in predictions
    ]
    schema: dict[str, pl.DataType] = {"wallet": pl.Utf8(), "liquidatable": pl.Boolean(), "health_factor_wad": EXACT()}
    schema |= {name: EXACT() for name in AbsorbOutcome.__dataclass_fields__}
    return keyed(pl.DataFrame(rows, schema=schema), chain_id, market.comet, block)


def _usd(value: int | None, usd_per_unit: float | None) -> float | None:
    return value * usd_per_unit if value is not None and usd_per_unit is not None else None


def liquidation_bonus_wad(liquidation_factor: int) -> int:
    """The borrower is credited liquidationFactor of the collateral's value: collateral worth 1 / liquidationFactor
    leaves per unit of debt covered, as a bonus does elsewhere (rounded half up at 1e18)."""
    return (WAD * WAD + liquidation_factor // 2) // liquidation_factor if liquidation_factor else WAD


def recovery_wad(store_front_price_factor: int, liquidation_factor: int) -> int:
    """What the protocol recovers per unit of an absorbed collateral's value: absorb credits the borrower
    liquidationFactor of it, and buyCollateral sells it at the price less storeFrontPriceFactor x (1 -
    liquidationFactor) (Comet.quoteCollateral, mulFactor floored at 1e18), so the reserves are short only of what
    that sale leaves under the debt. A liquidationFactor of 0 (an asset being wound down) is no exception: absorb
    seizes it and credits nothing for it, and the store front sells it at 1 - storeFrontPriceFactor
    (contracts/Comet.sol and CometWithExtendedAssetList.sol, absorbInternal and quoteCollateral, at
    compound-finance/comet d5a30b0a; only an unmerged partial-liquidation branch skips such an asset)."""
    return WAD - store_front_price_factor * (WAD - liquidation_factor) // WAD


def contract_frames(
    accounts: list[Account],
    market: Market,
    chain_id: int,
    block: int,
    timestamp: int,
    oversized: dict[str, set[str]] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(positions, wallet_health) at the indices accrued to the snapshot: base supply and debt as balanceOf and
    borrowBalanceOf answer, collateral as collateralBalanceOf, health as isLiquidatable computes it after
    absorb's accrual. A wallet whose prices Comet cannot read (a reverting feed), or one in `oversized`
    (oversized_wallets), has positions but no health; a value unknown or past 38 digits is NULL."""
    oversized = oversized or {}
    comet, usd_per_unit, indices = market.comet, market.usd_per_price_unit, market.accrued
    base, base_price, base_scale = market.base, market.base_price, market.base_scale
    rows: list[dict[str, object]] = []
    health: list[dict[str, object]] = []
    for account in accounts:
        principal = account.principal
        supplied = present_value_supply(indices.supply, principal) if principal > 0 else 0
        borrowed = present_value_borrow(indices.borrow, -principal) if principal < 0 else 0
        debt = debt_value(principal, indices, base_price, base_scale) if base_price is not None else None
        common = {"market": comet, "wallet": account.wallet, "base_currency_usd": usd_per_unit}
        # A value Comet cannot price (a reverting feed) or no HUGEINT holds is NULL, never 0.
        if principal:
            rows.append(
                {
                    **common,
                    "asset": base.address,
                    "symbol": base.symbol,
                    "decimals": base.decimals,
                    "supplied_amount": supplied,
                    "collateral_amount": 0,
                    "debt_amount": borrowed,
                    "used_as_collateral": False,
                    "is_borrowing": borrowed > 0,
                    "price": hugeint_or_none(base_price) or 0,
                    "price_scale": base_scale,
                    "price_usd": _usd(base_price, usd_per_unit),
                    "collateral_base": 0,
                    "debt_base": hugeint_or_none(debt) if borrowed else 0,
                    "supplied_usd": _usd(mul_price(supplied, base_price, base_scale), usd_per_unit)
                    if base_price is not None
                    else None,
                    "collateral_usd": 0.0,
                    "debt_usd": _usd(debt, usd_per_unit),
                    "ltv_bps": 0,
                    "liquidation_threshold_bps": 0,
                    "liquidation_threshold_wad": 0,
                    "liquidation_bonus_bps": 10_000,
                    "liquidation_bonus_wad": WAD,
                }
            )
        for asset in market.assets:
            balance = account.collateral.get(asset.token.address)
            if not balance:
                continue
            entered = bool(account.assets_in >> asset.offset & 1)
            value = mul_price(balance, asset.price, asset.scale) if asset.price is not None else None
            counted = value if entered else 0
            bonus = liquidation_bonus_wad(asset.liquidation_factor)
            rows.append(
                {
                    **common,
                    "asset": asset.token.address,
                    "symbol": asset.token.symbol,
                    "decimals": asset.token.decimals,
                    "supplied_amount": balance,
                    "collateral_amount": balance if entered else 0,
                    "debt_amount": 0,
                    "used_as_collateral": entered,
                    "is_borrowing": False,
                    "price": hugeint_or_none(asset.price) or 0,
                    "price_scale": asset.scale,
                    "price_usd": _usd(asset.price, usd_per_unit),
                    "collateral_base": hugeint_or_none(value) if entered else 0,
                    "debt_base": 0,
                    "supplied_usd": _usd(value, usd_per_unit),
                    "collateral_usd": _usd(counted, usd_per_unit),
                    "debt_usd": 0.0,
                    "ltv_bps": asset.borrow_collateral_factor // FACTOR_PER_BPS,
                    "liquidation_threshold_bps": asset.liquidate_collateral_factor // FACTOR_PER_BPS,
                    "liquidation_threshold_wad": asset.liquidate_collateral_factor,
                    "liquidation_bonus_bps": bonus // FACTOR_PER_BPS,
                    "liquidation_bonus_wad": bonus,
                    "liquidation_recovery_wad": recovery_wad(market.store_front_price_factor, asset.liquidation_factor),
                }
            )
        held = holdings(account, market)
        if held is None or debt is None or account.wallet in oversized or not (principal or account.collateral):
            continue
        health.append(_health_row(account.wallet, comet, debt, held, usd_per_unit))
    labels = [
        pl.lit(PROTOCOL).alias("protocol"),
        pl.lit(chain_id, pl.Int64).alias("chain_id"),
        pl.lit(comet).alias("source"),
        pl.lit(block, pl.Int64).alias("block_number"),
        pl.lit(timestamp, pl.Int64).alias("block_timestamp"),
        pl.lit(0, pl.Int32).alias("emode_category"),
    ]
    position_frame = exact(pl.DataFrame(rows, schema=POSITION_SCHEMA)).with_columns(
        *labels,
        pl.lit("per-position").alias("health_rule"),
        # absorb() takes the whole debt and every entered collateral at once, crediting what exceeds the debt.
        pl.lit(1.0).alias("close_factor"),
        pl.lit(None, pl.Float64).alias("full_close_below_health"),
        pl.lit(True).alias("liquidation_takes_all"),
    )
    health_frame = exact(pl.DataFrame(health, schema=HEALTH_SCHEMA)).with_columns(*labels)
    return position_frame, health_frame


def _health_row(
    wallet: str, comet: str, debt: int, held: list[Holding], usd_per_unit: float | None
) -> dict[str, object]:
    """One wallet_health row: Comet's liquidation and borrow checks as figures, thresholds value-weighted."""
    total = sum(collateral_value(h) for h in held)
    adjusted = liquidation_capacity(held)
    hf = health_factor_wad(debt, held)

    def weighted(factor: str) -> int:
        weights = sum(collateral_value(h) * (getattr(h, factor) // FACTOR_PER_BPS) for h in held)
        return weights // total if total else 0

    return {
        "market": comet,
        "wallet": wallet,
        "collateral_usd": _usd(total, usd_per_unit),
        "debt_usd": _usd(debt, usd_per_unit),
        "health_factor": adjusted / debt if debt else None,
        "health_factor_wad": min(hf, HEALTH_WAD_CAP) if hf is not None else None,
        "total_collateral_base": total,
        "total_debt_base": debt,
        "available_borrows_base": max(0, borrow_capacity(held) - debt),
        "liquidation_threshold_bps": weighted("liquidate_collateral_factor"),
        "ltv_bps": weighted("borrow_collateral_factor"),
    }
