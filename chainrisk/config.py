"""`chainrisk.toml`: which markets of which protocols to index, from which RPC, into which database.

```toml
db = "chainrisk.duckdb"          # optional (default chainrisk.duckdb, relative to the config file)
rpc_url = "https://..."          # optional (default: the ETH_RPC_URL environment variable)
confirmations = 12               # optional (default 12 on mainnets, 0 on local devnets)

[[markets]]
preset = "aave-v3-ethereum"      # a named deployment (chainrisk knows its protocol, address and chain)

[[markets]]
protocol = "morpho-blue"         # or any deployment by protocol and address
address = "0xBBBBBbbBBb9cC5e90e3b3Af64bdAF62C37EEFFCb"
from_block = 18883124            # optional: first block with its events
chain_id = 1                     # optional: refuse an RPC serving another chain
usd_oracle = "0x54586bE62E3c3580375aE3723C145253060Ca0C2"   # adapter option (Morpho: USD prices)
```

`[watchlists]` and `[alerts]` (rules, webhooks, e-mail) are described in chainrisk.alerts.rules.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chainrisk.alerts.rules import AlertConfig, parse_alerts, parse_watchlists
from chainrisk.errors import UserError
from chainrisk.protocols.adapter import adapter_for, find_preset

TOP_KEYS = {"db", "rpc_url", "confirmations", "markets", "watchlists", "alerts"}
MARKET_KEYS = {"preset", "protocol", "address", "from_block", "chain_id"}


@dataclass(frozen=True)
class MarketConfig:
    protocol: str  #: adapter name
    address: str  #: contract to index, lowercase hex
    from_block: int | None = None  #: first block to read logs from
    chain_id: int | None = None  #: expected chain
    options: dict[str, str] = field(default_factory=dict)  #: adapter options
    name: str = ""  #: preset name or protocol:address, for messages


@dataclass(frozen=True)
class Config:
    db: Path  #: DuckDB file
    rpc_url: str | None  #: JSON-RPC endpoint (None: ETH_RPC_URL)
    confirmations: int | None  #: blocks behind the head (None: the chain's default)
    markets: list[MarketConfig]  #: what to index, in order
    alerts: AlertConfig | None = None  #: alert rules and channels (`chainrisk run` / `watch`)


def _int(where: str, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UserError(f"{where}: {key} must be a non-negative integer, not {value!r}")
    return value


def market_config(entry: dict[str, Any], where: str) -> MarketConfig:
    """One [[markets]] table, checked: a preset, or a protocol and an address, plus the adapter's options."""
    if "preset" in entry:
        preset = find_preset(str(entry["preset"]))
        merged = {"protocol": preset.protocol, "address": preset.address, "from_block": preset.from_block,
                  "chain_id": preset.chain_id, **dict(preset.options), **entry}  # fmt: skip
    else:
        merged = dict(entry)
    if "protocol" not in merged or "address" not in merged:
        raise UserError(f"{where}: give `preset = NAME`, or `protocol` and `address`")
    adapter = adapter_for(str(merged["protocol"]))
    unknown = sorted(set(merged) - MARKET_KEYS - set(adapter.option_names))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} for {adapter.name}")
    options = {k: str(merged[k]) for k in adapter.option_names if k in merged}
    return MarketConfig(
        protocol=adapter.name,
        address=str(merged["address"]).lower(),
        from_block=_int(where, "from_block", merged["from_block"]) if "from_block" in merged else None,
        chain_id=_int(where, "chain_id", merged["chain_id"]) if "chain_id" in merged else None,
        options=options,
        name=str(entry.get("preset", f"{adapter.name}:{merged['address']}")),
    )


def load_config(path: Path) -> Config:
    if not path.is_file():
        raise UserError(f"no config file at {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text file") from None
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise UserError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(TOP_KEYS))})")
    entries = raw.get("markets")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise UserError(f"{path}: add at least one [[markets]] table")
    markets = [market_config(entry, f"{path} [[markets]] #{i + 1}") for i, entry in enumerate(entries)]
    db = Path(str(raw.get("db", "chainrisk.duckdb")))
    rpc_url = raw.get("rpc_url")
    if rpc_url is not None and not isinstance(rpc_url, str):
        raise UserError(f"{path}: rpc_url must be a string")
    watchlists = parse_watchlists(raw.get("watchlists"), str(path))
    return Config(
        db=db if db.is_absolute() else path.parent / db,
        rpc_url=rpc_url,
        confirmations=_int(str(path), "confirmations", raw["confirmations"]) if "confirmations" in raw else None,
        markets=markets,
        alerts=parse_alerts(raw.get("alerts"), watchlists, str(path)),
    )


def resolve_rpc_url(explicit: str | None) -> str:
    url = explicit or os.environ.get("ETH_RPC_URL")
    if not url:
        raise UserError("no RPC: pass --rpc-url, set rpc_url in the config, or set ETH_RPC_URL")
    return url


def devnet_config(manifest: dict[str, Any], db: Path) -> Config:
    """Both protocols of the local devnet, priced in USD by its Aave oracle."""
    return Config(
        db=db,
        rpc_url=str(manifest["rpc_url"]),
        confirmations=None,
        markets=[
            MarketConfig("aave-v3", manifest["aave_v3"]["pool_addresses_provider"], name="devnet aave-v3"),
            MarketConfig(
                "morpho-blue",
                manifest["morpho_blue"]["morpho"],
                options={"usd_oracle": manifest["aave_v3"]["oracle"]},
                name="devnet morpho-blue",
            ),
        ],
    )
