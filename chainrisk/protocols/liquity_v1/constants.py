"""Liquity V1 presets and the names the shared tables give its two assets."""

from __future__ import annotations

from dataclasses import dataclass

from chainrisk.assets import NATIVE_ETH

PROTOCOL = "liquity-v1"
#: What TroveManager.NAME() answers (a public constant of the mainnet contract).
TROVE_MANAGER_NAME = "TroveManager"
#: Native ETH in the shared tables' `asset` column (the address wallets and aggregators use for it).
ETH_ADDRESS = NATIVE_ETH
ETH_SYMBOL = "ETH"
ETH_DECIMALS = 18


@dataclass(frozen=True)
class Preset:
    name: str  #: what `--market` takes
    chain_id: int  #: chain the TroveManager lives on
    address: str  #: the TroveManager, lowercase hex
    from_block: int  #: its deployment block (no trove event before it)


PRESETS: dict[str, Preset] = {
    # liquity/dev packages/lib-ethers/deployments/default/mainnet.json: addresses.troveManager and startBlock
    # 12,178,551 (deployment version 5174ecd).
    "liquity-v1-ethereum": Preset("liquity-v1-ethereum", 1, "0xa39739ef8b0231dbfa0dcda07d7e29faabcf4bb2", 12_178_551)
}
