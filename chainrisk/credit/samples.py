"""The credit history's rows for one sampled block (pure): health samples (for the one wallet_health_history),
holdings by base asset, asset prices and look-through, from the positions read at that block and the asset graph
read there; and the sampling grid."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from chainrisk.chains.graph import base_token
from chainrisk.chains.lookthrough import chain_frames
from chainrisk.scoring.snapshot import wallet_and_position_risk


def grid(first_ts: int, last_ts: int, every_s: int) -> list[int]:
    """Times on a grid of `every_s` aligned to the Unix epoch (midnight UTC for a day), from the first grid time at
    or after `first_ts` through `last_ts`."""
    start = -(-first_ts // every_s) * every_s
    return list(range(start, last_ts + 1, every_s))


def sample_frames(
    positions: pl.DataFrame, links: dict[str, Any], convert: Callable[..., Any], block_ts: int
) -> dict[str, pl.DataFrame]:
    """The history tables' rows for one block's positions (pure, given the graph and its converter)."""
    _, wallet_risk, position_risk = wallet_and_position_risk(positions)
    health = wallet_risk.select(
        "protocol",
        "chain_id",
        "market",
        "wallet",
        "block_number",
        "block_timestamp",
        pl.col("collateral_usd").fill_null(0.0),
        pl.col("debt_usd").fill_null(0.0),
        "health_factor",
        pl.col("borrowing_power_usd").fill_null(0.0),
        "bad_debt_usd",
        "liquidation_threshold_bps",
        "ltv_bps",
        "liquidatable",
    )
    assets = sorted(set(positions["asset"].to_list()))
    bases = {}
    for asset in assets:
        token = base_token(links, asset)
        bases[asset] = token.address if token is not None else asset
    holdings = position_risk.filter((pl.col("collateral_usd") > 0) | (pl.col("debt_usd") > 0)).select(
        "protocol",
        "chain_id",
        "market",
        "wallet",
        "block_number",
        "asset",
        "symbol",
        pl.col("asset").replace_strict(bases, return_dtype=pl.Utf8).alias("base_asset"),
        "collateral_usd",
        "debt_usd",
    )
    prices = (
        positions.filter(pl.col("price_usd").is_not_null())
        .group_by("chain_id", "asset", maintain_order=True)  # each asset priced from its first (sorted) row
        .agg(pl.col("symbol").first(), pl.col("decimals").first(), pl.col("price_usd").first())
        .with_columns(
            pl.lit(int(positions["block_number"].max()), pl.Int64).alias("block_number"),  # type: ignore[arg-type]
            pl.lit(block_ts, pl.Int64).alias("block_timestamp"),
        )
        .sort("asset")
    )
    look = chain_frames(positions, links, convert, wallet_risk)["wallet_lookthrough"].select(
        "chain_id", "block_number", "wallet", "loop_leverage", "max_depth", "chained_usd"
    )
    return {
        "wallet_health_history": health,
        "holdings_history": holdings,
        "asset_price_history": prices,
        "lookthrough_history": look,
    }
