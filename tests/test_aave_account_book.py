"""The Aave account book (accounts as columns): reserve ids across every word of the 256-bit configuration, the raw
tables' rows back into the same accounts, and books split and joined again."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from chainrisk.protocols.aave_v3 import normalise
from chainrisk.protocols.aave_v3.account import Balances
from chainrisk.protocols.aave_v3.account_book import AccountBook
from chainrisk.protocols.aave_v3.snapshot import Account
from chainrisk.protocols.aave_v3.version import PoolVersion
from tests.test_aave_account_table import _assert_equal_to_the_port, _random_market

#: Reserve ids on both sides of every 32-bit word's edge (bit 2 x id and 2 x id + 1), up to the 128th reserve.
WIDE_IDS = (0, 1, 15, 16, 17, 31, 32, 47, 48, 63, 64, 80, 95, 96, 111, 112, 126, 127)


def _wide_accounts(rng: random.Random, count: int, ids: tuple[int, ...]) -> list[Account]:
    """Accounts whose configurations set bits of `ids` and of reserves not listed, with balances in some of them."""
    accounts = []
    for _ in range(count):
        config = 0
        for reserve_id in rng.sample(range(128), rng.randint(0, 6)):
            config |= rng.randint(1, 3) << (2 * reserve_id)
        balances = {
            reserve_id: Balances(
                rng.randint(0, 10**24), rng.randint(0, 10**22), rng.choice([0, rng.randint(1, 10**20)])
            )
            for reserve_id in rng.sample(ids, rng.randint(0, 4))
        }
        accounts.append(Account(f"0x{rng.getrandbits(160):040x}", config, rng.choice([0, 0, 1, 2]), balances))
    return accounts


@pytest.mark.parametrize("version", [PoolVersion(3, 0), PoolVersion(3, 3), PoolVersion(3, 6)], ids=str)
def test_reserves_in_every_word_of_the_configuration_equal_the_port(version: PoolVersion) -> None:
    rng = random.Random(version.minor + 40)
    listed = (*WIDE_IDS[::2], 127)  # half of them listed: the others' bits and balances are skipped by the pool
    market = _random_market(rng, version, listed)
    accounts = _wide_accounts(rng, 400, WIDE_IDS)
    # An e-mode id beyond a uint8 (a fork's wider field) and one no category lists.
    accounts += [
        replace(accounts[0], wallet="0x" + "e" * 40, emode=300),
        replace(accounts[1], wallet="0x" + "f" * 40, emode=9),
    ]
    table = _assert_equal_to_the_port(market, accounts)
    # The accounts reach reserves in the upper words, and some rows come from a bit alone, some from a balance alone.
    assert int(table.rows.reserve_id.max()) >= 112
    assert (table.rows.used_as_collateral | table.rows.borrowing).any()
    assert (~(table.rows.used_as_collateral | table.rows.borrowing)).any()


def test_the_raw_rows_give_the_same_accounts_back() -> None:
    rng = random.Random(3)
    market = _random_market(rng, PoolVersion(3, 4), WIDE_IDS)
    reserves = list(market.reserves_by_id.values())
    accounts = _wide_accounts(rng, 300, WIDE_IDS)
    book = AccountBook.of(accounts)
    back = AccountBook.from_frames(
        normalise.accounts_frame(book, 1, "0xpool", 10),
        normalise.balances_frame(book, reserves, 1, "0xpool", 10),
        reserves,
    )
    assert back.accounts() == sorted(accounts, key=lambda a: a.wallet)
    assert back.wallets.to_list() == sorted(a.wallet for a in accounts)


def test_a_book_split_and_joined_is_the_book() -> None:
    rng = random.Random(4)
    accounts = _wide_accounts(rng, 250, WIDE_IDS)
    book = AccountBook.of(accounts)
    keep = np.array([rng.random() < 0.3 for _ in range(len(book))])
    kept, rest = book.where(keep), book.where(~keep)
    assert len(kept) + len(rest) == len(book)
    assert kept.accounts() == [a for a, k in zip(book.accounts(), keep, strict=True) if k]
    for first, second in ((kept, rest), (rest, kept)):
        joined = AccountBook.joined(first, second)
        assert joined.accounts() == book.accounts()
        assert joined.holder.tolist() == book.holder.tolist() and joined.reserve_id.tolist() == book.reserve_id.tolist()
    some = [a.wallet for a in accounts[:40]] + ["0x" + "f" * 40]
    assert [a.wallet for a in book.only(some).accounts()] == sorted(some[:40])
    assert len(AccountBook.joined(AccountBook.of([]), book)) == len(book)
    assert AccountBook.of([]).where(np.zeros(0, dtype=bool)).accounts() == []
