"""Morpho Blue's integer maths, mirrored with its rounding: MathLib, SharesMathLib, Morpho._accrueInterest,
Morpho._isHealthy and the liquidation incentive factor of Morpho.liquidate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from chainrisk.protocols.morpho_blue.constants import (
    LIQUIDATION_CURSOR,
    MAX_LIQUIDATION_INCENTIVE_FACTOR,
    MAX_UINT128,
    MAX_UINT256,
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


def accrual_reverts(market: MarketState, borrow_rate: int, timestamp: int) -> bool:
    """Whether Morpho._accrueInterest at `timestamp` reverts with this rate: a checked product of MathLib's
    wTaylorCompounded or wMulDown passes 2^256 - 1, or the interest, a total or the fee's shares pass uint128
    (SafeCastLib.toUint128 and the uint128 additions). The market is then frozen: every call that accrues first
    (supply, borrow, repay, withdraw, liquidate) reverts, as with an IRM that reverts."""
    elapsed = timestamp - market.last_update
    if elapsed <= 0:
        return False
    first = borrow_rate * elapsed
    if first > MAX_UINT256 or first * first > MAX_UINT256 or mul_div_down(first, first, 2 * WAD) * first > MAX_UINT256:
        return True
    growth = w_taylor_compounded(borrow_rate, elapsed)
    if growth > MAX_UINT256 or market.total_borrow_assets * growth > MAX_UINT256:
        return True
    # The products left are the fee's (wMulDown, then toSharesDown's); the rest is uint128 arithmetic.
    accrual = accrue_interest(market, borrow_rate, timestamp)
    fee_amount = w_mul_down(accrual.interest, market.fee)
    if fee_amount * (market.total_supply_shares + VIRTUAL_SHARES) > MAX_UINT256:
        return True
    accrued = accrual.market
    largest = max(
        accrual.interest, accrued.total_borrow_assets, accrued.total_supply_assets, accrued.total_supply_shares
    )
    return largest > MAX_UINT128


def accrues(market: MarketState, borrow_rate: int | None, timestamp: int) -> bool:
    """Whether the market's state accrued to `timestamp` is known: no time has passed since its last update, or its
    IRM answered a rate (None: it failed) at which Morpho's own accrual does not revert (accrual_reverts). Else the
    market is frozen as it was last written, interest since unknown."""
    return timestamp <= market.last_update or (
        borrow_rate is not None and not accrual_reverts(market, borrow_rate, timestamp)
    )


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


def priced_value(collateral: int, price: int | None) -> int | None:
    """Morpho._isHealthy's collateral value where Morpho computes one: None without a price, or where collateral x
    price passes 2^256 - 1 (MathLib.mulDivDown's checked product reverts, so the borrow, withdraw and liquidate calls
    that ask the borrower's health revert and Morpho itself cannot tell it; the value times an LLTV never
    overflows, the value being under 2^256 / 1e36)."""
    if price is None or collateral * price > MAX_UINT256:
        return None
    return collateral_value(collateral, price)


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


def w_div_up(x: int, y: int) -> int:
    return mul_div_up(x, WAD, y)


def to_shares_up(assets: int, total_assets: int, total_shares: int) -> int:
    return mul_div_up(assets, total_shares + VIRTUAL_SHARES, total_assets + VIRTUAL_ASSETS)


@dataclass(frozen=True)
class Liquidation:
    """What one Morpho.liquidate call does to a borrower (src/Morpho.sol `liquidate`), loan and collateral units."""

    seized_assets: int  #: collateral paid to the liquidator
    repaid_shares: int  #: borrow shares repaid
    repaid_assets: int  #: loan assets the liquidator pays (repaidShares.toAssetsUp)
    bad_debt_shares: int  #: borrow shares written off when no collateral is left
    bad_debt_assets: int  #: loan assets written off (socialised to the market's suppliers)


def _liquidate(
    collateral: int, borrow_shares: int, market: MarketState, price: int, lif: int, seized: int, repaid: int
) -> Liquidation | None:
    """Morpho.liquidate(seizedAssets=seized, repaidShares=repaid) on an accrued `market`; None where it reverts on
    an underflow (more shares repaid than borrowed, more collateral seized than held)."""
    tba, tbs = market.total_borrow_assets, market.total_borrow_shares
    if seized > 0:
        quoted = mul_div_up(seized, price, ORACLE_PRICE_SCALE)
        repaid = to_shares_up(w_div_up(quoted, lif), tba, tbs)
    else:
        seized = mul_div_down(w_mul_down(to_assets_down(repaid, tba, tbs), lif), ORACLE_PRICE_SCALE, price)
    repaid_assets = to_assets_up(repaid, tba, tbs)
    if repaid > borrow_shares or seized > collateral:
        return None
    tba_after, tbs_after = max(tba - repaid_assets, 0), tbs - repaid
    bad_shares = bad_assets = 0
    if collateral - seized == 0:
        bad_shares = borrow_shares - repaid
        bad_assets = min(tba_after, to_assets_up(bad_shares, tba_after, tbs_after))
    return Liquidation(seized, repaid, repaid_assets, bad_shares, bad_assets)


#: Morpho.liquidate's refusal of a healthy position (ErrorsLib.HEALTHY_POSITION), as liquidate_most names it.
HEALTHY = "HEALTHY_POSITION"


def liquidate_most(
    collateral: int, borrow_shares: int, market: MarketState, price: int | None, lltv: int
) -> Liquidation | str:
    """The largest liquidation one Morpho.liquidate call makes of an unhealthy borrower on `market` (accrued to the
    block: liquidate accrues first) at the oracle's `price`: every borrow share where the collateral they buy at the
    incentive is there, else every unit of collateral (the rest of the debt then bad debt); where rounding lets
    neither through, the most shares repaid whose collateral is there, or the most collateral whose shares are owed,
    whichever repays more (a position without collateral: the most shares that buy none, which realises the rest as
    bad debt). Or why the call reverts: the oracle's (no price), a healthy position, nothing to take."""
    if price is None:
        return "oracle reverts"
    if max_borrow(collateral, price, lltv) >= to_assets_up(
        borrow_shares, market.total_borrow_assets, market.total_borrow_shares
    ):
        return HEALTHY
    lif = liquidation_incentive_factor(lltv)

    def repaying(shares: int) -> Liquidation | None:
        # repaidShares: seizedAssets = ... mulDivDown(ORACLE_PRICE_SCALE, price), which a zero price divides by.
        return _liquidate(collateral, borrow_shares, market, price, lif, 0, shares) if price > 0 else None

    def seizing(assets: int) -> Liquidation | None:
        return _liquidate(collateral, borrow_shares, market, price, lif, assets, 0)

    if whole := repaying(borrow_shares):
        return whole
    if collateral > 0 and (everything := seizing(collateral)):
        return everything
    # Each branch takes more as its input grows, until it asks for more than the position holds.
    found = [c for c in (_largest(repaying, borrow_shares), _largest(seizing, collateral)) if c is not None]
    if not found:
        return "no call goes through"
    return max(found, key=lambda c: (c.repaid_assets, c.seized_assets))


def _largest(call: Callable[[int], Liquidation | None], most: int) -> Liquidation | None:
    """`call` at the largest input in 1..`most` it goes through with (it goes through for every smaller one)."""
    low, high = 0, most
    while low < high:
        middle = (low + high + 1) // 2
        if call(middle) is None:
            high = middle - 1
        else:
            low = middle
    return call(low) if low > 0 else None
