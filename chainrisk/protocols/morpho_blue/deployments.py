"""Every Morpho Blue deployment as a preset, read from the pinned npm package @morpho-org/morpho-ts.

The package (installed with the devnet's npm packages) is the source of each chain's Morpho singleton
(`addressesRegistry[chain].morpho`) and its deployment block (`deployments[chain].morpho`): `python -m
chainrisk.protocols.morpho_blue.deployments` asks node for them and writes deployments.json beside this module, which
ships with chainrisk (users need no npm); a test regenerates it from the installed package to keep the two equal.

Morpho Blue prices a market's collateral in its loan token, not in USD. A preset values its markets in USD through the
AaveOracle of the Aave V3 market on the same chain (the chain's own market, `aave-v3-<chain>`, else the chain's only
one; @aave-dao/aave-address-book, aave_v3/address_book.json), which answers USD prices of the assets Aave lists; a
chain without an Aave V3 market has no USD oracle, and its markets' health is exact with USD left unknown. Each
preset's name uses the chain word of the Aave presets where the chain has one (bnb, not bsc), else the package's
chain name without "Mainnet".
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from chainrisk.protocols.aave_v3.address_book import AaveChain, chains
from chainrisk.protocols.generated import package_version, read_rows, write_rows

#: The generated presets: one entry per chain, in name order.
DEPLOYMENTS_FILE = Path(__file__).parent / "deployments.json"
PACKAGE = "@morpho-org/morpho-ts"
#: Prints [chain id, the package's name of the chain, Morpho's address, its deployment block] for every chain.
_SCRIPT = """
import * as m from "@morpho-org/morpho-ts";
const rows = Object.entries(m.addressesRegistry).map(([id, a]) => {
  const block = m.deployments[id]?.morpho;
  return [Number(id), m.ChainId[id], a.morpho, block === undefined ? null : String(block)];
});
console.log(JSON.stringify(rows));
"""


def chain_word(chain_id: int, package_name: str, aave: dict[int, AaveChain]) -> str:
    """What a preset calls a chain: the Aave presets' word for it, else the package's name of it without "Mainnet"."""
    if chain_id in aave:
        return aave[chain_id].word
    return package_name.removesuffix("Mainnet").lower()


def read_package(root: Path) -> list[dict[str, object]]:
    """Every Morpho Blue deployment the package installed under `root`/node_modules lists, as presets by name."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed; it reads the package's addresses")
    done = subprocess.run(
        [node, "--input-type=module", "-e", _SCRIPT], cwd=root, capture_output=True, text=True, check=True, timeout=60
    )
    aave = chains()
    presets = []
    for chain_id, package_name, address, block in json.loads(done.stdout):
        if not address:
            continue
        chain = aave.get(chain_id)
        oracle = chain.usd_market if chain else None
        presets.append(
            {
                "name": f"morpho-blue-{chain_word(chain_id, package_name, aave)}",
                "chain_id": chain_id,
                "address": str(address).lower(),
                "from_block": None if block is None else int(block),
                "usd_oracle": chain.usd_oracle if chain else None,
                "usd_oracle_of": None if oracle is None else str(oracle["name"]),
            }
        )
    return sorted(presets, key=lambda p: str(p["name"]))


def stored() -> list[dict[str, object]]:
    """The presets as generated into DEPLOYMENTS_FILE."""
    return read_rows(DEPLOYMENTS_FILE, "presets")


def main(argv: list[str]) -> int:
    """Regenerates DEPLOYMENTS_FILE from the package installed under the project root (argv[0], default .)."""
    root = Path(argv[0]) if argv else Path(".")
    source = f"{PACKAGE} {package_version(root / 'node_modules', PACKAGE)}"
    presets = read_package(root)
    write_rows(DEPLOYMENTS_FILE, source, "presets", presets)
    print(f"wrote {len(presets)} Morpho Blue deployments from {source} to {DEPLOYMENTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
