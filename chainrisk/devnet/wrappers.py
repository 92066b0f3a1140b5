"""Deploys the devnet's wrapped assets (wstETH over stETH, the cvUSDC Morpho vault) and their on-chain RateFeeds."""

from __future__ import annotations

from dataclasses import dataclass

from chainrisk.abi import Abi
from chainrisk.devnet.morpho import MorphoDeployment, MorphoMarket
from chainrisk.devnet.node import BlockBuilder
from chainrisk.devnet.toolchain import compiled_contracts
from chainrisk.units import WAD


@dataclass(frozen=True)
class LstSpec:
    symbol: str  #: the wrapper's symbol
    base: str  #: the rebasing base token's symbol (not an Aave reserve; a settable feed of its own)
    base_decimals: int  #: decimals of the base token (and of the wrapper)
    initial_rate: int  #: base tokens per wrapper token at deployment, WAD-scaled
    yearly_growth: float  #: growth of the rate per year, compounded once per simulated day


#: wstETH over stETH. The initial rate is wstETH's stEthPerToken in spring 2022 (about 1.09); the growth is a
#: devnet choice near Lido's published stETH staking APR of 2022-23 (3.5-4 % a year). Lido's rate moves once a day,
#: when the accounting oracle reports, so the population reports once per simulated day.
LST = LstSpec("wstETH", "stETH", 18, 109 * 10**16, 0.035)


@dataclass(frozen=True)
class VaultSpec:
    symbol: str  #: the vault share's symbol
    name: str  #: the vault share's name
    collateral: str  #: collateral symbol of the Morpho market the vault supplies
    loan: str  #: loan symbol of that market: the vault's asset


VAULT = VaultSpec("cvUSDC", "Chainrisk devnet USDC vault", "WETH", "USDC")


@dataclass(frozen=True)
class LstDeployment:
    token: str  #: DevnetWstETH
    base_token: str  #: stETH (Aave's MintableERC20)
    feed: str  #: RateFeed: stETH feed x getStETHByWstETH(1e18) / 1e18


@dataclass(frozen=True)
class VaultDeployment:
    token: str  #: MorphoSupplyVault (ERC-4626 shares)
    feed: str  #: RateFeed: USDC feed x convertToAssets(10**decimals) / 10**decimals
    market_id: str  #: the Morpho market it supplies
    decimals: int  #: share decimals, equal to the asset's (decimals offset 0)


def _rate_feed(
    builder: BlockBuilder, base_feed: str, source: str, abi: Abi, fn: str, sample: int, scale: int, label: str
) -> str:
    return builder.deploy(
        compiled_contracts()["RateFeed"], base_feed, source, abi.selector(fn), sample, scale, label, label=label
    )


def deploy_lst(builder: BlockBuilder, base_token: str, base_feed: str, spec: LstSpec = LST) -> LstDeployment:
    """The wrapper over `base_token` at the spec's initial rate, and its USD RateFeed over `base_feed`."""
    contract = compiled_contracts()["DevnetWstETH"]
    token = builder.deploy(contract, base_token, spec.initial_rate, label=spec.symbol)
    unit = 10**spec.base_decimals
    feed = _rate_feed(
        builder, base_feed, token, Abi(contract.abi), "getStETHByWstETH", unit, unit, f"{spec.symbol} / USD"
    )
    return LstDeployment(token, base_token, feed)


def deploy_vault(
    builder: BlockBuilder,
    morpho: MorphoDeployment,
    market: MorphoMarket,
    asset_feed: str,
    asset_decimals: int,
    spec: VaultSpec = VAULT,
) -> VaultDeployment:
    """The ERC-4626 vault supplying `market` (which must exist), and its USD RateFeed over the asset's feed."""
    contract = compiled_contracts()["MorphoSupplyVault"]
    token = builder.deploy(contract, morpho.morpho, market.params, spec.name, spec.symbol, label=spec.symbol)
    unit = 10**asset_decimals
    feed = _rate_feed(
        builder, asset_feed, token, Abi(contract.abi), "convertToAssets", unit, unit, f"{spec.symbol} / USD"
    )
    return VaultDeployment(token, feed, market.market_id, asset_decimals)


def next_rate(rate: int, days: int, spec: LstSpec = LST) -> int:
    """The rate after `days` daily reports, each growing it by the daily share of the yearly growth (exact ints)."""
    daily = round(((1 + spec.yearly_growth) ** (1 / 365) - 1) * WAD)
    for _ in range(days):
        rate = rate * (WAD + daily) // WAD
    return rate
