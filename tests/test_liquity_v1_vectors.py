"""chainrisk's Liquity V1 maths against vectors recorded from Liquity's own contracts.

tests/data/liquity_v1_vectors.json (its `source` says how: liquity/dev at the mainnet deployment's version, compiled
and run locally once; the project never needs that copy) holds the inputs as the adapter reads them and the contracts'
outputs: pending rewards as getEntireDebtAndColl gives them, liquidate's verdict in Normal and Recovery Mode, and
keeper batches round after round (who goes, L terms, stakes, Stability Pool, what every remaining trove holds after
redistribution).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chainrisk.protocols.liquity_v1.maths import (
    Trove,
    compute_cr,
    entire_debt_and_coll,
    liquidatable,
    liquidation_rounds,
    recovery_mode,
)
from chainrisk.protocols.liquity_v1.normalise import state_from_tables

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "liquity_v1_vectors.json").read_text())
SYSTEM, TROVES = state_from_tables(VECTORS["system"], VECTORS["troves"])


def test_pending_rewards_equal_get_entire_debt_and_coll() -> None:
    pending = 0
    for wallet, expected in VECTORS["entire_debt_and_coll"].items():
        entire = entire_debt_and_coll(TROVES[wallet], SYSTEM.l_eth, SYSTEM.l_lusd_debt)
        assert [entire.debt, entire.coll, entire.pending_debt, entire.pending_coll] == expected, wallet
        pending += entire.pending_coll > 0
    assert pending >= 5


@pytest.mark.parametrize("crash", VECTORS["crashes"], ids=lambda c: f"TCR {c['tcr_percent']} %")
def test_verdicts_and_rounds_equal_liquitys(crash: dict[str, Any]) -> None:
    price = crash["price"]
    for wallet, accepted in crash["liquidate_accepts"].items():
        entire = entire_debt_and_coll(TROVES[wallet], SYSTEM.l_eth, SYSTEM.l_lusd_debt)
        icr = compute_cr(entire.coll, entire.debt, price)
        assert liquidatable(icr, entire.debt, SYSTEM, price) == accepted, wallet
    rounds = liquidation_rounds(SYSTEM, TROVES, price)
    assert len(rounds) == len(crash["rounds"])
    troves = dict(TROVES)
    for (order, outcome), expected in zip(rounds, crash["rounds"], strict=True):
        after = outcome.system
        assert after is not None
        assert order == expected["order"]
        assert list(outcome.liquidated) == expected["liquidated"]
        assert (after.l_eth, after.l_lusd_debt, after.total_stakes, after.sp_lusd) == (
            expected["l_eth"],
            expected["l_lusd_debt"],
            expected["total_stakes"],
            expected["stability_pool_lusd"],
        )
        for wallet in outcome.liquidated:
            troves[wallet] = Trove(wallet, 0, 0, 0, 3, 0, 0, 0)
        for wallet, held in expected["entire_after"].items():
            entire = entire_debt_and_coll(troves[wallet], after.l_eth, after.l_lusd_debt)
            assert [entire.debt, entire.coll] == held, wallet
    assert recovery_mode(SYSTEM, price) == (crash["tcr_percent"] < 150)
