"""Pool.getUserAccountData of every account of a pool at once, column by column, exact (account_versions' rules).

account_versions.user_account_data walks one account's reserves in Python; at mainnet size (hundreds of thousands of
accounts every run) that per-account walk was most of the index's own arithmetic. Here the rows the pool visits
(wallet x reserve the configuration or a balance names) are laid out once, each row takes its reserve's
user-independent terms (reserve_rules, computed once per reserve and e-mode category instead of once per row), and
every step of GenericLogic.calculateUserAccountData runs over a whole column.

The columns are numpy arrays of Python ints (dtype object), not fixed-width integers: a scaled balance (uint128)
times an index (ray, ~2^90) needs up to ~218 bits, beyond any machine integer and beyond Int128. Each operation is one
numpy loop over the column calling Python's own int arithmetic, so every figure is the exact one (the same floor,
half-up and ceiling divisions as the contracts) with no interpreter step per account; tests/test_aave_versions.py
checks it against the real pools' recorded outputs and against user_account_data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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
from chainrisk.protocols.aave_v3.snapshot import Account
from chainrisk.protocols.aave_v3.version import PoolVersion

#: A column of exact integers (Python ints in a numpy object array).
Ints = npt.NDArray[np.object_]
Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ReserveRows:
    """Per (wallet, reserve) row the pool visits, in wallet order then reserve id order (GenericLogic's loop)."""

    account: npt.NDArray[np.int64]  #: index of the row's account in the accounts given
    reserves: list[Reserve]  #: the row's reserve
    rules: list[ReserveRules]  #: the row's reserve as the account's e-mode sees it
    supplied: Ints  #: aToken balanceOf, token units
    debt: Ints  #: variable (plus stable before 3.2) debt, token units
    price: Ints  #: price the pool uses
    unit: Ints  #: 10 ** decimals
    used_as_collateral: Flags  #: collateral bit of the configuration
    borrowing: Flags  #: borrowing bit of the configuration
    counts_as_collateral: Flags  #: flagged and the reserve may be collateral (GenericLogic adds it)
    collateral_base: Ints  #: supplied x price / unit, floored, when it counts; else 0
    debt_base: Ints  #: _getUserDebtInBaseCurrency when borrowing with debt; else 0


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


def _ints(values: list[int]) -> Ints:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _ceil_div(numerator: Ints, denominator: Ints | int) -> Ints:
    result: Ints = -(-numerator // denominator)
    return result


def reserve_rows(accounts: list[Account], market: MarketState) -> ReserveRows:
    """The rows user_account_data's loop visits (user_reserve_ids: a configuration bit or a balance, reserves the pool
    lists), with the balances accrued and valued as GenericLogic values them."""
    version, reserves_by_id = market.version, market.reserves_by_id
    rules_of: dict[tuple[int, int], ReserveRules] = {}
    account_ix: list[int] = []
    row_reserves: list[Reserve] = []
    row_rules: list[ReserveRules] = []
    scaled_a: list[int] = []
    scaled_v: list[int] = []
    stable: list[int] = []
    collateral_bit: list[bool] = []
    borrowing_bit: list[bool] = []
    for ix, account in enumerate(accounts):
        config, balances, emode = account.configuration, account.balances, account.emode
        ids = set(balances)
        word, reserve_id = config, 0
        while word:
            if word & 3:
                ids.add(reserve_id)
            word >>= 2
            reserve_id += 1
        for reserve_id in sorted(ids):
            reserve = reserves_by_id.get(reserve_id)
            if reserve is None:
                continue
            rules = rules_of.get((reserve_id, emode))
            if rules is None:
                rules = rules_of[reserve_id, emode] = reserve_rules(market, emode, reserve)
            held = balances.get(reserve_id)
            account_ix.append(ix)
            row_reserves.append(reserve)
            row_rules.append(rules)
            if held is None:
                scaled_a.append(0)
                scaled_v.append(0)
                stable.append(0)
            else:
                scaled_a.append(held.scaled_a_token)
                scaled_v.append(held.scaled_variable_debt)
                stable.append(held.stable_debt)
            bits = config >> (reserve_id << 1)
            borrowing_bit.append(bits & 1 == 1)
            collateral_bit.append(bits & 2 == 2)
    income = _ints([r.income for r in row_rules])
    debt_index = _ints([r.debt_index for r in row_rules])
    price = _ints([r.price for r in row_rules])
    unit = _ints([10**r.config.decimals for r in row_reserves])
    a_scaled, v_scaled = _ints(scaled_a), _ints(scaled_v)
    if version.directional_rounding:
        # TokenMath.getATokenBalance (rayMulFloor) and getVTokenBalance (rayMulCeil), 3.5+.
        supplied: Ints = a_scaled * income // RAY
        debt = _ceil_div(v_scaled * debt_index, RAY)
    else:
        # AToken/VariableDebtToken.balanceOf: rayMul, half up.
        supplied = (a_scaled * income + HALF_RAY) // RAY
        debt = (v_scaled * debt_index + HALF_RAY) // RAY
    if version.has_stable_debt:
        debt = debt + _ints(stable)
    used = np.array(collateral_bit, dtype=bool)
    borrowing = np.array(borrowing_bit, dtype=bool)
    counts = used & np.array([r.collateral_enabled for r in row_rules], dtype=bool)
    zero: Ints = np.zeros(len(row_rules), dtype=object)
    collateral_base = np.where(counts, supplied * price // unit, zero)
    # GenericLogic._getUserDebtInBaseCurrency: floored before 3.5, MathUtils.mulDivCeil from 3.5.
    in_base = _ceil_div(debt * price, unit) if version.directional_rounding else debt * price // unit
    debt_base = np.where(borrowing & (debt != 0), in_base, zero)
    return ReserveRows(
        account=np.array(account_ix, dtype=np.int64),
        reserves=row_reserves,
        rules=row_rules,
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


def account_table(accounts: list[Account], market: MarketState) -> AccountTable:
    """user_account_data of every account, as columns (see the module docstring): the same sums, floored averages,
    health factor and available borrows, by the rules of `market.version`."""
    version, count = market.version, len(accounts)
    rows = reserve_rows(accounts, market)
    ltv = np.array([r.ltv for r in rows.rules], dtype=object)
    threshold = np.array([r.liquidation_threshold for r in rows.rules], dtype=object)
    ltv_zero = np.array([r.ltv_zero for r in rows.rules], dtype=bool)
    zero: Ints = np.zeros(len(rows.rules), dtype=object)
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
