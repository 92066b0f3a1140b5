"""`chainrisk.toml`: which markets of which protocols to index, from which RPC, into which database.

```toml
db = "chainrisk.duckdb"          # optional (default chainrisk.duckdb, relative to the config file)
rpc_url = "https://..."          # optional (default: the ETH_RPC_URL environment variable)
confirmations = 12               # optional (default 12 on mainnets, 0 on local devnets)
parallel_markets = 4             # optional: markets a run indexes at once (default 1: one after the other)
aggregate_calls = 100            # optional: plain eth_calls of one block packed into one eth_call, this many at most
                                 # (default 100; 0: each call on its own; README "Calls a provider bills")

[rpc_headers."node.example.com"] # optional: HTTP headers sent to an RPC host (host, or host:port), each value read
Authorization = "NODE_AUTH"      # from the environment variable named (never the secret in the file): a node behind
                                 # an authenticating proxy, a provider that takes its key as a header

[chains.arbitrum]                # more chains, each with its own RPC (one database holds them all)
chain_id = 42161
rpc_url = "https://..."          # optional (default: the CHAINRISK_RPC_ARBITRUM environment variable)

[[markets]]
preset = "aave-v3-ethereum"      # a named deployment (chainrisk knows its protocol, address and chain)

[[markets]]
protocol = "morpho-blue"         # or any deployment by protocol and address
address = "0xBBBBBbbBBb9cC5e90e3b3Af64bdAF62C37EEFFCb"
from_block = 18883124            # optional: first block with its events
chain_id = 1                     # optional: refuse an RPC serving another chain
usd_oracle = "0x54586bE62E3c3580375aE3723C145253060Ca0C2"   # adapter option (Morpho: USD prices)

[[markets]]
preset = "aave-v3-arbitrum"      # a preset on another chain is read through that chain's RPC

[[markets]]
preset = "maker-ethereum"
urns = "vaults.txt"              # adapter option (Maker): more urns, a file or a comma list of 0x... or ETH-A:0x...
```

`[watchlists]` and `[alerts]` (rules, webhooks, e-mail) are described in chainrisk.alerts.rules. The risk models
(`chainrisk risk ...`) read an optional `[risk]` table:

```toml
[risk]
series = { wstETH = "stETH", sUSDe = "USDT" }   # market symbol -> price series of the calibration data
depth_usd_at_2pct = { WETH = 40e6 }             # cascade and parameter advice: USD sellable for a 2 % move
depth_shape = "sqrt"                             # or "linear"
oracle_lag_hours = 1                             # parameter advice: hours the oracle trails the market
liquidation_delay_hours = 1                      # hours liquidators take to act
max_change_bps = 300                             # most a parameter moves in one proposal
prices = "data/hourly_usd"                       # the price history: <SERIES>_usd.csv files (relative to this file;
                                                 # default $CHAINRISK_PRICES_DIR, else ../shared/data/prices/hourly_usd)
```

`[storage]` sets how fine the health history is kept (README "Storage and history"):

```toml
[storage]
hourly_days = 90                                 # buckets of an hour this many days back, of a day beyond
```
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from chainrisk.alerts.rules import AlertConfig, parse_alerts, parse_watchlists
from chainrisk.errors import UserError, hide_secrets
from chainrisk.protocols.adapter import adapter_for, adapters, find_preset
from chainrisk.protocols.usd import parse_feeds, parse_max_age
from chainrisk.rpc import RpcSettings, mask_url
from chainrisk.store.history import HistorySettings, parse_storage

TOP_KEYS = {
    "db",
    "rpc_url",
    "confirmations",
    "parallel_markets",
    "aggregate_calls",
    "rpc_headers",
    "chains",
    "markets",
    "watchlists",
    "alerts",
    "risk",
    "storage",
}
#: Markets `chainrisk run`/`index` reads at once unless the config says otherwise: one after the other. Reading them
#: side by side halves a steady run's index against a remote RPC, but each holds its snapshot in memory while it is
#: read, and on the 300-wallet devnet the file's first unchanged run then grows by +14.1 % against +9.4 % (README
#: "Storage and history"): opt-in.
DEFAULT_PARALLEL_MARKETS = 1
#: Plain eth_calls of one block packed into one eth_call unless the config says otherwise (chainrisk.rpc.aggregate): a
#: steady devnet run sends 136 calls instead of 1,130, in as many requests and no more time (README "Calls a provider
#: bills"). 0 turns it off: a node that refuses state overrides is found out by its first aggregate anyway.
DEFAULT_AGGREGATE_CALLS = 100
CHAIN_KEYS = {"chain_id", "rpc_url", "confirmations"}
#: The environment variable of a chain's RPC when the config names none: CHAINRISK_RPC_<NAME>.
CHAIN_RPC_ENV = "CHAINRISK_RPC_{}"
RISK_KEYS = {
    "series",
    "depth_usd_at_2pct",
    "depth_shape",
    "oracle_lag_hours",
    "liquidation_delay_hours",
    "max_change_bps",
    "prices",
}
#: [risk] keys that are whole numbers, with the range each accepts.
RISK_INTEGERS = {"oracle_lag_hours": (0, 48), "liquidation_delay_hours": (0, 48), "max_change_bps": (25, 10_000)}
MARKET_KEYS = {"preset", "protocol", "address", "from_block", "chain_id", "chain"}
#: Where the format is described, for messages that ask the user to fix a file.
FORMAT_HINT = "see `python -m pydoc chainrisk.config` for the format"
#: URL schemes the JSON-RPC client speaks.
RPC_SCHEMES = ("http", "https")
#: Query parameters whose values are credentials whatever their length.
SECRET_PARAMS = re.compile(r"key|token|secret|pass|auth|sig", re.IGNORECASE)
#: A path segment or query value that looks like an API key: long, and not a plain word.
KEY_LIKE = re.compile(r"^(?=.*\d)[A-Za-z0-9_\-]{16,}$")
#: Shortest URL part treated as a secret.
MIN_SECRET_CHARS = 6
_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class MarketConfig:
    protocol: str  #: adapter name
    address: str  #: contract to index, lowercase hex
    from_block: int | None = None  #: first block to read logs from
    chain_id: int | None = None  #: expected chain
    options: dict[str, str] = field(default_factory=dict)  #: adapter options
    name: str = ""  #: preset name or protocol:address, for messages
    chain: str | None = None  #: the [chains.NAME] whose RPC reads it (None: the one of its chain_id, else the default)


@dataclass(frozen=True)
class ChainConfig:
    name: str  #: the NAME of [chains.NAME]
    chain_id: int  #: the chain its RPC must serve
    rpc_url: str | None = None  #: JSON-RPC endpoint (None: the CHAINRISK_RPC_<NAME> environment variable)
    confirmations: int | None = None  #: blocks behind its head (None: the config's, else the chain's default)

    def resolved_rpc_url(self) -> str | None:
        return self.rpc_url or os.environ.get(CHAIN_RPC_ENV.format(re.sub(r"[^A-Z0-9]", "_", self.name.upper())))


@dataclass(frozen=True)
class Config:
    db: Path  #: DuckDB file
    rpc_url: str | None  #: JSON-RPC endpoint of the default chain (None: ETH_RPC_URL)
    confirmations: int | None  #: blocks behind the head (None: the chain's default)
    markets: list[MarketConfig]  #: what to index, in order
    alerts: AlertConfig | None = None  #: alert rules and channels (`chainrisk run` / `watch`)
    risk: dict[str, Any] = field(default_factory=dict)  #: the checked [risk] table (chainrisk.jobs.risk.RiskSettings)
    chains: dict[str, ChainConfig] = field(default_factory=dict)  #: more chains, by name
    storage: HistorySettings = field(default_factory=HistorySettings)  #: [storage]: how fine the history is kept
    #: markets indexed at once (chainrisk.jobs.run.index_markets), once each chain's block is pinned
    parallel_markets: int = DEFAULT_PARALLEL_MARKETS
    #: plain eth_calls of one block packed into one eth_call, this many at most (chainrisk.rpc.aggregate); 0: none
    aggregate_calls: int = DEFAULT_AGGREGATE_CALLS
    #: [rpc_headers]: per RPC host, each header's name and the environment variable holding its value
    rpc_headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def rpc_settings(self) -> RpcSettings:
        """How this config's RPC clients talk to their nodes (chainrisk.rpc.use_settings; `rpc_settings_of`)."""
        return rpc_settings_of(self.rpc_headers, self.aggregate_calls)

    def chain_of(self, market: MarketConfig) -> ChainConfig | None:
        """The [chains] entry that reads `market`: the one it names, else the one of its chain_id; None for the
        default chain."""
        if market.chain is not None:
            return self.chains[market.chain]
        return next(
            (c for c in self.chains.values() if market.chain_id is not None and c.chain_id == market.chain_id), None
        )

    def rpc_url_of(self, market: MarketConfig) -> str | None:
        """The RPC URL that reads `market` (None: the default, resolved from ETH_RPC_URL)."""
        chain = self.chain_of(market)
        if chain is None:
            return self.rpc_url
        url = chain.resolved_rpc_url()
        if url is None:
            variable = CHAIN_RPC_ENV.format(re.sub(r"[^A-Z0-9]", "_", chain.name.upper()))
            raise UserError(f"no RPC for chain {chain.name!r}: set rpc_url in [chains.{chain.name}] or {variable}")
        return url

    def confirmations_of(self, market: MarketConfig) -> int | None:
        chain = self.chain_of(market)
        return chain.confirmations if chain is not None and chain.confirmations is not None else self.confirmations


