"""Chains by name: what people call each chain a preset lives on (the names chainlist.org gives them, shortened to what
the chains call themselves), and the devnet's own ids. The SQL views read them as `stg_chain_names`, so a market on
two chains under one name is told apart by its chain."""

from __future__ import annotations

#: The devnet's chains (chainrisk.devnet.build.DEVNET_CHAIN_ID and aave36.L2_DEVNET_CHAIN_ID; a test keeps them
#: equal): anvil's 31337, and one more of our own for the L2.
DEVNET_CHAINS = {31337: "devnet", 31338: "devnet L2"}

CHAIN_NAMES: dict[int, str] = {
    1: "Ethereum",
    10: "OP Mainnet",
    14: "Flare",
    25: "Cronos",
    50: "XDC",
    56: "BNB Chain",
    100: "Gnosis",
    130: "Unichain",
    137: "Polygon",
    143: "Monad",
    146: "Sonic",
    196: "X Layer",
    239: "TAC",
    252: "Fraxtal",
    324: "zkSync Era",
    480: "World Chain",
    714: "Eden",
    988: "Stable",
    999: "HyperEVM",
    1088: "Metis",
    1135: "Lisk",
    1329: "Sei",
    1672: "Pharos",
    1868: "Soneium",
    2020: "Ronin",
    2741: "Abstract",
    2818: "Morph",
    4217: "Tempo",
    4326: "MegaETH",
    4663: "Robinhood Chain",
    5000: "Mantle",
    5042: "Arc",
    8217: "Kaia",
    8453: "Base",
    9745: "Plasma",
    16661: "0G",
    34443: "Mode",
    42161: "Arbitrum One",
    42220: "Celo",
    42793: "Etherlink",
    43111: "Hemi",
    43114: "Avalanche C-Chain",
    57073: "Ink",
    59144: "Linea",
    98866: "Plume",
    200901: "Bitlayer",
    534352: "Scroll",
    685689: "Gensyn",
    747474: "Katana",
    21000000: "Corn",
    123420001114: "Camp",
    1666600000: "Harmony",
    **DEVNET_CHAINS,
}


def chain_name(chain_id: int) -> str:
    """The chain's name, or 'chain <id>' for one chainrisk has no name for."""
    return CHAIN_NAMES.get(chain_id, f"chain {chain_id}")
