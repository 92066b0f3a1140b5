"""Pool.getUserAccountData for every Aave V3 pool version 3.0-3.7, from stored reserve state and scaled balances.

Each rule names the aave-v3-origin file and function it mirrors (3.0 is @aave/core-v3 1.19, equal to v3.1.0 in
these functions). Inputs are the chain's raw state: stored indexes, rates and last update timestamps (interest is
accrued here to the block timestamp), prices, e-mode categories and the user's configuration bitmap.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from chainrisk.protocols.aave_v3.account import AccountData, Balances, PositionAmounts, is_borrowing, is_collateral
from chainrisk.protocols.aave_v3.constants import MAX_UINT256, PERCENTAGE_FACTOR
from chainrisk.protocols.aave_v3.maths import (
    a_token_balance,
    mul_div_ceil,
    normalized_debt,
    normalized_income,
    percent_mul,
    percent_mul_floor,
    variable_debt_balance,
    wad_div,
)
from chainrisk.protocols.aave_v3.reserve import EModeCategory, Reserve
from chainrisk.protocols.aave_v3.version import PoolVersion


def bit_set(bitmap: int, reserve_id: int) -> bool:
    """EModeConfiguration.isReserveEnabledOnBitmap."""
    return (bitmap >> reserve_id) & 1 == 1


@dataclass(frozen=True)
class MarketState:
    """What the pool reads for every account at one block: reserves by id, e-mode categories, the block time."""

    version: PoolVersion  #: picks the rules
    reserves_by_id: Mapping[int, Reserve]  #: the pool's reserves list (Pool.getReservesList order = id)
    categories: Mapping[int, EModeCategory]  #: e-mode categories by id
    timestamp: int  #: block timestamp the interest accrues to


@dataclass(frozen=True)
class ReserveTerms:
    """One reserve as one user's account sees it: accrued balances, price and effective risk parameters."""

    supplied: int  #: aToken balanceOf, token units
    debt: int  #: variable (plus stable before 3.2) debt balance, token units
    price: int  #: price the pool uses (the e-mode price source's for 3.0/3.1 category assets)
    in_emode: bool  #: the user's e-mode category applies to this reserve as collateral
    ltv: int  #: LTV the account weighs it with, bps
    ltv_zero: bool  #: LTV-zero collateral (hasZeroLtvCollateral): the reserve's LTV is 0 (3.6: the effective LTV)
    liquidation_threshold: int  #: bps
    liquidation_bonus: int  #: bps incl. principal
    counts_as_collateral: bool  #: GenericLogic adds it to the collateral total


def user_reserve_ids(config: int, balances: Mapping[int, Balances]) -> Iterator[int]:
    """Reserve ids the user touches: a bit set in the configuration, or a balance given, in id order (the order of
    GenericLogic's loop over the configuration bitmap)."""
    ids = set(balances)
    word, reserve_id = config, 0
    while word:
        if word & 3:
            ids.add(reserve_id)
        word >>= 2
        reserve_id += 1
    return iter(sorted(ids))


@dataclass(frozen=True)
class ReserveRules:
    """One reserve as every account of one e-mode category sees it at the block: the part of GenericLogic's
    per-reserve step that does not depend on the user's balances or configuration."""

    price: int  #: price the pool uses (the e-mode price source's for 3.0/3.1 category assets)
    in_emode: bool  #: the category applies to this reserve as collateral
    ltv: int  #: LTV the account weighs it with, bps
    ltv_zero: bool  #: LTV-zero collateral (see ReserveTerms)
    liquidation_threshold: int  #: bps
    liquidation_bonus: int  #: bps incl. principal
    income: int  #: ReserveLogic.getNormalizedIncome at the block, ray
    debt_index: int  #: ReserveLogic.getNormalizedDebt at the block, ray
    collateral_enabled: bool  #: a flagged supply counts as collateral (before 3.6: the reserve's threshold is not 0)


def reserve_rules(market: MarketState, emode: int, reserve: Reserve) -> ReserveRules:
    """The user-independent part of GenericLogic.calculateUserAccountData's per-reserve step for `market.version`.

    E-mode: 3.0/3.1 take the reserve's own category (configuration bits 168-175) and the category's price source
    (EModeLogic.getEModeConfiguration / isInEModeCategory); 3.2+ the category's collateral bitmap
    (EModeConfiguration.isReserveEnabledOnBitmap). LTV: before 3.6 a reserve LTV of 0 makes it LTV-zero whatever
    the e-mode; 3.6 takes ValidationLogic.getUserReserveLtv (the category's LTV, or 0 on its ltvzero bitmap), and 3.7
    gives an asset outside an isolated category's collateral bitmap LTV 0 there.
    Collateral counts when flagged and, before 3.6, when the reserve's own threshold is not 0.
    """
    version, cfg = market.version, reserve.config
    category = market.categories.get(emode) if emode else None
    if version.emode_by_reserve_category:
        in_emode = category is not None and cfg.emode_category == emode
        emode_price = category.price_source_price if category is not None else 0
        price = emode_price if emode_price != 0 and in_emode else reserve.price
    else:
        in_emode = category is not None and bit_set(category.collateral_bitmap, reserve.reserve_id)
        price = reserve.price
    if category is not None and in_emode:
        threshold, bonus = category.liquidation_threshold, category.liquidation_bonus
        ltv = category.ltv
        if version.emode_decoupled and bit_set(category.ltvzero_bitmap, reserve.reserve_id):
            ltv = 0
    else:
        ltv, threshold, bonus = cfg.ltv, cfg.liquidation_threshold, cfg.liquidation_bonus
        if version.isolated_emode and category is not None and category.isolated:
            ltv = 0
    return ReserveRules(
        price=price,
        in_emode=in_emode,
        ltv=ltv,
        ltv_zero=ltv == 0 if version.emode_decoupled else cfg.ltv == 0,
        liquidation_threshold=threshold,
        liquidation_bonus=bonus,
        income=normalized_income(reserve, market.timestamp),
        debt_index=normalized_debt(version, reserve, market.timestamp),
        collateral_enabled=version.emode_decoupled or cfg.liquidation_threshold != 0,
    )


