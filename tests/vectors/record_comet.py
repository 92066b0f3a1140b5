"""Records what Compound's own Comet answers after the devnet's Compound V3 build, for the stand-in to be held to.

Usage (not run by pytest or CI; needs node, npm and a local git copy of compound-finance/comet):

    .venv/bin/python -m tests.vectors.record_comet --repo PATH/TO/comet.git [--ref HEAD] [--scratch /tmp/comet-vectors]

Compiles the ref's contracts/Comet.sol and contracts/CometExt.sol as its hardhat.config.ts builds them (solc 0.8.15,
via-IR, optimizer with 1 run and its Yul steps) with solcjs from npm in the scratch folder, deploys them on a fresh
anvil in the stand-in's place (chainrisk.devnet.compound_v3.build_compound_v3's `code`: the same tokens, feeds,
OpenZeppelin transparent proxy and bare market), drives the same population from the same start as
tests/test_index_compound_v3.py's chain (CometDevnetOptions 80 wallets, 120 days, seed 7), and writes
tests/data/comet_vectors.json: the build's last block, what the population did (actions, reverts, absorbs, collateral
bought) and comet_state at that block (every account's and the market's figures). Nothing of the fetched sources or
their bytecode is written to the repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainrisk.devnet.compound_v3 import build_compound_v3
from chainrisk.devnet.node import BlockBuilder
from chainrisk.devnet.toolchain import CompiledContract
from tests.test_index_compound_v3 import BUILD_START, OPTIONS, REAL_COMET, comet_state
from tests.vectors.aave_build import npm_package
from tests.vectors.recording import compile_entries, extract, recorded_build, recorder_main

#: compound-finance/comet's hardhat.config.ts: its compiler and settings.
SOLC = "0.8.15"
OPTIMIZER_STEPS = (
    "dhfoDgvulfnTUtnIf [xa[r]scLM cCTUtTOntnfDIul Lcul Vcul [j] Tpeul xa[rul] xa[r]cL gvif CTUca[r]LsTOtfDnca[r]Iulc] "
    "jmul[jul] VcTOcul jmul"
)
ENTRIES = ("contracts/Comet.sol", "contracts/CometExt.sol")


def compile_comet(repo: Path, ref: str, scratch: Path) -> tuple[str, dict[str, CompiledContract]]:
    """(commit, {"Comet": ..., "CometExt": ...}) compiled from `ref` of the git directory `repo`."""
    commit, tree = extract(repo, ref, "contracts", scratch)
    settings = {
        "optimizer": {"enabled": True, "runs": 1, "details": {"yulDetails": {"optimizerSteps": OPTIMIZER_STEPS}}},
        "viaIR": True,
    }
    solc = npm_package(scratch, "solc", SOLC)
    return commit, compile_entries(solc, tree, {e: [Path(e).stem] for e in ENTRIES}, settings, scratch / commit)


def record(repo: Path, ref: str, scratch: Path) -> dict[str, Any]:
    commit, real = compile_comet(repo, ref, scratch)
    code = {"CometStandin": real["Comet"], "CometStandinExt": real["CometExt"]}
    source = (
        f"compound-finance/comet at {commit}: contracts/Comet.sol and CometExt.sol compiled locally with solc-js "
        f"{SOLC} (via-IR, optimizer 1 run and hardhat.config.ts's Yul steps) and deployed in the stand-in's place "
        "(the same tokens, feeds, OpenZeppelin transparent proxy and bare market) on anvil; the population of "
        f"tests/test_index_compound_v3.py (CometDevnetOptions {OPTIONS}) from the same start; the answers of the "
        "Comet at the build's last block (tests/vectors/record_comet.py)"
    )
    return recorded_build(
        lambda rpc: build_compound_v3(BlockBuilder(rpc, timestamp=BUILD_START), OPTIONS, code), comet_state, source
    )


def main() -> None:
    recorder_main(
        __doc__ or "",
        "compound-finance/comet",
        "comet-vectors",
        record,
        REAL_COMET,
        lambda v: f"{sum(len(s['accounts']) for s in v['state'].values())} accounts at block {v['built_block']}",
    )


if __name__ == "__main__":
    main()
