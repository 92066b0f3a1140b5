"""Records what Morpho's own MorphoChainlinkOracleV2 answers over the devnet's feeds, for the FeedRatioOracle stand-in
to be held to.

Usage (not run by pytest or CI; needs node, npm and a local git copy of morpho-org/morpho-blue-oracles):

    .venv/bin/python -m tests.vectors.record_morpho_oracle --repo PATH/TO/morpho-blue-oracles.git [--ref HEAD] \\
        [--scratch /tmp/morpho-oracle-vectors]

Compiles the ref's src/morpho-chainlink/MorphoChainlinkOracleV2.sol as its foundry.toml builds it (solc 0.8.21, via-IR,
999,999 optimizer runs, Paris), its two git submodules taken from the npm packages the devnet installs (Morpho Blue's
IOracle from @morpho-org/morpho-blue, OpenZeppelin 5's Math from @openzeppelin/contracts-v5). On a fresh anvil it
deploys the devnet's SettableFeeds (8 decimals) at CASES' answers and, for each pair of token decimals and each pair
of feeds, the oracle as the devnet uses its stand-in: no vaults, one feed a side (the collateral's USD feed as base,
the loan token's as quote). tests/data/morpho_oracle_vectors.json gets each case and what price() answered (or null
where it reverted). Nothing of the fetched sources or their bytecode is written to the repository.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from chainrisk.devnet.node import BlockBuilder
from chainrisk.devnet.toolchain import node_modules
from tests.chainops import bare_chain
from tests.test_morpho_oracle_vectors import VECTORS, oracle_prices
from tests.vectors.aave_build import npm_package
from tests.vectors.recording import compile_entries, extract, recorder_main

ENTRY = "src/morpho-chainlink/MorphoChainlinkOracleV2.sol"
ZERO = "0x" + "0" * 40


def compile_oracle(repo: Path, ref: str, scratch: Path) -> tuple[str, Any]:
    commit, tree = extract(repo, ref, "src", scratch)
    libs = {
        "lib/morpho-blue/src": node_modules() / "@morpho-org" / "morpho-blue" / "src",
        "lib/openzeppelin-contracts/contracts": node_modules() / "@openzeppelin" / "contracts-v5",
    }
    for into, source in libs.items():
        if not (tree / into).is_dir():
            shutil.copytree(source, tree / into)
    settings = {"optimizer": {"enabled": True, "runs": 999_999}, "viaIR": True, "evmVersion": "paris"}
    solc = npm_package(scratch, "solc", "0.8.21")
    found = compile_entries(solc, tree, {ENTRY: ["MorphoChainlinkOracleV2"]}, settings, scratch / commit)
    return commit, found["MorphoChainlinkOracleV2"]


def record(repo: Path, ref: str, scratch: Path) -> dict[str, Any]:
    commit, real = compile_oracle(repo, ref, scratch)

    def deploy(builder: BlockBuilder, base_feed: str, quote_feed: str, base_decimals: int, quote_decimals: int) -> str:
        address: str = builder.deploy(
            real, ZERO, 1, base_feed, ZERO, base_decimals, ZERO, 1, quote_feed, ZERO, quote_decimals, label="oracle"
        )
        return address

    with tempfile.TemporaryDirectory() as folder, bare_chain(Path(folder)) as chain:
        cases = oracle_prices(chain.rpc, deploy)
    return {
        "source": (
            f"morpho-org/morpho-blue-oracles at {commit}: {ENTRY} compiled locally with solc-js 0.8.21 (via-IR, "
            "999,999 runs, Paris; its submodules' IOracle and OpenZeppelin 5 Math from npm), deployed on anvil over "
            "chainrisk's SettableFeeds (8 decimals) with no vaults and one feed a side, as the devnet uses its "
            "FeedRatioOracle stand-in; price() of each case (null: it reverted) (tests/vectors/record_morpho_oracle.py)"
        ),
        "cases": cases,
    }


def main() -> None:
    recorder_main(
        __doc__ or "",
        "morpho-org/morpho-blue-oracles",
        "morpho-oracle-vectors",
        record,
        VECTORS,
        lambda v: f"{len(v['cases'])} cases",
    )


if __name__ == "__main__":
    main()
