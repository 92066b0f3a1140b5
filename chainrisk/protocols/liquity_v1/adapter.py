"""Liquity V1 as a protocol adapter: troves from TroveUpdated / TroveLiquidated (TroveManager and
BorrowerOperations), state through the public getters at the pinned block. Raw tables: raw_liquity_v1_events,
raw_liquity_v1_troves, raw_liquity_v1_system."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import polars as pl

from chainrisk.errors import UserError
from chainrisk.protocols.adapter import Adapter, LogQuery, Preset, Snapshot
from chainrisk.protocols.liquity_v1 import normalise
from chainrisk.protocols.liquity_v1.constants import PRESETS, PROTOCOL
from chainrisk.protocols.liquity_v1.events import TOPICS, batches, decode_log
from chainrisk.protocols.liquity_v1.maths import MAX_UINT256, System, entire_system_coll
from chainrisk.protocols.liquity_v1.snapshot import Deployment, discover, read_system, read_troves
from chainrisk.rpc import RpcClient
from chainrisk.units import HUGEINT_LIMIT, IMMUTABLE, WAD

DDL = """
CREATE TABLE IF NOT EXISTS raw_liquity_v1_events (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash VARCHAR NOT NULL,
    tx_hash VARCHAR NOT NULL,
    log_index INTEGER NOT NULL,
    event VARCHAR NOT NULL,
    emitter VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    debt HUGEINT, coll HUGEINT, stake HUGEINT,
    operation INTEGER, operation_name VARCHAR,
    PRIMARY KEY (chain_id, market, block_number, log_index)
);
-- Who called each liquidation, from its transaction's receipt (since stop 52; earlier files' events have none).
ALTER TABLE raw_liquity_v1_events ADD COLUMN IF NOT EXISTS liquidator VARCHAR;
-- The gas compensation its caller received for each trove, where the batch's Liquidation log confirms it.
ALTER TABLE raw_liquity_v1_events ADD COLUMN IF NOT EXISTS gas_compensation_lusd HUGEINT;
ALTER TABLE raw_liquity_v1_events ADD COLUMN IF NOT EXISTS gas_compensation_eth HUGEINT;

CREATE TABLE IF NOT EXISTS raw_liquity_v1_troves (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    status INTEGER NOT NULL,
    debt HUGEINT NOT NULL, coll HUGEINT NOT NULL, stake HUGEINT NOT NULL, array_index HUGEINT NOT NULL,
    snapshot_eth HUGEINT NOT NULL, snapshot_lusd_debt HUGEINT NOT NULL,
    pending_lusd_debt HUGEINT NOT NULL, pending_eth HUGEINT NOT NULL,
    entire_debt HUGEINT NOT NULL, entire_coll HUGEINT NOT NULL,
    icr HUGEINT NOT NULL, nicr HUGEINT NOT NULL, ratio_held_to HUGEINT NOT NULL, health_factor_wad HUGEINT NOT NULL,
    liquidation_price HUGEINT,
    liquidatable_normal_mode BOOLEAN NOT NULL, liquidatable_recovery_mode BOOLEAN NOT NULL,
    liquidatable BOOLEAN NOT NULL,
    batch_rank INTEGER, batch_liquidated BOOLEAN NOT NULL, batch_in_recovery_mode BOOLEAN,
    coll_gas_compensation HUGEINT, lusd_gas_compensation HUGEINT, debt_to_offset HUGEINT,
    coll_to_stability_pool HUGEINT, debt_to_redistribute HUGEINT, coll_to_redistribute HUGEINT,
    coll_surplus HUGEINT, liquidation_penalty HUGEINT, redistributed_debt HUGEINT, redistributed_coll HUGEINT,
    PRIMARY KEY (chain_id, market, block_number, wallet)
);

