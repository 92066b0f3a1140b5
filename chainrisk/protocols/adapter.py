"""The protocol-adapter interface every lending protocol implements, and the registry that finds adapters.

An adapter turns one protocol's contracts into frames; the indexing job (chainrisk.jobs.index) does the rest
(chain checks, incremental logs with reorg repair, DuckDB writes). A protocol is a package under
`chainrisk/protocols/` whose `adapter` module exposes `ADAPTER`; nothing else needs to know it exists.

The frames an adapter returns follow the shared SQL contract:

* events: its own `events_table` (columns of its choosing, plus block_number, block_hash, log_index);
* snapshot: its raw tables, plus `positions` (one row per wallet, market and asset) and `wallet_health`
  (one row per wallet and market), whose columns are documented in the README. In `positions`, `market` is
  the risk-isolated unit (an Aave pool, one Morpho market) and `source` the contract that was indexed.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import polars as pl

from chainrisk.errors import UserError
from chainrisk.rpc import RpcClient

DeploymentT = TypeVar("DeploymentT")

#: How the health factor of a wallet in a market combines its collateral (the `health_rule` column):
#: * average-threshold: Aave V3 GenericLogic: HF = percentMul(sum value, floor(sum value*LT / sum value)) / debt;
#: * per-position: Morpho Blue / Compound V3: HF = sum floor(value * LT_wad / 1e18) / debt;
#: * collateral-ratio: Liquity V1: `liquidation_threshold_wad` is the ratio R the collateral must reach over the debt
#:   (MCR): HF = sum floor(value * 1e18 / R) / debt, below 1 exactly when value * 1e18 < R * debt.
HEALTH_RULES = ("average-threshold", "per-position", "collateral-ratio")


@dataclass(frozen=True)
class Preset:
    name: str  #: what `--market` takes
    protocol: str  #: adapter name
    chain_id: int  #: chain the contract lives on
    address: str  #: the contract to index, lowercase hex
    from_block: int  #: a block at or before its deployment
    options: tuple[tuple[str, str], ...] = ()  #: adapter options (e.g. a USD oracle), as (key, value)


@dataclass(frozen=True)
class LogQuery:
    addresses: list[str]  #: contracts whose logs to read
    topics: list[list[str]]  #: eth_getLogs topic filter


@dataclass(frozen=True)
class Snapshot:
    frames: dict[str, pl.DataFrame]  #: table -> rows at the pinned block (raw tables, positions, wallet_health)
    accounts: int  #: accounts read
    accounts_with_debt: int  #: of which with debt


class Adapter(ABC, Generic[DeploymentT]):
    """One lending protocol. Stateless: every call gets what it needs."""

    name: ClassVar[str]  #: protocol name in every table ("aave-v3", "morpho-blue")
    address_role: ClassVar[str]  #: what `--address` names, for messages ("PoolAddressesProvider")
    events_table: ClassVar[str]  #: raw events table
    ddl: ClassVar[str]  #: CREATE TABLE IF NOT EXISTS statements for the adapter's raw tables
    presets: ClassVar[dict[str, Preset]]  #: named mainnet deployments
    option_names: ClassVar[tuple[str, ...]] = ()  #: options the adapter accepts
    #: Columns of `events_table` that `snapshot` needs back to find accounts (read DISTINCT).
    account_columns: ClassVar[tuple[str, ...]]

    @abstractmethod
    def discover(self, rpc: RpcClient, address: str, block: int, options: dict[str, str]) -> DeploymentT:
        """Checks the contract at `address` (the job has seen code there) is this protocol's at `block`
        (UserError otherwise) and reads what decoding logs needs."""

    @abstractmethod
    def log_query(self, deployment: DeploymentT) -> LogQuery:
        """The eth_getLogs filter for every event that reveals accounts or markets."""

    @abstractmethod
    def events_frame(self, deployment: DeploymentT, logs: list[dict[str, Any]]) -> pl.DataFrame:
        """Decoded logs as rows of `events_table` (without chain_id and market, which the job adds)."""

    @abstractmethod
    def snapshot(
        self, rpc: RpcClient, deployment: DeploymentT, events: pl.DataFrame, chain_id: int, block: int, timestamp: int
    ) -> Snapshot:
        """Every account's state at `block`; `events` holds the distinct `account_columns` of stored events."""


def _load(module: str) -> Adapter[Any]:
    adapter = importlib.import_module(module).ADAPTER
    if not isinstance(adapter, Adapter):
        raise TypeError(f"{module}.ADAPTER is not an Adapter")
    return adapter


def adapters() -> dict[str, Adapter[Any]]:
    """Every adapter under chainrisk.protocols (packages with an `adapter` module), by protocol name."""
    import chainrisk.protocols as package

    found: dict[str, Adapter[Any]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.ispkg and importlib.util.find_spec(f"{package.__name__}.{info.name}.adapter") is not None:
            adapter = _load(f"{package.__name__}.{info.name}.adapter")
            found[adapter.name] = adapter
    return found


def adapter_for(protocol: str) -> Adapter[Any]:
    found = adapters()
    if protocol not in found:
        raise UserError(f"unknown protocol {protocol!r}; known: {', '.join(sorted(found))}")
    return found[protocol]


def find_preset(name: str) -> Preset:
    presets = {p.name: p for a in adapters().values() for p in a.presets.values()}
    if name not in presets:
        raise UserError(f"unknown market {name!r}; known: {', '.join(sorted(presets))}")
    return presets[name]
