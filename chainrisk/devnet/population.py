"""Devnet wallet population: heavy-tailed positions and collateral chains, a real price replay, a liquidation keeper."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
from eth_utils.crypto import keccak

from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.devnet.aave import EMODE_CATEGORY, RESERVES, AaveDeployment, ReserveSpec
from chainrisk.devnet.morpho import ATOKEN_COLLATERAL, MorphoDeployment, MorphoMarket, market_index
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.prices import FEED_DECIMALS
from chainrisk.devnet.toolchain import aave_artifact, compiled_contracts
from chainrisk.devnet.wrappers import LST, VAULT, LstDeployment, VaultDeployment, next_rate
from chainrisk.rpc import RpcClient
from chainrisk.units import WAD

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


@dataclass
class History:
    """What the population did; written to the manifest for tests and the dashboard."""

    actions: Counter[str] = field(default_factory=Counter)  #: successful actions by kind
    reverted: Counter[str] = field(default_factory=Counter)  #: refused actions by kind
    #: successful actions by the sender's behaviour ("keeper", "liquidity_provider" for those two), then kind
    by_behaviour: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    #: successful actions of the population's wallets by persona, then kind
    by_persona: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    lst_reports: int = 0  #: daily LST rate reports sent


def wallet_address(seed: int, index: int) -> str:
    return "0x" + keccak(f"chainrisk-devnet:{seed}:{index}".encode())[-20:].hex()


def _units(usd: float, price: int, decimals: int) -> int:
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


class Population:
    """Drives the wallets and the keeper against the deployed contracts."""

    def __init__(
        self,
        builder: BlockBuilder,
        aave: AaveDeployment,
        morpho: MorphoDeployment,
        lst: LstDeployment,
        vault: VaultDeployment,
        feeds: dict[str, str],
        wallets: list[Wallet],
        seed: int,
        prices: dict[str, int],
    ) -> None:
        """`feeds`: the settable base feeds by symbol; `prices`: their answers now in force."""
        self.builder = builder
        self.rpc: RpcClient = builder.rpc
        self.aave = aave
        self.morpho = morpho
        self.lst = lst
        self.vault = vault
        self.feeds = feeds
        self.wallets = wallets
        self.rng = np.random.default_rng(seed + 1)
        # The reckless wallets' panics draw from their own stream, so the routine actions keep theirs.
        self.panic_rng = np.random.default_rng(seed + 2)
        self.pool_abi = load_abi("aave-v3", "IPool")
        self.data_abi = load_abi("aave-v3", "AaveProtocolDataProvider")
        self.erc20 = load_abi("erc20", "IERC20Detailed")
        self.morpho_abi = load_abi("morpho-blue", "IMorpho")
        # Our own contracts and Aave's MintableERC20 (open mint), from the same builds that deployed them.
        contracts = compiled_contracts()
        self.feed_abi = Abi(contracts["SettableFeed"].abi)
        self.lst_abi = Abi(contracts["DevnetWstETH"].abi)
        self.vault_abi = Abi(contracts["MorphoSupplyVault"].abi)
        self.mint_abi = Abi(aave_artifact("MintableERC20").abi)
        self.specs = {s.symbol: s for s in RESERVES}
        self.tokens = {s: r.asset for s, r in aave.reserves.items()} | {
            LST.base: lst.base_token,
            VAULT.symbol: vault.token,
        }
        self.tokens |= {a: aave.reserves[u].a_token for a, u in ATOKEN_COLLATERAL.items()}
        self.decimals = {s: r.decimals for s, r in aave.reserves.items()} | {
            LST.base: LST.base_decimals,
            VAULT.symbol: vault.decimals,
        }
        self.lst_rate = LST.initial_rate  # the wrapper's stEthPerToken; `report` moves both
        self.prices: dict[str, int] = {}  # feed answers now in force, derived ones included
        self._use_prices(prices)
        self.history = History()
        # getUserAccountData of each wallet with an Aave debt plan: collateral, debt and borrowing power in the
        # oracle's base (USD, FEED_DECIMALS), liquidation threshold and LTV in bps, health factor (wad)
        self.accounts: dict[str, tuple[int, ...]] = {}
        self.morpho_health: dict[str, tuple[float, int]] = {}  # healthy Morpho borrowers: (health, debt units)
        self.morpho_closed: dict[str, int] = {}  # Morpho borrowers with no debt left: collateral units left
        self.morpho_prices: list[int] = []  # each market's oracle price at the step
        self.behaviour_of = {w.address: w.behaviour for w in wallets}
        self.persona_of = {w.address: w.persona for w in wallets}
        self.approved: set[tuple[str, str, str]] = set()
        self.reported_days = 0

    # -- helpers ---------------------------------------------------------------------------------------------
    def _token(self, symbol: str) -> str:
        return self.tokens[symbol]

    def _units(self, symbol: str, usd: float) -> int:
        return max(_units(usd, self.prices[symbol], self.decimals[symbol]), 1)

    def _use_prices(self, answers: dict[str, int]) -> None:
        """Base feed answers, and wstETH's as its RateFeed derives it: stETH x getStETHByWstETH(1e18) / 1e18."""
        self.prices.update(answers)
        unit = 10**LST.base_decimals
        self.prices[LST.symbol] = self.prices[LST.base] * (unit * self.lst_rate // WAD) // unit

    def _approve(self, who: str, token: str, spender: str) -> None:
        if (who, token, spender) not in self.approved:
            self.builder.call(who, self.erc20, token, "approve", spender, MAX_UINT)
            self.approved.add((who, token, spender))

    def _fund(self, who: str, symbol: str, amount: int) -> None:
        """Gives `who` `amount` units: minted (open-mint test tokens), or for wstETH minted as stETH and wrapped,
        so that every wstETH is backed."""
        if symbol != LST.symbol:
            self.builder.call(who, self.mint_abi, self._token(symbol), "mint", amount)
            return
        steth = -(-amount * self.lst_rate // WAD)  # wrapping rounds down; rounding the stETH up gives >= amount
        self.builder.call(who, self.mint_abi, self.lst.base_token, "mint", steth)
        self._approve(who, self.lst.base_token, self.lst.token)
        self.builder.call(who, self.lst_abi, self.lst.token, "wrap", steth)

    def _act(self, who: str, abi: Abi, to: str, fn: str, *args: Any, kind: str) -> None:
        self.builder.send(who, to, abi.encode(fn, *args), kind, required=False)

    def _aave(self, who: str, fn: str, *args: Any, kind: str) -> None:
        self._act(who, self.pool_abi, self.aave.pool, fn, *args, kind=kind)

    def _morpho(self, who: str, fn: str, *args: Any, kind: str) -> None:
        self._act(who, self.morpho_abi, self.morpho.morpho, fn, *args, kind=kind)

    def _role(self, sender: str) -> str:
        sender = sender.lower()
        return self.behaviour_of.get(sender) or ("keeper" if sender == KEEPER else "liquidity_provider")

    def _mine_actions(self) -> None:
        for receipt in self.builder.mine(ACTION_DELAY_S):
            if receipt.ok:
                self.history.actions[receipt.tx.label] += 1
                self.history.by_behaviour[self._role(receipt.tx.sender)][receipt.tx.label] += 1
                persona = self.persona_of.get(receipt.tx.sender.lower())
                if persona:
                    self.history.by_persona[persona][receipt.tx.label] += 1
            else:
                self.history.reverted[receipt.tx.label] += 1

    def set_prices(self, row: dict[str, int], advance_s: int) -> None:
        """Moves every base feed that changed, in one block `advance_s` after the last (with anything queued)."""
        for symbol, feed in self.feeds.items():
            price = int(row[symbol])
            if self.prices.get(symbol) != price:
                self.builder.call(DEPLOYER, self.feed_abi, feed, "setAnswer", price)
            self.prices[symbol] = price
        self._use_prices({})
        self.builder.mine(advance_s)

    def report_lst(self, days: int) -> None:
        """Queues the wrapper's oracle report for `days` more simulated days (the next block carries it)."""
        self.lst_rate = next_rate(self.lst_rate, days)
        self.builder.call(DEPLOYER, self.lst_abi, self.lst.token, "report", self.lst_rate)
        self.history.lst_reports += 1

    # -- plans -----------------------------------------------------------------------------------------------
    def _planned_aave_debt(self, w: Wallet) -> float:
        """Aave debt in USD: the loops' sums, else the target health's, kept inside the borrowing power (LTV)."""
        if w.behaviour == "aave_emode_looper":
            return sum(self._loop_borrows(w))
        if w.behaviour == "cross_looper":
            return self._cross_weth_usd(w)
        by_lt = sum(usd * self.specs[s].liquidation_threshold for s, usd in w.collateral.items())
        by_ltv = sum(usd * self.specs[s].ltv for s, usd in w.collateral.items())
        return min(by_lt / 10_000 / w.target_hf, by_ltv / 10_000 * 0.99)

    def _loop_borrows(self, w: Wallet) -> list[float]:
        """USD borrowed in each loop round: ratio x the previous round's supply."""
        return [w.size_usd * w.loop_ratio**k for k in range(1, w.loop_rounds + 1)]

    def _morpho_collateral_usd(self, w: Wallet) -> float:
        return w.size_usd * (0.5 if w.behaviour.startswith("aave") else 1.0)

    def _morpho_borrow_usd(self, w: Wallet) -> float:
        assert w.morpho_market is not None
        return self._morpho_collateral_usd(w) * self.morpho.markets[w.morpho_market].lltv / WAD / w.target_hf

    def _cross_weth_usd(self, w: Wallet) -> float:
        """WETH a cross looper borrows on Aave against the USDC it borrowed on Morpho and supplied to Aave."""
        usdc = self.specs["USDC"]
        scale = min(1.0, 1.2 / w.target_hf)
        return self._morpho_borrow_usd(w) * usdc.ltv / 10_000 * CROSS_LOOP_LTV_USE * scale

    # -- opening ---------------------------------------------------------------------------------------------
    def open_positions(self) -> None:
        """Funds and approves; supplies and deposits; then posts wrapped collateral, borrows and loops: three
        blocks (more where one passes MAX_TXS_PER_BLOCK; each wallet's transactions stay in order), liquidity
        providers first."""
        pool, morpho = self.aave.pool, self.morpho.morpho
        vault_index = market_index(self.morpho.markets, VAULT.collateral, VAULT.loan)
        self._size_vault_market_demand(vault_index)
        for symbol in self.specs:
            self._approve(KEEPER, self._token(symbol), pool)
            self._approve(KEEPER, self._token(symbol), morpho)
        aave_borrow_usd: defaultdict[str, float] = defaultdict(float)
        morpho_borrow_usd: defaultdict[int, float] = defaultdict(float)
        vault_deposits_usd = 0.0
        for w in self.wallets:
            self._fund_opening(w)
            if w.debt_symbol:
                aave_borrow_usd[w.debt_symbol] += self._planned_aave_debt(w)
            if w.morpho_market is not None and w.behaviour != "morpho_supplier":
                morpho_borrow_usd[w.morpho_market] += self._morpho_borrow_usd(w)
            if w.behaviour in ("vault_depositor", "vault_borrower"):
                vault_deposits_usd += w.size_usd
        # Liquidity providers so that borrowing never outruns supply: utilisation near 75-80 %. The vault's
        # market is supplied through the vault, so that the vault is its main supplier and the market's bad
        # debt reaches the share price; its provider tops up what the wallets deposited.
        aave_lps = {
            symbol: ("0x" + keccak(f"lp:aave:{symbol}".encode())[-20:].hex(), self._units(symbol, usd / 0.75))
            for symbol, usd in aave_borrow_usd.items()
        }
        morpho_lps = {}
        for index, usd in morpho_borrow_usd.items():
            lp_usd = usd / 0.8 - (vault_deposits_usd if index == vault_index else 0.0)
            if lp_usd > 0:
                loan = self.morpho.markets[index].loan_symbol
                morpho_lps[index] = (
                    "0x" + keccak(f"lp:morpho:{index}".encode())[-20:].hex(),
                    self._units(loan, lp_usd),
                )
        for symbol, (lp, units) in aave_lps.items():
            self._fund(lp, symbol, units)
            self._approve(lp, self._token(symbol), pool)
        for index, (lp, units) in morpho_lps.items():
            loan = self.morpho.markets[index].loan_symbol
            self._fund(lp, loan, units)
            self._approve(lp, self._token(loan), self.vault.token if index == vault_index else morpho)
        self.builder.mine(ACTION_DELAY_S)

        for symbol, (lp, units) in aave_lps.items():
            self.builder.call(lp, self.pool_abi, pool, "supply", self._token(symbol), units, lp, 0)
        for index, (lp, units) in morpho_lps.items():
            if index == vault_index:
                self.builder.call(lp, self.vault_abi, self.vault.token, "deposit", units, lp)
            else:
                params = self.morpho.markets[index].params
                self.builder.call(lp, self.morpho_abi, morpho, "supply", params, units, 0, lp, b"")
        for w in self.wallets:
            self._supply_opening(w)
        self._mine_actions()

        shares = self._vault_shares([w.address for w in self.wallets if w.behaviour == "vault_borrower"])
        for w in self.wallets:
            self._borrow_opening(w, shares.get(w.address, 0))
        self._mine_actions()

    def _size_vault_market_demand(self, vault_index: int) -> None:
        """Scales the vault market's Morpho borrowers up (health targets kept) until they borrow VAULT_UTILISATION
        of what the wallets deposit in the vault: the deposits come whatever the market's demand, and a vault
        that lends little of them would hardly feel its market's bad debt. On mainnet Morpho's AdaptiveCurveIrm
        moves rates until a market sits near its 90 % target utilisation, to the same effect."""
        deposits = sum(w.size_usd for w in self.wallets if w.behaviour in ("vault_depositor", "vault_borrower"))
        demand = [w for w in self.wallets if w.behaviour == "morpho_borrower" and w.morpho_market == vault_index]
        borrowed = sum(self._morpho_borrow_usd(w) for w in demand)
        if demand and borrowed < VAULT_UTILISATION * deposits:
            scale = VAULT_UTILISATION * deposits / borrowed
            for w in demand:
                w.size_usd *= scale

    def _fund_opening(self, w: Wallet) -> None:
        pool, morpho, vault = self.aave.pool, self.morpho.morpho, self.vault.token
        for symbol, usd in w.collateral.items():
            self._fund(w.address, symbol, self._units(symbol, usd))
            self._approve(w.address, self._token(symbol), pool)
        if w.debt_symbol:
            self._approve(w.address, self._token(w.debt_symbol), pool)
        if w.behaviour in ("vault_depositor", "vault_borrower"):
            self._fund(w.address, VAULT.loan, self._units(VAULT.loan, w.size_usd))
            self._approve(w.address, self._token(VAULT.loan), vault)
        if w.morpho_market is None:
            return
        market = self.morpho.markets[w.morpho_market]
        self._approve(w.address, market.loan_token, morpho)
        if w.behaviour == "morpho_supplier":
            self._fund(w.address, market.loan_symbol, self._units(market.loan_symbol, w.size_usd))
            return
        self._approve(w.address, market.collateral_token, morpho)
        if w.behaviour == "vault_borrower":
            return
        if w.behaviour in ("atoken_borrower", "cross_looper"):
            underlying = ATOKEN_COLLATERAL[market.collateral_symbol]
            self._fund(w.address, underlying, self._units(underlying, w.size_usd))
            self._approve(w.address, self._token(underlying), pool)
            if w.behaviour == "cross_looper":
                self._approve(w.address, market.loan_token, pool)
        else:
            usd = self._morpho_collateral_usd(w)
            self._fund(w.address, market.collateral_symbol, self._units(market.collateral_symbol, usd))

    def _supply_opening(self, w: Wallet) -> None:
        if w.behaviour == "aave_emode_looper":
            self._aave(w.address, "setUserEMode", EMODE_CATEGORY[0], kind="setUserEMode")
        for symbol, usd in w.collateral.items():
            units = self._units(symbol, usd)
            self._aave(w.address, "supply", self._token(symbol), units, w.address, 0, kind="supply")
        if w.behaviour == "aave_isolated":
            # Aave 3.0.2 never enables an isolated asset as collateral on supply
            # (ValidationLogic.validateAutomaticUseAsCollateral); the wallet opts in.
            self._aave(w.address, "setUserUseReserveAsCollateral", self._token("LINK"), True, kind="enter_isolation")
        if w.behaviour in ("vault_depositor", "vault_borrower"):
            units = self._units(VAULT.loan, w.size_usd)
            self._act(w.address, self.vault_abi, self.vault.token, "deposit", units, w.address, kind="vault_deposit")
        if w.morpho_market is None:
            return
        market = self.morpho.markets[w.morpho_market]
        if w.behaviour == "morpho_supplier":
            units = self._units(market.loan_symbol, w.size_usd)
            self._morpho(w.address, "supply", market.params, units, 0, w.address, b"", kind="morpho_supply")
        elif w.behaviour in ("atoken_borrower", "cross_looper"):
            underlying = ATOKEN_COLLATERAL[market.collateral_symbol]
            units = self._units(underlying, w.size_usd)
            self._aave(w.address, "supply", self._token(underlying), units, w.address, 0, kind="supply")
        elif w.behaviour != "vault_borrower":
            units = self._units(market.collateral_symbol, self._morpho_collateral_usd(w))
            self._morpho(
                w.address, "supplyCollateral", market.params, units, w.address, b"", kind="morpho_supplyCollateral"
            )

    def _vault_shares(self, holders: list[str]) -> dict[str, int]:
        raw = self.rpc.batch([eth_call(self.vault.token, self.erc20, "balanceOf", a) for a in holders])
        return {a: int(self.erc20.decode("balanceOf", r)[0]) for a, r in zip(holders, raw, strict=True)}

    def _borrow_opening(self, w: Wallet, vault_shares: int) -> None:
        if w.behaviour == "aave_emode_looper":
            self._loop(w)
        elif w.debt_symbol and w.behaviour != "cross_looper":
            units = self._units(w.debt_symbol, self._planned_aave_debt(w))
            self._aave(w.address, "borrow", self._token(w.debt_symbol), units, 2, 0, w.address, kind="borrow")
        if w.morpho_market is None or w.behaviour == "morpho_supplier":
            return
        market = self.morpho.markets[w.morpho_market]
        if w.behaviour in ("atoken_borrower", "cross_looper"):
            # The aTokens the wallet got less one unit: Aave's index rounding can leave the balance a unit short.
            posted = self._units(ATOKEN_COLLATERAL[market.collateral_symbol], w.size_usd) - 1
            self._post(w, market, posted)
        elif w.behaviour == "vault_borrower":
            self._post(w, market, vault_shares)
        loan_units = self._units(market.loan_symbol, self._morpho_borrow_usd(w))
        self._morpho(w.address, "borrow", market.params, loan_units, 0, w.address, w.address, kind="morpho_borrow")
        if w.behaviour == "cross_looper":
            # The loop goes on in Aave: the borrowed USDC is supplied there, WETH borrowed against it and supplied.
            self._aave(w.address, "supply", market.loan_token, loan_units, w.address, 0, kind="loop_supply")
            weth = ATOKEN_COLLATERAL[market.collateral_symbol]
            units = self._units(weth, self._cross_weth_usd(w))
            self._aave(w.address, "borrow", self._token(weth), units, 2, 0, w.address, kind="loop_borrow")
            self._aave(w.address, "supply", self._token(weth), units, w.address, 0, kind="loop_supply")

    def _post(self, w: Wallet, market: MorphoMarket, units: int) -> None:
        self._morpho(
            w.address, "supplyCollateral", market.params, units, w.address, b"", kind="morpho_supplyCollateral"
        )

    def _loop(self, w: Wallet) -> None:
        """Each round: borrow WETH in e-mode, "swap" it for stETH of the same USD value, wrap, supply the wstETH."""
        weth, steth = self._token("WETH"), self.lst.base_token
        for usd in self._loop_borrows(w):
            borrowed = self._units("WETH", usd)
            staked = self._units(LST.base, usd)
            self._aave(w.address, "borrow", weth, borrowed, 2, 0, w.address, kind="loop_borrow")
            self._act(w.address, self.erc20, weth, "transfer", SWAP_SINK, borrowed, kind="loop_swap")
            self.builder.call(w.address, self.mint_abi, steth, "mint", staked)
            self._approve(w.address, steth, self.lst.token)
            self._act(w.address, self.lst_abi, self.lst.token, "wrap", staked, kind="loop_wrap")
            wrapped = staked * WAD // self.lst_rate  # DevnetWstETH.getWstETHByStETH
            self._aave(w.address, "supply", self.lst.token, wrapped, w.address, 0, kind="loop_supply")

    # -- replay ----------------------------------------------------------------------------------------------
    def aave_accounts(self) -> dict[str, tuple[int, ...]]:
        """getUserAccountData of every wallet with a debt plan, at the latest block."""
        borrowers = [w.address for w in self.wallets if w.debt_symbol]
        raw = self.rpc.batch([eth_call(self.aave.pool, self.pool_abi, "getUserAccountData", a) for a in borrowers])
        return {a: tuple(self.pool_abi.decode("getUserAccountData", r)) for a, r in zip(borrowers, raw, strict=True)}

    def step(self, row: dict[str, int], advance_s: int) -> None:
        self.set_prices(row, advance_s - ACTION_DELAY_S)
        self.accounts = self.aave_accounts()
        self._liquidate_aave()
        self._liquidate_morpho()
        self._behave()
        self._mine_actions()

    def _liquidate_aave(self) -> None:
        unhealthy = [a for a, account in self.accounts.items() if account[5] < HF_ONE]
        if not unhealthy:
            return
        symbols = list(self.aave.reserves)
        calls = [
            eth_call(self.aave.data_provider, self.data_abi, "getUserReserveData", self._token(s), a)
            for a in unhealthy
            for s in symbols
        ]
        raw = self.rpc.batch(calls)
        for i, user in enumerate(unhealthy):
            best_collateral: tuple[str | None, float] = (None, 0.0)
            best_debt: tuple[str | None, float] = (None, 0.0)
            for j, symbol in enumerate(symbols):
                data = self.data_abi.decode("getUserReserveData", raw[i * len(symbols) + j])
                usd_per_unit = self.prices[symbol] / 10 ** self.specs[symbol].decimals
                if data[8] and data[0] * usd_per_unit > best_collateral[1]:
                    best_collateral = (symbol, data[0] * usd_per_unit)
                if data[2] * usd_per_unit > best_debt[1]:
                    best_debt = (symbol, data[2] * usd_per_unit)
            collateral, debt = best_collateral[0], best_debt[0]
            if collateral is None or debt is None:
                continue
            debt_units = int(best_debt[1] / (self.prices[debt] / 10 ** self.specs[debt].decimals))
            self._fund(KEEPER, debt, debt_units + 10)
            self._aave(
                KEEPER,
                "liquidationCall",
                self._token(collateral),
                self._token(debt),
                user,
                MAX_UINT,
                False,
                kind="liquidationCall",
            )

    def _liquidate_morpho(self) -> None:
        """Liquidates every unhealthy Morpho borrower, and notes each healthy one's (health, debt) for `_behave`."""
        self.morpho_health, self.morpho_closed = {}, {}
        borrowers = [
            (w.address, w.morpho_market)
            for w in self.wallets
            if w.morpho_market is not None and w.behaviour != "morpho_supplier"
        ]
        if not borrowers:
            return
        markets = self.morpho.markets
        oracle_abi = load_abi("morpho-blue", "IOracle")
        calls: list[tuple[str, list[Any]]] = []
        for market in markets:
            calls.append(eth_call(self.morpho.morpho, self.morpho_abi, "market", market.market_id))
            calls.append(eth_call(market.oracle, oracle_abi, "price"))
        for address, index in borrowers:
            calls.append(eth_call(self.morpho.morpho, self.morpho_abi, "position", markets[index].market_id, address))
        raw = self.rpc.batch(calls)
        state = [
            (self.morpho_abi.decode("market", raw[2 * k])[0], oracle_abi.decode("price", raw[2 * k + 1])[0])
            for k in range(len(markets))
        ]
        self.morpho_prices = [price for _, price in state]
        for (address, index), item in zip(borrowers, raw[2 * len(markets) :], strict=True):
            _, borrow_shares, collateral = self.morpho_abi.decode("position", item)[0]
            if borrow_shares == 0:
                self.morpho_closed[address] = collateral
                continue
            market_state, price = state[index]
            market = markets[index]
            total_borrow_assets, total_borrow_shares = market_state[2], market_state[3]
            # SharesMathLib.toAssetsUp with Morpho's virtual shares (1e6) and assets (1).
            borrowed = -(-borrow_shares * (total_borrow_assets + 1) // (total_borrow_shares + 10**6))
            max_borrow = collateral * price // 10**36 * market.lltv // WAD
            if borrowed <= max_borrow:
                self.morpho_health[address] = (max_borrow / borrowed, borrowed)
                continue
            incentive = min(1.15, 1 / (1 - 0.3 * (1 - market.lltv / WAD)))
            repay_for_all_collateral = collateral * price / 10**36 / incentive
            self._fund(KEEPER, market.loan_symbol, borrowed * 2 + 10)
            if repay_for_all_collateral > borrowed * 1.02:
                args: tuple[Any, ...] = (market.params, address, 0, borrow_shares, b"")
            else:
                args = (market.params, address, collateral, 0, b"")
            self._morpho(KEEPER, "liquidate", *args, kind="morpho_liquidate")

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
