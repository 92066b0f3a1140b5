"""Every file in queries/ installed as a view and run on the scored devnet; marts checked against the score tables.

The scored file gets an older, fake scored block (every score row copied one block earlier with doubled USD), so
a view that forgets the "latest" filter double-counts and fails the totals below, and the history has two blocks.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from chainrisk.errors import UserError
from chainrisk.networks import CHAIN_NAMES
from chainrisk.protocols.aave_v3.adapter import DDL as AAVE_DDL
from chainrisk.protocols.adapter import (
    GOVERNANCE_EVENT_COLUMNS,
    LIQUIDATION_CALL_COLUMNS,
    LIQUIDATION_COLUMNS,
    PARAMETER_CHANGE_COLUMNS,
    POOL_COLUMNS,
    adapters,
)
from chainrisk.protocols.morpho_blue.adapter import DDL as MORPHO_DDL
from chainrisk.store import views as views_module
from chainrisk.store.db import Store
from chainrisk.store.history import HistorySettings, record_samples
from chainrisk.store.views import (
    AT_SNAPSHOT,
    CHAIN_NAMES_VIEW,
    GENERATED,
    QUERIES_DIR,
    Query,
    at_snapshot_view,
    install_views,
    list_queries,
    query_files,
    query_sql,
)

#: Every adapter's pools view and stg_lending_pools (chainrisk.protocols.adapter.POOL_COLUMNS).
POOL_VIEW_COLUMNS = set(POOL_COLUMNS)
LIQUIDATION_VIEW_COLUMNS = set(LIQUIDATION_COLUMNS)
LIQUIDATION_CALL_VIEW_COLUMNS = set(LIQUIDATION_CALL_COLUMNS)
#: Views over what `chainrisk credit history` records, which the full devnet's run does not take: empty there, their
#: rows are checked on a sampled history (tests/test_credit.py).
CREDIT_HISTORY_VIEWS = {"stg_asset_price_history", "stg_block_times"}
#: Each adapter's parameter-changes view (generated from its `settings`).
PARAMETER_CHANGE_VIEWS = {str(a.parameter_changes_view) for a in adapters().values() if a.parameter_changes_view}
#: Each adapter's view of the logs naming a governance change (rows from the devnet's first run: its Morpho markets'
#: CreateMarket logs).
GOVERNANCE_EVENT_VIEWS = {str(a.governance_events_view) for a in adapters().values() if a.governance_events_view}
#: The views of what governance changed: empty after the full devnet's one run (nothing changed yet); their rows
#: are checked against the chain in tests/test_devnet_all.py (governance on every protocol, then a second run).
GOVERNANCE_VIEWS = {*PARAMETER_CHANGE_VIEWS, "stg_lending_parameter_changes", "mart_parameter_changes"}
#: The views of what a keeper can liquidate now: rows exactly where some account of the protocol (any, for the
#: stacked ones) is liquidatable at its market's latest snapshot, which a devnet whose keeper liquidated everyone may
#: not leave (the full devnet's Comet and Morpho Blue, the session devnet's Aave and Morpho Blue).
LIQUIDATION_CALL_VIEWS = {
    *(str(a.liquidation_calls_view) for a in adapters().values() if a.liquidation_calls_view),
    "stg_lending_liquidation_calls",
    "mart_liquidation_calls",
}
#: Columns each view must have (the dashboard and analysts rely on them); views may have more.
#: A market's sums per bucket of the health history (stg_market_health_buckets, mart_market_health_history).
MARKET_SUMS = (
    "wallets",
    "borrowers",
    "collateral_usd",
    "debt_usd",
    "bad_debt_usd",
    "liquidatable_wallets",
    "wallets_liquidatable_in_bucket",
    "min_health_factor",
    "lowest_health_factor",
    "samples",
)
EXPECTED_COLUMNS: dict[str, set[str]] = {
    "stg_market_labels": {
        "protocol",
        "chain_id",
        "market",
        "market_label",
        "market_name",
        "market_parameters",
        "chain_name",
    },
    "stg_chain_names": {"chain_id", "chain_name"},
    "stg_market_health_buckets": {
        "protocol",
        "chain_id",
        "market",
        "bucket_start",
        "bucket_seconds",
        "last_block",
        "last_timestamp",
        "earliest_last_block",
        *MARKET_SUMS,
    },
    "stg_scored_markets": {"protocol", "chain_id", "market", "market_label", "source", "block_number", "scored_at"},
    "stg_sync_state": {"protocol", "chain_id", "source", "events_to_block", "snapshot_block", "snapshot_time"},
    "stg_runs": {"run_id", "status", "started_at", "seconds", "index_seconds", "rpc_requests", "rpc_calls", "line"},
    "stg_positions_latest": {
        "protocol",
        "chain_id",
        "market",
        "wallet",
        "asset",
        "symbol",
        "block_number",
        "supplied_amount",
        "collateral_amount",
        "debt_amount",
        "supplied_tokens",
        "collateral_tokens",
        "debt_tokens",
        "supplied_usd",
        "collateral_usd",
        "debt_usd",
        "price_usd",
    },
    "stg_wallet_risk": {
        "protocol",
        "chain_id",
        "market",
        "wallet",
        "block_number",
        "block_time",
        "health_factor",
        "is_borrower",
        "collateral_usd",
        "debt_usd",
        "liquidatable",
    },
    "stg_wallet_risk_latest": {
        "protocol",
        "chain_id",
        "market",
        "wallet",
        "block_number",
        "health_factor",
        "is_borrower",
        "collateral_usd",
        "debt_usd",
        "liquidatable",
        "liquidatable_debt_usd",
        "bad_debt_usd",
    },
    "stg_position_risk_latest": {
        "protocol",
        "chain_id",
        "market",
        "wallet",
        "asset",
        "symbol",
        "collateral_usd",
        "debt_usd",
        "price_usd",
        "liquidation_price_usd",
        "liquidation_price_change_pct",
        "liquidated_when_price",
    },
    "stg_liquidation_curve_latest": {
        "chain_id",
        "market",
        "block_number",
        "axis_kind",
        "axis",
        "drop_fraction",
        "drop_pct",
        "liquidatable_collateral_usd",
        "liquidatable_debt_usd",
        "bad_debt_usd",
        "liquidatable_wallets",
    },
    "stg_wallet_portfolio": {"chain_id", "wallet", "protocols", "protocols_text", "worst_health_factor"},
    "stg_aave_v3_events": {
        "chain_id",
        "market",
        "block_number",
        "log_index",
        "event",
        "wallet",
        "asset",
        "amount",
        "amount_tokens",
        "liquidated_collateral_amount",
        "liquidated_collateral_tokens",
    },
    "stg_aave_v3_reserves": {
        "chain_id",
        "market",
        "block_number",
        "is_latest",
        "asset",
        "symbol",
        "decimals",
        "ltv_bps",
        "liquidation_threshold_bps",
        "price",
        "price_usd",
        "supply_apr_pct",
        "variable_borrow_apr_pct",
    },
    "stg_lending_pools": POOL_VIEW_COLUMNS,
    "stg_lending_liquidations": LIQUIDATION_VIEW_COLUMNS,
    "stg_aave_v3_liquidations": LIQUIDATION_VIEW_COLUMNS,
    "stg_morpho_blue_liquidations": LIQUIDATION_VIEW_COLUMNS,
    "stg_compound_v3_liquidations": LIQUIDATION_VIEW_COLUMNS,
    "stg_maker_liquidations": LIQUIDATION_VIEW_COLUMNS,
    "stg_liquity_v1_liquidations": LIQUIDATION_VIEW_COLUMNS,
    "stg_lending_liquidation_calls": LIQUIDATION_CALL_VIEW_COLUMNS,
    "stg_aave_v3_liquidation_calls": LIQUIDATION_CALL_VIEW_COLUMNS,
    "stg_morpho_blue_liquidation_calls": LIQUIDATION_CALL_VIEW_COLUMNS,
    "stg_compound_v3_liquidation_calls": LIQUIDATION_CALL_VIEW_COLUMNS,
    "stg_maker_liquidation_calls": LIQUIDATION_CALL_VIEW_COLUMNS,
    "stg_liquity_v1_liquidation_calls": LIQUIDATION_CALL_VIEW_COLUMNS,
    "stg_asset_prices_latest": {"protocol", "chain_id", "market", "asset", "price_usd", "block_number"},
    "stg_aave_v3_tokens": {"chain_id", "market", "asset", "symbol", "decimals"},
    "stg_compound_v3_tokens": {
        "chain_id",
        "market",
        "asset",
        "symbol",
        "decimals",
        "scale",
        "liquidation_factor",
        "is_base",
    },
    "stg_maker_gems": {"chain_id", "market", "ilk", "gem", "symbol", "gem_decimals", "vat_units_per_gem_unit"},
    "stg_morpho_blue_market_tokens": {
        "chain_id",
        "market",
        "market_id",
        "loan_token",
        "loan_symbol",
        "loan_decimals",
        "collateral_token",
        "collateral_symbol",
        "collateral_decimals",
    },
    **{view: set(PARAMETER_CHANGE_COLUMNS) for view in (*PARAMETER_CHANGE_VIEWS, "stg_lending_parameter_changes")},
    **{view: set(GOVERNANCE_EVENT_COLUMNS) for view in (*GOVERNANCE_EVENT_VIEWS, "stg_lending_governance_events")},
    "mart_parameter_changes": {
        *PARAMETER_CHANGE_COLUMNS,
        "market_label",
        "change_amount",
        "changed_after_block",
        "changed_after_time",
        "changed_by_block",
        "changed_by_time",
        "changed_at_block",
        "changed_in_tx",
        "changed_log_index",
    }
    - {"block_number"},
    "stg_snapshot_blocks": {
        "protocol",
        "chain_id",
        "source",
        "block_number",
        "block_timestamp",
        "block_time",
        "previous_block",
        "previous_time",
        "is_first",
    },
    "mart_liquidation_calls": {
        *LIQUIDATION_CALL_COLUMNS,
        "market_label",
        "goes_through",
        "debt_repaid_usd",
        "collateral_seized_usd",
        "bad_debt_usd",
        "keeper_gain_usd",
        "protocol_fee_usd",
        "best_for_account",
        "price_block",
    },
    "stg_asset_price_history": {"chain_id", "asset", "symbol", "decimals", "block_number", "block_time", "price_usd"},
    "stg_block_times": {"chain_id", "block_number", "block_timestamp", "block_time"},
    "mart_liquidations": {
        *LIQUIDATION_COLUMNS,
        "market_label",
        "block_timestamp",
        "block_time",
        "debt_repaid_usd",
        "collateral_seized_usd",
        "bad_debt_usd",
        "liquidator_gain_usd",
        "protocol_fee_usd",
        "price_block",
        "price_source",
    },
    "mart_liquidators": {
        "protocol",
        "chain_id",
        "liquidator",
        "rank",
        "liquidations",
        "debt_repaid_usd",
        "liquidator_gain_usd",
        "debt_share",
        "liquidation_share",
        "liquidators",
        "top1_debt_share",
        "hhi",
    },
    "stg_aave_v3_pools": POOL_VIEW_COLUMNS,
    "stg_morpho_blue_pools": POOL_VIEW_COLUMNS,
    "stg_compound_v3_pools": POOL_VIEW_COLUMNS,
    "stg_maker_pools": POOL_VIEW_COLUMNS,
    "mart_lending_pools": {*POOL_VIEW_COLUMNS, "market_label", "chain_name", "nearest_limit", "nearest_limit_pct"},
    "stg_lending_events": {
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
    },
    "stg_compound_v3_events": {
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
        "event",
        "counterparty",
        "amount",
    },
    "stg_maker_events": {
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
        "event",
        "dink",
        "dart",
        "cdp_id",
    },
    "stg_liquity_v1_events": {
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
        "event",
        "operation_name",
        "debt",
        "coll",
        "debt_change",
        "coll_change",
    },
    "stg_compound_v3_markets": {
        "protocol",
        "chain_id",
        "market",
        "block_number",
        "is_latest",
        "base_symbol",
        "reserves",
        "target_reserves",
        "reserves_tokens",
        "target_reserves_tokens",
        "reserves_usd",
        "base_price_usd",
    },
    "stg_compound_v3_absorbs": {
        "protocol",
        "chain_id",
        "market",
        "block_number",
        "is_latest",
        "wallet",
        "liquidatable",
        "reserves_paid",
        "shortfall",
    },
    "stg_compound_v3_store_front": {
        "protocol",
        "chain_id",
        "market",
        "asset",
        "symbol",
        "block_number",
        "absorbed",
        "absorbed_value",
        "absorbed_usd",
        "sold",
        "paid",
        "paid_usd",
        "sales",
        "buyers",
        "top_buyer",
        "held",
        "held_usd",
        "unaccounted",
        "for_sale",
        "discount_pct",
    },
    "mart_compound_v3_reserves": {
        "protocol",
        "chain_id",
        "market",
        "market_label",
        "reserves_tokens",
        "target_reserves_tokens",
        "reserves_to_target_pct",
        "liquidatable_accounts",
        "absorb_shortfall_tokens",
        "reserves_after_absorb_tokens",
        "shock_drop_pct",
        "shock_bad_debt_usd",
        "reserves_cover_shock",
        "first_uncovered_drop_pct",
        "collateral_held_usd",
    },
    "stg_maker_ilks": {
        "protocol",
        "chain_id",
        "source",
        "market",
        "block_number",
        "is_latest",
        "debt_dai",
        "line_dai",
        "dust_dai",
        "line_used_pct",
        "hole_room_dai",
        "global_room_dai",
        "liquidation_room_dai",
    },
    "stg_maker_urns": {"protocol", "chain_id", "source", "market", "block_number", "is_latest", "urn", "safe"},
    "stg_maker_auctions": {
        "protocol",
        "chain_id",
        "source",
        "market",
        "clip",
        "auction_id",
        "wallet",
        "status",
        "due_dai",
        "tab_dai",
        "buyers",
        "top_buyer",
        "raised_dai",
        "shortfall_dai",
        "tab_left_dai",
        "lot_left",
        "collateral_sold",
        "collateral_returned",
        "price_dai",
        "feed_price_dai",
        "price_to_feed",
        "lot_value_to_tab",
    },
    "mart_maker_ilks": {
        "protocol",
        "chain_id",
        "source",
        "market",
        "market_label",
        "debt_dai",
        "line_dai",
        "line_used_pct",
        "dust_dai",
        "liquidation_room_dai",
        "unsafe_urns",
        "unsafe_tab_dai",
        "room_covers_unsafe",
    },
    "stg_liquity_v1_system": {
        "protocol",
        "chain_id",
        "market",
        "block_number",
        "is_latest",
        "tcr",
        "ccr",
        "tcr_pct",
        "recovery_mode",
        "stability_pool_lusd",
    },
    "stg_liquity_v1_troves": {"protocol", "chain_id", "market", "block_number", "is_latest", "wallet", "icr"},
    "mart_liquity_v1_system": {
        "protocol",
        "chain_id",
        "market",
        "market_label",
        "tcr_pct",
        "ccr_pct",
        "recovery_mode",
        "price_drop_to_recovery_pct",
        "stability_pool_lusd",
        "liquidatable_debt_lusd",
        "sp_cover_pct",
        "below_ccr_debt_lusd",
    },
    "stg_morpho_blue_events": {
        "chain_id",
        "source",
        "market",
        "block_number",
        "log_index",
        "event",
        "wallet",
        "assets",
        "assets_tokens",
    },
    "stg_morpho_blue_markets": {
        "chain_id",
        "source",
        "market",
        "block_number",
        "is_latest",
        "loan_symbol",
        "collateral_symbol",
        "lltv",
        "lltv_pct",
        "supply_tokens",
        "borrow_tokens",
        "utilization_pct",
        "price",
    },
    "stg_morpho_blue_positions": {
        "chain_id",
        "source",
        "market",
        "block_number",
        "is_latest",
        "wallet",
        "supply_shares",
        "borrow_shares",
        "collateral",
        "collateral_tokens",
        "borrow_tokens",
    },
    "mart_at_risk_positions": {
        "protocol",
        "chain_id",
        "market",
        "market_label",
        "wallet",
        "asset",
        "symbol",
        "health_factor",
        "liquidatable",
        "wallet_collateral_usd",
        "wallet_debt_usd",
        "collateral_usd",
        "debt_usd",
        "price_usd",
        "liquidation_price_usd",
        "liquidation_price_change_pct",
        "liquidated_when_price",
        "block_number",
        "block_timestamp",
    },
    "mart_liquidation_curve": {
        "chain_id",
        "market",
        "axis_kind",
        "axis",
        "drop_pct",
        "liquidatable_collateral_usd",
        "liquidatable_debt_usd",
        "bad_debt_usd",
        "liquidatable_wallets",
        "block_number",
    },
    "mart_exposure_by_asset": {
        "chain_id",
        "protocol",
        "asset",
        "symbol",
        "supplied_usd",
        "collateral_usd",
        "debt_usd",
        "suppliers",
        "borrowers",
        "collateral_of_liquidatable_usd",
        "supplied_tokens",
        "collateral_tokens",
        "debt_tokens",
        "supplied_amount",
        "collateral_amount",
        "debt_amount",
    },
    "mart_concentration": {
        "protocol",
        "chain_id",
        "market",
        "borrowers",
        "debt_usd",
        "top1_share",
        "top10_share",
        "hhi",
        "largest_borrower",
    },
    "mart_wallet_portfolio": {
        "chain_id",
        "wallet",
        "protocols",
        "protocols_text",
        "worst_health_factor",
        "worst_protocol",
        "worst_market",
        "worst_market_label",
        "debt_usd",
    },
    "mart_wallet_health_history": {
        "protocol",
        "chain_id",
        "market",
        "wallet",
        "block_number",
        "block_timestamp",
        "block_time",
        "health_factor",
        "collateral_usd",
        "debt_usd",
        "liquidatable",
        "health_factor_min",
        "health_factor_max",
        "samples",
        "bucket_time",
        "bucket_seconds",
    },
    "mart_market_health_history": {
        "protocol",
        "chain_id",
        "market",
        "market_label",
        "bucket_time",
        "bucket_start",
        "bucket_seconds",
        "block_number",
        "block_time",
        *MARKET_SUMS,
        "mixed_blocks",
        "is_latest",
    },
    "stg_wallet_health_history": {
        "protocol",
        "chain_id",
        "market",
        "market_label",
        "wallet",
        "bucket_start",
        "bucket_time",
        "samples",
        "first_block",
        "last_block",
        "health_factor",
        "health_factor_wad",
        "health_factor_min",
        "health_factor_max",
        "collateral_usd",
        "debt_usd",
        "liquidatable",
    },
    "mart_market_summary": {
        "protocol",
        "chain_id",
        "market",
        "market_label",
        "wallets",
        "borrowers",
        "collateral_usd",
        "debt_usd",
        "liquidatable_wallets",
        "liquidatable_debt_usd",
        "bad_debt_usd",
        "min_health_factor",
    },
    "mart_health_buckets": {"bucket", "bucket_order", "wallets", "debt_usd"},
    "mart_market_freshness": {
        "protocol",
        "chain_id",
        "source",
        "events_to_block",
        "snapshot_block",
        "snapshot_time",
        "scored_block",
        "scored_at",
        "snapshot_age_seconds",
    },
}
#: The generated views of the raw snapshot tables other views read (chainrisk.store.views.at_snapshot_view).
AT_SNAPSHOT_TABLES = (
    "raw_aave_v3_liquidations",
    "raw_aave_v3_reserves",
    "raw_compound_v3_absorbs",
    "raw_compound_v3_assets",
    "raw_compound_v3_markets",
    "raw_liquity_v1_system",
    "raw_liquity_v1_troves",
    "raw_maker_auctions",
    "raw_maker_ilks",
    "raw_maker_urns",
    "raw_morpho_blue_liquidations",
    "raw_morpho_blue_markets",
    "raw_morpho_blue_positions",
)
EXPECTED_COLUMNS |= {
    at_snapshot_view(t): {"chain_id", "market", "block_number", "is_latest"} for t in AT_SNAPSHOT_TABLES
}

BUCKETS = ["< 1 (liquidatable)", "1 to 1.1", "1.1 to 1.25", "1.25 to 1.5", "1.5 to 2", "≥ 2"]

#: Score tables kept per block, and the USD columns the fake older block doubles.
HISTORY_TABLES = {
    "positions": ["supplied_usd", "collateral_usd", "debt_usd"],
    "wallet_risk": ["collateral_usd", "debt_usd", "liquidatable_debt_usd", "bad_debt_usd"],
    "position_risk": ["collateral_usd", "debt_usd"],
    "liquidation_curve": ["liquidatable_collateral_usd", "liquidatable_debt_usd"],
}

#: The score tables at each market's latest block, computed here without the views.
LATEST_WALLET_RISK = """
SELECT w.* FROM wallet_risk w JOIN scored_markets s USING (protocol, chain_id, market, block_number)
"""
LATEST_POSITION_RISK = """
SELECT r.* FROM position_risk r JOIN scored_markets s USING (protocol, chain_id, market, block_number)
"""


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _add_older_block(con: duckdb.DuckDBPyConnection) -> None:
    """Copies every per-block score row one block earlier, USD doubled: history a latest filter must ignore."""
    for table, doubled in HISTORY_TABLES.items():
        changes = ", ".join([f"{c} * 2 AS {c}" for c in doubled] + ["block_number - 1 AS block_number"])
        con.execute(f"INSERT INTO {table} BY NAME SELECT * REPLACE ({changes}) FROM {table}")


def _copy_with_views(
    source: Path, folder: Path, prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection to a copy of `source` in `folder` (the session's file untouched), `prepare`d, views installed."""
    db = folder / "views.duckdb"
    shutil.copyfile(source, db)
    con = duckdb.connect(str(db))
    if prepare is not None:
        prepare(con)
    install_views(con)
    return con


