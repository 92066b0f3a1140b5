"""Turns Morpho Blue records into its raw frames and the shared `positions` / `wallet_health` contract.

Each Morpho market is its own risk unit (`market` = the market id); its base currency is the loan token's
smallest unit, the oracle's price converts collateral into it (`price_scale` = 1e36), and USD figures come
from the loan token's USD price (or, failing that, the collateral's through the market's own oracle).
"""

from __future__ import annotations

from dataclasses import asdict

import polars as pl

from chainrisk.protocols.frames import EXACT, HEALTH_SCHEMA, HEALTH_WAD_CAP, POSITION_SCHEMA, exact, keyed
from chainrisk.protocols.morpho_blue.constants import ORACLE_PRICE_SCALE, WAD
from chainrisk.protocols.morpho_blue.events import MorphoEvent
from chainrisk.protocols.morpho_blue.maths import (
    HEALTHY,
    Liquidation,
    health_factor_wad,
    liquidate_most,
    liquidation_incentive_factor,
    max_borrow,
    priced_value,
    to_assets_down,
    to_assets_up,
)
from chainrisk.protocols.morpho_blue.snapshot import Deployment, Market, Position
from chainrisk.protocols.quality import Issue
from chainrisk.units import HUGEINT_LIMIT, hugeint_or_none

PROTOCOL = "morpho-blue"
#: WAD per basis point, for the bps columns of the shared contract.
WAD_PER_BPS = WAD // 10_000

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "block_number": pl.Int64(),
    "block_hash": pl.Utf8(),
    "tx_hash": pl.Utf8(),
    "log_index": pl.Int32(),
    "event": pl.Utf8(),
    "market_id": pl.Utf8(),
    "wallet": pl.Utf8(),
    "caller": pl.Utf8(),
    "receiver": pl.Utf8(),
    "assets": EXACT(),
    "shares": EXACT(),
    "seized_assets": EXACT(),
    "bad_debt_assets": EXACT(),
    "bad_debt_shares": EXACT(),
    "rate": EXACT(),
    "loan_token": pl.Utf8(),
    "collateral_token": pl.Utf8(),
    "oracle": pl.Utf8(),
    "irm": pl.Utf8(),
    "lltv": EXACT(),
}


def events_frame(events: list[MorphoEvent]) -> pl.DataFrame:
    """The events' rows; an amount past the 38 digits a HUGEINT holds (a Supply of 2e32 units mints 2e38 shares) is
    NULL, unknown rather than refused with every other event of the range."""
    columns = {
        name: [hugeint_or_none(getattr(e, name)) if dtype == EXACT() else getattr(e, name) for e in events]
        for name, dtype in EVENT_SCHEMA.items()
    }
    return exact(pl.DataFrame(columns, schema=EVENT_SCHEMA))


def base_currency_usd(market: Market) -> float | None:
    """USD per loan-token unit: the loan token's USD price, else the collateral's through the market oracle; None
    when neither is known (a token without decimals() has no USD price per unit)."""
    if market.loan.price_usd is not None and market.loan.decimals is not None:
        return float(market.loan.price_usd / 10**market.loan.decimals)
    collateral = market.collateral
    if collateral is not None and collateral.price_usd is not None and collateral.decimals is not None and market.price:
        loan_units_per_collateral_token = market.price * 10**collateral.decimals / ORACLE_PRICE_SCALE
        return float(collateral.price_usd / loan_units_per_collateral_token)
    return None


