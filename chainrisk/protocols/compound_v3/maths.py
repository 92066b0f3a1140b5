"""Compound V3 (Comet) integer maths with Comet's own rounding: index accrual and the kinked rate model, present
and principal values, price and factor products, the liquidation and borrow checks, and absorb's outcome.

Each function names the function of compound-finance/comet it mirrors (contracts/Comet.sol, CometCore.sol); Python
ints stand for uint256/int256, and Solidity's signed division (which truncates toward zero) is `_div_toward_zero`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chainrisk.protocols.compound_v3.constants import BASE_INDEX_SCALE, FACTOR_SCALE, WAD


@dataclass(frozen=True)
class Totals:
    """CometExtInterface.totalsBasic(): the market's stored aggregates (CometStorage.TotalsBasic)."""

    base_supply_index: int  #: supply index at the last accrual, BASE_INDEX_SCALE (1e15) = 1
    base_borrow_index: int  #: borrow index at the last accrual
    tracking_supply_index: int  #: rewards tracking, supply side
    tracking_borrow_index: int  #: rewards tracking, borrow side
    total_supply_base: int  #: sum of positive principals
    total_borrow_base: int  #: sum of negative principals' magnitudes
    last_accrual_time: int  #: timestamp of the last accrual
    pause_flags: int  #: paused actions bitmap


@dataclass(frozen=True)
class RateModel:
    """The per-second kinked rate parameters, as Comet's public immutables give them (factors, 1e18 = 1)."""

    supply_kink: int  #: utilization where the supply slope changes
    supply_slope_low: int  #: supplyPerSecondInterestRateSlopeLow
    supply_slope_high: int  #: supplyPerSecondInterestRateSlopeHigh
    supply_base: int  #: supplyPerSecondInterestRateBase
    borrow_kink: int  #: utilization where the borrow slope changes
    borrow_slope_low: int  #: borrowPerSecondInterestRateSlopeLow
    borrow_slope_high: int  #: borrowPerSecondInterestRateSlopeHigh
    borrow_base: int  #: borrowPerSecondInterestRateBase


@dataclass(frozen=True)
class Indices:
    supply: int  #: base supply index
    borrow: int  #: base borrow index


@dataclass(frozen=True)
class Holding:
    """One collateral asset of an account, as Comet's checks read it."""

    balance: int  #: userCollateral(account, asset).balance
    entered: bool  #: the asset's bit in userBasic.assetsIn (only entered assets count)
    price: int  #: getPrice(priceFeed), 8 decimals
    scale: int  #: 10^decimals of the asset
    borrow_collateral_factor: int  #: 1e18 = 1
    liquidate_collateral_factor: int  #: 1e18 = 1
    liquidation_factor: int  #: 1e18 = 1