@pytest.fixture(scope="module")
def views(scored_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """A copy of the scored devnet with an older fake block and the views installed (the session file untouched)."""
    with _copy_with_views(scored_db, tmp_path_factory.mktemp("queries"), _add_older_block) as con:
        yield con


def _owner(query: Query) -> str | None:
    """The adapter whose package holds the view's file; None for a shared or generated view."""
    owners = [a.name for a in adapters().values() if query.path is not None and query.path.parent == a.queries_dir()]
    return owners[0] if owners else None


def liquidatable_now(con: duckdb.DuckDBPyConnection, query: Query) -> bool:
    """Whether the scores call some account liquidatable at its market's latest snapshot: in the protocol owning
    `query`, or in any."""
    owner = _owner(query)
    sql = f"SELECT count(*) FROM ({query_sql('stg_wallet_risk_latest')}) WHERE liquidatable"
    found = con.execute(sql + (" AND protocol = ?" if owner else ""), [owner] if owner else []).fetchall()
    return bool(found[0][0])


def expects_rows(con: duckdb.DuckDBPyConnection, query: Query) -> bool:
    """Every view returns rows on the scored devnet, but an adapter's own view (its package's queries/) only when
    that protocol is indexed there (its rows are checked on the full devnet and its stand-in's tests), and a view of
    the liquidations a keeper can send now only when some account is liquidatable; the views of governance's changes
    have none until a second snapshot reads one (their rows: tests/test_parameter_changes.py)."""
    owner = _owner(query)
    if query.name in GOVERNANCE_VIEWS:
        return False
    if query.name in LIQUIDATION_CALL_VIEWS:
        return liquidatable_now(con, query)
    if owner is None:
        return True
    return bool(con.execute("SELECT count(*) FROM sync_state WHERE protocol = ?", [owner]).fetchall()[0][0])


@pytest.fixture(scope="module")
def full_views(full_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """A copy of the full devnet's run (every protocol, stand-ins included) with the views installed."""
    with _copy_with_views(full_db, tmp_path_factory.mktemp("queries-full")) as con:
        yield con


@pytest.fixture(scope="module")
def latest_wallets(views: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return _frame(views, LATEST_WALLET_RISK)


def test_queries_are_layered_and_ordered() -> None:
    queries = list_queries()
    names = [q.name for q in queries]
    generated = set(GENERATED) | {n for n in names if n.endswith(AT_SNAPSHOT)} | PARAMETER_CHANGE_VIEWS
    assert {p.stem for p in query_files()} | generated == set(names)
    assert {p.stem for p in QUERIES_DIR.glob("*.sql")} < set(names), "the shared views, and every adapter's own"
    assert set(EXPECTED_COLUMNS) == set(names), "every view has its expected columns listed here"
    layers = [q.layer for q in queries]
    assert layers == sorted(layers, key=("stg", "mart").index), "stg views come before marts"
    for position, query in enumerate(queries):
        assert {r for r in query.reads if r in names} <= set(names[:position]), f"{query.name} before its inputs"
        if query.layer == "mart":
            outside = [r for r in query.reads if r not in names]
            assert not outside, f"{query.name} reads tables {outside}; marts read only stg_ and mart_ views"


def test_an_at_snapshot_view_stamps_rows_with_their_markets_latest_snapshot(tmp_path: Path) -> None:
    """A raw snapshot table's rows hold at their market's latest snapshot (sync_state): stamped with its block, since a
    table no snapshot changed is not written again and keeps the block it was written at. A row past the snapshot (a
    run that stopped before recording it) and a market sync_state names only for another protocol keep their own
    block and are not the latest."""
    with Store(tmp_path / "c.duckdb") as store:
        store.ensure_tables(adapters()["morpho-blue"].ddl)
        store.con.execute(
            "INSERT INTO raw_morpho_blue_positions VALUES (1, '0xa', 5, 'm1', 'w1', 1, 0, 0), "
            "(1, '0xa', 12, 'm1', 'w2', 1, 0, 0), (1, '0xb', 3, 'm2', 'w1', 1, 0, 0), "
            "(2, '0xa', 4, 'm1', 'w1', 1, 0, 0)"
        )
        store.con.execute(
            "INSERT INTO sync_state (protocol, chain_id, market, from_block, snapshot_block) "
            "VALUES ('morpho-blue', 1, '0xa', 0, 9), ('aave-v3', 1, '0xb', 0, 7)"
        )
        sql = query_sql("stg_morpho_blue_positions_at_snapshot")
        found = store.con.execute(f"SELECT chain_id, market, wallet, block_number, is_latest FROM ({sql}) ORDER BY ALL")
        assert found.fetchall() == [
            (1, "0xa", "w1", 9, True),
            (1, "0xa", "w2", 12, False),
            (1, "0xb", "w1", 3, False),
            (2, "0xa", "w1", 4, False),
        ]


@pytest.mark.parametrize("query", list_queries(), ids=lambda q: q.name)
def test_header_names_its_grain_and_inputs(query: Query) -> None:
    if query.path is None:  # the generated stg_lending_events, stg_chain_names, stg_*_at_snapshot
        generated = query.name in GENERATED or query.name in PARAMETER_CHANGE_VIEWS or query.name.endswith(AT_SNAPSHOT)
        assert generated and query.description
        return
    header = re.match(r"((?:--[^\n]*\n)+)", query.path.read_text(encoding="utf-8"))
    assert header is not None
    text = header.group(1)
    assert query.description and not query.description.startswith("-")
    assert re.search(r"Grain: one row per", text), f"{query.name}: header says its grain"
    reads = re.search(r"^-- Reads: (.+)\.$", text, re.MULTILINE)
    assert reads is not None, f"{query.name}: header ends with a `-- Reads: a, b.` line"
    assert {r.strip() for r in reads.group(1).split(",")} == set(query.reads), f"{query.name}: Reads: line"


@pytest.mark.parametrize("query", list_queries(), ids=lambda q: q.name)
def test_every_view_runs_with_its_columns(full_views: duckdb.DuckDBPyConnection, query: Query) -> None:
    """On the full devnet's run, so that every protocol's own views have rows to show."""
    frame = _frame(full_views, f"SELECT * FROM {query.name}")
    missing = EXPECTED_COLUMNS[query.name] - set(frame.columns)
    assert not missing, f"{query.name} lacks {sorted(missing)}"
    assert len(frame.columns) == len(set(frame.columns))
    if query.name in LIQUIDATION_CALL_VIEWS:
        assert (frame.height > 0) == liquidatable_now(full_views, query), query.name
        return
    if query.name in {at_snapshot_view(t) for a in adapters().values() for t in a.latest_only_tables}:
        return  # what a liquidation would do now: none where no account is liquidatable now (the views above say)
    empty_here = CREDIT_HISTORY_VIEWS | GOVERNANCE_VIEWS
    assert frame.height > 0 or query.name in empty_here, f"{query.name} is empty on the full devnet's run"


def test_query_sql_runs_without_installed_views(scored_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "plain.duckdb"
    shutil.copyfile(scored_db, db)
    # A file scored before the analysts' views existed (the schema's own views, wallet_health_history and the cold
    # days' wallet_health_cold it reads, stay).
    installed = (
        "SELECT view_name FROM duckdb_views() WHERE NOT internal "
        "AND view_name NOT IN ('wallet_health_history', 'wallet_health_cold')"
    )
    with duckdb.connect(str(db)) as con:
        for name in _frame(con, installed)["view_name"]:
            con.execute(f"DROP VIEW {name}")
    with duckdb.connect(str(db), read_only=True) as con:
        assert not _frame(con, installed).height
        summary = _frame(con, query_sql("mart_market_summary"))
        wallets = _frame(con, LATEST_WALLET_RISK)
        for query in list_queries():
            assert set(EXPECTED_COLUMNS[query.name]) <= set(_frame(con, query_sql(query.name)).columns)
    assert summary["wallets"].sum() == wallets.height


@pytest.mark.parametrize(
    ("attribute", "kind"),
    [
        ("events_view", "events"),
        ("pools_view", "pools"),
        ("liquidations_view", "liquidations"),
        ("liquidation_calls_view", "liquidation calls"),
    ],
)
def test_an_adapter_naming_a_view_without_its_file_is_one_line(
    monkeypatch: pytest.MonkeyPatch, attribute: str, kind: str
) -> None:
    """The generated views stack the views adapters name; a name without its query file is the adapter's mistake."""
    monkeypatch.setattr(type(adapters()["morpho-blue"]), attribute, "stg_morpho_blue_nope")
    with pytest.raises(UserError, match=f"an adapter names the {kind} view stg_morpho_blue_nope, but no such query"):
        list_queries()


def test_unknown_query_names_the_known_ones() -> None:
    with pytest.raises(UserError, match=r"unknown query 'mart_nope'; known: .*mart_market_summary"):
        query_sql("mart_nope")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"stg_a.sql": "SELECT 1 AS x"}, "start the file with a `--` comment"),
        ({"stg_a.sql": "-- A.\nSELECT 1; SELECT 2"}, "single SELECT"),
        ({"stg_a.sql": "-- A.\nSELECT * FROM mart_b", "mart_b.sql": "-- B.\nSELECT 1 AS x"}, "may not read marts"),
        ({"mart_a.sql": "-- A.\nSELECT * FROM mart_b", "mart_b.sql": "-- B.\nSELECT * FROM mart_a"}, "cycle"),
        ({"Report.sql": "-- R.\nSELECT 1 AS x"}, "stg_<name>.sql or mart_<name>.sql"),
    ],
)
def test_bad_query_files_are_one_line_errors(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=re.escape(message)):
        list_queries(tmp_path)