def markets_frame(markets: list[Market], chain_id: int, source: str, block: int) -> pl.DataFrame:
    rows = []
    for m in markets:
        rows.append(
            {
                "market_id": m.params.market_id,
                "loan_token": m.params.loan_token,
                "collateral_token": m.params.collateral_token,
                "oracle": m.params.oracle,
                "irm": m.params.irm,
                "lltv": m.params.lltv,
                "loan_symbol": m.loan.symbol,
                "loan_decimals": m.loan.decimals,
                "collateral_symbol": m.collateral.symbol if m.collateral else None,
                "collateral_decimals": m.collateral.decimals if m.collateral else None,
                **asdict(m.state),
                "borrow_rate": m.borrow_rate,
                "rate_at_target": m.rate_at_target,
                **{f"accrued_{k}": v for k, v in asdict(m.accrued).items() if k.startswith("total")},
                "price": str(m.price) if m.price is not None else None,
                "price_float": float(m.price) if m.price is not None else None,
                "liquidation_incentive_factor": liquidation_incentive_factor(m.params.lltv),
                "loan_price_usd": m.loan.price_usd,
                "collateral_price_usd": m.collateral.price_usd if m.collateral else None,
                "base_currency_usd": base_currency_usd(m),
                "loan_usd_source": m.loan.usd_source,
                "collateral_usd_source": m.collateral.usd_source if m.collateral else None,
            }
        )
    exact_columns = (
        "lltv",
        "total_supply_assets",
        "total_supply_shares",
        "total_borrow_assets",
        "total_borrow_shares",
        "fee",
        "borrow_rate",
        "rate_at_target",
        "accrued_total_supply_assets",
        "accrued_total_supply_shares",
        "accrued_total_borrow_assets",
        "accrued_total_borrow_shares",
        "liquidation_incentive_factor",
    )
    frame = pl.DataFrame(
        rows,
        schema_overrides={
            **{c: EXACT for c in exact_columns},
            "last_update": pl.Int64,
            "loan_decimals": pl.Int32,
            "collateral_decimals": pl.Int32,
            "collateral_symbol": pl.Utf8,
            "loan_price_usd": pl.Float64,
            "collateral_price_usd": pl.Float64,
            "base_currency_usd": pl.Float64,
            "loan_usd_source": pl.Utf8,
            "collateral_usd_source": pl.Utf8,
            "price": pl.Utf8,
            "price_float": pl.Float64,
        },
        infer_schema_length=None,
    )
    return keyed(frame, chain_id, source, block)


def market_rows(markets: list[Market]) -> list[dict[str, object]]:
    """Each market's `markets` row: named by its collateral and loan symbols, LLTV as its parameter, bad debt
    socialised to its suppliers, supply and borrow assets accrued to the block."""
    rows: list[dict[str, object]] = []
    for m in markets:
        collateral = m.collateral.symbol if m.collateral else None
        tenths = (m.params.lltv + 5 * 10**14) // 10**15  # WAD to tenths of a percent, half up
        rows.append(
            {
                "market": m.params.market_id,
                "name": f"{collateral}/{m.loan.symbol}" if collateral and m.loan.symbol else None,
                "parameters": f"LLTV {tenths // 10}.{tenths % 10}%",
                "loan_asset": m.params.loan_token,
                "bad_debt_rule": "suppliers",
                "supply_amount": m.accrued.total_supply_assets,
                "debt_amount": m.accrued.total_borrow_assets,
            }
        )
    return rows


def positions_frame(positions: list[Position], chain_id: int, source: str, block: int) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "market_id": [p.market_id for p in positions],
            "wallet": [p.wallet for p in positions],
            "supply_shares": [p.supply_shares for p in positions],
            "borrow_shares": [p.borrow_shares for p in positions],
            "collateral": [p.collateral for p in positions],
        },
        schema={
            "market_id": pl.Utf8,
            "wallet": pl.Utf8,
            "supply_shares": EXACT,
            "borrow_shares": EXACT,
            "collateral": EXACT,
        },
    )
    return keyed(frame, chain_id, source, block)


LIQUIDATION_SCHEMA: dict[str, pl.DataType] = {
    "market_id": pl.Utf8(),
    "wallet": pl.Utf8(),
    "health_factor_wad": EXACT(),
    "error": pl.Utf8(),
    "repaid_shares": EXACT(),
    "repaid_assets": EXACT(),
    "seized_assets": EXACT(),
    "bad_debt_shares": EXACT(),
    "bad_debt_assets": EXACT(),
}


