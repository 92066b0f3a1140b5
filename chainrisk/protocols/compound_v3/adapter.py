"""Compound V3 (Comet) as a protocol adapter: accounts from the market's events, state from its public interface
at the pinned block. Raw tables: raw_compound_v3_events, raw_compound_v3_markets, raw_compound_v3_assets,
raw_compound_v3_accounts, raw_compound_v3_collateral, raw_compound_v3_absorbs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import polars as pl

from chainrisk.protocols.adapter import IncrementalAdapter, LogQuery, Preset, Previous, Setting, SettingsTable, Snapshot
from chainrisk.protocols.compound_v3 import accrual, normalise
from chainrisk.protocols.compound_v3.constants import MARKETS
from chainrisk.protocols.compound_v3.events import TOPICS, TWO_SIDED, ZERO, decode_log
from chainrisk.protocols.compound_v3.snapshot import Deployment, discover, read_accounts, read_market, token_issues
from chainrisk.protocols.frames import markets_frame
from chainrisk.protocols.quality import data_quality_frame
from chainrisk.protocols.usd import USD_OPTIONS, USD_TEXT_OPTIONS
from chainrisk.rpc import RpcClient

DDL = """
CREATE TABLE IF NOT EXISTS raw_compound_v3_events (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash VARCHAR NOT NULL,
    tx_hash VARCHAR NOT NULL,
    log_index INTEGER NOT NULL,
    event VARCHAR NOT NULL,
    wallet VARCHAR,
    counterparty VARCHAR NOT NULL,
    asset VARCHAR,
    amount HUGEINT NOT NULL,
    value HUGEINT,
    collateral_amount HUGEINT,
    PRIMARY KEY (chain_id, market, block_number, log_index)
);

CREATE TABLE IF NOT EXISTS raw_compound_v3_markets (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    base_token VARCHAR NOT NULL, base_symbol VARCHAR, base_decimals INTEGER NOT NULL, base_price_feed VARCHAR NOT NULL,
    base_price HUGEINT, base_scale HUGEINT NOT NULL,
    base_supply_index HUGEINT NOT NULL, base_borrow_index HUGEINT NOT NULL, tracking_supply_index HUGEINT NOT NULL,
    tracking_borrow_index HUGEINT NOT NULL, total_supply_base HUGEINT NOT NULL, total_borrow_base HUGEINT NOT NULL,
    last_accrual_time BIGINT NOT NULL, pause_flags INTEGER NOT NULL,
    supply_kink HUGEINT NOT NULL, supply_slope_low HUGEINT NOT NULL, supply_slope_high HUGEINT NOT NULL,
    supply_base HUGEINT NOT NULL, borrow_kink HUGEINT NOT NULL, borrow_slope_low HUGEINT NOT NULL,
    borrow_slope_high HUGEINT NOT NULL, borrow_base HUGEINT NOT NULL,
    utilization HUGEINT NOT NULL, supply_rate HUGEINT NOT NULL, borrow_rate HUGEINT NOT NULL,
    accrued_supply_index HUGEINT NOT NULL, accrued_borrow_index HUGEINT NOT NULL,
    store_front_price_factor HUGEINT NOT NULL, target_reserves HUGEINT NOT NULL,
    -- getReserves(): signed, negative when the protocol owes more than it holds
    reserves HUGEINT NOT NULL,
    base_borrow_min HUGEINT NOT NULL, num_assets INTEGER NOT NULL, base_currency_usd DOUBLE,
    PRIMARY KEY (chain_id, market, block_number)
);
-- the base token's balanceOf(comet), where Comet.getReserves' formula gives the reserves read from it (NULL else):
-- the reserves then follow for any block time (accrual.py)
ALTER TABLE raw_compound_v3_markets ADD COLUMN IF NOT EXISTS base_balance HUGEINT;
-- the token whose USD price converts Comet's prices to USD (base_currency_usd) and where that price was read
-- ("base USDC: usd oracle 0x…", chainrisk.protocols.usd); NULL without a USD price
ALTER TABLE raw_compound_v3_markets ADD COLUMN IF NOT EXISTS usd_route VARCHAR;

CREATE TABLE IF NOT EXISTS raw_compound_v3_assets (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    asset_offset INTEGER NOT NULL,
    asset VARCHAR NOT NULL, symbol VARCHAR, decimals INTEGER NOT NULL, price_feed VARCHAR NOT NULL,
    price HUGEINT, scale HUGEINT NOT NULL, borrow_collateral_factor HUGEINT NOT NULL,
    liquidate_collateral_factor HUGEINT NOT NULL, liquidation_factor HUGEINT NOT NULL, supply_cap HUGEINT NOT NULL,
    total_supply_asset HUGEINT NOT NULL, collateral_reserves HUGEINT, price_usd DOUBLE,
    PRIMARY KEY (chain_id, market, block_number, asset)
);

