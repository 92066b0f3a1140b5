"""Aave V3 market presets and the protocol's fixed-point constants."""

from __future__ import annotations

from dataclasses import dataclass

from chainrisk.protocols.aave_v3.address_book import stored

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
    from_block: int | None  #: a block at or before the provider's deployment (None: found on chain)


def _presets() -> dict[str, MarketPreset]:
    markets = {
        str(m["name"]): MarketPreset(str(m["name"]), int(str(m["chain_id"])), str(m["pool_addresses_provider"]), None)
        for m in stored()
    }
    # SparkLend's PoolAddressesProviders, from Spark's address registry (marsfoundation/spark-address-registry,
    # src/Ethereum.sol and src/Gnosis.sol, POOL_ADDRESSES_PROVIDER). Ethereum's was deployed in early 2023, so its
    # scan starts at 16,700,000 (February 2023), before any Spark event; Gnosis's block is found on chain.
    spark = (
        MarketPreset("spark-ethereum", 1, "0x02c3ea4e34c0cbd694d2adfa2c690eecbc1793ee", 16_700_000),
        MarketPreset("spark-gnosis", 100, "0xa98dacb3fc964a6a0d2ce3b77294241585eaba6d", None),
    )
    return {**markets, **{s.name: s for s in spark}}


#: Every official Aave V3 market (generated from @aave-dao/aave-address-book: address_book.py), and SparkLend's.
PRESETS: dict[str, MarketPreset] = _presets()