def liquidations_frame(
    markets: list[Market], positions: list[Position], chain_id: int, source: str, block: int
) -> pl.DataFrame:
    """raw_morpho_blue_liquidations: per borrower Morpho._isHealthy calls unhealthy at the accrued market state, what
    the largest Morpho.liquidate call would do now (maths.liquidate_most), or why it reverts. A market whose interest
    is unknown (its IRM failing) or whose oracle gives no price lists none: the borrowers' health is not known."""
    by_id = {m.params.market_id: m for m in markets}
    rows: list[dict[str, object]] = []
    for p in positions:
        m = by_id[p.market_id]
        # Without a price Morpho cannot tell the position's health (liquidate reverts with the oracle, or on a
        # collateral value past 2^256): not a call to list, the market's data_quality row says why.
        price = m.price
        if not p.borrow_shares or not m.interest_known or price is None or priced_value(p.collateral, price) is None:
            continue
        s = m.accrued
        outcome = liquidate_most(p.collateral, p.borrow_shares, s, price, m.params.lltv)
        if outcome == HEALTHY:
            continue
        done = outcome if isinstance(outcome, Liquidation) else None
        borrowed = to_assets_up(p.borrow_shares, s.total_borrow_assets, s.total_borrow_shares)
        hf = health_factor_wad(borrowed, p.collateral, price, m.params.lltv)
        rows.append(
            {
                "market_id": p.market_id,
                "wallet": p.wallet,
                "health_factor_wad": hf,
                "error": outcome if isinstance(outcome, str) else None,
                "repaid_shares": done.repaid_shares if done else None,
                "repaid_assets": done.repaid_assets if done else None,
                "seized_assets": done.seized_assets if done else None,
                "bad_debt_shares": done.bad_debt_shares if done else None,
                "bad_debt_assets": done.bad_debt_assets if done else None,
            }
        )
    return keyed(exact(pl.DataFrame(rows, schema=LIQUIDATION_SCHEMA)), chain_id, source, block)


def _stored_value(collateral: int, price: int | None) -> int | None:
    """The collateral's value in loan units as `positions.collateral_base` stores it: Morpho's own (priced_value)
    where a HUGEINT holds it, else None."""
    return hugeint_or_none(priced_value(collateral, price))


def oversized_markets(markets: list[Market], positions: list[Position]) -> dict[str, str]:
    """Markets a raw table cannot hold, by id, with what passes: Morpho keeps totals, borrow shares and collateral in
    uint128 and supply shares in uint256, a HUGEINT holds 38 digits (2^127). Anyone can make one: a first supply of
    2e32 units of any token mints 2e38 shares (1e6 virtual shares a unit)."""
    found: dict[str, str] = {}

    def check(market: str, name: str, value: int | None) -> None:
        if market not in found and value is not None and hugeint_or_none(value) is None:
            found[market] = f"{name} {value:.4e}"

    for m in markets:
        key = m.params.market_id
        for name, value in (*asdict(m.state).items(), *asdict(m.accrued).items()):
            check(key, name, value)
        check(key, "borrow_rate", m.borrow_rate)
        check(key, "rate_at_target", m.rate_at_target)
    for name in ("supply_shares", "borrow_shares", "collateral"):
        if positions and max(getattr(p, name) for p in positions) >= HUGEINT_LIMIT:  # rare: each only then
            for p in positions:
                check(p.market_id, f"a position's {name}", getattr(p, name))
    return found


def oversized_issues(markets: list[Market], oversized: dict[str, str]) -> list[Issue]:
    """One `amount_overflow` row per market of `oversized`: its raw state is not stored (its positions are, in token
    units, where each amount fits; a steady run reads them again rather than from the raw rows)."""
    return [
        Issue(
            m.params.market_id,
            m.params.loan_token,
            "amount_overflow",
            f"market {m.params.market_id}: {oversized[m.params.market_id]} passes the 38 digits a HUGEINT holds",
            "its raw state (shares and totals) and its past snapshots' rebuilt positions; positions whose own "
            "amount passes 38 digits",
        )
        for m in markets
        if m.params.market_id in oversized
    ]


