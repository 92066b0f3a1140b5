"""What an Aave pool's odd reserves leave unknown: a reserve whose price the AaveOracle cannot give (the pool itself
then cannot value the wallets that use it), one priced at zero (no USD figure), one whose token has no string symbol
or no code; as `data_quality` issues and as NULLs in the snapshot's frames."""

from __future__ import annotations

import numpy as np
import polars as pl

from chainrisk.protocols.aave_v3.account_table import AccountTable
from chainrisk.protocols.aave_v3.reserve import Reserve
from chainrisk.protocols.quality import Issue
from chainrisk.units import HUGEINT_LIMIT

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


def oversized_issues(table: AccountTable, market: str) -> list[Issue]:
    """Per reserve some oversized row holds: `amount_overflow` where a balance itself has 38 digits or more (that
    position has no row), else `oracle_overflow` (the balance at the reserve's price passes what the pool or a
    HUGEINT holds)."""
    rows = table.rows
    bad = table.oversized_rows
    if not bad.any():
        return []
    found = []
    for term in sorted(set(rows.term[bad].tolist())):
        reserve = rows.reserves[term]
        these = np.flatnonzero(bad & (rows.term == term))
        count, price = len(these), rows.price[these[0]]
        amounts = np.maximum(rows.supplied[these], rows.debt[these])
        if (amounts >= HUGEINT_LIMIT).any():
            kind = "amount_overflow"
            detail = f"{count} balance(s) of 38 digits or more (largest {max(amounts):.4e}): those positions unstored"
        else:
            kind = "oracle_overflow"
            detail = f"{count} balance(s) at price {price} pass 2^256 in the pool's own balance x price, or 38 digits"
        found.append(
            Issue(
                market,
                reserve.asset,
                kind,
                f"reserve {reserve.symbol} ({reserve.asset}): {detail}",
                "those wallets' values (base currency and USD) and health",
            )
        )
    return found


def _using(table: AccountTable, wallets: pl.Series, reserve_ids: set[int]) -> set[str]:
    """Wallets that use any of `reserve_ids` as collateral or debt: those whose account data the pool computes from
    those reserves' prices (GenericLogic.calculateUserAccountData skips the reserves a wallet does neither with).
    account_table's rows hold every (account, listed reserve) a configuration bit names."""
    rows = table.rows
    if not reserve_ids or not len(rows.account):
        return set()
    flagged = (rows.used_as_collateral | rows.borrowing) & np.isin(rows.reserve_id, list(reserve_ids))
    return set(wallets.gather(np.unique(rows.account[flagged])).to_list())


def unpriced_wallets(table: AccountTable, wallets: pl.Series, reserves: list[Reserve]) -> set[str]:
    """Wallets whose health the pool itself cannot tell: getUserAccountData reverts with the asset's price."""
    return _using(table, wallets, {r.reserve_id for r in reserves if not r.price_known})


def zero_priced_wallets(table: AccountTable, wallets: pl.Series, reserves: list[Reserve]) -> set[str]:
    """Wallets using a reserve the oracle prices at zero: the pool rates them, but has no USD figure for them."""
    return _using(table, wallets, {r.reserve_id for r in reserves if r.price_known and not r.price})


def without_unknowns(
    positions: pl.DataFrame, health: pl.DataFrame, table: AccountTable, wallets: pl.Series, reserves: list[Reserve]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(positions, wallet_health) with USD NULL on the positions of a reserve without a (non-zero) price and on the
    wallets using one, and the wallets whose health the pool cannot tell left out of wallet_health."""
    blind_assets = [r.asset for r in reserves if not r.price]
    if not blind_assets:
        return positions, health
    unpriced = unpriced_wallets(table, wallets, reserves)
    priced_blind = zero_priced_wallets(table, wallets, reserves)
    positions = positions.with_columns(
        pl.when(pl.col("asset").is_in(blind_assets)).then(None).otherwise(pl.col(c)).alias(c) for c in POSITION_USD
    )
    health = health.filter(~pl.col("wallet").is_in(list(unpriced))).with_columns(
        pl.when(pl.col("wallet").is_in(list(priced_blind))).then(None).otherwise(pl.col(c)).alias(c) for c in HEALTH_USD
    )
    return positions, health