CREATE TABLE IF NOT EXISTS raw_liquity_v1_system (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    trove_manager VARCHAR NOT NULL, borrower_operations VARCHAR NOT NULL, price_feed VARCHAR NOT NULL,
    stability_pool VARCHAR NOT NULL, active_pool VARCHAR NOT NULL, default_pool VARCHAR NOT NULL,
    sorted_troves VARCHAR NOT NULL, lusd_token VARCHAR NOT NULL,
    mcr HUGEINT NOT NULL, ccr HUGEINT NOT NULL, lusd_gas_compensation HUGEINT NOT NULL,
    percent_divisor HUGEINT NOT NULL,
    price HUGEINT NOT NULL,
    active_pool_eth HUGEINT NOT NULL, active_pool_debt HUGEINT NOT NULL,
    default_pool_eth HUGEINT NOT NULL, default_pool_debt HUGEINT NOT NULL,
    entire_system_coll HUGEINT NOT NULL, entire_system_debt HUGEINT NOT NULL,
    tcr HUGEINT, recovery_mode BOOLEAN NOT NULL, recovery_mode_price HUGEINT, recovery_mode_distance DOUBLE,
    stability_pool_lusd HUGEINT NOT NULL, stability_pool_eth HUGEINT NOT NULL,
    total_stakes HUGEINT NOT NULL, total_stakes_snapshot HUGEINT NOT NULL, total_collateral_snapshot HUGEINT NOT NULL,
    l_eth HUGEINT NOT NULL, l_lusd_debt HUGEINT NOT NULL,
    last_eth_error_redistribution HUGEINT NOT NULL, last_lusd_debt_error_redistribution HUGEINT NOT NULL,
    trove_owners INTEGER NOT NULL, sorted_troves_size INTEGER NOT NULL,
    base_rate HUGEINT NOT NULL, last_fee_operation_time BIGINT NOT NULL, base_rate_decayed HUGEINT NOT NULL,
    borrowing_rate HUGEINT NOT NULL,
    batch_reverted VARCHAR, batch_liquidations INTEGER NOT NULL, batch_debt HUGEINT NOT NULL,
    batch_coll HUGEINT NOT NULL, batch_debt_to_offset HUGEINT NOT NULL, batch_coll_to_stability_pool HUGEINT NOT NULL,
    batch_debt_to_redistribute HUGEINT NOT NULL, batch_coll_to_redistribute HUGEINT NOT NULL,
    batch_coll_gas_compensation HUGEINT NOT NULL, batch_lusd_gas_compensation HUGEINT NOT NULL,
    batch_coll_surplus HUGEINT NOT NULL,
    l_eth_after HUGEINT, l_lusd_debt_after HUGEINT, stability_pool_lusd_after HUGEINT, total_stakes_after HUGEINT,
    tcr_after HUGEINT,
    PRIMARY KEY (chain_id, market, block_number)
);
"""


class LiquityV1Adapter(Adapter[Deployment]):
    name = PROTOCOL
    label = "Liquity V1"
    bad_debt = "redistribution"
    address_role = "TroveManager"
    events_table = "raw_liquity_v1_events"
    ddl = DDL
    presets: ClassVar[dict[str, Preset]] = {
        p.name: Preset(p.name, PROTOCOL, p.chain_id, p.address, p.from_block) for p in PRESETS.values()
    }
    account_columns = ("wallet",)
    events_view = "stg_liquity_v1_events"
    liquidations_view = "stg_liquity_v1_liquidations"
    liquidation_calls_view = "stg_liquity_v1_liquidation_calls"
    #: No governance: MCR (110 %), CCR and the liquidation reward are constants of the deployed contracts.
    parameter_changes = IMMUTABLE
    collateral_cap = False

    def discover(self, rpc: RpcClient, address: str, block: int, options: dict[str, str]) -> Deployment:
        return discover(rpc, address, block)

    def log_query(self, deployment: Deployment) -> LogQuery:
        return LogQuery([deployment.trove_manager, deployment.borrower_operations], [list(TOPICS)])

    def events_frame(self, deployment: Deployment, logs: list[dict[str, Any]]) -> pl.DataFrame:
        events = [e for e in (decode_log(log, deployment.trove_manager) for log in logs) if e]
        return normalise.events_frame(events)

    def receipts_wanted(self, deployment: Deployment, events: pl.DataFrame) -> list[str]:
        return events.filter(pl.col("event") == "TroveLiquidated")["tx_hash"].unique(maintain_order=True).to_list()

    def with_receipts(
        self, deployment: Deployment, events: pl.DataFrame, receipts: Mapping[str, dict[str, Any]]
    ) -> pl.DataFrame:
        """Each TroveLiquidated's liquidator (the caller paid after the next `Liquidation` of its transaction) and its
        gas compensation: LUSD_GAS_COMPENSATION and its collateral / PERCENT_DIVISOR, kept only where they add up to
        what the batch's `Liquidation` log says it paid (a Recovery Mode liquidation capped at MCR logs its
        collateral net of the compensation: its batch's troves are left without)."""
        found = [
            (tx, b.at, b.liquidator, b.coll_compensation, b.lusd_compensation)
            for tx, receipt in receipts.items()
            for b in batches(receipt, deployment.trove_manager, deployment.lusd_token, deployment.active_pool)
        ]
        if not found:
            return events
        schema = {"tx_hash": pl.Utf8, "_at": pl.Int32, "_by": pl.Utf8, "_coll_paid": pl.Int128, "_lusd_paid": pl.Int128}
        paid = pl.DataFrame(found, schema=schema, orient="row").sort("tx_hash", "_at")
        order = events.with_row_index("_order").sort("tx_hash", "log_index")
        # Each event with the first batch after it in its transaction (sorted within each, as the join needs).
        matched = order.join_asof(
            paid, left_on="log_index", right_on="_at", by="tx_hash", strategy="forward", check_sortedness=False
        )
        params = deployment.params
        liquidated = (pl.col("event") == "TroveLiquidated") & pl.col("_at").is_not_null()
        eth = pl.col("coll").cast(pl.Int128) // params.percent_divisor
        batch = ["tx_hash", "_at"]
        adds_up = (eth.filter(liquidated).sum().over(batch) == pl.col("_coll_paid")) & (
            liquidated.sum().over(batch).cast(pl.Int128) * params.lusd_gas_compensation == pl.col("_lusd_paid")
        )
        exact = events.schema["gas_compensation_eth"]
        return (
            matched.with_columns(
                pl.when(liquidated).then(pl.col("_by")).otherwise(pl.col("liquidator")).alias("liquidator"),
                pl.when(liquidated & adds_up)
                .then(pl.lit(params.lusd_gas_compensation, pl.Int128))
                .otherwise(pl.col("gas_compensation_lusd").cast(pl.Int128))
                .cast(exact)
                .alias("gas_compensation_lusd"),
                pl.when(liquidated & adds_up)
                .then(eth)
                .otherwise(pl.col("gas_compensation_eth").cast(pl.Int128))
                .cast(exact)
                .alias("gas_compensation_eth"),
            )
            .sort("_order")
            .select(events.columns)
        )

    def snapshot(
        self, rpc: RpcClient, deployment: Deployment, events: pl.DataFrame, chain_id: int, block: int, timestamp: int
    ) -> Snapshot:
        wallets = sorted(set(events["wallet"].to_list()))
        troves = read_troves(rpc, deployment, wallets, block)
        system = read_system(rpc, deployment, block)
        refusal = unratable(system, deployment)
        if refusal is not None:
            raise UserError(refusal)
        frames = normalise.snapshot_frames(deployment, system, troves, chain_id, block, timestamp)
        active = frames["wallet_health"].height
        return Snapshot(frames, accounts=active, accounts_with_debt=active)