def test_dependencies_order_within_a_layer(tmp_path: Path) -> None:
    (tmp_path / "mart_a.sql").write_text("-- A.\nWITH b AS (SELECT * FROM mart_z) SELECT * FROM b")
    (tmp_path / "mart_z.sql").write_text("-- Z.\nSELECT * FROM stg_y")
    (tmp_path / "stg_y.sql").write_text("-- Y.\nSELECT 1 AS x FROM range(1)")
    queries = [q for q in list_queries(tmp_path) if q.name in ("stg_y", "mart_z", "mart_a")]
    assert [q.name for q in queries] == ["stg_y", "mart_z", "mart_a"]
    assert queries[2].reads == ("mart_z",), "CTE names are not inputs"


def test_a_comparison_is_not_an_input(tmp_path: Path) -> None:
    (tmp_path / "stg_a.sql").write_text(
        "-- A.\nSELECT b.x FROM stg_b AS b JOIN history.raw_c AS c USING (x)\n"
        "WHERE b.x IS DISTINCT FROM b.y AND b.y IS NOT distinct\n  from b.z"
    )
    (tmp_path / "stg_b.sql").write_text("-- B.\nSELECT 1 AS x, 2 AS y, 3 AS z")
    (query,) = [q for q in list_queries(tmp_path) if q.name == "stg_a"]
    assert query.reads == ("history.raw_c", "stg_b")


