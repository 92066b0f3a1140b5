"""The protocol-adapter interface every lending protocol implements, and the registry that finds adapters.

An adapter turns one protocol's contracts into frames; the indexing job (chainrisk.jobs.index) does the rest
(chain checks, incremental logs with reorg repair, DuckDB writes). A protocol is a package under
`chainrisk/protocols/` whose `adapter` module exposes `ADAPTER`; nothing else needs to know it exists.

The frames an adapter returns follow the shared SQL contract:

* events: its own `events_table` (columns of its choosing, plus block_number, block_hash, log_index);
* snapshot: its raw tables, plus `positions` (one row per wallet, market and asset) and `wallet_health`
  (one row per wallet and market), whose columns are documented in the README. In `positions`, `market` is
  the risk-isolated unit (an Aave pool, one Morpho market) and `source` the contract that was indexed;
* optionally `markets` (each market described) and `data_quality` (chainrisk.protocols.quality.data_quality_frame:
  one row per market, odd contract and problem met, with what it left unknown). An odd token or oracle never stops
  a snapshot: the adapter stores what is exact, leaves NULL what it cannot know (USD, decimals, a wallet's health
  the protocol itself cannot tell: left out of `wallet_health`) and names it in `data_quality`.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import polars as pl

from chainrisk.assets import Link
from chainrisk.errors import UserError
from chainrisk.rpc import RpcClient
from chainrisk.units import GOVERNED

DeploymentT = TypeVar("DeploymentT")

#: Columns every adapter's events view (`Adapter.events_view`) carries beside its own, one row per event: what the
#: credit features read across protocols (the view `stg_lending_events` stacks them).
#: * protocol, chain_id, source (the indexed contract), market (as in `positions`), wallet, block_number, log_index;
#: * action: supply, withdraw, borrow, repay, liquidated (the wallet was), collateral_in, collateral_out, or NULL;
#: * position_key: what the action acts on within the market (Aave: the reserve; Morpho Blue: the market id);
#: * action_asset, action_amount: the token the amount counts (a liquidation: the debt repaid) and the exact amount.
LENDING_EVENT_COLUMNS = (
    "protocol",
    "chain_id",
    "source",
    "market",
    "wallet",
    "block_number",
    "log_index",
    "action",
    "position_key",
    "action_asset",
    "action_amount",
)

#: The columns every adapter's pools view has (`Adapter.pools_view`): each pool a market lends from or caps, at the
#: market's latest snapshot, so utilization and cap alerts and the Markets page read every protocol alike (the view
#: `stg_lending_pools` stacks them). Amounts are whole tokens and USD as doubles for reading; each protocol's own
#: views keep the exact integers they come from.
#: * pool: what is lent or capped (an Aave reserve's asset, a Comet collateral's asset); the market itself where the
#:   market is one pool (a Morpho Blue market, a Comet's base, a Maker ilk);
#: * pool_kind: reserve, market, base, collateral, ilk; symbol: the pool's token;
#: * supplied_tokens, debt_tokens, supplied_usd, debt_usd: what is supplied to it and borrowed from it (NULL where
#:   the pool has no such side: a Maker ilk's supply, a Comet collateral's debt);
#: * utilization_pct: debt over supply (NULL where the pool lends nothing out of a supply);
#: * supply_cap_tokens, supply_cap_used_pct, supply_room_tokens: the cap on what may be supplied, how much of it is
#:   used, and the most a supply may add now (negative: the cap is exceeded by that much);
#: * debt_cap_tokens, debt_cap_used_pct, debt_room_tokens: the cap on what may be borrowed (Aave's borrow cap, Maker's
#:   line), likewise (NULL without a cap).
POOL_COLUMNS = (
    "protocol",
    "chain_id",
    "market",
    "pool",
    "pool_kind",
    "symbol",
    "block_number",
    "supplied_tokens",
    "debt_tokens",
    "supplied_usd",
    "debt_usd",
    "utilization_pct",
    "supply_cap_tokens",
    "supply_cap_used_pct",
    "supply_room_tokens",
    "debt_cap_tokens",
    "debt_cap_used_pct",
    "debt_room_tokens",
)

#: The columns every adapter's liquidations view has (`Adapter.liquidations_view`): one row per liquidation the chain
#: logged (a Comet absorb: its AbsorbDebt and one row per AbsorbCollateral; an Aave 3.3+ liquidation that left no
#: collateral: its LiquidationCall and one row per other debt it booked as deficit), stacked by
#: `stg_lending_liquidations`:
#: * wallet: the account liquidated; liquidator: who called, or the keeper credited (where the event does not say, the
#:   adapter reads it from the transaction's receipt: `with_receipts`; NULL where neither does); keeper_pays: whether
#:   the liquidator paid the debt and received the collateral (Aave, Morpho Blue), as in LIQUIDATION_CALL_COLUMNS;
#: * debt_asset, debt_symbol, debt_repaid (exact, the token's smallest unit; NULL where the event gives no exact
#:   figure), debt_repaid_tokens: the debt the liquidation took off the account;
#: * collateral_asset, collateral_symbol, collateral_seized (exact), collateral_seized_tokens: what it took from it;
#: * bad_debt_tokens: debt written off at that liquidation, in the debt asset (Morpho Blue's badDebtAssets, Aave
#:   3.3+'s DeficitCreated in the same transaction, the debt a Comet absorb closed beyond its credit for the
#:   collateral, a Maker grab's auction shortfall once it ended; NULL where that is not known);
#: * bad_debt_known: whether bad_debt_tokens is the liquidation's final figure (NULL then meaning none: Aave without a
#:   deficit, Liquity, a Comet absorb's collateral rows), false where it is not known yet or at all (a Maker auction
#:   still running or whose end was not read; a Comet absorb whose liquidation factor changed between the snapshots
#:   around it): sums of bad debt leave those out and say how many;
#: * keeper_reward_debt, keeper_reward_collateral (exact, and _tokens): what the protocol paid the liquidator, as in
#:   LIQUIDATION_CALL_COLUMNS (a Maker bark's Kick coin; Liquity's gas compensation where the event says it: Normal
#:   Mode); NULL where it paid none in tokens or the logs do not say;
#: * protocol_fee_debt, protocol_fee_collateral (exact, and _tokens): what the protocol charged the account on top, as
#:   in LIQUIDATION_CALL_COLUMNS (Aave: the collateral aToken's Transfer from the account to a receiver other than the
#:   liquidator, logged between the transaction's previous LiquidationCall and this one, 0 where none was; Maker: the
#:   Kick's tab less the Bark's due, from the receipt).
#: What a liquidation (LIQUIDATION_COLUMNS) or a liquidation call (LIQUIDATION_CALL_COLUMNS) takes off an account and
#: from it, and the debt it leaves uncovered (the two lists below describe them).
LIQUIDATION_AMOUNT_COLUMNS = (
    "debt_asset",
    "debt_symbol",
    "debt_repaid",
    "debt_repaid_tokens",
    "collateral_asset",
    "collateral_symbol",
    "collateral_seized",
    "collateral_seized_tokens",
    "bad_debt_tokens",
    "keeper_reward_debt",
    "keeper_reward_debt_tokens",
    "keeper_reward_collateral",
    "keeper_reward_collateral_tokens",
    "protocol_fee_debt",
    "protocol_fee_debt_tokens",
    "protocol_fee_collateral",
    "protocol_fee_collateral_tokens",
)
LIQUIDATION_COLUMNS = (
    "protocol",
    "chain_id",
    "source",
    "market",
    "wallet",
    "liquidator",
    "keeper_pays",
    "block_number",
    "tx_hash",
    "log_index",
    *LIQUIDATION_AMOUNT_COLUMNS,
    "bad_debt_known",
)

#: The columns every adapter's liquidation-calls view has (`Adapter.liquidation_calls_view`): at each market's latest
#: snapshot, per account the protocol would liquidate, what the call a keeper can send now would do by the contract's
#: own rules, or why it reverts; stacked by `stg_lending_liquidation_calls`:
#: * call: the function (Aave's liquidationCall for each collateral and debt pair, Morpho's liquidate, Comet's absorb,
#:   Maker's Dog.bark, Liquity's liquidate); keeper_pays: whether the caller pays the debt and receives the collateral
#:   (Aave, Morpho Blue), paid by the protocol otherwise (absorb's points, bark's tip and chip, Liquity's gas
#:   compensation: the keeper_reward columns below);
#: * debt_asset, debt_symbol, debt_repaid (exact; NULL where the protocol gives no exact figure before the call, or
#:   the call reverts), debt_repaid_tokens: the debt it takes off the account (what the keeper pays where a keeper
#:   repays: Aave, Morpho Blue);
#: * collateral_asset, collateral_symbol, collateral_seized (exact), collateral_seized_tokens: what it takes from the
#:   account (what the keeper receives, Aave and Morpho Blue; the protocol's elsewhere). As for liquidations, a call
#:   may be several rows (a Comet absorb: its debt and each collateral);
#: * bad_debt_tokens: debt it leaves uncovered, in the debt asset (NULL where none);
#: * keeper_reward_debt (exact), keeper_reward_debt_tokens, keeper_reward_collateral (exact),
#:   keeper_reward_collateral_tokens: what the protocol pays the caller for a call where the keeper does not pay
#:   (Maker's tip + chip x tab in dai, Liquity's gas compensation in LUSD and ETH), in the debt and the collateral
#:   asset; NULL where it pays none in tokens (Aave and Morpho Blue: the keeper's gain is the collateral over the
#:   debt; Comet's absorb earns points) or the figure is unknown;
#: * protocol_fee_debt (exact), protocol_fee_debt_tokens, protocol_fee_collateral (exact),
#:   protocol_fee_collateral_tokens: what the protocol charges the account on top of the debt the call repays, in the
#:   debt and the collateral asset: Maker's liquidation penalty, the tab its auction must raise over the due (due x
#:   chop: dss src/dog.sol `bark`), the Vow's once the auction raises it; Aave's liquidation protocol fee, collateral
#:   its treasury takes on top of what the keeper receives, a share of the bonus (aave-v3-origin
#:   src/contracts/protocol/libraries/logic/LiquidationLogic.sol); 0 where the protocol charges none in that asset
#:   (Morpho Blue, Liquity V1); NULL for Comet (its absorb takes all of the collateral and credits the account its
#:   liquidationFactor share of the value: what the protocol keeps beyond that is value, not a fee in tokens), where
#:   the call reverts, or where the figure is unknown;
#: * health_factor: the account's, as the protocol computes it; blocked: why the call reverts now (the contract's
#:   error or the reason it names), NULL when it goes through.
LIQUIDATION_CALL_COLUMNS = (
    "protocol",
    "chain_id",
    "source",
    "market",
    "wallet",
    "block_number",
    "call",
    "keeper_pays",
    *LIQUIDATION_AMOUNT_COLUMNS,
    "health_factor",
    "blocked",
)

#: The columns every adapter's parameter-changes view has (`Adapter.parameter_changes_view`): each governed setting a
#: snapshot read with a value the item's previous version did not hold (its raw versions in history.raw_*: governance
#: changes, read at the first snapshot after them), stacked by `stg_lending_parameter_changes`. A value read on one
#: side only (NULL on the other: a column a newer chainrisk added to the raw table, a getter that failed) is no change:
#: * source: the indexed contract (snapshot_blocks' source); market: the market as positions name it;
#: * item_kind, item, symbol: what the setting belongs to ('reserve' and its asset, 'e-mode category' and its id,
#:   'collateral' and its asset, 'comet' and the Comet, 'ilk' and its name, 'market' and a Morpho market's id) and its
#:   token or name;
#: * change: 'changed' (parameter, old and new value), 'listed' (an item first read after the source's first snapshot:
#:   a reserve initialised, a collateral added, an ilk, a market created; parameter NULL), 'gone' (an item a snapshot
#:   no longer read: a reserve dropped; parameter NULL);
#: * parameter: the setting, named as its raw column; unit: what old_amount and new_amount are in ('percent',
#:   'percent a year', 'tokens', 'dai', 'usd', 'seconds', 'unix time'; NULL where the value is not an amount: an
#:   address, a flag, an id, a label);
#: * old_value, new_value: exact, as text (integers in the contract's own units, true/false, addresses);
#:   old_amount, new_amount: the same in `unit`, as doubles for reading;
#: * block_number: the snapshot that first read the new value (or the item, or found it gone): the change happened
#:   after the source's snapshot before it (stg_snapshot_blocks.previous_block) and at or before this block.
#: The views are generated from each adapter's `settings` (chainrisk.store.views), one definition of what a change is.
PARAMETER_CHANGE_COLUMNS = (
    "protocol",
    "chain_id",
    "source",
    "market",
    "item_kind",
    "item",
    "symbol",
    "change",
    "parameter",
    "unit",
    "old_value",
    "new_value",
    "old_amount",
    "new_amount",
    "block_number",
)

#: The columns every adapter's governance-events view has (`Adapter.governance_events_view`): each log in which the
#: chain itself says governance changed a setting or listed an item, so mart_parameter_changes can name the block and
#: transaction of a change its snapshots bracket:
#: * source, item: the indexed contract and the item (as PARAMETER_CHANGE_COLUMNS name them); item NULL: every item
#:   of the source (a Comet's upgrade);
#: * change, parameter: 'changed' and the setting's raw column, or 'listed' (parameter NULL); both NULL: any change
#:   (an upgrade, at which every setting of its proposal takes effect), which yields to a log naming the change
#:   between the same snapshots (a pause's own log);
#: * block_number, tx_hash, log_index: where the log is.
GOVERNANCE_EVENT_COLUMNS = (
    "protocol",
    "chain_id",
    "source",
    "item",
    "change",
    "parameter",
    "block_number",
    "tx_hash",
    "log_index",
)

#: Where a market's bad debt (debt its collateral cannot cover after liquidation) lands, by rule name: what the
#: contagion rounds do with it (chainrisk.chains.contagion).
BAD_DEBT_RULES = {
    "suppliers": "socialised at once: the market's suppliers lose it pro rata (Morpho Blue `liquidate`)",
    "reserves": "the protocol's reserves absorb it first, suppliers only what exceeds them (Compound V3 `absorb`)",
    "unbacked": "stays as debt no collateral backs; suppliers keep their claims (Aave V3.0-3.2)",
    "deficit": "burned into the reserve's deficit, covered by governance later (Aave V3.3+)",
    "redistribution": "moved onto the other positions of the market, pro rata (Liquity V1 beyond the Stability Pool)",
    "surplus": "the system surplus absorbs it, then new governance tokens (Maker/Sky)",
}

#: How the health factor of a wallet in a market combines its collateral (the `health_rule` column):
#: * average-threshold: Aave V3 before 3.5, GenericLogic: HF = percentMul(sum value, floor(sum value*LT / sum value))
#:   / debt;
#: * weighted-threshold: Aave V3.5+, GenericLogic: HF = sum(value * LT_bps) / 1e4 / debt (no floored average);
#: * per-position: Morpho Blue / Compound V3 / Maker: HF = sum floor(value * LT_wad / 1e18) / debt;
#: * collateral-ratio: Liquity V1: `liquidation_threshold_wad` is the ratio R the collateral must reach over the debt
#:   (MCR): HF = sum floor(value * 1e18 / R) / debt, below 1 exactly when value * 1e18 < R * debt.
HEALTH_RULES = ("average-threshold", "weighted-threshold", "per-position", "collateral-ratio")


@dataclass(frozen=True)
class Setting:
    """A governed setting an adapter's raw table holds: one of its columns, and how to read it as an amount."""

    column: str  #: the raw column (also the parameter's name in PARAMETER_CHANGE_COLUMNS)
    unit: str | None = (
        None  #: what the amount is in ('percent', 'tokens', ...); None: not an amount (an address, a flag)
    )
    #: SQL over the raw row: the decimal places between the stored integer and its amount in `unit` ('2' takes bps to
    #: percent, '16' a wad to percent, 'decimals' token units to tokens); the amount is the integer's digits with the
    #: point moved, read as the nearest double (a rad's 48 digits too)
    places: str = "0"
    #: SQL over the raw row giving the amount outright where moving the point does not (a per-second rate's yearly
    #: percent); None: `places`
    amount: str | None = None


