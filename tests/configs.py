"""chainrisk.toml text for a devnet's markets, for tests that drive `chainrisk run`/`watch` as a user would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainrisk.config import devnet_config


def devnet_toml(devnet: dict[str, Any], db: Path, rpc_url: str | None = None) -> str:
    """`db`, the RPC (the devnet's own unless given, e.g. a proxy in front of it) and one [[markets]] per protocol."""
    return f'db = "{db}"\nrpc_url = "{rpc_url or devnet["rpc_url"]}"\n' + "".join(
        f'[[markets]]\nprotocol = "{m.protocol}"\naddress = "{m.address}"\n'
        + "".join(f'{k} = "{v}"\n' for k, v in m.options.items())
        for m in devnet_config(devnet, db).markets
    )