def test_market_summary_equals_wallet_risk_at_scored_blocks(
    views: duckdb.DuckDBPyConnection, latest_wallets: pl.DataFrame
) -> None:
    expected = (
        latest_wallets.group_by("protocol", "chain_id", "market")
        .agg(
            wallets=pl.len(),
            borrowers=pl.col("health_factor").is_not_null().sum(),
            collateral_usd=pl.col("collateral_usd").sum(),
            debt_usd=pl.col("debt_usd").sum(),
            liquidatable_wallets=pl.col("liquidatable").sum(),
            liquidatable_debt_usd=pl.col("liquidatable_debt_usd").sum(),
            bad_debt_usd=pl.col("bad_debt_usd").sum(),
            min_health_factor=pl.col("health_factor").min(),
        )
        .sort("protocol", "chain_id", "market")
    )
    summary = _frame(views, "SELECT * FROM mart_market_summary ORDER BY protocol, chain_id, market")
    assert summary["market"].to_list() == expected["market"].to_list()
    for column in expected.columns[3:]:
        assert summary[column].to_list() == pytest.approx(expected[column].to_list(), rel=1e-12), column
    assert summary["protocol"].unique().sort().to_list() == ["aave-v3", "morpho-blue"]


def expected_labels(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    """(protocol, market) -> label, worked out here from the raw tables: Morpho 'collateral/loan · LLTV x.y%' (LLTV
    from the exact WAD integer), Aave the name the devnet's provider was deployed with."""
    labels: dict[tuple[str, str], str] = {}
    morpho = "SELECT DISTINCT market_id, collateral_symbol, loan_symbol, lltv::VARCHAR FROM raw_morpho_blue_markets"
    for market, collateral, loan, lltv in con.execute(morpho).fetchall():
        tenths = (int(lltv) + 5 * 10**14) // 10**15  # WAD to tenths of a percent, rounded half up
        labels["morpho-blue", market] = f"{collateral}/{loan} · LLTV {tenths // 10}.{tenths % 10}%"
    for (provider,) in con.execute("SELECT market FROM sync_state WHERE protocol = 'aave-v3'").fetchall():
        labels["aave-v3", provider] = "chainrisk devnet"
    return labels


def test_every_market_label_names_the_market(views: duckdb.DuckDBPyConnection, devnet: dict[str, Any]) -> None:
    expected = expected_labels(views)
    morpho = {market: label for (protocol, market), label in expected.items() if protocol == "morpho-blue"}
    created = len(devnet["morpho_blue"]["markets"])
    assert len(morpho) == created and len(set(morpho.values())) == created
    assert all(re.fullmatch(r"[A-Za-z]+/[A-Za-z]+ · LLTV \d{2}\.\d%", label) for label in morpho.values()), morpho
    assert "wstETH/WETH · LLTV 94.5%" in morpho.values()
    labels = _frame(views, "SELECT protocol, market, market_label FROM stg_market_labels")
    assert {(p, m): label for p, m, label in labels.iter_rows()} == expected
    by_market = {market: label for (_, market), label in expected.items()} | {"all": "all"}
    # Every view that shows a market names it the same way (stg_market_labels, defined once).
    showing = {
        query.name: column
        for query in list_queries()
        for column in ("market_label", "worst_market_label")
        if column in _frame(views, f"SELECT * FROM {query.name} LIMIT 0").columns
    }
    assert {
        "stg_scored_markets",
        "mart_market_summary",
        "mart_at_risk_positions",
        "mart_liquidation_curve",
        "mart_wallet_health_history",
        "mart_wallet_portfolio",
    } <= set(showing)
    by_name = {query.name: query for query in list_queries()}
    for name, column in showing.items():
        market = "worst_market" if column == "worst_market_label" else "market"
        shown = _frame(views, f"SELECT DISTINCT {market}, {column} FROM {name} WHERE {market} IS NOT NULL")
        assert shown.height or not expects_rows(views, by_name[name]), name
        assert {m: label for m, label in shown.iter_rows()} == {m: by_market[m] for m in shown[market]}, name


def _market(
    con: duckdb.DuckDBPyConnection,
    protocol: str,
    market: str,
    name: str | None,
    parameters: str | None,
    block: int = 10,
    chain_id: int = 1,
) -> None:
    con.execute(
        "INSERT INTO markets (protocol, chain_id, market, source, block_number, block_timestamp, name, parameters, "
        "bad_debt_rule) VALUES (?, ?, ?, ?, ?, 0, ?, ?, 'suppliers')",
        [protocol, chain_id, market, "0x" + "b" * 40, block, name, parameters],
    )


def test_label_rules_on_a_hand_made_file(tmp_path: Path) -> None:
    """Same-named markets are told apart (by their id on one chain, by their chain's name across chains), a market
    without a name falls back to its id, the latest description wins, a market is named before its first score, a
    scored market no adapter described shows as itself."""
    ids = {name: "0x" + name * 64 for name in ("a", "c", "d", "e", "f", "g", "h")}
    provider, toy = "0x1234" + "0" * 32 + "abcd", "0x" + "7" * 40
    with Store(tmp_path / "labels.duckdb") as store:
        con = store.con
        install_views(con)
        _market(con, "morpho-blue", ids["a"], "WETH/USDC", "LLTV 86.0%")
        _market(con, "morpho-blue", ids["c"], "WETH/USDC", "LLTV 86.0%")
        _market(con, "morpho-blue", ids["d"], None, "LLTV 0.0%")
        _market(con, "morpho-blue", ids["e"], "OLD/DAI", "LLTV 62.5%", block=9)
        _market(con, "morpho-blue", ids["e"], "sDAI/DAI", "LLTV 62.5%", block=10)
        _market(con, "aave-v3", provider, "Aave Ethereum Market", None)
        con.execute("INSERT INTO scored_markets VALUES ('toy-lender', 1, ?, ?, 10, 0, 1, now())", [toy, toy])
        # The same pair and LLTV on two more chains (Morpho Blue on Base, and on a chain chainrisk has no name for).
        _market(con, "morpho-blue", ids["f"], "sDAI/DAI", "LLTV 62.5%", chain_id=8453)
        _market(con, "morpho-blue", ids["g"], "sDAI/DAI", "LLTV 62.5%", chain_id=777_777)
        _market(con, "morpho-blue", ids["h"], "cbBTC/USDC", "LLTV 86.0%", chain_id=8453)
        rows = _frame(con, "SELECT market, market_label, chain_name FROM stg_market_labels")
    labels = dict(rows.select("market", "market_label").iter_rows())
    assert labels == {
        ids["a"]: "WETH/USDC · LLTV 86.0% (0xaaaaaaaa…)",
        ids["c"]: "WETH/USDC · LLTV 86.0% (0xcccccccc…)",
        ids["d"]: "0xdddddddd…",
        ids["e"]: "sDAI/DAI · LLTV 62.5% · Ethereum",
        ids["f"]: "sDAI/DAI · LLTV 62.5% · Base",
        ids["g"]: "sDAI/DAI · LLTV 62.5% · chain 777777",
        ids["h"]: "cbBTC/USDC · LLTV 86.0%",
        provider: "Aave Ethereum Market",
        toy: toy,
    }
    assert len(set(labels.values())) == len(labels), "a label names one market"
    assert dict(rows.select("market", "chain_name").iter_rows())[ids["h"]] == "Base"


def test_health_buckets_cover_every_borrower(views: duckdb.DuckDBPyConnection, latest_wallets: pl.DataFrame) -> None:
    buckets = _frame(views, "SELECT * FROM mart_health_buckets ORDER BY bucket_order")
    assert buckets["bucket"].to_list() == BUCKETS
    assert buckets["bucket_order"].to_list() == [1, 2, 3, 4, 5, 6]
    borrowers = latest_wallets.filter(pl.col("health_factor").is_not_null())
    assert buckets["wallets"].sum() == borrowers.height > 0
    assert buckets["debt_usd"].sum() == pytest.approx(borrowers["debt_usd"].sum(), rel=1e-12)
    below_one = borrowers.filter(pl.col("health_factor") < 1)
    assert buckets["wallets"][0] == below_one.height
    assert buckets["wallets"][5] == borrowers.filter(pl.col("health_factor") >= 2).height


def test_concentration_shares(
    views: duckdb.DuckDBPyConnection, latest_wallets: pl.DataFrame, devnet: dict[str, Any]
) -> None:
    shares = _frame(views, "SELECT * FROM mart_concentration")
    with_debt = shares.filter(pl.col("debt_usd") > 0)
    assert (
        with_debt.height == shares.height == 1 + len(devnet["morpho_blue"]["markets"])
    )  # the Aave pool, each Morpho market
    for row in with_debt.iter_rows(named=True):
        assert 0 < row["top1_share"] <= row["top10_share"] <= 1
        # HHI lies between the largest share squared and the largest share.
        assert row["top1_share"] ** 2 <= row["hhi"] <= row["top1_share"] + 1e-12
        market = latest_wallets.filter(
            (pl.col("market") == row["market"]) & pl.col("health_factor").is_not_null()
        ).sort(["debt_usd", "wallet"], descending=[True, False])
        assert row["borrowers"] == market.height
        assert row["largest_borrower"] == market["wallet"][0]
        debts = market["debt_usd"].to_list()
        assert row["top1_share"] == pytest.approx(debts[0] / sum(debts), rel=1e-12)
        assert row["top10_share"] == pytest.approx(sum(debts[:10]) / sum(debts))


def test_liquidators_sum_every_liquidation(views: duckdb.DuckDBPyConnection) -> None:
    """mart_liquidators, recomputed here from mart_liquidations' rows: each liquidator's count and sums, its shares of
    its protocol and chain's known liquidators, their ranks, the largest share and the Herfindahl index."""
    logged = _frame(views, "SELECT * FROM mart_liquidations")
    found = _frame(views, "SELECT * FROM mart_liquidators")
    assert (
        logged.height > 0
        and found["liquidations"].sum()
        == logged.select(pl.struct("protocol", "chain_id", "tx_hash", "wallet").n_unique()).item()
    )
    keys = ["protocol", "chain_id", "liquidator"]
    expected = logged.group_by(keys).agg(
        pl.struct("tx_hash", "wallet").n_unique().alias("liquidations"),
        pl.col("debt_repaid_usd").sum().alias("debt_repaid_usd"),
        pl.col("liquidator_gain_usd").sum().alias("liquidator_gain_usd"),
    )
    got = found.join(expected, on=keys, how="full", nulls_equal=True, suffix="_expected")
    assert got.height == found.height == expected.height
    for row in got.iter_rows(named=True):
        assert row["liquidations"] == row["liquidations_expected"]
        assert row["debt_repaid_usd"] == pytest.approx(row["debt_repaid_usd_expected"], rel=1e-12)
    for (protocol, chain_id), group in found.filter(pl.col("liquidator").is_not_null()).group_by(
        "protocol", "chain_id"
    ):
        debts = group.sort("rank")["debt_repaid_usd"].to_list()
        assert debts == sorted(debts, reverse=True) and group["rank"].sort().to_list() == list(
            range(1, group.height + 1)
        ), protocol
        shares = [d / sum(debts) for d in debts]
        assert group.sort("rank")["debt_share"].to_list() == pytest.approx(shares, rel=1e-12)
        assert group["liquidation_share"].sum() == pytest.approx(1.0, rel=1e-12)
        assert group["liquidators"].unique().to_list() == [group.height]
        assert group["top1_debt_share"][0] == pytest.approx(shares[0], rel=1e-12)
        assert group["hhi"][0] == pytest.approx(sum(x * x for x in shares), rel=1e-12), (protocol, chain_id)


def test_exposure_equals_position_totals(views: duckdb.DuckDBPyConnection) -> None:
    exposure = _frame(views, "SELECT * FROM mart_exposure_by_asset")
    risk = _frame(views, LATEST_POSITION_RISK)
    assert exposure["debt_usd"].sum() == pytest.approx(risk["debt_usd"].sum(), rel=1e-9)
    assert exposure["collateral_usd"].sum() == pytest.approx(risk["collateral_usd"].sum(), rel=1e-9)
    exact = _frame(
        views,
        "SELECT p.protocol, p.asset, sum(p.debt_amount) AS debt_amount, count(DISTINCT p.wallet) FILTER "
        "(WHERE p.debt_amount > 0) AS borrowers FROM positions p JOIN scored_markets s "
        "USING (protocol, chain_id, market, block_number) GROUP BY ALL",
    )
    joined = exposure.join(exact, on=["protocol", "asset"], suffix="_expected")
    assert joined.height == exposure.height == exact.height
    assert joined["debt_amount"].to_list() == joined["debt_amount_expected"].to_list()
    assert joined["borrowers"].to_list() == joined["borrowers_expected"].to_list()
    assert exposure["debt_amount"].dtype == pl.Decimal(38, 0)


def test_at_risk_positions_are_borrowers_positions(
    views: duckdb.DuckDBPyConnection, latest_wallets: pl.DataFrame
) -> None:
    at_risk = _frame(views, "SELECT * FROM mart_at_risk_positions")
    assert min(at_risk["wallet_debt_usd"].to_list()) > 0
    assert at_risk["health_factor"].null_count() == 0
    borrowers = latest_wallets.filter(pl.col("health_factor").is_not_null()).select("protocol", "market", "wallet")
    expected = _frame(views, LATEST_POSITION_RISK).join(borrowers, on=["protocol", "market", "wallet"])
    assert at_risk.height == expected.height
    key = ["protocol", "chain_id", "market", "wallet", "asset"]
    assert at_risk.select(key).is_duplicated().sum() == 0
    priced = at_risk.filter(pl.col("liquidation_price_usd").is_not_null())
    assert priced.height > 0
    change = (priced["liquidation_price_usd"] / priced["price_usd"] - 1) * 100
    assert priced["liquidation_price_change_pct"].to_list() == pytest.approx(change.to_list(), rel=1e-6, abs=1e-9)


def test_history_buckets_hold_the_latest_scores(views: duckdb.DuckDBPyConnection, latest_wallets: pl.DataFrame) -> None:
    history = _frame(views, "SELECT * FROM mart_wallet_health_history")
    latest = history.filter(pl.col("is_latest"))
    assert latest.height == latest_wallets.height, "every scored wallet's bucket ends with the latest score"
    key = ["protocol", "chain_id", "market", "wallet"]
    joined = latest.join(latest_wallets, on=key, suffix="_score")
    assert joined.height == latest.height
    assert joined["health_factor"].to_list() == joined["health_factor_score"].to_list()
    assert joined["debt_usd"].to_list() == joined["debt_usd_score"].to_list()
    borrowers = history.filter(pl.col("health_factor").is_not_null())
    assert (borrowers["health_factor_min"] <= borrowers["health_factor"]).all()
    assert (borrowers["health_factor"] <= borrowers["health_factor_max"]).all()
    assert (history["samples"] >= 1).all() and set(history["bucket_seconds"].to_list()) <= {3600, 86400}
    assert isinstance(history["block_time"].dtype, pl.Datetime) and history["block_time"].dtype.time_zone
    assert history["block_time"].dt.epoch("s").to_list() == history["block_timestamp"].to_list()


def test_market_history_ends_with_the_market_summary(views: duckdb.DuckDBPyConnection) -> None:
    """Each scored market's latest bucket, summed over its wallets' last samples, is mart_market_summary's line."""
    columns = ["wallets", "borrowers", "collateral_usd", "debt_usd", "bad_debt_usd", "liquidatable_wallets"]
    latest = _frame(
        views,
        f"SELECT protocol, chain_id, market, {', '.join(columns)}, min_health_factor, mixed_blocks "
        "FROM mart_market_health_history WHERE is_latest ORDER BY protocol, chain_id, market",
    )
    summary = _frame(
        views,
        f"SELECT protocol, chain_id, market, {', '.join(columns)}, min_health_factor FROM mart_market_summary "
        "ORDER BY protocol, chain_id, market",
    )
    assert (
        latest.select("protocol", "chain_id", "market").rows()
        == summary.select("protocol", "chain_id", "market").rows()
    )
    assert not latest["mixed_blocks"].any(), "a run samples every wallet of the market"
    for column in [*columns, "min_health_factor"]:
        assert latest[column].to_list() == pytest.approx(summary[column].to_list(), rel=1e-12), column
    history = _frame(views, "SELECT * FROM mart_market_health_history")
    assert history.select("protocol", "chain_id", "market", "bucket_start").is_duplicated().sum() == 0
    assert (history["lowest_health_factor"] <= history["min_health_factor"]).all()
    assert (history["wallets_liquidatable_in_bucket"] >= history["liquidatable_wallets"]).all()


def _health_samples(*rows: tuple[str, int, int, float | None, float, float]) -> pl.DataFrame:
    """(wallet, block, timestamp, health factor, collateral USD, debt USD) samples in one Aave market."""
    return pl.DataFrame(
        {
            "protocol": "aave-v3",
            "chain_id": 1,
            "market": "0xpool",
            "wallet": [r[0] for r in rows],
            "block_number": [r[1] for r in rows],
            "block_timestamp": [r[2] for r in rows],
            "health_factor": [r[3] for r in rows],
            "collateral_usd": [r[4] for r in rows],
            "debt_usd": [r[5] for r in rows],
            "bad_debt_usd": [max(r[5] - r[4], 0.0) for r in rows],
            "borrowing_power_usd": 0.0,
            "liquidation_threshold_bps": 8000,
            "ltv_bps": 7000,
            "liquidatable": [r[3] is not None and r[3] < 1 for r in rows],
        }
    )


def test_market_history_sums_each_wallets_last_sample(tmp_path: Path) -> None:
    """Two runs in one hour (a wallet liquidatable at the first recovers by the second; another leaves the market in
    between), then a run the next hour: each bucket sums the wallets' last samples, keeps the dip, and says when the
    last samples are of different blocks."""
    hour = 1_700_000_000 // 3600 * 3600
    samples = _health_samples(
        ("0xa", 10, hour + 60, 1.5, 100.0, 50.0),
        ("0xb", 10, hour + 60, 0.9, 60.0, 55.0),
        ("0xc", 10, hour + 60, None, 30.0, 0.0),
        ("0xa", 11, hour + 600, 1.4, 100.0, 60.0),
        ("0xb", 11, hour + 600, 1.1, 70.0, 55.0),
        ("0xa", 20, hour + 3700, 0.95, 80.0, 70.0),
        ("0xb", 20, hour + 3700, 1.2, 72.0, 75.0),
    )
    with Store(tmp_path / "market-history.duckdb") as store:
        record_samples(store.con, samples, HistorySettings())
        install_views(store.con)
        store.con.execute(
            "INSERT INTO scored_markets VALUES ('aave-v3', 1, '0xpool', '0xpool', 20, ?, 2, now())", [hour + 3700]
        )
        rows = _frame(store.con, "SELECT * FROM mart_market_health_history ORDER BY bucket_start").to_dicts()
    first, second = rows
    assert (first["bucket_start"], first["bucket_seconds"], first["block_number"], first["samples"]) == (
        hour,
        3600,
        11,
        5,
    )
    assert (first["wallets"], first["borrowers"]) == (3, 2)  # 0xc's last sample has no debt
    assert (first["collateral_usd"], first["debt_usd"]) == (200.0, 115.0)  # 100 + 70 + 30, 60 + 55 + 0
    assert (first["liquidatable_wallets"], first["wallets_liquidatable_in_bucket"]) == (0, 1)
    assert (first["min_health_factor"], first["lowest_health_factor"]) == (1.1, 0.9)
    assert (first["mixed_blocks"], first["is_latest"]) == (True, False)  # 0xc's last sample is of block 10
    assert (second["bucket_start"], second["wallets"], second["borrowers"], second["block_number"]) == (
        hour + 3600,
        2,
        2,
        20,
    )
    assert (second["collateral_usd"], second["debt_usd"], second["bad_debt_usd"]) == (152.0, 145.0, 3.0)
    assert (second["liquidatable_wallets"], second["wallets_liquidatable_in_bucket"]) == (1, 1)
    assert (second["min_health_factor"], second["mixed_blocks"], second["is_latest"]) == (0.95, False, True)


def test_liquidation_curve_is_the_latest(views: duckdb.DuckDBPyConnection) -> None:
    curve = _frame(views, "SELECT * FROM mart_liquidation_curve")
    blocks = curve.group_by("chain_id", "market").agg(pl.col("block_number").n_unique().alias("blocks"))
    assert blocks["blocks"].to_list() == [1] * blocks.height
    assert "all" in curve["market"].to_list()
    assert curve["drop_pct"].min() == 0 and curve["drop_pct"].max() == pytest.approx(90)
    raw = _frame(views, "SELECT max(block_number) AS b FROM liquidation_curve")
    assert curve["block_number"].unique().to_list() == [raw["b"][0]]


def test_freshness_has_one_row_per_indexed_source(views: duckdb.DuckDBPyConnection, devnet: dict[str, Any]) -> None:
    freshness = _frame(views, "SELECT * FROM mart_market_freshness")
    state = _frame(views, "SELECT * FROM sync_state")
    assert freshness.height == state.height == 2
    assert freshness["scored_block"].to_list() == freshness["snapshot_block"].to_list()
    assert min(freshness["snapshot_age_seconds"].to_list()) > 0
    assert sorted(freshness["scored_markets"].to_list()) == [1, len(devnet["morpho_blue"]["markets"])]


def test_wallet_portfolio_lists_protocols(views: duckdb.DuckDBPyConnection) -> None:
    portfolio = _frame(views, "SELECT * FROM mart_wallet_portfolio")
    assert portfolio.height == _frame(views, "SELECT count(*) AS n FROM wallet_portfolio")["n"][0]
    both = portfolio.filter(pl.col("cross_protocol"))
    assert both.height > 0 and set(both["protocols_text"]) == {"aave-v3, morpho-blue"}


def test_views_install_where_only_aave_was_indexed(tmp_path: Path) -> None:
    with Store(tmp_path / "aave-only.duckdb") as store:
        store.ensure_tables(AAVE_DDL)
        con = store.con
        tables = set(_frame(con, "SELECT table_name FROM information_schema.tables")["table_name"])
        morpho_tables = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", MORPHO_DDL))
        assert not morpho_tables & tables
        names = install_views(con)
        assert names == [q.name for q in list_queries()]
        # On an empty file every view is empty but the buckets' six rows and the chains chainrisk names.
        constant = {"mart_health_buckets": 6, CHAIN_NAMES_VIEW: len(CHAIN_NAMES)}
        for name in names:
            assert _frame(con, f"SELECT * FROM {name}").height == constant.get(name, 0), name
        buckets = _frame(con, "SELECT * FROM mart_health_buckets ORDER BY bucket_order")
        assert buckets["bucket"].to_list() == BUCKETS
        assert buckets["wallets"].to_list() == [0] * 6 and buckets["debt_usd"].to_list() == [0.0] * 6
        assert install_views(con) == names, "installing twice replaces the views"


def test_views_are_made_again_only_when_what_they_are_made_from_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The score installs the views before every publish: while every view carries the digest of its SQL, the
    adapters' DDL and the main schema's columns, nothing is replaced; a view dropped or edited by hand, a column
    added to a table a view reads, or a view SQL changed, and all are made again."""
    with Store(tmp_path / "views.duckdb") as store:
        con = store.con
        names = install_views(con)

        def oids() -> dict[str, int]:
            rows = con.execute("SELECT view_name, view_oid FROM duckdb_views() WHERE NOT internal").fetchall()
            return {str(n): int(o) for n, o in rows if n in names}

        made = oids()
        assert set(made) == set(names)
        assert install_views(con) == names and oids() == made, "unchanged: no view replaced"
        con.execute("DROP VIEW mart_health_buckets")
        install_views(con)
        again = oids()
        assert set(again) == set(names) and all(again[n] != made[n] for n in names)
        con.execute("CREATE OR REPLACE VIEW stg_chain_names AS SELECT 1 AS chain_id, 'x' AS chain_name")
        install_views(con)
        assert _frame(con, "SELECT count(*) AS n FROM stg_chain_names")["n"][0] == len(CHAIN_NAMES)
        before = oids()
        con.execute("ALTER TABLE wallet_risk ADD COLUMN note VARCHAR")
        install_views(con)
        assert all(oids()[n] != before[n] for n in names)
        before = oids()
        queries = list_queries()
        query = queries[0]
        edited = dataclasses.replace(query, sql=query.sql + "\nLIMIT 0")
        monkeypatch.setattr(views_module, "list_queries", lambda: [edited, *queries[1:]])
        install_views(con)
        assert oids()[query.name] != before[query.name]
        assert _frame(con, f"SELECT count(*) AS n FROM {query.name}")["n"][0] == 0


def test_parameter_changes_on_a_hand_made_history(tmp_path: Path) -> None:
    """The generated change log over raw versions written by hand (Morpho Blue markets): a fee moved between two
    snapshots is one change between them; a fee first read (a column a newer chainrisk added: NULL before) or no longer
    read (NULL after) is none; a market first read after the source's first snapshot is listed, one a snapshot no
    longer read is gone, and one read again after a gap is listed again; versions that move only other columns
    (totals, prices) add nothing."""
    columns = "chain_id, market, block_number, market_id, loan_token, collateral_token, oracle, irm, lltv, fee, "
    columns += "total_supply_assets, loan_symbol, collateral_symbol, valid_to_block"
    #           market id, block, fee, supply, valid_to
    versions = [
        ("m1", 10, None, 1, 20),
        ("m1", 20, 0, 1, 30),
        ("m1", 30, 0, 2, 40),  # only the totals moved
        ("m1", 40, 5 * 10**16, 2, 50),
        ("m1", 50, None, 2, None),  # the fee unread now
        ("m2", 30, 0, 1, None),  # listed at the third snapshot
        ("m3", 10, 0, 1, 20),  # gone at 20, read again at 40
        ("m3", 40, 0, 1, None),
    ]
    with Store(tmp_path / "hand.duckdb") as store:
        store.ensure_tables(adapters()["morpho-blue"].ddl)
        install_views(store.con)
        for market, block, fee, supply, valid_to in versions:
            store.con.execute(
                f"INSERT INTO history.raw_morpho_blue_markets ({columns}) "
                "VALUES (1, '0xmorpho', ?, ?, '0xl', '0xc', '0xo', '0xi', 1, ?, ?, 'USDC', 'WETH', ?)",
                [block, market, fee, supply, valid_to],
            )
        for block in (10, 20, 30, 40, 50):
            store.con.execute(
                "INSERT INTO snapshot_blocks VALUES ('morpho-blue', 1, '0xmorpho', ?, '0x', ?)", [block, block * 12]
            )
        found = store.con.execute(
            "SELECT item, change, parameter, old_value, new_value, old_amount, new_amount, changed_after_block, "
            "changed_by_block FROM mart_parameter_changes ORDER BY ALL"
        ).fetchall()
    assert found == [
        ("m1", "changed", "fee", "0", "50000000000000000", 0.0, 5.0, 30, 40),
        ("m2", "listed", None, None, None, None, None, 20, 30),
        ("m3", "gone", None, None, None, None, None, 10, 20),
        ("m3", "listed", None, None, None, None, None, 30, 40),
    ]
