"""Morpho Blue presets and the protocol's fixed-point constants (ConstantsLib, SharesMathLib, MathLib)."""

from __future__ import annotations

from dataclasses import dataclass

WAD = 10**18
#: ConstantsLib.ORACLE_PRICE_SCALE: IOracle.price() quotes one collateral unit in loan units times 1e36.
ORACLE_PRICE_SCALE = 10**36
#: ConstantsLib.MAX_LIQUIDATION_INCENTIVE_FACTOR and LIQUIDATION_CURSOR (WAD).
MAX_LIQUIDATION_INCENTIVE_FACTOR = 115 * 10**16
LIQUIDATION_CURSOR = 3 * 10**17
#: SharesMathLib.VIRTUAL_SHARES / VIRTUAL_ASSETS: the inflation-attack guard in every share conversion.
VIRTUAL_SHARES = 10**6
VIRTUAL_ASSETS = 1
MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True)
class Preset:
    name: str  #: what `--market` takes
    chain_id: int  #: chain the singleton lives on
    address: str  #: the Morpho singleton, lowercase hex
    from_block: int  #: its deployment block (no event before it)


PRESETS: dict[str, Preset] = {
    # Morpho Blue on Ethereum: address from docs.morpho.org/developers/contracts/addresses; deployment block
    # 18,883,124 from @morpho-org/morpho-ts 2.8.0 (addresses.ts, deployments[mainnet].morpho).
    "morpho-blue-ethereum": Preset("morpho-blue-ethereum", 1, "0xbbbbbbbbbb9cc5e90e3b3af64bdaf62c37eeffcb", 18_883_124)
}