def unratable(system: System, deployment: Deployment) -> str | None:
    """Why no trove can be rated at the snapshot's price, or None. A lastGoodPrice of 38 digits or more, or one at
    which the system's collateral is worth 38 digits of LUSD units (each trove's at most that), leaves its figures
    past what a HUGEINT holds; past 2^256, Liquity's own getTCR reverts, and with it every liquidation and borrower
    operation (each checks Recovery Mode): the deployment is frozen. Liquity V1's own PriceFeed bounds its answer (a
    Chainlink move over 50 % falls back to Tellor); a fork's feed may not. The market then fails in this one line,
    its stored snapshot left as it was."""
    price, coll = system.price, entire_system_coll(system)
    worth = coll * price // WAD
    if price < HUGEINT_LIMIT and worth < HUGEINT_LIMIT:
        return None
    frozen = ""
    if coll * price > MAX_UINT256:
        frozen = " and past 2^256 in TroveManager.getTCR, which reverts (every liquidation and trove operation too)"
    return (
        f"the PriceFeed {deployment.price_feed} answers lastGoodPrice {price}: the system's {coll} wei of collateral "
        f"are then worth {worth:.4e} LUSD units, past the 38 digits a HUGEINT holds{frozen}; no trove can be rated at "
        "this price, the market's stored snapshot is left as it was"
    )


ADAPTER = LiquityV1Adapter()
