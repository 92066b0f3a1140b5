"""Morpho Blue as a protocol adapter: markets from CreateMarket, accounts from position events, state by
storage reads at the pinned block. Raw tables: raw_morpho_blue_events, raw_morpho_blue_markets,
raw_morpho_blue_positions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import polars as pl

from chainrisk.protocols.adapter import IncrementalAdapter, LogQuery, Preset, Previous, Setting, SettingsTable, Snapshot
from chainrisk.protocols.frames import markets_frame
from chainrisk.protocols.morpho_blue import accrual, normalise, rebuild
from chainrisk.protocols.morpho_blue.constants import PRESETS
from chainrisk.protocols.morpho_blue.events import POSITION_EVENTS, TOPICS, decode_log
from chainrisk.protocols.morpho_blue.maths import liquidation_incentive_factor
from chainrisk.protocols.morpho_blue.normalise import WAD_PER_BPS
from chainrisk.protocols.morpho_blue.snapshot import (
    Deployment,
    MarketParams,
    Position,
    discover,
    read_markets,
    read_positions,
)
from chainrisk.protocols.quality import data_quality_frame
from chainrisk.protocols.usd import USD_OPTIONS, USD_TEXT_OPTIONS
from chainrisk.rpc import RpcClient
from chainrisk.units import PER_MARKET

DDL = """
CREATE TABLE IF NOT EXISTS raw_morpho_blue_events (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash VARCHAR NOT NULL,
    tx_hash VARCHAR NOT NULL,
    log_index INTEGER NOT NULL,
    event VARCHAR NOT NULL,
    market_id VARCHAR,
    wallet VARCHAR,
    caller VARCHAR,
    receiver VARCHAR,
    assets HUGEINT, shares HUGEINT, seized_assets HUGEINT, bad_debt_assets HUGEINT, bad_debt_shares HUGEINT,
    rate HUGEINT,
    loan_token VARCHAR, collateral_token VARCHAR, oracle VARCHAR, irm VARCHAR, lltv HUGEINT,
    PRIMARY KEY (chain_id, market, block_number, log_index)
);

CREATE TABLE IF NOT EXISTS raw_morpho_blue_markets (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    market_id VARCHAR NOT NULL,
    loan_token VARCHAR NOT NULL, collateral_token VARCHAR NOT NULL, oracle VARCHAR NOT NULL, irm VARCHAR NOT NULL,
    lltv HUGEINT NOT NULL,
    loan_symbol VARCHAR, loan_decimals INTEGER, collateral_symbol VARCHAR, collateral_decimals INTEGER,
    total_supply_assets HUGEINT, total_supply_shares HUGEINT, total_borrow_assets HUGEINT,
    total_borrow_shares HUGEINT, last_update BIGINT, fee HUGEINT, borrow_rate HUGEINT,
    accrued_total_supply_assets HUGEINT, accrued_total_supply_shares HUGEINT,
    accrued_total_borrow_assets HUGEINT, accrued_total_borrow_shares HUGEINT,
    -- the oracle price (1e36-scaled) can exceed HUGEINT: exact as a decimal string, and as a double
    price VARCHAR, price_float DOUBLE, liquidation_incentive_factor HUGEINT,
    loan_price_usd DOUBLE, collateral_price_usd DOUBLE, base_currency_usd DOUBLE,
    PRIMARY KEY (chain_id, market, block_number, market_id)
);
-- AdaptiveCurveIrm's rateAtTarget(id) (NULL for any other IRM): borrow_rate follows from it at any time (irm.py)
ALTER TABLE raw_morpho_blue_markets ADD COLUMN IF NOT EXISTS rate_at_target HUGEINT;
-- Where each token's USD price was read (chainrisk.protocols.usd: "usd feed 0x…", "usd oracle 0x…"); NULL without one
ALTER TABLE raw_morpho_blue_markets ADD COLUMN IF NOT EXISTS loan_usd_source VARCHAR;
ALTER TABLE raw_morpho_blue_markets ADD COLUMN IF NOT EXISTS collateral_usd_source VARCHAR;

CREATE TABLE IF NOT EXISTS raw_morpho_blue_positions (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    market_id VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    supply_shares HUGEINT NOT NULL,
    borrow_shares HUGEINT NOT NULL,
    collateral HUGEINT NOT NULL,
    PRIMARY KEY (chain_id, market, block_number, market_id, wallet)
);

