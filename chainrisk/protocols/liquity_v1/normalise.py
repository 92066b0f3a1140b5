"""Turns Liquity V1 records into its raw frames and the shared `positions` / `wallet_health` contract.

The risk-isolated `market` is the TroveManager (one ETH/LUSD system); `wallet` is the borrower. Each active trove
is two positions: its ETH (debt and collateral with pending redistribution rewards, as getEntireDebtAndColl gives
them) and its LUSD debt, valued at face value as TroveManager does. The health rule is `collateral-ratio`:
`liquidation_threshold_wad` holds the ratio the trove's ICR (LiquityMath._computeCR) is held to, so that
health_factor = ICR / ratio < 1 exactly when TroveManager.liquidate accepts the trove: MCR, except in Recovery Mode
for the troves liquidate then takes above MCR (MCR <= ICR < TCR, debt covered by the Stability Pool), held to CCR,
which they are below. The base currency is 1 / m of an LUSD wei with m = 1e18 / gcd(MCR, CCR, 1e18) (10 for
Liquity's 1.1 and 1.5): both ratios times a debt are then whole base units, so the engine's integer comparison
floor(collateral_base * 1e18 / ratio) < debt_base equals coll * price < ratio * debt, the chain's.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import polars as pl

from chainrisk.protocols.frames import (
    EXACT,
    HEALTH_SCHEMA,
    HEALTH_WAD_CAP,
    POSITION_SCHEMA,
    exact,
    keyed,
    markets_frame,
)
from chainrisk.protocols.liquity_v1.constants import ETH_ADDRESS, ETH_DECIMALS, ETH_SYMBOL, PROTOCOL
from chainrisk.protocols.liquity_v1.events import TroveEvent
from chainrisk.protocols.liquity_v1.maths import (
    ACTIVE,
    DECIMAL_PRECISION,
    BatchOutcome,
    Entire,
    Params,
    System,
    Trove,
    batch_liquidate,
    borrowing_rate,
    compute_cr,
    compute_nominal_cr,
    decayed_base_rate,
    entire_debt_and_coll,
    entire_system_coll,
    entire_system_debt,
    keeper_order,
    liquidatable,
    liquidatable_normal_mode,
    liquidatable_recovery_mode,
    price_for_ratio,
    recovery_mode,
    tcr,
)
from chainrisk.protocols.liquity_v1.snapshot import Deployment

WAD = DECIMAL_PRECISION
BPS = 10_000
#: The engine's rule for troves (chainrisk.protocols.adapter.HEALTH_RULES).
HEALTH_RULE = "collateral-ratio"

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "block_number": pl.Int64(),
    "block_hash": pl.Utf8(),
    "tx_hash": pl.Utf8(),
    "log_index": pl.Int32(),
    "event": pl.Utf8(),
    "emitter": pl.Utf8(),
    "wallet": pl.Utf8(),
    "debt": EXACT(),
    "coll": EXACT(),
    "stake": EXACT(),
    "operation": pl.Int32(),
    "operation_name": pl.Utf8(),
    "liquidator": pl.Utf8(),
    "gas_compensation_lusd": EXACT(),
    "gas_compensation_eth": EXACT(),
}


def events_frame(events: list[TroveEvent]) -> pl.DataFrame:
    columns = {name: [getattr(e, name) for e in events] for name in EVENT_SCHEMA}
    return exact(pl.DataFrame(columns, schema=EVENT_SCHEMA))


def base_units_per_lusd_wei(system: System) -> int:
    """m = 1e18 / gcd(MCR, CCR, 1e18): ratio * debt * m / 1e18 is then a whole number for both ratios."""
    return WAD // math.gcd(math.gcd(system.params.mcr, system.params.ccr), WAD)


def _bps(ratio: int) -> int:
    """The threshold that a collateral ratio amounts to, in bps, rounded half up: 1e4 / ratio (MCR 1.1: 9091)."""
    return (2 * BPS * WAD + ratio) // (2 * ratio)


def _ratio_held_to(icr: int, entire: Entire, system: System, in_recovery: bool) -> int:
    """MCR, or CCR for the troves Recovery Mode exposes above MCR (see the module docstring)."""
    params = system.params
    if in_recovery and icr >= params.mcr and liquidatable_recovery_mode(icr, entire.debt, system, system.price):
        return params.ccr
    return params.mcr


def _prediction(system: System, troves: list[Trove]) -> tuple[list[str], BatchOutcome]:
    """The batch a keeper would send now (maths.keeper_order) through batchLiquidateTroves at the snapshot's price."""
    by_wallet = {t.wallet: t for t in troves}
    order = keeper_order(system, by_wallet, system.price)
    return order, batch_liquidate(system, by_wallet, order, system.price)


