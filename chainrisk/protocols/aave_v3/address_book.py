"""Every official Aave V3 market as a preset, read from the pinned npm package @aave-dao/aave-address-book.

The package (installed with the devnet's npm packages) is the source: `python -m chainrisk.protocols.aave_v3.
address_book` writes its V3 markets on production chains to address_book.json beside this module, which ships with
chainrisk (users need no npm), and a test regenerates it from the installed package to keep the two equal. Testnets
are left out. The address book names no deployment block: the index finds it on chain (the contract's first block).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from chainrisk.protocols.generated import package_version, read_rows, write_rows

#: The generated presets: one entry per market, in name order.
MARKETS_FILE = Path(__file__).parent / "address_book.json"
#: Where the package's compiled modules are, under node_modules.
PACKAGE_DIST = Path("@aave-dao") / "aave-address-book" / "dist"
#: Testnets the address book also lists (chainlist.org ids): Sepolia and its L2s, Fuji, Ink Sepolia.
TESTNET_CHAIN_IDS = frozenset({11155111, 421614, 84532, 11155420, 43113, 763373})
#: Networks whose name is a chain followed by an instance ("EthereumLido" -> ethereum-lido); others are one word.
CHAIN_WORDS = ("Ethereum", "Arbitrum", "Base", "Ink")
_CONSTANT = re.compile(r'^var (POOL_ADDRESSES_PROVIDER|ORACLE|POOL) = "(0x[0-9a-fA-F]{40})";', re.MULTILINE)
_CHAIN_ID = re.compile(r"^var CHAIN_ID = ([0-9.e]+);?", re.MULTILINE)


def preset_name(network: str) -> str:
    """`aave-v3-<network>`: AaveV3Ethereum -> aave-v3-ethereum, AaveV3EthereumLido -> aave-v3-ethereum-lido."""
    for word in CHAIN_WORDS:
        if network.startswith(word) and network != word:
            return f"aave-v3-{word.lower()}-{network[len(word) :].lower()}"
    return f"aave-v3-{network.lower()}"


def read_package(node_modules: Path) -> list[dict[str, object]]:
    """Every Aave V3 market on a production chain in the installed package, by preset name."""
    dist = node_modules / PACKAGE_DIST
    markets = []
    for path in sorted(dist.glob("AaveV3*.js")):
        text = path.read_text()
        constants = dict(_CONSTANT.findall(text))
        chain = _CHAIN_ID.search(text)
        if "POOL_ADDRESSES_PROVIDER" not in constants or chain is None:
            continue
        chain_id = int(float(chain.group(1)))  # the bundler writes 5000 as 5e3
        if chain_id in TESTNET_CHAIN_IDS:
            continue
        markets.append(
            {
                "name": preset_name(path.stem.removeprefix("AaveV3")),
                "book_name": path.stem,
                "chain_id": chain_id,
                "pool_addresses_provider": constants["POOL_ADDRESSES_PROVIDER"].lower(),
                "pool": constants.get("POOL", "").lower(),
                "oracle": constants.get("ORACLE", "").lower(),
            }
        )
    return sorted(markets, key=lambda m: str(m["name"]))


def stored() -> list[dict[str, object]]:
    """The presets as generated into MARKETS_FILE."""
    return read_rows(MARKETS_FILE, "markets")


@dataclass(frozen=True)
class AaveChain:
    """A chain the address book has Aave V3 on, as other protocols' presets use it."""

    chain_id: int
    word: str  #: the chain's word in the presets' names (aave-v3-ethereum-lido is an instance on "ethereum")
    #: The market whose AaveOracle values other protocols' assets in USD: the chain's own (aave-v3-<word>), else its
    #: only one (aave-v3-ink-whitelabel); None when the chain has several and none is its own.
    usd_market: dict[str, object] | None

    @property
    def usd_oracle(self) -> str | None:
        """The AaveOracle of `usd_market`."""
        return None if self.usd_market is None else str(self.usd_market["oracle"])


def chains() -> dict[int, AaveChain]:
    """Every chain of the stored presets, by chain id."""
    by_chain: dict[int, list[dict[str, object]]] = {}
    for market in stored():
        by_chain.setdefault(int(str(market["chain_id"])), []).append(market)
    found = {}
    for chain_id, markets in by_chain.items():
        word = str(markets[0]["name"]).removeprefix("aave-v3-").split("-")[0]
        own = [m for m in markets if m["name"] == f"aave-v3-{word}"]
        found[chain_id] = AaveChain(chain_id, word, (own or markets)[0] if own or len(markets) == 1 else None)
    return found


def main(argv: list[str]) -> int:
    """Regenerates MARKETS_FILE from node_modules (argv[0], default ./node_modules)."""
    node_modules = Path(argv[0]) if argv else Path("node_modules")
    source = f"@aave-dao/aave-address-book {package_version(node_modules, str(PACKAGE_DIST.parent))}"
    markets = read_package(node_modules)
    write_rows(MARKETS_FILE, source, "markets", markets)
    print(f"wrote {len(markets)} Aave V3 markets from {source} to {MARKETS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
