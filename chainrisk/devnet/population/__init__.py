"""Devnet wallet population: heavy-tailed positions and collateral chains, a real price replay, a liquidation keeper.

Rooms: `plan` (who the wallets are), `base` (state and plumbing), `opening`, `keeper` (liquidations) and `personas`
(how each kind of wallet manages its health); `Population` composes them and runs the replay.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from chainrisk.devnet.population.keeper import Keeper
from chainrisk.devnet.population.opening import Opening
from chainrisk.devnet.population.personas import Personas
from chainrisk.devnet.population.plan import (
    ACTION_DELAY_S,
    ACTIVE_FLOOR_HF,
    ACTIVE_LOW,
    ACTIVE_MIN_TARGET_HF,
    BEHAVIOURS,
    HF_ONE,
    KEEPER,
    LOOP_ROLES,
    PERSONAS,
    PRUDENT_TRIGGER_HF,
    RECKLESS_RELEVER,
    Wallet,
    persona_of,
    plan_wallets,
)

__all__ = [
    "ACTION_DELAY_S",
    "ACTIVE_FLOOR_HF",
    "ACTIVE_LOW",
    "ACTIVE_MIN_TARGET_HF",
    "BEHAVIOURS",
    "HF_ONE",
    "KEEPER",
    "LOOP_ROLES",
    "PERSONAS",
    "PRUDENT_TRIGGER_HF",
    "RECKLESS_RELEVER",
    "Population",
    "Wallet",
    "persona_of",
    "plan_wallets",
]


class Population(Opening, Keeper, Personas):
    """Drives the wallets and the keeper against the deployed contracts."""

    def step(self, row: dict[str, int], advance_s: int) -> None:
        self.set_prices(row, advance_s - ACTION_DELAY_S)
        self.accounts = self.aave_accounts()
        self._liquidate_aave()
        self._liquidate_morpho()
        self._behave()
        self._mine_actions()

    def replay(self, path: pl.DataFrame, step_seconds: int) -> None:
        """Every step of `path` after the first; the LST rate is reported in the first step of each new day."""
        start: datetime = path["time"][0]
        for row in path.iter_rows(named=True):
            if row["step"] == 0:
                continue
            day = int((row["time"] - start).total_seconds() // 86_400)
            if day > self.reported_days:
                self.report_lst(day - self.reported_days)
                self.reported_days = day
            self.step(row, step_seconds)
