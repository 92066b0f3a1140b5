"""Deploys a complete Aave V3.6 market (aave-v3-origin 3.6.0's own bytecode, compiled from its npm sources) onto a
devnet, on L1 or as an L2 market behind a PriceOracleSentinel, and drives the positions its tests need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chainrisk.abi import Abi, abi_encode, eth_call, keccak
from chainrisk.devnet.aave import RESERVES, AaveDeployment, AaveReserve, RateSpec, deploy_tokens_and_feeds
from chainrisk.devnet.node import DEPLOYER, BlockBuilder, Receipt
from chainrisk.devnet.prices import BASE_FEEDS, FEED_DECIMALS
from chainrisk.devnet.toolchain import CompiledContract, aave_artifact, aave_origin_contracts, compiled_contracts, link
from chainrisk.devnet.wrappers import LST, LstDeployment, deploy_lst

#: The release whose npm sources are compiled (ORIGIN_CONTRACTS in toolchain), and its PoolInstance.POOL_REVISION.
ORIGIN_VERSION = "3.6.0"
POOL_REVISION = 10
#: Chain id of the devnet's L2 anvil: a local id of our own (anvil's 31337 plus one), not Arbitrum's 42161 nor any
#: public chain's, so no wallet or tool mistakes the devnet for a real rollup.
L2_DEVNET_CHAIN_ID = 31_338
#: PriceOracleSentinel grace period after the sequencer comes back up: one hour, as Aave's rollup markets use.
SEQUENCER_GRACE_S = 3600
#: Liquidation protocol fee: the share of the liquidation bonus the treasury takes, 10 % as on Aave's markets.
LIQUIDATION_PROTOCOL_FEE_BPS = 1000
#: Siloed assets (a wallet borrowing one may borrow nothing else); the isolated ones are RESERVES' debt_ceiling.
SILOED = ("WBTC",)
#: Longest liquidation grace period the configurator accepts (PoolConfigurator.MAX_GRACE_PERIOD, 4 hours).
MAX_GRACE_PERIOD_S = 4 * 3600
ZERO = "0x" + "0" * 40
MAX_UINT = 2**256 - 1
TREASURY = "0x00000000000000000000000000000000000a11ce"
#: The keeper that liquidates on the 3.6 market.
KEEPER36 = "0x000000000000000000000000000000000000b36f"


@dataclass(frozen=True)
class EModeSpec:
    """One 3.2+ e-mode category: its collateral parameters and the bitmaps of assets it admits."""

    category_id: int  #: 1..255
    ltv: int  #: bps
    liquidation_threshold: int  #: bps
    liquidation_bonus: int  #: bps incl. the 100 % principal
    label: str  #: on-chain label (soft-deprecated in 3.6, still set)
    collateral: tuple[str, ...]  #: symbols in the collateral bitmap
    borrowable: tuple[str, ...]  #: symbols in the borrowable bitmap


#: Category 1 as on Aave V3 Ethereum (ETH correlated, 90 / 93 / 1 %), borrowing only WETH: its borrowable set
#: differs from its collateral set. Category 2 (stablecoins) admits USDT, which `offboard` later flags ltvzero.
EMODES: tuple[EModeSpec, ...] = (
    EModeSpec(1, 9000, 9300, 10100, "ETH correlated", ("WETH", "wstETH"), ("WETH",)),
    EModeSpec(2, 9300, 9500, 10100, "Stablecoins", ("USDC", "DAI", "USDT"), ("USDC", "DAI", "USDT")),
)


def _bps(percent: float) -> int:
    return round(percent * 100)


def _rate_data(rates: RateSpec) -> bytes:
    """IDefaultInterestRateStrategyV2.InterestRateData (bps), abi-encoded as InitReserveInput.interestRateData."""
    return abi_encode(
        ["(uint16,uint32,uint32,uint32)"],
        [(_bps(rates.optimal_usage), _bps(rates.base), _bps(rates.slope1), _bps(rates.slope2))],
    )


@dataclass
class _Deployer:
    """Deploys and remembers every contract by label, for the manifest's list."""

    builder: BlockBuilder
    deployed: dict[str, str]

    def __call__(self, contract: CompiledContract, *args: Any, label: str) -> str:
        self.deployed[label] = self.builder.deploy(contract, *args, label=label)
        return self.deployed[label]