def state_from_tables(system_row: dict[str, Any], trove_rows: list[dict[str, Any]]) -> tuple[System, dict[str, Trove]]:
    """The System and Troves of one snapshot back from raw_liquity_v1_system and raw_liquity_v1_troves rows (as
    dicts), for models that replay liquidations on it (maths.liquidation_rounds at a shocked price)."""
    r = {k: int(v) if isinstance(v, Decimal) else v for k, v in system_row.items()}
    params = Params(r["mcr"], r["ccr"], r["lusd_gas_compensation"], r["percent_divisor"])
    system = System(
        params=params,
        price=r["price"],
        active_eth=r["active_pool_eth"],
        active_debt=r["active_pool_debt"],
        default_eth=r["default_pool_eth"],
        default_debt=r["default_pool_debt"],
        sp_lusd=r["stability_pool_lusd"],
        sp_eth=r["stability_pool_eth"],
        total_stakes=r["total_stakes"],
        total_stakes_snapshot=r["total_stakes_snapshot"],
        total_collateral_snapshot=r["total_collateral_snapshot"],
        l_eth=r["l_eth"],
        l_lusd_debt=r["l_lusd_debt"],
        last_eth_error=r["last_eth_error_redistribution"],
        last_lusd_debt_error=r["last_lusd_debt_error_redistribution"],
        trove_owners=r["trove_owners"],
        sorted_troves=r["sorted_troves_size"],
        base_rate=r["base_rate"],
        last_fee_operation_time=r["last_fee_operation_time"],
    )
    troves = {
        t["wallet"]: Trove(
            t["wallet"],
            int(t["debt"]),
            int(t["coll"]),
            int(t["stake"]),
            int(t["status"]),
            int(t["array_index"]),
            int(t["snapshot_eth"]),
            int(t["snapshot_lusd_debt"]),
        )
        for t in trove_rows
    }
    return system, troves


