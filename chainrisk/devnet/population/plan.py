"""The devnet population's plan: who the wallets are (behaviour, size, health target, persona), and the constants
that tune how they act along the replay."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrisk.abi import keccak
from chainrisk.devnet.aave import EMODE_CATEGORY, RESERVES, ReserveSpec
from chainrisk.devnet.morpho import ATOKEN_COLLATERAL, MorphoMarket
from chainrisk.devnet.prices import FEED_DECIMALS
from chainrisk.devnet.wrappers import LST, VAULT

MAX_UINT = 2**256 - 1
HF_ONE = 10**18
KEEPER = "0x000000000000000000000000000000000000beef"
#: Where loopers "swap" borrowed WETH for stETH: the devnet has no DEX, so the WETH leaves to this address and
#: the same USD value of stETH is minted (at the feeds' prices) and wrapped.
SWAP_SINK = "0x000000000000000000000000000000000000dead"
#: Seconds between the price-update block and the block with that step's actions and liquidations.
ACTION_DELAY_S = 12

#: Share of wallets per behaviour. Sizes are Pareto (alpha 1.16, the "80/20" tail) from a $1k floor. The last
#: four build collateral chains (issue 7): USDC in the cvUSDC vault (which supplies Morpho's WETH/USDC market),
#: the vault's shares posted on Morpho, Aave's aWETH posted on Morpho, and a loop across both protocols.
BEHAVIOURS: dict[str, float] = {
    "aave_supplier": 0.19,
    "aave_borrower": 0.31,
    "aave_emode_looper": 0.08,
    "aave_isolated": 0.06,
    "morpho_supplier": 0.07,
    "morpho_borrower": 0.13,
    "vault_depositor": 0.04,
    "vault_borrower": 0.04,
    "atoken_borrower": 0.04,
    "cross_looper": 0.04,
}
#: Chance that an Aave borrower also borrows on Morpho (cross-protocol wallets).
CROSS_PROTOCOL_SHARE = 0.2
#: Chance per step that a wallet does a routine action (repay, withdraw, top up, transfer, toggle).
ROUTINE_ACTION_RATE = 0.015
#: Health factor under which attentive loopers deleverage (on Morpho: back to their target health; those whose
#: target is lower act below it).
ATTENTIVE_TRIGGER_HF = 1.08
#: Roles whose debt is a loop; their persona is "looper" whatever their target.
LOOP_ROLES = ("aave_emode_looper", "cross_looper")
#: How a wallet manages risk, orthogonal to its role: issue 9's labels, which drive its actions along the replay
#: so that liquidations come from real price moves. Only the manifest names them; the score sees the chain alone.
PERSONAS = ("prudent", "active_manager", "looper", "reckless", "inattentive")
#: Upper bounds of the health target bands 0 and 1 (band 2 runs to 6).
TARGET_BANDS = (1.15, 2.0)
#: Health under which attentive prudent wallets repay back to their (safe) target.
PRUDENT_TRIGGER_HF = 1.5
#: Active managers steer to max(target, ACTIVE_MIN_TARGET_HF): they repay back to it below max(ACTIVE_FLOOR_HF,
#: ACTIVE_LOW x it) and borrow back to it above ACTIVE_HIGH x it. The floor and the minimum target are what daily
#: steps need: single days took 17-21 % off ETH, stETH and WBTC (22 Jan and 14 Jun 2022), which liquidated nine in
#: ten active managers acting at 1.1, and a target under the floor would make their repay a no-op.
ACTIVE_FLOOR_HF, ACTIVE_LOW, ACTIVE_HIGH, ACTIVE_MIN_TARGET_HF = 1.3, 0.85, 1.5, 1.5
#: Reckless wallets borrow back to target after rises above RELEVER x target; they deleverage only under
#: PANIC_HF, and then only with chance PANIC_RATE per step.
RECKLESS_RELEVER, RECKLESS_PANIC_HF, RECKLESS_PANIC_RATE = 1.2, 1.02, 0.3
#: Smallest re-borrow worth a transaction, as a share of the debt: positions opened at their LTV limit (isolated
#: LINK) sit above their target's health with no borrowing power left, and Aave refuses dust over the limit.
MIN_RELEVER_SHARE = 0.01
#: Health targets of vault borrowers: a tight band over 1 (LLTV 94.5 %), so that a fall of a few % in the
#: vault's share price, which bad debt in the market it supplies brings, liquidates some of them.
VAULT_BORROWER_HF = (1.01, 1.12)
#: Chance per step that a Morpho borrower liquidated out of its market opens again: demand for a market's
#: liquidity comes back after a crash, as its rates fall (within a day or so at 4-hour steps). It keeps the
#: vault's market lent out, so that the market's bad debt reaches the vault's share price.
REENTRY_RATE = 0.25
#: Borrowing the vault's market is sized to at opening, as a share of what wallets deposit in the vault (its
#: liquidity provider then tops supply up to the 80 % utilisation of the other markets).
VAULT_UTILISATION = 0.9
#: E-mode loops: rounds of borrow WETH, swap to wstETH, supply; each round borrows this share (drawn per
#: wallet) of the previous supply, under e-mode's 90 % LTV with room for rounding and price moves.
LOOP_ROUNDS = (2, 3)
LOOP_RATIO = (0.55, 0.89)
#: Share of its Aave borrowing power (LTV x the USDC it supplied) a cross looper borrows as WETH on Aave, before
#: its health target scales it down.
CROSS_LOOP_LTV_USE = 0.99


@dataclass
class Wallet:
    address: str  #: lowercase hex
    behaviour: str  #: key of BEHAVIOURS
    size_usd: float  #: collateral (or supply) value at opening
    target_hf: float  #: health factor aimed for at opening (Morpho's for Morpho borrowers)
    attentive: bool  #: watches its health: an active manager below a safe target, else deleverages (persona_of)
    collateral: dict[str, float]  #: symbol -> USD at opening (Aave)
    debt_symbol: str | None  #: Aave debt asset
    morpho_market: int | None  #: index into the Morpho markets
    persona: str  #: key of PERSONAS: how the wallet manages its health along the replay
    collateral_off: str | None = None  #: Aave asset whose collateral use this wallet switched off
    loop_rounds: int = 0  #: e-mode loop rounds (aave_emode_looper)
    loop_ratio: float = 0.0  #: share of each round's new supply borrowed in the next round


def wallet_address(seed: int, index: int) -> str:
    return "0x" + keccak(f"chainrisk-devnet:{seed}:{index}".encode())[-20:].hex()


def token_units(usd: float, price: int, decimals: int) -> int:
    """Token units worth `usd` at a feed price with FEED_DECIMALS."""
    return int(usd * 10**FEED_DECIMALS / price * 10**decimals)


def loop_health(rounds: int, ratio: float) -> float:
    """Aave health factor of an e-mode loop: supply C, then `rounds` times borrow `ratio` of the last supply and
    supply it again, at par: LT x (1 + r + ... + r^n) / (r + ... + r^n)."""
    supplied = sum(ratio**k for k in range(rounds + 1))
    return EMODE_CATEGORY[2] / 10_000 * supplied / (supplied - 1)


def persona_of(behaviour: str, target_hf: float, attentive: bool) -> str:
    """The persona a wallet's role, health target and attentiveness give: loops are loopers; a safe target (band 2)
    is prudent; below it attentive wallets are active managers, the rest reckless (band 0) or inattentive (band 1).
    The band is the target's own, so vault borrowers, whose target is always tight, are never prudent."""
    if behaviour in LOOP_ROLES:
        return "looper"
    if target_hf >= TARGET_BANDS[1]:
        return "prudent"
    if attentive:
        return "active_manager"
    return "reckless" if target_hf < TARGET_BANDS[0] else "inattentive"


