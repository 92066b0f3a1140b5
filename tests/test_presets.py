"""Presets: every official Aave V3 market comes from the pinned @aave-dao/aave-address-book (no hand copies), each
resolves to its chain, and a market read through another chain's RPC is refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chainrisk.cli import main
from chainrisk.config import market_config
from chainrisk.devnet.toolchain import node_modules
from chainrisk.protocols.aave_v3.address_book import read_package, stored
from chainrisk.protocols.adapter import find_preset

#: Networks the address book lists today that the issue names (and a few more): each must resolve.
NETWORKS = (
    "ethereum",
    "ethereum-lido",
    "arbitrum",
    "base",
    "optimism",
    "polygon",
    "avalanche",
    "gnosis",
    "scroll",
    "bnb",
    "linea",
    "sonic",
    "zksync",
    "celo",
    "metis",
    "mantle",
)


def test_generated_presets_equal_the_installed_address_book() -> None:
    assert stored() == read_package(node_modules()), "run python -m chainrisk.protocols.aave_v3.address_book"


@pytest.mark.parametrize("network", NETWORKS)
def test_every_network_resolves(network: str) -> None:
    preset = find_preset(f"aave-v3-{network}")
    book = {m["name"]: m for m in stored()}[preset.name]
    assert preset.protocol == "aave-v3" and preset.chain_id == book["chain_id"] and preset.chain_id > 0
    assert preset.address == book["pool_addresses_provider"] and preset.address.startswith("0x")
    market = market_config({"preset": preset.name}, "test")
    assert market.chain_id == preset.chain_id and market.from_block is None


def test_no_testnet_among_the_presets() -> None:
    names = {str(m["name"]) for m in stored()}
    assert not {n for n in names if "sepolia" in n or "fuji" in n}
    assert {m["chain_id"] for m in stored()} >= {1, 10, 56, 100, 137, 146, 324, 5000, 8453, 42161, 43114, 59144}


@pytest.mark.parametrize("network", ["arbitrum", "base", "ethereum"])
def test_an_rpc_of_another_chain_is_refused_in_one_line(
    network: str, devnet: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "preset.duckdb"
    code = main(["index", "--market", f"aave-v3-{network}", "--rpc-url", devnet["rpc_url"], "--db", str(db)])
    err = capsys.readouterr().err.strip()
    chain_id = find_preset(f"aave-v3-{network}").chain_id
    assert code == 2 and "\n" not in err
    assert f"the RPC serves chain 31337, but the market lives on chain {chain_id}" in err
    assert not db.exists()
