"""Deploys Morpho Blue (compiled from @morpho-org/morpho-blue with solcjs) and its devnet markets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chainrisk.abi import abi_encode, keccak, load_abi
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.toolchain import compiled_contracts
from chainrisk.units import WAD

SECONDS_PER_YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class MorphoMarketSpec:
    collateral: str  #: collateral token symbol (a plain token, an aToken "aWETH", or vault shares "cvUSDC")
    loan: str  #: loan token symbol
    lltv_bps: int  #: liquidation LTV in bps (must be one Morpho enables)
    fee_bps: int  #: share of interest to the fee recipient, bps


#: LLTVs from Morpho's governance-enabled set (38.5 %, 62.5 %, 77 %, 86 %, 91.5 %, 94.5 %, 96.5 %, 98 %),
#: per Morpho's documentation; pairs like those of the main Ethereum markets. The last two take collateral that
#: is itself a position: Aave's aWETH (collateral chains, issue 7) and the cvUSDC vault's shares, whose vault
#: supplies the WETH/USDC market; they come last so the first four keep their indices.
MARKETS: tuple[MorphoMarketSpec, ...] = (
    MorphoMarketSpec("wstETH", "WETH", 9450, 0),
    MorphoMarketSpec("WBTC", "USDC", 8600, 500),
    MorphoMarketSpec("WETH", "USDC", 8600, 0),
    MorphoMarketSpec("wstETH", "DAI", 7700, 1000),
    MorphoMarketSpec("aWETH", "USDC", 8600, 0),
    MorphoMarketSpec("cvUSDC", "DAI", 9450, 0),
)
#: aTokens posted as Morpho collateral, by devnet symbol, and their underlying: their oracle reads the
#: underlying's feed (an aToken is redeemable 1:1 for its underlying, and real oracles price it so).
ATOKEN_COLLATERAL: dict[str, str] = {"aWETH": "WETH"}

#: IRM curve (per year): 2 % base, +6 % to the 90 % kink, +100 % above it.
IRM_YEARLY = (0.02, 0.06, 1.00, 0.90)


@dataclass(frozen=True)
class MorphoMarket:
    market_id: str  #: keccak256(abi.encode(MarketParams)), 0x-hex
    loan_token: str  #: loan token address
    collateral_token: str  #: collateral token address
    oracle: str  #: FeedRatioOracle address
    irm: str  #: KinkedIrm address
    lltv: int  #: WAD-scaled
    loan_symbol: str  #: loan token symbol
    collateral_symbol: str  #: collateral token symbol

    @property
    def params(self) -> tuple[str, str, str, str, int]:
        return (self.loan_token, self.collateral_token, self.oracle, self.irm, self.lltv)


@dataclass(frozen=True)
class MorphoDeployment:
    morpho: str  #: the Morpho Blue singleton
    irm: str  #: our KinkedIrm
    fee_recipient: str  #: receives fee shares
    markets: list[MorphoMarket]  #: created markets, in MARKETS order


def market_id(params: tuple[str, str, str, str, int]) -> str:
    """MarketParamsLib.id: keccak256 of the five ABI-encoded words."""
    encoded = abi_encode(["address", "address", "address", "address", "uint256"], list(params))
    return "0x" + keccak(encoded).hex()


def deploy_morpho(builder: BlockBuilder) -> MorphoDeployment:
    """The Morpho Blue singleton, our IRM and every LLTV that MARKETS use; markets come from `create_markets`."""
    contracts = compiled_contracts()
    morpho = builder.deploy(contracts["Morpho"], DEPLOYER, label="Morpho")
    base, slope1, slope2, kink = IRM_YEARLY
    irm = builder.deploy(
        contracts["KinkedIrm"],
        round(base * WAD / SECONDS_PER_YEAR),
        round(slope1 * WAD / SECONDS_PER_YEAR),
        round(slope2 * WAD / SECONDS_PER_YEAR),
        round(kink * WAD),
        label="KinkedIrm",
    )
    morpho_abi = load_abi("morpho-blue", "IMorpho")
    fee_recipient = "0x00000000000000000000000000000000000fee00"
    builder.call(DEPLOYER, morpho_abi, morpho, "enableIrm", irm)
    builder.call(DEPLOYER, morpho_abi, morpho, "setFeeRecipient", fee_recipient)
    for lltv_bps in sorted({m.lltv_bps for m in MARKETS}):
        builder.call(DEPLOYER, morpho_abi, morpho, "enableLltv", lltv_bps * WAD // 10_000)
    builder.mine()
    return MorphoDeployment(morpho, irm, fee_recipient, [])


def create_markets(
    builder: BlockBuilder,
    deployment: MorphoDeployment,
    specs: Sequence[MorphoMarketSpec],
    tokens: dict[str, str],
    feeds: dict[str, str],
    decimals: dict[str, int],
) -> None:
    """Creates `specs`' markets, each with a FeedRatioOracle over the two tokens' USD feeds, and appends them to
    `deployment.markets`. `tokens`, `feeds` and `decimals` are by symbol and must cover both sides."""
    morpho_abi = load_abi("morpho-blue", "IMorpho")
    oracle_art = compiled_contracts()["FeedRatioOracle"]
    markets = []
    for spec in specs:
        oracle = builder.deploy(
            oracle_art,
            feeds[spec.collateral],
            feeds[spec.loan],
            decimals[spec.collateral],
            decimals[spec.loan],
            label=f"oracle {spec.collateral}/{spec.loan}",
        )
        market = MorphoMarket(
            market_id="",
            loan_token=tokens[spec.loan],
            collateral_token=tokens[spec.collateral],
            oracle=oracle,
            irm=deployment.irm,
            lltv=spec.lltv_bps * WAD // 10_000,
            loan_symbol=spec.loan,
            collateral_symbol=spec.collateral,
        )
        market = MorphoMarket(**{**market.__dict__, "market_id": market_id(market.params)})
        builder.call(DEPLOYER, morpho_abi, deployment.morpho, "createMarket", market.params)
        markets.append(market)
    builder.mine()
    for spec, market in zip(specs, markets, strict=True):
        if spec.fee_bps:
            builder.call(DEPLOYER, morpho_abi, deployment.morpho, "setFee", market.params, spec.fee_bps * WAD // 10_000)
    builder.mine()
    deployment.markets.extend(markets)


def market_index(markets: Sequence[MorphoMarket], collateral: str, loan: str) -> int:
    """Position of the collateral/loan market in `markets`."""
    for index, market in enumerate(markets):
        if (market.collateral_symbol, market.loan_symbol) == (collateral, loan):
            return index
    raise KeyError(f"no Morpho market {collateral}/{loan}")
