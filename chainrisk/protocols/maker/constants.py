"""Maker's fixed-point units, the ChainLog keys chainrisk reads, and the mainnet preset."""

from __future__ import annotations

from dataclasses import dataclass

WAD = 10**18  #: token amounts, ink, art, chop
RAY = 10**27  #: rate, spot, mat, duty, par
RAD = 10**45  #: dai balances, line, dust, hole, Hole: WAD * RAY
#: Spotter.poke scales the pip's wad price to a ray: val * 10^9.
BLN = 10**9

#: ChainLog keys of the contracts the adapter reads (chainlog.makerdao.com's names).
VAT_KEY = "MCD_VAT"
SPOT_KEY = "MCD_SPOT"
JUG_KEY = "MCD_JUG"
DOG_KEY = "MCD_DOG"
CDP_MANAGER_KEY = "CDP_MANAGER"
ILK_REGISTRY_KEY = "ILK_REGISTRY"
DAI_KEY = "MCD_DAI"
#: A ChainLog registers itself under this key in its constructor (dss-chain-log src/ChainLog.sol).
SELF_KEY = "CHANGELOG"
#: Where an ilk's join sits in the ChainLog when the IlkRegistry does not list it: MCD_JOIN_ETH_A for ETH-A.
JOIN_KEY_PREFIX = "MCD_JOIN_"


@dataclass(frozen=True)
class Preset:
    name: str  #: what `--market` takes
    chain_id: int  #: chain the ChainLog lives on
    address: str  #: the ChainLog, lowercase hex
    from_block: int  #: a block at or before the Vat's first urn


PRESETS: dict[str, Preset] = {
    # Maker's ChainLog on Ethereum: 0xdA0Ab1e0017DEbCd72Be8599041a2aa3bA7e740F, from makerdao/dss-chain-log's README.
    # Logs are read from the Vat and the CDP manager it names, so the first block is MCD's launch, 8,928,152: the
    # Spotter's first `rely` on the Vat is in it (makerdao/vdb-mcd-transformers' integration tests), so no urn can
    # hold collateral before it.
    "maker-ethereum": Preset("maker-ethereum", 1, "0xda0ab1e0017debcd72be8599041a2aa3ba7e740f", 8_928_152)
}
