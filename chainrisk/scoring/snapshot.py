"""The score tables of one snapshot's positions (pure: frames in, frames out): wallet_risk, position_risk,
liquidation_curve, wallet_portfolio and scored_markets, as `chainrisk score` stores them."""

from __future__ import annotations

import polars as pl

from chainrisk.scoring.health import liquidation_curve, liquidation_prices, value_positions, wallet_health
from chainrisk.scoring.portfolio import wallet_portfolio


def wallet_and_position_risk(positions: pl.DataFrame) -> tuple[pl.LazyFrame, pl.DataFrame, pl.DataFrame]:
    """The valued positions, wallet_risk and position_risk of a positions frame (pure: no I/O); what the credit
    history samples need, without the liquidation curve, which costs most of a score's time."""
    valued = value_positions(positions).collect().lazy()
    health = wallet_health(valued)
    wallet_risk = health.select(
        "protocol",
        "chain_id",
        "market",
        "wallet",
        "block_number",
        "block_timestamp",
        "collateral_usd",
        "debt_usd",
        "health_factor",
        "ltv_used",
        "borrowing_power_usd",
        "distance_to_liquidation",
        "liquidatable",
        "close_factor",
        "liquidatable_debt_usd",
        "seizable_collateral_usd",
        "bad_debt_usd",
        pl.col("liquidation_threshold_bps").cast(pl.Int32),
        pl.col("ltv_bps").cast(pl.Int32),
    ).collect()
    position_risk = (
        liquidation_prices(valued)
        .rename(
            {
                "group": "price_group",
                "collateral_usd_now": "collateral_usd",
                "debt_usd_now": "debt_usd",
                "price_usd_now": "price_usd",
            }
        )
        .collect()
    )
    return valued, wallet_risk, position_risk


def score_positions(positions: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The result frames for a positions frame (pure: no I/O)."""
    valued, wallet_risk, position_risk = wallet_and_position_risk(positions)
    return {
        "wallet_risk": wallet_risk,
        "position_risk": position_risk,
        "liquidation_curve": liquidation_curve(valued),
        "wallet_portfolio": wallet_portfolio(wallet_risk),
        "scored_markets": positions.group_by("protocol", "chain_id", "market")
        .agg(
            pl.col("source").first(),
            pl.col("block_number").max(),
            pl.col("block_timestamp").max(),
            pl.col("wallet").n_unique().alias("wallets"),
        )
        .sort("protocol", "chain_id", "market"),
    }
