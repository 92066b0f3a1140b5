"""Records Aave V3 3.1-3.7 test vectors: real pool bytecode on anvil, its inputs and outputs as JSON.

Usage (not run by pytest or CI; needs node, npm and a local git copy of aave-dao/aave-v3-origin):

    .venv/bin/python -m tests.vectors.record_aave_versions --repo PATH/TO/aave-v3-origin.git \\
        [--scratch /tmp/aave-vectors] [--tags v3.1.0,v3.2.0,v3.3.0,v3.4.0,v3.5.0,v3.6.0,v3.7.0@fd1fbd91] \\
        [--only supply_caps]

3.7 has no tag yet: `v3.7.0@<commit>` compiles that commit of the main branch (fd1fbd91, 19 June 2026, the one
tests/data/aave_versions/v3_7.json was recorded from).

For each tag: compile its market (tests/vectors/aave_build.py), deploy it on a fresh anvil, open positions that
exercise what differs between versions (e-mode bitmaps and price source, ltvzero, isolation, siloed borrowing,
collateral toggles, 3.7's isolated e-mode, aToken transfers, months of accrual at odd rates, a price crash,
liquidations around the $2,000 / $1,000 rules, bad debt, then supply caps tried at their edge), and write
tests/data/aave_versions/v3_X.json: the raw state the pool reads (configuration words, indexes, rates, timestamps,
prices, e-mode data, user configuration, scaled balances, the tokens' scaled supplies and the treasury's share) and
what the contracts answer (getUserAccountData, normalized income/debt, balanceOf, liquidation events or reverts, the
largest supply a cap lets in).
Nothing of the fetched sources or their bytecode is written to the repository.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from chainrisk.abi import Abi, event_topic
from chainrisk.devnet.node import DEPLOYER, GENESIS_TIMESTAMP, free_port, start_anvil
from chainrisk.devnet.toolchain import aave_artifact, compiled_contracts
from chainrisk.protocols.aave_v3.account_versions import user_account_data
from chainrisk.protocols.aave_v3.liquidation import _no_collateral_left, collateral_to_liquidate, liquidation_call
from chainrisk.protocols.aave_v3.maths import normalized_income
from chainrisk.protocols.aave_v3.version import PoolVersion
from chainrisk.rpc import RpcClient
from tests.test_aave_versions import _balances, _market
from tests.vectors.aave_build import Artifact, Build, compile_tag

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "aave_versions"
MAX_UINT = 2**256 - 1
ZERO = "0x" + "00" * 20
TREASURY = "0x00000000000000000000000000000000000a11ce"
LIQUIDATOR = "0x0000000000000000000000000000000000001100"
LP = "0x0000000000000000000000000000000000001000"
GAS = 15_000_000
DAY = 86_400
#: Chainlink-style feeds and the AaveOracle base unit: 8 decimals.
BASE_UNIT = 10**8


@dataclass(frozen=True)
class Asset:
    symbol: str
    decimals: int
    price: int  #: 8 decimals, deliberately odd
    ltv: int
    threshold: int
    bonus: int
    protocol_fee: int  #: bps of the bonus
    rates: tuple[int, int, int, int]  #: optimal usage, base, slope1, slope2 (bps), DefaultReserveInterestRateStrategyV2
    debt_ceiling: int = 0  #: isolation, USD cents
    siloed: bool = False
    borrowable_in_isolation: bool = False


ASSETS = (
    Asset("WETH", 18, 241_738_291_000, 8050, 8300, 10500, 1000, (8000, 0, 330, 8000)),
    Asset("wstETH", 18, 284_519_473_311, 7850, 8100, 10600, 1000, (4500, 25, 450, 8000)),
    Asset("WBTC", 8, 6_123_456_780_000, 7300, 7800, 10500, 777, (4500, 0, 400, 30000)),
    Asset("USDC", 6, 99_987_000, 7700, 8000, 10450, 1000, (9000, 0, 400, 6000), borrowable_in_isolation=True),
    Asset("DAI", 18, 100_021_000, 7700, 8000, 10500, 0, (8000, 317, 713, 29700), borrowable_in_isolation=True),
    Asset("LINK", 18, 1_337_700_000, 5300, 6800, 10700, 1000, (4500, 0, 700, 30000), debt_ceiling=500_000_00),
    Asset("SILO", 18, 420_420_000, 4000, 5000, 11000, 500, (4500, 0, 700, 30000), siloed=True),
    Asset("EMX", 18, 777_000_000, 0, 0, 0, 1000, (4500, 0, 700, 30000)),
)
#: A price source only (3.0/3.1 e-mode category 2 names it): an oracle asset that is no reserve.
PEG_PRICE = 99_950_000


@dataclass(frozen=True)
class EMode:
    category: int
    ltv: int
    threshold: int
    bonus: int
    label: str
    members: tuple[str, ...]  #: collateral and borrowable (3.0/3.1: the assets' category)
    ltvzero: tuple[str, ...] = ()  #: 3.6: LTV 0 inside the category, set after the early positions borrowed
    borrowable_only: tuple[str, ...] = ()  #: borrowable, not collateral
    since_minor: int = 0  #: first version the category is set up in
    isolate_late: bool = False  #: 3.7: flagged isolated once the late positions are open (setEModeCategoryIsolated)


EMODES = (
    EMode(1, 9000, 9300, 10100, "ETH correlated", ("WETH", "wstETH")),
    EMode(2, 9300, 9500, 10100, "USD", ("USDC", "DAI"), ltvzero=("DAI",)),
    # 3.6: EMX has no LTV or threshold of its own, it is collateral only inside this category.
    EMode(3, 7000, 7500, 10500, "EMX only", ("EMX",), borrowable_only=("USDC",), since_minor=6),
    # 3.7: entered with LINK collateral outside it, then isolated: LINK keeps its threshold and lends nothing.
    EMode(
        4, 8000, 8500, 10400, "ETH, isolated", ("WETH",), borrowable_only=("USDC",), since_minor=7, isolate_late=True
    ),
)


def user(n: int) -> str:
    return f"0x{0xC0000 + n:040x}"


@dataclass
class Chain:
    """The anvil node, the compiled tag and the deployed market."""

    rpc: RpcClient
    build: Build
    timestamp: int = GENESIS_TIMESTAMP
    nonces: dict[str, int] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)  #: pool, configurator, oracle, provider, tokens...
    abis: dict[str, Abi] = field(default_factory=dict)

    @property
    def minor(self) -> int:
        return int(self.build.tag.split("@")[0].split(".")[1])

    def abi(self, name: str) -> Abi:
        if name not in self.abis:
            self.abis[name] = Abi(self.build.contracts[name].abi)
        return self.abis[name]

    def send(self, sender: str, to: str | None, data: str) -> str:
        key = sender.lower()
        if key not in self.nonces:
            self.nonces[key] = int(self.rpc.call("eth_getTransactionCount", [sender, "pending"]), 16)
        payload: dict[str, Any] = {"from": sender, "data": data, "gas": hex(GAS), "gasPrice": "0x0"}
        payload["nonce"] = hex(self.nonces[key])
        self.nonces[key] += 1
        if to is not None:
            payload["to"] = to
        tx_hash: str = self.rpc.call("eth_sendTransaction", [payload])
        return tx_hash

    def mine(self, advance_s: int = 1) -> int:
        self.timestamp += advance_s
        self.rpc.call("evm_mine", [self.timestamp])
        return int(self.rpc.call("eth_blockNumber"), 16)

    def receipt(self, tx_hash: str) -> dict[str, Any]:
        receipt: dict[str, Any] = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
        return receipt

    def transact(self, sender: str, abi: Abi, to: str, fn: str, *args: Any) -> None:
        """One call mined in its own block (1 s later); it must succeed."""
        tx = self.send(sender, to, abi.encode(fn, *args))
        self.mine()
        if int(self.receipt(tx)["status"], 16) != 1:
            raise RuntimeError(f"{fn}{args!r} reverted: {self.revert_reason(tx)}")

    def batch(self, calls: list[tuple[str, Abi, str, str, tuple[Any, ...]]], advance_s: int = 1) -> None:
        hashes = [(self.send(s, to, abi.encode(fn, *args)), fn, args) for s, abi, to, fn, args in calls]
        self.mine(advance_s)
        for tx, fn, args in hashes:
            if int(self.receipt(tx)["status"], 16) != 1:
                raise RuntimeError(f"{fn}{args!r} reverted: {self.revert_reason(tx)}")

    def deploy(self, artifact: Artifact | Any, *args: Any) -> str:
        bytecode = artifact.bytecode if artifact.bytecode.startswith("0x") else "0x" + artifact.bytecode
        tx = self.send(DEPLOYER, None, Abi(artifact.abi).deploy_data(bytecode, *args))
        self.mine()
        receipt = self.receipt(tx)
        if int(receipt["status"], 16) != 1:
            raise RuntimeError(f"deploy reverted: {self.revert_reason(tx)}")
        address: str = receipt["contractAddress"]
        return address

    def view(self, to: str, abi: Abi, fn: str, *args: Any, block: int | None = None) -> tuple[Any, ...]:
        tag = hex(block) if block is not None else "latest"
        return abi.decode(fn, self.rpc.call("eth_call", [{"to": to, "data": abi.encode(fn, *args)}, tag]), len(args))

    def revert_reason(self, tx_hash: str) -> str:
        """The custom error or Errors.sol constant the transaction reverted with, from anvil's call trace."""
        trace = self.rpc.call("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
        output = trace.get("output") or "0x"
        if output.startswith("0x08c379a0"):
            (code,) = abi_decode(["string"], bytes.fromhex(output[10:]))
            return camel(self.build.errors.get(code, code))
        return self.build.errors.get(output[:10], output)


def camel(constant: str) -> str:
    """MUST_NOT_LEAVE_DUST -> MustNotLeaveDust: 3.1-3.3 string codes named as 3.4+ spells the custom errors."""
    return "".join(part.capitalize() for part in constant.split("_")) if constant.isupper() else constant


def link(chain: Chain, name: str, deployed: dict[str, str]) -> Artifact:
    """`name`'s artifact with every library it links deployed first (depth first) and its address patched in."""
    artifact = chain.build.contracts[name]
    code = artifact.bytecode
    for library, places in artifact.links.items():
        if library not in deployed:
            deployed[library] = chain.deploy(link(chain, library, deployed))
        for start, length in places:
            code = code[: 2 * start] + deployed[library][2:].lower() + code[2 * (start + length) :]
    return Artifact(artifact.abi, code, {})


def deploy_market(chain: Chain) -> None:
    """PoolAddressesProvider, ACL, strategy, linked Pool and PoolConfigurator proxies, oracle, tokens, reserves."""
    b, a = chain, chain.addresses
    provider_abi = b.abi("PoolAddressesProvider")
    a["provider"] = b.deploy(b.build.contracts["PoolAddressesProvider"], "chainrisk vectors", DEPLOYER)
    b.transact(DEPLOYER, provider_abi, a["provider"], "setACLAdmin", DEPLOYER)
    a["acl"] = b.deploy(b.build.contracts["ACLManager"], a["provider"])
    b.transact(DEPLOYER, provider_abi, a["provider"], "setACLManager", a["acl"])
    for role in ("addPoolAdmin", "addRiskAdmin", "addEmergencyAdmin"):
        b.transact(DEPLOYER, b.abi("ACLManager"), a["acl"], role, DEPLOYER)
    strategy = b.deploy(b.build.contracts["DefaultReserveInterestRateStrategyV2"], a["provider"])
    libraries: dict[str, str] = {}
    pool_args: tuple[Any, ...] = (a["provider"], strategy) if b.minor >= 4 else (a["provider"],)
    pool_impl = b.deploy(link(b, "Pool", libraries), *pool_args)
    b.transact(DEPLOYER, provider_abi, a["provider"], "setPoolImpl", pool_impl)
    configurator_impl = b.deploy(link(b, "PoolConfigurator", libraries))
    b.transact(DEPLOYER, provider_abi, a["provider"], "setPoolConfiguratorImpl", configurator_impl)
    (a["pool"],) = b.view(a["provider"], provider_abi, "getPool")
    (a["configurator"],) = b.view(a["provider"], provider_abi, "getPoolConfigurator")
    data_provider = b.deploy(b.build.contracts["AaveProtocolDataProvider"], a["provider"])
    b.transact(DEPLOYER, provider_abi, a["provider"], "setPoolDataProvider", data_provider)

    token_artifact = aave_artifact("MintableERC20")
    feed_artifact = compiled_contracts()["SettableFeed"]
    for asset in (*ASSETS, Asset("PEG", 18, PEG_PRICE, 0, 0, 0, 0, (0, 0, 0, 0))):
        a[asset.symbol] = b.deploy(token_artifact, f"Vector {asset.symbol}", asset.symbol, asset.decimals)
        a[f"feed:{asset.symbol}"] = b.deploy(feed_artifact, 8, asset.price, f"{asset.symbol} / USD")
    symbols = [*(x.symbol for x in ASSETS), "PEG"]
    a["oracle"] = b.deploy(
        b.build.contracts["AaveOracle"],
        a["provider"],
        [a[s] for s in symbols],
        [a[f"feed:{s}"] for s in symbols],
        ZERO,
        ZERO,
        BASE_UNIT,
    )
    b.transact(DEPLOYER, provider_abi, a["provider"], "setPriceOracle", a["oracle"])

    pool = a["pool"]
    if b.minor >= 4:
        a_impl = b.deploy(b.build.contracts["AToken"], pool, ZERO, TREASURY)
        v_impl = b.deploy(b.build.contracts["VariableDebtToken"], pool, ZERO)
    else:
        a_impl = b.deploy(b.build.contracts["AToken"], pool)
        v_impl = b.deploy(b.build.contracts["VariableDebtToken"], pool)
    s_impl = b.deploy(b.build.contracts["StableDebtToken"], pool) if b.minor == 1 else ZERO
    configurator = b.abi("PoolConfigurator")
    for asset in ASSETS:
        rates = abi_encode(["uint16", "uint32", "uint32", "uint32"], list(asset.rates))
        names = (f"a{asset.symbol}", f"a{asset.symbol}", f"v{asset.symbol}", f"v{asset.symbol}")
        if b.minor >= 4:
            entry: tuple[Any, ...] = (a_impl, v_impl, a[asset.symbol], *names, b"", rates)
        elif b.minor >= 2:
            entry = (a_impl, v_impl, True, strategy, a[asset.symbol], TREASURY, ZERO, *names, b"", rates)
        else:
            stable = (f"s{asset.symbol}", f"s{asset.symbol}")
            entry = (
                a_impl,
                s_impl,
                v_impl,
                True,
                strategy,
                a[asset.symbol],
                TREASURY,
                ZERO,
                *names,
                *stable,
                b"",
                rates,
            )
        b.transact(DEPLOYER, configurator, a["configurator"], "initReserves", [entry])
    calls: list[tuple[str, Abi, str, str, tuple[Any, ...]]] = []

    def configure(fn: str, *args: Any) -> None:
        calls.append((DEPLOYER, configurator, a["configurator"], fn, args))

    for asset in ASSETS:
        x = a[asset.symbol]
        configure("configureReserveAsCollateral", x, asset.ltv, asset.threshold, asset.bonus)
        configure("setReserveBorrowing", x, True)
        configure("setLiquidationProtocolFee", x, asset.protocol_fee)
        configure("setReserveFactor", x, 1000)
        if b.minor >= 7:
            continue  # 3.7 removed isolation mode and siloed borrowing (docs/3.7/mode-removal.md)
        if asset.debt_ceiling:
            configure("setDebtCeiling", x, asset.debt_ceiling)
        if asset.siloed:
            configure("setSiloedBorrowing", x, True)
        if asset.borrowable_in_isolation:
            configure("setBorrowableInIsolation", x, True)
    for e in EMODES:
        if b.minor < e.since_minor:
            continue
        if b.minor >= 2:
            # 3.7 adds whether the category is isolated.
            isolated = (False,) if b.minor >= 7 else ()
            configure("setEModeCategory", e.category, e.ltv, e.threshold, e.bonus, e.label, *isolated)
            for symbol in e.members:
                configure("setAssetCollateralInEMode", a[symbol], e.category, True)
            for symbol in (*e.members, *e.borrowable_only):
                configure("setAssetBorrowableInEMode", a[symbol], e.category, True)
        else:
            source = a["PEG"] if e.category == 2 else ZERO
            configure("setEModeCategory", e.category, e.ltv, e.threshold, e.bonus, source, e.label)
            for symbol in e.members:
                configure("setAssetEModeCategory", a[symbol], e.category)
    b.batch(calls)


def usd(chain: Chain, symbol: str, dollars: float) -> int:
    """Token units worth `dollars` at the asset's start price."""
    asset = next(x for x in ASSETS if x.symbol == symbol)
    return int(dollars * BASE_UNIT) * int(10**asset.decimals) // asset.price


@dataclass(frozen=True)
class Position:
    name: str
    supplies: tuple[tuple[str, float], ...]  #: (symbol, USD)
    borrows: tuple[tuple[str, float], ...]  #: (symbol, USD)
    emode: int = 0
    disable: tuple[str, ...] = ()  #: collateral turned off after supplying


#: Opened at the start, then left to accrue for 90 days.
EARLY = (
    Position("plain-multi", (("WETH", 10_000), ("WBTC", 6_000)), (("USDC", 5_000), ("DAI", 3_000))),
    Position("emode-eth", (("wstETH", 8_000),), (("WETH", 6_500),), emode=1),
    Position("emode-usd", (("USDC", 5_000), ("DAI", 5_000)), (("USDC", 7_000),), emode=2),
    Position("isolated", (("LINK", 4_000),), (("USDC", 1_500),)),
    Position("siloed", (("WETH", 3_000),), (("SILO", 800),)),
    Position("toggle", (("WBTC", 5_000), ("WETH", 2_000)), (("USDC", 2_500),), disable=("WETH",)),
    Position("ltv-zero", (("wstETH", 4_000), ("WETH", 2_000)), (("WETH", 3_000),), emode=1),
)
#: Opened just before the crash, sized so the crash puts them where the liquidation rules differ.
LATE = (
    Position("small", (("WETH", 1_500),), (("USDC", 1_100),)),
    Position("half-close", (("WETH", 6_000), ("WBTC", 500)), (("USDC", 4_400),), disable=("WBTC",)),
    Position("dust-collateral", (("WETH", 3_000), ("WBTC", 2_300)), (("USDC", 4_000),)),
    Position("dust-debt", (("WETH", 6_600),), (("USDC", 2_050), ("DAI", 3_000))),
    Position("bad-debt", (("SILO", 2_500),), (("USDC", 700), ("DAI", 250))),
    Position("emode-liquidation", (("wstETH", 5_000),), (("WETH", 4_400),), emode=1),
    Position("emode-price-source", (("USDC", 3_000), ("WETH", 2_500)), (("DAI", 4_750),), emode=2),
)
#: 3.6 only: collateral that counts only inside its e-mode (no LTV or threshold of its own).
LATE_36 = (Position("emode-only-collateral", (("EMX", 3_000),), (("USDC", 2_000),), emode=3),)
#: 3.7 only: WETH in e-mode 4 and LINK outside it, before the category is isolated; and USDC lent against LINK, whose
#: rise (CRASH_37) makes it liquidatable, topped up so that liquidating all of its LINK debt leaves a unit or two of
#: USDC that the transfers' ceil-rounded scaled amounts consume (tune_to_ceiling).
LATE_37 = (
    Position("isolated-emode", (("WETH", 5_000), ("LINK", 2_000)), (("USDC", 3_000),), emode=4),
    Position("ceil-consumed", (("USDC", 2_000),), (("LINK", 1_450), ("DAI", 80))),
)
#: The crash: new prices as a share of the start price.
CRASH = {"WETH": 0.88, "wstETH": 0.83, "SILO": 0.30, "EMX": 0.88}
#: 3.7 only, on top: LINK rises (no earlier attempt involves LINK).
CRASH_37 = {"LINK": 1.5}


def open_positions(chain: Chain, positions: tuple[Position, ...], first: int) -> dict[str, str]:
    pool, pool_abi = chain.addresses["pool"], chain.abi("Pool")
    token = Abi(aave_artifact("MintableERC20").abi)
    wallets = {p.name: user(first + i) for i, p in enumerate(positions)}
    calls: list[tuple[str, Abi, str, str, tuple[Any, ...]]] = []
    for p in positions:
        who = wallets[p.name]
        calls += [(who, token, chain.addresses[x.symbol], "approve", (pool, MAX_UINT)) for x in ASSETS]
        if p.emode:  # first: 3.6 e-mode-only collateral can be enabled only inside its category
            calls.append((who, pool_abi, pool, "setUserEMode", (p.emode,)))
        for symbol, dollars in p.supplies:
            amount = usd(chain, symbol, dollars)
            calls.append((who, token, chain.addresses[symbol], "mint", (who, amount)))
            calls.append((who, pool_abi, pool, "supply", (chain.addresses[symbol], amount, who, 0)))
            # 3.2+ no longer enables an isolated asset on supply; a no-op where it is enabled already.
            if symbol not in p.disable:
                enable = (chain.addresses[symbol], True)
                calls.append((who, pool_abi, pool, "setUserUseReserveAsCollateral", enable))
        for symbol in p.disable:
            calls.append((who, pool_abi, pool, "setUserUseReserveAsCollateral", (chain.addresses[symbol], False)))
    chain.batch(calls)
    calls = [
        (wallets[p.name], pool_abi, pool, "borrow", (chain.addresses[s], usd(chain, s, d), 2, 0, wallets[p.name]))
        for p in positions
        for s, d in p.borrows
    ]
    chain.batch(calls)
    return wallets


def fund_liquidity(chain: Chain, depth: dict[str, float]) -> None:
    """The LP supplies `depth` USD of each asset (and the liquidator gets tokens to repay with)."""
    pool, pool_abi = chain.addresses["pool"], chain.abi("Pool")
    token = Abi(aave_artifact("MintableERC20").abi)
    calls: list[tuple[str, Abi, str, str, tuple[Any, ...]]] = []
    for asset in ASSETS:
        if asset.symbol not in depth:
            continue
        amount = usd(chain, asset.symbol, depth[asset.symbol])
        calls += [
            (LP, token, chain.addresses[asset.symbol], "mint", (LP, amount)),
            (LP, token, chain.addresses[asset.symbol], "approve", (pool, MAX_UINT)),
            (LP, pool_abi, pool, "supply", (chain.addresses[asset.symbol], amount, LP, 0)),
            (LIQUIDATOR, token, chain.addresses[asset.symbol], "mint", (LIQUIDATOR, 10 * amount + 10**30)),
            (LIQUIDATOR, token, chain.addresses[asset.symbol], "approve", (pool, MAX_UINT)),
        ]
    chain.batch(calls)


def named(abi: Abi, fn: str, values: tuple[Any, ...]) -> dict[str, Any]:
    """A decoded struct output as a dict by its ABI component names (one level)."""
    entry = abi._function(fn)
    outputs = entry["outputs"]
    if len(outputs) == 1 and outputs[0]["type"] == "tuple":
        return {c["name"]: v for c, v in zip(outputs[0]["components"], values[0], strict=True)}
    return {o["name"]: v for o, v in zip(outputs, values, strict=True)}


def hexify(value: Any) -> Any:
    """JSON-safe: integers as decimal strings (they exceed 2^53), tuples as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return [hexify(v) for v in value]
    if isinstance(value, dict):
        return {k: hexify(v) for k, v in value.items()}
    raise TypeError(type(value))


def snapshot(chain: Chain, wallets: dict[str, str], block: int) -> dict[str, Any]:
    """Everything the maths takes, and everything the contracts answer, at `block`."""
    a, pool_abi = chain.addresses, chain.abi("Pool")
    oracle_abi = chain.abi("AaveOracle")
    token_abi, debt_abi = chain.abi("AToken"), chain.abi("VariableDebtToken")
    header = chain.rpc.call("eth_getBlockByNumber", [hex(block), False])
    reserves = []
    (reserve_list,) = chain.view(a["pool"], pool_abi, "getReservesList", block=block)
    for asset in reserve_list:
        data = named(pool_abi, "getReserveData", chain.view(a["pool"], pool_abi, "getReserveData", asset, block=block))
        (price,) = chain.view(a["oracle"], oracle_abi, "getAssetPrice", asset, block=block)
        (income,) = chain.view(a["pool"], pool_abi, "getReserveNormalizedIncome", asset, block=block)
        (debt_index,) = chain.view(a["pool"], pool_abi, "getReserveNormalizedVariableDebt", asset, block=block)
        row: dict[str, Any] = {
            "asset": asset.lower(),
            "symbol": next(s.symbol for s in ASSETS if a[s.symbol].lower() == asset.lower()),
            "reserve_id": data["id"],
            "configuration": data["configuration"][0],
            "liquidity_index": data["liquidityIndex"],
            "variable_borrow_index": data["variableBorrowIndex"],
            "liquidity_rate": data["currentLiquidityRate"],
            "variable_borrow_rate": data["currentVariableBorrowRate"],
            "last_update_timestamp": data["lastUpdateTimestamp"],
            "a_token": data["aTokenAddress"].lower(),
            "variable_debt_token": data["variableDebtTokenAddress"].lower(),
            "stable_debt_token": data["stableDebtTokenAddress"].lower(),
            "isolation_mode_total_debt": data["isolationModeTotalDebt"],
            "price": price,
            "out_normalized_income": income,
            "out_normalized_variable_debt": debt_index,
        }
        (row["liquidation_grace_period_until"],) = chain.view(
            a["pool"], pool_abi, "getLiquidationGracePeriod", asset, block=block
        )
        if chain.minor >= 3:
            (row["deficit"],) = chain.view(a["pool"], pool_abi, "getReserveDeficit", asset, block=block)
        reserves.append(row)
    categories = []
    for category in (e.category for e in EMODES if chain.minor >= e.since_minor):
        bitmaps: dict[str, int] = {}
        if chain.minor >= 2:
            cfg = named(
                pool_abi,
                "getEModeCategoryCollateralConfig",
                chain.view(a["pool"], pool_abi, "getEModeCategoryCollateralConfig", category, block=block),
            )
            source, price = ZERO, 0
            getters = {
                "collateral_bitmap": "getEModeCategoryCollateralBitmap",
                "borrowable_bitmap": "getEModeCategoryBorrowableBitmap",
            }
            if chain.minor >= 6:
                getters["ltvzero_bitmap"] = "getEModeCategoryLtvzeroBitmap"
            if chain.minor >= 7:
                getters["isolated"] = "getIsEModeCategoryIsolated"
            bitmaps = {k: chain.view(a["pool"], pool_abi, fn, category, block=block)[0] for k, fn in getters.items()}
        else:
            cfg = named(
                pool_abi,
                "getEModeCategoryData",
                chain.view(a["pool"], pool_abi, "getEModeCategoryData", category, block=block),
            )
            source = cfg["priceSource"].lower()
            price = (
                chain.view(a["oracle"], oracle_abi, "getAssetPrice", source, block=block)[0] if source != ZERO else 0
            )
        categories.append(
            {
                "category_id": category,
                "ltv": cfg["ltv"],
                "liquidation_threshold": cfg["liquidationThreshold"],
                "liquidation_bonus": cfg["liquidationBonus"],
                "price_source": source,
                "price_source_price": price,
                **bitmaps,
            }
        )
    users = []
    for name, wallet in wallets.items():
        (config,) = chain.view(a["pool"], pool_abi, "getUserConfiguration", wallet, block=block)
        (emode,) = chain.view(a["pool"], pool_abi, "getUserEMode", wallet, block=block)
        account = chain.view(a["pool"], pool_abi, "getUserAccountData", wallet, block=block)
        balances = []
        for r in reserves:
            entry = {"reserve_id": r["reserve_id"]}
            for key, token, fn, abi in (
                ("scaled_a_token", r["a_token"], "scaledBalanceOf", token_abi),
                ("out_a_token_balance", r["a_token"], "balanceOf", token_abi),
                ("scaled_variable_debt", r["variable_debt_token"], "scaledBalanceOf", debt_abi),
                ("out_variable_debt_balance", r["variable_debt_token"], "balanceOf", debt_abi),
            ):
                (entry[key],) = chain.view(token, abi, fn, wallet, block=block)
            entry["stable_debt"] = (
                chain.view(r["stable_debt_token"], token_abi, "balanceOf", wallet, block=block)[0]
                if chain.minor < 2
                else 0
            )
            if any(entry[k] for k in ("scaled_a_token", "scaled_variable_debt", "stable_debt")):
                balances.append(entry)
        users.append(
            {
                "name": name,
                "wallet": wallet.lower(),
                "configuration": config[0],
                "emode": emode,
                "balances": balances,
                "out_account": dict(
                    zip(
                        (
                            "total_collateral_base",
                            "total_debt_base",
                            "available_borrows_base",
                            "current_liquidation_threshold",
                            "ltv",
                            "health_factor",
                        ),
                        account,
                        strict=True,
                    )
                ),
            }
        )
    return {
        "block": block,
        "timestamp": int(header["timestamp"], 16),
        "reserves": reserves,
        "emode_categories": categories,
        "users": users,
    }


@dataclass(frozen=True)
class Attempt:
    wallet: str  #: position name
    collateral: str
    debt: str
    amount: str  #: "max", "third", "leave-999" (debt minus $999 of it), "all"
    grace_on: str = ""  #: 3.1+: set a one-hour liquidation grace period on this reserve first


ATTEMPTS = (
    Attempt("plain-multi", "WETH", "USDC", "max"),
    Attempt("small", "WETH", "USDC", "max"),
    Attempt("small", "WETH", "USDC", "third"),
    Attempt("half-close", "WETH", "USDC", "max"),
    Attempt("half-close", "WETH", "USDC", "third"),
    Attempt("half-close", "WETH", "USDC", "leave-999"),
    Attempt("half-close", "WBTC", "USDC", "max"),
    Attempt("half-close", "WETH", "DAI", "max"),
    Attempt("dust-collateral", "WETH", "USDC", "max"),
    Attempt("dust-collateral", "WBTC", "USDC", "max"),
    Attempt("dust-collateral", "WETH", "USDC", "third"),
    Attempt("dust-debt", "WETH", "DAI", "max"),
    Attempt("dust-debt", "WETH", "USDC", "max"),
    Attempt("dust-debt", "WETH", "DAI", "leave-999"),
    Attempt("bad-debt", "SILO", "USDC", "max"),
    Attempt("bad-debt", "SILO", "DAI", "max"),
    Attempt("emode-liquidation", "wstETH", "WETH", "max"),
    Attempt("emode-liquidation", "wstETH", "WETH", "all"),
    Attempt("emode-liquidation", "wstETH", "WETH", "max", grace_on="wstETH"),
    Attempt("emode-price-source", "WETH", "DAI", "max"),
    Attempt("emode-price-source", "USDC", "DAI", "max"),
    Attempt("emode-price-source", "USDC", "DAI", "third"),
    Attempt("emode-only-collateral", "EMX", "USDC", "max"),
    Attempt("emode-only-collateral", "EMX", "USDC", "third"),
    Attempt("ceil-consumed", "USDC", "LINK", "max"),
)


def attempt_amount(chain: Chain, state: dict[str, Any], attempt: Attempt) -> int:
    if attempt.amount == "max":
        return MAX_UINT
    wallet = next(u for u in state["users"] if u["name"] == attempt.wallet)
    reserve = next(r for r in state["reserves"] if r["symbol"] == attempt.debt)
    debt = next(
        int(b["out_variable_debt_balance"]) for b in wallet["balances"] if b["reserve_id"] == reserve["reserve_id"]
    )
    if attempt.amount == "third":
        return debt // 3
    if attempt.amount == "all":
        return debt
    return debt - usd(chain, attempt.debt, 999)


def liquidate(chain: Chain, wallets: dict[str, str], state: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
    """One liquidationCall from the post-crash state (reverted after): its events, or its revert reason."""
    a, pool_abi = chain.addresses, chain.abi("Pool")
    snap = chain.rpc.call("evm_snapshot")
    start_time, nonces = chain.timestamp, dict(chain.nonces)
    amount = attempt_amount(chain, state, attempt)
    borrower = wallets[attempt.wallet]
    if attempt.grace_on:
        chain.send(
            DEPLOYER,
            a["configurator"],
            chain.abi("PoolConfigurator").encode("setReservePause", a[attempt.grace_on], False, 3600),
        )
    tx = chain.send(
        LIQUIDATOR,
        a["pool"],
        pool_abi.encode("liquidationCall", a[attempt.collateral], a[attempt.debt], borrower, amount, False),
    )
    block = chain.mine(12)
    receipt = chain.receipt(tx)
    record: dict[str, Any] = {
        "wallet": attempt.wallet,
        "collateral": attempt.collateral,
        "debt": attempt.debt,
        "debt_to_cover": amount,
        "timestamp": chain.timestamp,
        "grace_period_until": {},
    }
    if attempt.grace_on:
        (until,) = chain.view(a["pool"], pool_abi, "getLiquidationGracePeriod", a[attempt.grace_on], block=block)
        record["grace_period_until"] = {attempt.grace_on: until}
    if int(receipt["status"], 16) != 1:
        record["out_error"] = chain.revert_reason(tx)
    else:
        liquidation_topic = event_topic("LiquidationCall(address,address,address,uint256,uint256,address,bool)")
        deficit_topic = event_topic("DeficitCreated(address,address,uint256)")
        transfer_topic = event_topic("Transfer(address,address,uint256)")
        collateral_token = next(r["a_token"] for r in state["reserves"] if r["symbol"] == attempt.collateral)
        pad = "0x" + "00" * 12
        record["out_deficits"] = {}
        record["out_protocol_fee"] = 0
        for log in receipt["logs"]:
            topics, data = log["topics"], bytes.fromhex(log["data"][2:])
            if topics[0] == liquidation_topic:
                repaid, seized, _, _ = abi_decode(["uint256", "uint256", "address", "bool"], data)
                record["out_debt_repaid"], record["out_collateral_seized"] = repaid, seized
            elif topics[0] == deficit_topic:
                asset = "0x" + topics[2][-40:]
                symbol = next(r["symbol"] for r in state["reserves"] if r["asset"] == asset)
                record["out_deficits"][symbol] = abi_decode(["uint256"], data)[0]
            elif (
                topics[0] == transfer_topic
                and log["address"].lower() == collateral_token
                and topics[1] == pad + borrower[2:].lower()
                and topics[2] == pad + TREASURY[2:]
            ):
                record["out_protocol_fee"] = abi_decode(["uint256"], data)[0]
    chain.rpc.call("evm_revert", [snap])
    chain.timestamp, chain.nonces = start_time, nonces
    return record


def _supply(chain: Chain, who: str, symbol: str, amount: int) -> list[tuple[str, Abi, str, str, tuple[Any, ...]]]:
    token, pool = Abi(aave_artifact("MintableERC20").abi), chain.addresses["pool"]
    return [
        (who, token, chain.addresses[symbol], "mint", (who, amount)),
        (who, chain.abi("Pool"), pool, "supply", (chain.addresses[symbol], amount, who, 0)),
    ]


def tune_to_ceiling(chain: Chain, wallets: dict[str, str], name: str, collateral: str, debt: str) -> int:
    """3.7: how much more `collateral` (token units) `name` must supply so that liquidating all of its `debt` leaves
    a unit or two of it, which the liquidator's and the treasury's transfers consume all the same (each rayDivCeil):
    3.7 then finds no collateral left and books the other debts as deficit, where 3.6's test in base currency would
    see the leftover (docs/3.7/liquidation-rounding.md). Amounts around the one that covers the debt are tried on
    the chain, each rolled back, and both tests read with chainrisk's maths on 3.7's split; the vector then records
    what the pool itself does. 0 when no amount tells the tests apart."""
    v37 = PoolVersion(3, 7)

    def tried(extra: int) -> tuple[bool, int]:
        """Whether 3.6's and 3.7's tests disagree after supplying `extra` more, and how much more is held then
        than the liquidation of the whole debt seizes."""
        snap = chain.rpc.call("evm_snapshot")
        start_time, nonces = chain.timestamp, dict(chain.nonces)
        if extra:
            chain.batch(_supply(chain, wallets[name], collateral, extra))
        state = snapshot(chain, wallets, chain.mine(7))
        chain.rpc.call("evm_revert", [snap])
        chain.timestamp, chain.nonces = start_time, nonces
        user = next(u for u in state["users"] if u["name"] == name)
        c, d = (next(r for r in state["reserves"] if r["symbol"] == s) for s in (collateral, debt))
        market = _market(v37, state, int(state["timestamp"]) + 12)
        balances = _balances(user)
        config, emode = int(user["configuration"]), int(user["emode"])
        outcome = liquidation_call(market, config, emode, balances, int(c["reserve_id"]), int(d["reserve_id"]))
        account = user_account_data(market, config, emode, balances)
        by_id = {p.reserve.reserve_id: p for p in account.positions}
        held, owed = by_id[int(c["reserve_id"])].supplied, by_id[int(d["reserve_id"])].debt
        asset_c, asset_d = (next(x for x in ASSETS if x.symbol == s) for s in (collateral, debt))
        prices = int(c["price"]), 10**asset_c.decimals, int(d["price"]), 10**asset_d.decimals
        split = collateral_to_liquidate(v37, *prices, owed, held, asset_c.bonus, asset_c.protocol_fee)
        reserve = market.reserves_by_id[int(c["reserve_id"])]
        left = [
            _no_collateral_left(
                version,
                split,
                account.total_collateral_base,
                balances[int(c["reserve_id"])].scaled_a_token,
                normalized_income(reserve, market.timestamp),
                prices[0],
                prices[1],
            )
            for version in (PoolVersion(3, 6), v37)
        ]
        whole = collateral_to_liquidate(v37, *prices, owed, 2**255, asset_c.bonus, 0).collateral
        return outcome.error is None and left[0] != left[1], held - whole

    _, surplus = tried(0)
    for extra in range(max(-surplus - 2, 1), -surplus + 12):
        if tried(extra)[0]:
            return extra
    return 0


def record_transfer(chain: Chain) -> dict[str, Any]:
    """The LP sends aWBTC to a fresh wallet: before 3.6 the pool enables it as the receiver's collateral."""
    receiver = user(99)
    reserve = chain.view(chain.addresses["pool"], chain.abi("Pool"), "getReserveData", chain.addresses["WBTC"])
    a_token = named(chain.abi("Pool"), "getReserveData", reserve)["aTokenAddress"]
    chain.transact(LP, chain.abi("AToken"), a_token, "transfer", receiver, usd(chain, "WBTC", 1_500))
    (config,) = chain.view(chain.addresses["pool"], chain.abi("Pool"), "getUserConfiguration", receiver)
    reserve_id = named(chain.abi("Pool"), "getReserveData", reserve)["id"]
    return {
        "asset": "WBTC",
        "reserve_id": reserve_id,
        "receiver": receiver,
        "out_collateral_enabled": bool((config[0] >> (2 * reserve_id + 1)) & 1),
    }


#: Reserves whose supply cap is tried at its edge, and the supplier who tries (holding plenty of every token).
CAPPED = ("USDC", "DAI", "WETH", "WBTC")
CAP_SUPPLIER = "0x0000000000000000000000000000000000001200"
#: ValidationLogic.validateSupply's refusal, as revert_reason names it in every version.
CAP_EXCEEDED = "SupplyCapExceeded"


def _supply_outcome(chain: Chain, asset: str, amount: int) -> str | None:
    """None when the pool accepts CAP_SUPPLIER's supply of `amount` in the next block, else its revert reason; the
    chain is rolled back either way."""
    pool, pool_abi = chain.addresses["pool"], chain.abi("Pool")
    snap = chain.rpc.call("evm_snapshot")
    start_time, nonces = chain.timestamp, dict(chain.nonces)
    tx = chain.send(CAP_SUPPLIER, pool, pool_abi.encode("supply", asset, amount, CAP_SUPPLIER, 0))
    chain.mine()
    reason = None if int(chain.receipt(tx)["status"], 16) == 1 else chain.revert_reason(tx)
    chain.rpc.call("evm_revert", [snap])
    chain.timestamp, chain.nonces = start_time, nonces
    return reason


def record_supply_caps(chain: Chain, wallets: dict[str, str]) -> list[dict[str, Any]]:
    """For each of CAPPED: a supply cap set a few whole tokens above what its aToken and the treasury hold, then the
    largest amount the pool accepts in the next block (found on the chain, each try rolled back, from the pool's own
    answers alone), the revert of one unit more, and the reserve's state before that block (what the maths takes: the
    tokens' scaled supplies and the treasury's stored share besides the snapshot row). The treasury's share has
    accrued for 400 days by then, so the used figure exceeds the aToken's totalSupply by more than a token."""
    pool, pool_abi = chain.addresses["pool"], chain.abi("Pool")
    configurator, target = chain.abi("PoolConfigurator"), chain.addresses["configurator"]
    token = Abi(aave_artifact("MintableERC20").abi)
    chain.batch(
        [(CAP_SUPPLIER, token, chain.addresses[s], "mint", (CAP_SUPPLIER, 10**40)) for s in CAPPED]
        + [(CAP_SUPPLIER, token, chain.addresses[s], "approve", (pool, MAX_UINT)) for s in CAPPED]
    )
    recorded = []
    for symbol in CAPPED:
        asset = chain.addresses[symbol]
        data = named(pool_abi, "getReserveData", chain.view(pool, pool_abi, "getReserveData", asset))
        decimals = next(x.decimals for x in ASSETS if x.symbol == symbol)
        # The cap: whole tokens above the aToken's supply and the treasury's stored share at today's income, as few as
        # the pool lets a unit in under (the treasury's share accrues in the supply's block too, 400 days of it here);
        # where the edge then lies is the pool's to say.
        (scaled,) = chain.view(data["aTokenAddress"], chain.abi("AToken"), "scaledTotalSupply")
        (income,) = chain.view(pool, pool_abi, "getReserveNormalizedIncome", asset)
        held = -(-(int(scaled) + int(data["accruedToTreasury"])) * int(income) // 10**27 // 10**decimals)
        extra = 1
        while True:
            cap = held + extra
            chain.transact(DEPLOYER, configurator, target, "setSupplyCap", asset, cap)
            snap, start_time, nonces = chain.rpc.call("evm_snapshot"), chain.timestamp, dict(chain.nonces)
            chain.mine(3_606)
            # A hundredth of a token: from 3.5 a supply whose scaled amount floors to 0 reverts (InvalidMintAmount).
            passes = _supply_outcome(chain, asset, 10**decimals // 100) is None
            chain.rpc.call("evm_revert", [snap])
            chain.timestamp, chain.nonces = start_time, nonces
            if passes:
                break
            extra *= 2
        block = chain.mine(3_606)  # the reserve accrues an hour more by the supply's block
        row = next(r for r in snapshot(chain, wallets, block)["reserves"] if r["symbol"] == symbol)
        data = named(pool_abi, "getReserveData", chain.view(pool, pool_abi, "getReserveData", asset, block=block))
        (row["a_token_scaled_total_supply"],) = chain.view(
            data["aTokenAddress"], chain.abi("AToken"), "scaledTotalSupply", block=block
        )
        (row["variable_debt_scaled_total_supply"],) = chain.view(
            data["variableDebtTokenAddress"], chain.abi("VariableDebtToken"), "scaledTotalSupply", block=block
        )
        row["accrued_to_treasury"] = data["accruedToTreasury"]
        if chain.minor < 2:
            stable = chain.abi("StableDebtToken")
            stable_token = data["stableDebtTokenAddress"]
            principal, _, rate, updated = chain.view(stable_token, stable, "getSupplyData", block=block)
            row |= {"stable_principal": principal, "stable_avg_rate": rate, "stable_last_update": updated}

        def tried(amount: int, asset: str = asset) -> str | None:
            return _supply_outcome(chain, asset, amount)

        low, high = 0, cap * 10**decimals
        if tried(high) != CAP_EXCEEDED:
            raise RuntimeError(f"{symbol}: a supply of the whole cap passed it")
        while high - low > 1:  # the cap lets low in (0: nothing yet) and refuses high
            middle = (low + high) // 2
            low, high = (middle, high) if tried(middle) != CAP_EXCEEDED else (low, middle)
        if tried(low) is not None:
            raise RuntimeError(f"{symbol}: the largest supply the cap lets in reverts: {tried(low)}")
        row |= {
            "supply_cap": cap,
            "decimals": decimals,
            "timestamp": chain.timestamp + 1,
            "out_largest_supply": low,
            "out_error_above": tried(low + 1),
        }
        recorded.append(row)
    return recorded


def record_tag(repo: Path, tag: str, scratch: Path, log: Callable[[str], None]) -> dict[str, Any]:
    started = time.monotonic()
    build = compile_tag(repo, tag, scratch)
    compiled_s = time.monotonic() - started
    port = free_port()
    process = start_anvil(port, 31337, scratch / f"anvil-{tag}.log", detach=False)
    try:
        with RpcClient(f"http://127.0.0.1:{port}", timeout_s=60) as rpc:
            chain = Chain(rpc, build)
            deploy_market(chain)
            # USDC is lent out beyond its 90 % kink at first (rates near 30 %), the rest far below.
            fund_liquidity(chain, {x.symbol: 12_000 if x.symbol == "USDC" else 1_000_000 for x in ASSETS})
            wallets = open_positions(chain, EARLY, 1)
            transfer = record_transfer(chain)
            pool_abi, configurator = chain.abi("Pool"), chain.abi("PoolConfigurator")
            # 90 days and some hours of accrual, with one touch in between so reserves' last updates differ.
            chain.mine(45 * DAY + 3_607)
            chain.transact(
                wallets["plain-multi"],
                pool_abi,
                chain.addresses["pool"],
                "repay",
                chain.addresses["USDC"],
                usd(chain, "USDC", 123),
                2,
                wallets["plain-multi"],
            )
            chain.mine(45 * DAY + 7_211)
            # The ltv-zero wallet's wstETH goes to LTV 0 (3.6: only inside e-mode 2 for DAI via the ltvzero bitmap).
            wst = next(x for x in ASSETS if x.symbol == "wstETH")
            changes: list[tuple[str, Abi, str, str, tuple[Any, ...]]] = [
                (
                    DEPLOYER,
                    configurator,
                    chain.addresses["configurator"],
                    "configureReserveAsCollateral",
                    (chain.addresses["wstETH"], 0, wst.threshold, wst.bonus),
                )
            ]
            if chain.minor >= 6:
                changes += [
                    (
                        DEPLOYER,
                        configurator,
                        chain.addresses["configurator"],
                        "setAssetLtvzeroInEMode",
                        (chain.addresses[symbol], e.category, True),
                    )
                    for e in EMODES
                    for symbol in e.ltvzero
                ]
            chain.batch(changes)
            accrued = snapshot(chain, wallets, chain.mine(11))
            # wstETH's LTV comes back so late wallets can borrow against it.
            chain.transact(
                DEPLOYER,
                configurator,
                chain.addresses["configurator"],
                "configureReserveAsCollateral",
                chain.addresses["wstETH"],
                wst.ltv,
                wst.threshold,
                wst.bonus,
            )
            fund_liquidity(chain, {"USDC": 30_000, "DAI": 30_000})
            late_positions = LATE + (LATE_36 if chain.minor >= 6 else ()) + (LATE_37 if chain.minor >= 7 else ())
            wallets.update(open_positions(chain, late_positions, len(EARLY) + 1))
            isolate = [e.category for e in EMODES if e.isolate_late and chain.minor >= e.since_minor]
            if isolate:
                target = chain.addresses["configurator"]
                chain.batch([(DEPLOYER, configurator, target, "setEModeCategoryIsolated", (c, True)) for c in isolate])
            feed = Abi(compiled_contracts()["SettableFeed"].abi)
            chain.mine(DAY)
            chain.batch(
                [
                    (DEPLOYER, feed, chain.addresses[f"feed:{s}"], "setAnswer", (int(x.price * share),))
                    for s, share in (CRASH | (CRASH_37 if chain.minor >= 7 else {})).items()
                    for x in ASSETS
                    if x.symbol == s
                ]
            )
            if chain.minor >= 7:
                extra = tune_to_ceiling(chain, wallets, "ceil-consumed", "USDC", "LINK")
                log(f"{tag}: ceil-consumed topped up by {extra} USDC units")
                if extra:
                    chain.batch(_supply(chain, wallets["ceil-consumed"], "USDC", extra))
            crashed = snapshot(chain, wallets, chain.mine(7))
            liquidations = [liquidate(chain, wallets, crashed, x) for x in ATTEMPTS if x.wallet in wallets]
            chain.mine(400 * DAY + 12_345)
            late = snapshot(chain, wallets, chain.mine(1))
            supply_caps = record_supply_caps(chain, wallets)
        seconds = time.monotonic() - started
        log(f"{tag}: compiled in {compiled_s:.1f} s, recorded in {seconds - compiled_s:.1f} s")
        recorded: dict[str, Any] = hexify(
            {
                "tag": tag,
                "version": tag.split("@")[0].lstrip("v"),
                "base_unit": BASE_UNIT,
                "snapshots": {"accrued": accrued, "crashed": crashed, "late": late},
                "liquidations": liquidations,
                "transfer": transfer,
                "supply_caps": supply_caps,
            }
        )
        return recorded
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="git directory of aave-dao/aave-v3-origin")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/aave-vectors"), help="outside the repository")
    parser.add_argument("--tags", default="v3.1.0,v3.2.0,v3.3.0,v3.4.0,v3.5.0,v3.6.0,v3.7.0@fd1fbd91")
    parser.add_argument(
        "--only",
        help="comma-separated sections of the recording (supply_caps, liquidations, ...) to write into the existing "
        "files, leaving their other sections as they are",
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for tag in args.tags.split(","):
        data = record_tag(args.repo, tag, args.scratch, lambda line: print(line, flush=True))
        minor = tag.split("@")[0].split(".")[1]
        path = OUT / f"v3_{minor}.json"
        if args.only:
            data = json.loads(path.read_text()) | {key: data[key] for key in args.only.split(",")}
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"all tags: {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
