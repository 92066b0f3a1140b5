"""What a keeper's liquidationCall would do to each Aave borrower under health 1, pair by pair, at the snapshot: the
debt it repays and the collateral it seizes for `debtToCover = type(uint256).max` (liquidation.liquidation_call, the
pool's own rules per version), or why it reverts (a grace period, the L2 sentinel, MustNotLeaveDust, ...), and when
the max call reverts on the dust rule the largest amount a keeper can repay instead; per wallet, the status the
shared tables carry (liquidatable now, or blocked and why, and until when)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from chainrisk.protocols.aave_v3.account import is_borrowing, is_collateral
from chainrisk.protocols.aave_v3.account_versions import MarketState
from chainrisk.protocols.aave_v3.constants import WAD
from chainrisk.protocols.aave_v3.liquidation import LiquidationOutcome, liquidation_call
from chainrisk.protocols.aave_v3.sentinel import with_sentinel
from chainrisk.protocols.aave_v3.snapshot import Account
from chainrisk.protocols.frames import EXACT, keyed

#: Reverts that block a borrower under health 1 for now, by the reason code the shared tables use.
BLOCKING = {
    "LiquidationGraceSentinelCheckFailed": "grace_period",
    "PriceOracleSentinelCheckFailed": "sequencer_down",
    "ReservePaused": "reserve_paused",
    "ReserveInactive": "reserve_inactive",
}
SCHEMA: dict[str, pl.DataType] = {
    "wallet": pl.Utf8(),
    "collateral_asset": pl.Utf8(),
    "debt_asset": pl.Utf8(),
    "health_factor_wad": EXACT(),
    "error": pl.Utf8(),
    "max_liquidatable_debt": EXACT(),
    "debt_repaid": EXACT(),
    "collateral_seized": EXACT(),
    "protocol_fee": EXACT(),
    "deficit_created": EXACT(),
    "allowed_debt_to_cover": EXACT(),
    "grace_until": pl.Int64(),
}


@dataclass(frozen=True)
class Pair:
    wallet: str
    collateral_id: int
    debt_id: int
    outcome: LiquidationOutcome
    allowed: int  #: the largest debtToCover that goes through (0: none); the max call's repay when it does


def _largest_allowed(market: MarketState, account: Account, collateral: int, debt: int, allowed: bool) -> int:
    """The largest debtToCover below the max that goes through, when the max call reverts on the dust rule: a
    smaller repay leaves more debt, so the amounts that go through are those below a threshold (bisection)."""
    max_outcome = with_sentinel(
        liquidation_call(market, account.configuration, account.emode, account.balances, collateral, debt), allowed
    )
    if max_outcome.error is None:
        return max_outcome.debt_repaid
    if max_outcome.error != "MustNotLeaveDust" or max_outcome.max_liquidatable_debt <= 1:
        return 0
    lo, hi = 0, max_outcome.max_liquidatable_debt - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        out = liquidation_call(market, account.configuration, account.emode, account.balances, collateral, debt, mid)
        if out.error is None:
            lo = mid
        else:
            hi = mid - 1
    return lo


def liquidation_pairs(
    market: MarketState, accounts: list[Account], health_factors: Sequence[int], allowed: bool
) -> list[Pair]:
    """Every (collateral, debt) pair of every borrower under health 1 (`health_factors`: each account's
    getUserAccountData health factor), as liquidationCall(max) would go."""
    pairs = []
    for account, health_factor in zip(accounts, health_factors, strict=True):
        if health_factor >= WAD:
            continue
        ids = sorted(market.reserves_by_id)
        for collateral in (i for i in ids if is_collateral(account.configuration, i)):
            for debt in (i for i in ids if is_borrowing(account.configuration, i)):
                outcome = with_sentinel(
                    liquidation_call(market, account.configuration, account.emode, account.balances, collateral, debt),
                    allowed,
                )
                room = _largest_allowed(market, account, collateral, debt, allowed) if outcome.error else 0
                pairs.append(Pair(account.wallet, collateral, debt, outcome, outcome.debt_repaid or room))
    return pairs


def _grace_until(market: MarketState, pair: Pair) -> int | None:
    ends = [market.reserves_by_id[i].liquidation_grace_period_until for i in (pair.collateral_id, pair.debt_id)]
    end = max(ends)
    return end if end > market.timestamp else None


def pairs_frame(market: MarketState, pairs: list[Pair], chain_id: int, source: str, block: int) -> pl.DataFrame:
    """raw_aave_v3_liquidations: one row per borrower under health 1 and (collateral, debt) pair."""
    rows = [
        {
            "wallet": p.wallet,
            "collateral_asset": market.reserves_by_id[p.collateral_id].asset,
            "debt_asset": market.reserves_by_id[p.debt_id].asset,
            "health_factor_wad": p.outcome.health_factor,
            "error": p.outcome.error,
            "max_liquidatable_debt": p.outcome.max_liquidatable_debt,
            "debt_repaid": p.outcome.debt_repaid,
            "collateral_seized": p.outcome.collateral_seized,
            "protocol_fee": p.outcome.protocol_fee,
            "deficit_created": sum(p.outcome.deficits.values()),
            "allowed_debt_to_cover": p.allowed,
            "grace_until": _grace_until(market, p),
        }
        for p in pairs
    ]
    return keyed(pl.DataFrame(rows, schema=SCHEMA), chain_id, source, block)


def wallet_status(market: MarketState, pairs: list[Pair]) -> dict[str, tuple[str | None, int | None]]:
    """Per borrower under health 1: (None, None) when some keeper call goes through now; else the reason code it is
    blocked for and, for a grace period, when the first pair opens."""
    by_wallet: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_wallet.setdefault(pair.wallet, []).append(pair)
    status: dict[str, tuple[str | None, int | None]] = {}
    for wallet, mine in by_wallet.items():
        if any(p.allowed > 0 for p in mine):
            status[wallet] = (None, None)
            continue
        reasons = [BLOCKING.get(str(p.outcome.error), "no_call_succeeds") for p in mine]
        reason = "grace_period" if "grace_period" in reasons else reasons[0] if reasons else "no_call_succeeds"
        ends = [e for p in mine if (e := _grace_until(market, p)) is not None]
        status[wallet] = (reason, min(ends) if reason == "grace_period" and ends else None)
    return status


def with_status(health: pl.DataFrame, status: Mapping[str, tuple[str | None, int | None]]) -> pl.DataFrame:
    """wallet_health with the protocol's own liquidation status: `liquidation_blocked` (NULL when a keeper call
    goes through now, or the wallet is healthy) and `liquidation_blocked_until` (a grace period's end)."""
    reasons = {w: s[0] for w, s in status.items()}
    until = {w: s[1] for w, s in status.items()}
    return health.with_columns(
        pl.col("wallet").replace_strict(reasons, default=None, return_dtype=pl.Utf8).alias("liquidation_blocked"),
        pl.col("wallet").replace_strict(until, default=None, return_dtype=pl.Int64).alias("liquidation_blocked_until"),
    )
