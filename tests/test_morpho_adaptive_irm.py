"""chainrisk's port of Morpho's AdaptiveCurveIrm (chainrisk.protocols.morpho_blue.irm) against the contract's own
answers: vectors recorded from morpho-org/morpho-blue-irm's AdaptiveCurveIrm.sol compiled and run on anvil
(tests/data/record_adaptive_curve_irm.py; provenance inside the file). The cases cover every branch: first
interaction (rate at target 0), no adaptation (on target, or no time elapsed), utilization under and over target
(signed divisions truncated toward zero), empty and fully borrowed markets, both bounds of the rate at target, and
elapsed times up to ten years."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_abi.abi import encode

from chainrisk.devnet.toolchain import run_node_json
from chainrisk.protocols.morpho_blue.irm import INITIAL_RATE_AT_TARGET, adaptive_curve_rate, rate_at
from chainrisk.protocols.morpho_blue.maths import MarketState, w_div_down
from chainrisk.protocols.morpho_blue.snapshot import _adaptive_rate_at_target

VECTORS = Path(__file__).resolve().parent / "data" / "adaptive_curve_irm_vectors.json"
SDK_SCRIPT = Path(__file__).resolve().parent / "morpho_adaptive_irm_sdk.mjs"


def _state(v: dict[str, str | int]) -> MarketState:
    supply, borrow = int(v["total_supply_assets"]), int(v["total_borrow_assets"])
    return MarketState(supply, supply, borrow, borrow, int(v["last_update"]), 0)


def test_port_equals_the_contract_on_every_vector() -> None:
    vectors = json.loads(VECTORS.read_text())["vectors"]
    assert len(vectors) >= 400
    wrong = [
        v
        for v in vectors
        if adaptive_curve_rate(int(v["start_rate_at_target"]), _state(v), int(v["timestamp"]))
        != (int(v["avg_rate"]), int(v["end_rate_at_target"]))
    ]
    assert not wrong, f"{len(wrong)} of {len(vectors)} differ, first: {wrong[0]}"
    # The vectors exercise what they claim: rates moved (adaptation) both ways, and first interactions.
    moved = [int(v["end_rate_at_target"]) - int(v["start_rate_at_target"]) for v in vectors]
    assert any(m > 0 for m in moved) and any(m < 0 for m in moved)
    assert any(
        int(v["start_rate_at_target"]) == 0 and int(v["end_rate_at_target"]) == INITIAL_RATE_AT_TARGET for v in vectors
    )


def test_rate_projected_to_a_time_equals_the_contracts_rate_from_then_on() -> None:
    """rate_at (the Markets page's projected rates): the rate the IRM charges from `timestamp` on, utilization held,
    equals the contract's borrowRateView in the block of an accrual at that time, of the same totals updated then
    (`rate_view_after`), on every vector: first interactions, both bounds, up to ten years ahead."""
    vectors = json.loads(VECTORS.read_text())["vectors"]
    wrong = [
        v
        for v in vectors
        if rate_at(int(v["start_rate_at_target"]), _state(v), int(v["timestamp"])) != int(v["rate_view_after"])
    ]
    assert not wrong, f"{len(wrong)} of {len(vectors)} differ, first: {wrong[0]}"
    # Not the average over the elapsed time that borrowRateView answers before the accrual: they differ wherever
    # the rate at target moved.
    assert sum(int(v["rate_view_after"]) != int(v["avg_rate"]) for v in vectors) > 100
    with pytest.raises(ValueError, match="before the market's last update"):
        rate_at(10**9, MarketState(100, 100, 50, 50, 1_000, 0), 999)


def test_a_block_before_the_last_update_is_refused() -> None:
    with pytest.raises(ValueError, match="before the market's last update"):
        adaptive_curve_rate(10**9, MarketState(100, 100, 50, 50, 1_000, 0), 999)


def test_a_rate_at_target_is_kept_only_where_the_port_gives_the_rate_read() -> None:
    state = MarketState(10**24, 10**24, 6 * 10**23, 6 * 10**23, 1_000, 0)  # 60 %: the rate adapts down
    target, now = 2_000_000_000, 1_000 + 86_400
    rate = adaptive_curve_rate(target, state, now)[0]
    answer = "0x" + encode(["int256"], [target]).hex()
    assert _adaptive_rate_at_target(answer, state, now, rate) == target
    assert _adaptive_rate_at_target(answer, state, now, rate + 1) is None, "another IRM's maths: stored as read"
    assert _adaptive_rate_at_target(answer, state, now, None) is None, "the IRM's rate failed"
    assert _adaptive_rate_at_target(None, state, now, rate) is None, "no rateAtTarget: not an AdaptiveCurveIrm"
    assert _adaptive_rate_at_target("0x", state, now, rate) is None
    assert _adaptive_rate_at_target("0x" + encode(["int256"], [-5]).hex(), state, now, rate) is None
    assert _adaptive_rate_at_target(answer, state, 999, rate) is None, "a block before the last update"


def test_port_equals_morphos_sdk_where_the_sdk_follows_the_contract() -> None:
    """@morpho-org/blue-sdk's AdaptiveCurveIrmLib on the vectors' inputs (its utilization from the same totals): a
    peer library agreeing with the contract and with the port. It takes the utilization, not the market."""
    vectors = json.loads(VECTORS.read_text())["vectors"]
    cases = []
    for v in vectors:
        supply, borrow = int(v["total_supply_assets"]), int(v["total_borrow_assets"])
        utilization = w_div_down(borrow, supply) if supply > 0 else 0
        elapsed = int(v["timestamp"]) - int(v["last_update"])
        cases.append(
            {
                "utilization": str(utilization),
                "start_rate_at_target": v["start_rate_at_target"],
                "elapsed": str(elapsed),
            }
        )
    sdk = run_node_json(SDK_SCRIPT, {"cases": cases})["rates"]
    ours = [adaptive_curve_rate(int(v["start_rate_at_target"]), _state(v), int(v["timestamp"])) for v in vectors]
    contract = [(int(v["avg_rate"]), int(v["end_rate_at_target"])) for v in vectors]
    theirs = [(int(r["avg_rate"]), int(r["end_rate_at_target"])) for r in sdk]
    assert ours == contract
    assert theirs == contract, f"{sum(t != c for t, c in zip(theirs, contract, strict=True))} differ"
