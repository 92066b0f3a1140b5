"""What Pool.liquidationCall repays, seizes, pays the treasury and books as deficit, per Aave V3 pool version 3.0-3.7.

Mirrors LiquidationLogic.executeLiquidationCall, _calculateDebt (3.0-3.2), _calculateAvailableCollateralToLiquidate,
_burnDebtTokens and _burnBadDebt (3.3+), and ValidationLogic.validateLiquidationCall at each aave-v3-origin tag (3.7:
its main branch at fd1fbd91, untagged). Not modelled here: a PriceOracleSentinel (chainrisk.protocols.aave_v3.sentinel
has its say before 3.7, which removed it), self-liquidation (3.4+ refuses it) and the 3.3 GHO discount path (reserves
without virtual accounting).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chainrisk.protocols.aave_v3.account import Balances, is_borrowing, is_collateral
from chainrisk.protocols.aave_v3.account_versions import MarketState, debt_in_base, reserve_terms, user_account_data
from chainrisk.protocols.aave_v3.constants import MAX_UINT256, WAD
from chainrisk.protocols.aave_v3.maths import (
    a_token_transfer_scaled,
    normalized_income,
    percent_div,
    percent_div_ceil,
    percent_div_floor,
    percent_mul,
    percent_mul_ceil,
    percent_mul_floor,
    ray_div_ceil,
    ray_mul,
    ray_mul_floor,
)
from chainrisk.protocols.aave_v3.version import PoolVersion

#: LiquidationLogic.DEFAULT_LIQUIDATION_CLOSE_FACTOR (bps).
DEFAULT_LIQUIDATION_CLOSE_FACTOR = 5_000
#: LiquidationLogic.MAX_LIQUIDATION_CLOSE_FACTOR (3.0-3.2, bps).
MAX_LIQUIDATION_CLOSE_FACTOR = 10_000
#: LiquidationLogic.CLOSE_FACTOR_HF_THRESHOLD (wad).
CLOSE_FACTOR_HF_THRESHOLD = 95 * WAD // 100
#: LiquidationLogic.MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD (3.3+): $2,000 with the oracle's 8 decimals.
MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2_000 * 10**8
#: LiquidationLogic.MIN_LEFTOVER_BASE (3.3+): $1,000.
MIN_LEFTOVER_BASE = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD // 2
#: ValidationLogic.HEALTH_FACTOR_LIQUIDATION_THRESHOLD (wad).
HEALTH_FACTOR_LIQUIDATION_THRESHOLD = WAD


@dataclass(frozen=True)
class LiquidationOutcome:
    """One liquidationCall: what it moves, or the error it reverts with (Errors names as spelled from 3.4)."""

    error: str | None  #: e.g. "MustNotLeaveDust", "HealthFactorNotBelowThreshold"; None when it goes through
    health_factor: int  #: the borrower's health factor the call sees, wad
    max_liquidatable_debt: int  #: debt the close-factor rule allows in this reserve, token units
    debt_repaid: int = 0  #: LiquidationCall.debtToCover: debt tokens the liquidator pays
    collateral_seized: int = 0  #: LiquidationCall.liquidatedCollateralAmount: collateral to the liquidator
    protocol_fee: int = 0  #: collateral aTokens moved to the treasury
    #: deficit booked per reserve id (3.3+: debt left once the borrower has no collateral)
    deficits: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CollateralSplit:
    """LiquidationLogic._calculateAvailableCollateralToLiquidate's result."""

    collateral: int  #: to the liquidator
    debt: int  #: debt repaid
    protocol_fee: int  #: to the treasury (before the scaled-balance cap)
    collateral_base: int  #: collateral plus fee in base currency (3.3+ hasNoCollateralLeft test)


