"""Deploys the Compound V3 Comet stand-in (chainrisk's own Solidity, behind a transparent proxy) on the devnet and
drives a small population on it: suppliers, borrowers at various health, base and collateral transfers, repayments
and withdrawals, months of interest, prices replayed on settable feeds, and a keeper that absorbs and buys
collateral. Returns the manifest section the main devnet will carry under "compound_v3"."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from chainrisk.abi import Abi, eth_call, keccak, load_abi
from chainrisk.devnet.aave import deploy_tokens_and_feeds
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.prices import FEED_DECIMALS, load_price_path, parse_start
from chainrisk.devnet.toolchain import CompiledContract, aave_artifact, compiled_contracts, standin_contracts

LABEL = "Compound V3 Comet stand-in (chainrisk's own Solidity, not Compound's bytecode)"
COMET = load_abi("compound-v3", "IComet")
ERC20 = load_abi("erc20", "IERC20Detailed")
#: Absorbs and buys collateral (Comet's keepers are permissionless).
KEEPER = "0x000000000000000000000000000000000000c0e7"
#: Admin of the market's proxy: a transparent proxy refuses its admin's ordinary calls, so no user is the admin.
PROXY_ADMIN = "0x0000000000000000000000000000000000ad0117"
#: Supplies the base each borrower draws, at this utilization (with the suppliers' base on top).
LIQUIDITY_PROVIDER = "0x00000000000000000000000000000000000011d0"
TARGET_UTILIZATION = 0.9
#: Suppliers put this share of their size in, so the market's utilization stays near the target.
SUPPLIER_SHARE = 0.1
#: Reserves the market starts with (Compound's launch proposals seed each market's reserves likewise).
SEED_RESERVES_USDC = 50_000
#: The wstETH-like collateral is a plain token priced at stETH's history times this rate (a devnet choice, near
#: Lido's wstETH/stETH rate in 2022).
WSTETH_RATE = 1.09
#: Feed symbol -> the hourly USD history it replays (shared/data/prices/hourly_usd).
PRICE_SOURCES = {"USDC": "USDC", "WETH": "WETH", "WBTC": "WBTC", "LINK": "LINK", "stETH": "stETH"}
FACTOR = 10**18
SECONDS_PER_YEAR = 31_536_000
MAX_UINT = 2**256 - 1
#: Seconds between a step's actions and the keeper's round.
KEEPER_DELAY_S = 12


@dataclass(frozen=True)
class Collateral:
    symbol: str  #: token symbol
    decimals: int  #: token decimals
    borrow_cf: float  #: borrowCollateralFactor
    liquidate_cf: float  #: liquidateCollateralFactor
    liquidation_factor: float  #: share of value credited at absorb
    supply_cap: int  #: whole tokens


#: Close to cUSDCv3 on Ethereum: WETH 0.83 / 0.90 / 0.95 and LINK 0.79 / 0.85 / 0.93 as compound-finance/comet's
#: deployments/mainnet/usdc configuration and migrations set them; WBTC and wstETH near the market's later values.
COLLATERALS = (
    Collateral("WETH", 18, 0.83, 0.90, 0.95, 500_000),
    Collateral("WBTC", 8, 0.80, 0.85, 0.95, 20_000),
    Collateral("LINK", 18, 0.79, 0.85, 0.93, 5_000_000),
    Collateral("wstETH", 18, 0.82, 0.87, 0.92, 200_000),
)
#: cUSDCv3's launch rate model, store front factor and minimum borrow (deployments/mainnet/usdc/configuration.json);
#: per-year rates that the constructor divides into per-second ones.
RATES = {
    "supply_kink": 0.8,
    "supply_low": 0.0325,
    "supply_high": 0.4,
    "supply_base": 0.0,
    "borrow_kink": 0.8,
    "borrow_low": 0.035,
    "borrow_high": 0.25,
    "borrow_base": 0.015,
}
STORE_FRONT_PRICE_FACTOR = 0.5
TARGET_RESERVES_USDC = 5_000_000
BASE_BORROW_MIN_USDC = 100
BASE_MIN_FOR_REWARDS_USDC = 1_000_000


def _factor(x: float) -> int:
    return round(x * FACTOR)


@dataclass(frozen=True)
class CometDeployment:
    comet: str  #: the market users call (the proxy, or a bare market)
    implementation: str  #: the CometStandin behind the proxy (the market itself when bare)
    extension: str  #: CometStandinExt, the fallback's delegate
    proxy_admin: str | None  #: the proxy's admin (None when bare)
    base_token: str  #: USDC
    tokens: dict[str, str]  #: symbol -> token (base and collaterals)
    feeds: dict[str, str]  #: symbol -> SettableFeed the market prices it with (8 decimals)
    decimals: dict[str, int]  #: symbol -> token decimals


def _comet_code(code: Mapping[str, CompiledContract] | None) -> dict[str, CompiledContract]:
    """The stand-in's contracts, with `code`'s in place of those it names."""
    return dict(standin_contracts("compound_v3")) | dict(code or {})


def deploy_comet(
    builder: BlockBuilder,
    tokens: dict[str, str],
    feeds: dict[str, str],
    *,
    proxy: bool = True,
    code: Mapping[str, CompiledContract] | None = None,
) -> CometDeployment:
    """A USDC market on `tokens` and `feeds` (symbols USDC and COLLATERALS'): extension, market, and (with
    `proxy`) the proxy that initialises its storage; a bare market initialises its own. `code`: the contracts to
    deploy by the stand-in's names (CometStandin, CometStandinExt, CometStandinProxy), default the stand-in's own
    (tests/vectors/record_comet.py deploys compound-finance/comet's Comet and CometExt under those names)."""
    contracts = _comet_code(code)
    extension = builder.deploy(
        contracts["CometStandinExt"],
        (b"Compound USDC (stand-in)".ljust(32, b"\0"), b"cUSDCv3".ljust(32, b"\0")),
        label="CometStandinExt",
    )
    implementation = deploy_implementation(builder, tokens, feeds, extension, code=contracts)
    comet, admin = implementation, None
    if proxy:
        admin = PROXY_ADMIN
        init = bytes.fromhex(COMET.encode("initializeStorage")[2:])
        comet = builder.deploy(contracts["CometStandinProxy"], implementation, admin, init, label="CometStandinProxy")
    else:
        builder.call(DEPLOYER, COMET, comet, "initializeStorage")
        builder.mine()
    decimals = {"USDC": 6} | {c.symbol: c.decimals for c in COLLATERALS}
    symbols = ["USDC", *(c.symbol for c in COLLATERALS)]
    return CometDeployment(
        comet,
        implementation,
        extension,
        admin,
        tokens["USDC"],
        {s: tokens[s] for s in symbols},
        {s: feeds[s] for s in symbols},
        decimals,
    )


def deploy_implementation(
    builder: BlockBuilder,
    tokens: dict[str, str],
    feeds: dict[str, str],
    extension: str,
    collaterals: tuple[Collateral, ...] = COLLATERALS,
    code: Mapping[str, CompiledContract] | None = None,
) -> str:
    """A CometStandin (or `code`'s, as deploy_comet takes it) with the market's configuration and `collaterals`:
    what the proxy points at, or (another configuration) what governance upgrades it to, as Comet's configurator
    deploys a new implementation for a new asset configuration."""
    per_year = {k: _factor(v) for k, v in RATES.items()}
    config = (
        DEPLOYER,
        DEPLOYER,
        tokens["USDC"],
        feeds["USDC"],
        extension,
        per_year["supply_kink"],
        per_year["supply_low"],
        per_year["supply_high"],
        per_year["supply_base"],
        per_year["borrow_kink"],
        per_year["borrow_low"],
        per_year["borrow_high"],
        per_year["borrow_base"],
        _factor(STORE_FRONT_PRICE_FACTOR),
        10**15,
        0,
        0,
        BASE_MIN_FOR_REWARDS_USDC * 10**6,
        BASE_BORROW_MIN_USDC * 10**6,
        TARGET_RESERVES_USDC * 10**6,
        [
            (
                tokens[c.symbol],
                feeds[c.symbol],
                c.decimals,
                _factor(c.borrow_cf),
                _factor(c.liquidate_cf),
                _factor(c.liquidation_factor),
                c.supply_cap * 10**c.decimals,
            )
            for c in collaterals
        ],
    )
    address: str = builder.deploy(_comet_code(code)["CometStandin"], config, label="CometStandin")
    return address


def deploy_usd_oracle(builder: BlockBuilder, deployment: CometDeployment) -> str:
    """An AaveOracle (from @aave/core-v3) over the market's feeds: the USD source the adapter's `usd_oracle` reads.
    Its constructor never calls the addresses provider, so none is deployed."""
    symbols = list(deployment.tokens)
    return builder.deploy(
        aave_artifact("AaveOracle"),
        DEPLOYER,
        [deployment.tokens[s] for s in symbols],
        [deployment.feeds[s] for s in symbols],
        "0x" + "0" * 40,
        "0x" + "0" * 40,
        10**FEED_DECIMALS,
        label="AaveOracle (USD source)",
    )


def feed_answers(row: dict[str, Any]) -> dict[str, int]:
    """The feed answers of one price-path row: its base feeds, and the wstETH-like token at stETH x WSTETH_RATE."""
    answers = {s: int(row[s]) for s in ("USDC", "WETH", "WBTC", "LINK")}
    answers["wstETH"] = round(int(row["stETH"]) * WSTETH_RATE)
    return answers


@dataclass
class Wallet:
    address: str  #: lowercase hex
    kind: str  #: supplier, borrower or holder (collateral only)
    assets: list[str]  #: collateral symbols (borrowers, holders)
    size_usd: float  #: position size
    target_health: float  #: borrowers: liquidation capacity over debt at opening
    opens_at: float  #: when in the window it opens its position (0 = before the replay; fraction of the window)


@dataclass
class History:
    actions: Counter[str] = field(default_factory=Counter)  #: transactions sent, by kind
    absorbed: list[str] = field(default_factory=list)  #: accounts the keeper absorbed
    bought: int = 0  #: buyCollateral calls that went through
    steps: int = 0  #: price steps driven


def plan_wallets(n: int, seed: int) -> list[Wallet]:
    """Suppliers (a third), borrowers at health targets from reckless (1.03-1.15) to prudent (2-5), and holders of
    collateral that never borrow; sizes Pareto-distributed (alpha 1.16) from $1,000, capped at $2M. Two in five
    open before the replay, the others at a uniform time within it, so positions of every age are live at its end."""
    rng = np.random.default_rng(seed)
    wallets = []
    symbols = [c.symbol for c in COLLATERALS]
    for i in range(n):
        address = "0x" + keccak(f"chainrisk compound-v3 wallet {seed} {i}".encode())[-20:].hex()
        kind = str(rng.choice(["supplier", "borrower", "holder"], p=[0.35, 0.55, 0.10]))
        size = float(min(1_000 * (1 + rng.pareto(1.16)), 2_000_000))
        assets = [str(a) for a in rng.choice(symbols, size=int(rng.integers(1, 3)), replace=False)]
        band = rng.choice(3, p=[0.3, 0.4, 0.3])
        target = float(rng.uniform(*((1.03, 1.15), (1.15, 2.0), (2.0, 5.0))[band]))
        opens_at = 0.0 if rng.random() < 0.4 else float(rng.uniform(0, 1))
        wallets.append(Wallet(address, kind, assets if kind != "supplier" else [], size, target, opens_at))
    return wallets


class CometPopulation:
    """Drives wallets and the keeper against a deployed market. `fund(who, symbol, amount)` queues what gives a
    wallet tokens (default: the open mint of the devnet's test tokens)."""

    def __init__(
        self,
        builder: BlockBuilder,
        deployment: CometDeployment,
        wallets: list[Wallet],
        prices: dict[str, int],
        seed: int,
        fund: Callable[[str, str, int], None] | None = None,
    ) -> None:
        self.builder = builder
        self.rpc = builder.rpc
        self.d = deployment
        self.wallets = wallets
        self.prices = dict(prices)
        self.rng = np.random.default_rng(seed + 1)
        self.feed_abi = Abi(compiled_contracts()["SettableFeed"].abi)
        self.mint_abi = Abi(aave_artifact("MintableERC20").abi)
        self.fund = fund or self._mint
        self.history = History()
        self.approved: set[tuple[str, str]] = set()
        self.recipients: list[str] = []
        self.opened: list[Wallet] = []
        self.specs = {c.symbol: c for c in COLLATERALS}

    # -- helpers ---------------------------------------------------------------------------------------------
    def _mint(self, who: str, symbol: str, amount: int) -> None:
        self.builder.call(who, self.mint_abi, self.d.tokens[symbol], "mint", amount)

    def _units(self, symbol: str, usd: float) -> int:
        return max(1, int(usd / (self.prices[symbol] / 10**FEED_DECIMALS) * 10 ** self.d.decimals[symbol]))

    def _send(self, who: str, fn: str, *args: Any, kind: str) -> None:
        self.builder.send(who, self.d.comet, COMET.encode(fn, *args), kind, required=False)
        self.history.actions[kind] += 1

    def _approve(self, who: str, symbol: str) -> None:
        if (who, symbol) not in self.approved:
            self.builder.call(who, ERC20, self.d.tokens[symbol], "approve", self.d.comet, MAX_UINT)
            self.approved.add((who, symbol))

    def _supply(self, who: str, symbol: str, amount: int, kind: str) -> None:
        self.fund(who, symbol, amount)
        self._approve(who, symbol)
        self._send(who, "supply", self.d.tokens[symbol], amount, kind=kind)

    def _recipient(self) -> str:
        """A fresh wallet that receives a transfer (its only event is the one naming it as the receiver)."""
        address = "0x" + keccak(f"chainrisk compound-v3 recipient {len(self.recipients)}".encode())[-20:].hex()
        self.recipients.append(address)
        return address

    # -- phases ----------------------------------------------------------------------------------------------
    def open_positions(self) -> None:
        """The positions that open before the replay."""
        for w in self.wallets:
            if w.opens_at == 0:
                self._open(w)
        self.builder.mine(60)

    def _borrow(self, w: Wallet) -> int:
        """Base units that put the wallet at its health target, capped just under the borrow factors' limit (a
        borrow must stay collateralized); 0 below the market's minimum borrow."""
        capacity_usd = sum(w.size_usd / len(w.assets) * self.specs[s].liquidate_cf for s in w.assets)
        limit_usd = sum(w.size_usd / len(w.assets) * self.specs[s].borrow_cf for s in w.assets)
        borrow_usd = min(capacity_usd / w.target_health, limit_usd * 0.995)
        return self._units("USDC", borrow_usd) if borrow_usd >= BASE_BORROW_MIN_USDC * 1.5 else 0

    def _open(self, w: Wallet) -> None:
        """Supply (suppliers), or collateral and then the borrow in the same block (borrowers, holders); the
        liquidity provider supplies each borrow's share of base at the target utilization just before it."""
        self.opened.append(w)
        if w.kind == "supplier":
            self._supply(w.address, "USDC", self._units("USDC", w.size_usd * SUPPLIER_SHARE), "supply base")
            return
        for symbol in w.assets:
            self._supply(w.address, symbol, self._units(symbol, w.size_usd / len(w.assets)), "supply collateral")
        amount = self._borrow(w) if w.kind == "borrower" else 0
        if amount:
            self._supply(LIQUIDITY_PROVIDER, "USDC", int(amount / TARGET_UTILIZATION), "supply base")
            self._send(w.address, "withdraw", self.d.base_token, amount, kind="borrow")

    def replay(self, path: pl.DataFrame, step_s: int) -> None:
        """Each row of `path` (see load_price_path): new feed answers, then `step`, then the keeper's round."""
        for k, row in enumerate(path.iter_rows(named=True)):
            answers = feed_answers(row)
            for symbol, answer in answers.items():
                self.builder.call(DEPLOYER, self.feed_abi, self.d.feeds[symbol], "setAnswer", answer)
            self.step(k / path.height, (k + 1) / path.height, answers)
            self.builder.mine(step_s - KEEPER_DELAY_S)
            self.keeper_round()

    def step(self, start: float, end: float, prices: dict[str, int]) -> None:
        """Queues one step of the window [start, end) (fractions of it) at feed answers `prices`: the wallets whose
        time has come open, and about one in eight open ones acts. The caller mines, then calls keeper_round."""
        self.prices = dict(prices)
        self.history.steps += 1
        for w in self.wallets:
            if start < w.opens_at <= end:
                self._open(w)
        self._act()

    def _act(self) -> None:
        if not self.opened:
            return
        active = self.rng.choice(len(self.opened), size=max(1, len(self.opened) // 8), replace=False)
        for i in sorted(int(k) for k in active):
            w = self.opened[i]
            roll = float(self.rng.random())
            if w.kind == "supplier":
                usdc = self._units("USDC", w.size_usd * SUPPLIER_SHARE * float(self.rng.uniform(0.05, 0.3)))
                if roll < 0.4:
                    self._send(w.address, "withdraw", self.d.base_token, usdc, kind="withdraw base")
                elif roll < 0.7:
                    self._send(w.address, "transfer", self._recipient(), usdc, kind="transfer base")
                else:
                    self._supply(w.address, "USDC", usdc, "supply base")
            elif w.kind == "borrower":
                usdc = self._units("USDC", w.size_usd * float(self.rng.uniform(0.02, 0.1)))
                collateral = w.assets[0]
                if roll < 0.3:
                    self._supply(w.address, "USDC", usdc, "repay")
                elif roll < 0.45:
                    self._send(w.address, "withdraw", self.d.base_token, usdc, kind="borrow")
                elif roll < 0.6:
                    # A borrow made by transfer: the borrower's side emits no event (Comet emits Transfer only
                    # for supply moving), so only its collateral events reveal it.
                    self._send(w.address, "transfer", self._recipient(), usdc, kind="borrow by transfer")
                elif roll < 0.75:
                    amount = self._units(collateral, w.size_usd * 0.02)
                    self._send(
                        w.address,
                        "transferAsset",
                        self._recipient(),
                        self.d.tokens[collateral],
                        amount,
                        kind="transfer collateral",
                    )
                elif roll < 0.85:
                    amount = self._units(collateral, w.size_usd * 0.02)
                    self._send(w.address, "withdraw", self.d.tokens[collateral], amount, kind="withdraw collateral")
                else:
                    amount = self._units(collateral, w.size_usd * 0.05)
                    self._supply(w.address, collateral, amount, "supply collateral")
            elif roll < 0.5:
                amount = self._units(w.assets[0], w.size_usd * 0.1)
                self._send(w.address, "withdraw", self.d.tokens[w.assets[0]], amount, kind="withdraw collateral")

    def keeper_round(self) -> None:
        """Absorbs every account the market calls liquidatable, buys discounted collateral while reserves are under
        target, and accrues (so the block's stored indices are current)."""
        borrowers = [w.address for w in self.wallets if w.kind == "borrower"]
        raw = self.rpc.batch([eth_call(self.d.comet, COMET, "isLiquidatable", a) for a in borrowers])
        underwater = [a for a, r in zip(borrowers, raw, strict=True) if COMET.decode("isLiquidatable", r)[0]]
        if underwater:
            self._send(KEEPER, "absorb", KEEPER, underwater, kind="absorb")
            self.history.absorbed.extend(underwater)
        self._buy_collateral()
        self._send(KEEPER, "accrueAccount", KEEPER, kind="accrue")
        receipts = self.builder.mine(KEEPER_DELAY_S)
        self.history.bought += sum(1 for r in receipts if r.ok and r.tx.label == "buy collateral")

    def _buy_collateral(self) -> None:
        """Half of each asset's collateral reserves, paid at the store front's quote, while reserves are below
        target (Comet refuses to sell otherwise)."""
        calls = [eth_call(self.d.comet, COMET, "getReserves")]
        calls += [eth_call(self.d.comet, COMET, "getCollateralReserves", self.d.tokens[c.symbol]) for c in COLLATERALS]
        raw = self.rpc.batch(calls)
        if COMET.decode("getReserves", raw[0])[0] >= TARGET_RESERVES_USDC * 10**6:
            return
        for spec, item in zip(COLLATERALS, raw[1:], strict=True):
            held = int(COMET.decode("getCollateralReserves", item)[0])
            if held == 0:
                continue
            value_usd = held / 10**spec.decimals * self.prices[spec.symbol] / 10**FEED_DECIMALS
            # Pay for about half at the undiscounted price: the discount then buys a bit more, never all of it.
            usdc = self._units("USDC", value_usd / 2)
            self._supply_free(KEEPER, usdc)
            self._send(KEEPER, "buyCollateral", self.d.tokens[spec.symbol], 0, usdc, KEEPER, kind="buy collateral")

    def _supply_free(self, who: str, usdc: int) -> None:
        self.fund(who, "USDC", usdc)
        self._approve(who, "USDC")


@dataclass(frozen=True)
class CometDevnetOptions:
    wallets: int = 60  #: population size
    days: float = 120  #: replayed price window
    step_hours: int = 24  #: hours between price steps
    seed: int = 7  #: RNG seed: same seed, same chain
    start: str = "2022-05-01"  #: first day of the window (crosses the May and June 2022 crashes)
    bare: bool = True  #: also deploy a bare market (no proxy) with a few positions


def build_compound_v3(
    builder: BlockBuilder, options: CometDevnetOptions, code: Mapping[str, CompiledContract] | None = None
) -> dict[str, Any]:
    """Deploys tokens, feeds, a USD oracle and the stand-in market (or `code`'s: deploy_comet) on the node `builder`
    drives, runs the population over the price window, and returns the manifest section (addresses, wallets, what
    happened)."""
    path = load_price_path(PRICE_SOURCES, parse_start(options.start), options.days, options.step_hours)
    initial = feed_answers(path.row(0, named=True))
    deployment_block = int(builder.rpc.call("eth_blockNumber"), 16) + 1
    decimals = {"USDC": 6} | {c.symbol: c.decimals for c in COLLATERALS}
    tokens, feeds = deploy_tokens_and_feeds(builder, decimals, initial)
    market = deploy_comet(builder, tokens, feeds, code=code)
    oracle = deploy_usd_oracle(builder, market)
    mint = Abi(aave_artifact("MintableERC20").abi)
    builder.call(DEPLOYER, mint, tokens["USDC"], "mint", market.comet, SEED_RESERVES_USDC * 10**6)
    wallets = plan_wallets(options.wallets, options.seed)
    population = CometPopulation(builder, market, wallets, initial, options.seed)
    population.open_positions()
    bare, few = None, []
    if options.bare:
        bare = deploy_comet(builder, tokens, feeds, proxy=False, code=code)
        few = [replace(w, opens_at=0.0) for w in plan_wallets(8, options.seed + 100)]
        CometPopulation(builder, bare, few, initial, options.seed + 100).open_positions()
    population.replay(path.slice(1), options.step_hours * 3600)
    section = manifest_section(market, oracle, population, deployment_block)
    section["bare_comet"] = bare.comet if bare else None
    section["bare_wallets"] = [w.address for w in few]
    section["history"]["window"] = [str(path["time"][0]), str(path["time"][-1])]
    return section


def manifest_section(
    market: CometDeployment, usd_oracle: str, population: CometPopulation, deployment_block: int
) -> dict[str, Any]:
    """What the devnet manifest carries under "compound_v3": the stand-in's label, addresses, wallets and what the
    population did (its own transactions' reverts only, when the builder also drives other protocols)."""
    history = population.history
    return {
        "label": LABEL,
        "stand_in": True,
        "comet": market.comet,
        "implementation": market.implementation,
        "extension": market.extension,
        "proxy_admin": market.proxy_admin,
        "base_token": market.base_token,
        "tokens": market.tokens,
        "feeds": market.feeds,
        "decimals": market.decimals,
        "usd_oracle": usd_oracle,
        "governor": DEPLOYER,
        "keeper": KEEPER,
        "liquidity_provider": LIQUIDITY_PROVIDER,
        "deployment_block": deployment_block,
        "wallets": [w.address for w in population.wallets],
        "kinds": {w.address: w.kind for w in population.wallets},
        "recipients": population.recipients,
        "history": {
            "actions": dict(sorted(history.actions.items())),
            "reverted": {k: n for k, n in sorted(population.builder.reverted.items()) if k in history.actions},
            "absorbed": history.absorbed,
            "collateral_buys": history.bought,
            "price_steps": history.steps,
        },
    }
