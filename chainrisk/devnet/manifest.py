"""Where a devnet's manifest lies and how it is read: what every `--devnet` command needs, without the builder's
modules (importing chainrisk.devnet.build costs ~0.15 s a process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chainrisk.devnet.toolchain import state_dir
from chainrisk.errors import UserError

MANIFEST_NAME = "manifest.json"


def manifest_path(folder: Path | None = None) -> Path:
    return (folder or state_dir() / "devnet") / MANIFEST_NAME


def read_manifest(path: Path | None = None) -> dict[str, Any]:
    path = path or manifest_path()
    if not path.is_file():
        raise UserError(f"no devnet manifest at {path}; start one with `chainrisk devnet up`")
    data: dict[str, Any] = json.loads(path.read_text())
    return data