def collateral_to_liquidate(
    version: PoolVersion,
    collateral_price: int,
    collateral_unit: int,
    debt_price: int,
    debt_unit: int,
    debt_to_cover: int,
    collateral_balance: int,
    bonus: int,
    protocol_fee_bps: int,
) -> CollateralSplit:
    """LiquidationLogic._calculateAvailableCollateralToLiquidate: collateral for `debt_to_cover` times the bonus,
    capped at the balance (then the debt it pays for is percentDiv'ed back, percentDivCeil from 3.5); the
    protocol fee is its share of the bonus part. 3.7 rounds each step against the liquidator: the bonus floored,
    the bonus's base floored (so the bonus part is the larger), the fee ceiled."""
    deterministic = version.deterministic_liquidation_rounding
    base_collateral = debt_price * debt_to_cover * collateral_unit // (collateral_price * debt_unit)
    max_collateral = percent_mul_floor(base_collateral, bonus) if deterministic else percent_mul(base_collateral, bonus)
    if max_collateral > collateral_balance:
        collateral = collateral_balance
        backed = collateral_price * collateral * debt_unit // (debt_price * collateral_unit)
        debt = percent_div_ceil(backed, bonus) if version.directional_rounding else percent_div(backed, bonus)
    else:
        collateral, debt = max_collateral, debt_to_cover
    in_base = collateral * collateral_price // collateral_unit
    fee = 0
    if protocol_fee_bps:
        if deterministic:
            fee = percent_mul_ceil(collateral - percent_div_floor(collateral, bonus), protocol_fee_bps)
        else:
            fee = percent_mul(collateral - percent_div(collateral, bonus), protocol_fee_bps)
    return CollateralSplit(collateral - fee, debt, fee, in_base)


def _no_collateral_left(
    version: PoolVersion,
    split: CollateralSplit,
    total_collateral_base: int,
    scaled_balance: int,
    income: int,
    price: int,
    unit: int,
) -> bool:
    """LiquidationLogic's hasNoCollateralLeft (3.3+), which books the deficit: the collateral the liquidation takes,
    in base currency, is all the borrower's collateral. 3.7 counts it from the scaled aTokens the two transfers
    consume (each rayDivCeil, capped at the scaled balance, taken back by rayMulFloor), so a position the ceilings
    empty, or a leftover of a few wei worth nothing in base currency, counts as none left."""
    if not version.deterministic_liquidation_rounding:
        return total_collateral_base == split.collateral_base
    consumed = ray_div_ceil(split.collateral, income) + ray_div_ceil(split.protocol_fee, income)
    consumed = min(consumed, scaled_balance)
    return ray_mul_floor(consumed, income) * price // unit == total_collateral_base


