"""Liquity V1's integer maths, mirrored with its rounding, from liquity/dev at 5174ecd (the `version` of
packages/lib-ethers/deployments/default/mainnet.json, i.e. the contracts deployed on mainnet).

Each function names the Solidity function it mirrors: TroveManager.sol (pending rewards, liquidations in Normal
and Recovery Mode, redistribution with error feedback, the base rate), LiquityBase.sol (system totals, TCR,
Recovery Mode) and LiquityMath.sol (_computeCR, _computeNominalCR, _decPow). `batch_liquidate` replays
TroveManager.batchLiquidateTroves on a snapshot: which troves go, what the Stability Pool absorbs, what is
redistributed, and the state after, to the wei.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

#: LiquityMath.DECIMAL_PRECISION and LiquityBase._100pct.
DECIMAL_PRECISION = 10**18
HUNDRED_PCT = 10**18
#: LiquityMath.NICR_PRECISION.
NICR_PRECISION = 10**20
MAX_UINT256 = 2**256 - 1
#: TroveManager.Status.active.
ACTIVE = 1
#: TroveManager.MINUTE_DECAY_FACTOR (a 12-hour half-life per minute), SECONDS_IN_ONE_MINUTE, MAX_BORROWING_FEE.
MINUTE_DECAY_FACTOR = 999037758833783000
SECONDS_IN_ONE_MINUTE = 60
MAX_BORROWING_FEE = DECIMAL_PRECISION // 100 * 5
#: LiquityBase.BORROWING_FEE_FLOOR and LiquityMath._decPow's cap on minutes.
BORROWING_FEE_FLOOR = DECIMAL_PRECISION // 1000 * 5
DEC_POW_MAX_MINUTES = 525_600_000


@dataclass(frozen=True)
class Params:
    """LiquityBase's constants, read from the TroveManager's public getters."""

    mcr: int  #: MCR, minimum collateral ratio of a trove (1.1e18)
    ccr: int  #: CCR, the TCR under which the system is in Recovery Mode (1.5e18)
    lusd_gas_compensation: int  #: LUSD_GAS_COMPENSATION, the liquidation reserve in every trove's debt (200e18)
    percent_divisor: int  #: PERCENT_DIVISOR: collateral / 200 goes to the liquidator (0.5 %)


@dataclass(frozen=True)
class Trove:
    """TroveManager.Troves(borrower) and rewardSnapshots(borrower) as stored."""

    wallet: str  #: borrower, lowercase hex
    debt: int  #: recorded debt (LUSD wei) incl. the gas compensation, without pending rewards
    coll: int  #: recorded collateral (wei), without pending rewards
    stake: int  #: share of redistributions
    status: int  #: 0 nonExistent, 1 active, 2 closedByOwner, 3 closedByLiquidation, 4 closedByRedemption
    array_index: int  #: position in TroveOwners
    snapshot_eth: int  #: rewardSnapshots.ETH, L_ETH when the trove last took its rewards
    snapshot_lusd_debt: int  #: rewardSnapshots.LUSDDebt


@dataclass(frozen=True)
class System:
    """The TroveManager's and pools' state that liquidations read and write."""

    params: Params
    price: int  #: PriceFeed.lastGoodPrice (USD per ETH, 18 decimals), what fetchPrice returns when feeds are quiet
    active_eth: int  #: ActivePool.getETH
    active_debt: int  #: ActivePool.getLUSDDebt
    default_eth: int  #: DefaultPool.getETH (redistributed, not yet applied)
    default_debt: int  #: DefaultPool.getLUSDDebt
    sp_lusd: int  #: StabilityPool.getTotalLUSDDeposits
    sp_eth: int  #: StabilityPool.getETH
    total_stakes: int  #: TroveManager.totalStakes
    total_stakes_snapshot: int  #: totalStakesSnapshot (after the last liquidation)
    total_collateral_snapshot: int  #: totalCollateralSnapshot
    l_eth: int  #: L_ETH, ETH redistributed per unit staked (1e18-scaled), ever
    l_lusd_debt: int  #: L_LUSDDebt
    last_eth_error: int  #: lastETHError_Redistribution
    last_lusd_debt_error: int  #: lastLUSDDebtError_Redistribution
    trove_owners: int  #: getTroveOwnersCount (active troves)
    sorted_troves: int  #: SortedTroves.getSize
    base_rate: int  #: baseRate
    last_fee_operation_time: int  #: lastFeeOperationTime


def compute_cr(coll: int, debt: int, price: int) -> int:
    """LiquityMath._computeCR: floor(coll * price / debt), 2^256 - 1 without debt."""
    return coll * price // debt if debt > 0 else MAX_UINT256


def compute_nominal_cr(coll: int, debt: int) -> int:
    """LiquityMath._computeNominalCR: floor(coll * 1e20 / debt), the order SortedTroves keeps."""
    return coll * NICR_PRECISION // debt if debt > 0 else MAX_UINT256


def pending_eth_reward(trove: Trove, l_eth: int) -> int:
    """TroveManager.getPendingETHReward: stake * (L_ETH - snapshot) / 1e18, 0 for a trove not active."""
    per_unit = l_eth - trove.snapshot_eth
    if per_unit == 0 or trove.status != ACTIVE:
        return 0
    return trove.stake * per_unit // DECIMAL_PRECISION


def pending_lusd_debt_reward(trove: Trove, l_lusd_debt: int) -> int:
    """TroveManager.getPendingLUSDDebtReward: stake * (L_LUSDDebt - snapshot) / 1e18."""
    per_unit = l_lusd_debt - trove.snapshot_lusd_debt
    if per_unit == 0 or trove.status != ACTIVE:
        return 0
    return trove.stake * per_unit // DECIMAL_PRECISION


@dataclass(frozen=True)
class Entire:
    """TroveManager.getEntireDebtAndColl's four results."""

    debt: int  #: recorded debt + pending LUSD debt reward
    coll: int  #: recorded collateral + pending ETH reward
    pending_debt: int  #: pendingLUSDDebtReward
    pending_coll: int  #: pendingETHReward


