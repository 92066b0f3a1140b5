"""Aave V3 fixed-point maths, interest accrual and token balances per pool version, with the contracts' rounding.

Mirrors, at each aave-v3-origin tag (3.0 is @aave/core-v3 1.19, whose files equal v3.1.0's here):
libraries/math/WadRayMath.sol, PercentageMath.sol, MathUtils.sol, libraries/helpers/TokenMath.sol (3.5+),
ReserveLogic.getNormalizedIncome/getNormalizedDebt, AToken.balanceOf and VariableDebtToken.balanceOf.
"""

from __future__ import annotations

from chainrisk.protocols.aave_v3.constants import HALF_PERCENTAGE_FACTOR, HALF_RAY, PERCENTAGE_FACTOR, RAY, WAD
from chainrisk.protocols.aave_v3.reserve import Reserve
from chainrisk.protocols.aave_v3.version import PoolVersion

#: MathUtils.SECONDS_PER_YEAR (365 days).
SECONDS_PER_YEAR = 365 * 24 * 3600


def ray_mul(a: int, b: int) -> int:
    """WadRayMath.rayMul: half up."""
    return (a * b + HALF_RAY) // RAY


def ray_mul_floor(a: int, b: int) -> int:
    """WadRayMath.rayMulFloor (3.5+)."""
    return a * b // RAY