def _int(where: str, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UserError(f"{where}: {key} must be a non-negative integer, not {value!r}")
    return value


def check_address(value: Any, where: str) -> str:
    """A 20-byte hex address in any letter case (EIP-55 checksums are not enforced), lowercased."""
    if not isinstance(value, str) or not _HEX_ADDRESS.match(value.strip()):
        shown = f"{value!r}" if isinstance(value, str) and len(value) <= 80 else f"a {type(value).__name__}"
        raise UserError(f"{where}: {shown} is not a 20-byte hex address; give 0x followed by 40 hex digits")
    return value.strip().lower()


def market_config(entry: dict[str, Any], where: str) -> MarketConfig:
    """One [[markets]] table, checked: a preset, or a protocol and an address, plus the adapter's options."""
    for key in ("preset", "protocol"):
        if key in entry and not isinstance(entry[key], str):
            raise UserError(f"{where}: {key} must be a string, not {entry[key]!r}")
    if "preset" in entry:
        preset = find_preset(str(entry["preset"]))
        start = {"from_block": preset.from_block} if preset.from_block is not None else {}
        merged = {
            "protocol": preset.protocol,
            "address": preset.address,
            **start,
            "chain_id": preset.chain_id,
            **dict(preset.options),
            **entry,
        }
    else:
        merged = dict(entry)
    if "protocol" not in merged or "address" not in merged:
        # A misspelt key is the usual cause: name it rather than only the keys that are missing.
        stray = sorted(set(merged) - MARKET_KEYS - {o for a in adapters().values() for o in a.option_names})
        typo = f" (unknown key {stray[0]!r}; known: {', '.join(sorted(MARKET_KEYS))})" if stray else ""
        raise UserError(f"{where}: give `preset = NAME`, or `protocol` and `address`{typo}")
    adapter = adapter_for(str(merged["protocol"]))
    known = MARKET_KEYS | set(adapter.option_names)
    unknown = sorted(set(merged) - known)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} for {adapter.name} (known: {', '.join(sorted(known))})")
    # Contract options (a USD oracle) are checked here so the message names them; text options (Maker's urn list)
    # by the adapter.
    options = {
        k: _text_option(merged[k], f"{where}: {k}")
        if k in adapter.text_options
        else check_address(merged[k], f"{where}: {k}")
        for k in adapter.option_names
        if k in merged
    }
    # A malformed feed pair or age fails here, before any work.
    if "usd_feeds" in options:
        parse_feeds(options["usd_feeds"], f"{where}: usd_feeds")
    if "usd_feed_max_age" in options:
        parse_max_age(options["usd_feed_max_age"], f"{where}: usd_feed_max_age")
    return MarketConfig(
        protocol=adapter.name,
        address=check_address(merged["address"], f"{where}: address"),
        from_block=_int(where, "from_block", merged["from_block"]) if "from_block" in merged else None,
        chain_id=_int(where, "chain_id", merged["chain_id"]) if "chain_id" in merged else None,
        options=options,
        name=str(entry.get("preset", f"{adapter.name}:{merged['address']}")),
        chain=_text(where, "chain", merged["chain"]) if "chain" in merged else None,
    )


