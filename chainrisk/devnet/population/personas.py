"""What wallets do along the replay, by persona (prudent, active manager, looper, reckless, inattentive) and role:
repay or re-borrow toward a health goal, re-enter after a liquidation, routine withdrawals, transfers and toggles."""

from __future__ import annotations

from chainrisk.devnet.population.base import PopulationBase
from chainrisk.devnet.population.plan import (
    ACTIVE_FLOOR_HF,
    ACTIVE_HIGH,
    ACTIVE_LOW,
    ACTIVE_MIN_TARGET_HF,
    ATTENTIVE_TRIGGER_HF,
    HF_ONE,
    MAX_UINT,
    MIN_RELEVER_SHARE,
    PRUDENT_TRIGGER_HF,
    RECKLESS_PANIC_HF,
    RECKLESS_PANIC_RATE,
    RECKLESS_RELEVER,
    REENTRY_RATE,
    ROUTINE_ACTION_RATE,
    Wallet,
)
from chainrisk.devnet.prices import FEED_DECIMALS
from chainrisk.devnet.wrappers import VAULT
from chainrisk.units import WAD


class Personas(PopulationBase):
    """Each wallet's own moves, after the keeper's, in every replay step."""

    def _behave(self) -> None:
        for w in self.wallets:
            managed = self._manage_morpho(w)
            if w.behaviour == "morpho_borrower" and w.address in self.morpho_closed:
                if self.rng.random() < REENTRY_RATE:
                    self._reenter_morpho(w, self.morpho_closed[w.address])
                continue
            account = self.accounts.get(w.address)
            hf = account[5] if account else None
            if account and self._manage_aave(w, account):
                managed = True
            if managed:
                continue
            if self.rng.random() >= ROUTINE_ACTION_RATE:
                continue
            roll = self.rng.random()
            if w.behaviour == "aave_supplier":
                symbol = next(iter(w.collateral))
                if roll < 0.3:
                    units = self._units(symbol, w.collateral[symbol] * 0.2)
                    self._aave(w.address, "withdraw", self._token(symbol), units, w.address, kind="withdraw")
                elif roll < 0.6:
                    receiver = self.wallets[int(self.rng.integers(0, len(self.wallets)))].address
                    units = self._units(symbol, w.collateral[symbol] * 0.1)
                    a_token = self.aave.reserves[symbol].a_token
                    self._act(w.address, self.erc20, a_token, "transfer", receiver, units, kind="aToken_transfer")
                elif roll < 0.8:
                    enable = w.collateral_off == symbol
                    w.collateral_off = None if enable else symbol
                    self._aave(
                        w.address,
                        "setUserUseReserveAsCollateral",
                        self._token(symbol),
                        enable,
                        kind="collateral_toggle",
                    )
                else:
                    units = self._units(symbol, w.collateral[symbol] * 0.2)
                    self._fund(w.address, symbol, units)
                    self._aave(w.address, "supply", self._token(symbol), units, w.address, 0, kind="supply")
            elif w.behaviour == "vault_depositor":
                units = self._units(VAULT.loan, w.size_usd * 0.2)
                vault = self.vault.token
                if roll < 0.5:
                    self._fund(w.address, VAULT.loan, units)
                    self._act(w.address, self.vault_abi, vault, "deposit", units, w.address, kind="vault_deposit")
                else:
                    args = (units, w.address, w.address)
                    self._act(w.address, self.vault_abi, vault, "withdraw", *args, kind="vault_withdraw")
            elif w.debt_symbol and hf != MAX_UINT:  # MAX_UINT: no debt left (repaid or liquidated)
                # Cross loopers' Aave collateral is what their loop put there: they only repay.
                if roll < 0.5:
                    self._repay_share(w, 0.25, "repay")
                elif roll < 0.75 and w.collateral and hf is not None and hf > 2 * HF_ONE:
                    symbol = next(iter(w.collateral))
                    units = self._units(symbol, w.collateral[symbol] * 0.1)
                    self._aave(w.address, "withdraw", self._token(symbol), units, w.address, kind="withdraw")
                elif account and w.collateral and account[5] > int(w.target_hf * 1.3 * HF_ONE):
                    planned = self._planned_aave_debt(w)
                    # Prudent wallets never borrow beyond their plan.
                    if w.persona != "prudent" or account[1] / 10**FEED_DECIMALS + planned * 0.1 <= planned:
                        units = self._units(w.debt_symbol, planned * 0.1)
                        self._aave(
                            w.address, "borrow", self._token(w.debt_symbol), units, 2, 0, w.address, kind="borrow"
                        )

    def _health_goal(self, w: Wallet, health: float) -> float | None:
        """The health the wallet's persona moves a healthy position to this step (its target, at least
        ACTIVE_MIN_TARGET_HF for active managers), or None to leave it: repaying when `health` fell under the
        persona's low trigger, borrowing when it rose over its high one."""
        target, low, high = w.target_hf, 0.0, float("inf")
        if w.persona == "prudent" and w.attentive:
            low = PRUDENT_TRIGGER_HF
        elif w.persona == "active_manager":
            target = max(target, ACTIVE_MIN_TARGET_HF)
            low, high = max(ACTIVE_FLOOR_HF, ACTIVE_LOW * target), ACTIVE_HIGH * target
        elif w.persona == "reckless":
            high = RECKLESS_RELEVER * target
            if health < RECKLESS_PANIC_HF and self.panic_rng.random() < RECKLESS_PANIC_RATE:
                low = RECKLESS_PANIC_HF
        elif w.persona == "looper" and w.attentive:
            low = min(ATTENTIVE_TRIGGER_HF, target)
        if health < min(low, target) or health > max(high, target):
            return target
        return None

    def _manage_aave(self, w: Wallet, account: tuple[int, ...]) -> bool:
        """Repays or borrows the wallet's Aave debt asset as its persona calls for; True when it acted. Sized from
        getUserAccountData as GenericLogic.calculateHealthFactorFromBalances relates them: health = collateral x
        liquidation threshold / debt, all in the oracle's base currency."""
        collateral, debt, available, threshold, _, hf = account
        if debt == 0 or hf < HF_ONE:  # nothing owed, or the keeper's to liquidate this step
            return False
        assert w.debt_symbol is not None
        health = hf / HF_ONE
        if w.persona == "looper":
            # A loop's collateral is mostly its own debt re-supplied: attentive loopers unwind a share of it.
            if w.attentive and health < ATTENTIVE_TRIGGER_HF:
                self._repay_share(w, 0.3, "deleverage_repay")
                return True
            return False
        goal = self._health_goal(w, health)
        if goal is None:
            return False
        goal_debt = collateral * threshold / 10_000 / goal
        token = self._token(w.debt_symbol)
        if goal > health:
            units = self._units(w.debt_symbol, (debt - goal_debt) / 10**FEED_DECIMALS)
            self._fund(w.address, w.debt_symbol, units)
            self._aave(w.address, "repay", token, units, 2, w.address, kind="deleverage_repay")
        else:
            # Borrowing power (LTV) caps a borrow below the threshold's; a little room for the pool's rounding.
            base = min(goal_debt - debt, available * 0.99)
            if base < debt * MIN_RELEVER_SHARE:
                return False
            units = self._units(w.debt_symbol, base / 10**FEED_DECIMALS)
            self._aave(w.address, "borrow", token, units, 2, 0, w.address, kind="relever_borrow")
        return True

    def _manage_morpho(self, w: Wallet) -> bool:
        """Repays or borrows the wallet's Morpho loan back to its target as its persona calls for; True when it
        acted. Health is max borrow / borrowed, so the debt of health `goal` is debt x health / goal."""
        if w.address not in self.morpho_health:
            return False
        health, debt = self.morpho_health[w.address]
        goal = self._health_goal(w, health)
        if goal is None:
            return False
        assert w.morpho_market is not None
        market = self.morpho.markets[w.morpho_market]
        units = int(debt * abs(1 - health / goal))
        if units == 0:
            return False
        if goal > health:
            self._fund(w.address, market.loan_symbol, units)
            self._morpho(w.address, "repay", market.params, units, 0, w.address, b"", kind="morpho_deleverage_repay")
        else:
            args = (market.params, units, 0, w.address, w.address)
            self._morpho(w.address, "borrow", *args, kind="morpho_relever_borrow")
        return True

    def _reenter_morpho(self, w: Wallet, left: int) -> None:
        """Opens the position again after a liquidation: fresh collateral worth the wallet's size on top of what
        the liquidation `left`, and the debt of its target health at the oracle's price now."""
        assert w.morpho_market is not None
        market = self.morpho.markets[w.morpho_market]
        added = self._units(market.collateral_symbol, self._morpho_collateral_usd(w))
        self._fund(w.address, market.collateral_symbol, added)
        self._morpho(w.address, "supplyCollateral", market.params, added, w.address, b"", kind="morpho_reenter")
        value = (left + added) * self.morpho_prices[w.morpho_market] // 10**36
        units = int(value * market.lltv / WAD / w.target_hf)
        self._morpho(w.address, "borrow", market.params, units, 0, w.address, w.address, kind="morpho_reenter")

    def _repay_share(self, w: Wallet, share: float, kind: str) -> None:
        assert w.debt_symbol is not None
        units = self._units(w.debt_symbol, self._planned_aave_debt(w) * share)
        self._fund(w.address, w.debt_symbol, units)
        self._aave(w.address, "repay", self._token(w.debt_symbol), units, 2, w.address, kind=kind)
