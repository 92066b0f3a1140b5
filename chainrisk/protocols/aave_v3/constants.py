"""Aave V3 market presets and the protocol's fixed-point constants."""

from __future__ import annotations

from dataclasses import dataclass

WAD = 10**18
RAY = 10**27
HALF_RAY = RAY // 2
PERCENTAGE_FACTOR = 10**4
HALF_PERCENTAGE_FACTOR = PERCENTAGE_FACTOR // 2
MAX_UINT256 = 2**256 - 1
#: Mainnet's default: blocks behind the head the indexer stays, so a reorg rarely touches stored data.
DEFAULT_MAINNET_CONFIRMATIONS = 12


@dataclass(frozen=True)
class MarketPreset:
    name: str  #: what `--market` takes
    chain_id: int  #: chain the market lives on
    pool_addresses_provider: str  #: lowercase hex
    from_block: int  #: a block at or before the provider's deployment


PRESETS: dict[str, MarketPreset] = {
    # PoolAddressesProvider of Aave V3 Ethereum (Core): bgd-labs/aave-address-book, AaveV3Ethereum.
    # The Pool's first events are at block 16,291,127 (Dec 2022); the scan starts a little before.
    "aave-v3-ethereum": MarketPreset("aave-v3-ethereum", 1, "0x2f39d218133afab8f2b819b1066c7e434ad94e9e", 16_291_000),
    # Spark (SparkLend) PoolAddressesProvider: Spark's address registry (spark-address-registry, Ethereum);
    # deployed in early 2023, so the scan starts at 16,700,000 (February 2023), before any Spark event.
    "spark-ethereum": MarketPreset("spark-ethereum", 1, "0x02c3ea4e34c0cbd694d2adfa2c690eecbc1793ee", 16_700_000),
}