def _text_option(value: Any, where: str) -> str:
    """A text option as the adapter reads it: a TOML table (usd_feeds = { "0xtoken" = "0xfeed" }) as KEY=VALUE pairs
    separated by spaces, anything else as its text."""
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        raise UserError(f"{where}: give a string or a table, not a list")
    return str(value)


def _text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: {key} must be a name in quotes, not {value!r}")
    return value.strip()


def parse_chains(raw: Any, where: str) -> dict[str, ChainConfig]:
    """The [chains.NAME] tables, checked: a chain id each (distinct), an optional RPC URL and confirmations."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise UserError(f"{where}: [chains] holds one table per chain, e.g. [chains.arbitrum] ({FORMAT_HINT})")
    chains: dict[str, ChainConfig] = {}
    for name, table in raw.items():
        here = f"{where} [chains.{name}]"
        unknown = sorted(set(table) - CHAIN_KEYS)
        if unknown:
            raise UserError(f"{here}: unknown key {unknown[0]!r} (known: {', '.join(sorted(CHAIN_KEYS))})")
        if "chain_id" not in table:
            raise UserError(f"{here}: give the chain_id its RPC serves")
        rpc_url = table.get("rpc_url")
        if rpc_url is not None and not isinstance(rpc_url, str):
            raise UserError(f"{here}: rpc_url must be a URL in quotes, not a {type(rpc_url).__name__}")
        confirmations = _int(here, "confirmations", table["confirmations"]) if "confirmations" in table else None
        chains[name] = ChainConfig(name, _int(here, "chain_id", table["chain_id"]), rpc_url, confirmations)
    ids = [c.chain_id for c in chains.values()]
    if len(set(ids)) != len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        raise UserError(f"{where}: two [chains] tables name chain {twice}; keep one per chain")
    return chains


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"no config file at {path}; check the --config path ({FORMAT_HINT})")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML ({exc}); fix that line") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a UTF-8 text file; give --config a chainrisk.toml") from None
    return raw


def load_config(path: Path) -> Config:
    raw = _read_toml(path)
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise UserError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(TOP_KEYS))})")
    entries = raw.get("markets")
    if entries is not None and not (isinstance(entries, list) and all(isinstance(e, dict) for e in entries)):
        # The key named, what it must be and what it was (markets = "aave" read as "add a [[markets]] table").
        raise UserError(
            f"{path}: markets must be [[markets]] tables (protocol, address, ...), not {entries!r}"[:300]
            + f" ({FORMAT_HINT})"
        )
    if not entries:
        raise UserError(f"{path}: add at least one [[markets]] table ({FORMAT_HINT})")
    markets = [market_config(entry, f"{path} [[markets]] #{i + 1}") for i, entry in enumerate(entries)]
    chains = parse_chains(raw.get("chains"), str(path))
    for i, market in enumerate(markets):
        if market.chain is not None and market.chain not in chains:
            raise UserError(f"{path} [[markets]] #{i + 1}: chain {market.chain!r} has no [chains.{market.chain}] table")
    db_text = raw.get("db", "chainrisk.duckdb")
    if not isinstance(db_text, str) or not db_text.strip():
        raise UserError(f"{path}: db must be a file path in quotes, not {db_text!r}")
    db = Path(db_text)
    rpc_url = raw.get("rpc_url")
    if rpc_url is not None and not isinstance(rpc_url, str):
        raise UserError(f"{path}: rpc_url must be a URL in quotes, not a {type(rpc_url).__name__}")
    watchlists = parse_watchlists(raw.get("watchlists"), str(path))
    return Config(
        db=db if db.is_absolute() else path.parent / db,
        rpc_url=rpc_url,
        confirmations=_int(str(path), "confirmations", raw["confirmations"]) if "confirmations" in raw else None,
        markets=markets,
        alerts=parse_alerts(raw.get("alerts"), watchlists, str(path)),
        risk=parse_risk(raw.get("risk"), str(path), path.parent),
        chains=chains,
        storage=parse_storage(raw.get("storage"), str(path)),
        parallel_markets=_parallel_markets(str(path), raw.get("parallel_markets", DEFAULT_PARALLEL_MARKETS)),
        aggregate_calls=aggregate_calls(str(path), raw.get("aggregate_calls", DEFAULT_AGGREGATE_CALLS)),
        rpc_headers=parse_rpc_headers(raw.get("rpc_headers"), str(path)),
    )


#: An HTTP header's name (RFC 9110 token) and an environment variable's.
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_rpc_headers(raw: Any, where: str) -> dict[str, dict[str, str]]:
    """The checked [rpc_headers] table: host -> {header name: environment variable}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f'{where}: rpc_headers must be tables of headers per host ([rpc_headers."node.example.com"])')
    found: dict[str, dict[str, str]] = {}
    for host, named in raw.items():
        if not host.strip() or "/" in host or not isinstance(named, dict) or not named:
            raise UserError(
                f"{where}: [rpc_headers.{host!r}] must be an RPC host (host or host:port, no scheme or path) with "
                'headers, each naming the environment variable of its value: Authorization = "NODE_AUTH"'
            )
        for name, variable in named.items():
            if not _HEADER_NAME.match(name):
                raise UserError(f"{where}: [rpc_headers.{host!r}] {name!r} is not an HTTP header name")
            if not isinstance(variable, str) or not _VARIABLE.match(variable):
                raise UserError(  # the value is not repeated: it may be the secret itself
                    f"{where}: [rpc_headers.{host!r}] {name} must name the environment variable holding its value "
                    "(letters, digits and _), never the value itself"
                )
        found[host.lower()] = dict(named)
    return found