@dataclass(frozen=True)
class SettingsTable:
    """One of an adapter's raw snapshot tables that holds governed settings: its versions (history.<table>) are
    compared one after the other for `parameter_changes_view` (PARAMETER_CHANGE_COLUMNS)."""

    table: str  #: the raw table
    item_kind: str  #: what one of its keys is ('reserve', 'collateral', 'ilk', ...)
    item: str  #: SQL: the item's id within its source, one per key (the asset, an ilk's name, a category id as text)
    symbol: str  #: SQL: the item's token symbol or name
    settings: tuple[Setting, ...]
    market: str = "market"  #: SQL: the market as positions name it (the raw `market` is the indexed source)


@dataclass(frozen=True)
class Preset:
    name: str  #: what `--market` takes
    protocol: str  #: adapter name
    chain_id: int  #: chain the contract lives on
    address: str  #: the contract to index, lowercase hex
    from_block: int | None  #: a block at or before its deployment (None: the index finds it on chain)
    options: tuple[tuple[str, str], ...] = ()  #: adapter options (e.g. a USD oracle), as (key, value)


@dataclass(frozen=True)
class LogQuery:
    addresses: list[str]  #: contracts whose logs to read
    topics: list[list[str]]  #: eth_getLogs topic filter


@dataclass(frozen=True)
class Snapshot:
    #: table -> rows at the pinned block (raw tables, positions, wallet_health; optionally markets, data_quality)
    frames: dict[str, pl.DataFrame]
    accounts: int  #: accounts read
    accounts_with_debt: int  #: of which with debt


