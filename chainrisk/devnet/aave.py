"""Deploys a complete Aave V3 market from the @aave/core-v3 artifacts onto the devnet."""

from __future__ import annotations

from dataclasses import dataclass

from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.prices import FEED_DECIMALS
from chainrisk.devnet.toolchain import aave_artifact, compiled_contracts

PCT = 10**25  #: one percent in ray


@dataclass(frozen=True)
class RateSpec:
    """DefaultReserveInterestRateStrategy parameters, percentages per year."""

    optimal_usage: float  #: kink utilisation, percent
    base: float  #: variable base rate, percent
    slope1: float  #: slope below the kink, percent
    slope2: float  #: slope above the kink, percent


ETH_RATES = RateSpec(80, 0, 3.3, 80)
LST_RATES = RateSpec(45, 0, 4.5, 80)
BTC_RATES = RateSpec(45, 0, 4, 300)
STABLE_RATES = RateSpec(90, 0, 4, 60)
ALT_RATES = RateSpec(45, 0, 7, 300)


@dataclass(frozen=True)
class ReserveSpec:
    """One reserve's risk parameters; basis points as Aave's configurator takes them."""

    symbol: str  #: token symbol on the devnet
    decimals: int  #: token decimals, as on mainnet
    ltv: int  #: loan to value, bps
    liquidation_threshold: int  #: bps
    liquidation_bonus: int  #: bps including the 100 % principal (10500 = 5 % bonus)
    reserve_factor: int  #: bps
    supply_cap: int  #: whole tokens, 0 = none
    borrow_cap: int  #: whole tokens, 0 = none
    rates: RateSpec  #: interest-rate strategy
    borrowable: bool = True  #: variable borrowing enabled
    borrowable_in_isolation: bool = False  #: may be borrowed by isolation-mode wallets
    debt_ceiling: int = 0  #: isolation-mode debt ceiling in USD cents (2 decimals), 0 = not isolated
    emode_category: int = 0  #: 0 = none


#: Risk parameters close to Aave V3 Ethereum's as published on app.aave.com and in the Aave governance
#: risk-parameter updates (2023); LINK is made an isolation asset here to exercise isolation mode, and its
#: ceiling is sized for a devnet population.
RESERVES: tuple[ReserveSpec, ...] = (
    ReserveSpec("WETH", 18, 8050, 8300, 10500, 1500, 1_800_000, 1_400_000, ETH_RATES, emode_category=1),
    ReserveSpec("wstETH", 18, 7850, 8100, 10600, 1500, 750_000, 6_000, LST_RATES, emode_category=1),
    ReserveSpec("WBTC", 8, 7300, 7800, 10500, 2000, 43_000, 28_000, BTC_RATES),
    ReserveSpec(
        "USDC", 6, 7700, 8000, 10450, 1000, 1_760_000_000, 1_580_000_000, STABLE_RATES, borrowable_in_isolation=True
    ),
    ReserveSpec(
        "DAI", 18, 7700, 8000, 10500, 1000, 338_000_000, 271_000_000, STABLE_RATES, borrowable_in_isolation=True
    ),
    ReserveSpec(
        "USDT", 6, 7400, 7600, 10450, 1000, 1_000_000_000, 900_000_000, STABLE_RATES, borrowable_in_isolation=True
    ),
    ReserveSpec("LINK", 18, 5300, 6800, 10700, 2000, 15_000_000, 13_000_000, ALT_RATES, debt_ceiling=500_000_00),
)

#: E-mode category 1: ETH-correlated assets (Aave V3 Ethereum's own category 1: 90 % / 93 % / 1 %).
EMODE_CATEGORY = (1, 9000, 9300, 10100, "ETH correlated")


@dataclass(frozen=True)
class AaveReserve:
    symbol: str  #: token symbol
    asset: str  #: underlying token address
    decimals: int  #: underlying decimals
    a_token: str  #: aToken proxy
    variable_debt_token: str  #: variable debt token proxy
    stable_debt_token: str  #: stable debt token proxy
    feed: str  #: feed the AaveOracle reads: the asset's SettableFeed, or for wstETH its RateFeed over stETH's


