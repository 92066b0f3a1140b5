"""Aave V3 (and forks: Spark) as a protocol adapter: the PoolAddressesProvider names the pool, its events and
token transfers reveal accounts, the accounts lens reads them at the pinned block. Raw tables:
raw_aave_v3_events, raw_aave_v3_reserves, raw_aave_v3_emode_categories, raw_aave_v3_accounts,
raw_aave_v3_balances."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from chainrisk.abi import eth_call, load_abi
from chainrisk.assets import Link
from chainrisk.protocols.aave_v3 import accrual, normalise, quality, rebuild
from chainrisk.protocols.aave_v3.account_book import AccountBook
from chainrisk.protocols.aave_v3.account_table import account_table
from chainrisk.protocols.aave_v3.constants import PRESETS, WAD
from chainrisk.protocols.aave_v3.events import (
    GOVERNANCE_TOPICS,
    POOL_TOPICS,
    TRANSFER_TOPIC,
    AaveEvent,
    decode_log,
    token_kinds,
)
from chainrisk.protocols.aave_v3.liquidations import liquidation_pairs, pairs_frame, wallet_status, with_status
from chainrisk.protocols.aave_v3.reserve import Reserve
from chainrisk.protocols.aave_v3.sentinel import liquidations_allowed
from chainrisk.protocols.aave_v3.snapshot import (
    Deployment,
    discover_listed,
    emode_categories_and,
    read_accounts,
    read_reserves,
)
from chainrisk.protocols.aave_v3.version import PoolVersion
from chainrisk.protocols.aave_v3.wrappers import atoken_links, atoken_probe_calls
from chainrisk.protocols.adapter import IncrementalAdapter, LogQuery, Preset, Previous, Setting, SettingsTable, Snapshot
from chainrisk.protocols.frames import markets_frame
from chainrisk.protocols.quality import data_quality_frame
from chainrisk.rpc import RpcClient

PROVIDER = load_abi("aave-v3", "IPoolAddressesProvider")
ZERO = "0x" + "0" * 40

DDL = """
CREATE TABLE IF NOT EXISTS raw_aave_v3_events (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash VARCHAR NOT NULL,
    tx_hash VARCHAR NOT NULL,
    log_index INTEGER NOT NULL,
    contract VARCHAR NOT NULL,
    event VARCHAR NOT NULL,
    reserve VARCHAR,
    wallet VARCHAR NOT NULL,
    counterparty VARCHAR,
    amount HUGEINT,
    amount2 HUGEINT,
    debt_asset VARCHAR,
    code INTEGER,
    flag BOOLEAN,
    PRIMARY KEY (chain_id, market, block_number, log_index)
);

CREATE TABLE IF NOT EXISTS raw_aave_v3_reserves (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    asset VARCHAR NOT NULL,
    symbol VARCHAR,
    reserve_id INTEGER NOT NULL,
    configuration VARCHAR NOT NULL,
    ltv INTEGER, liquidation_threshold INTEGER, liquidation_bonus INTEGER, decimals INTEGER,
    active BOOLEAN, frozen BOOLEAN, paused BOOLEAN, borrowing_enabled BOOLEAN, stable_borrowing_enabled BOOLEAN,
    borrowable_in_isolation BOOLEAN, siloed_borrowing BOOLEAN, flashloan_enabled BOOLEAN,
    reserve_factor INTEGER, borrow_cap BIGINT, supply_cap BIGINT, liquidation_protocol_fee INTEGER,
    emode_category INTEGER, unbacked_mint_cap BIGINT, debt_ceiling BIGINT,
    a_token VARCHAR, variable_debt_token VARCHAR, stable_debt_token VARCHAR,
    liquidity_index HUGEINT, variable_borrow_index HUGEINT, liquidity_rate HUGEINT, variable_borrow_rate HUGEINT,
    last_update_timestamp BIGINT, normalized_income HUGEINT, normalized_variable_debt HUGEINT,
    price HUGEINT, price_usd DOUBLE, isolation_mode_total_debt HUGEINT,
    PRIMARY KEY (chain_id, market, block_number, asset)
);

CREATE TABLE IF NOT EXISTS raw_aave_v3_emode_categories (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    category_id INTEGER NOT NULL,
    ltv INTEGER, liquidation_threshold INTEGER, liquidation_bonus INTEGER,
    price_source VARCHAR, label VARCHAR, price_source_price HUGEINT,
    PRIMARY KEY (chain_id, market, block_number, category_id)
);

