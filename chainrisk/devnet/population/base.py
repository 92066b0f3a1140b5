"""The population's shared state and plumbing: ABIs, the prices in force, funding, approvals, sending actions and
counting what was mined, the plans' sizes in USD. Opening, the keeper and the personas build on it."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.devnet.aave import RESERVES, AaveDeployment
from chainrisk.devnet.morpho import ATOKEN_COLLATERAL, MorphoDeployment
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.population.plan import ACTION_DELAY_S, CROSS_LOOP_LTV_USE, KEEPER, MAX_UINT, Wallet, token_units
from chainrisk.devnet.toolchain import aave_artifact, compiled_contracts
from chainrisk.devnet.wrappers import LST, VAULT, LstDeployment, VaultDeployment, next_rate
from chainrisk.rpc import RpcClient
from chainrisk.units import WAD


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


class PopulationBase:
    """The wallets' shared state and plumbing against the deployed contracts."""

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
        return max(token_units(usd, self.prices[symbol], self.decimals[symbol]), 1)

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

    def aave_accounts(self) -> dict[str, tuple[int, ...]]:
        """getUserAccountData of every wallet with a debt plan, at the latest block."""
        borrowers = [w.address for w in self.wallets if w.debt_symbol]
        raw = self.rpc.batch([eth_call(self.aave.pool, self.pool_abi, "getUserAccountData", a) for a in borrowers])
        return {a: tuple(self.pool_abi.decode("getUserAccountData", r)) for a, r in zip(borrowers, raw, strict=True)}