def plan_wallets(
    n: int, seed: int, morpho_markets: list[MorphoMarket], specs: tuple[ReserveSpec, ...] = RESERVES
) -> list[Wallet]:
    """Draws behaviours, sizes, targets and assets, and derives personas (no draw of their own, so plans from
    before personas keep every other field); the same seed gives the same plan. Wallets whose Morpho market is
    missing from `morpho_markets` (the chain behaviours need aWETH/USDC and cvUSDC/DAI) get none."""
    rng = np.random.default_rng(seed)
    kinds = list(BEHAVIOURS)
    behaviour = rng.choice(kinds, size=n, p=np.array(list(BEHAVIOURS.values())))
    sizes = np.minimum(1_000 * (1 + rng.pareto(1.16, size=n)), 25_000_000)
    # Health targets: a crowded band just above 1, a middle and a safe tail.
    band = rng.choice(3, size=n, p=[0.25, 0.5, 0.25])
    targets = np.where(
        band == 0,
        rng.uniform(1.03, TARGET_BANDS[0], n),
        np.where(band == 1, rng.uniform(*TARGET_BANDS, n), rng.uniform(TARGET_BANDS[1], 6.0, n)),
    )
    attentive = rng.random(n) < 0.5
    volatile = ["WETH", "WBTC", "wstETH"]
    stables = ["USDC", "DAI", "USDT"]
    by_symbol = {s.symbol: s for s in specs}
    # Generic Morpho borrowers mint their collateral, so they use the markets on plain tokens.
    plain = [i for i, m in enumerate(morpho_markets) if m.collateral_symbol in by_symbol]
    [(a_collateral, a_underlying)] = ATOKEN_COLLATERAL.items()
    pairs = {(m.collateral_symbol, m.loan_symbol): i for i, m in enumerate(morpho_markets)}
    a_token_market = pairs.get((a_collateral, "USDC"))
    vault_market = pairs.get((VAULT.symbol, "DAI"))
    wallets = []
    for i in range(n):
        kind = str(behaviour[i])
        size = float(sizes[i])
        target = float(targets[i])
        collateral: dict[str, float] = {}
        debt: str | None = None
        market: int | None = None
        rounds, ratio = 0, 0.0
        if kind == "aave_supplier":
            assets = rng.choice(list(by_symbol), size=int(rng.integers(1, 3)), replace=False)
            collateral = {str(a): size / len(assets) for a in assets}
        elif kind == "aave_borrower":
            main = str(rng.choice(volatile, p=[0.55, 0.3, 0.15]))
            collateral = {main: size}
            if rng.random() < 0.3:
                other = str(rng.choice([a for a in [*volatile, "USDC"] if a != main]))
                collateral = {main: size * 0.7, other: size * 0.3}
            debt = str(rng.choice(["USDC", "USDT", "DAI", "WETH"], p=[0.45, 0.2, 0.2, 0.15]))
            if debt in collateral:
                debt = "USDC" if debt != "USDC" else "DAI"
            if rng.random() < CROSS_PROTOCOL_SHARE and plain:
                market = int(rng.choice(plain))
        elif kind == "aave_emode_looper":
            collateral = {LST.symbol: size}
            debt = "WETH"
            rounds = int(rng.integers(LOOP_ROUNDS[0], LOOP_ROUNDS[1] + 1))
            ratio = float(rng.uniform(*LOOP_RATIO))
            target = loop_health(rounds, ratio)
        elif kind == "aave_isolated":
            collateral = {"LINK": size}
            debt = str(rng.choice(stables))
        elif kind == "morpho_supplier" and morpho_markets:
            market = int(rng.integers(0, len(morpho_markets)))
        elif kind == "morpho_borrower" and plain:
            market = int(rng.choice(plain))
        elif kind == "vault_borrower":
            market = vault_market
            target = float(rng.uniform(*VAULT_BORROWER_HF))
        elif kind == "atoken_borrower":
            market = a_token_market
        elif kind == "cross_looper":
            market = a_token_market
            debt = a_underlying
        wallets.append(
            Wallet(
                address=wallet_address(seed, i),
                behaviour=kind,
                size_usd=size,
                target_hf=target,
                attentive=bool(attentive[i]),
                collateral=collateral,
                debt_symbol=debt,
                morpho_market=market,
                persona=persona_of(kind, target, bool(attentive[i])),
                loop_rounds=rounds,
                loop_ratio=ratio,
            )
        )
    return wallets
