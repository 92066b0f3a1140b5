"""A governance proposal passed on the devnet (`chainrisk devnet govern`): settings of every governed protocol moved
the way its own governance moves them, so that the next `chainrisk run` reads the changes (mart_parameter_changes,
the Markets page's "Risk parameters governance changed", the `parameter_changed` alert) and their effect on every
position (the Vat's spot is poked, so the Maker vaults' health moves with the new liquidation ratio).

Each move is relative to what the chain holds, so the proposal may pass again (a move that would leave its range is
refused with one line: `chainrisk devnet up --replace` gives a fresh chain):
* Aave V3.0.2, its PoolConfigurator called by the pool admin: WETH's reserve factor +5 points; WBTC's LTV -5 points,
  liquidation threshold -3 points and bonus +1 point; USDC's supply cap halved; DAI frozen (or unfrozen); e-mode
  category 1's LTV and threshold -1 point; USDC onto a new interest rate strategy (@aave/core-v3's
  DefaultReserveInterestRateStrategy, its curve but the slope above the optimum +10 points); and the AaveOracle's
  source for wstETH swapped to an adapter over its feed (FeedAdapter, the same price), or back to the feed;
* Morpho Blue, its owner: the first market's fee to 5 % (10 % where it is 5 % already), and a new market (the first's
  tokens, the second's oracle) where none is yet;
* the Compound V3 stand-in: an upgrade to a new implementation (as Comet's configurator deploys one), every
  collateral's liquidation factor -5 points and LINK's supply cap doubled;
* the Maker/Sky stand-ins, filed by their ward: ETH-A's debt ceiling (Vat line) halved, its dust +500 dai, its chop
  113 % <-> 115 %, its liquidation ratio (Spotter mat) +5 points, its clip's buf +5 points and tail +600 s, then
  Spotter.poke.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.devnet.aave import PCT
from chainrisk.devnet.compound_v3 import COLLATERALS, Collateral, deploy_implementation
from chainrisk.devnet.maker import bytes32, overload_calldata
from chainrisk.devnet.morpho import market_id
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.toolchain import aave_artifact, compiled_contracts
from chainrisk.errors import UserError
from chainrisk.rpc import RpcClient
from chainrisk.units import WAD

CONFIGURATOR = load_abi("aave-v3", "IPoolConfigurator")
DATA_PROVIDER = load_abi("aave-v3", "AaveProtocolDataProvider")
POOL = load_abi("aave-v3", "IPool")
ORACLE = load_abi("aave-v3", "IAaveOracle")
STRATEGY = load_abi("aave-v3", "IDefaultInterestRateStrategy")
#: DefaultReserveInterestRateStrategy's constructor arguments after the provider, as its getters name them (3.0.2).
STRATEGY_ARGUMENTS = (
    "OPTIMAL_USAGE_RATIO",
    "getBaseVariableBorrowRate",
    "getVariableRateSlope1",
    "getVariableRateSlope2",
    "getStableRateSlope1",
    "getStableRateSlope2",
    "getBaseStableBorrowRate",
    "getStableRateExcessOffset",
    "OPTIMAL_STABLE_TO_TOTAL_DEBT_RATIO",
)
MORPHO = load_abi("morpho-blue", "IMorpho")
COMET = load_abi("compound-v3", "IComet")
VAT = load_abi("maker", "Vat")
DOG = load_abi("maker", "Dog")
SPOTTER = load_abi("maker", "Spotter")
CLIPPER = load_abi("maker", "Clipper")
#: The Comet stand-in's proxy, OpenZeppelin 4.9's TransparentUpgradeableProxy: its admin's upgradeTo.
PROXY = Abi(
    [
        {
            "type": "function",
            "name": "upgradeTo",
            "inputs": [{"name": "newImplementation", "type": "address"}],
            "outputs": [],
            "stateMutability": "nonpayable",
        }
    ]
)
RAY, RAD = 10**27, 10**45


@dataclass(frozen=True)
class Move:
    protocol: str  #: adapter name
    parameters: tuple[str, ...]  #: the settings it moves, as mart_parameter_changes names them
    what: str  #: for people


class _Proposal:
    """The moves queued on one BlockBuilder, reading the chain's current values first."""

    def __init__(self, rpc: RpcClient, manifest: dict[str, Any]) -> None:
        self.rpc, self.manifest, self.moves = rpc, manifest, list[Move]()
        head = rpc.call("eth_getBlockByNumber", ["latest", False])
        self.builder = BlockBuilder(rpc, timestamp=int(head["timestamp"], 16) + 600)

    def read(self, to: str, abi: Abi, fn: str, *args: Any) -> Any:
        return abi.decode(fn, self.rpc.call(*eth_call(to, abi, fn, *args)))

    def aave(self, section: dict[str, Any]) -> None:
        provider, configurator = section["data_provider"], section["pool_configurator"]
        reserves = {symbol: r["asset"] for symbol, r in section["reserves"].items()}
        # Contracts first: each deploy mines its own block.
        strategy = self.read(section["pool"], POOL, "getReserveData", reserves["USDC"])[0][11]
        curve = [int(self.read(strategy, STRATEGY, fn)[0]) for fn in STRATEGY_ARGUMENTS]
        # getBaseStableBorrowRate answers slope1 + the base offset; the constructor takes the offset.
        curve[6] -= curve[2]
        slope2 = curve[3]
        curve[3] += 10 * PCT
        new_strategy = self.builder.deploy(
            aave_artifact("DefaultReserveInterestRateStrategy"),
            section["pool_addresses_provider"],
            *curve,
            label="InterestRateStrategy (governance)",
        )
        oracle, feed = section["oracle"], section["reserves"]["wstETH"]["feed"]
        (source,) = self.read(oracle, ORACLE, "getSourceOfAsset", reserves["wstETH"])
        swapped = source.lower() == feed.lower()
        new_source = (
            self.builder.deploy(compiled_contracts()["FeedAdapter"], feed, label="FeedAdapter wstETH")
            if swapped
            else feed
        )

        def config(symbol: str) -> Any:
            return self.read(provider, DATA_PROVIDER, "getReserveConfigurationData", reserves[symbol])

        def configure(fn: str, *args: Any) -> None:
            self.builder.call(DEPLOYER, CONFIGURATOR, configurator, fn, *args)

        factor = config("WETH")[4]
        if factor + 500 > 10_000:
            raise UserError("the devnet's WETH reserve factor would pass 100 %; `chainrisk devnet up --replace`")
        configure("setReserveFactor", reserves["WETH"], factor + 500)
        _, ltv, threshold, bonus, *_ = config("WBTC")
        if ltv < 500 or threshold < 300 or (threshold - 300) * (bonus + 100) > 10_000 * 10_000:
            raise UserError(
                "the devnet's WBTC collateral is out of room for this proposal; `chainrisk devnet up --replace`"
            )
        configure("configureReserveAsCollateral", reserves["WBTC"], ltv - 500, threshold - 300, bonus + 100)
        _, cap = self.read(provider, DATA_PROVIDER, "getReserveCaps", reserves["USDC"])
        configure("setSupplyCap", reserves["USDC"], cap // 2)
        frozen = config("DAI")[9]
        configure("setReserveFreeze", reserves["DAI"], not frozen)
        configure("setReserveInterestRateStrategyAddress", reserves["USDC"], new_strategy)
        self.builder.call(DEPLOYER, ORACLE, oracle, "setAssetSources", [reserves["wstETH"]], [new_source])
        self.moves.append(
            Move(
                "aave-v3",
                (
                    "reserve_factor",
                    "ltv",
                    "liquidation_threshold",
                    "liquidation_bonus",
                    "supply_cap",
                    "frozen",
                    "interest_rate_strategy",
                    "variable_rate_slope2",
                    "price_source",
                ),
                f"Aave V3: WETH reserve factor {factor / 100:g} -> {(factor + 500) / 100:g} %; "
                f"WBTC LTV {ltv / 100:g} -> {(ltv - 500) / 100:g} %, "
                f"threshold {threshold / 100:g} -> {(threshold - 300) / 100:g} %, "
                f"bonus {bonus / 100:g} -> {(bonus + 100) / 100:g} %; USDC supply cap {cap:,} -> {cap // 2:,}; DAI "
                f"{'unfrozen' if frozen else 'frozen'}; USDC onto a new rate strategy, slope 2 {slope2 / PCT:g} -> "
                f"{curve[3] / PCT:g} % a year; wstETH's oracle source {'to an adapter over' if swapped else 'back to'} "
                "its feed",
            )
        )
        (category,) = self.read(section["pool"], POOL, "getEModeCategoryData", 1)
        e_ltv, e_threshold, e_bonus, source, label = category
        configure("setEModeCategory", 1, e_ltv - 100, e_threshold - 100, e_bonus, source, label)
        self.moves.append(
            Move(
                "aave-v3",
                ("ltv", "liquidation_threshold"),
                f"Aave V3: e-mode '{label}' LTV {e_ltv / 100:g} -> {(e_ltv - 100) / 100:g} %, threshold "
                f"{e_threshold / 100:g} -> {(e_threshold - 100) / 100:g} %",
            )
        )

    def morpho(self, section: dict[str, Any]) -> None:
        morpho, (first, second) = section["morpho"], section["markets"][:2]

        def params(market: dict[str, Any]) -> tuple[str, str, str, str, int]:
            return (
                market["loan_token"],
                market["collateral_token"],
                market["oracle"],
                market["irm"],
                int(market["lltv"]),
            )

        (state,) = self.read(morpho, MORPHO, "market", first["market_id"])
        fee = 10 * WAD // 100 if state[5] == 5 * WAD // 100 else 5 * WAD // 100
        self.builder.call(DEPLOYER, MORPHO, morpho, "setFee", params(first), fee)
        new = (*params(first)[:2], second["oracle"], *params(first)[3:])
        pair = f"{first['collateral_symbol']}/{first['loan_symbol']}"
        moves = f"Morpho Blue: {pair} fee {state[5] / 1e16:g} -> {fee / 1e16:g} %"
        (created,) = self.read(morpho, MORPHO, "idToMarketParams", market_id(new))
        if int(created[0], 16) == 0:  # no market with these parameters yet (its loan token unset)
            self.builder.call(DEPLOYER, MORPHO, morpho, "createMarket", new)
            moves += f"; a new {pair} market on the second market's oracle"
        self.moves.append(Move("morpho-blue", ("fee",), moves))

    def comet(self, section: dict[str, Any]) -> None:
        comet, moved, collaterals = section["comet"], list[str](), list[Collateral]()
        for c in COLLATERALS:
            (info,) = self.read(comet, COMET, "getAssetInfoByAddress", section["tokens"][c.symbol])
            borrow_cf, liquidate_cf, factor, cap = (int(v) for v in info[4:8])
            if factor < 10 * WAD // 100:
                raise UserError(
                    "the devnet Comet's liquidation factors are out of room; `chainrisk devnet up --replace`"
                )
            new_cap = cap * 2 if c.symbol == "LINK" else cap
            collaterals.append(
                Collateral(
                    c.symbol,
                    c.decimals,
                    borrow_cf / WAD,
                    liquidate_cf / WAD,
                    (factor - 5 * WAD // 100) / WAD,
                    new_cap // 10**c.decimals,
                )
            )
            moved.append(f"{c.symbol} {factor / 1e16:g} -> {(factor - 5 * WAD // 100) / 1e16:g} %")
        implementation = deploy_implementation(
            self.builder, section["tokens"], section["feeds"], section["extension"], tuple(collaterals)
        )
        self.builder.mine(0)
        self.builder.call(section["proxy_admin"], PROXY, comet, "upgradeTo", implementation)
        self.moves.append(
            Move(
                "compound-v3",
                ("liquidation_factor", "supply_cap"),
                f"Compound V3 (stand-in): upgraded; liquidation factors {', '.join(moved)}; LINK supply cap doubled",
            )
        )

    def maker(self, section: dict[str, Any]) -> None:
        ilk = bytes32("ETH-A")
        _, _, _, line, dust = self.read(section["vat"], VAT, "ilks", ilk)
        clip, chop, _, _ = self.read(section["dog"], DOG, "ilks", ilk)
        (buf,), (tail,) = self.read(clip, CLIPPER, "buf"), self.read(clip, CLIPPER, "tail")
        _, mat = self.read(section["spot"], SPOTTER, "ilks", ilk)
        new_chop = 115 * WAD // 100 if chop != 115 * WAD // 100 else 113 * WAD // 100

        def file(to: str, what: str, value: int) -> None:
            data = overload_calldata("file(bytes32,bytes32,uint256)", ilk, bytes32(what), value)
            self.builder.send(DEPLOYER, to, data, f"file {what}")

        file(section["vat"], "line", line // 2)
        file(section["vat"], "dust", dust + 500 * RAD)
        file(section["dog"], "chop", new_chop)
        file(section["spot"], "mat", mat + 5 * RAY // 100)
        for what, value in (("buf", buf + 5 * RAY // 100), ("tail", tail + 600)):
            data = overload_calldata("file(bytes32,uint256)", bytes32(what), value)
            self.builder.send(DEPLOYER, clip, data, f"clip file {what}")
        self.builder.call(DEPLOYER, SPOTTER, section["spot"], "poke", ilk)
        self.moves.append(
            Move(
                "maker",
                ("line", "dust", "chop", "mat", "clip_buf", "clip_tail"),
                f"Maker/Sky (stand-in) ETH-A: line {line / RAD:,.0f} -> {line // 2 / RAD:,.0f} dai, "
                f"dust {dust / RAD:,.0f} -> {dust / RAD + 500:,.0f} dai, "
                f"chop {chop / 1e16:g} -> {new_chop / 1e16:g} %, "
                f"liquidation ratio {mat / 1e25:g} -> {(mat + 5 * RAY // 100) / 1e25:g} % (poked); its clip's "
                f"starting price {buf / 1e25:g} -> {(buf + 5 * RAY // 100) / 1e25:g} % of the feed's, reset after "
                f"{tail:,} -> {tail + 600:,} s",
            )
        )


def govern(rpc: RpcClient, manifest: dict[str, Any]) -> list[Move]:
    """Passes the proposal on every governed protocol the devnet runs, in two blocks (a Comet implementation is
    deployed in the first, the proxy upgraded to it in the second); returns the moves."""
    proposal = _Proposal(rpc, manifest)
    sections = {"aave_v3": proposal.aave, "morpho_blue": proposal.morpho, "maker": proposal.maker}
    for key, move in sections.items():
        if manifest.get(key):
            move(manifest[key])
    if manifest.get("compound_v3"):
        proposal.comet(manifest["compound_v3"])
    proposal.builder.mine(0)
    return proposal.moves
