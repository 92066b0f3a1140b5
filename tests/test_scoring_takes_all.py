"""The health engine's `liquidation_takes_all` positions column, on tiny frames by hand: a liquidation that takes the
whole position at once (Compound V3's absorb) seizes every collateral, the rest of the figures unchanged."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from chainrisk.scoring.health import position_values, prepare, wallet_health
from tests.rows import per_position

WAD = 10**18


def _positions(takes_all: bool | None) -> pl.DataFrame:
    """One Comet-like wallet: $100 of WETH (liquidate factor 0.90, credited at 0.95) against $92 of USDC debt, in
    8-decimal price units; `takes_all` None leaves the column out."""
    common = per_position("compound-v3", "0xcomet", "0xw")
    rows = [
        common
        | {
            "asset": "0xweth",
            "symbol": "WETH",
            "decimals": 18,
            "collateral_amount": 10**17,
            "debt_amount": 0,
            "price": 1_000 * 10**8,
            "price_scale": 10**18,
            "collateral_base": 100 * 10**8,
            "debt_base": 0,
            "ltv_bps": 8300,
            "liquidation_threshold_bps": 9000,
            "liquidation_threshold_wad": 9 * 10**17,
            "liquidation_bonus_bps": 10526,
            "liquidation_bonus_wad": (WAD * WAD + 95 * 10**16 // 2) // (95 * 10**16),
        },
        common
        | {
            "asset": "0xusdc",
            "symbol": "USDC",
            "decimals": 6,
            "collateral_amount": 0,
            "debt_amount": 92 * 10**6,
            "price": 10**8,
            "price_scale": 10**6,
            "collateral_base": 0,
            "debt_base": 92 * 10**8,
            "ltv_bps": 0,
            "liquidation_threshold_bps": 0,
            "liquidation_threshold_wad": 0,
            "liquidation_bonus_bps": 10000,
            "liquidation_bonus_wad": WAD,
        },
    ]
    frame = pl.DataFrame(rows, schema_overrides={"full_close_below_health": pl.Float64})
    return frame if takes_all is None else frame.with_columns(pl.lit(takes_all).alias("liquidation_takes_all"))


def _health(positions: pl.DataFrame) -> pl.DataFrame:
    valued = position_values(prepare(positions).with_columns(pl.col("price").alias("_price")))
    return wallet_health(valued).collect()


def test_a_liquidation_that_takes_all_seizes_every_collateral() -> None:
    partial, absent, whole = (_health(_positions(flag)) for flag in (False, None, True))
    # HF 90 / 92: liquidatable; $95 credited covers the $92 debt, so none of it is bad debt.
    assert whole["liquidatable"][0] and whole["health_factor"][0] == 90 / 92 and whole["bad_debt_usd"][0] == 0
    # Repaying $92 at a 1 / 0.95 bonus seizes $96.84 of the $100; absorb takes the whole $100 and credits $3.
    assert abs(partial["seizable_collateral_usd"][0] - 92 / 0.95) < 1e-9
    assert whole["seizable_collateral_usd"][0] == 100.0
    assert_frame_equal(partial, absent)
    assert_frame_equal(whole.drop("seizable_collateral_usd"), partial.drop("seizable_collateral_usd"))


def test_a_healthy_wallet_has_nothing_seized() -> None:
    healthy = _positions(True).with_columns(
        pl.when(pl.col("symbol") == "USDC").then(80 * 10**6).otherwise(pl.col("debt_amount")).alias("debt_amount"),
        pl.when(pl.col("symbol") == "USDC").then(80 * 10**8).otherwise(pl.col("debt_base")).alias("debt_base"),
    )
    health = _health(healthy)
    assert not health["liquidatable"][0] and health["seizable_collateral_usd"][0] == 0.0