def deploy_aave36(
    builder: BlockBuilder,
    tokens: dict[str, str],
    feeds: dict[str, str],
    *,
    l2: bool = False,
    market_id: str = "chainrisk devnet v3.6",
) -> dict[str, Any]:
    """A V3.6 market over the devnet's `tokens`, priced by `feeds` (symbol -> AaveOracle source), with RESERVES'
    risk parameters, the EMODES bitmap categories, LINK isolated, SILOED siloed; returns its manifest section.

    `l2` deploys L2PoolInstance instead of PoolInstance, and a PriceOracleSentinel reading our
    SequencerUptimeFeed (up since before the grace period, so the market opens usable).
    Order as aave-v3-origin's AaveV3SetupProcedure: provider, ACL, rate strategy, logic libraries, pool and
    configurator behind the provider's proxies, oracle, data provider, token implementations, reserves.
    """
    origin = aave_origin_contracts()
    deploy = _Deployer(builder, {})
    provider_abi = Abi(origin["PoolAddressesProvider"].abi)
    provider = deploy(origin["PoolAddressesProvider"], market_id, DEPLOYER, label="PoolAddressesProvider")
    # ACLManager's constructor reverts unless the provider already names an ACL admin.
    builder.call(DEPLOYER, provider_abi, provider, "setACLAdmin", DEPLOYER)
    builder.mine()
    acl_abi = Abi(origin["ACLManager"].abi)
    acl = deploy(origin["ACLManager"], provider, label="ACLManager")
    builder.call(DEPLOYER, provider_abi, provider, "setACLManager", acl)
    for role in ("addPoolAdmin", "addEmergencyAdmin", "addRiskAdmin"):
        builder.call(DEPLOYER, acl_abi, acl, role, DEPLOYER)
    builder.mine()

    # One rate strategy serves every reserve since 3.4 (Pool.RESERVE_INTEREST_RATE_STRATEGY, an immutable).
    strategy = deploy(
        origin["DefaultReserveInterestRateStrategyV2"], provider, label="DefaultReserveInterestRateStrategyV2"
    )
    libraries: dict[str, str] = {}
    # FlashLoanLogic links BorrowLogic, so BorrowLogic goes first.
    for name in ("SupplyLogic", "BorrowLogic", "LiquidationLogic", "PoolLogic", "FlashLoanLogic", "ConfiguratorLogic"):
        libraries[name] = deploy(link(origin[name], libraries), label=name)
    pool_name = "L2PoolInstance" if l2 else "PoolInstance"
    pool_impl = deploy(link(origin[pool_name], libraries), provider, strategy, label=f"{pool_name} implementation")
    builder.call(DEPLOYER, provider_abi, provider, "setPoolImpl", pool_impl)
    configurator_art = link(origin["PoolConfiguratorInstance"], libraries)
    configurator_impl = deploy(configurator_art, label="PoolConfiguratorInstance implementation")
    builder.call(DEPLOYER, provider_abi, provider, "setPoolConfiguratorImpl", configurator_impl)
    builder.mine()
    names = ("getPool", "getPoolConfigurator")
    reads = builder.rpc.batch([eth_call(provider, provider_abi, fn) for fn in names])
    pool, configurator = (provider_abi.decode(fn, r)[0] for fn, r in zip(names, reads, strict=True))
    deploy.deployed["Pool proxy"], deploy.deployed["PoolConfigurator proxy"] = pool, configurator

    data_provider = deploy(origin["AaveProtocolDataProvider"], provider, label="AaveProtocolDataProvider")
    builder.call(DEPLOYER, provider_abi, provider, "setPoolDataProvider", data_provider)
    symbols = [r.symbol for r in RESERVES]
    oracle = deploy(
        origin["AaveOracle"],
        provider,
        [tokens[s] for s in symbols],
        [feeds[s] for s in symbols],
        ZERO,
        ZERO,
        10**FEED_DECIMALS,
        label="AaveOracle",
    )
    builder.call(DEPLOYER, provider_abi, provider, "setPriceOracle", oracle)
    sentinel = sequencer = None
    if l2:
        since = builder.timestamp - SEQUENCER_GRACE_S - 1
        sequencer = deploy(origin["SequencerUptimeFeed"], True, since, label="SequencerUptimeFeed (ours)")
        sentinel = deploy(
            origin["PriceOracleSentinel"], provider, sequencer, SEQUENCER_GRACE_S, label="PriceOracleSentinel"
        )
        builder.call(DEPLOYER, provider_abi, provider, "setPriceOracleSentinel", sentinel)
    builder.mine()

    # Token implementations take the Pool proxy; the aToken's treasury is an immutable of its implementation.
    a_token_impl = deploy(origin["ATokenInstance"], pool, ZERO, TREASURY, label="ATokenInstance implementation")
    debt_impl = deploy(
        origin["VariableDebtTokenInstance"], pool, ZERO, label="VariableDebtTokenInstance implementation"
    )
    configurator_abi = Abi(configurator_art.abi)
    for spec in RESERVES:  # one per transaction: each deploys two token proxies
        reserve_input = (
            a_token_impl,
            debt_impl,
            tokens[spec.symbol],
            f"Aave Devnet 3.6 {spec.symbol}",
            f"aDev36{spec.symbol}",
            f"Aave Devnet 3.6 Variable Debt {spec.symbol}",
            f"variableDebtDev36{spec.symbol}",
            b"",
            _rate_data(spec.rates),
        )
        builder.call(DEPLOYER, configurator_abi, configurator, "initReserves", [reserve_input])
    builder.mine()
    # Risk parameters before anyone supplies: the debt ceiling and siloed setters refuse a reserve in use.
    for spec in RESERVES:
        asset = tokens[spec.symbol]
        calls: list[tuple[str, tuple[object, ...]]] = [
            ("configureReserveAsCollateral", (asset, spec.ltv, spec.liquidation_threshold, spec.liquidation_bonus)),
            ("setReserveBorrowing", (asset, spec.borrowable)),
            ("setReserveFactor", (asset, spec.reserve_factor)),
            ("setSupplyCap", (asset, spec.supply_cap)),
            ("setBorrowCap", (asset, spec.borrow_cap)),
            ("setBorrowableInIsolation", (asset, spec.borrowable_in_isolation)),
            ("setLiquidationProtocolFee", (asset, LIQUIDATION_PROTOCOL_FEE_BPS)),
        ]
        if spec.debt_ceiling:
            calls.append(("setDebtCeiling", (asset, spec.debt_ceiling)))
        if spec.symbol in SILOED:
            calls.append(("setSiloedBorrowing", (asset, True)))
        for fn, args in calls:
            builder.call(DEPLOYER, configurator_abi, configurator, fn, *args)
    for category in EMODES:
        builder.call(
            DEPLOYER,
            configurator_abi,
            configurator,
            "setEModeCategory",
            category.category_id,
            category.ltv,
            category.liquidation_threshold,
            category.liquidation_bonus,
            category.label,
        )
        for symbol in category.collateral:
            builder.call(
                DEPLOYER,
                configurator_abi,
                configurator,
                "setAssetCollateralInEMode",
                tokens[symbol],
                category.category_id,
                True,
            )
        for symbol in category.borrowable:
            builder.call(
                DEPLOYER,
                configurator_abi,
                configurator,
                "setAssetBorrowableInEMode",
                tokens[symbol],
                category.category_id,
                True,
            )
    builder.mine()

    pool_abi = Abi(origin["PoolInstance"].abi)
    raw = builder.rpc.batch([eth_call(pool, pool_abi, "getReserveData", tokens[s]) for s in symbols])
    reserves = {}
    for spec, item in zip(RESERVES, raw, strict=True):
        data = pool_abi.decode("getReserveData", item)[0]
        reserves[spec.symbol] = {
            "symbol": spec.symbol,
            "asset": tokens[spec.symbol],
            "decimals": spec.decimals,
            "reserve_id": data[7],
            "a_token": data[8],
            "variable_debt_token": data[10],
            "stable_debt_token": ZERO,  # no stable debt since 3.2
            "feed": feeds[spec.symbol],
        }
    return {
        "version": ORIGIN_VERSION,
        "pool_revision": POOL_REVISION,
        "l2": l2,
        "pool_addresses_provider": provider,
        "pool": pool,
        "pool_configurator": configurator,
        "acl_manager": acl,
        "oracle": oracle,
        "data_provider": data_provider,
        "interest_rate_strategy": strategy,
        "price_oracle_sentinel": sentinel,
        "sequencer_uptime_feed": sequencer,
        "treasury": TREASURY,
        "reserves": reserves,
        "emode_categories": {
            str(c.category_id): {
                "label": c.label,
                "ltv": c.ltv,
                "liquidation_threshold": c.liquidation_threshold,
                "liquidation_bonus": c.liquidation_bonus,
                "collateral": list(c.collateral),
                "borrowable": list(c.borrowable),
            }
            for c in EMODES
        },
        "isolated": [s.symbol for s in RESERVES if s.debt_ceiling],
        "siloed": list(SILOED),
        "contracts": deploy.deployed,
    }


