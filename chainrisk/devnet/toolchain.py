"""Locates the npm-installed devnet pieces (anvil, Aave artifacts, Morpho and OpenZeppelin source, solcjs); compiles."""

from __future__ import annotations

import fcntl
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

from chainrisk.abi import keccak
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
    """Hourly USD price history, where the risk models find it (chainrisk.risk.calibration.prices_folder:
    CHAINRISK_PRICES_DIR, else ../shared/data/prices/hourly_usd beside the root)."""
    from chainrisk.risk.calibration import PRICES_ENV, prices_folder

    folder = prices_folder()
    if not folder.is_dir():
        raise UserError(f"price history not found at {folder}; set {PRICES_ENV} to the hourly_usd folder")
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


def _standin_input(folder: Path, prefix: str = "standins") -> dict[str, Any]:
    """One stand-in's compilation: its own files (and the OpenZeppelin files they import), optimizer 200 without
    via-IR: quick to compile, and apart from Morpho's compilation so its bytecode stays untouched."""
    sources = {f"{prefix}/{folder.name}/{p.name}": {"content": p.read_text()} for p in sorted(folder.glob("*.sol"))}
    if not sources:
        raise UserError(f"no stand-in contracts under {folder}")
    solc_input = _standard_json({**sources, **_imports(sources, PACKAGES_BEYOND_MORPHO)})
    solc_input["settings"] = {**solc_input["settings"], "optimizer": {"enabled": True, "runs": 200}, "viaIR": False}
    return solc_input


def _compile(solc_input: dict[str, Any], compiler: str = "solc") -> dict[str, Any]:
    """solcjs's standard-JSON output for `solc_input`, cached by input hash; `compiler` names the npm package of
    the solcjs build (package.json aliases one per version: `solc` is 0.8.19, `solc-0.8.27` Aave V3.6's)."""
    encoded = json.dumps(solc_input, sort_keys=True).encode()
    # The default compiler's key is the input's hash alone, as before, so existing caches stay valid.
    key = encoded if compiler == "solc" else compiler.encode() + b"\0" + encoded
    cache = state_dir() / "solc" / f"{hashlib.sha256(key).hexdigest()[:16]}.json"
    if cache.is_file():
        output: dict[str, Any] = json.loads(cache.read_text())
        return output
    cache.parent.mkdir(parents=True, exist_ok=True)
    # One compiler run per input across processes (two devnets or two test workers built at once): the second
    # waits for the first's cache file instead of compiling the same minutes-long input again.
    with cache.with_suffix(".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.is_file():
            output = json.loads(cache.read_text())
            return output
        output = _run_solcjs(encoded, compiler, cache.with_suffix(f".{os.getpid()}"))
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(output))
        partial.replace(cache)  # atomic: a concurrent reader sees the whole file or none
    return output


def _run_solcjs(encoded: bytes, compiler: str, scratch: Path) -> dict[str, Any]:
    """solcjs (npm package `compiler`) on the standard-JSON input `encoded`; `scratch` names this process's input
    and output files."""
    solcjs = node_modules() / compiler / "solc.js"
    raw_path = scratch.with_suffix(scratch.suffix + ".raw")
    input_path = scratch.with_suffix(scratch.suffix + ".input")
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
    output: dict[str, Any] = json.loads(text[text.index("{") :])
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise UserError(f"solcjs compile error: {errors[0].splitlines()[0]}")
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


#: Aave V3.6 from the npm package @aave-dao/aave-v3-origin, compiled as its foundry.toml builds it (tag v3.6.0).
ORIGIN_COMPILER = "solc-0.8.27"
ORIGIN_PACKAGE = "@aave-dao/aave-v3-origin"
#: Import prefixes of aave-v3-origin's remappings.txt, onto node_modules: its `openzeppelin-contracts` is OpenZeppelin
#: 5.1.0 (the commit its lib/solidity-utils pins), installed under an npm alias beside our own OpenZeppelin 4.9.6.
ORIGIN_REMAPPINGS = {
    "src/": f"{ORIGIN_PACKAGE}/src/",
    "openzeppelin-contracts/contracts/": "@openzeppelin/contracts-v5/",
}
#: Our own contracts compiled beside Aave V3.6 with its compiler (the L2 market's sequencer-uptime feed).
ORIGIN_OWN_DIR = Path(__file__).parent / "contracts_origin"
#: What a V3.6 market deploys, by source unit: only these get bytecode, and only their imports are compiled.
ORIGIN_CONTRACTS = {
    "src/contracts/protocol/configuration/PoolAddressesProvider.sol": "PoolAddressesProvider",
    "src/contracts/protocol/configuration/ACLManager.sol": "ACLManager",
    "src/contracts/instances/PoolInstance.sol": "PoolInstance",
    "src/contracts/instances/L2PoolInstance.sol": "L2PoolInstance",
    "src/contracts/instances/PoolConfiguratorInstance.sol": "PoolConfiguratorInstance",
    "src/contracts/instances/ATokenInstance.sol": "ATokenInstance",
    "src/contracts/instances/VariableDebtTokenInstance.sol": "VariableDebtTokenInstance",
    "src/contracts/misc/AaveOracle.sol": "AaveOracle",
    "src/contracts/misc/DefaultReserveInterestRateStrategyV2.sol": "DefaultReserveInterestRateStrategyV2",
    "src/contracts/misc/PriceOracleSentinel.sol": "PriceOracleSentinel",
    "src/contracts/helpers/AaveProtocolDataProvider.sol": "AaveProtocolDataProvider",
    # The Pool's and the configurator's external logic libraries, linked at deploy time.
    "src/contracts/protocol/libraries/logic/SupplyLogic.sol": "SupplyLogic",
    "src/contracts/protocol/libraries/logic/BorrowLogic.sol": "BorrowLogic",
    "src/contracts/protocol/libraries/logic/LiquidationLogic.sol": "LiquidationLogic",
    "src/contracts/protocol/libraries/logic/PoolLogic.sol": "PoolLogic",
    "src/contracts/protocol/libraries/logic/FlashLoanLogic.sol": "FlashLoanLogic",
    "src/contracts/protocol/libraries/logic/ConfiguratorLogic.sol": "ConfiguratorLogic",
}


