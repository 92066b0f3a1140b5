"""Pool.getUserAccountData of every account of a pool at once, column by column, exact (account_versions' rules).

account_versions.user_account_data walks one account's reserves in Python; at mainnet size (hundreds of thousands of
accounts every run) that per-account walk was most of the index's own arithmetic. Here the rows the pool visits
(wallet x reserve the configuration or a balance names) are laid out once from the account book's columns (the
configurations' bits tested a reserve at a time over every account, not an account at a time), each row takes its
reserve's user-independent terms (reserve_rules, computed once per reserve and e-mode category instead of once per
row), and every step of GenericLogic.calculateUserAccountData runs over a whole column.

The columns are numpy arrays of Python ints (dtype object), not fixed-width integers: a scaled balance (uint128)
times an index (ray, ~2^90) needs up to ~218 bits, beyond any machine integer and beyond Int128. Each operation is one
numpy loop over the column calling Python's own int arithmetic, so every figure is the exact one (the same floor,
half-up and ceiling divisions as the contracts) with no interpreter step per account; tests/test_aave_versions.py
checks it against the real pools' recorded outputs and against user_account_data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from chainrisk.protocols.aave_v3.account_book import AccountBook, Ints, ints, word_bits, words_for
from chainrisk.protocols.aave_v3.account_versions import MarketState, ReserveRules, reserve_rules
from chainrisk.protocols.aave_v3.constants import (
    HALF_PERCENTAGE_FACTOR,
    HALF_RAY,
    MAX_UINT256,
    PERCENTAGE_FACTOR,
    RAY,
    WAD,
)
from chainrisk.protocols.aave_v3.reserve import Reserve
from chainrisk.protocols.aave_v3.version import PoolVersion
from chainrisk.units import HUGEINT_LIMIT

Flags = npt.NDArray[np.bool_]
#: E-mode category ids are uint8s (DataTypes.EModeCategory, `uint8 categoryId`).
_EMODES = 256


@dataclass(frozen=True)
class ReserveRows:
    """Per (wallet, reserve) row the pool visits, in wallet order then reserve id order (GenericLogic's loop).

    The reserve-level terms are held once per (reserve, e-mode) pair (`reserves` and `rules`, with `term` each row's
    index in them), not once per row."""

    account: npt.NDArray[np.int64]  #: index of the row's account in the book
    reserve_id: npt.NDArray[np.int64]  #: the row's reserve id
    term: npt.NDArray[np.int64]  #: index of the row's (reserve, e-mode) pair in `reserves` and `rules`
    reserves: list[Reserve]  #: per pair: the reserve
    rules: list[ReserveRules]  #: per pair: the reserve as the e-mode sees it
    supplied: Ints  #: aToken balanceOf, token units
    debt: Ints  #: variable (plus stable before 3.2) debt, token units
    price: Ints  #: price the pool uses
    unit: Ints  #: 10 ** decimals
    used_as_collateral: Flags  #: collateral bit of the configuration
    borrowing: Flags  #: borrowing bit of the configuration
    counts_as_collateral: Flags  #: flagged and the reserve may be collateral (GenericLogic adds it)
    collateral_base: Ints  #: supplied x price / unit, floored, when it counts; else 0
    debt_base: Ints  #: _getUserDebtInBaseCurrency when borrowing with debt; else 0

    def spread(self, values: list[Any]) -> Ints:
        """A figure of the pairs (one value per pair) over the rows."""
        spread: Ints = ints(values)[self.term]
        return spread


@dataclass(frozen=True)
class AccountTable:
    """getUserAccountData of each account (one entry per account, in the order given) and the rows behind it."""

    version: PoolVersion  #: the rules applied
    rows: ReserveRows
    total_collateral_base: Ints
    total_debt_base: Ints
    available_borrows_base: Ints
    current_liquidation_threshold: Ints  #: bps
    ltv: Ints  #: bps
    health_factor: Ints  #: wad; MAX_UINT256 without debt
    has_zero_ltv_collateral: Flags

    @cached_property
    def oversized_rows(self) -> Flags:
        """Per row: whether the pool cannot value it or no HUGEINT holds it. The pool's own product
        (GenericLogic._getUserBalanceInBaseCurrency's balance x price, _getUserDebtInBaseCurrency's debt x price)
        passes 2^256 on a row it counts, so its checked maths reverts; or a balance, or its value in base currency,
        has 38 digits or more. Only a price past sense does either (a price column already stops at 38 digits:
        snapshot's `_reserve_prices`), so the book's largest figures are compared first and every row only when they
        could. Worked out once per table (the frames, the liquidation list and the issues all ask)."""
        rows = self.rows
        flags = np.zeros(len(rows.account), dtype=bool)
        if not len(rows.account):
            return flags
        largest = max(rows.supplied.max(), rows.debt.max())
        if largest < HUGEINT_LIMIT and largest * rows.price.max() < HUGEINT_LIMIT:
            return flags  # every value is at most amount x price: none can pass
        products = np.maximum(
            np.where(rows.counts_as_collateral, rows.supplied * rows.price, 0),
            np.where(rows.borrowing, rows.debt * rows.price, 0),
        )
        for figures, limit in (
            (products, MAX_UINT256 + 1),
            (rows.supplied, HUGEINT_LIMIT),
            (rows.debt, HUGEINT_LIMIT),
            (rows.collateral_base, HUGEINT_LIMIT),
            (rows.debt_base, HUGEINT_LIMIT),
        ):
            flags |= (figures >= limit).astype(bool)
        return flags

    @cached_property
    def oversized_accounts(self) -> Flags:
        """Per account: whether any of its rows is oversized or its totals have 38 digits or more (a sum of values
        that each fit may not): its health is left unknown, as for a reserve without a price."""
        flags = np.zeros(len(self.total_collateral_base), dtype=bool)
        flags[self.rows.account[self.oversized_rows]] = True
        if len(flags) and max(self.total_collateral_base.max(), self.total_debt_base.max()) >= HUGEINT_LIMIT:
            flags |= (self.total_collateral_base >= HUGEINT_LIMIT).astype(bool)
            flags |= (self.total_debt_base >= HUGEINT_LIMIT).astype(bool)
        return flags


def _ceil_div(numerator: Ints, denominator: Ints | int) -> Ints:
    result: Ints = -(-numerator // denominator)
    return result


def _row_keys(
    book: AccountBook, listed: list[int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The rows user_reserve_ids gives each account (a configuration bit or a balance, in a reserve the pool lists)
    as keys account x len(listed) + the reserve's place in `listed` (ascending: wallet order, then reserve id); each
    row's two configuration bits (1 borrowing, 2 collateral); and each balance's row (-1: a reserve not listed)."""
    width = max(len(listed), 1)
    words = book.configuration_words(words_for(listed))
    flagged_keys, flagged_bits = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for place, reserve_id in enumerate(listed):
        bits = word_bits(words, reserve_id)
        accounts = np.flatnonzero(bits)
        flagged_keys.append(accounts * width + place)
        flagged_bits.append(bits[accounts])
    place_of = np.full(max([*listed, int(book.reserve_id.max(initial=0))]) + 1, -1, dtype=np.int64)
    place_of[listed] = np.arange(len(listed), dtype=np.int64)
    places = place_of[book.reserve_id]
    held = places >= 0
    held_keys = book.holder * width + places
    flag_keys = np.concatenate(flagged_keys)
    keys = np.sort(np.concatenate([flag_keys, held_keys[held]]))
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    bits = np.zeros(len(keys), dtype=np.int64)
    bits[np.searchsorted(keys, flag_keys)] = np.concatenate(flagged_bits)
    balance_rows = np.where(held, np.searchsorted(keys, held_keys), -1).astype(np.int64)
    return keys, bits, balance_rows


def reserve_rows(book: AccountBook, market: MarketState) -> ReserveRows:
    """The rows user_account_data's loop visits (user_reserve_ids: a configuration bit or a balance, reserves the pool
    lists), with the balances accrued and valued as GenericLogic values them."""
    version, reserves_by_id = market.version, market.reserves_by_id
    listed = sorted(reserves_by_id)
    width = max(len(listed), 1)
    keys, bits, balance_rows = _row_keys(book, listed)
    account = keys // width
    places = keys % width
    reserve_ids = np.array([*listed, 0], dtype=np.int64)[places]
    # Each row's (reserve, e-mode) pair: its terms are computed once per pair, not once per row. An e-mode category
    # id is a uint8 (EModeLogic), so place x 256 + e-mode numbers the pairs.
    span = max(_EMODES, int(book.emodes.max(initial=0)) + 1)  # wider only for a fork with wider ids
    codes = places * span + book.emodes[account]
    present = np.zeros(width * span, dtype=bool)
    present[codes] = True
    pairs = np.flatnonzero(present)
    number = np.zeros(len(present), dtype=np.int64)
    number[pairs] = np.arange(len(pairs), dtype=np.int64)
    term = number[codes]
    found = [divmod(int(code), span) for code in pairs]
    reserves = [reserves_by_id[listed[place]] for place, _ in found]
    rules = [reserve_rules(market, emode, reserve) for (_, emode), reserve in zip(found, reserves, strict=True)]
    zero: Ints = np.zeros(len(keys), dtype=object)
    a_scaled, v_scaled, stable = zero.copy(), zero.copy(), zero.copy()
    listed_balances = balance_rows >= 0
    rows = balance_rows[listed_balances]
    a_scaled[rows] = book.scaled_a_token[listed_balances]
    v_scaled[rows] = book.scaled_variable_debt[listed_balances]
    stable[rows] = book.stable_debt[listed_balances]
    income: Ints = ints([r.income for r in rules])[term]
    debt_index: Ints = ints([r.debt_index for r in rules])[term]
    price: Ints = ints([r.price for r in rules])[term]
    unit: Ints = ints([10**reserve.config.decimals for reserve in reserves])[term]
    if version.directional_rounding:
        # TokenMath.getATokenBalance (rayMulFloor) and getVTokenBalance (rayMulCeil), 3.5+.
        supplied: Ints = a_scaled * income // RAY
        debt = _ceil_div(v_scaled * debt_index, RAY)
    else:
        # AToken/VariableDebtToken.balanceOf: rayMul, half up.
        supplied = (a_scaled * income + HALF_RAY) // RAY
        debt = (v_scaled * debt_index + HALF_RAY) // RAY
    if version.has_stable_debt:
        debt = debt + stable
    used = (bits & 2) == 2
    borrowing = (bits & 1) == 1
    counts = used & np.array([r.collateral_enabled for r in rules], dtype=bool)[term]
    collateral_base = np.where(counts, supplied * price // unit, zero)
    # GenericLogic._getUserDebtInBaseCurrency: floored before 3.5, MathUtils.mulDivCeil from 3.5.
    in_base = _ceil_div(debt * price, unit) if version.directional_rounding else debt * price // unit
    debt_base = np.where(borrowing & (debt != 0), in_base, zero)
    return ReserveRows(
        account=account,
        reserve_id=reserve_ids,
        term=term,
        reserves=reserves,
        rules=rules,
        supplied=supplied,
        debt=debt,
        price=price,
        unit=unit,
        used_as_collateral=used,
        borrowing=borrowing,
        counts_as_collateral=counts,
        collateral_base=collateral_base,
        debt_base=debt_base,
    )


def _per_account(values: Ints, rows: ReserveRows, accounts: int) -> Ints:
    """Each account's sum of `values` over its rows (exact), 0 for an account without rows."""
    totals: Ints = np.zeros(accounts, dtype=object)
    if len(values):
        starts = np.flatnonzero(np.r_[True, rows.account[1:] != rows.account[:-1]])
        totals[rows.account[starts]] = np.add.reduceat(values, starts)
    return totals


def account_table(book: AccountBook, market: MarketState) -> AccountTable:
    """user_account_data of every account of `book`, as columns (see the module docstring): the same sums, floored
    averages, health factor and available borrows, by the rules of `market.version`."""
    version, count = market.version, len(book)
    rows = reserve_rows(book, market)
    ltv = rows.spread([r.ltv for r in rows.rules])
    threshold = rows.spread([r.liquidation_threshold for r in rows.rules])
    ltv_zero = np.array([r.ltv_zero for r in rows.rules], dtype=bool)[rows.term]
    zero: Ints = np.zeros(len(rows.term), dtype=object)
    collateral = _per_account(rows.collateral_base, rows, count)
    debt = _per_account(rows.debt_base, rows, count)
    weighted_ltv = _per_account(
        np.where(rows.counts_as_collateral & ~ltv_zero, rows.collateral_base * ltv, zero), rows, count
    )
    weighted_threshold = _per_account(rows.collateral_base * threshold, rows, count)
    zero_ltv_rows = rows.counts_as_collateral & ltv_zero
    has_zero_ltv = np.zeros(count, dtype=bool)
    has_zero_ltv[rows.account[zero_ltv_rows]] = True
    # Divisions by a zero total are masked out afterwards: divide by 1 there instead.
    has_collateral, has_debt = collateral != 0, debt != 0
    ones: Ints = np.ones(count, dtype=object)
    nothing: Ints = np.zeros(count, dtype=object)
    collateral_or_one = np.where(has_collateral, collateral, ones)
    debt_or_one = np.where(has_debt, debt, ones)
    average_ltv = np.where(has_collateral, weighted_ltv // collateral_or_one, nothing)
    average_threshold = np.where(has_collateral, weighted_threshold // collateral_or_one, nothing)
    # health_factor and available_borrows of account_versions, column-wise (wadDiv and percentMul half up).
    if version.directional_rounding:
        health = (weighted_threshold * WAD + debt_or_one // 2) // debt_or_one // PERCENTAGE_FACTOR
        capacity = collateral * average_ltv // PERCENTAGE_FACTOR
    else:
        weighted = (collateral * average_threshold + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR
        health = (weighted * WAD + debt_or_one // 2) // debt_or_one
        capacity = (collateral * average_ltv + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR
    unbounded: Ints = np.full(count, MAX_UINT256, dtype=object)
    return AccountTable(
        version=version,
        rows=rows,
        total_collateral_base=collateral,
        total_debt_base=debt,
        available_borrows_base=np.where(capacity > debt, capacity - debt, nothing),
        current_liquidation_threshold=average_threshold,
        ltv=average_ltv,
        health_factor=np.where(has_debt, health, unbounded),
        has_zero_ltv_collateral=has_zero_ltv,
    )
