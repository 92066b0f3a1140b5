"""A pool's accounts as columns: what account_table, the contract frames and the raw tables read.

A mainnet pool holds hundreds of thousands of accounts, and a steady snapshot rereads only the few hundred that
events touched: the rest come back from the previous snapshot's raw rows. Building a Python `Account` (and a
`Balances` per reserve) for each of them, then walking each one's configuration bit by bit, took seconds a run at
200,000 accounts. The book keeps them as columns instead: the wallets in order, their configuration bitmaps (as the
raw table stores them, hex) and e-modes, and one entry per (account, reserve) balance, ordered by account then
reserve id. Amounts are Python ints in numpy object columns (a scaled balance is a uint128, beyond Int128).
`Account` records are made only for the few wallets that need one (a liquidation's simulation: `account`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from chainrisk.protocols.aave_v3.account import Balances
from chainrisk.protocols.aave_v3.reserve import Reserve
from chainrisk.protocols.aave_v3.snapshot import Account

#: A column of exact integers (Python ints in a numpy object array).
Ints = npt.NDArray[np.object_]
Indexes = npt.NDArray[np.int64]
#: The balance columns, as the raw table names them.
AMOUNTS = ("scaled_a_token", "scaled_variable_debt", "stable_debt")
#: A configuration bitmap is a uint256: 64 hex digits, read in 32-bit words (each fits Int64 and uint32).
_HEX_DIGITS = 64
_WORD_DIGITS = 8
_WORD_BITS = 32


def ints(values: Sequence[Any]) -> Ints:
    """`values` as a numpy object column (Python ints stay Python ints)."""
    column: Ints = np.empty(len(values), dtype=object)
    column[:] = list(values)
    return column


@dataclass(frozen=True)
class AccountBook:
    """Accounts in wallet order (ascending, as the snapshot reads them) and their balances."""

    wallets: pl.Series  #: Utf8, lowercase hex, ascending
    configurations: pl.Series  #: Utf8, UserConfigurationMap.data as `hex()` writes it
    emodes: Indexes  #: e-mode category id per account, 0 for none
    holder: Indexes  #: per balance: its account's position in `wallets`
    reserve_id: Indexes  #: per balance: the reserve id
    scaled_a_token: Ints  #: per balance: aToken scaledBalanceOf
    scaled_variable_debt: Ints  #: per balance: variable debt token scaledBalanceOf
    stable_debt: Ints  #: per balance: stable debt token balanceOf

    def __len__(self) -> int:
        return self.wallets.len()

    @staticmethod
    def of(accounts: Sequence[Account]) -> AccountBook:
        """The book of `accounts` (any order; each wallet once)."""
        ordered = sorted(accounts, key=lambda a: a.wallet)
        holder: list[int] = []
        reserve_ids: list[int] = []
        amounts: tuple[list[int], list[int], list[int]] = ([], [], [])
        for ix, account in enumerate(ordered):
            for reserve_id in sorted(account.balances):
                held = account.balances[reserve_id]
                holder.append(ix)
                reserve_ids.append(reserve_id)
                amounts[0].append(held.scaled_a_token)
                amounts[1].append(held.scaled_variable_debt)
                amounts[2].append(held.stable_debt)
        return AccountBook(
            wallets=pl.Series("wallet", [a.wallet for a in ordered], dtype=pl.Utf8),
            configurations=pl.Series("user_configuration", [hex(a.configuration) for a in ordered], dtype=pl.Utf8),
            emodes=np.array([a.emode for a in ordered], dtype=np.int64),
            holder=np.array(holder, dtype=np.int64),
            reserve_id=np.array(reserve_ids, dtype=np.int64),
            scaled_a_token=ints(amounts[0]),
            scaled_variable_debt=ints(amounts[1]),
            stable_debt=ints(amounts[2]),
        )

    @staticmethod
    def from_frames(accounts: pl.DataFrame, balances: pl.DataFrame, reserves: Sequence[Reserve]) -> AccountBook:
        """The book of a snapshot's raw rows (`raw_aave_v3_accounts` and `raw_aave_v3_balances` of one source), the
        balances' assets taken to the ids of `reserves` (every asset must be listed; a balance of a wallet the
        accounts do not hold is left out)."""
        ordered = accounts.select("wallet", "user_configuration", "emode_category").sort("wallet")
        ids = {r.asset: r.reserve_id for r in reserves}
        numbered = ordered.select(pl.col("wallet"), pl.int_range(pl.len(), dtype=pl.Int64).alias("_holder"))
        rows = (
            balances.select(
                "wallet", pl.col("asset").replace_strict(ids, return_dtype=pl.Int64).alias("_reserve"), *AMOUNTS
            )
            .join(numbered, on="wallet", how="inner")
            .sort("_holder", "_reserve")
        )
        return AccountBook(
            wallets=ordered.get_column("wallet"),
            configurations=ordered.get_column("user_configuration"),
            emodes=ordered.get_column("emode_category").cast(pl.Int64).to_numpy(),
            holder=rows.get_column("_holder").to_numpy(),
            reserve_id=rows.get_column("_reserve").to_numpy(),
            scaled_a_token=ints(rows.get_column("scaled_a_token").cast(pl.Int128).to_list()),
            scaled_variable_debt=ints(rows.get_column("scaled_variable_debt").cast(pl.Int128).to_list()),
            stable_debt=ints(rows.get_column("stable_debt").cast(pl.Int128).to_list()),
        )

    def where(self, keep: npt.NDArray[np.bool_]) -> AccountBook:
        """The accounts `keep` marks (one flag per account), with their balances."""
        kept = np.flatnonzero(keep)
        number = np.full(len(self), -1, dtype=np.int64)
        number[kept] = np.arange(len(kept), dtype=np.int64)
        rows = np.flatnonzero(keep[self.holder]) if len(self.holder) else np.zeros(0, dtype=np.int64)
        return AccountBook(
            wallets=self.wallets.gather(kept),
            configurations=self.configurations.gather(kept),
            emodes=self.emodes[kept],
            holder=number[self.holder[rows]],
            reserve_id=self.reserve_id[rows],
            scaled_a_token=self.scaled_a_token[rows],
            scaled_variable_debt=self.scaled_variable_debt[rows],
            stable_debt=self.stable_debt[rows],
        )

    def only(self, wallets: pl.Series | Collection[str]) -> AccountBook:
        """The accounts of `wallets` (those the book holds)."""
        column = wallets if isinstance(wallets, pl.Series) else pl.Series(list(wallets), dtype=pl.Utf8)
        return self.where(self.wallets.is_in(column.implode()).to_numpy())

    def with_stable_debt(self) -> npt.NDArray[np.bool_]:
        """Per account: whether any of its balances holds stable debt."""
        flagged = np.zeros(len(self), dtype=bool)
        flagged[self.holder[self.stable_debt != 0]] = True
        return flagged

    @staticmethod
    def joined(first: AccountBook, second: AccountBook) -> AccountBook:
        """The accounts of both books (no wallet in both), in wallet order."""
        wallets = pl.concat([first.wallets, second.wallets])
        order = wallets.arg_sort().to_numpy().astype(np.int64)
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order), dtype=np.int64)
        holder = position[np.concatenate([first.holder, second.holder + len(first)])]
        reserve_id = np.concatenate([first.reserve_id, second.reserve_id])
        rows = np.lexsort((reserve_id, holder))
        return AccountBook(
            wallets=wallets.gather(order),
            configurations=pl.concat([first.configurations, second.configurations]).gather(order),
            emodes=np.concatenate([first.emodes, second.emodes])[order],
            holder=holder[rows],
            reserve_id=reserve_id[rows],
            scaled_a_token=np.concatenate([first.scaled_a_token, second.scaled_a_token])[rows],
            scaled_variable_debt=np.concatenate([first.scaled_variable_debt, second.scaled_variable_debt])[rows],
            stable_debt=np.concatenate([first.stable_debt, second.stable_debt])[rows],
        )

    def configuration_words(self, words: int) -> list[npt.NDArray[np.int64]]:
        """The configuration bitmaps' lowest `words` 32-bit words, each a column over the accounts (word 0 holds
        reserve ids 0-15: bit 2 x id is borrowing, bit 2 x id + 1 collateral)."""
        digits = self.configurations.str.strip_prefix("0x").str.zfill(_HEX_DIGITS)
        frame = pl.DataFrame({"hex": digits}).select(
            digits.str.slice(_HEX_DIGITS - _WORD_DIGITS * (k + 1), _WORD_DIGITS)
            .str.to_integer(base=16)
            .cast(pl.Int64)
            .alias(str(k))
            for k in range(words)
        )
        return [frame.get_column(str(k)).to_numpy() for k in range(words)]

    def configuration(self, account: int) -> int:
        return int(self.configurations[account], 16)

    def account(self, account: int) -> Account:
        """The `Account` record of the book's `account`-th wallet."""
        start, end = np.searchsorted(self.holder, [account, account + 1])
        balances = {
            int(self.reserve_id[i]): Balances(
                int(self.scaled_a_token[i]), int(self.scaled_variable_debt[i]), int(self.stable_debt[i])
            )
            for i in range(int(start), int(end))
        }
        return Account(str(self.wallets[account]), self.configuration(account), int(self.emodes[account]), balances)

    def accounts(self) -> list[Account]:
        """Every account as a record (for tests and small books)."""
        return [self.account(i) for i in range(len(self))]


def word_bits(words: list[npt.NDArray[np.int64]], reserve_id: int) -> npt.NDArray[np.int64]:
    """Per account: the configuration's two bits of `reserve_id` (1 borrowing, 2 collateral), from
    configuration_words."""
    bit = 2 * reserve_id
    column: npt.NDArray[np.int64] = (words[bit // _WORD_BITS] >> (bit % _WORD_BITS)) & 3
    return column


def words_for(reserve_ids: Collection[int]) -> int:
    """How many 32-bit words configuration_words must read for `reserve_ids`' bits."""
    return (2 * max(reserve_ids, default=0) + 1) // _WORD_BITS + 1
