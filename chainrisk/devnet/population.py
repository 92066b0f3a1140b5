"""Devnet wallet population: opens heavy-tailed positions, replays real prices, and runs a liquidation keeper."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from eth_utils.crypto import keccak

from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.devnet.aave import RESERVES, AaveDeployment, ReserveSpec
from chainrisk.devnet.morpho import WAD, MorphoDeployment, MorphoMarket
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.prices import FEED_DECIMALS
from chainrisk.devnet.toolchain import aave_artifact, compiled_contracts
from chainrisk.rpc import RpcClient

MAX_UINT = 2**256 - 1
HF_ONE = 10**18
KEEPER = "0x000000000000000000000000000000000000beef"
#: Seconds between the price-update block and the block with that step's actions and liquidations.
ACTION_DELAY_S = 12

#: Share of wallets per behaviour. Sizes are Pareto (alpha 1.16, the "80/20" tail) from a $1k floor.
BEHAVIOURS: dict[str, float] = {
    "aave_supplier": 0.22,
    "aave_borrower": 0.38,
    "aave_emode_looper": 0.10,
    "aave_isolated": 0.07,
    "morpho_supplier": 0.08,
    "morpho_borrower": 0.15,
}
#: Chance that an Aave borrower also borrows on Morpho (cross-protocol wallets).
CROSS_PROTOCOL_SHARE = 0.2
#: Chance per step that a wallet does a routine action (repay, withdraw, top up, transfer, toggle).
ROUTINE_ACTION_RATE = 0.015
#: Health factor under which attentive borrowers deleverage.
ATTENTIVE_TRIGGER_HF = 1.08


@dataclass
class Wallet:
    address: str  #: lowercase hex
    behaviour: str  #: key of BEHAVIOURS
    size_usd: float  #: collateral (or supply) value at opening
    target_hf: float  #: health factor aimed for at opening
    attentive: bool  #: deleverages when health gets close to 1
    collateral: dict[str, float]  #: symbol -> USD at opening (Aave)
    debt_symbol: str | None  #: Aave debt asset
    morpho_market: int | None  #: index into the Morpho markets
    collateral_off: str | None = None  #: Aave asset whose collateral use this wallet switched off


@dataclass
class History:
    """What the population did; written to the manifest for tests and the dashboard."""

    actions: Counter[str] = field(default_factory=Counter)  #: successful actions by kind
    reverted: Counter[str] = field(default_factory=Counter)  #: refused actions by kind


def wallet_address(seed: int, index: int) -> str:
    return "0x" + keccak(f"chainrisk-devnet:{seed}:{index}".encode())[-20:].hex()


def _units(usd: float, price: int, decimals: int) -> int:
    """Token units worth `usd` at a feed price with FEED_DECIMALS."""
    return int(usd * 10**FEED_DECIMALS / price * 10**decimals)


def plan_wallets(
    n: int, seed: int, morpho_markets: list[MorphoMarket], specs: tuple[ReserveSpec, ...] = RESERVES
) -> list[Wallet]:
    """Draws behaviours, sizes, targets and assets; the same seed gives the same plan."""
    rng = np.random.default_rng(seed)
    kinds = list(BEHAVIOURS)
    behaviour = rng.choice(kinds, size=n, p=np.array(list(BEHAVIOURS.values())))
    sizes = np.minimum(1_000 * (1 + rng.pareto(1.16, size=n)), 25_000_000)
    # Health targets: a crowded band just above 1, a middle and a safe tail.
    band = rng.choice(3, size=n, p=[0.25, 0.5, 0.25])
    targets = np.where(
        band == 0, rng.uniform(1.03, 1.15, n), np.where(band == 1, rng.uniform(1.15, 2.0, n), rng.uniform(2.0, 6.0, n))
    )
    attentive = rng.random(n) < 0.5
    volatile = ["WETH", "WBTC", "wstETH"]
    stables = ["USDC", "DAI", "USDT"]
    by_symbol = {s.symbol: s for s in specs}
    wallets = []
    for i in range(n):
        kind = str(behaviour[i])
        size = float(sizes[i])
        collateral: dict[str, float] = {}
        debt: str | None = None
        market: int | None = None
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
            if rng.random() < CROSS_PROTOCOL_SHARE and morpho_markets:
                market = int(rng.integers(0, len(morpho_markets)))
        elif kind == "aave_emode_looper":
            collateral = {"wstETH": size}
            debt = "WETH"
        elif kind == "aave_isolated":
            collateral = {"LINK": size}
            debt = str(rng.choice(stables))
        elif kind in ("morpho_supplier", "morpho_borrower") and morpho_markets:
            market = int(rng.integers(0, len(morpho_markets)))
        wallets.append(
            Wallet(
                address=wallet_address(seed, i),
                behaviour=kind,
                size_usd=size,
                target_hf=float(targets[i]),
                attentive=bool(attentive[i]),
                collateral=collateral,
                debt_symbol=debt,
                morpho_market=market,
            )
        )
    return wallets


class Population:
    """Drives the wallets and the keeper against the deployed contracts."""

    def __init__(
        self, builder: BlockBuilder, aave: AaveDeployment, morpho: MorphoDeployment, wallets: list[Wallet], seed: int
    ) -> None:
        self.builder = builder
        self.rpc: RpcClient = builder.rpc
        self.aave = aave
        self.morpho = morpho
        self.wallets = wallets
        self.rng = np.random.default_rng(seed + 1)
        self.pool_abi = load_abi("aave-v3", "IPool")
        self.data_abi = load_abi("aave-v3", "AaveProtocolDataProvider")
        self.erc20 = load_abi("erc20", "IERC20Detailed")
        self.morpho_abi = load_abi("morpho-blue", "IMorpho")
        # Our SettableFeed and Aave's MintableERC20 (open mint), from the same builds that deployed them.
        self.feed_abi = Abi(compiled_contracts()["SettableFeed"].abi)
        self.mint_abi = Abi(aave_artifact("MintableERC20").abi)
        self.specs = {s.symbol: s for s in RESERVES}
        self.prices: dict[str, int] = {}  # feed answers now in force; set_prices keeps them current
        self.history = History()
        self.health: dict[str, int] = {}

    # -- helpers ---------------------------------------------------------------------------------------------
    def _token(self, symbol: str) -> str:
        return self.aave.reserves[symbol].asset

    def _units(self, symbol: str, usd: float) -> int:
        return max(_units(usd, self.prices[symbol], self.specs[symbol].decimals), 1)

    def _mint(self, who: str, symbol: str, amount: int) -> None:
        self.builder.call(who, self.mint_abi, self._token(symbol), "mint", amount)

    def _act(self, who: str, abi: Abi, to: str, fn: str, *args: Any, kind: str) -> None:
        self.builder.send(who, to, abi.encode(fn, *args), kind, required=False)

    def _aave(self, who: str, fn: str, *args: Any, kind: str) -> None:
        self._act(who, self.pool_abi, self.aave.pool, fn, *args, kind=kind)

    def _morpho(self, who: str, fn: str, *args: Any, kind: str) -> None:
        self._act(who, self.morpho_abi, self.morpho.morpho, fn, *args, kind=kind)

    def _mine_actions(self) -> None:
        for receipt in self.builder.mine(ACTION_DELAY_S):
            if receipt.ok:
                self.history.actions[receipt.tx.label] += 1
            else:
                self.history.reverted[receipt.tx.label] += 1

    def set_prices(self, row: dict[str, int], advance_s: int) -> None:
        """Moves every feed that changed, in one block `advance_s` after the last."""
        for symbol, reserve in self.aave.reserves.items():
            price = int(row[symbol])
            if self.prices.get(symbol) != price:
                self.builder.call(DEPLOYER, self.feed_abi, reserve.feed, "setAnswer", price)
            self.prices[symbol] = price
        self.builder.mine(advance_s)

    # -- opening ---------------------------------------------------------------------------------------------
    def open_positions(self) -> None:
        """Funds and approves, supplies, then borrows: three blocks, liquidity providers first."""
        pool, morpho = self.aave.pool, self.morpho.morpho
        approvals: set[tuple[str, str]] = set()

        def approve(who: str, symbol: str, spender: str) -> None:
            if (who, symbol + spender) not in approvals:
                self.builder.call(who, self.erc20, self._token(symbol), "approve", spender, MAX_UINT)
                approvals.add((who, symbol + spender))

        for symbol in self.specs:
            approve(KEEPER, symbol, pool)
            approve(KEEPER, symbol, morpho)
        aave_borrow_usd: defaultdict[str, float] = defaultdict(float)
        morpho_borrow_usd: defaultdict[int, float] = defaultdict(float)
        for w in self.wallets:
            for symbol, usd in w.collateral.items():
                self._mint(w.address, symbol, self._units(symbol, usd))
                approve(w.address, symbol, pool)
            if w.debt_symbol:
                approve(w.address, w.debt_symbol, pool)
                aave_borrow_usd[w.debt_symbol] += self._planned_aave_debt(w)
            if w.morpho_market is not None:
                market = self.morpho.markets[w.morpho_market]
                if w.behaviour == "morpho_supplier":
                    self._mint(w.address, market.loan_symbol, self._units(market.loan_symbol, w.size_usd))
                    approve(w.address, market.loan_symbol, morpho)
                else:
                    usd = self._morpho_collateral_usd(w)
                    self._mint(w.address, market.collateral_symbol, self._units(market.collateral_symbol, usd))
                    approve(w.address, market.collateral_symbol, morpho)
                    approve(w.address, market.loan_symbol, morpho)
                    morpho_borrow_usd[w.morpho_market] += usd * market.lltv / WAD / w.target_hf
        # Liquidity providers so that borrowing never outruns supply: utilisation near 75-80 %.
        aave_lps = {
            symbol: ("0x" + keccak(f"lp:aave:{symbol}".encode())[-20:].hex(), self._units(symbol, usd / 0.75))
            for symbol, usd in aave_borrow_usd.items()
        }
        morpho_lps = {
            index: (
                "0x" + keccak(f"lp:morpho:{index}".encode())[-20:].hex(),
                self._units(self.morpho.markets[index].loan_symbol, usd / 0.8),
            )
            for index, usd in morpho_borrow_usd.items()
        }
        for symbol, (lp, units) in aave_lps.items():
            self._mint(lp, symbol, units)
            approve(lp, symbol, pool)
        for index, (lp, units) in morpho_lps.items():
            self._mint(lp, self.morpho.markets[index].loan_symbol, units)
            approve(lp, self.morpho.markets[index].loan_symbol, morpho)
        self.builder.mine(ACTION_DELAY_S)

        for symbol, (lp, units) in aave_lps.items():
            self.builder.call(lp, self.pool_abi, pool, "supply", self._token(symbol), units, lp, 0)
        for index, (lp, units) in morpho_lps.items():
            self.builder.call(
                lp, self.morpho_abi, morpho, "supply", self.morpho.markets[index].params, units, 0, lp, b""
            )
        for w in self.wallets:
            if w.behaviour == "aave_emode_looper":
                self._aave(w.address, "setUserEMode", 1, kind="setUserEMode")
            for symbol, usd in w.collateral.items():
                units = self._units(symbol, usd)
                self._aave(w.address, "supply", self._token(symbol), units, w.address, 0, kind="supply")
            if w.behaviour == "aave_isolated":
                # Aave 3.0.2 never enables an isolated asset as collateral on supply
                # (ValidationLogic.validateAutomaticUseAsCollateral); the wallet opts in.
                self._aave(
                    w.address, "setUserUseReserveAsCollateral", self._token("LINK"), True, kind="enter_isolation"
                )
            if w.morpho_market is not None:
                market = self.morpho.markets[w.morpho_market]
                if w.behaviour == "morpho_supplier":
                    units = self._units(market.loan_symbol, w.size_usd)
                    self._morpho(w.address, "supply", market.params, units, 0, w.address, b"", kind="morpho_supply")
                else:
                    units = self._units(market.collateral_symbol, self._morpho_collateral_usd(w))
                    self._morpho(
                        w.address,
                        "supplyCollateral",
                        market.params,
                        units,
                        w.address,
                        b"",
                        kind="morpho_supplyCollateral",
                    )
        self._mine_actions()

        for w in self.wallets:
            if w.debt_symbol:
                units = self._units(w.debt_symbol, self._planned_aave_debt(w))
                self._aave(w.address, "borrow", self._token(w.debt_symbol), units, 2, 0, w.address, kind="borrow")
            if w.morpho_market is not None and w.behaviour != "morpho_supplier":
                market = self.morpho.markets[w.morpho_market]
                usd = self._morpho_collateral_usd(w) * market.lltv / WAD / w.target_hf
                units = self._units(market.loan_symbol, usd)
                self._morpho(w.address, "borrow", market.params, units, 0, w.address, w.address, kind="morpho_borrow")
        self._mine_actions()

    def _planned_aave_debt(self, w: Wallet) -> float:
        """Debt in USD for the target health, kept inside the borrowing power (LTV) Aave enforces."""
        emode = w.behaviour == "aave_emode_looper"
        by_lt = sum(usd * (9300 if emode else self.specs[s].liquidation_threshold) for s, usd in w.collateral.items())
        by_ltv = sum(usd * (9000 if emode else self.specs[s].ltv) for s, usd in w.collateral.items())
        return min(by_lt / 10_000 / w.target_hf, by_ltv / 10_000 * 0.99)

    def _morpho_collateral_usd(self, w: Wallet) -> float:
        return w.size_usd * (0.5 if w.behaviour.startswith("aave") else 1.0)

    # -- replay ----------------------------------------------------------------------------------------------
    def aave_health(self) -> dict[str, int]:
        """getUserAccountData.healthFactor of every wallet with a debt plan, at the latest block."""
        borrowers = [w.address for w in self.wallets if w.debt_symbol]
        raw = self.rpc.batch([eth_call(self.aave.pool, self.pool_abi, "getUserAccountData", a) for a in borrowers])
        return {a: self.pool_abi.decode("getUserAccountData", r)[5] for a, r in zip(borrowers, raw, strict=True)}

    def step(self, row: dict[str, int], advance_s: int) -> None:
        self.set_prices(row, advance_s - ACTION_DELAY_S)
        self.health = self.aave_health()
        self._liquidate_aave()
        self._liquidate_morpho()
        self._behave()
        self._mine_actions()

    def _liquidate_aave(self) -> None:
        unhealthy = [a for a, hf in self.health.items() if hf < HF_ONE]
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
            self._mint(KEEPER, debt, debt_units + 10)
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
        for (address, index), item in zip(borrowers, raw[2 * len(markets) :], strict=True):
            _, borrow_shares, collateral = self.morpho_abi.decode("position", item)[0]
            if borrow_shares == 0:
                continue
            market_state, price = state[index]
            market = markets[index]
            total_borrow_assets, total_borrow_shares = market_state[2], market_state[3]
            # SharesMathLib.toAssetsUp with Morpho's virtual shares (1e6) and assets (1).
            borrowed = -(-borrow_shares * (total_borrow_assets + 1) // (total_borrow_shares + 10**6))
            max_borrow = collateral * price // 10**36 * market.lltv // WAD
            if borrowed <= max_borrow:
                continue
            incentive = min(1.15, 1 / (1 - 0.3 * (1 - market.lltv / WAD)))
            repay_for_all_collateral = collateral * price / 10**36 / incentive
            self._mint(KEEPER, market.loan_symbol, borrowed * 2 + 10)
            if repay_for_all_collateral > borrowed * 1.02:
                args: tuple[Any, ...] = (market.params, address, 0, borrow_shares, b"")
            else:
                args = (market.params, address, collateral, 0, b"")
            self._morpho(KEEPER, "liquidate", *args, kind="morpho_liquidate")

    def _behave(self) -> None:
        for w in self.wallets:
            hf = self.health.get(w.address)
            if hf is not None and w.attentive and HF_ONE <= hf < ATTENTIVE_TRIGGER_HF * HF_ONE and w.debt_symbol:
                self._repay_share(w, 0.3, "deleverage_repay")
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
                    self._mint(w.address, symbol, units)
                    self._aave(w.address, "supply", self._token(symbol), units, w.address, 0, kind="supply")
            elif w.debt_symbol and hf != MAX_UINT:  # MAX_UINT: no debt left (repaid or liquidated)
                if roll < 0.5:
                    self._repay_share(w, 0.25, "repay")
                elif roll < 0.75 and hf is not None and hf > 2 * HF_ONE:
                    symbol = next(iter(w.collateral))
                    units = self._units(symbol, w.collateral[symbol] * 0.1)
                    self._aave(w.address, "withdraw", self._token(symbol), units, w.address, kind="withdraw")
                elif hf is not None and hf > int(w.target_hf * 1.3 * HF_ONE):
                    units = self._units(w.debt_symbol, self._planned_aave_debt(w) * 0.1)
                    self._aave(w.address, "borrow", self._token(w.debt_symbol), units, 2, 0, w.address, kind="borrow")

    def _repay_share(self, w: Wallet, share: float, kind: str) -> None:
        assert w.debt_symbol is not None
        units = self._units(w.debt_symbol, self._planned_aave_debt(w) * share)
        self._mint(w.address, w.debt_symbol, units)
        self._aave(w.address, "repay", self._token(w.debt_symbol), units, 2, w.address, kind=kind)

    def replay(self, path: pl.DataFrame, step_seconds: int) -> None:
        for row in path.iter_rows(named=True):
            if row["step"] == 0:
                continue
            self.step(row, step_seconds)
