"""Preset lists generated from a pinned npm package into a JSON file that ships with chainrisk (users need no npm):
`{"source": "<package> <version>", "<key>": [rows]}`, written by the generating module's `main`, read by its
`stored`, and kept equal to the installed package by a test."""

from __future__ import annotations

import json
from pathlib import Path


def package_version(node_modules: Path, package: str) -> str:
    """The installed version of `package` ('@scope/name') under `node_modules`."""
    return str(json.loads((node_modules / package / "package.json").read_text())["version"])


def read_rows(path: Path, key: str) -> list[dict[str, object]]:
    """The rows a generated file holds under `key`."""
    data: dict[str, object] = json.loads(path.read_text())
    rows = data[key]
    assert isinstance(rows, list)
    return rows


def write_rows(path: Path, source: str, key: str, rows: list[dict[str, object]]) -> None:
    """Writes `rows` under `key`, with the package and version they came from."""
    path.write_text(json.dumps({"source": source, key: rows}, indent=1) + "\n")