def value_issues(markets: list[Market], positions: list[Position]) -> list[Issue]:
    """One `oracle_overflow` row per market whose oracle answers a price at which some position's collateral value
    cannot be had: Morpho's own health check overflows on it (collateral x price past 2^256), or the value passes the
    38 digits a HUGEINT holds. Those positions' value and their wallets' health are left unknown."""
    prices = {m.params.market_id: m.price for m in markets}
    counted: dict[str, int] = {}
    for p in positions:
        price = prices.get(p.market_id)
        if p.collateral and price is not None and _stored_value(p.collateral, price) is None:
            counted[p.market_id] = counted.get(p.market_id, 0) + 1
    issues = []
    for m in markets:
        if m.params.market_id in counted and m.price is not None:
            issues.append(
                Issue(
                    m.params.market_id,
                    m.params.oracle,
                    "oracle_overflow",
                    f"oracle {m.params.oracle}: price() answers {m.price:.4e} (1e36 = one loan unit per collateral "
                    f"unit); {counted[m.params.market_id]} position(s)' collateral value passes 2^256 in Morpho's own "
                    "health check (which then reverts) or 38 digits",
                    "those positions' collateral value (loan units and USD) and their wallets' health",
                )
            )
    return issues


def fit_price(price: int) -> tuple[int, int]:
    """(price, scale) with price / scale = price / ORACLE_PRICE_SCALE, both divided by the same power of ten
    when the oracle's price has more than 38 digits (HUGEINT's reach; e.g. BTC quoted in an 18-decimal loan
    token is ~1e50). The truncation is below 1e-37 relative; `collateral_base` keeps the exact value."""
    shift = max(0, len(str(price)) - 38)
    return price // 10**shift, ORACLE_PRICE_SCALE // 10**shift


def _usd(amount: int, usd_per_unit: float | None) -> float | None:
    return amount * usd_per_unit if usd_per_unit is not None else None