#: Most calls one aggregated eth_call packs: each is a STATICCALL within the node's gas cap for one eth_call
#: (geth's default 50M), and a few hundred getters of ~10-100k gas each fit well inside it.
MAX_AGGREGATE_CALLS = 1000


def aggregate_calls(where: str, value: Any) -> int:
    """A checked `aggregate_calls`: 0 (none) or 2 to MAX_AGGREGATE_CALLS."""
    if not isinstance(value, int) or isinstance(value, bool) or not (value == 0 or 2 <= value <= MAX_AGGREGATE_CALLS):
        raise UserError(
            f"{where}: aggregate_calls must be 0 (off) or a whole number from 2 to {MAX_AGGREGATE_CALLS}, not {value!r}"
        )
    return value


def _parallel_markets(where: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 64:
        raise UserError(f"{where}: parallel_markets must be a whole number from 1 to 64, not {value!r}")
    return value


def parse_risk(raw: Any, where: str, folder: Path | None = None) -> dict[str, Any]:
    """The [risk] table, checked: series names are strings, depths positive numbers, the shape known, hours and bps
    whole numbers in range, `prices` a folder path (relative to `folder`, the config's)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{where}: [risk] must be a table ({FORMAT_HINT})")
    unknown = sorted(set(raw) - RISK_KEYS)
    if unknown:
        raise UserError(f"{where}: [risk] has unknown key {unknown[0]!r} (known: {', '.join(sorted(RISK_KEYS))})")
    series = raw.get("series", {})
    if not isinstance(series, dict) or not all(isinstance(v, str) and v for v in series.values()):
        raise UserError(f'{where}: [risk] series must map symbols to series names, e.g. {{ wstETH = "stETH" }}')
    depth = raw.get("depth_usd_at_2pct", {})
    if not isinstance(depth, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in depth.values()
    ):
        raise UserError(f"{where}: [risk] depth_usd_at_2pct must map symbols to positive USD amounts")
    shape = raw.get("depth_shape", "sqrt")
    if shape not in ("sqrt", "linear"):
        raise UserError(f'{where}: [risk] depth_shape must be "sqrt" or "linear", not {shape!r}')
    whole = {}
    for key, (low, high) in RISK_INTEGERS.items():
        if key in raw:
            value = raw[key]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise UserError(f"{where}: [risk] {key} must be a whole number from {low} to {high}, not {value!r}")
            whole[key] = value
    checked: dict[str, Any] = {"series": dict(series), "depth_usd_at_2pct": {k: float(v) for k, v in depth.items()}}
    if "prices" in raw:
        checked["prices"] = _prices_folder(raw["prices"], where, folder)
    return checked | {"depth_shape": shape} | whole


def _prices_folder(value: Any, where: str, folder: Path | None) -> Path:
    """[risk] prices: a folder path, relative to the config's folder. Whether it holds price files is checked by the
    commands that read them (chainrisk.cli), so a `run` never stops on it."""
    if not isinstance(value, str) or not value.strip():
        raise UserError(f'{where}: [risk] prices must be a folder path, e.g. prices = "data/hourly_usd"')
    path = Path(value).expanduser()
    return path if path.is_absolute() or folder is None else folder / path


def url_secrets(url: str) -> set[str]:
    """The parts of an RPC URL that may be credentials: user and password, key-like path segments and query
    values, and the values of key/token/secret query parameters (providers put API keys in all of these)."""
    try:
        parts = urlsplit(url.strip())
        found = {parts.username or "", parts.password or ""}
    except ValueError:  # a malformed URL: everything between '//' and '@' may be a credential
        parts = urlsplit("")
        found = set(re.findall(r"//([^/@]+)@", url))
    for segment in parts.path.split("/"):
        if KEY_LIKE.match(unquote(segment)):
            found.add(segment)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if SECRET_PARAMS.search(name) or KEY_LIKE.match(value):
            found.add(value)
    for piece in list(found):  # the user and password also appear percent-decoded in some messages
        found.add(unquote(piece))
    # Shorter parts would hide ordinary words in messages; mask_url hides a whole user:password anyway.
    return {s for s in found if len(s) >= MIN_SECRET_CHARS}


def resolve_rpc_url(explicit: str | None) -> str:
    """The RPC endpoint to use, checked; its credentials are registered so no message or log shows them."""
    url = (explicit or os.environ.get("ETH_RPC_URL") or "").strip()
    if not url:
        raise UserError("no RPC: pass --rpc-url, set rpc_url in the config, or set ETH_RPC_URL")
    hide_secrets(url_secrets(url))
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when the port is not a number in 0..65535
    except ValueError:
        raise UserError(f"RPC URL {mask_url(url)} is malformed (bad host or port); check --rpc-url") from None
    if parts.scheme not in RPC_SCHEMES or not parts.hostname or port == 0:
        raise UserError(f"RPC URL {mask_url(url)} is not an http(s) URL with a host; give one like https://host/path")
    return url


def devnet_config(manifest: dict[str, Any], db: Path) -> Config:
    """Every market of the local devnet: Aave V3.0.2 and Morpho Blue (priced in USD by that Aave oracle), then each
    other protocol's section in manifest order, as its "index" entry names it (stand-ins say so in their names)."""
    markets = [
        MarketConfig("aave-v3", manifest["aave_v3"]["pool_addresses_provider"], name="devnet aave-v3"),
        MarketConfig(
            "morpho-blue",
            manifest["morpho_blue"]["morpho"],
            options={"usd_oracle": manifest["aave_v3"]["oracle"]},
            name="devnet morpho-blue",
        ),
    ]
    for section in manifest.values():
        if isinstance(section, dict) and isinstance(section.get("index"), dict):
            index = section["index"]
            options = {k: str(v).lower() for k, v in index.get("options", {}).items()}
            address = str(index["address"]).lower()
            markets.append(MarketConfig(index["protocol"], address, options=options, name=index["name"]))
    return Config(db=db, rpc_url=str(manifest["rpc_url"]), confirmations=None, markets=markets)


def rpc_settings_of(rpc_headers: dict[str, dict[str, str]], aggregate: int) -> RpcSettings:
    """RPC settings of a config's [rpc_headers] and aggregate_calls: the headers' values read from the environment now
    (a command that reads no RPC never needs them), each registered as a secret no error line or log shows."""
    headers = []
    for host, named in rpc_headers.items():
        for name, variable in named.items():
            value = os.environ.get(variable)
            if not value:
                raise UserError(
                    f"[rpc_headers.{host!r}] {name}: the environment variable {variable} is not set; export it "
                    "with the header's value"
                )
            if "\r" in value or "\n" in value:
                raise UserError(f"[rpc_headers.{host!r}] {name}: {variable} holds a line break; a header is one line")
            hide_secrets({value, *(part for part in value.split() if len(part) >= 8)})  # not 'Bearer' itself
            headers.append((host, name, value))
    return RpcSettings(aggregate_calls=aggregate, headers=tuple(headers))


def load_rpc_settings(path: Path) -> RpcSettings:
    """Only how a chainrisk.toml talks to RPC nodes ([rpc_headers], aggregate_calls): what a command that reads a node
    it is given (`risk optimise --rpc-url`) takes from a config that may name no markets."""
    raw = _read_toml(path)
    return rpc_settings_of(
        parse_rpc_headers(raw.get("rpc_headers"), str(path)),
        aggregate_calls(str(path), raw.get("aggregate_calls", DEFAULT_AGGREGATE_CALLS)),
    )


def load_risk_settings(path: Path) -> dict[str, Any]:
    """Only the [risk] table of a chainrisk.toml (the risk commands need no markets or RPC)."""
    return parse_risk(_read_toml(path).get("risk"), str(path), path.parent)
