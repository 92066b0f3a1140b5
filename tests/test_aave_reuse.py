"""Which accounts a later Aave snapshot takes from the previous one's raw rows (_unchanged_accounts): the untouched
ones, none when the reserve list or version changed or a deficit shrank, never one with stable debt before 3.2."""

from __future__ import annotations

import random
from dataclasses import replace

import polars as pl

from chainrisk.protocols.aave_v3 import normalise
from chainrisk.protocols.aave_v3.account_book import AccountBook
from chainrisk.protocols.aave_v3.adapter import _unchanged_accounts
from chainrisk.protocols.aave_v3.reserve import Reserve
from chainrisk.protocols.aave_v3.snapshot import Account
from chainrisk.protocols.aave_v3.version import PoolVersion
from chainrisk.protocols.adapter import Previous
from tests.test_aave_account_table import _random_accounts, _random_market

V3_0, V3_3 = PoolVersion(3, 0), PoolVersion(3, 3)


def _previous(
    version: PoolVersion, accounts: list[Account], touched: list[str], seed: int = 1
) -> tuple[Previous, list[Reserve]]:
    market = _random_market(random.Random(seed), version)
    reserves = list(market.reserves_by_id.values())
    raw = {
        "raw_aave_v3_reserves": normalise.reserves_frame(reserves, 1, "0xpool", 10, 10**8, version),
        "raw_aave_v3_accounts": normalise.accounts_frame(AccountBook.of(accounts), 1, "0xpool", 10),
        "raw_aave_v3_balances": normalise.balances_frame(AccountBook.of(accounts), reserves, 1, "0xpool", 10),
    }
    events = pl.DataFrame(
        {
            "event": ["Borrow"] * len(touched),
            "reserve": [None] * len(touched),
            "wallet": touched,
            "counterparty": [None] * len(touched),
        },
        schema={"event": pl.Utf8, "reserve": pl.Utf8, "wallet": pl.Utf8, "counterparty": pl.Utf8},
    )
    return Previous(10, raw, events), reserves


def _kept(previous: Previous, version: PoolVersion, reserves: list[Reserve]) -> dict[str, Account]:
    """_unchanged_accounts' book as records by wallet."""
    book = _unchanged_accounts(previous, version, reserves)
    assert book is not None
    return {a.wallet: a for a in book.accounts()}


def _accounts(count: int) -> list[Account]:
    """Random accounts with balances only in listed reserves (a dropped reserve's rows are not stored)."""
    return [
        replace(a, balances={i: b for i, b in a.balances.items() if i != 3})
        for a in _random_accounts(random.Random(2), count, 10**28)
    ]


def test_untouched_accounts_come_back_as_they_were_read() -> None:
    accounts = _accounts(60)
    touched = [accounts[1].wallet, accounts[7].wallet]
    previous, reserves = _previous(V3_3, accounts, touched)
    kept = _kept(previous, V3_3, reserves)
    assert sorted(kept) == sorted(a.wallet for a in accounts if a.wallet not in touched)
    for account in accounts:
        if account.wallet in kept:
            assert kept[account.wallet] == account


def test_a_changed_pool_or_a_shrunk_deficit_reuses_nothing() -> None:
    accounts = _accounts(20)
    previous, reserves = _previous(V3_3, accounts, [])
    assert len(_kept(previous, V3_3, reserves)) == 20
    assert _unchanged_accounts(previous, PoolVersion(3, 4), reserves) is None
    assert _unchanged_accounts(previous, V3_3, reserves[:-1]) is None
    moved = [replace(reserves[0], a_token="0x" + "9" * 40), *reserves[1:]]
    assert _unchanged_accounts(previous, V3_3, moved) is None
    with_deficit = [replace(reserves[0], deficit=5), *reserves[1:]]
    grown, _ = _previous(V3_3, accounts, [])
    grown.raw["raw_aave_v3_reserves"] = normalise.reserves_frame(with_deficit, 1, "0xpool", 10, 10**8, V3_3)
    assert len(_kept(grown, V3_3, [replace(reserves[0], deficit=6), *reserves[1:]])) == 20
    assert _unchanged_accounts(grown, V3_3, [replace(reserves[0], deficit=4), *reserves[1:]]) is None


def test_stable_debt_is_read_again_before_3_2() -> None:
    accounts = _accounts(60)
    previous, reserves = _previous(V3_0, accounts, [])
    kept = _kept(previous, V3_0, reserves)
    stable = {a.wallet for a in accounts if any(b.stable_debt for b in a.balances.values())}
    assert stable and sorted(kept) == sorted(a.wallet for a in accounts if a.wallet not in stable)
