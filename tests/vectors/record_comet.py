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

import argparse
import json
import subprocess
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

from chainrisk.devnet.compound_v3 import build_compound_v3
from chainrisk.devnet.node import BlockBuilder
from chainrisk.devnet.toolchain import CompiledContract
from tests.chainops import bare_chain
from tests.test_index_compound_v3 import BUILD_START, OPTIONS, REAL_COMET, comet_state
from tests.vectors.aave_build import npm_package

#: compound-finance/comet's hardhat.config.ts: its compiler and settings.
SOLC = "0.8.15"
OPTIMIZER_STEPS = (
    "dhfoDgvulfnTUtnIf [xa[r]scLM cCTUtTOntnfDIul Lcul Vcul [j] Tpeul xa[rul] xa[r]cL gvif CTUca[r]LsTOtfDnca[r]Iulc] "
    "jmul[jul] VcTOcul jmul"
)
ENTRIES = ("contracts/Comet.sol", "contracts/CometExt.sol")


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={repo}", *args], capture_output=True, check=True).stdout


def compile_comet(repo: Path, ref: str, scratch: Path) -> tuple[str, dict[str, CompiledContract]]:
    """(commit, {"Comet": ..., "CometExt": ...}) compiled from `ref` of the git directory `repo`."""
    commit = _git(repo, "rev-parse", ref).decode().strip()
    source = scratch / "sources" / commit
    if not source.is_dir():
        source.mkdir(parents=True)
        with tarfile.open(fileobj=BytesIO(_git(repo, "archive", commit, "contracts"))) as tar:
            tar.extractall(source, filter="data")
    # The entries alone: solcjs's import callback reads what they import from the extracted tree (--base-path).
    sources = {entry: {"content": (source / entry).read_text()} for entry in ENTRIES}
    solc_input = {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "optimizer": {"enabled": True, "runs": 1, "details": {"yulDetails": {"optimizerSteps": OPTIMIZER_STEPS}}},
            "viaIR": True,
            "outputSelection": {e: {"*": ["abi", "evm.bytecode.object"]} for e in ENTRIES},
        },
    }
    solc = npm_package(scratch, "solc", SOLC)
    request, raw = scratch / f"{commit}.input.json", scratch / f"{commit}.output.json"
    request.write_text(json.dumps(solc_input))
    # Into a file: solcjs exits before a pipe has taken its whole output.
    with request.open("rb") as stdin, raw.open("wb") as stdout:
        command = ["node", str(solc / "solc.js"), "--standard-json", "--base-path", str(source)]
        subprocess.run(command, stdin=stdin, stdout=stdout, check=True)
    text = raw.read_text()
    output = json.loads(text[text.index("{") :])
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise RuntimeError(errors[0])
    found = {}
    for entry in ENTRIES:
        name = Path(entry).stem
        body = output["contracts"][entry][name]
        found[name] = CompiledContract(body["abi"], "0x" + body["evm"]["bytecode"]["object"])
    return commit, found


def record(repo: Path, ref: str, scratch: Path) -> dict[str, Any]:
    commit, real = compile_comet(repo, ref, scratch)
    code = {"CometStandin": real["Comet"], "CometStandinExt": real["CometExt"]}
    with tempfile.TemporaryDirectory() as folder, bare_chain(Path(folder)) as chain:
        section = build_compound_v3(BlockBuilder(chain.rpc, timestamp=BUILD_START), OPTIONS, code)
        block = int(chain.rpc.call("eth_blockNumber"), 16)
        state = comet_state(chain.rpc, section, block)
    return {
        "source": (
            f"compound-finance/comet at {commit}: contracts/Comet.sol and CometExt.sol compiled locally with solc-js "
            f"{SOLC} (via-IR, optimizer 1 run and hardhat.config.ts's Yul steps) and deployed in the stand-in's place "
            "(the same tokens, feeds, OpenZeppelin transparent proxy and bare market) on anvil; the population of "
            f"tests/test_index_compound_v3.py (CometDevnetOptions {OPTIONS}) from the same start; the answers of the "
            "Comet at the build's last block (tests/vectors/record_comet.py)"
        ),
        "built_block": block,
        "history": section["history"],
        "state": state,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, required=True, help="git directory of compound-finance/comet")
    parser.add_argument("--ref", default="HEAD")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "comet-vectors")
    args = parser.parse_args()
    vectors = record(args.repo, args.ref, args.scratch)
    REAL_COMET.write_text(json.dumps(vectors, indent=1) + "\n")
    accounts = sum(len(s["accounts"]) for s in vectors["state"].values())
    print(f"wrote {REAL_COMET}: {accounts} accounts at block {vectors['built_block']}")


if __name__ == "__main__":
    main()
