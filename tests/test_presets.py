"""Presets: every official Aave V3 market comes from the pinned @aave-dao/aave-address-book and every Morpho Blue
deployment from the pinned @morpho-org/morpho-ts (no hand copies), each resolves to its chain, and a market read
through another chain's RPC is refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chainrisk.cli import main
from chainrisk.config import market_config
from chainrisk.devnet.aave36 import L2_DEVNET_CHAIN_ID
from chainrisk.devnet.build import DEVNET_CHAIN_ID
from chainrisk.devnet.toolchain import node_modules, project_root
from chainrisk.networks import CHAIN_NAMES, DEVNET_CHAINS
from chainrisk.protocols.aave_v3.address_book import read_package, stored
from chainrisk.protocols.adapter import all_presets, find_preset
from chainrisk.protocols.morpho_blue import deployments

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


def test_sparklend_presets_are_aave_v3_markets_on_their_chains() -> None:
    """SparkLend (an Aave V3 fork) on Ethereum and Gnosis: read by the Aave V3 adapter, by what its pool answers."""
    spark = {p.name: (p.protocol, p.chain_id, p.address) for p in all_presets().values() if p.name.startswith("spark")}
    assert spark == {
        "spark-ethereum": ("aave-v3", 1, "0x02c3ea4e34c0cbd694d2adfa2c690eecbc1793ee"),
        "spark-gnosis": ("aave-v3", 100, "0xa98dacb3fc964a6a0d2ce3b77294241585eaba6d"),
    }


def test_every_preset_s_chain_has_a_name() -> None:
    """Markets of one name on several chains are told apart by their chain's name (stg_market_labels)."""
    chains = {p.chain_id for p in all_presets().values()}
    assert chains <= set(CHAIN_NAMES), sorted(chains - set(CHAIN_NAMES))
    assert set(DEVNET_CHAINS) == {DEVNET_CHAIN_ID, L2_DEVNET_CHAIN_ID}
    assert len(set(CHAIN_NAMES.values())) == len(CHAIN_NAMES) and all("'" not in n for n in CHAIN_NAMES.values())


def test_generated_morpho_presets_equal_the_installed_package() -> None:
    assert deployments.stored() == deployments.read_package(project_root()), (
        "run python -m chainrisk.protocols.morpho_blue.deployments"
    )


def test_every_morpho_deployment_resolves_with_its_chain_s_aave_oracle() -> None:
    presets = deployments.stored()
    aave = {m["name"]: m for m in stored()}
    assert len(presets) >= 40 and len({p["chain_id"] for p in presets}) == len(presets)
    for entry in presets:
        preset = find_preset(str(entry["name"]))
        assert preset.protocol == "morpho-blue" and preset.chain_id == entry["chain_id"]
        assert preset.address == entry["address"] and len(preset.address) == 42
        market = market_config({"preset": preset.name}, "test")
        assert market.chain_id == preset.chain_id and market.from_block == entry["from_block"]
        source = entry["usd_oracle_of"]
        if source is None:
            # No Aave V3 market on that chain: no USD oracle, the markets' health exact and their USD unknown.
            assert preset.chain_id not in {m["chain_id"] for m in stored()} and "usd_oracle" not in market.options
        else:
            assert aave[source]["chain_id"] == preset.chain_id
            assert market.options["usd_oracle"] == aave[source]["oracle"]
    ethereum = find_preset("morpho-blue-ethereum")
    assert ethereum.address == "0xbbbbbbbbbb9cc5e90e3b3af64bdaf62c37eeffcb" and ethereum.from_block == 18_883_124
    # AaveV3Ethereum.ORACLE, the USD source this preset had before the presets were generated.
    assert dict(ethereum.options)["usd_oracle"] == "0x54586be62e3c3580375ae3723c145253060ca0c2"
    named = {n: find_preset(f"morpho-blue-{n}").chain_id for n in ("base", "arbitrum", "bnb", "unichain", "katana")}
    assert named == {"base": 8453, "arbitrum": 42161, "bnb": 56, "unichain": 130, "katana": 747474}
    # A user's own USD oracle still overrides the preset's.
    own = market_config({"preset": "morpho-blue-base", "usd_oracle": "0x" + "ab" * 20}, "test")
    assert own.options["usd_oracle"] == "0x" + "ab" * 20


def test_presets_lists_every_preset_with_its_usd_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert set(lines) == set(all_presets())
    base = find_preset("morpho-blue-base")
    assert f"usd_oracle={dict(base.options)['usd_oracle']}" in lines["morpho-blue-base"]
    assert "no usd_oracle" in lines["morpho-blue-katana"] and "usd_oracle" not in lines["aave-v3-base"]
    # Compound V3: the chain's Aave oracle where it has one; Ronin and Unichain have none, their start found on chain.
    aave = {m["name"]: m for m in stored()}
    linea = market_config({"preset": "compound-v3-linea-usdc"}, "test")
    assert linea.chain_id == 59144 and linea.options["usd_oracle"] == aave["aave-v3-linea"]["oracle"]
    for name, chain_id in (("compound-v3-ronin-wron", 2020), ("compound-v3-unichain-weth", 130)):
        market = market_config({"preset": name}, "test")
        assert market.chain_id == chain_id and market.from_block is None and not market.options
        assert "no usd_oracle" in lines[name]
    assert market_config({"preset": "compound-v3-ethereum-usdc"}, "test").from_block == 15_331_586


@pytest.mark.parametrize("market", ["aave-v3-arbitrum", "aave-v3-base", "aave-v3-ethereum", "morpho-blue-base"])
def test_an_rpc_of_another_chain_is_refused_in_one_line(
    market: str, devnet: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "preset.duckdb"
    code = main(["index", "--market", market, "--rpc-url", devnet["rpc_url"], "--db", str(db)])
    err = capsys.readouterr().err.strip()
    chain_id = find_preset(market).chain_id
    assert code == 2 and "\n" not in err
    assert f"the RPC serves chain 31337, but the market lives on chain {chain_id}" in err
    assert not db.exists()
