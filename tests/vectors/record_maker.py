"""Records what makerdao/dss's own contracts answer after the devnet's Maker build, for the stand-ins to be held to.

Usage (not run by pytest or CI; needs node, npm and a local git copy of makerdao/dss):

    .venv/bin/python -m tests.vectors.record_maker --repo PATH/TO/dss.git [--core 1.0.0] [--liquidations HEAD] \\
        [--scratch /tmp/maker-vectors]

The core as mainnet runs it, the Vat (with its notes), Spotter and Jug of dss 1.0.0, compiled with solc-js 0.5.12;
the liquidations of LIQ-2.0, the Dog, Clipper and LinearDecrease of `--liquidations`, with solc-js 0.6.12 (both with
the optimizer at 200 runs, dapp's default, the build dss uses). They are deployed in the stand-ins' places
(chainrisk.devnet.maker.build_maker's `code`; the Vow, joins, Dai, CDP manager, ChainLog, IlkRegistry and OSMs stay
the stand-ins', which dss does not hold or whose constructors differ) on a fresh anvil, the build of
tests/test_index_maker.py's chain is run on them, and tests/data/maker_vectors.json gets the build's last block,
what it did (barks, takes, pokes, drips) and maker_state at that block. Nothing of the fetched sources or their
bytecode is written to the repository.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from chainrisk.devnet.maker import build_maker
from chainrisk.devnet.node import BlockBuilder
from chainrisk.devnet.toolchain import CompiledContract
from tests.test_index_maker import REAL_MAKER, maker_state
from tests.vectors.aave_build import npm_package
from tests.vectors.recording import compile_entries, extract, recorded_build

OPTIMIZER = {"optimizer": {"enabled": True, "runs": 200}}
CORE = {"src/vat.sol": ["Vat"], "src/spot.sol": ["Spotter"], "src/jug.sol": ["Jug"]}
LIQUIDATIONS = {"src/dog.sol": ["Dog"], "src/clip.sol": ["Clipper"], "src/abaci.sol": ["LinearDecrease"]}


def compile_dss(
    repo: Path, core: str, liquidations: str, scratch: Path
) -> tuple[dict[str, str], dict[str, CompiledContract]]:
    """({"core": commit, "liquidations": commit}, the contracts by name)."""
    commits: dict[str, str] = {}
    found: dict[str, CompiledContract] = {}
    for part, ref, entries, version in (
        ("core", core, CORE, "0.5.12"),
        ("liquidations", liquidations, LIQUIDATIONS, "0.6.12"),
    ):
        commit, tree = extract(repo, ref, "src", scratch)
        solc = npm_package(scratch, "solc", version)
        found |= compile_entries(solc, tree, entries, OPTIMIZER, scratch / commit)
        commits[part] = commit
    return commits, found


def record(repo: Path, core: str, liquidations: str, scratch: Path) -> dict[str, Any]:
    commits, real = compile_dss(repo, core, liquidations, scratch)
    source = (
        f"makerdao/dss: the Vat, Spotter and Jug of {core} ({commits['core']}, solc-js 0.5.12), the Dog, Clipper "
        f"and LinearDecrease of {liquidations} ({commits['liquidations']}, solc-js 0.6.12), optimizer 200 runs, "
        "compiled locally and deployed in the stand-ins' places (the Vow, joins, Dai, CDP manager, ChainLog, "
        "IlkRegistry and OSMs the stand-ins') on anvil; the build of tests/test_index_maker.py's chain "
        "(build_maker's defaults); what the contracts answer at its last block (tests/vectors/record_maker.py)"
    )
    return recorded_build(lambda rpc: build_maker(BlockBuilder(rpc), code=real), maker_state, source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, required=True, help="git directory of makerdao/dss")
    parser.add_argument("--core", default="1.0.0", help="ref of the Vat, Spotter and Jug (mainnet's: 1.0.0)")
    parser.add_argument("--liquidations", default="HEAD", help="ref of the Dog, Clipper and LinearDecrease")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "maker-vectors")
    args = parser.parse_args()
    vectors = record(args.repo, args.core, args.liquidations, args.scratch)
    REAL_MAKER.write_text(json.dumps(vectors, indent=1) + "\n")
    print(f"wrote {REAL_MAKER}: {len(vectors['state'])} figures at block {vectors['built_block']}")


if __name__ == "__main__":
    main()
