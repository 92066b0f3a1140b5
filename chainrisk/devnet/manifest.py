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


#: What every reader of a manifest takes from it.
MANIFEST_KEYS = ("rpc_url", "chain_id", "pid")


def read_manifest(path: Path | None = None) -> dict[str, Any]:
    path = path or manifest_path()
    if not path.is_file():
        raise UserError(f"no devnet manifest at {path}; start one with `chainrisk devnet up`")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise UserError(
            f"{path} is not a devnet manifest ({type(exc).__name__}); start a new devnet with "
            "`chainrisk devnet up --replace`"
        ) from None
    missing = [key for key in MANIFEST_KEYS if key not in data] if isinstance(data, dict) else list(MANIFEST_KEYS)
    if missing:
        raise UserError(
            f"{path} is not a devnet manifest (no {', '.join(missing)}); start a new devnet with "
            "`chainrisk devnet up --replace`"
        )
    manifest: dict[str, Any] = data
    return manifest