@dataclass(frozen=True)
class Previous:
    """The market's last stored snapshot, for an adapter that rereads only the accounts events touched since."""

    block: int  #: its block
    raw: dict[str, pl.DataFrame]  #: the adapter's `previous_tables` rows as that snapshot wrote them
    events_since: pl.DataFrame  #: distinct `account_columns` of the events stored after `block`


class Adapter(ABC, Generic[DeploymentT]):
    """One lending protocol. Stateless: every call gets what it needs."""

    name: ClassVar[str]  #: protocol name in every table ("aave-v3", "morpho-blue")
    label: ClassVar[str]  #: its name for people ("Aave V3")
    address_role: ClassVar[str]  #: what `--address` names, for messages ("PoolAddressesProvider")
    events_table: ClassVar[str]  #: raw events table
    ddl: ClassVar[str]  #: CREATE TABLE IF NOT EXISTS statements for the adapter's raw tables
    presets: ClassVar[dict[str, Preset]]  #: named mainnet deployments
    option_names: ClassVar[tuple[str, ...]] = ()  #: options the adapter accepts
    #: Options whose values are not contract addresses (a file, a list): `discover` checks them. The job checks
    #: every other option as an address before calling the adapter.
    text_options: ClassVar[tuple[str, ...]] = ()
    #: Columns of `events_table` that `snapshot` needs back to find accounts (read DISTINCT).
    account_columns: ClassVar[tuple[str, ...]]
    #: Where its markets' bad debt lands (a key of BAD_DEBT_RULES); a market's row in `markets` may say otherwise.
    bad_debt: ClassVar[str]
    #: Its stg_ view of `events_table` (a file in `queries_dir`) with LENDING_EVENT_COLUMNS; None when it has none.
    events_view: ClassVar[str | None] = None
    #: Its stg_ view of the pools its markets lend from or cap (a file in `queries_dir`) with POOL_COLUMNS, one row per
    #: pool at the market's latest snapshot; None when it has none.
    pools_view: ClassVar[str | None] = None
    #: Its stg_ view of the liquidations its events log (a file in `queries_dir`) with LIQUIDATION_COLUMNS; None when
    #: it has none.
    liquidations_view: ClassVar[str | None] = None
    #: Its stg_ view of the liquidation calls a keeper can send at the latest snapshot (a file in `queries_dir`) with
    #: LIQUIDATION_CALL_COLUMNS; None when it has none.
    liquidation_calls_view: ClassVar[str | None] = None
    #: Its stg_ view of the governed settings its raw versions saw change, with PARAMETER_CHANGE_COLUMNS: generated
    #: from `settings` (chainrisk.store.views); None when it has none (Liquity V1's are constants).
    parameter_changes_view: ClassVar[str | None] = None
    #: Its stg_ view of the logs naming a governance change (a file in `queries_dir`) with GOVERNANCE_EVENT_COLUMNS;
    #: None when its governance logs nothing it indexes.
    governance_events_view: ClassVar[str | None] = None
    #: The raw tables holding its governed settings, and which columns those are.
    settings: ClassVar[tuple[SettingsTable, ...]] = ()
    #: Raw tables whose last rows `snapshot_since` takes back (Previous.raw); none: it is never given a Previous.
    previous_tables: ClassVar[tuple[str, ...]] = ()
    #: Columns of `events_table` whose values name further contracts to read the logs of (Maker: each Bark's Clipper
    #: and its ilk): the job hands their distinct values, stored and then each range's, to `follow`. None: nothing.
    follow_columns: ClassVar[tuple[str, ...]] = ()
    #: What may change of a collateral's threshold, LTV and bonus (what parameter advice may propose): GOVERNED,
    #: PER_MARKET (the bonus derived from the threshold: `bonus_of_threshold`) or IMMUTABLE (chainrisk.units).
    parameter_changes: ClassVar[str] = GOVERNED
    #: Whether governance can cap a collateral's supply (Aave's supply cap, Comet's supplyCap).
    collateral_cap: ClassVar[bool] = True
    #: Whether a collateral's LTV must stay strictly under its threshold (Comet's BorrowCFTooLarge).
    ltv_below_threshold: ClassVar[bool] = False
    #: Whether the bonus is a penalty the protocol keeps, not a liquidator's incentive (Maker's chop goes to the Vow;
    #: an auction's falling price pays keepers): a liquidation then recovers the whole value towards the debt.
    bonus_is_penalty: ClassVar[bool] = False
    #: Whether governance may not set a threshold whose product with the bonus exceeds 100 % (Aave's
    #: PoolConfigurator.configureReserveAsCollateral: percentMul(LT, bonus) <= 100 %). Comet's Configurator asks only
    #: liquidateCollateralFactor <= 1 (CometCore.MAX_COLLATERAL_FACTOR), whatever the liquidationFactor.
    threshold_within_bonus: ClassVar[bool] = True
    #: Columns of raw snapshot tables that the snapshot works out for its block's time from the stored state (interest
    #: accrued to the block: Aave's normalized income, Comet's accrued indices, Jug.drip's rate). They move every
    #: block without a transaction; a version of the state carries them on while `accrue`, run on it for the new
    #: block, gives exactly what the snapshot read (chainrisk.store.db: `_carry_accrued`, `raw_as_of`).
    accrued_columns: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: Raw tables holding what the snapshot predicts from the state (what a liquidation would do now), not state:
    #: each source's latest snapshot only, without versions.
    latest_only_tables: ClassVar[tuple[str, ...]] = ()

    def tables(self) -> list[str]:
        """Every table `ddl` creates, in its order (the events table among them)."""
        return re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", self.ddl)

    def bonus_of_threshold(self, threshold_bps: int) -> int:
        """The liquidation bonus (bps; 10,000 is none) the protocol gives a market of this threshold, where it derives
        one from the other ("per-market" protocols only)."""
        raise NotImplementedError(f"{self.label} sets its bonus apart from its threshold")

    def queries_dir(self) -> Path:
        """The adapter's own analysts' views (stg_<protocol>_*.sql): the `queries` folder of its package."""
        return Path(str(sys.modules[type(self).__module__].__file__)).parent / "queries"

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

    def follow(self, deployment: DeploymentT, named: pl.DataFrame) -> DeploymentT:
        """`deployment` with the contracts `named` (distinct `follow_columns` of events, none NULL) names, whose logs
        `log_query` then asks for too, and whose state the snapshot reads: a contract the protocol no longer names but
        whose events still matter (a Clipper governance replaced while its auctions run). The default adds nothing."""
        return deployment

    def receipts_wanted(self, deployment: DeploymentT, events: pl.DataFrame) -> list[str]:
        """Transactions of `events` (an `events_frame`) whose receipts say what their own logs do not: a liquidation
        whose event names no liquidator (Maker's Bark, Liquity's TroveLiquidated) while another contract's log in
        the same transaction does. None by default."""
        return []

    def with_receipts(
        self, deployment: DeploymentT, events: pl.DataFrame, receipts: Mapping[str, dict[str, Any]]
    ) -> pl.DataFrame:
        """`events` completed from the receipts of `receipts_wanted` (by transaction hash; a receipt the node did
        not give, or one of another block than the event's, is missing and leaves the event as it was)."""
        return events

    @abstractmethod
    def snapshot(
        self, rpc: RpcClient, deployment: DeploymentT, events: pl.DataFrame, chain_id: int, block: int, timestamp: int
    ) -> Snapshot:
        """Every account's state at `block`; `events` holds the distinct `account_columns` of stored events."""

    def snapshot_since(
        self,
        rpc: RpcClient,
        deployment: DeploymentT,
        events: pl.DataFrame,
        chain_id: int,
        block: int,
        timestamp: int,
        previous: Previous | None,
    ) -> Snapshot:
        """`snapshot`, equal to it, given the market's last stored snapshot (`previous`, None when there is none or
        it cannot be trusted, e.g. after a reorg): an adapter may reuse the raw state of accounts no event touched
        since. The default reads everything."""
        return self.snapshot(rpc, deployment, events, chain_id, block, timestamp)

    def wrapper_probes(self, assets: list[str], block: int) -> list[tuple[str, list[Any]]]:
        """The calls that tell the protocol's own wrapper tokens among `assets` (`wrapper_links` reads their answers),
        sent by the asset graph with every other probe of its round in one round trip (batch_each); none by default."""
        return []

    def wrapper_links(
        self, rpc: RpcClient, chain_id: int, assets: list[str], block: int, probed: Sequence[Any] | None = None
    ) -> dict[str, Link]:
        """The protocol's own wrapper tokens among `assets` (claims on another asset, such as Aave's aTokens), as
        links of the asset graph read at `block`; the token standards (ERC-4626, LSTs) are probed apart. `probed`:
        the answers to `wrapper_probes(assets, block)`, where the caller sent them (None: asked here)."""
        return {}

    def accrue(
        self, table: str, rows: pl.DataFrame, timestamp: int, related: Callable[[str], pl.DataFrame]
    ) -> list[dict[str, Any]]:
        """For each of `rows` (raw table `table`'s rows, the state as stored), the values of its `accrued_columns` at
        block timestamp `timestamp`, as the snapshot would read them; `related(name)` gives another raw table of the
        same snapshot (its accrued columns at `timestamp`). Only called for tables in `accrued_columns`."""
        raise NotImplementedError(f"{self.label} declares no accrued columns")

    def rebuild_positions(
        self, raw: dict[str, pl.DataFrame], chain_id: int, source: str, block: int, timestamp: int
    ) -> pl.DataFrame | None:
        """The `positions` rows the snapshot at `block` wrote, rebuilt from its raw tables' rows as that snapshot
        stored them (`raw`: table name -> rows); None when the adapter cannot rebuild them."""
        return None