CREATE TABLE IF NOT EXISTS raw_compound_v3_accounts (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    principal HUGEINT NOT NULL,
    base_tracking_index HUGEINT NOT NULL,
    base_tracking_accrued HUGEINT NOT NULL,
    assets_in BIGINT NOT NULL,
    balance HUGEINT NOT NULL,
    borrow_balance HUGEINT NOT NULL,
    PRIMARY KEY (chain_id, market, block_number, wallet)
);

CREATE TABLE IF NOT EXISTS raw_compound_v3_collateral (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    asset VARCHAR NOT NULL,
    balance HUGEINT NOT NULL,
    PRIMARY KEY (chain_id, market, block_number, wallet, asset)
);

CREATE TABLE IF NOT EXISTS raw_compound_v3_absorbs (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    liquidatable BOOLEAN NOT NULL,
    health_factor_wad HUGEINT,
    debt HUGEINT NOT NULL,
    collateral_value HUGEINT NOT NULL,
    credited_value HUGEINT NOT NULL,
    credited_base HUGEINT NOT NULL,
    new_balance HUGEINT NOT NULL,
    base_paid_out HUGEINT NOT NULL,
    reserves_paid HUGEINT NOT NULL,
    shortfall HUGEINT NOT NULL,
    PRIMARY KEY (chain_id, market, block_number, wallet)
);
"""

#: The settings governance gives a Comet (its Configurator's configuration, deployed by upgrading the Comet: read
#: from its getters), as the raw tables store them: their changes, stg_compound_v3_parameter_changes. Factors are
#: wads (1e18 = 100 %); the rate model's kinks are utilizations and its slopes and bases per-second rates (yearly:
#: x SECONDS_PER_YEAR, 31,536,000 in compound-finance/comet contracts/CometCore.sol). Tracking speeds are not read.
_WAD_PERCENT = ("percent", "16")
SETTINGS = (
    SettingsTable(
        "raw_compound_v3_assets",
        "collateral",
        "asset",
        "symbol",
        (
            *(
                Setting(column, *_WAD_PERCENT)
                for column in ("borrow_collateral_factor", "liquidate_collateral_factor", "liquidation_factor")
            ),
            Setting("supply_cap", "tokens", "decimals"),
            Setting("price_feed"),
        ),
    ),
    SettingsTable(
        "raw_compound_v3_markets",
        "comet",
        "market",
        "base_symbol",
        (
            *(Setting(column, *_WAD_PERCENT) for column in ("supply_kink", "borrow_kink", "store_front_price_factor")),
            *(
                Setting(column, "percent a year", amount=f'"{column}"::DOUBLE * 31536000 / 1e16')
                for column in (
                    "supply_base",
                    "supply_slope_low",
                    "supply_slope_high",
                    "borrow_base",
                    "borrow_slope_low",
                    "borrow_slope_high",
                )
            ),
            *(Setting(column, "tokens", "base_decimals") for column in ("target_reserves", "base_borrow_min")),
            Setting("pause_flags"),
            Setting("base_price_feed"),
        ),
    ),
)


class CompoundV3Adapter(IncrementalAdapter[Deployment]):
    name = "compound-v3"
    label = "Compound V3"
    bad_debt = "reserves"
    address_role = "Comet"
    events_table = "raw_compound_v3_events"
    accrued_columns = accrual.ACCRUED_COLUMNS
    latest_only_tables = ("raw_compound_v3_absorbs",)
    ddl = DDL
    presets: ClassVar[dict[str, Preset]] = {
        name: Preset(
            name,
            "compound-v3",
            m.chain_id,
            m.comet,
            m.deployed_block,
            (("usd_oracle", m.usd_oracle),) if m.usd_oracle else (),
        )
        for name, m in MARKETS.items()
    }
    option_names = USD_OPTIONS
    #: usd_feeds: `TOKEN=FEED` pairs, Chainlink USD feeds by token; usd_feed_max_age: how old a feed's answer may be
    #: before it is named stale (chainrisk.protocols.usd)
    text_options = USD_TEXT_OPTIONS
    account_columns = ("event", "wallet", "counterparty")
    #: A later snapshot takes the collateral of the accounts no event touched since from these rows (snapshot_since).
    previous_tables: ClassVar[tuple[str, ...]] = ("raw_compound_v3_collateral",)
    events_view = "stg_compound_v3_events"
    pools_view = "stg_compound_v3_pools"
    liquidations_view = "stg_compound_v3_liquidations"
    liquidation_calls_view = "stg_compound_v3_liquidation_calls"
    parameter_changes_view = "stg_compound_v3_parameter_changes"
    governance_events_view = "stg_compound_v3_governance_events"
    settings = SETTINGS
    #: Comet (getPackedAssetInternal) reverts BorrowCFTooLarge unless
    #: borrowCollateralFactor < liquidateCollateralFactor.
    ltv_below_threshold = True
    threshold_within_bonus = False

    def discover(self, rpc: RpcClient, address: str, block: int, options: dict[str, str]) -> Deployment:
        return discover(rpc, address, block, options)

    def log_query(self, deployment: Deployment) -> LogQuery:
        return LogQuery([deployment.comet], [list(TOPICS)])

    def events_frame(self, deployment: Deployment, logs: list[dict[str, Any]]) -> pl.DataFrame:
        return normalise.events_frame([e for e in (decode_log(log) for log in logs) if e])

    def snapshot_since(
        self,
        rpc: RpcClient,
        deployment: Deployment,
        events: pl.DataFrame,
        chain_id: int,
        block: int,
        timestamp: int,
        previous: Previous | None,
    ) -> Snapshot:
        """Every account at `block`; with `previous`, the collateral balances of the accounts no event touched since
        are taken from its raw rows instead of read again (_unchanged_collateral); userBasic is read for all."""
        # Every account that ever held a position: the holder of each event, and both sides of a transfer.
        receivers = events.filter(pl.col("event").is_in(TWO_SIDED))["counterparty"]
        wallets = sorted((set(events["wallet"].drop_nulls()) | set(receivers)) - {ZERO})
        market = read_market(rpc, deployment, block, timestamp)
        known = _unchanged_collateral(previous, wallets) if previous is not None else None
        accounts = read_accounts(rpc, deployment.comet, market.assets, wallets, block, known)
        oversized = normalise.oversized_wallets(accounts, market)
        positions, health = normalise.contract_frames(accounts, market, chain_id, block, timestamp, oversized)
        raw_accounts, raw_collateral = normalise.accounts_frames(accounts, market, chain_id, block)
        predictions = normalise.absorb_predictions(accounts, market, oversized)
        frames = {
            "raw_compound_v3_markets": normalise.market_frame(market, chain_id, block),
            "raw_compound_v3_assets": normalise.assets_frame(market, chain_id, block),
            "raw_compound_v3_accounts": raw_accounts,
            "raw_compound_v3_collateral": raw_collateral,
            "raw_compound_v3_absorbs": normalise.absorbs_frame(predictions, market, chain_id, block),
            "positions": positions,
            "wallet_health": health,
            "markets": markets_frame(
                [normalise.market_row(market)], self.name, chain_id, deployment.comet, block, timestamp
            ),
            "data_quality": data_quality_frame(
                [*token_issues(market, deployment), *normalise.oversized_issues(market, oversized)],
                self.name,
                chain_id,
                deployment.comet,
                block,
            ),
        }
        borrowers = sum(1 for a in accounts if a.principal < 0)
        return Snapshot(frames, accounts=raw_accounts.height, accounts_with_debt=borrowers)

    def accrue(
        self, table: str, rows: pl.DataFrame, timestamp: int, related: Callable[[str], pl.DataFrame]
    ) -> list[dict[str, Any]]:
        return accrual.accrue(table, rows, timestamp, related)


def _unchanged_collateral(previous: Previous, wallets: list[str]) -> dict[str, dict[str, int]] | None:
    """The collateral balances (asset -> userCollateral balance) of the `wallets` no event names since the previous
    snapshot, as that snapshot read them (its raw rows hold the entered assets; a wallet without rows held none).
    Why this is exact: Comet moves an account's userCollateral only in supplyCollateral, transferCollateral,
    withdrawCollateral and absorb, each logging an event that names the account (SupplyCollateral's dst, both sides
    of TransferCollateral, WithdrawCollateral's src, AbsorbCollateral's borrower; compound-finance/comet
    contracts/Comet.sol); any event naming a wallet, on either side, has it read again. None, everything read, when the
    market was upgraded since (its proxy's Upgraded): new code may keep its accounts otherwise."""
    since = previous.events_since
    if since.filter(pl.col("event") == "Upgraded").height:
        return None
    touched = set(since["wallet"].drop_nulls()) | set(since["counterparty"].drop_nulls())
    rows = previous.raw["raw_compound_v3_collateral"]
    stored: dict[str, dict[str, int]] = {}
    balances = rows["balance"].cast(pl.Int128).to_list()
    for wallet, asset, balance in zip(rows["wallet"].to_list(), rows["asset"].to_list(), balances, strict=True):
        stored.setdefault(wallet, {})[asset] = balance
    return {w: stored.get(w, {}) for w in wallets if w not in touched}


ADAPTER = CompoundV3Adapter()