def contract_frames(
    markets: list[Market], positions: list[Position], deployment: Deployment, chain_id: int, block: int, timestamp: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(positions, wallet_health) at the accrued market state, with Morpho's own rounding directions:
    supply assets rounded down, borrow assets up (MorphoBalancesLib), collateral valued down (_isHealthy)."""
    by_id = {m.params.market_id: m for m in markets}
    rows: list[dict[str, object]] = []
    health: list[dict[str, object]] = []
    for p in positions:
        m = by_id[p.market_id]
        s = m.accrued
        supplied = to_assets_down(p.supply_shares, s.total_supply_assets, s.total_supply_shares)
        borrowed = to_assets_up(p.borrow_shares, s.total_borrow_assets, s.total_borrow_shares)
        if not (supplied or borrowed or p.collateral):
            continue
        if any(hugeint_or_none(x) is None for x in (supplied, borrowed, p.collateral)):
            continue  # an amount no column holds: the market's amount_overflow row says so
        usd_per_unit = base_currency_usd(m)
        # The oracle's value of the collateral in USD: unknown without a price, and a zero price is no USD figure.
        collateral_usd_per_unit = usd_per_unit if m.price else None
        lltv_bps = m.params.lltv // WAD_PER_BPS
        incentive = liquidation_incentive_factor(m.params.lltv)
        common = {
            "market": p.market_id,
            "wallet": p.wallet,
            "base_currency_usd": usd_per_unit,
            "liquidation_bonus_bps": incentive // WAD_PER_BPS,
            "liquidation_bonus_wad": incentive,
        }
        if supplied or borrowed:
            loan_usd = m.loan.price_usd
            if loan_usd is None and m.loan.decimals is not None:
                loan_usd = _usd(10**m.loan.decimals, usd_per_unit)
            rows.append(
                {
                    **common,
                    "asset": m.loan.address,
                    "symbol": m.loan.symbol,
                    "decimals": m.loan.decimals,
                    "supplied_amount": supplied,
                    "collateral_amount": 0,
                    "debt_amount": borrowed,
                    "used_as_collateral": False,
                    "is_borrowing": borrowed > 0,
                    "price": ORACLE_PRICE_SCALE,
                    "price_scale": ORACLE_PRICE_SCALE,
                    "price_usd": loan_usd,
                    "collateral_base": 0,
                    "debt_base": borrowed,
                    "supplied_usd": _usd(supplied, usd_per_unit),
                    "collateral_usd": 0.0,
                    "debt_usd": _usd(borrowed, usd_per_unit),
                    "ltv_bps": 0,
                    "liquidation_threshold_bps": 0,
                    "liquidation_threshold_wad": 0,
                }
            )
        # Morpho._isHealthy's collateral value; None where Morpho's own health check reverts (no price, or the
        # value past 2^256) and where no HUGEINT holds it (past 38 digits): value_issues names those markets.
        value = _stored_value(p.collateral, m.price)
        if p.collateral and m.collateral is not None:
            # No price: 0 in the exact price column (NOT NULL), and NULL in every figure it would give.
            price, scale = fit_price(m.price or 0)
            price_usd = None
            if m.price and collateral_usd_per_unit is not None and m.collateral.decimals is not None:
                price_usd = m.price * 10**m.collateral.decimals / ORACLE_PRICE_SCALE * collateral_usd_per_unit
            collateral_usd = _usd(value, collateral_usd_per_unit) if value is not None else None
            rows.append(
                {
                    **common,
                    "asset": m.collateral.address,
                    "symbol": m.collateral.symbol,
                    "decimals": m.collateral.decimals,
                    "supplied_amount": p.collateral,
                    "collateral_amount": p.collateral,
                    "debt_amount": 0,
                    "used_as_collateral": True,
                    "is_borrowing": False,
                    "price": price,
                    "price_scale": scale,
                    "price_usd": price_usd,
                    "collateral_base": value,
                    "debt_base": 0,
                    "supplied_usd": collateral_usd,
                    "collateral_usd": collateral_usd,
                    "debt_usd": 0.0,
                    "ltv_bps": lltv_bps,
                    "liquidation_threshold_bps": lltv_bps,
                    "liquidation_threshold_wad": m.params.lltv,
                }
            )
        if (value is None and (borrowed or p.collateral)) or (borrowed and not m.interest_known):
            # Morpho itself cannot tell this wallet's health (no price, or a frozen IRM with interest pending):
            # left out of wallet_health, the market's data_quality row says why.
            continue
        capacity = max_borrow(p.collateral, m.price or 0, m.params.lltv)
        hf = health_factor_wad(borrowed, p.collateral, m.price or 0, m.params.lltv)
        health.append(
            {
                "market": p.market_id,
                "wallet": p.wallet,
                "collateral_usd": _usd(value or 0, collateral_usd_per_unit if p.collateral else usd_per_unit),
                "debt_usd": _usd(borrowed, usd_per_unit),
                "health_factor": capacity / borrowed if borrowed else None,
                "health_factor_wad": min(hf, HEALTH_WAD_CAP) if hf is not None else None,
                "total_collateral_base": value or 0,
                "total_debt_base": borrowed,
                "available_borrows_base": max(0, capacity - borrowed),
                "liquidation_threshold_bps": lltv_bps,
                "ltv_bps": lltv_bps,
            }
        )
    labels = [
        pl.lit(PROTOCOL).alias("protocol"),
        pl.lit(chain_id, pl.Int64).alias("chain_id"),
        pl.lit(deployment.morpho).alias("source"),
        pl.lit(block, pl.Int64).alias("block_number"),
        pl.lit(timestamp, pl.Int64).alias("block_timestamp"),
        pl.lit(0, pl.Int32).alias("emode_category"),
    ]
    position_frame = exact(pl.DataFrame(rows, schema=POSITION_SCHEMA)).with_columns(
        *labels,
        pl.lit("per-position").alias("health_rule"),
        pl.lit(1.0).alias("close_factor"),
        pl.lit(None, pl.Float64).alias("full_close_below_health"),
    )
    health_frame = exact(pl.DataFrame(health, schema=HEALTH_SCHEMA)).with_columns(*labels)
    return position_frame, health_frame
