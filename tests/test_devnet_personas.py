"""Personas drive the devnet population: derived from each wallet's plan, and visible on chain in when and how
wallets repay and re-borrow, in how close to target they end, and in who gets liquidated."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

import pytest
from eth_utils.crypto import keccak

from chainrisk.abi import eth_call, load_abi
from chainrisk.devnet.morpho import MorphoMarket
from chainrisk.devnet.population import (
    ACTION_DELAY_S,
    ACTIVE_FLOOR_HF,
    ACTIVE_LOW,
    ACTIVE_MIN_TARGET_HF,
    HF_ONE,
    LOOP_ROLES,
    PERSONAS,
    PRUDENT_TRIGGER_HF,
    RECKLESS_RELEVER,
    Wallet,
    persona_of,
    plan_wallets,
)
from chainrisk.rpc import RpcClient

POOL = load_abi("aave-v3", "IPool")
AAVE_LIQUIDATION = "LiquidationCall(address,address,address,uint256,uint256,address,bool)"
MORPHO_LIQUIDATION = "Liquidate(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)"
REPAY = "Repay(address,address,address,uint256,bool)"
BORROW = "Borrow(address,address,address,uint256,uint8,uint256,uint16)"
#: Health under which the scan counts an inattentive wallet's step as one an attentive wallet would act in.
LOW_HF = 1.3


@pytest.mark.parametrize(
    ("behaviour", "target", "attentive", "persona"),
    [
        ("aave_emode_looper", 1.2, True, "looper"),
        ("cross_looper", 4.0, False, "looper"),
        ("aave_borrower", 2.0, False, "prudent"),
        ("morpho_borrower", 5.9, True, "prudent"),
        ("aave_supplier", 3.0, True, "prudent"),  # suppliers get one too; it has no effect
        ("aave_borrower", 1.03, True, "active_manager"),
        ("aave_isolated", 1.99, True, "active_manager"),
        ("aave_borrower", 1.149, False, "reckless"),
        ("vault_borrower", 1.01, False, "reckless"),
        ("morpho_borrower", 1.15, False, "inattentive"),
        ("atoken_borrower", 1.99, False, "inattentive"),
    ],
)
def test_persona_follows_role_target_band_and_attention(
    behaviour: str, target: float, attentive: bool, persona: str
) -> None:
    assert persona_of(behaviour, target, attentive) == persona


def test_plan_gives_every_wallet_the_persona_of_its_draws() -> None:
    wallets = plan_wallets(2_000, 3, [])
    assert [w.persona for w in wallets] == [persona_of(w.behaviour, w.target_hf, w.attentive) for w in wallets]
    assert set(Counter(w.persona for w in wallets)) == set(PERSONAS)
    assert all(w.persona == "looper" for w in wallets if w.behaviour in LOOP_ROLES)
    by_persona: defaultdict[str, list[Wallet]] = defaultdict(list)
    for w in wallets:
        if w.behaviour not in LOOP_ROLES:
            by_persona[w.persona].append(w)
    targets = {persona: [w.target_hf for w in group] for persona, group in by_persona.items()}
    below_prudent = targets["inattentive"] + targets["reckless"] + targets["active_manager"]
    assert min(targets["prudent"]) >= 2.0 > max(below_prudent)
    assert max(targets["reckless"]) < 1.15 <= min(targets["inattentive"])
    assert all(w.attentive for w in by_persona["active_manager"])
    assert not any(w.attentive for w in by_persona["reckless"] + by_persona["inattentive"])


@pytest.fixture(scope="module")
def plan(devnet: dict[str, Any]) -> dict[str, Wallet]:
    """The session devnet's plan, for the health targets the chain does not hold."""
    markets = [MorphoMarket(**market) for market in devnet["morpho_blue"]["markets"]]
    options = devnet["options"]
    return {w.address: w for w in plan_wallets(options["wallets"], options["seed"], markets)}


