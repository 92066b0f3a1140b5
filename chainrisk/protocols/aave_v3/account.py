"""Aave V3 account records (a wallet's balances, the amounts the pool values, getUserAccountData's figures) and the
user configuration bitmap; the maths per pool version is in account_versions.py."""

from __future__ import annotations

from dataclasses import dataclass

from chainrisk.protocols.aave_v3.reserve import Reserve


@dataclass(frozen=True)
class Balances:
    """A wallet's raw balances in one reserve at the snapshot block."""

    scaled_a_token: int  #: aToken scaledBalanceOf
    scaled_variable_debt: int  #: variable debt token scaledBalanceOf
    stable_debt: int  #: stable debt token balanceOf (already includes its interest)


@dataclass(frozen=True)
class PositionAmounts:
    """Token amounts as the pool values them (GenericLogic._getUserBalance/DebtInBaseCurrency)."""

    reserve: Reserve  #: the reserve
    supplied: int  #: scaled aToken balance rayMul normalized income, token units
    debt: int  #: variable debt (rayMul normalized debt) plus stable debt, token units
    used_as_collateral: bool  #: collateral bit of the user configuration
    borrowing: bool  #: borrowing bit of the user configuration
    price: int  #: price the pool uses for this asset (e-mode price source when it applies)
    ltv: int  #: effective LTV after e-mode, bps
    liquidation_threshold: int  #: effective threshold after e-mode, bps
    liquidation_bonus: int  #: effective bonus after e-mode, bps incl. principal
    collateral_base: int  #: value counted as collateral, base-currency units (0 when not collateral)
    debt_base: int  #: debt value, base-currency units


@dataclass(frozen=True)
class AccountData:
    """Pool.getUserAccountData, computed."""

    total_collateral_base: int  #: base-currency units
    total_debt_base: int  #: base-currency units
    available_borrows_base: int  #: base-currency units
    current_liquidation_threshold: int  #: bps, collateral-weighted
    ltv: int  #: bps, collateral-weighted
    health_factor: int  #: wad; MAX_UINT256 without debt
    has_zero_ltv_collateral: bool  #: a collateral with LTV 0 is enabled
    positions: list[PositionAmounts]  #: per reserve the wallet touches


def is_collateral(config: int, reserve_id: int) -> bool:
    return (config >> ((reserve_id << 1) + 1)) & 1 == 1


def is_borrowing(config: int, reserve_id: int) -> bool:
    return (config >> (reserve_id << 1)) & 1 == 1