def reserve_terms(market: MarketState, config: int, emode: int, reserve: Reserve, held: Balances) -> ReserveTerms:
    """The per-reserve step of GenericLogic.calculateUserAccountData for `market.version`: reserve_rules, then the
    user's accrued balances (AToken/VariableDebtToken.balanceOf) and whether the supply counts as collateral."""
    version, rules = market.version, reserve_rules(market, emode, reserve)
    supplied = a_token_balance(version, held.scaled_a_token, rules.income)
    debt = variable_debt_balance(version, held.scaled_variable_debt, rules.debt_index)
    if version.has_stable_debt:
        debt += held.stable_debt
    counts = is_collateral(config, reserve.reserve_id) and rules.collateral_enabled
    return ReserveTerms(
        supplied,
        debt,
        rules.price,
        rules.in_emode,
        rules.ltv,
        rules.ltv_zero,
        rules.liquidation_threshold,
        rules.liquidation_bonus,
        counts,
    )


def debt_in_base(version: PoolVersion, debt: int, price: int, unit: int) -> int:
    """GenericLogic._getUserDebtInBaseCurrency: floored before 3.5, MathUtils.mulDivCeil from 3.5."""
    return mul_div_ceil(debt, price, unit) if version.directional_rounding else debt * price // unit


def health_factor(version: PoolVersion, collateral: int, weighted_threshold: int, debt: int) -> int:
    """The health factor of GenericLogic.calculateUserAccountData, wad; MAX_UINT256 without debt.

    Before 3.5: collateral percentMul (the collateral-weighted threshold floored to whole bps), wadDiv debt.
    3.5+: sum(collateral_i * threshold_i) wadDiv debt, then / 100_00 (no floored average)."""
    if debt == 0:
        return MAX_UINT256
    if version.directional_rounding:
        return wad_div(weighted_threshold, debt) // PERCENTAGE_FACTOR
    average = weighted_threshold // collateral if collateral else 0
    return wad_div(percent_mul(collateral, average), debt)


def available_borrows(version: PoolVersion, collateral: int, debt: int, ltv: int) -> int:
    """GenericLogic.calculateAvailableBorrows: percentMul (half up) before 3.5, percentMulFloor from 3.5."""
    capacity = percent_mul_floor(collateral, ltv) if version.directional_rounding else percent_mul(collateral, ltv)
    return max(capacity - debt, 0)


def user_account_data(market: MarketState, config: int, emode: int, balances: Mapping[int, Balances]) -> AccountData:
    """Pool.getUserAccountData (PoolLogic.executeGetUserAccountData + GenericLogic.calculateUserAccountData).

    `config` is the UserConfigurationMap word, `emode` Pool.getUserEMode, `balances` the scaled aToken and
    variable debt balances (plus stable debt before 3.2) by reserve id. Collateral value is floored in every
    version; averages are floor divisions; the health factor and available borrows follow `health_factor` and
    `available_borrows`.
    """
    version = market.version
    total_collateral = total_debt = weighted_ltv = weighted_threshold = 0
    has_zero_ltv = False
    positions: list[PositionAmounts] = []
    empty = Balances(0, 0, 0)
    for reserve_id in user_reserve_ids(config, balances):
        reserve = market.reserves_by_id.get(reserve_id)
        if reserve is None:
            continue
        terms = reserve_terms(market, config, emode, reserve, balances.get(reserve_id, empty))
        unit = 10**reserve.config.decimals
        collateral_base = 0
        if terms.counts_as_collateral:
            collateral_base = terms.supplied * terms.price // unit
            total_collateral += collateral_base
            if terms.ltv_zero:
                has_zero_ltv = True
            else:
                weighted_ltv += collateral_base * terms.ltv
            weighted_threshold += collateral_base * terms.liquidation_threshold
        borrowing = is_borrowing(config, reserve_id)
        debt_base = debt_in_base(version, terms.debt, terms.price, unit) if borrowing and terms.debt else 0
        total_debt += debt_base
        positions.append(
            PositionAmounts(
                reserve=reserve,
                supplied=terms.supplied,
                debt=terms.debt,
                used_as_collateral=is_collateral(config, reserve_id),
                borrowing=borrowing,
                price=terms.price,
                ltv=terms.ltv,
                liquidation_threshold=terms.liquidation_threshold,
                liquidation_bonus=terms.liquidation_bonus,
                collateral_base=collateral_base,
                debt_base=debt_base,
            )
        )
    health = health_factor(version, total_collateral, weighted_threshold, total_debt)
    average_ltv = weighted_ltv // total_collateral if total_collateral else 0
    average_threshold = weighted_threshold // total_collateral if total_collateral else 0
    return AccountData(
        total_collateral_base=total_collateral,
        total_debt_base=total_debt,
        available_borrows_base=available_borrows(version, total_collateral, total_debt, average_ltv),
        current_liquidation_threshold=average_threshold,
        ltv=average_ltv,
        health_factor=health,
        has_zero_ltv_collateral=has_zero_ltv,
        positions=positions,
    )