def _logs(rpc: RpcClient, address: str, signature: str, from_block: int) -> list[dict[str, Any]]:
    topic = "0x" + keccak(signature.encode()).hex()
    logs: list[dict[str, Any]] = rpc.call(
        "eth_getLogs", [{"address": address, "topics": [topic], "fromBlock": hex(from_block), "toBlock": "latest"}]
    )
    return logs


def _topic_address(topic: str) -> str:
    return "0x" + topic[-40:]


def _accounts(rpc: RpcClient, pool: str, queries: list[tuple[str, int | None]]) -> list[tuple[int, ...]]:
    """getUserAccountData of each (wallet, block); None reads the head."""
    calls = [eth_call(pool, POOL, "getUserAccountData", w, block="latest" if b is None else hex(b)) for w, b in queries]
    return [tuple(POOL.decode("getUserAccountData", raw)) for raw in rpc.batch(calls)]


@pytest.fixture(scope="module")
def price_blocks(devnet: dict[str, Any], rpc: RpcClient) -> list[int]:
    """The replay's price-update blocks: each step moves block time by hours there, then acts 12 s later."""
    blocks = list(range(devnet["deployed_block"], devnet["head_block"] + 1))
    headers = rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in blocks])
    stamps = [int(h["timestamp"], 16) for h in headers]
    return [b for b, before, at in zip(blocks[1:], stamps, stamps[1:], strict=False) if at - before > ACTION_DELAY_S]


def test_manifest_names_every_persona_and_liquidations_follow_them(
    devnet: dict[str, Any], rpc: RpcClient, plan: dict[str, Wallet]
) -> None:
    personas = devnet["personas"]
    assert personas == {a: w.persona for a, w in plan.items()}
    assert set(personas) == set(devnet["wallets"])
    first = devnet["deployed_block"]
    logs = _logs(rpc, devnet["aave_v3"]["pool"], AAVE_LIQUIDATION, first)
    logs += _logs(rpc, devnet["morpho_blue"]["morpho"], MORPHO_LIQUIDATION, first)
    on_chain = Counter(personas[_topic_address(log["topics"][3])] for log in logs)
    assert devnet["history"]["persona_liquidations"] == dict(on_chain)
    # The May 2022 crash liquidates wallets that do not manage their health; managers and the prudent survive it.
    assert on_chain["reckless"] + on_chain["inattentive"] >= 0.8 * sum(on_chain.values()) > 0
    assert on_chain["active_manager"] + on_chain["prudent"] <= 0.05 * sum(on_chain.values())
    actions = devnet["history"]["persona_actions"]
    health_actions = {"deleverage_repay", "relever_borrow", "morpho_deleverage_repay", "morpho_relever_borrow"}
    assert not health_actions & set(actions["inattentive"])
    assert actions["reckless"]["relever_borrow"] > 0 and actions["active_manager"]["deleverage_repay"] > 0


def test_health_under_the_trigger_brings_a_repay_from_attentive_wallets_only(
    devnet: dict[str, Any], rpc: RpcClient, plan: dict[str, Wallet], price_blocks: list[int]
) -> None:
    """Per replay step, each Aave borrower's health at the price update (what the wallet read) against whether it
    sent a Repay before the next update: active managers and attentive prudent wallets repay in every step that
    opens under their trigger; inattentive wallets only by their rare routine repays."""
    pool = devnet["aave_v3"]["pool"]
    repaid: defaultdict[str, set[int]] = defaultdict(set)
    for log in _logs(rpc, pool, REPAY, price_blocks[0]):
        repaid[_topic_address(log["topics"][2])].add(int(log["blockNumber"], 16))
    triggers = {}
    for address, w in plan.items():
        if not w.debt_symbol:
            continue
        if w.persona == "active_manager":
            triggers[address] = max(ACTIVE_FLOOR_HF, ACTIVE_LOW * max(w.target_hf, ACTIVE_MIN_TARGET_HF))
        elif w.persona == "prudent" and w.attentive:
            triggers[address] = PRUDENT_TRIGGER_HF
        elif w.persona == "inattentive":
            triggers[address] = LOW_HF
    wallets = sorted(triggers)
    accounts = _accounts(rpc, pool, [(w, b) for b in price_blocks for w in wallets])
    low_steps: Counter[str] = Counter()  # persona -> steps opening under its trigger (healthy, with debt)
    low_repaid: Counter[str] = Counter()
    ends = [*price_blocks[1:], devnet["head_block"] + 1]
    for i, (block, end) in enumerate(zip(price_blocks, ends, strict=True)):
        for j, wallet in enumerate(wallets):
            _, debt, _, _, _, hf = accounts[i * len(wallets) + j]
            if debt and HF_ONE <= hf < triggers[wallet] * HF_ONE:
                persona = plan[wallet].persona
                low_steps[persona] += 1
                low_repaid[persona] += any(block < b < end for b in repaid[wallet])
    print(f"\nsteps opening under the trigger, repaid / all: { {p: (low_repaid[p], n) for p, n in low_steps.items()} }")
    assert low_steps["active_manager"] >= 50 and low_repaid["active_manager"] == low_steps["active_manager"]
    assert low_steps["prudent"] >= 1 and low_repaid["prudent"] == low_steps["prudent"]
    assert low_steps["inattentive"] >= 200 and low_repaid["inattentive"] <= 0.05 * low_steps["inattentive"]


