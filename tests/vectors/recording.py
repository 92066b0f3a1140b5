"""What the stand-in recorders share (never run in CI): a fetched repository's sources compiled by solcjs, and a build
run on a fresh anvil with its end state read."""

from __future__ import annotations

import argparse
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from chainrisk.devnet.toolchain import CompiledContract
from chainrisk.rpc import RpcClient
from tests.chainops import bare_chain

#: Compiles a standard-JSON input file with the solc-js package given, imports read from a folder, into an output file
#: (the package's API rather than its command line, whose options differ between versions, and a file rather than a
#: pipe, which the command line leaves cut short when it exits).
_COMPILE_JS = """
const fs = require('fs');
const path = require('path');
const [solcDir, base, input, output] = process.argv.slice(2);
const solc = require(solcDir);
const read = (file) => {
  try { return { contents: fs.readFileSync(path.join(base, file), 'utf8') }; }
  catch (e) { return { error: 'not found: ' + file }; }
};
fs.writeFileSync(output, solc.compile(fs.readFileSync(input, 'utf8'), { import: read }));
"""


def git(repo: Path, *args: str) -> bytes:
    """`git --git-dir=repo args`'s output."""
    return subprocess.run(["git", f"--git-dir={repo}", *args], capture_output=True, check=True).stdout


def extract(repo: Path, ref: str, folder: str, into: Path) -> tuple[str, Path]:
    """(commit, tree): `folder` of `ref` in the git directory `repo`, unpacked under `into`/<commit>."""
    commit = git(repo, "rev-parse", f"{ref}^{{commit}}").decode().strip()
    tree = into / "sources" / commit
    if not (tree / folder).is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=BytesIO(git(repo, "archive", commit, folder))) as tar:
            tar.extractall(tree, filter="data")
    return commit, tree


def compile_entries(
    solc: Path, tree: Path, entries: dict[str, list[str]], settings: dict[str, Any], scratch: Path
) -> dict[str, CompiledContract]:
    """The contracts `entries` names (source file under `tree` -> contract names) compiled by the solcjs package at
    `solc` with `settings` (optimizer, viaIR...): what the files import is read from `tree` by solcjs's callback."""
    solc_input = {
        "language": "Solidity",
        "sources": {entry: {"content": (tree / entry).read_text()} for entry in entries},
        "settings": settings | {"outputSelection": {e: {"*": ["abi", "evm.bytecode.object"]} for e in entries}},
    }
    scratch.mkdir(parents=True, exist_ok=True)
    request, raw, script = scratch / "solc-input.json", scratch / "solc-output.json", scratch / "compile.js"
    request.write_text(json.dumps(solc_input))
    script.write_text(_COMPILE_JS)
    subprocess.run(["node", str(script), str(solc), str(tree), str(request), str(raw)], check=True)
    output = json.loads(raw.read_text())
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise RuntimeError(errors[0])
    found = {}
    for entry, names in entries.items():
        for name in names:
            body = output["contracts"][entry][name]
            found[name] = CompiledContract(body["abi"], "0x" + body["evm"]["bytecode"]["object"])
    return found


def recorded_build(
    build: Callable[[RpcClient], dict[str, Any]],
    read: Callable[[RpcClient, dict[str, Any], int], dict[str, Any]],
    source: str,
) -> dict[str, Any]:
    """`build` (deploying the real code) run on a fresh anvil, then `read` at its last block: the vectors file's
    `source`, `built_block`, the build's `history` and the `state` read."""
    with tempfile.TemporaryDirectory() as folder, bare_chain(Path(folder)) as chain:
        section = build(chain.rpc)
        block = int(chain.rpc.call("eth_blockNumber"), 16)
        state = read(chain.rpc, section, block)
    return {"source": source, "built_block": block, "history": section["history"], "state": state}


def recorder_main(
    doc: str,
    repository: str,
    scratch: str,
    record: Callable[[Path, str, Path], dict[str, Any]],
    out: Path,
    counted: Callable[[dict[str, Any]], str],
) -> None:
    """The command line of a recorder of one `repository` (owner/name) at one ref: `record(git directory, ref, scratch
    folder)` written to `out`, then a line saying what (`counted(vectors)`)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, required=True, help=f"git directory of {repository}")
    parser.add_argument("--ref", default="HEAD")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / scratch)
    args = parser.parse_args()
    vectors = record(args.repo, args.ref, args.scratch)
    out.write_text(json.dumps(vectors, indent=1) + "\n")
    print(f"wrote {out}: {counted(vectors)}")