def _div_toward_zero(numerator: int, denominator: int) -> int:
    """Solidity's int256 division: the quotient truncated toward zero."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def mul_factor(n: int, factor: int) -> int:
    """Comet.mulFactor: n x factor / FACTOR_SCALE, rounded down."""
    return n * factor // FACTOR_SCALE


def mul_price(n: int, price: int, from_scale: int) -> int:
    """Comet.mulPrice: an amount of `from_scale` units in price units (8 decimals), rounded down."""
    return n * price // from_scale


def signed_mul_price(n: int, price: int, from_scale: int) -> int:
    """Comet.signedMulPrice: as mulPrice for a signed amount, truncated toward zero (a debt's value shrinks)."""
    return _div_toward_zero(n * price, from_scale)


def div_price(n: int, price: int, to_scale: int) -> int:
    """Comet.divPrice: price units back into `to_scale` units, rounded down."""
    return n * to_scale // price


def present_value_supply(index: int, principal: int) -> int:
    """CometCore.presentValueSupply: principal x index / BASE_INDEX_SCALE, rounded down."""
    return principal * index // BASE_INDEX_SCALE


def present_value_borrow(index: int, principal: int) -> int:
    """CometCore.presentValueBorrow: principal x index / BASE_INDEX_SCALE, rounded down."""
    return principal * index // BASE_INDEX_SCALE


def reserves(balance: int, totals: Totals, indices: Indices) -> int:
    """Comet.getReserves (compound-finance/comet contracts/Comet.sol): the base token the Comet holds (`balance`,
    its balanceOf) less its supply and plus its borrows, both at present value at the accrued `indices`."""
    supply = present_value_supply(indices.supply, totals.total_supply_base)
    return balance - supply + present_value_borrow(indices.borrow, totals.total_borrow_base)


def principal_value_supply(index: int, value: int) -> int:
    """CometCore.principalValueSupply: value x BASE_INDEX_SCALE / index, rounded down."""
    return value * BASE_INDEX_SCALE // index


def principal_value_borrow(index: int, value: int) -> int:
    """CometCore.principalValueBorrow: value x BASE_INDEX_SCALE / index, rounded up."""
    return (value * BASE_INDEX_SCALE + index - 1) // index


def present_value(principal: int, indices: Indices) -> int:
    """CometCore.presentValue: the supply balance of a positive principal, minus the borrow balance of a
    negative one."""
    if principal >= 0:
        return present_value_supply(indices.supply, principal)
    return -present_value_borrow(indices.borrow, -principal)


def principal_value(value: int, indices: Indices) -> int:
    """CometCore.principalValue: the signed principal of a signed present value."""
    if value >= 0:
        return principal_value_supply(indices.supply, value)
    return -principal_value_borrow(indices.borrow, -value)


def utilization(totals: Totals) -> int:
    """Comet.getUtilization: borrows over supply at the stored indices (1e18 = 100 %), rounded down."""
    supplied = present_value_supply(totals.base_supply_index, totals.total_supply_base)
    borrowed = present_value_borrow(totals.base_borrow_index, totals.total_borrow_base)
    return 0 if supplied == 0 else borrowed * FACTOR_SCALE // supplied


def _kinked(u: int, kink: int, base: int, low: int, high: int) -> int:
    if u <= kink:
        return base + mul_factor(low, u)
    return base + mul_factor(low, kink) + mul_factor(high, u - kink)


def supply_rate(model: RateModel, u: int) -> int:
    """Comet.getSupplyRate: the per-second supply rate at utilization `u`."""
    return _kinked(u, model.supply_kink, model.supply_base, model.supply_slope_low, model.supply_slope_high)


def borrow_rate(model: RateModel, u: int) -> int:
    """Comet.getBorrowRate: the per-second borrow rate at utilization `u`."""
    return _kinked(u, model.borrow_kink, model.borrow_base, model.borrow_slope_low, model.borrow_slope_high)


def accrued_interest_indices(totals: Totals, model: RateModel, timestamp: int) -> Indices:
    """Comet.accruedInterestIndices(now - lastAccrualTime): one step of simple interest at the rates of the stored
    utilization, index += mulFactor(index, rate x elapsed); what every view and the next accrual use."""
    supply, borrow = totals.base_supply_index, totals.base_borrow_index
    elapsed = timestamp - totals.last_accrual_time
    if elapsed > 0:
        u = utilization(totals)
        supply += mul_factor(supply, supply_rate(model, u) * elapsed)
        borrow += mul_factor(borrow, borrow_rate(model, u) * elapsed)
    return Indices(supply, borrow)


def debt_value(principal: int, indices: Indices, base_price: int, base_scale: int) -> int:
    """The magnitude of isLiquidatable's opening liquidity, signedMulPrice(presentValue(principal), basePrice,
    baseScale), for a negative principal (0 otherwise): the debt in price units, rounded toward zero."""
    if principal >= 0:
        return 0
    return -signed_mul_price(present_value(principal, indices), base_price, base_scale)


def collateral_value(holding: Holding) -> int:
    """mulPrice(balance, price, scale) of an entered asset (0 when not entered): its value in price units."""
    return mul_price(holding.balance, holding.price, holding.scale) if holding.entered else 0


def liquidation_capacity(holdings: Sequence[Holding]) -> int:
    """isLiquidatable's collateral side: the sum of mulFactor(value, liquidateCollateralFactor)."""
    return sum(mul_factor(collateral_value(h), h.liquidate_collateral_factor) for h in holdings)


def borrow_capacity(holdings: Sequence[Holding]) -> int:
    """isBorrowCollateralized's collateral side: the sum of mulFactor(value, borrowCollateralFactor)."""
    return sum(mul_factor(collateral_value(h), h.borrow_collateral_factor) for h in holdings)


def is_liquidatable(debt: int, holdings: Sequence[Holding]) -> bool:
    """Comet.isLiquidatable for a debt value `debt` (price units): the liquidity left after the liquidation
    capacity is negative. Comet's early return once liquidity is non-negative does not change the verdict."""
    return debt > 0 and liquidation_capacity(holdings) < debt


def health_factor_wad(debt: int, holdings: Sequence[Holding]) -> int | None:
    """Liquidation capacity over debt value in WAD, rounded down (None without debt): below 1e18 exactly when
    isLiquidatable holds. Comet defines no health factor; this is the ratio its check compares."""
    return None if debt == 0 else liquidation_capacity(holdings) * WAD // debt


def repay_and_supply_amount(old_principal: int, new_principal: int) -> tuple[int, int]:
    """Comet.repayAndSupplyAmount: a principal increase split into borrow repaid and supply added."""
    if new_principal < old_principal:
        return 0, 0
    if new_principal <= 0:
        return new_principal - old_principal, 0
    if old_principal >= 0:
        return 0, new_principal - old_principal
    return -old_principal, new_principal


@dataclass(frozen=True)
class AbsorbOutcome:
    """What Comet.absorbInternal would do to one account at the snapshot (indices already accrued, as absorb()
    accrues before absorbing), and what it costs the reserves if this account is absorbed alone."""

    debt: int  #: base units owed (presentValueBorrow)
    collateral_value: int  #: sum of mulPrice(balance, price, scale) over entered assets, price units
    credited_value: int  #: deltaValue: the sum of mulFactor(value, liquidationFactor), price units
    credited_base: int  #: deltaBalance = divPrice(deltaValue, basePrice, baseScale), base units
    new_balance: int  #: the account's supply afterwards: max(0, oldBalance + deltaBalance), base units
    base_paid_out: int  #: newBalance - oldBalance: AbsorbDebt's basePaidOut, base units
    reserves_paid: int  #: the drop of getReserves(): supply added and borrows repaid at present value
    shortfall: int  #: the debt the credit does not cover (bad debt borne by reserves), base units


def absorb_outcome(
    principal: int, indices: Indices, totals: Totals, base_price: int, base_scale: int, holdings: Sequence[Holding]
) -> AbsorbOutcome:
    """Comet.absorbInternal: every entered asset is seized and credited at its liquidation factor, the debt is
    closed, and a credit beyond it becomes supply (a shortfall is floored at zero: the reserves pay it). Reserves
    fall by what totalSupplyBase gains and totalBorrowBase loses, each at present value (Comet.getReserves)."""
    old_balance = present_value(principal, indices)
    credited_value = sum(mul_factor(collateral_value(h), h.liquidation_factor) for h in holdings)
    credited_base = div_price(credited_value, base_price, base_scale)
    new_balance = max(0, old_balance + credited_base)
    new_principal = principal_value(new_balance, indices)
    repay, supply = repay_and_supply_amount(principal, new_principal)
    supply_added = present_value_supply(indices.supply, totals.total_supply_base + supply) - present_value_supply(
        indices.supply, totals.total_supply_base
    )
    borrow_repaid = present_value_borrow(indices.borrow, totals.total_borrow_base) - present_value_borrow(
        indices.borrow, totals.total_borrow_base - repay
    )
    return AbsorbOutcome(
        debt=max(0, -old_balance),
        collateral_value=sum(collateral_value(h) for h in holdings),
        credited_value=credited_value,
        credited_base=credited_base,
        new_balance=new_balance,
        base_paid_out=new_balance - old_balance,
        reserves_paid=supply_added + borrow_repaid,
        shortfall=max(0, -(old_balance + credited_base)),
    )