@dataclass(frozen=True)
class AaveDeployment:
    pool_addresses_provider: str  #: the market's identity
    pool: str  #: Pool proxy
    pool_configurator: str  #: PoolConfigurator proxy
    acl_manager: str  #: ACLManager
    oracle: str  #: AaveOracle
    data_provider: str  #: AaveProtocolDataProvider
    treasury: str  #: fee receiver named in the reserves
    reserves: dict[str, AaveReserve]  #: by symbol


def _ray(percent: float) -> int:
    return round(percent * PCT)


def deploy_aave(builder: BlockBuilder, tokens: dict[str, str], feeds: dict[str, str]) -> AaveDeployment:
    """Mirrors aave-v3-deploy's order: provider, ACL, linked logic, pool and configurator proxies, reserves.
    `tokens` and `feeds` name each reserve's token and the USD feed its AaveOracle source is."""
    provider_art = aave_artifact("PoolAddressesProvider")
    provider_abi = Abi(provider_art.abi)
    provider = builder.deploy(provider_art, "chainrisk devnet", DEPLOYER, label="PoolAddressesProvider")
    # ACLManager's constructor reverts unless the provider already names an ACL admin.
    builder.call(DEPLOYER, provider_abi, provider, "setACLAdmin", DEPLOYER)
    builder.mine()
    acl_art = aave_artifact("ACLManager")
    acl = builder.deploy(acl_art, provider, label="ACLManager")
    acl_abi = Abi(acl_art.abi)
    builder.call(DEPLOYER, provider_abi, provider, "setACLManager", acl)
    for role in ("addPoolAdmin", "addEmergencyAdmin", "addRiskAdmin"):
        builder.call(DEPLOYER, acl_abi, acl, role, DEPLOYER)
    builder.mine()

    libraries: dict[str, str] = {}
    # FlashLoanLogic links BorrowLogic, so BorrowLogic goes first.
    for name in (
        "SupplyLogic",
        "BorrowLogic",
        "LiquidationLogic",
        "EModeLogic",
        "BridgeLogic",
        "PoolLogic",
        "FlashLoanLogic",
        "ConfiguratorLogic",
    ):
        libraries[name] = builder.deploy(aave_artifact(name, libraries), label=name)

    pool_impl_art = aave_artifact("Pool", libraries)
    pool_impl = builder.deploy(pool_impl_art, provider, label="Pool implementation")
    builder.call(DEPLOYER, Abi(pool_impl_art.abi), pool_impl, "initialize", provider)
    builder.call(DEPLOYER, provider_abi, provider, "setPoolImpl", pool_impl)
    configurator_art = aave_artifact("PoolConfigurator", libraries)
    configurator_impl = builder.deploy(configurator_art, label="PoolConfigurator implementation")
    builder.call(DEPLOYER, Abi(configurator_art.abi), configurator_impl, "initialize", provider)
    builder.call(DEPLOYER, provider_abi, provider, "setPoolConfiguratorImpl", configurator_impl)
    builder.mine()
    reads = builder.rpc.batch([eth_call(provider, provider_abi, fn) for fn in ("getPool", "getPoolConfigurator")])
    pool, configurator = (
        provider_abi.decode(fn, r)[0] for fn, r in zip(("getPool", "getPoolConfigurator"), reads, strict=True)
    )

    data_provider = builder.deploy(aave_artifact("AaveProtocolDataProvider"), provider, label="DataProvider")
    builder.call(DEPLOYER, provider_abi, provider, "setPoolDataProvider", data_provider)
    symbols = [r.symbol for r in RESERVES]
    oracle = builder.deploy(
        aave_artifact("AaveOracle"),
        provider,
        [tokens[s] for s in symbols],
        [feeds[s] for s in symbols],
        "0x0000000000000000000000000000000000000000",
        "0x0000000000000000000000000000000000000000",
        10**FEED_DECIMALS,
        label="AaveOracle",
    )
    builder.call(DEPLOYER, provider_abi, provider, "setPriceOracle", oracle)
    builder.mine()

    # Token implementations take the Pool proxy, not the implementation.
    a_token_impl = builder.deploy(aave_artifact("AToken"), pool, label="AToken implementation")
    variable_impl = builder.deploy(aave_artifact("VariableDebtToken"), pool, label="VariableDebtToken impl")
    stable_impl = builder.deploy(aave_artifact("StableDebtToken"), pool, label="StableDebtToken impl")
    strategy_art = aave_artifact("DefaultReserveInterestRateStrategy")
    strategies: dict[RateSpec, str] = {}
    for spec in RESERVES:
        if spec.rates not in strategies:
            r = spec.rates
            strategies[r] = builder.deploy(
                strategy_art,
                provider,
                _ray(r.optimal_usage),
                _ray(r.base),
                _ray(r.slope1),
                _ray(r.slope2),
                0,
                0,
                0,
                0,
                _ray(20),
                label="InterestRateStrategy",
            )

    treasury = "0x00000000000000000000000000000000000a11ce"
    configurator_abi = load_abi("aave-v3", "IPoolConfigurator")
    zero = "0x0000000000000000000000000000000000000000"
    inputs = [
        (
            a_token_impl,
            stable_impl,
            variable_impl,
            spec.decimals,
            strategies[spec.rates],
            tokens[spec.symbol],
            treasury,
            zero,
            f"Aave Devnet {spec.symbol}",
            f"aDev{spec.symbol}",
            f"Aave Devnet Variable Debt {spec.symbol}",
            f"variableDebtDev{spec.symbol}",
            f"Aave Devnet Stable Debt {spec.symbol}",
            f"stableDebtDev{spec.symbol}",
            b"",
        )
        for spec in RESERVES
    ]
    for reserve_input in inputs:  # one per transaction: each deploys three token proxies
        builder.call(DEPLOYER, configurator_abi, configurator, "initReserves", [reserve_input])
    builder.mine()
    # Collateral, caps, isolation and e-mode are configured before anyone supplies (the debt ceiling
    # setter refuses a reserve that already has suppliers).
    category, e_ltv, e_lt, e_bonus, e_label = EMODE_CATEGORY
    builder.call(
        DEPLOYER, configurator_abi, configurator, "setEModeCategory", category, e_ltv, e_lt, e_bonus, zero, e_label
    )
    for spec in RESERVES:
        asset = tokens[spec.symbol]
        calls: list[tuple[str, tuple[object, ...]]] = [
            ("configureReserveAsCollateral", (asset, spec.ltv, spec.liquidation_threshold, spec.liquidation_bonus)),
            ("setReserveBorrowing", (asset, spec.borrowable)),
            ("setReserveFactor", (asset, spec.reserve_factor)),
            ("setSupplyCap", (asset, spec.supply_cap)),
            ("setBorrowCap", (asset, spec.borrow_cap)),
            ("setBorrowableInIsolation", (asset, spec.borrowable_in_isolation)),
        ]
        if spec.debt_ceiling:
            calls.append(("setDebtCeiling", (asset, spec.debt_ceiling)))
        if spec.emode_category:
            calls.append(("setAssetEModeCategory", (asset, spec.emode_category)))
        for fn, args in calls:
            builder.call(DEPLOYER, configurator_abi, configurator, fn, *args)
    builder.mine()

    data_abi = load_abi("aave-v3", "AaveProtocolDataProvider")
    token_reads = builder.rpc.batch(
        [eth_call(data_provider, data_abi, "getReserveTokensAddresses", tokens[s]) for s in symbols]
    )
    reserves = {}
    for spec, raw in zip(RESERVES, token_reads, strict=True):
        a_token, stable_debt, variable_debt = data_abi.decode("getReserveTokensAddresses", raw)
        reserves[spec.symbol] = AaveReserve(
            spec.symbol, tokens[spec.symbol], spec.decimals, a_token, variable_debt, stable_debt, feeds[spec.symbol]
        )
    return AaveDeployment(provider, pool, configurator, acl, oracle, data_provider, treasury, reserves)


def deploy_tokens_and_feeds(
    builder: BlockBuilder, symbols_decimals: dict[str, int], initial_prices: dict[str, int]
) -> tuple[dict[str, str], dict[str, str]]:
    """A MintableERC20 (Aave's test token, open mint) and a SettableFeed per asset."""
    token_art = aave_artifact("MintableERC20")
    feed = compiled_contracts()["SettableFeed"]
    tokens, feeds = {}, {}
    for symbol, decimals in symbols_decimals.items():
        tokens[symbol] = builder.deploy(token_art, f"Devnet {symbol}", symbol, decimals, label=f"token {symbol}")
        feeds[symbol] = builder.deploy(
            feed, FEED_DECIMALS, initial_prices[symbol], f"{symbol} / USD", label=f"feed {symbol}"
        )
    return tokens, feeds
