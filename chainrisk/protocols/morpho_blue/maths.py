"""Morpho Blue's integer maths, mirrored with its rounding: MathLib, SharesMathLib, Morpho._accrueInterest,
Morpho._isHealthy and the liquidation incentive factor of Morpho.liquidate."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chainrisk.protocols.morpho_blue.constants import (
    LIQUIDATION_CURSOR,
    MAX_LIQUIDATION_INCENTIVE_FACTOR,
    ORACLE_PRICE_SCALE,
    VIRTUAL_ASSETS,
    VIRTUAL_SHARES,
    WAD,
)


def mul_div_down(x: int, y: int, d: int) -> int:
    return x * y // d


def mul_div_up(x: int, y: int, d: int) -> int:
    return (x * y + d - 1) // d


def w_mul_down(x: int, y: int) -> int:
    return x * y // WAD


def w_div_down(x: int, y: int) -> int:
    return x * WAD // y


def w_taylor_compounded(x: int, n: int) -> int:
    """MathLib.wTaylorCompounded: e^(x n) - 1 by its first three Taylor terms, each rounded down."""
    first = x * n
    second = mul_div_down(first, first, 2 * WAD)
    third = mul_div_down(second, first, 3 * WAD)
    return first + second + third


def to_shares_down(assets: int, total_assets: int, total_shares: int) -> int:
    return mul_div_down(assets, total_shares + VIRTUAL_SHARES, total_assets + VIRTUAL_ASSETS)


def to_assets_down(shares: int, total_assets: int, total_shares: int) -> int:
    return mul_div_down(shares, total_assets + VIRTUAL_ASSETS, total_shares + VIRTUAL_SHARES)


def to_assets_up(shares: int, total_assets: int, total_shares: int) -> int:
    return mul_div_up(shares, total_assets + VIRTUAL_ASSETS, total_shares + VIRTUAL_SHARES)


@dataclass(frozen=True)
class MarketState:
    """IMorpho.market(id): the six fields of the Market struct."""

    total_supply_assets: int  #: loan units
    total_supply_shares: int  #: supply shares
    total_borrow_assets: int  #: loan units
    total_borrow_shares: int  #: borrow shares
    last_update: int  #: timestamp of the last accrual
    fee: int  #: share of interest to the fee recipient, WAD


@dataclass(frozen=True)
class Accrual:
    market: MarketState  #: state after accrual
    interest: int  #: loan units added to both totals
    fee_shares: int  #: supply shares minted to the fee recipient


def accrue_interest(market: MarketState, borrow_rate: int, timestamp: int, has_irm: bool = True) -> Accrual:
    """Morpho._accrueInterest at `timestamp` with the IRM's per-second `borrow_rate` (WAD)."""
    elapsed = timestamp - market.last_update
    if elapsed <= 0:
        return Accrual(market, 0, 0)
    if not has_irm:
        return Accrual(replace(market, last_update=timestamp), 0, 0)
    interest = w_mul_down(market.total_borrow_assets, w_taylor_compounded(borrow_rate, elapsed))
    supply_assets = market.total_supply_assets + interest
    fee_shares = 0
    if market.fee:
        fee_amount = w_mul_down(interest, market.fee)
        fee_shares = to_shares_down(fee_amount, supply_assets - fee_amount, market.total_supply_shares)
    accrued = MarketState(
        total_supply_assets=supply_assets,
        total_supply_shares=market.total_supply_shares + fee_shares,
        total_borrow_assets=market.total_borrow_assets + interest,
        total_borrow_shares=market.total_borrow_shares,
        last_update=timestamp,
        fee=market.fee,
    )
    return Accrual(accrued, interest, fee_shares)


def collateral_value(collateral: int, price: int) -> int:
    """Collateral quoted in loan units: mulDivDown(collateral, price, ORACLE_PRICE_SCALE)."""
    return mul_div_down(collateral, price, ORACLE_PRICE_SCALE)


def max_borrow(collateral: int, price: int, lltv: int) -> int:
    """Morpho._isHealthy's maxBorrow: the collateral value times LLTV, both rounded down."""
    return w_mul_down(collateral_value(collateral, price), lltv)


def health_factor_wad(borrowed: int, collateral: int, price: int, lltv: int) -> int | None:
    """maxBorrow / borrowed in WAD, rounded down (blue-sdk MarketUtils.getHealthFactor); None without debt."""
    if borrowed == 0:
        return None
    return w_div_down(max_borrow(collateral, price, lltv), borrowed)


def liquidation_incentive_factor(lltv: int) -> int:
    """min(MAX_LIF, WAD / (WAD - LIQUIDATION_CURSOR * (WAD - lltv))) as Morpho.liquidate computes it (WAD)."""
    return min(MAX_LIQUIDATION_INCENTIVE_FACTOR, w_div_down(WAD, WAD - w_mul_down(LIQUIDATION_CURSOR, WAD - lltv)))
