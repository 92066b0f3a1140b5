"""What an Aave pool's odd reserves leave unknown: a reserve whose price the AaveOracle cannot give (the pool itself
then cannot value the wallets that use it), one priced at zero (no USD figure), one whose token has no string symbol
or no code; as `data_quality` issues and as NULLs in the snapshot's frames."""

from __future__ import annotations

import polars as pl

from chainrisk.protocols.aave_v3.account import is_borrowing, is_collateral
from chainrisk.protocols.aave_v3.reserve import Reserve
from chainrisk.protocols.aave_v3.snapshot import Account
from chainrisk.protocols.quality import Issue

#: The USD columns of `positions` and `wallet_health` left NULL where a price is unknown or zero.
POSITION_USD = ("price_usd", "supplied_usd", "collateral_usd", "debt_usd")
HEALTH_USD = ("collateral_usd", "debt_usd")


def issues(reserves: list[Reserve], market: str) -> list[Issue]:
    """Every reserve's problems as the pool (`market`, its provider) meets them."""
    return [
        Issue(market, p.subject or r.asset, p.kind, f"reserve {r.symbol} ({r.asset}): {p.detail}", p.unknown)
        for r in reserves
        for p in r.problems
    ]


def _using(accounts: list[Account], reserve_ids: set[int]) -> set[str]:
    """Wallets that use any of `reserve_ids` as collateral or debt: those whose account data the pool computes from
    those reserves' prices (GenericLogic.calculateUserAccountData skips the reserves a wallet does neither with)."""
    return {
        a.wallet
        for a in accounts
        if any(is_collateral(a.configuration, i) or is_borrowing(a.configuration, i) for i in reserve_ids)
    }


def unpriced_wallets(accounts: list[Account], reserves: list[Reserve]) -> set[str]:
    """Wallets whose health the pool itself cannot tell: getUserAccountData reverts with the asset's price."""
    return _using(accounts, {r.reserve_id for r in reserves if not r.price_known})


def zero_priced_wallets(accounts: list[Account], reserves: list[Reserve]) -> set[str]:
    """Wallets using a reserve the oracle prices at zero: the pool rates them, but has no USD figure for them."""
    return _using(accounts, {r.reserve_id for r in reserves if r.price_known and not r.price})


def without_unknowns(
    positions: pl.DataFrame, health: pl.DataFrame, accounts: list[Account], reserves: list[Reserve]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(positions, wallet_health) with USD NULL on the positions of a reserve without a (non-zero) price and on the
    wallets using one, and the wallets whose health the pool cannot tell left out of wallet_health."""
    blind_assets = [r.asset for r in reserves if not r.price]
    if not blind_assets:
        return positions, health
    unpriced = unpriced_wallets(accounts, reserves)
    priced_blind = zero_priced_wallets(accounts, reserves)
    positions = positions.with_columns(
        pl.when(pl.col("asset").is_in(blind_assets)).then(None).otherwise(pl.col(c)).alias(c) for c in POSITION_USD
    )
    health = health.filter(~pl.col("wallet").is_in(list(unpriced))).with_columns(
        pl.when(pl.col("wallet").is_in(list(priced_blind))).then(None).otherwise(pl.col(c)).alias(c) for c in HEALTH_USD
    )
    return positions, health