-- What the largest Morpho.liquidate call would do now to each unhealthy borrower (maths.liquidate_most), or why it
-- reverts: the latest snapshot's only (a prediction, not state).
CREATE TABLE IF NOT EXISTS raw_morpho_blue_liquidations (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    market_id VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    health_factor_wad HUGEINT,
    error VARCHAR,
    repaid_shares HUGEINT, repaid_assets HUGEINT, seized_assets HUGEINT, bad_debt_shares HUGEINT,
    bad_debt_assets HUGEINT,
    PRIMARY KEY (chain_id, market, block_number, market_id, wallet)
);
"""

#: A market's one governed setting, its fee (a wad share of the interest, set by Morpho's owner); the rest of its
#: parameters (tokens, oracle, IRM, LLTV) make its id and never change. New markets show as listed:
#: stg_morpho_blue_parameter_changes.
SETTINGS = (
    SettingsTable(
        "raw_morpho_blue_markets",
        "market",
        "market_id",
        "coalesce(collateral_symbol, '?') || '/' || coalesce(loan_symbol, '?')",
        (Setting("fee", "percent", "16"),),
        market="market_id",
    ),
)


class MorphoBlueAdapter(IncrementalAdapter[Deployment]):
    name = "morpho-blue"
    label = "Morpho Blue"
    bad_debt = "suppliers"
    address_role = "Morpho Blue singleton"
    events_table = "raw_morpho_blue_events"
    ddl = DDL
    latest_only_tables = ("raw_morpho_blue_liquidations",)
    presets: ClassVar[dict[str, Preset]] = {
        p.name: Preset(
            p.name,
            "morpho-blue",
            p.chain_id,
            p.address,
            p.from_block,
            (("usd_oracle", p.usd_oracle),) if p.usd_oracle else (),
        )
        for p in PRESETS.values()
    }
    option_names = USD_OPTIONS
    #: usd_feeds: `TOKEN=FEED` pairs, Chainlink USD feeds by token; usd_feed_max_age: how old a feed's answer may be
    #: before it is named stale (chainrisk.protocols.usd)
    text_options = USD_TEXT_OPTIONS
    account_columns = ("event", "market_id", "wallet", "loan_token", "collateral_token", "oracle", "irm", "lltv")
    events_view = "stg_morpho_blue_events"
    pools_view = "stg_morpho_blue_pools"
    liquidations_view = "stg_morpho_blue_liquidations"
    liquidation_calls_view = "stg_morpho_blue_liquidation_calls"
    parameter_changes_view = "stg_morpho_blue_parameter_changes"
    governance_events_view = "stg_morpho_blue_governance_events"
    settings = SETTINGS
    previous_tables = ("raw_morpho_blue_positions", "raw_morpho_blue_markets")
    accrued_columns = accrual.ACCRUED_COLUMNS
    #: A market's LLTV is one of its id's parameters (MarketParams): it never changes, and Morpho.liquidate derives
    #: the incentive from it. Morpho Blue caps no collateral (a vault's cap bounds what it supplies to a market).
    parameter_changes = PER_MARKET
    collateral_cap = False

    def bonus_of_threshold(self, threshold_bps: int) -> int:
        """Morpho.liquidate's incentive factor at an LLTV of `threshold_bps`, in whole bps (rounded down)."""
        return liquidation_incentive_factor(threshold_bps * WAD_PER_BPS) // WAD_PER_BPS

    def accrue(
        self, table: str, rows: pl.DataFrame, timestamp: int, related: Callable[[str], pl.DataFrame]
    ) -> list[dict[str, Any]]:
        return accrual.accrue(table, rows, timestamp)

    def discover(self, rpc: RpcClient, address: str, block: int, options: dict[str, str]) -> Deployment:
        return discover(rpc, address, block, options)

    def log_query(self, deployment: Deployment) -> LogQuery:
        return LogQuery([deployment.morpho], [list(TOPICS)])

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
        """Every position at `block`; with `previous`, the positions no event since names are taken from its raw
        rows (see _unchanged_positions) instead of read again, and the figures are computed afresh for all."""
        created = [
            MarketParams(r["market_id"], r["loan_token"], r["collateral_token"], r["oracle"], r["irm"], int(r["lltv"]))
            for r in events.filter(pl.col("event") == "CreateMarket").sort("market_id").iter_rows(named=True)
        ]
        known = {p.market_id for p in created}
        holders = (
            events.filter(pl.col("event").is_in(POSITION_EVENTS) & pl.col("market_id").is_in(known))
            .select("market_id", "wallet")
            .unique()
        )
        # Fee recipients (past and present) hold supply shares minted at accrual, with no Supply event.
        recipients = set(events.filter(pl.col("event") == "SetFeeRecipient")["wallet"].to_list())
        recipients.add(deployment.fee_recipient)
        recipients.discard("0x" + "0" * 40)
        fee_holders = pl.DataFrame(
            [(m, r) for m in sorted(known) for r in sorted(recipients)],
            schema={"market_id": pl.Utf8, "wallet": pl.Utf8},
            orient="row",
        )
        pairs = pl.concat([holders, fee_holders]).unique().sort("market_id", "wallet")
        markets = read_markets(rpc, deployment, created, block, timestamp)
        wanted = list(pairs.iter_rows())
        reused = _unchanged_positions(previous, wanted, set(fee_holders.iter_rows())) if previous is not None else {}
        read = iter(read_positions(rpc, deployment, [pair for pair in wanted if pair not in reused], block))
        positions = [reused[pair] if pair in reused else next(read) for pair in wanted]
        contract_positions, health = normalise.contract_frames(
            markets, positions, deployment, chain_id, block, timestamp
        )
        source = deployment.morpho
        # A market whose shares or totals pass what a HUGEINT holds keeps its positions (in token units) but no raw
        # rows: one such market (anyone can make one) must not stop the others.
        oversized = normalise.oversized_markets(markets, positions)
        stored_markets = [m for m in markets if m.params.market_id not in oversized]
        stored_positions = [p for p in positions if p.market_id not in oversized]
        frames = {
            "raw_morpho_blue_markets": normalise.markets_frame(stored_markets, chain_id, source, block),
            "raw_morpho_blue_positions": normalise.positions_frame(
                [p for p in stored_positions if p.supply_shares or p.borrow_shares or p.collateral],
                chain_id,
                source,
                block,
            ),
            "raw_morpho_blue_liquidations": normalise.liquidations_frame(
                stored_markets, stored_positions, chain_id, source, block
            ),
            "positions": contract_positions,
            "wallet_health": health,
            "markets": markets_frame(normalise.market_rows(markets), self.name, chain_id, source, block, timestamp),
            "data_quality": data_quality_frame(
                [
                    *(i for m in markets for i in m.issues),
                    *normalise.value_issues(markets, positions),
                    *normalise.oversized_issues(markets, oversized),
                ],
                self.name,
                chain_id,
                source,
                block,
            ),
        }
        return Snapshot(
            frames,
            accounts=health.height,
            accounts_with_debt=int((health["total_debt_base"].cast(pl.Float64) > 0).sum()),
        )

    def rebuild_positions(
        self, raw: dict[str, pl.DataFrame], chain_id: int, source: str, block: int, timestamp: int
    ) -> pl.DataFrame:
        return rebuild.rebuild_positions(raw, chain_id, source, block, timestamp)