def test_reckless_wallets_borrow_back_to_target_after_rises(
    devnet: dict[str, Any], rpc: RpcClient, plan: dict[str, Wallet], price_blocks: list[int]
) -> None:
    """Every Borrow a reckless wallet sends during the replay follows a rise of its health over 1.2 x its target,
    and takes it back to the target, or as near as its borrowing power (LTV) allows."""
    pool = devnet["aave_v3"]["pool"]
    borrows = [
        (_topic_address(log["topics"][2]), int(log["blockNumber"], 16))
        for log in _logs(rpc, pool, BORROW, price_blocks[0])
    ]
    reckless = [(w, b) for w, b in borrows if plan[w].persona == "reckless"]
    assert len(reckless) >= 10
    before = _accounts(rpc, pool, [(w, b - 1) for w, b in reckless])
    after = _accounts(rpc, pool, [(w, b) for w, b in reckless])
    at_target = 0
    for (wallet, _), pre, post in zip(reckless, before, after, strict=True):
        target = plan[wallet].target_hf
        assert pre[5] > RECKLESS_RELEVER * target * HF_ONE, (wallet, pre[5] / HF_ONE, target)
        collateral, available, hf = post[0], post[2], post[5]
        if hf == pytest.approx(target * HF_ONE, rel=0.002):
            at_target += 1
        else:
            assert target * HF_ONE < hf < pre[5] and available < 0.01 * collateral, (wallet, hf / HF_ONE, target)
    assert at_target >= 1


def test_active_managers_end_closer_to_their_target_than_inattentive_wallets(
    devnet: dict[str, Any], rpc: RpcClient, plan: dict[str, Wallet]
) -> None:
    """At the head, after the crash: the median distance of health from the health a wallet steers to (active
    managers: their target, at least ACTIVE_MIN_TARGET_HF) is far smaller for active managers."""
    pool = devnet["aave_v3"]["pool"]
    wallets = [a for a, w in plan.items() if w.debt_symbol and w.persona in ("active_manager", "inattentive")]
    distance: defaultdict[str, list[float]] = defaultdict(list)
    for wallet, account in zip(wallets, _accounts(rpc, pool, [(w, None) for w in wallets]), strict=True):
        w = plan[wallet]
        if account[1] == 0:
            continue
        steer = max(w.target_hf, ACTIVE_MIN_TARGET_HF) if w.persona == "active_manager" else w.target_hf
        distance[w.persona].append(abs(account[5] / HF_ONE / steer - 1))
    active, inattentive = (statistics.median(distance[p]) for p in ("active_manager", "inattentive"))
    print(f"\nmedian |health / target - 1| at the head: active managers {active:.3f}, inattentive {inattentive:.3f}")
    assert len(distance["active_manager"]) >= 30 and len(distance["inattentive"]) >= 30
    assert active < 0.15 and active < 0.6 * inattentive