def _remapped(unit: str) -> Path:
    for prefix, target in ORIGIN_REMAPPINGS.items():
        if unit.startswith(prefix):
            return node_modules() / (target + unit[len(prefix) :])
    raise UserError(f"no remapping for {unit}; aave-v3-origin's imports changed?")


def _origin_input() -> dict[str, Any]:
    """Aave V3.6's deployment closure: the files ORIGIN_CONTRACTS import, directly or through each other, named as
    the remapped imports name them; foundry.toml's profile (0.8.27, shanghai, optimizer 200, no metadata hash)."""
    own = {f"chainrisk/{p.name}": {"content": p.read_text()} for p in sorted(ORIGIN_OWN_DIR.glob("*.sol"))}
    found: dict[str, dict[str, str]] = {}
    pending = list(ORIGIN_CONTRACTS)
    while pending:
        unit = pending.pop()
        if unit in found:
            continue
        path = _remapped(unit)
        if not path.is_file():
            raise UserError(f"{unit} missing at {path}; run `npm ci` in {project_root()}")
        found[unit] = {"content": path.read_text()}
        for target in _IMPORT.findall(found[unit]["content"]):
            relative = target.startswith(".")
            pending.append(posixpath.normpath(posixpath.join(posixpath.dirname(unit), target)) if relative else target)
    selected = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]
    return {
        "language": "Solidity",
        "sources": dict(sorted({**found, **own}.items())),
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": "shanghai",
            "metadata": {"bytecodeHash": "none"},
            # Bytecode only for what is deployed: solc then generates code for nothing else.
            "outputSelection": {
                unit: {name: selected} for unit, name in (*ORIGIN_CONTRACTS.items(), *((u, "*") for u in own))
            },
        },
    }


@functools.cache
def aave_origin_contracts() -> dict[str, CompiledContract]:
    """Aave V3.6 (PoolInstance, L2PoolInstance, tokens, configurator, oracle, rate strategy, sentinel, the logic
    libraries) and our SequencerUptimeFeed, compiled from npm sources with solcjs 0.8.27, cached by input hash.
    Library placeholders stay in the bytecode: `link` fills them at deploy time."""
    return _contracts(_compile(_origin_input(), ORIGIN_COMPILER), {})


def link(contract: CompiledContract, libraries: dict[str, str]) -> CompiledContract:
    """`contract` with each library placeholder (solc's `__$` + keccak(fully qualified name)[:34] + `$__`)
    replaced by the address `libraries` gives by library name; ValueError when one stays unlinked."""
    code = contract.bytecode
    for unit, name in ORIGIN_CONTRACTS.items():
        placeholder = "__$" + keccak(f"{unit}:{name}".encode()).hex()[:34] + "$__"
        if placeholder in code:
            if name not in libraries:
                raise ValueError(f"library {name} must be deployed and linked first")
            code = code.replace(placeholder, libraries[name].lower().removeprefix("0x"))
    if "__$" in code:
        raise ValueError("bytecode still holds a library placeholder")
    return CompiledContract(abi=contract.abi, bytecode=code, runtime=contract.runtime)


@functools.cache
def folder_contracts(folder: Path) -> dict[str, CompiledContract]:
    """Our own Solidity in `folder` (a protocol package's read-only lens), compiled on its own with the stand-ins'
    settings, so adding it leaves every other compilation's bytecode untouched. Cached by input hash."""
    return _contracts(_compile(_standin_input(folder, prefix="chainrisk")), {})
