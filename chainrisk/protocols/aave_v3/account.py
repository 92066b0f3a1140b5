"""Aave V3 account maths, ported from the contracts with their rounding, so results equal the chain's."""

from __future__ import annotations

from dataclasses import dataclass

from chainrisk.protocols.aave_v3.constants import (
    HALF_PERCENTAGE_FACTOR,
    HALF_RAY,
    MAX_UINT256,
    PERCENTAGE_FACTOR,
    RAY,
    WAD,
)
from chainrisk.protocols.aave_v3.reserve import EModeCategory, Reserve


def ray_mul(a: int, b: int) -> int:
    """WadRayMath.rayMul: half-up rounding."""
    return (a * b + HALF_RAY) // RAY


def wad_div(a: int, b: int) -> int:
    """WadRayMath.wadDiv: half-up rounding."""
    return (a * WAD + b // 2) // b


def percent_mul(value: int, percentage: int) -> int:
    """PercentageMath.percentMul: half-up rounding at four decimals."""
    return (value * percentage + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR


def percent_div(value: int, percentage: int) -> int:
    """PercentageMath.percentDiv: half-up rounding."""
    return (value * PERCENTAGE_FACTOR + percentage // 2) // percentage


@dataclass(frozen=True)
class Balances:
    """A wallet's raw balances in one reserve at the snapshot block."""

    scaled_a_token: int  #: aToken scaledBalanceOf
    scaled_variable_debt: int  #: variable debt token scaledBalanceOf
    stable_debt: int  #: stable debt token balanceOf (already includes its interest)


@dataclass(frozen=True)
class PositionAmounts:
    """Token amounts as the pool values them (GenericLogic._getUserBalance/DebtInBaseCurrency)."""

    reserve: Reserve  #: the reserve
    supplied: int  #: scaled aToken balance rayMul normalized income, token units
    debt: int  #: variable debt (rayMul normalized debt) plus stable debt, token units
    used_as_collateral: bool  #: collateral bit of the user configuration
    borrowing: bool  #: borrowing bit of the user configuration
    price: int  #: price the pool uses for this asset (e-mode price source when it applies)
    ltv: int  #: effective LTV after e-mode, bps
    liquidation_threshold: int  #: effective threshold after e-mode, bps
    liquidation_bonus: int  #: effective bonus after e-mode, bps incl. principal
    collateral_base: int  #: value counted as collateral, base-currency units (0 when not collateral)
    debt_base: int  #: debt value, base-currency units


@dataclass(frozen=True)
class AccountData:
    """Pool.getUserAccountData, computed."""

    total_collateral_base: int  #: base-currency units
    total_debt_base: int  #: base-currency units
    available_borrows_base: int  #: base-currency units
    current_liquidation_threshold: int  #: bps, collateral-weighted
    ltv: int  #: bps, collateral-weighted
    health_factor: int  #: wad; MAX_UINT256 without debt
    has_zero_ltv_collateral: bool  #: a collateral with LTV 0 is enabled
    positions: list[PositionAmounts]  #: per reserve the wallet touches


def is_collateral(config: int, reserve_id: int) -> bool:
    return (config >> ((reserve_id << 1) + 1)) & 1 == 1


def is_borrowing(config: int, reserve_id: int) -> bool:
    return (config >> (reserve_id << 1)) & 1 == 1


def account_data(
    config: int,
    emode: int,
    balances: dict[int, Balances],
    reserves_by_id: dict[int, Reserve],
    emode_categories: dict[int, EModeCategory],
) -> AccountData:
    """GenericLogic.calculateUserAccountData plus PoolLogic.executeGetUserAccountData (Aave V3.0/3.1).

    Mirrors the loop over reserve ids with the collateral or borrowing bit set: e-mode LTV/threshold apply to
    assets of the user's category, the e-mode price source replaces their price when set, averages are
    floor divisions, and the health factor is percentMul then wadDiv (both half-up).
    """
    category = emode_categories.get(emode) if emode else None
    emode_price = category.price_source_price if category else 0
    total_collateral = total_debt = avg_ltv = avg_threshold = 0
    has_zero_ltv = False
    positions: list[PositionAmounts] = []
    for reserve_id in sorted(balances):
        reserve = reserves_by_id.get(reserve_id)
        if reserve is None:
            continue
        cfg = reserve.config
        held = balances[reserve_id]
        collateral_bit = is_collateral(config, reserve_id)
        borrowing_bit = is_borrowing(config, reserve_id)
        in_category = bool(emode) and cfg.emode_category == emode and category is not None
        price = emode_price if emode_price != 0 and in_category else reserve.price
        unit = 10**cfg.decimals
        supplied = ray_mul(held.scaled_a_token, reserve.normalized_income) if held.scaled_a_token else 0
        variable = (
            ray_mul(held.scaled_variable_debt, reserve.normalized_variable_debt) if held.scaled_variable_debt else 0
        )
        debt = variable + held.stable_debt
        ltv = category.ltv if in_category and category else cfg.ltv
        threshold = category.liquidation_threshold if in_category and category else cfg.liquidation_threshold
        bonus = category.liquidation_bonus if in_category and category else cfg.liquidation_bonus
        collateral_base = 0
        if cfg.liquidation_threshold != 0 and collateral_bit:
            collateral_base = supplied * price // unit
            total_collateral += collateral_base
            if cfg.ltv != 0:
                avg_ltv += collateral_base * ltv
            else:
                has_zero_ltv = True
            avg_threshold += collateral_base * threshold
        debt_base = debt * price // unit if borrowing_bit else 0
        total_debt += debt_base
        positions.append(
            PositionAmounts(
                reserve=reserve,
                supplied=supplied,
                debt=debt,
                used_as_collateral=collateral_bit,
                borrowing=borrowing_bit,
                price=price,
                ltv=ltv,
                liquidation_threshold=threshold,
                liquidation_bonus=bonus,
                collateral_base=collateral_base,
                debt_base=debt_base,
            )
        )
    if total_collateral:
        avg_ltv //= total_collateral
        avg_threshold //= total_collateral
    else:
        avg_ltv = avg_threshold = 0
    health = MAX_UINT256 if total_debt == 0 else wad_div(percent_mul(total_collateral, avg_threshold), total_debt)
    return AccountData(
        total_collateral_base=total_collateral,
        total_debt_base=total_debt,
        available_borrows_base=available_borrows(total_collateral, total_debt, avg_ltv),
        current_liquidation_threshold=avg_threshold,
        ltv=avg_ltv,
        health_factor=health,
        has_zero_ltv_collateral=has_zero_ltv,
        positions=positions,
    )


def available_borrows(total_collateral: int, total_debt: int, ltv: int) -> int:
    """GenericLogic.calculateAvailableBorrows."""
    capacity = percent_mul(total_collateral, ltv)
    return 0 if capacity < total_debt else capacity - total_debt