def entire_debt_and_coll(trove: Trove, l_eth: int, l_lusd_debt: int) -> Entire:
    """TroveManager.getEntireDebtAndColl."""
    pending_debt = pending_lusd_debt_reward(trove, l_lusd_debt)
    pending_coll = pending_eth_reward(trove, l_eth)
    return Entire(trove.debt + pending_debt, trove.coll + pending_coll, pending_debt, pending_coll)


def entire_system_coll(system: System) -> int:
    """LiquityBase.getEntireSystemColl: ActivePool + DefaultPool ETH."""
    return system.active_eth + system.default_eth


def entire_system_debt(system: System) -> int:
    """LiquityBase.getEntireSystemDebt: ActivePool + DefaultPool LUSD debt."""
    return system.active_debt + system.default_debt


def tcr(system: System, price: int) -> int:
    """LiquityBase._getTCR (TroveManager.getTCR)."""
    return compute_cr(entire_system_coll(system), entire_system_debt(system), price)


def recovery_mode(system: System, price: int) -> bool:
    """LiquityBase._checkRecoveryMode (TroveManager.checkRecoveryMode): TCR < CCR."""
    return tcr(system, price) < system.params.ccr


def price_for_ratio(coll: int, debt: int, ratio: int) -> int | None:
    """The lowest price at which _computeCR(coll, debt, price) >= ratio: ceil(ratio * debt / coll). A trove is
    under `ratio` exactly when the price is below it (coll * price < ratio * debt)."""
    if coll == 0:
        return None
    return -(-ratio * debt // coll)


def coll_gas_compensation(coll: int, params: Params) -> int:
    """LiquityBase._getCollGasCompensation: collateral / PERCENT_DIVISOR (0.5 %) to the liquidator."""
    return coll // params.percent_divisor


@dataclass(frozen=True)
class LiquidationValues:
    """TroveManager.LiquidationValues of one liquidated trove."""

    entire_debt: int  #: debt incl. pending reward
    entire_coll: int  #: collateral incl. pending reward
    coll_gas_compensation: int  #: ETH to the liquidator
    lusd_gas_compensation: int  #: LUSD from the gas pool to the liquidator
    debt_to_offset: int  #: cancelled against Stability Pool deposits
    coll_to_send_to_sp: int  #: ETH to the Stability Pool
    debt_to_redistribute: int  #: debt spread over the other troves' stakes
    coll_to_redistribute: int  #: ETH spread over the other troves' stakes
    coll_surplus: int  #: Recovery Mode's capped liquidation: ETH left claimable by the borrower
    recovery_mode: bool  #: liquidated by _liquidateRecoveryMode


def offset_and_redistribution_vals(debt: int, coll: int, lusd_in_sp: int) -> tuple[int, int, int, int]:
    """TroveManager._getOffsetAndRedistributionVals: (debtToOffset, collToSendToSP, debtToRedistribute,
    collToRedistribute). The pool absorbs min(debt, its LUSD) and the same fraction of the collateral (rounded
    down); the rest is redistributed."""
    if lusd_in_sp > 0:
        offset = min(debt, lusd_in_sp)
        to_sp = coll * offset // debt
        return offset, to_sp, debt - offset, coll - to_sp
    return 0, 0, debt, coll


def liquidate_normal_mode(entire: Entire, lusd_in_sp: int, params: Params) -> LiquidationValues:
    """TroveManager._liquidateNormalMode: 0.5 % of the collateral to the liquidator, the rest offset then
    redistributed."""
    gas = coll_gas_compensation(entire.coll, params)
    offset, to_sp, redistributed_debt, redistributed_coll = offset_and_redistribution_vals(
        entire.debt, entire.coll - gas, lusd_in_sp
    )
    return LiquidationValues(
        entire.debt,
        entire.coll,
        gas,
        params.lusd_gas_compensation,
        offset,
        to_sp,
        redistributed_debt,
        redistributed_coll,
        0,
        False,
    )


def capped_offset_vals(entire: Entire, price: int, params: Params) -> LiquidationValues:
    """TroveManager._getCappedOffsetVals: the whole debt offset against collateral worth MCR times it; the
    remainder is the borrower's surplus."""
    capped = entire.debt * params.mcr // price
    gas = coll_gas_compensation(capped, params)
    return LiquidationValues(
        entire.debt,
        entire.coll,
        gas,
        params.lusd_gas_compensation,
        entire.debt,
        capped - gas,
        0,
        0,
        entire.coll - capped,
        True,
    )


def liquidate_recovery_mode(
    entire: Entire, icr: int, lusd_in_sp: int, system_tcr: int, price: int, owners: int, params: Params
) -> LiquidationValues | None:
    """TroveManager._liquidateRecoveryMode; None where it returns zero values (the trove stays):
    ICR <= 100 %: everything redistributed; 100 % < ICR < MCR: offset then redistribution as in Normal Mode;
    MCR <= ICR < TCR with the pool covering the whole debt: capped offset; otherwise nothing, and never the last
    trove."""
    if owners <= 1:
        return None
    gas = coll_gas_compensation(entire.coll, params)
    if icr <= HUNDRED_PCT:
        return LiquidationValues(
            entire.debt, entire.coll, gas, params.lusd_gas_compensation, 0, 0, entire.debt, entire.coll - gas, 0, True
        )
    if icr < params.mcr:
        return replace(liquidate_normal_mode(entire, lusd_in_sp, params), recovery_mode=True)
    if icr < system_tcr and entire.debt <= lusd_in_sp:
        return capped_offset_vals(entire, price, params)
    return None


def liquidatable_normal_mode(icr: int, owners: int, params: Params) -> bool:
    """What TroveManager.liquidate accepts in Normal Mode: ICR < MCR (and not the last trove, which _closeTrove
    refuses)."""
    return icr < params.mcr and owners > 1


def liquidatable_recovery_mode(icr: int, debt: int, system: System, price: int) -> bool:
    """What TroveManager.liquidate accepts in Recovery Mode (a batch of one: TCR and the pool as they are now):
    ICR < MCR, or MCR <= ICR < TCR with the Stability Pool's LUSD covering the whole debt; never the last trove."""
    if system.trove_owners <= 1:
        return False
    if icr < system.params.mcr:
        return True
    return system.sp_lusd > 0 and icr < tcr(system, price) and debt <= system.sp_lusd


def liquidatable(icr: int, debt: int, system: System, price: int) -> bool:
    """TroveManager.liquidate's verdict at `price`: the mode is the system's at that price."""
    if recovery_mode(system, price):
        return liquidatable_recovery_mode(icr, debt, system, price)
    return liquidatable_normal_mode(icr, system.trove_owners, system.params)


@dataclass(frozen=True)
class Redistribution:
    """TroveManager._redistributeDebtAndColl's new running sums and carried errors."""

    l_eth: int  #: L_ETH after
    l_lusd_debt: int  #: L_LUSDDebt after
    last_eth_error: int  #: lastETHError_Redistribution after
    last_lusd_debt_error: int  #: lastLUSDDebtError_Redistribution after


def redistribute_debt_and_coll(system: System, debt: int, coll: int, total_stakes: int) -> Redistribution:
    """TroveManager._redistributeDebtAndColl: per unit staked, each numerator carrying the previous call's floor
    division error (error feedback), over `total_stakes` (after the batch removed the liquidated stakes)."""
    if debt == 0:
        return Redistribution(system.l_eth, system.l_lusd_debt, system.last_eth_error, system.last_lusd_debt_error)
    eth_numerator = coll * DECIMAL_PRECISION + system.last_eth_error
    debt_numerator = debt * DECIMAL_PRECISION + system.last_lusd_debt_error
    eth_per_unit = eth_numerator // total_stakes
    debt_per_unit = debt_numerator // total_stakes
    return Redistribution(
        l_eth=system.l_eth + eth_per_unit,
        l_lusd_debt=system.l_lusd_debt + debt_per_unit,
        last_eth_error=eth_numerator - eth_per_unit * total_stakes,
        last_lusd_debt_error=debt_numerator - debt_per_unit * total_stakes,
    )


@dataclass(frozen=True)
class BatchOutcome:
    """What TroveManager.batchLiquidateTroves(order) does at `price`, to the wei."""

    reverted: str | None  #: the revert reason when the call would revert ("nothing to liquidate", ...)
    recovery_mode_at_start: bool  #: _checkRecoveryMode at the start
    liquidated: dict[str, LiquidationValues] = field(default_factory=dict)  #: borrower -> its values, in order
    #: every surviving active trove's (debt, coll) received by redistribution: its pending rewards after minus before
    redistributed: dict[str, tuple[int, int]] = field(default_factory=dict)
    system: System | None = None  #: the state after (None when reverted)


def batch_liquidate(system: System, troves: Mapping[str, Trove], order: Sequence[str], price: int) -> BatchOutcome:
    """TroveManager.batchLiquidateTroves(order) at `price` (what fetchPrice returns), as deployed on mainnet: the
    Normal or Recovery Mode sequence (_getTotalsFromBatchLiquidate_NormalMode / _getTotalFromBatchLiquidate_
    RecoveryMode, whose system-collateral tracker subtracts only the collateral sent to the pool), then the
    Stability Pool offset, the redistribution over the stakes left, the surplus, the system snapshots and the gas
    compensation."""
    params = system.params
    at_start = recovery_mode(system, price)
    status = {w: t.status for w, t in troves.items()}
    owners, sorted_size = system.trove_owners, system.sorted_troves
    remaining = system.sp_lusd
    sys_debt, sys_coll = entire_system_debt(system), entire_system_coll(system)
    back_to_normal = False
    liquidated: dict[str, LiquidationValues] = {}
    pending_moved_debt = pending_moved_coll = removed_stakes = 0

    for wallet in order:
        # Recovery Mode skips troves not active; Normal Mode reads their ICR, which is 2^256 - 1 (a closed trove's
        # debt is zeroed), so it skips them too, as it does addresses that never had a trove.
        if wallet not in troves or status[wallet] != ACTIVE:
            continue
        entire = entire_debt_and_coll(troves[wallet], system.l_eth, system.l_lusd_debt)
        icr = compute_cr(entire.coll, entire.debt, price)
        values: LiquidationValues | None = None
        if at_start and not back_to_normal:
            if icr >= params.mcr and remaining == 0:
                continue
            values = liquidate_recovery_mode(
                entire, icr, remaining, compute_cr(sys_coll, sys_debt, price), price, owners, params
            )
            if values is not None:
                sys_debt -= values.debt_to_offset
                sys_coll -= values.coll_to_send_to_sp
                back_to_normal = compute_cr(sys_coll, sys_debt, price) >= params.ccr
        elif icr < params.mcr:
            if owners <= 1 or sorted_size <= 1:
                return BatchOutcome("TroveManager: Only one trove in the system", at_start)
            values = liquidate_normal_mode(entire, remaining, params)
        if values is None:
            continue
        remaining -= values.debt_to_offset
        liquidated[wallet] = values
        status[wallet] = 3  # closedByLiquidation
        owners -= 1
        sorted_size -= 1
        pending_moved_debt += entire.pending_debt
        pending_moved_coll += entire.pending_coll
        removed_stakes += troves[wallet].stake

    if sum(v.entire_debt for v in liquidated.values()) == 0:
        return BatchOutcome("TroveManager: nothing to liquidate", at_start)

    def total(name: str) -> int:
        return sum(getattr(v, name) for v in liquidated.values())

    offset, to_sp = total("debt_to_offset"), total("coll_to_send_to_sp")
    debt_out, coll_out = total("debt_to_redistribute"), total("coll_to_redistribute")
    surplus, gas_coll = total("coll_surplus"), total("coll_gas_compensation")
    total_stakes = system.total_stakes - removed_stakes
    # StabilityPool.offset returns early on an empty pool or nothing to offset (nothing is offset then anyway).
    sp_takes = system.sp_lusd > 0 and offset > 0
    active_eth = system.active_eth + pending_moved_coll - (to_sp if sp_takes else 0) - coll_out - surplus
    active_debt = system.active_debt + pending_moved_debt - (offset if sp_takes else 0) - debt_out
    default_eth = system.default_eth - pending_moved_coll + coll_out
    default_debt = system.default_debt - pending_moved_debt + debt_out
    terms = redistribute_debt_and_coll(system, debt_out, coll_out, total_stakes)
    after = replace(
        system,
        price=price,
        active_eth=active_eth - gas_coll,
        active_debt=active_debt,
        default_eth=default_eth,
        default_debt=default_debt,
        sp_lusd=system.sp_lusd - (offset if sp_takes else 0),
        sp_eth=system.sp_eth + (to_sp if sp_takes else 0),
        total_stakes=total_stakes,
        total_stakes_snapshot=total_stakes,
        # _updateSystemSnapshots_excludeCollRemainder: ActivePool less the gas compensation, plus DefaultPool.
        total_collateral_snapshot=active_eth - gas_coll + default_eth,
        l_eth=terms.l_eth,
        l_lusd_debt=terms.l_lusd_debt,
        last_eth_error=terms.last_eth_error,
        last_lusd_debt_error=terms.last_lusd_debt_error,
        trove_owners=owners,
        sorted_troves=sorted_size,
    )
    received: dict[str, tuple[int, int]] = {}
    for wallet, trove in troves.items():
        if status[wallet] != ACTIVE:
            continue
        before = entire_debt_and_coll(trove, system.l_eth, system.l_lusd_debt)
        later = entire_debt_and_coll(trove, after.l_eth, after.l_lusd_debt)
        received[wallet] = (later.debt - before.debt, later.coll - before.coll)
    return BatchOutcome(None, at_start, liquidated, received, after)


def keeper_order(system: System, troves: Mapping[str, Trove], price: int) -> list[str]:
    """Every active trove from the lowest ICR up (ties by address): the batch a keeper sends to
    batchLiquidateTroves, as liquidateTroves would walk SortedTroves from its last (lowest) trove."""

    def icr(trove: Trove) -> int:
        entire = entire_debt_and_coll(trove, system.l_eth, system.l_lusd_debt)
        return compute_cr(entire.coll, entire.debt, price)

    active = [t for t in troves.values() if t.status == ACTIVE]
    return [t.wallet for t in sorted(active, key=lambda t: (icr(t), t.wallet))]


def liquidation_rounds(
    system: System, troves: Mapping[str, Trove], price: int, max_rounds: int = 25
) -> list[tuple[list[str], BatchOutcome]]:
    """Keeper batches at `price` until one would revert (nothing left to liquidate): each round's order and outcome.
    Redistribution is the contagion: it adds debt and collateral at the liquidated troves' ratio (below MCR) to the
    others, which can push them under MCR (or, in Recovery Mode, under the TCR) for the next round."""
    rounds: list[tuple[list[str], BatchOutcome]] = []
    state = dict(troves)
    for _ in range(max_rounds):
        order = keeper_order(system, state, price)
        outcome = batch_liquidate(system, state, order, price)
        if outcome.reverted is not None or outcome.system is None:
            break
        rounds.append((order, outcome))
        system = outcome.system
        for wallet in outcome.liquidated:
            # TroveManager._closeTrove and _removeStake: status closedByLiquidation, everything zeroed.
            state[wallet] = Trove(wallet, 0, 0, 0, 3, 0, 0, 0)
    return rounds


def dec_mul(x: int, y: int) -> int:
    """LiquityMath.decMul: x * y / 1e18 rounded half up."""
    return (x * y + DECIMAL_PRECISION // 2) // DECIMAL_PRECISION


def dec_pow(base: int, minutes: int) -> int:
    """LiquityMath._decPow: base^minutes (18 decimals) by squaring, each product rounded by decMul."""
    n = min(minutes, DEC_POW_MAX_MINUTES)
    if n == 0:
        return DECIMAL_PRECISION
    y, x = DECIMAL_PRECISION, base
    while n > 1:
        if n % 2 == 0:
            x, n = dec_mul(x, x), n // 2
        else:
            y, x, n = dec_mul(x, y), dec_mul(x, x), (n - 1) // 2
    return dec_mul(x, y)


def decayed_base_rate(base_rate: int, last_fee_operation_time: int, timestamp: int) -> int:
    """TroveManager._calcDecayedBaseRate at `timestamp` (12-hour half-life, whole minutes)."""
    minutes = (timestamp - last_fee_operation_time) // SECONDS_IN_ONE_MINUTE
    return base_rate * dec_pow(MINUTE_DECAY_FACTOR, minutes) // DECIMAL_PRECISION


def borrowing_rate(base_rate: int) -> int:
    """TroveManager._calcBorrowingRate: min(0.5 % + base rate, 5 %)."""
    return min(BORROWING_FEE_FLOOR + base_rate, MAX_BORROWING_FEE)