def liquidation_call(
    market: MarketState,
    config: int,
    emode: int,
    balances: Mapping[int, Balances],
    collateral_id: int,
    debt_id: int,
    debt_to_cover: int = MAX_UINT256,
) -> LiquidationOutcome:
    """Pool.liquidationCall(collateral, debt, user, debt_to_cover, receiveAToken) at `market.timestamp`.

    The borrower is given by its configuration word, e-mode and scaled balances; the amounts do not depend on
    receiveAToken. Order of checks as ValidationLogic.validateLiquidationCall (reserves active and unpaused, the
    3.1+ grace period, health factor below 1, collateral enabled, debt not 0); then the close factor (3.0-3.2:
    50 % of the reserve's debt, all of it at HF <= 0.95; 3.3+: all of it, unless collateral and debt in these
    reserves are both >= $2,000 and HF > 0.95: then at most half the borrower's total debt in base currency, when
    this reserve's debt is more than that half); then MustNotLeaveDust (3.3+: partial liquidations must leave at
    least $1,000 of both) and the deficit booked when the borrower is left without collateral (3.3+).
    """
    version = market.version
    account = user_account_data(market, config, emode, balances)
    hf = account.health_factor
    collateral_reserve = market.reserves_by_id[collateral_id]
    debt_reserve = market.reserves_by_id[debt_id]
    empty = Balances(0, 0, 0)
    collateral_held = balances.get(collateral_id, empty)
    collateral_terms = reserve_terms(market, config, emode, collateral_reserve, collateral_held)
    debt_terms = reserve_terms(market, config, emode, debt_reserve, balances.get(debt_id, empty))
    reserve_debt, collateral_balance = debt_terms.debt, collateral_terms.supplied

    def refused(error: str, allowed: int = 0) -> LiquidationOutcome:
        return LiquidationOutcome(error, hf, allowed)

    ccfg, dcfg = collateral_reserve.config, debt_reserve.config
    if not (ccfg.active and dcfg.active):
        return refused("ReserveInactive")
    if ccfg.paused or dcfg.paused:
        return refused("ReservePaused")
    if version.has_grace_period and not (
        collateral_reserve.liquidation_grace_period_until < market.timestamp
        and debt_reserve.liquidation_grace_period_until < market.timestamp
    ):
        return refused("LiquidationGraceSentinelCheckFailed")
    if hf >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return refused("HealthFactorNotBelowThreshold")
    enabled = is_collateral(config, collateral_id) and (version.emode_decoupled or ccfg.liquidation_threshold != 0)
    if not enabled:
        return refused("CollateralCannotBeLiquidated")
    if reserve_debt == 0:
        return refused("SpecifiedCurrencyNotBorrowedByUser")

    # Prices: 3.0/3.1 _getConfigurationData takes the e-mode price source for the collateral when it is in the
    # user's category, and for the debt whenever the category has one.
    collateral_price, debt_price = collateral_terms.price, debt_reserve.price
    category = market.categories.get(emode) if emode else None
    if version.emode_by_reserve_category and category is not None and category.price_source_price:
        debt_price = category.price_source_price
    collateral_unit, debt_unit = 10**ccfg.decimals, 10**dcfg.decimals

    if version.position_size_close_factor:
        allowed = reserve_debt
        collateral_in_base = collateral_balance * collateral_price // collateral_unit
        debt_in_reserve_base = debt_in_base(version, reserve_debt, debt_price, debt_unit)
        if (
            collateral_in_base >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
            and debt_in_reserve_base >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
            and hf > CLOSE_FACTOR_HF_THRESHOLD
        ):
            half_of_total = percent_mul(account.total_debt_base, DEFAULT_LIQUIDATION_CLOSE_FACTOR)
            if debt_in_reserve_base > half_of_total:
                allowed = half_of_total * debt_unit // debt_price
    else:
        close_factor = (
            DEFAULT_LIQUIDATION_CLOSE_FACTOR if hf > CLOSE_FACTOR_HF_THRESHOLD else MAX_LIQUIDATION_CLOSE_FACTOR
        )
        allowed = percent_mul(reserve_debt, close_factor)
    split = collateral_to_liquidate(
        version,
        collateral_price,
        collateral_unit,
        debt_price,
        debt_unit,
        min(debt_to_cover, allowed),
        collateral_balance,
        collateral_terms.liquidation_bonus,
        ccfg.liquidation_protocol_fee,
    )

    if (
        version.position_size_close_factor
        and split.debt < reserve_debt
        and split.collateral + split.protocol_fee < collateral_balance
    ):
        debt_left = debt_in_base(version, reserve_debt - split.debt, debt_price, debt_unit)
        collateral_left = (collateral_balance - split.collateral - split.protocol_fee) * collateral_price
        if debt_left < MIN_LEFTOVER_BASE or collateral_left // collateral_unit < MIN_LEFTOVER_BASE:
            return refused("MustNotLeaveDust", allowed)

    fee = split.protocol_fee
    income = normalized_income(collateral_reserve, market.timestamp)
    if fee:
        # The fee moves after the liquidator's share, capped at the scaled aTokens the borrower has left.
        left = collateral_held.scaled_a_token - a_token_transfer_scaled(version, split.collateral, income)
        if a_token_transfer_scaled(version, fee, income) > left:
            fee = ray_mul_floor(left, income) if version.directional_rounding else ray_mul(left, income)

    deficits: dict[int, int] = {}
    if version.position_size_close_factor and _no_collateral_left(
        version,
        split,
        account.total_collateral_base,
        collateral_held.scaled_a_token,
        income,
        collateral_price,
        collateral_unit,
    ):
        if reserve_debt > split.debt:
            deficits[debt_id] = reserve_debt - split.debt
        for position in account.positions:
            other = position.reserve
            borrowed = other.reserve_id != debt_id and is_borrowing(config, other.reserve_id)
            if borrowed and other.config.active and position.debt:
                deficits[other.reserve_id] = position.debt
    return LiquidationOutcome(None, hf, allowed, split.debt, split.collateral, fee, deficits)
