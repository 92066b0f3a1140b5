"""Locates the npm-installed devnet pieces (anvil, Aave artifacts, Morpho and OpenZeppelin source, solcjs); compiles."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainrisk.errors import UserError

#: Name in our package.json; marks the folder whose node_modules holds the devnet pieces.
NPM_PROJECT_NAME = "chainrisk-devnet-deps"
#: Stand-ins for protocols no package registry ships (Compound V3, Maker/Sky, Liquity): our own Solidity written
#: from each protocol's public interface and documented maths, one folder per protocol, each its own compilation.
STANDIN_DIR = Path(__file__).parent / "standins"
#: Our own Solidity: devnet contracts, and the read-only lenses the protocol packages call via state override.
OWN_CONTRACT_DIRS = (
    Path(__file__).parent / "contracts",
    Path(__file__).parent.parent / "protocols" / "aave_v3" / "contracts",
)


@dataclass(frozen=True)
class CompiledContract:
    abi: list[dict[str, Any]]  #: contract ABI
    bytecode: str  #: creation code, 0x-prefixed, libraries linked where needed
    runtime: str = ""  #: deployed (runtime) code, 0x-prefixed, where the compiler reported it


def project_root() -> Path:
    """The folder holding our package.json: CHAINRISK_HOME, else the nearest parent of cwd or of this package."""
    env = os.environ.get("CHAINRISK_HOME")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            manifest = folder / "package.json"
            if manifest.is_file() and json.loads(manifest.read_text()).get("name") == NPM_PROJECT_NAME:
                return folder
    raise UserError("cannot find chainrisk's package.json; run from the chainrisk checkout or set CHAINRISK_HOME")


def node_modules() -> Path:
    """node_modules of the project, installed from the lock file on first use."""
    root = project_root()
    modules = root / "node_modules"
    # Every dependency of package.json, not one marker: a checkout whose lock gained a package since the last
    # install (e.g. @openzeppelin/contracts) installs again.
    wanted = json.loads((root / "package.json").read_text()).get("dependencies", {})
    if any(not (modules / name / "package.json").is_file() for name in wanted):
        if shutil.which("npm") is None:
            raise UserError("npm is not installed; install Node.js 18+ (with npm) and retry")
        print("installing devnet packages from package-lock.json (npm ci) ...", flush=True)
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=root, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise UserError(f"npm ci failed in {root}: {done.stderr.strip().splitlines()[-1:]}")
    return modules


def run_node_json(script: Path, payload: Any, timeout_s: float | None = 300) -> Any:
    """Runs `node script FILE` on `payload` written as JSON to FILE, in the project root (so the script
    resolves node_modules), and returns its stdout parsed as JSON. The payload goes through a file because
    node reading a pipe can fail with EAGAIN. RuntimeError, with node's stderr, when the script fails."""
    node = shutil.which("node")
    if node is None:
        raise UserError("node is not installed; install Node.js 18+ and retry")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "input.json"
        source.write_text(json.dumps(payload))
        done = subprocess.run(
            [node, str(script), str(source)],
            cwd=project_root(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout_s,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def anvil_binary() -> Path:
    path = node_modules() / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if not path.is_file():
        raise UserError(f"anvil binary missing at {path}; run `npm ci` in {project_root()}")
    return path


def state_dir() -> Path:
    """Where devnet manifests, logs and compiler caches live (CHAINRISK_STATE_DIR or <root>/.chainrisk)."""
    env = os.environ.get("CHAINRISK_STATE_DIR")
    folder = Path(env) if env else project_root() / ".chainrisk"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shared_prices_dir() -> Path:
    """Hourly USD price history (CHAINRISK_PRICES_DIR, else ../shared/data/prices/hourly_usd beside the root)."""
    env = os.environ.get("CHAINRISK_PRICES_DIR")
    folder = Path(env) if env else project_root().parent / "shared" / "data" / "prices" / "hourly_usd"
    if not folder.is_dir():
        raise UserError(f"price history not found at {folder}; set CHAINRISK_PRICES_DIR to the hourly_usd folder")
    return folder


@functools.cache
def _aave_artifact_index() -> dict[str, Path]:
    root = node_modules() / "@aave" / "core-v3" / "artifacts" / "contracts"
    index: dict[str, Path] = {}
    for path in root.rglob("*.json"):
        if not path.name.endswith(".dbg.json"):
            index.setdefault(path.stem, path)
    if not index:
        raise UserError(f"no Aave artifacts under {root}; run `npm ci` in {project_root()}")
    return index


def aave_artifact(name: str, libraries: dict[str, str] | None = None) -> CompiledContract:
    """A hardhat artifact from @aave/core-v3 with its linkReferences filled from `libraries` (name -> address)."""
    artifact = json.loads(_aave_artifact_index()[name].read_text())
    code = artifact["bytecode"][2:]
    for per_file in artifact.get("linkReferences", {}).values():
        for lib_name, places in per_file.items():
            if libraries is None or lib_name not in libraries:
                raise ValueError(f"{name} needs library {lib_name} linked")
            address = libraries[lib_name].lower().removeprefix("0x")
            for place in places:
                start = place["start"] * 2
                code = code[:start] + address + code[start + place["length"] * 2 :]
    return CompiledContract(abi=artifact["abi"], bytecode="0x" + code)


#: npm packages our own contracts may import beyond Morpho Blue (whose sources the first compilation holds).
PACKAGES_BEYOND_MORPHO = ("@openzeppelin/contracts",)
MORPHO_PACKAGE = "@morpho-org/morpho-blue"
#: An import directive's path: `import "x";`, `import {A} from "x";`, `import * as A from "x";`.
_IMPORT = re.compile(r"""^\s*import\s+(?:[^;]*?\s+from\s+)?["']([^"']+)["']\s*;""", re.MULTILINE)


def _imports(sources: dict[str, dict[str, str]], packages: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """The files of the npm `packages` (e.g. @openzeppelin/contracts) that `sources` import, directly or through
    each other, keyed by solc source unit name: only that closure, so solc compiles no more than we use."""
    modules = node_modules()
    found: dict[str, dict[str, str]] = {}
    pending = [(name, body["content"]) for name, body in sources.items()]
    while pending:
        unit, text = pending.pop()
        for target in _IMPORT.findall(text):
            # solc resolves a relative import against the importing unit's name, then normalises it.
            name = (
                posixpath.normpath(posixpath.join(posixpath.dirname(unit), target))
                if target.startswith(".")
                else target
            )
            if not name.startswith(tuple(f"{p}/" for p in packages)) or name in found:
                continue
            path = modules / name
            if not path.is_file():
                raise UserError(f"{unit} imports {target}, missing at {path}; run `npm ci` in {project_root()}")
            found[name] = {"content": path.read_text()}
            pending.append((name, found[name]["content"]))
    return found


def _standard_json(sources: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": sources,
        # Morpho Blue's own production profile (foundry.toml in morpho-org/morpho-blue: via_ir, 999999 runs).
        "settings": {
            "optimizer": {"enabled": True, "runs": 999999},
            "viaIR": True,
            "evmVersion": "paris",
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
        },
    }


def _solc_inputs() -> list[dict[str, Any]]:
    """Two compilations: Morpho Blue with our own plain contracts, then our contracts that build on OpenZeppelin
    with only the files they import. Apart, because via-IR code depends on the whole compilation's AST ids: the
    OpenZeppelin sources would otherwise change the bytecode of Morpho and of the committed Aave lens runtime."""
    morpho_src = node_modules() / "@morpho-org" / "morpho-blue" / "src"
    morpho: dict[str, dict[str, str]] = {}
    for path in sorted(morpho_src.rglob("*.sol")):
        relative = path.relative_to(morpho_src)
        if relative.parts[0] in ("mocks", "periphery") or "periphery" in relative.parts:
            continue
        morpho[f"@morpho-org/morpho-blue/src/{relative.as_posix()}"] = {"content": path.read_text()}
    own = {
        f"chainrisk/{path.name}": {"content": path.read_text()}
        for folder in OWN_CONTRACT_DIRS
        for path in sorted(folder.glob("*.sol"))
    }
    built_on = {n: b for n, b in own.items() if _imports({n: b}, PACKAGES_BEYOND_MORPHO)}
    plain = {n: b for n, b in own.items() if n not in built_on}
    inputs = [_standard_json({**morpho, **plain})]
    if built_on:
        inputs.append(_standard_json({**built_on, **_imports(built_on, (*PACKAGES_BEYOND_MORPHO, MORPHO_PACKAGE))}))
    return inputs


def _standin_input(folder: Path) -> dict[str, Any]:
    """One stand-in's compilation: its own files (and the OpenZeppelin files they import), optimizer 200 without
    via-IR: quick to compile, and apart from Morpho's compilation so its bytecode stays untouched."""
    sources = {f"standins/{folder.name}/{p.name}": {"content": p.read_text()} for p in sorted(folder.glob("*.sol"))}
    if not sources:
        raise UserError(f"no stand-in contracts under {folder}")
    solc_input = _standard_json({**sources, **_imports(sources, PACKAGES_BEYOND_MORPHO)})
    solc_input["settings"] = {**solc_input["settings"], "optimizer": {"enabled": True, "runs": 200}, "viaIR": False}
    return solc_input


def _compile(solc_input: dict[str, Any]) -> dict[str, Any]:
    """solcjs's standard-JSON output for `solc_input`, cached by input hash."""
    encoded = json.dumps(solc_input, sort_keys=True).encode()
    cache = state_dir() / "solc" / f"{hashlib.sha256(encoded).hexdigest()[:16]}.json"
    if cache.is_file():
        output: dict[str, Any] = json.loads(cache.read_text())
        return output
    solcjs = node_modules() / "solc" / "solc.js"
    raw_path = cache.with_suffix(".raw")
    input_path = cache.with_suffix(".input")
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    input_path.write_bytes(encoded)
    # Files, not pipes, on both ends: solcjs reads stdin with readFileSync, which fails with EAGAIN on a
    # pipe that is not ready yet, and it exits before a piped stdout drains, truncating it at 64 KiB.
    with input_path.open("rb") as source, raw_path.open("wb") as raw:
        done = subprocess.run(
            ["node", str(solcjs), "--standard-json"], stdin=source, stdout=raw, stderr=subprocess.PIPE, check=False
        )
    input_path.unlink()
    text = raw_path.read_text()
    raw_path.unlink()
    if done.returncode != 0 or "{" not in text:
        raise UserError(f"solcjs failed: {done.stderr.decode().strip()[:300]}")
    output = json.loads(text[text.index("{") :])
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise UserError(f"solcjs compile error: {errors[0].splitlines()[0]}")
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(output))
    partial.replace(cache)  # atomic: a concurrent reader sees the whole file or none
    return output


@functools.cache
def compiled_contracts() -> dict[str, CompiledContract]:
    """Morpho Blue, our own contracts and the OpenZeppelin files they import, compiled with solcjs 0.8.19 (each
    compilation cached by input hash); a name both compilations build (a Morpho interface) keeps the first's."""
    contracts: dict[str, CompiledContract] = {}
    for output in map(_compile, _solc_inputs()):
        _contracts(output, contracts)
    return contracts


def _contracts(output: dict[str, Any], into: dict[str, CompiledContract]) -> dict[str, CompiledContract]:
    for per_file in output["contracts"].values():
        for name, body in per_file.items():
            evm = body["evm"]
            into.setdefault(
                name,
                CompiledContract(
                    abi=body["abi"],
                    bytecode="0x" + evm["bytecode"]["object"],
                    runtime="0x" + evm["deployedBytecode"]["object"],
                ),
            )
    return into


@functools.cache
def standin_contracts(protocol: str) -> dict[str, CompiledContract]:
    """A stand-in's contracts (folder `standins/<protocol>`), compiled with solcjs 0.8.19 and cached by input hash.
    Stand-ins are ours, not the protocol's bytecode: the devnet labels them so wherever they appear."""
    return _contracts(_compile(_standin_input(STANDIN_DIR / protocol)), {})


@functools.cache
def folder_contracts(folder: Path) -> dict[str, CompiledContract]:
    """Our contracts in `folder` (a protocol package's read-only lens) as their own compilation, like a stand-in's:
    added to Morpho's via-IR compilation they would move its bytecode and the committed Aave lens runtime."""
    return _contracts(_compile(_standin_input(folder)), {})