def as_aave_deployment(section: dict[str, Any]) -> AaveDeployment:
    """deploy_aave36's section as the AaveDeployment the 3.0.2 market's callers take (the population drives either
    market through it; the section's extra keys are V3.6's own)."""
    reserves = {
        symbol: AaveReserve(
            r["symbol"],
            r["asset"],
            r["decimals"],
            r["a_token"],
            r["variable_debt_token"],
            r["stable_debt_token"],
            r["feed"],
        )
        for symbol, r in section["reserves"].items()
    }
    return AaveDeployment(
        section["pool_addresses_provider"],
        section["pool"],
        section["pool_configurator"],
        section["acl_manager"],
        section["oracle"],
        section["data_provider"],
        section["treasury"],
        reserves,
    )


def deploy_with_assets(builder: BlockBuilder, initial: dict[str, int], *, l2: bool = False) -> dict[str, Any]:
    """A chain of its own (the L2 devnet, or a test's): the base tokens and settable feeds at `initial` answers
    (symbol -> FEED_DECIMALS answer, BASE_FEEDS' symbols), the wstETH wrapper and its derived feed, then the 3.6
    market over them; returns {"market": deploy_aave36's section, "tokens", "feeds" (settable), "lst"}."""
    decimals = {r.symbol: r.decimals for r in RESERVES} | {LST.base: LST.base_decimals}
    tokens, feeds = deploy_tokens_and_feeds(builder, {s: decimals[s] for s in BASE_FEEDS}, initial)
    lst = deploy_lst(builder, tokens[LST.base], feeds[LST.base])
    tokens[LST.symbol] = lst.token
    market = deploy_aave36(builder, tokens, {**feeds, LST.symbol: lst.feed}, l2=l2)
    return {"market": market, "tokens": tokens, "feeds": feeds, "lst": lst}