def ray_mul_ceil(a: int, b: int) -> int:
    """WadRayMath.rayMulCeil (3.5+)."""
    return -(-(a * b) // RAY)


def ray_div(a: int, b: int) -> int:
    """WadRayMath.rayDiv: half up."""
    return (a * RAY + b // 2) // b


def ray_div_ceil(a: int, b: int) -> int:
    """WadRayMath.rayDivCeil (3.5+)."""
    return -(-(a * RAY) // b)


def wad_div(a: int, b: int) -> int:
    """WadRayMath.wadDiv: half up."""
    return (a * WAD + b // 2) // b


def percent_mul(value: int, percentage: int) -> int:
    """PercentageMath.percentMul: half up at four decimals."""
    return (value * percentage + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR


def percent_mul_floor(value: int, percentage: int) -> int:
    """PercentageMath.percentMulFloor (3.5+)."""
    return value * percentage // PERCENTAGE_FACTOR


def percent_mul_ceil(value: int, percentage: int) -> int:
    """PercentageMath.percentMulCeil (3.5+)."""
    return -(-(value * percentage) // PERCENTAGE_FACTOR)


def percent_div(value: int, percentage: int) -> int:
    """PercentageMath.percentDiv: half up."""
    return (value * PERCENTAGE_FACTOR + percentage // 2) // percentage


def percent_div_ceil(value: int, percentage: int) -> int:
    """PercentageMath.percentDivCeil (3.5+)."""
    return -(-(value * PERCENTAGE_FACTOR) // percentage)


def percent_div_floor(value: int, percentage: int) -> int:
    """PercentageMath.percentDivFloor (3.7)."""
    return value * PERCENTAGE_FACTOR // percentage


def mul_div_ceil(a: int, b: int, c: int) -> int:
    """MathUtils.mulDivCeil (3.5+)."""
    return -(-(a * b) // c)


def linear_interest(rate: int, last_update: int, now: int) -> int:
    """MathUtils.calculateLinearInterest (every version): RAY + rate * elapsed / SECONDS_PER_YEAR, floored."""
    return RAY + rate * (now - last_update) // SECONDS_PER_YEAR


def compounded_interest(version: PoolVersion, rate: int, last_update: int, now: int) -> int:
    """MathUtils.calculateCompoundedInterest: three Taylor terms of e^(rate * years), in ray.

    3.0-3.3 divide the powers of the rate by seconds per year first (basePowerTwo = rayMul(rate, rate) / SPY^2,
    basePowerThree = rayMul(basePowerTwo, rate) / SPY) and multiply by exp(exp-1)(exp-2) after; 3.4+ take
    x = rate * exp / SPY once and return RAY + x + rayMul(x, x/2 + rayMul(x, x/6)).
    """
    exp = now - last_update
    if exp == 0:
        return RAY
    if version.exact_taylor_compounding:
        x = rate * exp // SECONDS_PER_YEAR
        return RAY + x + ray_mul(x, x // 2 + ray_mul(x, x // 6))
    exp_minus_one = exp - 1
    exp_minus_two = exp - 2 if exp > 2 else 0
    base_power_two = ray_mul(rate, rate) // (SECONDS_PER_YEAR * SECONDS_PER_YEAR)
    base_power_three = ray_mul(base_power_two, rate) // SECONDS_PER_YEAR
    second_term = exp * exp_minus_one * base_power_two // 2
    third_term = exp * exp_minus_one * exp_minus_two * base_power_three // 6
    return RAY + rate * exp // SECONDS_PER_YEAR + second_term + third_term


def normalized_income(reserve: Reserve, now: int) -> int:
    """ReserveLogic.getNormalizedIncome (Pool.getReserveNormalizedIncome) at block timestamp `now`."""
    if reserve.last_update_timestamp == now:
        return reserve.liquidity_index
    return ray_mul(linear_interest(reserve.liquidity_rate, reserve.last_update_timestamp, now), reserve.liquidity_index)


def normalized_debt(version: PoolVersion, reserve: Reserve, now: int) -> int:
    """ReserveLogic.getNormalizedDebt (Pool.getReserveNormalizedVariableDebt) at block timestamp `now`."""
    if reserve.last_update_timestamp == now:
        return reserve.variable_borrow_index
    growth = compounded_interest(version, reserve.variable_borrow_rate, reserve.last_update_timestamp, now)
    return ray_mul(growth, reserve.variable_borrow_index)


def reserve_totals(
    version: PoolVersion, reserve: Reserve, income: int, debt_index: int, now: int | None
) -> tuple[int | None, int | None, int | None]:
    """The reserve's totals at block timestamp `now`, from its tokens' stored supplies and the normalized income and
    variable debt at `now`: AToken.totalSupply (scaled supply over the income, as balanceOf rounds it),
    VariableDebtToken.totalSupply (likewise over the debt index) and, before 3.2, StableDebtToken.totalSupply
    (_calcTotalSupply: principal rayMul calculateCompoundedInterest(average rate, last update, now); 0 from 3.2).
    None where the supplies were not read (or `now` is not given for a principal to compound)."""
    if reserve.a_token_scaled_supply is None or reserve.variable_debt_scaled_supply is None:
        return None, None, None
    supplied = a_token_balance(version, reserve.a_token_scaled_supply, income)
    variable = variable_debt_balance(version, reserve.variable_debt_scaled_supply, debt_index)
    stable: int | None = 0
    principal, rate, updated = reserve.stable_principal, reserve.stable_avg_rate, reserve.stable_last_update
    if version.has_stable_debt and principal:
        if now is None or rate is None or updated is None:
            stable = None
        else:
            stable = ray_mul(principal, compounded_interest(version, rate, updated, now))
    return supplied, variable, stable


def treasury_accrued(version: PoolVersion, reserve: Reserve, now: int, income: int, debt_index: int) -> int | None:
    """ReserveData.accruedToTreasury (scaled) once the reserve's state is updated at `now`, as every supply, borrow
    or liquidation at `now` does first (ReserveLogic.updateState then _accrueToTreasury): the stored share plus the
    reserve factor's part of the debt accrued since the last update, over the liquidity index at `now`. Before 3.2
    the debt accrued includes stable debt's (principal compounded at its average rate from its last update to now,
    less to the reserve's last update); 3.2-3.4 the variable debt's, rayMul and rayDiv half up; 3.5+ rayMulFloor of
    the scaled debt by the index's growth and rayDivFloor (getATokenMintScaledAmount), aave-v3-origin's tags' own.
    None where the supplies were not read."""
    stored, scaled = reserve.accrued_to_treasury, reserve.variable_debt_scaled_supply
    if stored is None or scaled is None:
        return None
    factor = reserve.config.reserve_factor
    if reserve.last_update_timestamp == now or factor == 0:
        return stored
    if version.directional_rounding:
        accrued = ray_mul_floor(scaled, debt_index - reserve.variable_borrow_index)
        return stored + percent_mul(accrued, factor) * RAY // income
    accrued = ray_mul(scaled, debt_index) - ray_mul(scaled, reserve.variable_borrow_index)
    if version.has_stable_debt:
        principal, rate, updated = reserve.stable_principal, reserve.stable_avg_rate, reserve.stable_last_update
        if principal is None or rate is None or updated is None:
            return None
        if principal:
            now_stable = ray_mul(principal, compounded_interest(version, rate, updated, now))
            then = ray_mul(principal, compounded_interest(version, rate, updated, reserve.last_update_timestamp))
            accrued += now_stable - then
    return stored + ray_div(percent_mul(accrued, factor), income)


#: raw_aave_v3_reserves' totals at a block, as reserve_figures names them (exact, token units; accrued columns).
RESERVE_FIGURES = (
    "total_supplied",
    "total_variable_debt",
    "total_stable_debt",
    "supply_cap_used",
    "supply_cap_headroom",
)


def reserve_figures(
    version: PoolVersion, reserve: Reserve, income: int, debt_index: int, now: int | None
) -> dict[str, int | None]:
    """RESERVE_FIGURES at block timestamp `now` from the normalized income and variable debt then: the tokens'
    totals (reserve_totals) and the supply cap as the pool checks it (supply_cap); the cap figures None without
    `now`."""
    totals = reserve_totals(version, reserve, income, debt_index, now)
    cap = (None, None) if now is None else supply_cap(version, reserve, now, income, debt_index)
    return dict(zip(RESERVE_FIGURES, (*totals, *cap), strict=True))


def supply_cap(
    version: PoolVersion, reserve: Reserve, now: int, income: int, debt_index: int
) -> tuple[int | None, int | None]:
    """(used, headroom) of the supply cap at `now`, None where the supplies were not read.

    Used: what ValidationLogic.validateSupply holds against the cap before the amount supplied, the aToken's scaled
    supply plus the treasury's share (treasury_accrued) over the liquidity index (rayMul half up; 3.5+
    getATokenBalance, floored). Headroom (None without a cap): the largest amount a supply may add, negative when the
    cap is already exceeded by that much. Before 3.5 validateSupply adds the amount itself to the used figure, so it
    is the cap less that; from 3.5 it adds the amount's scaled value (getATokenMintScaledAmount, rayDivFloor) before
    flooring the sum over the index, so the largest amount is solved from those floors: k = the most scaled units
    with floor((T + k) x index / RAY) <= cap, then the most tokens whose scaled value is at most k."""
    treasury = treasury_accrued(version, reserve, now, income, debt_index)
    if treasury is None or reserve.a_token_scaled_supply is None:
        return None, None
    total = reserve.a_token_scaled_supply + treasury
    used = a_token_balance(version, total, income)
    if not reserve.config.supply_cap:
        return used, None
    limit: int = reserve.config.supply_cap * 10 ** int(reserve.config.decimals)
    if not version.directional_rounding or used > limit:
        return used, limit - used
    most_scaled = -(-(limit + 1) * RAY // income) - 1 - total
    return used, -(-(most_scaled + 1) * income // RAY) - 1


def a_token_balance(version: PoolVersion, scaled: int, income: int) -> int:
    """AToken.balanceOf: scaled rayMul income, half up before 3.5, floored from 3.5 (TokenMath.getATokenBalance)."""
    return ray_mul_floor(scaled, income) if version.directional_rounding else ray_mul(scaled, income)


def variable_debt_balance(version: PoolVersion, scaled: int, debt_index: int) -> int:
    """VariableDebtToken.balanceOf: scaled rayMul index, half up before 3.5, ceiled from 3.5
    (TokenMath.getVTokenBalance)."""
    return ray_mul_ceil(scaled, debt_index) if version.directional_rounding else ray_mul(scaled, debt_index)


def a_token_transfer_scaled(version: PoolVersion, amount: int, income: int) -> int:
    """Scaled aTokens an amount moves or burns: rayDiv (half up) before 3.5 (ScaledBalanceTokenBase._burnScaled,
    AToken._transfer), rayDivCeil from 3.5 (TokenMath.getATokenTransferScaledAmount/getATokenBurnScaledAmount)."""
    return ray_div_ceil(amount, income) if version.directional_rounding else ray_div(amount, income)


def borrow_usage_ratio(total_debt: int, available_liquidity: int) -> int:
    """The pool's borrow usage ratio, ray: debt over available liquidity plus debt (0 without debt)."""
    return ray_div(total_debt, available_liquidity + total_debt) if total_debt else 0


def variable_borrow_rate(curve: tuple[int, int, int, int], usage_ratio: int) -> int:
    """The variable borrow rate (ray a year) an interest rate strategy charges at a borrow usage ratio (ray), from the
    reserve's curve (optimal usage ratio, base rate, slopes below and above the optimum; ray): aave-v3-origin
    src/contracts/misc/DefaultReserveInterestRateStrategyV2.sol calculateInterestRates, and @aave/core-v3 3.0.2's
    DefaultReserveInterestRateStrategy (the same variable rate, without stable debt). At no debt the base rate."""
    optimal, base, slope1, slope2 = curve
    if usage_ratio > optimal:
        excess = ray_div(usage_ratio - optimal, RAY - optimal)
        return base + slope1 + ray_mul(slope2, excess)
    return base + ray_div(ray_mul(slope1, usage_ratio), optimal)
