"""Morpho's AdaptiveCurveIrm, mirrored with its rounding: the rate its `borrowRateView` answers at any block time from
the market's stored state and the IRM's `rateAtTarget(id)`.

Source: morpho-org/morpho-blue-irm, src/adaptive-curve-irm/AdaptiveCurveIrm.sol (`_borrowRate`, `_curve`,
`_newRateAtTarget`) with libraries/ConstantsLib.sol, ExpLib.sol (`wExp`), MathLib.sol (`wMulToZero`, `wDivToZero`)
and UtilsLib.sol (`bound`), read at commit a1a87fd. The IRM's rate moves with time whenever utilization is off its
90 % target (the rate at target adapts at 50/year times the normalised error), so a market under it reads a new
`borrowRateView` every block while its state stands still. `rateAtTarget(id)` changes only when Morpho calls
`borrowRate`, which it does at every accrual, that is, at every interaction with the market, which also rewrites the
market's stored state: while that state stands, the rate at any later time follows from it and this module.

Solidity's signed division truncates toward zero (Python's `//` floors): `_to_zero` divides as it does.
"""

from __future__ import annotations

from chainrisk.protocols.morpho_blue.constants import WAD
from chainrisk.protocols.morpho_blue.maths import MarketState, w_div_down

YEAR = 365 * 24 * 3600
#: ConstantsLib: the curve's steepness (4), the adjustment speed (50/year), the target utilization (90 %), the
#: rate at target at a market's first interaction (4 %/year) and its bounds (0.1 % and 200 %/year), all WAD.
CURVE_STEEPNESS = 4 * WAD
ADJUSTMENT_SPEED = 50 * WAD // YEAR
TARGET_UTILIZATION = 9 * WAD // 10
INITIAL_RATE_AT_TARGET = 4 * WAD // 100 // YEAR
MIN_RATE_AT_TARGET = WAD // 1000 // YEAR
MAX_RATE_AT_TARGET = 2 * WAD // YEAR
#: ExpLib: ln(2), ln(1e-18), and the clip above which wExp answers a constant (all WAD).
LN_2 = 693_147_180_559_945_309
LN_WEI = -41_446_531_673_892_822_312
WEXP_UPPER_BOUND = 93_859_467_695_000_404_319
WEXP_UPPER_VALUE = 57_716_089_161_558_943_949_701_069_502_944_508_345_128_422_502_756_744_429_568


def _to_zero(x: int, y: int) -> int:
    """Solidity's int256 x / y: the quotient truncated toward zero."""
    quotient = abs(x) // abs(y)
    return quotient if (x < 0) == (y < 0) else -quotient


def w_mul_to_zero(x: int, y: int) -> int:
    return _to_zero(x * y, WAD)


def w_div_to_zero(x: int, y: int) -> int:
    return _to_zero(x * WAD, y)


def w_exp(x: int) -> int:
    """ExpLib.wExp: e^x (WAD) as 2^q times a second-order Taylor polynomial of the remainder."""
    if x < LN_WEI:
        return 0
    if x >= WEXP_UPPER_BOUND:
        return WEXP_UPPER_VALUE
    adjustment = -(LN_2 // 2) if x < 0 else LN_2 // 2
    q = _to_zero(x + adjustment, LN_2)
    r = x - q * LN_2
    exp_r = WAD + r + _to_zero(_to_zero(r * r, WAD), 2)
    # exp_r is positive (|r| <= ln(2)/2), so Solidity's arithmetic shifts are Python's.
    return exp_r << q if q >= 0 else exp_r >> -q


def _new_rate_at_target(start: int, linear_adaptation: int) -> int:
    return min(max(w_mul_to_zero(start, w_exp(linear_adaptation)), MIN_RATE_AT_TARGET), MAX_RATE_AT_TARGET)


def _curve(rate_at_target: int, err: int) -> int:
    coeff = WAD - w_div_to_zero(WAD, CURVE_STEEPNESS) if err < 0 else CURVE_STEEPNESS - WAD
    return w_mul_to_zero(w_mul_to_zero(coeff, err) + WAD, rate_at_target)


def _adaptation(rate_at_target: int, market: MarketState, timestamp: int) -> tuple[int, int, int]:
    """`_borrowRate`'s normalised error of the stored utilization from the target (WAD, -1 to 1), its linear
    adaptation over the time since the market's last update, and the rate at target adapted to `timestamp`.
    ValueError where the contract reverts (a block before the market's last update)."""
    if timestamp < market.last_update:
        raise ValueError(f"block time {timestamp} is before the market's last update {market.last_update}")
    supply = market.total_supply_assets
    utilization = w_div_down(market.total_borrow_assets, supply) if supply > 0 else 0
    norm = WAD - TARGET_UTILIZATION if utilization > TARGET_UTILIZATION else TARGET_UTILIZATION
    err = w_div_to_zero(utilization - TARGET_UTILIZATION, norm)
    if rate_at_target == 0:  # the market's first interaction
        return err, 0, INITIAL_RATE_AT_TARGET
    linear_adaptation = w_mul_to_zero(ADJUSTMENT_SPEED, err) * (timestamp - market.last_update)
    end = rate_at_target if linear_adaptation == 0 else _new_rate_at_target(rate_at_target, linear_adaptation)
    return err, linear_adaptation, end


def adaptive_curve_rate(rate_at_target: int, market: MarketState, timestamp: int) -> tuple[int, int]:
    """(borrowRateView's answer, the rate at target `borrowRate` would store) at block time `timestamp`, for a market
    whose stored state is `market` (IMorpho.market(id), before accrual) and whose IRM holds `rate_at_target`.
    ValueError where the contract reverts (a block before the market's last update)."""
    err, linear_adaptation, end = _adaptation(rate_at_target, market, timestamp)
    if linear_adaptation == 0:  # a first interaction, or no adaptation: the average is the rate at target itself
        average = end
    else:
        middle = _new_rate_at_target(rate_at_target, _to_zero(linear_adaptation, 2))
        average = _to_zero(rate_at_target + end + 2 * middle, 4)
    return _curve(average, err), end


def rate_at(rate_at_target: int, market: MarketState, timestamp: int) -> int:
    """The per-second rate (WAD) the IRM charges at block time `timestamp` while the market's stored state stays
    `market`: the curve at the rate at target adapted up to that time. It is what `borrowRateView` answers in the
    block of an interaction at that time, had the interaction left the utilization where it was; so a projection,
    since every interaction (and the interest it accrues) moves the utilization. At the market's last update it is
    exactly what `borrowRateView` answers then. ValueError for a time before the last update."""
    err, _, end = _adaptation(rate_at_target, market, timestamp)
    return _curve(end, err)


def curve_rate(rate_at_target: int, utilization: int) -> int:
    """The per-second rate (WAD) the AdaptiveCurveIrm's curve gives at `utilization` (WAD) for a rate at target held
    fixed: `_borrowRate`'s curve without the adaptation over time (what the IRM charges the instant the market's
    utilization is `utilization`, before that utilization moves its rate at target)."""
    norm = WAD - TARGET_UTILIZATION if utilization > TARGET_UTILIZATION else TARGET_UTILIZATION
    return _curve(rate_at_target, w_div_to_zero(utilization - TARGET_UTILIZATION, norm))
