"""Compiles one aave-v3-origin tag's pool market with solcjs in a scratch folder (recording only, never in CI).

The sources come from a local git copy of aave-dao/aave-v3-origin (given on the command line, never committed);
solcjs of the version the tag's foundry.toml names and the OpenZeppelin 5 files its remappings point into come
from npm, installed into the scratch folder. Only the import closure of the contracts a market needs is compiled.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import subprocess
import tarfile
import tomllib
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

#: OpenZeppelin release for the three OZ 5 files 3.4+ import (SafeCast, ECDSA, Multicall); @bgd-labs/solidity-utils
#: 1.1.2, the tag's own npm dependency, asks for ^5.1.0.
OPENZEPPELIN = "5.1.0"
_IMPORT = re.compile(r"""^\s*import\s+(?:[^;]*?\s+from\s+)?["']([^"']+)["']\s*;""", re.MULTILINE)
#: Where a tag's remappings point for OpenZeppelin, and the npm package folder that holds the same files.
_OZ_PREFIX = "lib/solidity-utils/lib/openzeppelin-contracts-upgradeable/lib/openzeppelin-contracts/"

#: Contracts a market needs, by short name, as paths inside each layout (3.1 keeps src/core; 3.2+ src/contracts).
_ENTRIES_31 = {
    "Pool": "src/core/instances/PoolInstance.sol",
    "PoolConfigurator": "src/core/instances/PoolConfiguratorInstance.sol",
    "AToken": "src/core/instances/ATokenInstance.sol",
    "VariableDebtToken": "src/core/instances/VariableDebtTokenInstance.sol",
    "StableDebtToken": "src/core/instances/StableDebtTokenInstance.sol",
    "ACLManager": "src/core/contracts/protocol/configuration/ACLManager.sol",
    "PoolAddressesProvider": "src/core/contracts/protocol/configuration/PoolAddressesProvider.sol",
    "AaveOracle": "src/core/contracts/misc/AaveOracle.sol",
    "AaveProtocolDataProvider": "src/core/contracts/misc/AaveProtocolDataProvider.sol",
    "DefaultReserveInterestRateStrategyV2": "src/core/contracts/protocol/pool/DefaultReserveInterestRateStrategyV2.sol",
}
_ENTRIES_32 = {
    "Pool": "src/contracts/instances/PoolInstance.sol",
    "PoolConfigurator": "src/contracts/instances/PoolConfiguratorInstance.sol",
    "AToken": "src/contracts/instances/ATokenInstance.sol",
    "VariableDebtToken": "src/contracts/instances/VariableDebtTokenInstance.sol",
    "ACLManager": "src/contracts/protocol/configuration/ACLManager.sol",
    "PoolAddressesProvider": "src/contracts/protocol/configuration/PoolAddressesProvider.sol",
    "AaveOracle": "src/contracts/misc/AaveOracle.sol",
    "AaveProtocolDataProvider": "src/contracts/helpers/AaveProtocolDataProvider.sol",
    "DefaultReserveInterestRateStrategyV2": "src/contracts/misc/DefaultReserveInterestRateStrategyV2.sol",
}
#: Contract names inside the entry files (instances are named ...Instance).
_CONTRACT_NAMES = {
    "Pool": "PoolInstance",
    "PoolConfigurator": "PoolConfiguratorInstance",
    "AToken": "ATokenInstance",
    "VariableDebtToken": "VariableDebtTokenInstance",
    "StableDebtToken": "StableDebtTokenInstance",
}


@dataclass(frozen=True)
class Artifact:
    abi: list[dict[str, Any]]  #: contract ABI
    bytecode: str  #: creation code, hex without 0x, with library placeholders
    links: dict[str, list[tuple[int, int]]]  #: library name -> (byte offset, length) placeholders


@dataclass(frozen=True)
class Build:
    tag: str  #: e.g. v3.4.0
    contracts: dict[str, Artifact]  #: by short name (and every library by its own name)
    errors: dict[str, str]  #: revert reasons: Errors.sol string codes (3.1-3.3) and 4-byte custom error selectors


def _run(args: list[str], cwd: Path | None = None) -> bytes:
    done = subprocess.run(args, cwd=cwd, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.decode()[-500:]}")
    return done.stdout


def extract_tag(repo: Path, tag: str, into: Path) -> Path:
    """src/, remappings.txt and foundry.toml of `tag` from the git directory `repo`, unpacked under `into`; a `tag`
    of the form `main@<commit>` takes that commit (3.7 has no tag yet)."""
    folder = into / "sources" / tag
    if not (folder / "foundry.toml").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        ref = tag.split("@", 1)[1] if "@" in tag else f"refs/tags/{tag}"
        archive = _run(["git", f"--git-dir={repo}", "archive", ref, "src", "remappings.txt", "foundry.toml"])
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
    return folder


def npm_package(into: Path, name: str, version: str) -> Path:
    """`name@version` installed from the npm registry into its own scratch folder; the package's folder."""
    folder = into / "npm" / f"{name.replace('/', '+')}@{version}"
    package = folder / "node_modules" / name
    if not (package / "package.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text('{"private": true}')
        _run(["npm", "install", "--no-audit", "--no-fund", f"{name}@{version}"], cwd=folder)
    return package


def _remappings(source: Path) -> list[tuple[str, str]]:
    lines = (source / "remappings.txt").read_text().split()
    return [(a, b) for a, b in (line.split("=", 1) for line in lines if "=" in line)]


def _closure(source: Path, entries: list[str], oz: Path) -> dict[str, dict[str, str]]:
    """The entry files and everything they import, by source unit name (remapped path)."""
    remaps = _remappings(source)
    found: dict[str, dict[str, str]] = {}
    pending = list(entries)
    while pending:
        unit = pending.pop()
        if unit in found:
            continue
        path = oz / unit[len(_OZ_PREFIX) + len("contracts/") :] if unit.startswith(_OZ_PREFIX) else source / unit
        text = path.read_text()
        found[unit] = {"content": text}
        for target in _IMPORT.findall(text):
            if target.startswith("."):
                pending.append(posixpath.normpath(posixpath.join(posixpath.dirname(unit), target)))
                continue
            prefix = next((p for p in remaps if target.startswith(p[0])), None)
            pending.append(prefix[1] + target[len(prefix[0]) :] if prefix else target)
    return found


def compile_tag(repo: Path, tag: str, scratch: Path) -> Build:
    """Compiles `tag`'s market contracts as its foundry.toml says (solc version, optimizer runs, EVM version)."""
    source = extract_tag(repo, tag, scratch)
    profile = tomllib.loads((source / "foundry.toml").read_text())["profile"]["default"]
    solc = npm_package(scratch, "solc", profile["solc"])
    oz = npm_package(scratch, "@openzeppelin/contracts", OPENZEPPELIN)
    entries = _ENTRIES_31 if (source / "src" / "core").is_dir() else _ENTRIES_32
    sources = _closure(source, list(entries.values()), oz)
    solc_input = {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "optimizer": {"enabled": bool(profile.get("optimizer", True)), "runs": int(profile["optimizer_runs"])},
            "evmVersion": profile["evm_version"],
            "remappings": [f"{a}={b}" for a, b in _remappings(source)],
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.bytecode.linkReferences"]}},
        },
    }
    encoded = json.dumps(solc_input, sort_keys=True).encode()
    cache = scratch / "solc-out" / f"{tag}-{hashlib.sha256(encoded).hexdigest()[:16]}.json"
    if not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        request = cache.with_suffix(".input")
        request.write_bytes(encoded)
        raw = cache.with_suffix(".raw")
        with request.open("rb") as stdin, raw.open("wb") as stdout:
            subprocess.run(["node", str(solc / "solc.js"), "--standard-json"], stdin=stdin, stdout=stdout, check=True)
        text = raw.read_text()
        output = json.loads(text[text.index("{") :])
        errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
        if errors:
            raise RuntimeError(f"{tag}: {errors[0]}")
        cache.write_text(json.dumps(output))
        request.unlink()
        raw.unlink()
    output = json.loads(cache.read_text())
    contracts: dict[str, Artifact] = {}
    by_name = {short: _CONTRACT_NAMES.get(short, short) for short in entries}
    for unit, per_file in output["contracts"].items():
        for name, body in per_file.items():
            bytecode = body["evm"]["bytecode"]
            links = {
                lib: [(ref["start"], ref["length"]) for ref in refs]
                for refs_by_lib in bytecode.get("linkReferences", {}).values()
                for lib, refs in refs_by_lib.items()
            }
            artifact = Artifact(body["abi"], bytecode["object"], links)
            for short, contract in by_name.items():
                if contract == name and unit == entries[short]:
                    contracts[short] = artifact
            if "/libraries/logic/" in unit:
                contracts.setdefault(name, artifact)
    errors_file = next(source.rglob("helpers/Errors.sol"))
    reasons = {
        code: constant
        for constant, code in re.findall(r"string public constant (\w+) = '(\d+)'", errors_file.read_text())
    }
    for per_file in output["contracts"].values():
        for body in per_file.values():
            for entry in body["abi"]:
                if entry["type"] == "error":
                    signature = f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"
                    reasons["0x" + keccak(signature.encode()).hex()[:8]] = entry["name"]
    return Build(tag, contracts, reasons)