class IncrementalAdapter(Adapter[DeploymentT]):
    """An adapter whose snapshot can reuse the previous one's raw state (its `previous_tables`): it implements
    snapshot_since, and a snapshot with no previous one is snapshot_since given none."""

    def snapshot(
        self, rpc: RpcClient, deployment: DeploymentT, events: pl.DataFrame, chain_id: int, block: int, timestamp: int
    ) -> Snapshot:
        return self.snapshot_since(rpc, deployment, events, chain_id, block, timestamp, None)

    @abstractmethod
    def snapshot_since(
        self,
        rpc: RpcClient,
        deployment: DeploymentT,
        events: pl.DataFrame,
        chain_id: int,
        block: int,
        timestamp: int,
        previous: Previous | None,
    ) -> Snapshot:
        """See Adapter.snapshot_since."""


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


def all_presets() -> dict[str, Preset]:
    """Every adapter's named deployments, by name."""
    return dict(sorted((p.name, p) for a in adapters().values() for p in a.presets.values()))


def find_preset(name: str) -> Preset:
    presets = all_presets()
    if name not in presets:
        close = difflib.get_close_matches(name, list(presets), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UserError(f"unknown market {name!r}; {hint}`chainrisk presets` lists all {len(presets)} known ones")
    return presets[name]
