"""Compound V3 (Comet) scales (CometCore.sol) and the official markets as presets, each with the source of its
address and deployment block."""

from __future__ import annotations

from dataclasses import dataclass

from chainrisk.protocols.aave_v3.address_book import chains

#: CometCore.BASE_INDEX_SCALE: indices start at 1e15 and only grow.
BASE_INDEX_SCALE = 10**15
#: CometCore.FACTOR_SCALE: collateral factors, utilization and per-second rates (1e18 = 1).
FACTOR_SCALE = 10**18
#: Comet.getAssetInfo keeps each factor to four decimals: a factor is a whole number of these.
FACTOR_PER_BPS = FACTOR_SCALE // 10_000
#: CometCore.PRICE_FEED_DECIMALS: every price Comet reads has 8 decimals.
PRICE_SCALE = 10**8
WAD = 10**18
#: userBasic.assetsIn holds assets 0-15; CometWithExtendedAssetList keeps assets 16-23 in userBasic._reserved.
EXTENDED_ASSETS_SHIFT = 16


@dataclass(frozen=True)
class OfficialMarket:
    chain: str  #: chain name in the preset
    chain_id: int  #: EIP-155 chain id
    base: str  #: base asset, as the market's folder in compound-finance/comet's deployments/ names it
    comet: str  #: the market's proxy (cToken), lowercase hex
    deployed_block: int | None  #: the block that created the proxy (None: the index finds it on chain)
    usd_oracle: str | None  #: the chain's Aave V3 AaveOracle, for USD prices (None: no Aave V3 on that chain)


# Each chain Aave V3 is on (@aave-dao/aave-address-book, aave_v3/address_book.json), by its word: its chain id, and
# the AaveOracle (USD, 8 decimals) of its market, which values a Comet's assets in USD.
_AAVE = {chain.word: chain for chain in chains().values()}
#: Chains of Comets where Aave V3 has no market: their ids from compound-finance/comet's hardhat.config.ts.
_OTHER_CHAIN_IDS = {"ronin": 2020, "unichain": 130}

# Every address: compound-finance/comet deployments/<network>/<base>/roots.json, key "comet" (the cToken proxy;
# network "mainnet" is Ethereum). Every block: the proxy's creation block as Compound-Foundation/webb3-backend-api
# records it (c3-api/lib/well-known/contracts/<chain>-mainnet.ts, the Comet's `block.number`); it agrees with
# messari/subgraphs' Configurator start blocks (each first market's proxy is created a few blocks before its
# chain's Configurator proxy, as comet's src/deploy/Network.ts orders the deployment).
_MARKETS = (
    ("ethereum", "usdc", "0xc3d688b66703497daa19211eedff47f25384cdc3", 15_331_586),
    ("ethereum", "weth", "0xa17581a9e3356d9a858b789d68b4d866e593ae94", 16_400_710),
    ("ethereum", "usdt", "0x3afdc9bca9213a35503b077a6072f3d0d5ab0840", 20_190_637),
    ("ethereum", "wsteth", "0x3d0bb1ccab520a66e607822fc55bc921738fafe3", 20_683_535),
    ("ethereum", "usds", "0x5d409e56d886231adaf00c8775665ad0f9897b56", 20_987_551),
    ("ethereum", "wbtc", "0xe85dc543813b8c2cfeaac371517b925a166a9293", 21_820_087),
    ("arbitrum", "usdc.e", "0xa5edbdd9646f8dff606d7448e414884c7d905dca", 87_335_214),
    ("arbitrum", "usdc", "0x9c4ec768c28520b50860ea7a15bd7213a9ff58bf", 122_080_500),
    ("arbitrum", "weth", "0x6f7d514bbd4aff3bcd1140b7344b32f063dee486", 219_386_101),
    ("arbitrum", "usdt", "0xd98be00b5d27fc98112bde293e487f8d4ca57d07", 223_796_350),
    ("base", "usdbc", "0x9c4ec768c28520b50860ea7a15bd7213a9ff58bf", 2_197_588),
    ("base", "weth", "0x46e6b214b524310239732d51387075e0e70970bf", 2_495_303),
    ("base", "usdc", "0xb125e6687d4313864e53df431d5425969c15eb2f", 11_699_480),
    ("base", "aero", "0x784efeb622244d2348d4f2522f8860b96fbece89", 20_852_405),
    ("base", "usds", "0x2c776041ccfe903071af44aa147368a9c8eea518", 26_046_502),
    ("optimism", "usdc", "0x2e44e174f7d53f0212823acc11c01a11d58c5bcb", 118_406_276),
    ("optimism", "usdt", "0x995e394b8b2437ac8ce61ee0bc610d617962b214", 120_295_564),
    ("optimism", "weth", "0xe36a30d249f7761327fd973001a32010b521b6fd", 122_730_232),
    ("polygon", "usdc", "0xf25212e676d1f7f89cd72ffee66158f541246445", 39_412_367),
    ("polygon", "usdt", "0xaeb318360f27748acb200ce616e389a6c9409a07", 58_479_907),
    ("scroll", "usdc", "0xb2f97c1bd3bf02f5e74d13f02e3e26f93d77ce44", 3_397_674),
    ("mantle", "usde", "0x606174f62cd968d8e684c645080fa694c1d7786e", 70_789_050),
    # Listed in deployments/ since (the repository as of May 2026, d5a30b0): no block source as above, so the index
    # finds each proxy's first block with code; Ronin and Unichain have no Aave V3 market for USD prices.
    ("linea", "usdc", "0x8d38a3d6b3c3b7d96d6536da7eef94a9d7dbc991", None),
    ("linea", "weth", "0x60f2058379716a64a7a5d29219397e79bc552194", None),
    ("ronin", "weth", "0x4006ed4097ee51c09a04c3b0951d28ccf19e6dfe", None),
    ("ronin", "wron", "0xc0afdbd1ceb621ef576ba969ce9d4cef78dbc0c0", None),
    ("unichain", "usdc", "0x2c7118c4c88b9841fcf839074c26ae8f035f2921", None),
    ("unichain", "weth", "0x6c987dde50db1dcdd32cd4175778c2a291978e2a", None),
)


MARKETS: dict[str, OfficialMarket] = {
    f"compound-v3-{chain}-{base}": OfficialMarket(
        chain,
        _AAVE[chain].chain_id if chain in _AAVE else _OTHER_CHAIN_IDS[chain],
        base,
        comet,
        block,
        _AAVE[chain].usd_oracle if chain in _AAVE else None,
    )
    for chain, base, comet, block in _MARKETS
}