CREATE TABLE IF NOT EXISTS raw_aave_v3_accounts (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    user_configuration VARCHAR NOT NULL,
    emode_category INTEGER NOT NULL,
    PRIMARY KEY (chain_id, market, block_number, wallet)
);

CREATE TABLE IF NOT EXISTS raw_aave_v3_liquidations (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    collateral_asset VARCHAR NOT NULL,
    debt_asset VARCHAR NOT NULL,
    health_factor_wad HUGEINT,
    -- why liquidationCall(collateral, debt, wallet, max) reverts (Errors name), NULL when it goes through
    error VARCHAR,
    max_liquidatable_debt HUGEINT, debt_repaid HUGEINT, collateral_seized HUGEINT, protocol_fee HUGEINT,
    deficit_created HUGEINT,
    -- the largest debtToCover that goes through (the max call's repay, or below it when the max leaves dust)
    allowed_debt_to_cover HUGEINT,
    grace_until BIGINT,
    PRIMARY KEY (chain_id, market, block_number, wallet, collateral_asset, debt_asset)
);

CREATE TABLE IF NOT EXISTS raw_aave_v3_balances (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    asset VARCHAR NOT NULL,
    scaled_a_token HUGEINT NOT NULL,
    scaled_variable_debt HUGEINT NOT NULL,
    stable_debt HUGEINT NOT NULL,
    PRIMARY KEY (chain_id, market, block_number, wallet, asset)
);

-- Columns added with Aave 3.1-3.7 reading, as ALTERs so that a file made before them gains them on open (the DDL
-- runs whole on every index); NULL where the pool's version has no such thing.
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS pool_version VARCHAR;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS pool_revision BIGINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS virtual_accounting BOOLEAN;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS liquidation_grace_period_until BIGINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS deficit HUGEINT;
-- The reserve's supplies as its tokens store them, and its totals at the row's block (token units; the totals are
-- accrued columns: chainrisk.protocols.aave_v3.accrual); NULL in rows written before them
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS a_token_scaled_total_supply HUGEINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS variable_debt_scaled_total_supply HUGEINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS accrued_to_treasury HUGEINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS stable_debt_principal HUGEINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS stable_debt_avg_rate HUGEINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS stable_debt_last_update BIGINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS total_supplied HUGEINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS total_variable_debt HUGEINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS total_stable_debt HUGEINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS supply_cap_used HUGEINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS supply_cap_headroom HUGEINT;
-- What governance sets beside the configuration: the oracle's source, the interest rate strategy and its curve (ray)
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS price_source VARCHAR;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS interest_rate_strategy VARCHAR;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS optimal_usage_ratio HUGEINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS base_variable_borrow_rate HUGEINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS variable_rate_slope1 HUGEINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS variable_rate_slope2 HUGEINT;
ALTER TABLE raw_aave_v3_emode_categories ADD COLUMN IF NOT EXISTS collateral_bitmap VARCHAR;
ALTER TABLE raw_aave_v3_emode_categories ADD COLUMN IF NOT EXISTS borrowable_bitmap VARCHAR;
ALTER TABLE raw_aave_v3_emode_categories ADD COLUMN IF NOT EXISTS ltvzero_bitmap VARCHAR;
ALTER TABLE raw_aave_v3_emode_categories ADD COLUMN IF NOT EXISTS isolated BOOLEAN;
"""


def _provider_calls(provider: str, block: int, sentinel: bool) -> list[tuple[str, list[Any]]]:
    """The provider's getters `_provider_reads` reads: getMarketId, and getPriceOracleSentinel for a version with a
    PriceOracleSentinel (`sentinel`); asked by the caller with other calls (batch_each)."""
    calls = [eth_call(provider, PROVIDER, "getMarketId", block=hex(block))]
    if sentinel:
        calls.append(eth_call(provider, PROVIDER, "getPriceOracleSentinel", block=hex(block)))
    return calls


def _provider_reads(
    rpc: RpcClient, provider: str, block: int, sentinel: bool, answers: list[Any]
) -> tuple[str | None, bool]:
    """The provider's own name for its market (_market_name) and, for a version with a PriceOracleSentinel
    (`sentinel`), whether it lets liquidations through (else True), from the answers to `_provider_calls`."""
    allowed = not sentinel or liquidations_allowed(rpc, provider, block, answered=answers[1])
    return _market_name(answers[0]), allowed


def _market_name(raw: str | None) -> str | None:
    """The provider's own name for its market (its answer to `getMarketId`, e.g. "Aave Ethereum Market"); None when it
    has none."""
    if raw in (None, "0x"):
        return None
    try:
        name = str(PROVIDER.decode("getMarketId", raw)[0]).strip()
    except (ValueError, TypeError, OverflowError):
        return None
    return name or None


#: The settings the pool's configurator governs, as the raw tables store them (aave-v3-origin
#: src/contracts/protocol/libraries/configuration/ReserveConfiguration.sol names each field of the bitmap; caps in
#: whole tokens, the debt ceiling in cents), the oracle's source of each asset (AaveOracle.getSourceOfAsset), and its
#: interest rate strategy with the strategy's curve for it (ray: DefaultReserveInterestRateStrategyV2's
#: getInterestRateData, 3.0's immutable getters): their changes, stg_aave_v3_parameter_changes.
_BPS = ("percent", "2")
_RAY_PERCENT = "25"
SETTINGS = (
    SettingsTable(
        "raw_aave_v3_reserves",
        "reserve",
        "asset",
        "symbol",
        (
            *(
                Setting(column, *_BPS)
                for column in (
                    "ltv",
                    "liquidation_threshold",
                    "liquidation_bonus",
                    "reserve_factor",
                    "liquidation_protocol_fee",
                )
            ),
            *(Setting(column, "tokens") for column in ("borrow_cap", "supply_cap", "unbacked_mint_cap")),
            Setting("debt_ceiling", "usd", "2"),
            Setting("liquidation_grace_period_until", "unix time"),
            Setting("emode_category"),
            Setting("price_source"),
            Setting("interest_rate_strategy"),
            Setting("optimal_usage_ratio", "percent", _RAY_PERCENT),
            *(
                Setting(column, "percent a year", _RAY_PERCENT)
                for column in ("base_variable_borrow_rate", "variable_rate_slope1", "variable_rate_slope2")
            ),
            *(
                Setting(flag)
                for flag in (
                    "active",
                    "frozen",
                    "paused",
                    "borrowing_enabled",
                    "stable_borrowing_enabled",
                    "borrowable_in_isolation",
                    "siloed_borrowing",
                    "flashloan_enabled",
                )
            ),
        ),
    ),
    SettingsTable(
        "raw_aave_v3_emode_categories",
        "e-mode category",
        "category_id::VARCHAR",
        "label",
        (
            *(Setting(column, *_BPS) for column in ("ltv", "liquidation_threshold", "liquidation_bonus")),
            Setting("price_source"),
            Setting("label"),
        ),
    ),
)


@dataclass(frozen=True)
class AaveMarket:
    deployment: Deployment  #: what the provider names
    reserves: list[Reserve]  #: reserves listed at the pinned block
    kinds: dict[str, tuple[str, str]]  #: token address -> (transfer event name, underlying)

    @property
    def governors(self) -> tuple[str, ...]:
        """The contracts whose logs say governance changed a setting: the PoolConfigurator and the AaveOracle."""
        market = self.deployment
        return tuple(a for a in (market.configurator, market.oracle) if a is not None)


class AaveV3Adapter(IncrementalAdapter[AaveMarket]):
    name = "aave-v3"
    label = "Aave V3"
    bad_debt = "unbacked"
    address_role = "PoolAddressesProvider"
    events_table = "raw_aave_v3_events"
    ddl = DDL
    presets: ClassVar[dict[str, Preset]] = {
        p.name: Preset(p.name, "aave-v3", p.chain_id, p.pool_addresses_provider, p.from_block) for p in PRESETS.values()
    }
    account_columns = ("event", "reserve", "wallet", "counterparty")
    events_view = "stg_aave_v3_events"
    pools_view = "stg_aave_v3_pools"
    liquidations_view = "stg_aave_v3_liquidations"
    liquidation_calls_view = "stg_aave_v3_liquidation_calls"
    parameter_changes_view = "stg_aave_v3_parameter_changes"
    governance_events_view = "stg_aave_v3_governance_events"
    settings = SETTINGS
    previous_tables = ("raw_aave_v3_reserves", "raw_aave_v3_accounts", "raw_aave_v3_balances")
    accrued_columns = accrual.ACCRUED_COLUMNS
    latest_only_tables = ("raw_aave_v3_liquidations",)

    def accrue(
        self, table: str, rows: pl.DataFrame, timestamp: int, related: Callable[[str], pl.DataFrame]
    ) -> list[dict[str, Any]]:
        return accrual.accrue(table, rows, timestamp)

    def discover(self, rpc: RpcClient, address: str, block: int, options: dict[str, str]) -> AaveMarket:
        deployment, listed = discover_listed(rpc, address, block)
        reserves = read_reserves(rpc, deployment, block, listed)
        return AaveMarket(deployment, reserves, token_kinds(reserves))

    def log_query(self, deployment: AaveMarket) -> LogQuery:
        return LogQuery(
            [deployment.deployment.pool, *deployment.kinds, *deployment.governors],
            [[*POOL_TOPICS, TRANSFER_TOPIC, *GOVERNANCE_TOPICS]],
        )

    def events_frame(self, deployment: AaveMarket, logs: list[dict[str, Any]]) -> pl.DataFrame:
        governors = set(deployment.governors)
        events: list[AaveEvent] = [e for e in (decode_log(log, deployment.kinds, governors) for log in logs) if e]
        return normalise.events_frame(events)

    def snapshot_since(
        self,
        rpc: RpcClient,
        deployment: AaveMarket,
        events: pl.DataFrame,
        chain_id: int,
        block: int,
        timestamp: int,
        previous: Previous | None,
    ) -> Snapshot:
        """Every account at `block`; with `previous`, the accounts no event touched since it are taken from its raw
        rows instead of read again (see _unchanged_accounts), and the figures are computed afresh for all."""
        callers = events.filter(pl.col("event").is_in(normalise.CALLER_EVENTS) & pl.col("counterparty").is_not_null())
        found = pl.concat([events.get_column("wallet"), callers.get_column("counterparty")]).drop_nulls().unique()
        wallets = found.filter((found != "") & (found != ZERO)).sort()
        market = deployment.deployment
        reserves = deployment.reserves
        # The provider's getters ride in the categories' first round trip.
        sentinel = market.version.has_price_oracle_sentinel
        categories, provider_answers = emode_categories_and(
            rpc,
            market,
            {r.config.emode_category for r in reserves},
            block,
            _provider_calls(market.provider, block, sentinel),
        )
        known = _unchanged_accounts(previous, market.version, reserves) if previous is not None else None
        if known is not None:
            known = known.only(wallets)
            wanted = wallets.filter(~wallets.is_in(known.wallets.implode()))
        else:
            wanted = wallets
        # Reserves whose aTokens a wallet received: read even when not enabled as collateral (for the wallets read).
        reserve_ids = {r.asset: r.reserve_id for r in deployment.reserves}
        masks: dict[str, int] = {}
        held = events.filter(
            (pl.col("event") == "ATokenTransfer")
            & pl.col("reserve").is_in(list(reserve_ids))
            & pl.col("wallet").is_in(wanted.implode())
        )
        for wallet, reserve in held.select("wallet", "reserve").unique().iter_rows():
            masks[wallet] = masks.get(wallet, 0) | (1 << reserve_ids[reserve])
        read = read_accounts(rpc, market, reserves, wanted.to_list(), masks, block)
        book = AccountBook.of(read) if known is None else AccountBook.joined(known, AccountBook.of(read))
        version = market.version
        state = normalise.market_state(reserves, categories, version, timestamp)
        table = account_table(book, state)
        source = market.provider
        positions, health = normalise.contract_frames(
            book, table, chain_id, source, block, timestamp, market.base_currency_unit
        )
        positions, health = quality.without_unknowns(positions, health, table, book.wallets, reserves)
        # What a keeper's liquidationCall would do now to each borrower under health 1 (an L2 sentinel has a say
        # before 3.7, which removed it);
        # not for a wallet using a reserve without a price: the pool's own call reverts (or divides by zero).
        unpriced = quality.unpriced_wallets(table, book.wallets, reserves) | quality.zero_priced_wallets(
            table, book.wallets, reserves
        )
        unpriced |= set(book.wallets.filter(pl.Series(table.oversized_accounts)).to_list())
        under = np.flatnonzero(table.health_factor < WAD).tolist()
        rated = [(a, table.health_factor[i]) for i in under if (a := book.account(i)).wallet not in unpriced]
        name, allowed = _provider_reads(rpc, source, block, sentinel, provider_answers)
        pairs = liquidation_pairs(state, [a for a, _ in rated], [h for _, h in rated], allowed)
        health = with_status(health, wallet_status(state, pairs))
        stored = normalise.storable(book)
        frames = {
            "raw_aave_v3_reserves": normalise.reserves_frame(
                reserves, chain_id, source, block, market.base_currency_unit, version, market.pool_revision, timestamp
            ),
            "raw_aave_v3_emode_categories": normalise.emode_frame(categories, chain_id, source, block, version),
            "raw_aave_v3_accounts": normalise.accounts_frame(stored, chain_id, source, block),
            "raw_aave_v3_balances": normalise.balances_frame(stored, reserves, chain_id, source, block),
            "raw_aave_v3_liquidations": pairs_frame(state, pairs, chain_id, source, block),
            "positions": positions,
            "wallet_health": health,
            "markets": markets_frame(
                [{"market": source, "name": name, "bad_debt_rule": self.bad_debt}],
                self.name,
                chain_id,
                source,
                block,
                timestamp,
            ),
            "data_quality": data_quality_frame(
                [*quality.issues(reserves, source), *quality.oversized_issues(table, source)],
                self.name,
                chain_id,
                source,
                block,
            ),
        }
        return Snapshot(frames, len(book), int((table.total_debt_base != 0).sum()))

    def wrapper_probes(self, assets: list[str], block: int) -> list[tuple[str, list[Any]]]:
        return atoken_probe_calls(assets, block)

    def wrapper_links(
        self, rpc: RpcClient, chain_id: int, assets: list[str], block: int, probed: Sequence[Any] | None = None
    ) -> dict[str, Link]:
        return atoken_links(rpc, assets, block, probed)

    def rebuild_positions(
        self, raw: dict[str, pl.DataFrame], chain_id: int, source: str, block: int, timestamp: int
    ) -> pl.DataFrame:
        return rebuild.rebuild_positions(raw, chain_id, source, block, timestamp)


def _unchanged_accounts(previous: Previous, version: PoolVersion, reserves: list[Reserve]) -> AccountBook | None:
    """The accounts of the previous snapshot whose raw state (configuration, e-mode, scaled balances) is still the
    chain's, as a book: None when the pool's reserve list, tokens or version changed since, or a reserve's deficit
    shrank; else every account no event since names (as account, caller or transfer counterparty), save those with
    stable debt before 3.2 (balanceOf accrues it, so it is read again).

    Why this is exact: the pool changes a user's scaled balances only by minting, burning or transferring its tokens
    (each a Transfer log) and the user's configuration and e-mode only in supply, withdraw, borrow, repay,
    liquidation, deficit, collateral and e-mode calls, each of which logs a pool event naming the user; interest
    accrues through the reserve indexes, read every snapshot. A wallet whose Transfer was a burn (its log dropped)
    is named by the Withdraw, Repay, LiquidationCall or DeficitCreated of the same call, save one: 3.3+'s
    eliminateReserveDeficit burns its caller's aTokens with a DeficitCovered log the indexer does not read, and
    lowers the reserve's deficit, which is read every snapshot: a lower deficit than before reads everything."""
    rows = previous.raw["raw_aave_v3_reserves"]
    listed = {(r.asset, r.reserve_id, r.a_token, r.variable_debt_token, r.stable_debt_token) for r in reserves}
    before = set(rows.select("asset", "reserve_id", "a_token", "variable_debt_token", "stable_debt_token").iter_rows())
    versions = set(rows["pool_version"].to_list())
    if before != listed or versions != {f"{version.major}.{version.minor}"}:
        return None
    deficits = {r.asset: r.deficit for r in reserves}
    if any(int(d or 0) > deficits[a] for a, d in zip(rows["asset"].to_list(), rows["deficit"].to_list(), strict=True)):
        return None
    touched = pl.concat([previous.events_since["wallet"], previous.events_since["counterparty"]]).drop_nulls()
    book = AccountBook.from_frames(previous.raw["raw_aave_v3_accounts"], previous.raw["raw_aave_v3_balances"], reserves)
    keep = ~book.wallets.is_in(touched.unique().implode()).to_numpy()
    if version.has_stable_debt:
        keep &= ~book.with_stable_debt()
    return book.where(keep)


ADAPTER = AaveV3Adapter()