def wallet36(name: str) -> str:
    """A scenario wallet's address: the last 20 bytes of keccak("aave36:" + name), impersonated on anvil."""
    return "0x" + keccak(f"aave36:{name}".encode()).hex()[-40:]


#: DeficitCreated(address indexed user, address indexed debtAsset, uint256 amountCreated), IPool since 3.3.
DEFICIT_CREATED_TOPIC = "0x" + keccak(b"DeficitCreated(address,address,uint256)").hex()


class Aave36Driver:
    """Queues wallet, keeper and governance actions on a deployed 3.6 market and mines them, each action required
    to succeed (a revert raises TransactionFailed), so a scenario that did not happen never passes silently."""

    def __init__(
        self,
        builder: BlockBuilder,
        market: dict[str, Any],
        base_feeds: dict[str, str],
        lst: LstDeployment | None = None,
    ) -> None:
        """`market`: deploy_aave36's section; `base_feeds`: the settable feeds by symbol (the stETH one moves
        wstETH's derived feed); `lst`: the devnet's LstDeployment, to fund wstETH by wrapping minted stETH."""
        origin = aave_origin_contracts()
        self.builder = builder
        self.market = market
        self.base_feeds = base_feeds
        self.lst = lst
        self.pool_abi = Abi(origin["PoolInstance"].abi)
        self.configurator_abi = Abi(origin["PoolConfiguratorInstance"].abi)
        self.a_token_abi = Abi(origin["ATokenInstance"].abi)
        self.oracle_abi = Abi(origin["AaveOracle"].abi)
        self.sequencer_abi = Abi(origin["SequencerUptimeFeed"].abi)
        self.feed_abi = Abi(compiled_contracts()["SettableFeed"].abi)
        self.lst_abi = Abi(compiled_contracts()["DevnetWstETH"].abi)
        self.mint_abi = Abi(aave_artifact("MintableERC20").abi)
        self.reserves: dict[str, dict[str, Any]] = market["reserves"]
        self.approved: set[tuple[str, str, str]] = set()

    # -- amounts -----------------------------------------------------------------------------------------------
    def prices(self) -> dict[str, int]:
        """AaveOracle.getAssetPrice of every reserve now (base currency, FEED_DECIMALS)."""
        raw = self.builder.rpc.batch(
            [
                eth_call(self.market["oracle"], self.oracle_abi, "getAssetPrice", r["asset"])
                for r in self.reserves.values()
            ]
        )
        return {s: int(self.oracle_abi.decode("getAssetPrice", x)[0]) for s, x in zip(self.reserves, raw, strict=True)}

    def units(self, symbol: str, usd: float, prices: dict[str, int]) -> int:
        """Token units worth `usd` at `prices`."""
        return int(usd * 10**FEED_DECIMALS * 10 ** self.reserves[symbol]["decimals"]) // prices[symbol]

    # -- wallets -----------------------------------------------------------------------------------------------
    def _pool(self, who: str, fn: str, *args: Any) -> None:
        self.builder.call(who, self.pool_abi, self.market["pool"], fn, *args)

    def fund(self, who: str, symbol: str, amount: int) -> None:
        """Mints `amount` to `who` (open-mint test tokens; wstETH minted as stETH and wrapped) and approves the pool."""
        token = self.reserves[symbol]["asset"]
        if symbol == "wstETH" and self.lst is not None:
            rate = self.lst_abi.decode(
                "stEthPerToken", self.builder.rpc.call(*eth_call(self.lst.token, self.lst_abi, "stEthPerToken"))
            )[0]
            steth = -(-amount * rate // 10**18) + 1  # wrapping rounds down
            self.builder.call(who, self.mint_abi, self.lst.base_token, "mint", steth)
            self._approve(who, self.lst.base_token, self.lst.token)
            self.builder.call(who, self.lst_abi, self.lst.token, "wrap", steth)
        else:
            self.builder.call(who, self.mint_abi, token, "mint", amount)
        self._approve(who, token, self.market["pool"])

    def _approve(self, who: str, token: str, spender: str) -> None:
        if (who, token, spender) not in self.approved:
            self.builder.call(who, self.a_token_abi, token, "approve", spender, MAX_UINT)
            self.approved.add((who, token, spender))

    def supply(self, who: str, symbol: str, amount: int) -> None:
        self.fund(who, symbol, amount)
        self._pool(who, "supply", self.reserves[symbol]["asset"], amount, who, 0)

    def borrow(self, who: str, symbol: str, amount: int) -> None:
        self._pool(who, "borrow", self.reserves[symbol]["asset"], amount, 2, 0, who)

    def repay(self, who: str, symbol: str, amount: int, *, funded: int = 0) -> None:
        """Repays `amount` (MAX_UINT: all); `funded` mints that much first (a full repay needs the interest too)."""
        if funded:
            self.fund(who, symbol, funded)
        self._approve(who, self.reserves[symbol]["asset"], self.market["pool"])
        self._pool(who, "repay", self.reserves[symbol]["asset"], amount, 2, who)

    def withdraw(self, who: str, symbol: str, amount: int) -> None:
        self._pool(who, "withdraw", self.reserves[symbol]["asset"], amount, who)

    def set_emode(self, who: str, category: int) -> None:
        self._pool(who, "setUserEMode", category)

    def set_collateral(self, who: str, symbol: str, enabled: bool) -> None:
        self._pool(who, "setUserUseReserveAsCollateral", self.reserves[symbol]["asset"], enabled)

    def transfer_a_token(self, sender: str, receiver: str, symbol: str, amount: int) -> None:
        """An aToken transfer; since 3.6 the receiver does not get the asset enabled as collateral."""
        self.builder.call(sender, self.a_token_abi, self.reserves[symbol]["a_token"], "transfer", receiver, amount)

    def liquidate(
        self, collateral: str, debt: str, user: str, amount: int = MAX_UINT, *, receive_a_token: bool = False
    ) -> None:
        """KEEPER36 liquidates `user` (fund it with the debt asset first: `fund(KEEPER36, ...)`)."""
        self._pool(
            KEEPER36,
            "liquidationCall",
            self.reserves[collateral]["asset"],
            self.reserves[debt]["asset"],
            user,
            amount,
            receive_a_token,
        )

    # -- market ------------------------------------------------------------------------------------------------
    def set_price(self, symbol: str, answer: int) -> None:
        """Moves a settable base feed (stETH's moves wstETH's derived feed)."""
        self.builder.call(DEPLOYER, self.feed_abi, self.base_feeds[symbol], "setAnswer", answer)

    def _configure(self, fn: str, *args: Any) -> None:
        self.builder.call(DEPLOYER, self.configurator_abi, self.market["pool_configurator"], fn, *args)

    def set_ltvzero_in_emode(self, symbol: str, category: int, ltvzero: bool = True) -> None:
        """PoolConfigurator.setAssetLtvzeroInEMode (3.6): the asset keeps its threshold but lends nothing there."""
        self._configure("setAssetLtvzeroInEMode", self.reserves[symbol]["asset"], category, ltvzero)

    def set_reserve_ltvzero(self, symbol: str, ltvzero: bool = True) -> None:
        """PoolConfigurator.setReserveLtvzero (3.6): LTV 0 outside e-mode, the old LTV kept as pending."""
        self._configure("setReserveLtvzero", self.reserves[symbol]["asset"], ltvzero)

    def grace_period(self, symbol: str, seconds: int) -> None:
        """Pauses the reserve, then unpauses it with a liquidation grace period of `seconds` from now."""
        asset = self.reserves[symbol]["asset"]
        self._configure("setReservePause", asset, True)
        self._configure("setReservePause", asset, False, seconds)

    def set_sequencer(self, up: bool, since: int) -> None:
        """The L2 market's sequencer status (our SequencerUptimeFeed) as of `since`."""
        feed = self.market["sequencer_uptime_feed"]
        if feed is None:
            raise ValueError("this market has no sequencer feed (deployed without l2=True)")
        self.builder.call(DEPLOYER, self.sequencer_abi, feed, "setStatus", up, since)

    def mine(self, advance_s: int = 1) -> list[Receipt]:
        """Mines what is queued `advance_s` seconds after the previous block; interest accrues over the gap."""
        return self.builder.mine(advance_s)


def deficits(receipts: list[Receipt]) -> list[tuple[str, str, int]]:
    """(user, debt asset, amount) of every DeficitCreated event in `receipts`."""
    found = []
    for receipt in receipts:
        for log in receipt.logs:
            if log["topics"][0] == DEFICIT_CREATED_TOPIC:
                user, asset = ("0x" + t[-40:] for t in log["topics"][1:3])
                found.append((user, asset, int(log["data"], 16)))
    return found


#: The wallet that supplies every reserve's liquidity.
LIQUIDITY_PROVIDER = "liquidity_provider"
#: run_scenarios' wallets, one per behaviour (ScenarioResult.wallets maps each to its address, plus "keeper").
SCENARIO_ROLES = (
    LIQUIDITY_PROVIDER,
    "plain",
    "emode_eth",
    "emode_eth_liquidatable",
    "emode_stable",
    "emode_mixed",
    "emode_back",
    "dai_outside",
    "dai_inside",
    "isolated",
    "siloed",
    "toggle",
    "sender",
    "receiver",
    "receiver_enables",
    "repayer",
    "repay_all",
    "withdrawer",
    "crash_survivor",
    "crash_mild",
    "crash_deep",
    "crash_partial",
    "crash_small",
    "deficit",
    "deficit_open",
    "deficit_two",
    "grace",
)


@dataclass(frozen=True)
class ScenarioResult:
    wallets: dict[str, str]  #: role -> address of every scenario wallet (the keeper and liquidity provider too)
    deficits: list[tuple[str, str, int]]  #: DeficitCreated (user, debt asset, amount) the liquidations left
    grace_until: int  #: liquidation grace period end of the grace reserve (WBTC)


def run_scenarios(driver: Aave36Driver, *, accrual_days: int = 61) -> ScenarioResult:
    """Every 3.6 behaviour the tests check, one wallet per role: bitmap e-modes (switches across categories,
    a borrowable set narrower than the collateral set, an e-mode ltvzero asset, a reserve ltvzero outside e-mode),
    isolation, siloed borrowing, collateral toggles, aToken transfers (received aTokens not collateral), repays,
    withdrawals, `accrual_days` of interest, a crash (WETH -15 %, stETH -22 %, WBTC -10 %, LINK x2), keeper
    liquidations (one leaving a deficit, one leaving deficits in both debts of a wallet, one partial into aTokens;
    `deficit_open` is left for a liquidator that would book one), a liquidation grace period on WBTC, and on an L2
    market the sequencer down at the end."""
    w = {role: wallet36(role) for role in SCENARIO_ROLES}
    w["keeper"] = KEEPER36
    prices = driver.prices()

    def usd(symbol: str, amount: float) -> int:
        return driver.units(symbol, amount, prices)

    lp = w[LIQUIDITY_PROVIDER]
    for symbol in driver.reserves:
        driver.supply(lp, symbol, usd(symbol, 100_000))
    driver.mine()
    # Utilisation well above zero so that interest accrues visibly over the months.
    driver.supply(w["plain"], "WETH", usd("WETH", 10_000))
    driver.supply(w["emode_eth"], "wstETH", usd("wstETH", 10_000))
    driver.supply(w["emode_eth_liquidatable"], "wstETH", usd("wstETH", 10_000))
    for role in ("emode_eth", "emode_eth_liquidatable"):
        driver.set_emode(w[role], 1)
    driver.supply(w["emode_stable"], "USDC", usd("USDC", 5_000))
    driver.supply(w["emode_stable"], "USDT", usd("USDT", 5_000))
    driver.set_emode(w["emode_stable"], 2)
    driver.supply(w["emode_mixed"], "WETH", usd("WETH", 5_000))
    driver.supply(w["emode_mixed"], "USDC", usd("USDC", 5_000))
    driver.set_emode(w["emode_mixed"], 1)
    driver.supply(w["emode_back"], "WETH", usd("WETH", 10_000))
    driver.set_emode(w["emode_back"], 1)
    driver.supply(w["dai_outside"], "DAI", usd("DAI", 10_000))
    driver.supply(w["dai_inside"], "DAI", usd("DAI", 10_000))
    driver.set_emode(w["dai_inside"], 2)
    # Since 3.6 an isolated collateral is not enabled by supplying it: the wallet enables it itself.
    driver.supply(w["isolated"], "LINK", usd("LINK", 10_000))
    driver.set_collateral(w["isolated"], "LINK", True)
    driver.supply(w["siloed"], "WETH", usd("WETH", 10_000))
    driver.supply(w["toggle"], "WETH", usd("WETH", 10_000))
    driver.supply(w["toggle"], "USDC", usd("USDC", 10_000))
    driver.set_collateral(w["toggle"], "USDC", False)
    driver.supply(w["sender"], "WETH", usd("WETH", 10_000))
    driver.supply(w["repayer"], "WETH", usd("WETH", 10_000))
    driver.supply(w["repay_all"], "WETH", usd("WETH", 10_000))
    driver.supply(w["withdrawer"], "USDC", usd("USDC", 10_000))
    driver.supply(w["crash_survivor"], "WETH", usd("WETH", 10_000))
    driver.supply(w["crash_mild"], "WETH", usd("WETH", 10_000))
    driver.supply(w["crash_deep"], "WETH", usd("WETH", 10_000))
    driver.supply(w["crash_partial"], "WETH", usd("WETH", 20_000))
    driver.supply(w["crash_small"], "WETH", usd("WETH", 1_500))
    driver.supply(w["deficit"], "USDC", usd("USDC", 2_000))
    driver.supply(w["deficit_open"], "USDC", usd("USDC", 2_500))
    driver.supply(w["deficit_two"], "USDC", usd("USDC", 2_000))
    driver.supply(w["grace"], "WBTC", usd("WBTC", 10_000))
    driver.mine()

    driver.borrow(w["plain"], "USDC", usd("USDC", 5_000))
    driver.borrow(w["emode_eth"], "WETH", usd("WETH", 8_300))
    driver.borrow(w["emode_eth_liquidatable"], "WETH", usd("WETH", 8_700))
    driver.borrow(w["emode_stable"], "DAI", usd("DAI", 8_000))
    # Category 1 -> 2 with no debt, then a borrow in 2: WETH keeps its own threshold there, USDC takes 2's.
    driver.set_emode(w["emode_mixed"], 2)
    driver.borrow(w["emode_mixed"], "USDC", usd("USDC", 6_000))
    driver.borrow(w["emode_back"], "WETH", usd("WETH", 5_000))
    driver.set_emode(w["emode_back"], 0)
    driver.borrow(w["dai_outside"], "WETH", usd("WETH", 5_000))
    driver.borrow(w["dai_inside"], "USDC", usd("USDC", 6_000))
    driver.borrow(w["isolated"], "USDC", usd("USDC", 3_000))
    driver.borrow(w["siloed"], "WBTC", usd("WBTC", 3_000))
    driver.borrow(w["toggle"], "DAI", usd("DAI", 4_000))
    driver.transfer_a_token(w["sender"], w["receiver"], "WETH", usd("WETH", 4_000))
    driver.transfer_a_token(w["sender"], w["receiver_enables"], "WETH", usd("WETH", 4_000))
    driver.borrow(w["repayer"], "USDC", usd("USDC", 6_000))
    driver.borrow(w["repay_all"], "USDC", usd("USDC", 6_000))
    driver.borrow(w["withdrawer"], "WETH", usd("WETH", 2_000))
    # WETH -15 % later: the survivor ends at health ~1.02, mild ~0.97 (50 % close factor), deep ~0.90 (100 %).
    for role, target in (("crash_survivor", 1.02), ("crash_mild", 0.97), ("crash_deep", 0.90)):
        driver.borrow(w[role], "USDC", usd("USDC", 10_000 * 0.83 * 0.85 / target))
    driver.borrow(w["crash_partial"], "USDC", usd("USDC", 20_000 * 0.83 * 0.85 / 0.93))
    driver.borrow(w["crash_small"], "USDC", usd("USDC", 1_500 * 0.83 * 0.85 / 0.97))
    driver.borrow(w["deficit"], "LINK", usd("LINK", 1_500))
    driver.borrow(w["deficit_open"], "LINK", usd("LINK", 1_800))
    # Two debts: once LINK doubles, liquidating the LINK takes all the USDC, and the pool books the LINK left and all
    # the DAI as deficits (3.3+'s _burnBadDebt), one DeficitCreated each before the LiquidationCall.
    driver.borrow(w["deficit_two"], "LINK", usd("LINK", 1_000))
    driver.borrow(w["deficit_two"], "DAI", usd("DAI", 400))
    driver.borrow(w["grace"], "DAI", usd("DAI", 7_200))
    driver.mine()
    driver.set_collateral(w["receiver_enables"], "WETH", True)
    driver.mine()
    driver.borrow(w["receiver_enables"], "USDC", usd("USDC", 2_000))
    driver.repay(w["repayer"], "USDC", usd("USDC", 3_000))
    driver.repay(w["repay_all"], "USDC", MAX_UINT, funded=usd("USDC", 6_100))
    driver.withdraw(w["withdrawer"], "USDC", usd("USDC", 3_000))
    driver.mine()

    driver.mine(accrual_days * 86_400)
    # Offboarding as governance does it: USDT lends nothing in category 2 any more, DAI nothing outside e-mode;
    # the wallets already holding them keep them as collateral (ltvzero collateral).
    driver.set_ltvzero_in_emode("USDT", 2)
    driver.set_reserve_ltvzero("DAI")
    driver.mine()

    answers = {
        symbol: int(driver.feed_abi.decode("latestAnswer", raw)[0])
        for symbol, raw in zip(
            driver.base_feeds,
            driver.builder.rpc.batch(
                [eth_call(f, driver.feed_abi, "latestAnswer") for f in driver.base_feeds.values()]
            ),
            strict=True,
        )
    }
    for symbol, factor in (("WETH", 0.85), ("stETH", 0.78), ("WBTC", 0.90), ("LINK", 2.0)):
        driver.set_price(symbol, int(answers[symbol] * factor))
    driver.mine(3600)

    prices = driver.prices()
    for symbol, usd_amount in (("LINK", 10_000), ("USDC", 40_000)):
        driver.fund(KEEPER36, symbol, usd(symbol, usd_amount))
    driver.liquidate("USDC", "LINK", w["deficit"])
    driver.liquidate("USDC", "LINK", w["deficit_two"])
    driver.liquidate("WETH", "USDC", w["crash_partial"], usd("USDC", 1_500), receive_a_token=True)
    receipts = driver.mine(60)
    driver.mine(86_400)
    grace_start = driver.builder.timestamp + 60
    driver.grace_period("WBTC", MAX_GRACE_PERIOD_S)
    if driver.market["l2"]:
        # The sequencer goes down: the sentinel now blocks borrows, and liquidations above health 0.95.
        driver.set_sequencer(False, grace_start)
    driver.mine(60)
    return ScenarioResult(w, deficits(receipts), grace_start + MAX_GRACE_PERIOD_S)