def _unchanged_positions(
    previous: Previous, pairs: list[tuple[str, str]], fee_holders: set[tuple[str, str]]
) -> dict[tuple[str, str], Position]:
    """The (market, wallet) positions of `pairs` no event since the previous snapshot names, as that snapshot read
    them (its raw rows hold the non-empty ones; a pair without a row was empty). Why this is exact: Morpho changes a
    position's shares or collateral only in supply, withdraw, borrow, repay, the collateral calls and liquidate, each
    logging an event naming the position's owner (POSITION_EVENTS), save the fee recipient's supply shares, minted at
    every interest accrual: fee recipients are always read again."""
    since = previous.events_since.filter(pl.col("event").is_in(POSITION_EVENTS))
    touched = set(since.select("market_id", "wallet").iter_rows())
    # A market the previous snapshot stored no raw row of (its shares passed what a HUGEINT holds) is read again.
    recorded = set(previous.raw["raw_morpho_blue_markets"]["market_id"].to_list())
    rows = previous.raw["raw_morpho_blue_positions"]
    amounts = [rows[c].cast(pl.Int128).to_list() for c in ("supply_shares", "borrow_shares", "collateral")]
    stored = {
        (market, wallet): Position(market, wallet, supply, borrow, collateral)
        for market, wallet, supply, borrow, collateral in zip(
            rows["market_id"].to_list(), rows["wallet"].to_list(), *amounts, strict=True
        )
    }
    return {
        pair: stored.get(pair) or Position(pair[0], pair[1], 0, 0, 0)
        for pair in pairs
        if pair not in touched and pair not in fee_holders and pair[0] in recorded
    }


ADAPTER = MorphoBlueAdapter()