def troves_frame(
    system: System, troves: list[Trove], order: list[str], outcome: BatchOutcome, chain_id: int, source: str, block: int
) -> pl.DataFrame:
    """raw_liquity_v1_troves: every active trove as stored, with pending rewards, ICR, the verdicts, and its part in
    the predicted batch (liquidated: what goes where; surviving: what redistribution adds to it)."""
    params, price = system.params, system.price
    in_recovery = recovery_mode(system, price)
    rank = {w: k for k, w in enumerate(order)}
    rows = []
    for t in troves:
        if t.status != ACTIVE:
            continue
        e = entire_debt_and_coll(t, system.l_eth, system.l_lusd_debt)
        icr = compute_cr(e.coll, e.debt, price)
        ratio = _ratio_held_to(icr, e, system, in_recovery)
        gone = outcome.liquidated.get(t.wallet)
        received = outcome.redistributed.get(t.wallet, (0, 0))
        penalty = None
        if gone is not None:
            kept = gone.entire_coll - gone.coll_surplus
            penalty = kept * price // WAD - gone.entire_debt
        rows.append(
            {
                "wallet": t.wallet,
                "status": t.status,
                "debt": t.debt,
                "coll": t.coll,
                "stake": t.stake,
                "array_index": t.array_index,
                "snapshot_eth": t.snapshot_eth,
                "snapshot_lusd_debt": t.snapshot_lusd_debt,
                "pending_lusd_debt": e.pending_debt,
                "pending_eth": e.pending_coll,
                "entire_debt": e.debt,
                "entire_coll": e.coll,
                "icr": icr,
                "nicr": compute_nominal_cr(e.coll, e.debt),
                "ratio_held_to": ratio,
                "health_factor_wad": min(icr * WAD // ratio, HEALTH_WAD_CAP),
                "liquidation_price": price_for_ratio(e.coll, e.debt, params.mcr),
                "liquidatable_normal_mode": liquidatable_normal_mode(icr, system.trove_owners, params),
                "liquidatable_recovery_mode": liquidatable_recovery_mode(icr, e.debt, system, price),
                "liquidatable": liquidatable(icr, e.debt, system, price),
                "batch_rank": rank.get(t.wallet),
                "batch_liquidated": gone is not None,
                "batch_in_recovery_mode": gone.recovery_mode if gone else None,
                "coll_gas_compensation": gone.coll_gas_compensation if gone else None,
                "lusd_gas_compensation": gone.lusd_gas_compensation if gone else None,
                "debt_to_offset": gone.debt_to_offset if gone else None,
                "coll_to_stability_pool": gone.coll_to_send_to_sp if gone else None,
                "debt_to_redistribute": gone.debt_to_redistribute if gone else None,
                "coll_to_redistribute": gone.coll_to_redistribute if gone else None,
                "coll_surplus": gone.coll_surplus if gone else None,
                "liquidation_penalty": penalty,
                "redistributed_debt": received[0] if gone is None else None,
                "redistributed_coll": received[1] if gone is None else None,
            }
        )
    exact_columns = (
        "debt",
        "coll",
        "stake",
        "array_index",
        "snapshot_eth",
        "snapshot_lusd_debt",
        "pending_lusd_debt",
        "pending_eth",
        "entire_debt",
        "entire_coll",
        "icr",
        "nicr",
        "ratio_held_to",
        "health_factor_wad",
        "liquidation_price",
        "coll_gas_compensation",
        "lusd_gas_compensation",
        "debt_to_offset",
        "coll_to_stability_pool",
        "debt_to_redistribute",
        "coll_to_redistribute",
        "coll_surplus",
        "liquidation_penalty",
        "redistributed_debt",
        "redistributed_coll",
    )
    schema: dict[str, Any] = {
        "wallet": pl.Utf8,
        "status": pl.Int32,
        **dict.fromkeys(exact_columns, EXACT),
        "liquidatable_normal_mode": pl.Boolean,
        "liquidatable_recovery_mode": pl.Boolean,
        "liquidatable": pl.Boolean,
        "batch_rank": pl.Int32,
        "batch_liquidated": pl.Boolean,
        "batch_in_recovery_mode": pl.Boolean,
    }
    frame = pl.DataFrame(rows, schema=schema).select(list(schema))
    return keyed(frame, chain_id, source, block)


def system_frame(
    deployment: Deployment, system: System, outcome: BatchOutcome, chain_id: int, block: int, timestamp: int
) -> pl.DataFrame:
    """raw_liquity_v1_system: one row per snapshot: the system's state, TCR and Recovery Mode, the Stability Pool,
    stakes and L terms, base rate, and the predicted batch's totals and state after."""
    params, price = system.params, system.price
    coll, debt = entire_system_coll(system), entire_system_debt(system)
    rm_price = price_for_ratio(coll, debt, params.ccr) if debt else None
    after = outcome.system
    base_rate_now = decayed_base_rate(system.base_rate, system.last_fee_operation_time, timestamp)

    def total(name: str) -> int:
        return sum(getattr(v, name) for v in outcome.liquidated.values())

    row = {
        "trove_manager": deployment.trove_manager,
        "borrower_operations": deployment.borrower_operations,
        "price_feed": deployment.price_feed,
        "stability_pool": deployment.stability_pool,
        "active_pool": deployment.active_pool,
        "default_pool": deployment.default_pool,
        "sorted_troves": deployment.sorted_troves,
        "lusd_token": deployment.lusd_token,
        "mcr": params.mcr,
        "ccr": params.ccr,
        "lusd_gas_compensation": params.lusd_gas_compensation,
        "percent_divisor": params.percent_divisor,
        "price": price,
        "active_pool_eth": system.active_eth,
        "active_pool_debt": system.active_debt,
        "default_pool_eth": system.default_eth,
        "default_pool_debt": system.default_debt,
        "entire_system_coll": coll,
        "entire_system_debt": debt,
        "tcr": tcr(system, price) if debt else None,
        "recovery_mode": recovery_mode(system, price),
        "recovery_mode_price": rm_price,
        "recovery_mode_distance": 1 - rm_price / price if rm_price is not None and price else None,
        "stability_pool_lusd": system.sp_lusd,
        "stability_pool_eth": system.sp_eth,
        "total_stakes": system.total_stakes,
        "total_stakes_snapshot": system.total_stakes_snapshot,
        "total_collateral_snapshot": system.total_collateral_snapshot,
        "l_eth": system.l_eth,
        "l_lusd_debt": system.l_lusd_debt,
        "last_eth_error_redistribution": system.last_eth_error,
        "last_lusd_debt_error_redistribution": system.last_lusd_debt_error,
        "trove_owners": system.trove_owners,
        "sorted_troves_size": system.sorted_troves,
        "base_rate": system.base_rate,
        "last_fee_operation_time": system.last_fee_operation_time,
        "base_rate_decayed": base_rate_now,
        "borrowing_rate": borrowing_rate(base_rate_now),
        "batch_reverted": outcome.reverted,
        "batch_liquidations": len(outcome.liquidated),
        "batch_debt": total("entire_debt"),
        "batch_coll": total("entire_coll"),
        "batch_debt_to_offset": total("debt_to_offset"),
        "batch_coll_to_stability_pool": total("coll_to_send_to_sp"),
        "batch_debt_to_redistribute": total("debt_to_redistribute"),
        "batch_coll_to_redistribute": total("coll_to_redistribute"),
        "batch_coll_gas_compensation": total("coll_gas_compensation"),
        "batch_lusd_gas_compensation": total("lusd_gas_compensation"),
        "batch_coll_surplus": total("coll_surplus"),
        "l_eth_after": after.l_eth if after else None,
        "l_lusd_debt_after": after.l_lusd_debt if after else None,
        "stability_pool_lusd_after": after.sp_lusd if after else None,
        "total_stakes_after": after.total_stakes if after else None,
        "tcr_after": tcr(after, price) if after and entire_system_debt(after) else None,
    }
    floats = ("recovery_mode_distance",)
    texts = (
        "trove_manager",
        "borrower_operations",
        "price_feed",
        "stability_pool",
        "active_pool",
        "default_pool",
        "sorted_troves",
        "lusd_token",
        "batch_reverted",
    )
    schema: dict[str, Any] = {
        k: (
            pl.Float64
            if k in floats
            else pl.Utf8
            if k in texts
            else pl.Boolean
            if k == "recovery_mode"
            else pl.Int32
            if k in ("trove_owners", "sorted_troves_size", "batch_liquidations")
            else pl.Int64
            if k == "last_fee_operation_time"
            else EXACT
        )
        for k in row
    }
    return keyed(pl.DataFrame([row], schema=schema), chain_id, deployment.trove_manager, block)


def contract_frames(
    deployment: Deployment, system: System, troves: list[Trove], chain_id: int, block: int, timestamp: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(positions, wallet_health) of every active trove at the snapshot's price (lastGoodPrice).

    The liquidation bonus is P / (P - 1) with P = PERCENT_DIVISOR (200/199): a liquidation takes all of a trove's
    collateral and pays 1/P of it to the liquidator, so the absorbers (Stability Pool depositors, then the other
    troves by redistribution) lose debt - (1 - 1/P) x collateral where that is positive, which is the engine's
    bad debt."""
    params, price = system.params, system.price
    m = base_units_per_lusd_wei(system)
    in_recovery = recovery_mode(system, price)
    borrow_ratio = params.ccr if in_recovery else params.mcr  # what BorrowerOperations requires of new debt
    base_usd = 1.0 / (10**deployment.lusd_decimals * m)
    p = params.percent_divisor
    bonus_wad = WAD * p // (p - 1)
    rows: list[dict[str, object]] = []
    health: list[dict[str, object]] = []
    for t in troves:
        if t.status != ACTIVE:
            continue
        e = entire_debt_and_coll(t, system.l_eth, system.l_lusd_debt)
        icr = compute_cr(e.coll, e.debt, price)
        ratio = _ratio_held_to(icr, e, system, in_recovery)
        collateral_base = e.coll * price * m // WAD
        debt_base = e.debt * m
        collateral_usd, debt_usd = collateral_base * base_usd, debt_base * base_usd
        common = {
            "market": deployment.trove_manager,
            "wallet": t.wallet,
            "base_currency_usd": base_usd,
            "liquidation_threshold_wad": ratio,
            "liquidation_bonus_bps": BPS * p // (p - 1),
            "liquidation_bonus_wad": bonus_wad,
            # TroveManager._liquidateNormalMode (and recovery mode's ICR < MCR branches) close the whole trove: all
            # of its collateral leaves it, to the Stability Pool or the other troves, also at a shocked price. Only a
            # trove recovery mode exposes above MCR (held to CCR) has it capped at MCR x debt
            # (_getCappedOffsetVals), the rest left for its owner to claim.
            "liquidation_takes_all": ratio == params.mcr,
        }
        rows.append(
            {
                **common,
                "asset": ETH_ADDRESS,
                "symbol": ETH_SYMBOL,
                "decimals": ETH_DECIMALS,
                "supplied_amount": e.coll,
                "collateral_amount": e.coll,
                "debt_amount": 0,
                "used_as_collateral": True,
                "is_borrowing": False,
                "price": price,
                "price_scale": WAD // m,
                "price_usd": price / WAD,
                "collateral_base": collateral_base,
                "debt_base": 0,
                "supplied_usd": collateral_usd,
                "collateral_usd": collateral_usd,
                "debt_usd": 0.0,
                "ltv_bps": _bps(borrow_ratio),
                "liquidation_threshold_bps": _bps(ratio),
            }
        )
        rows.append(
            {
                **common,
                "asset": deployment.lusd_token,
                "symbol": deployment.lusd_symbol,
                "decimals": deployment.lusd_decimals,
                "supplied_amount": 0,
                "collateral_amount": 0,
                "debt_amount": e.debt,
                "used_as_collateral": False,
                "is_borrowing": True,
                "price": m,
                "price_scale": 1,
                "price_usd": 10**deployment.lusd_decimals * m * base_usd,
                "collateral_base": 0,
                "debt_base": debt_base,
                "supplied_usd": 0.0,
                "collateral_usd": 0.0,
                "debt_usd": debt_usd,
                "ltv_bps": 0,
                "liquidation_threshold_bps": 0,
            }
        )
        capacity = collateral_base * WAD // borrow_ratio
        health.append(
            {
                "market": deployment.trove_manager,
                "wallet": t.wallet,
                "collateral_usd": collateral_usd,
                "debt_usd": debt_usd,
                "health_factor": icr / ratio,
                "health_factor_wad": min(icr * WAD // ratio, HEALTH_WAD_CAP),
                "total_collateral_base": collateral_base,
                "total_debt_base": debt_base,
                "available_borrows_base": max(0, capacity - debt_base),
                "liquidation_threshold_bps": _bps(ratio),
                "ltv_bps": _bps(borrow_ratio),
            }
        )
    labels = [
        pl.lit(PROTOCOL).alias("protocol"),
        pl.lit(chain_id, pl.Int64).alias("chain_id"),
        pl.lit(deployment.trove_manager).alias("source"),
        pl.lit(block, pl.Int64).alias("block_number"),
        pl.lit(timestamp, pl.Int64).alias("block_timestamp"),
        pl.lit(0, pl.Int32).alias("emode_category"),
    ]
    schema = POSITION_SCHEMA | {"liquidation_takes_all": pl.Boolean()}
    position_frame = exact(pl.DataFrame(rows, schema=schema)).with_columns(
        *labels,
        pl.lit(HEALTH_RULE).alias("health_rule"),
        pl.lit(1.0).alias("close_factor"),
        pl.lit(None, pl.Float64).alias("full_close_below_health"),
        # The debt is LUSD at one dollar (ICR = coll * price / debt, the price ETH's): no market price of LUSD moves it.
        pl.col("is_borrowing").alias("price_fixed"),
    )
    health_frame = exact(pl.DataFrame(health, schema=HEALTH_SCHEMA)).with_columns(*labels)
    return position_frame, health_frame


def snapshot_frames(
    deployment: Deployment, system: System, troves: list[Trove], chain_id: int, block: int, timestamp: int
) -> dict[str, pl.DataFrame]:
    """Every table the snapshot writes: raw troves and system (with the predicted batch), positions, wallet_health."""
    order, outcome = _prediction(system, troves)
    positions, health = contract_frames(deployment, system, troves, chain_id, block, timestamp)
    return {
        "raw_liquity_v1_troves": troves_frame(
            system, troves, order, outcome, chain_id, deployment.trove_manager, block
        ),
        "raw_liquity_v1_system": system_frame(deployment, system, outcome, chain_id, block, timestamp),
        "positions": positions,
        "wallet_health": health,
        "markets": markets_frame(
            [market_row(deployment, system)], PROTOCOL, chain_id, deployment.trove_manager, block, timestamp
        ),
    }


def market_row(deployment: Deployment, system: System) -> dict[str, object]:
    """The TroveManager's `markets` row: its troves named by the stablecoin they mint, MCR as the parameter, bad
    debt beyond the Stability Pool redistributed to the other troves; `supply_amount` is the Stability Pool's LUSD
    (what absorbs liquidated debt first), `debt_amount` the system's debt (ActivePool + DefaultPool)."""
    mcr = (system.params.mcr * 1000 + WAD // 2) // WAD  # tenths of a percent, half up
    return {
        "market": deployment.trove_manager,
        "name": f"{deployment.lusd_symbol} troves" if deployment.lusd_symbol else None,
        "parameters": f"MCR {mcr // 10}.{mcr % 10}%",
        "loan_asset": deployment.lusd_token,
        "bad_debt_rule": "redistribution",
        "supply_amount": system.sp_lusd,
        "debt_amount": system.active_debt + system.default_debt,
    }
