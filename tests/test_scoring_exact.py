"""The health engine at the edge of 1 and with thresholds that are not whole bps (Maker's 1 / mat), on tiny frames."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from chainrisk.scoring.snapshot import score_positions

WAD, RAY = 10**18, 10**27
#: Maker's ETH-A liquidation ratio, 145 %, as the per-position threshold the adapter gives: floor(1e18 / 1.45).
THRESHOLD = WAD * RAY // (145 * RAY // 100)


def _rows(collateral: int, debt: int, threshold: int, amount: int = 10**20, price: int = 2_000 * WAD) -> pl.DataFrame:
    """One wallet: `amount` of a token priced `price` / 1e18 base units each, worth `collateral` base units at the
    snapshot, against `debt` base units of a stable debt."""
    common: dict[str, Any] = {
        "protocol": "maker",
        "chain_id": 1,
        "market": "ETH-A",
        "source": "0xlog",
        "wallet": "0xa",
        "block_number": 5,
        "block_timestamp": 100,
        "base_currency_usd": 1e-18,
        "health_rule": "per-position",
        "close_factor": 1.0,
        "full_close_below_health": None,
        "liquidation_bonus_bps": 11300,
        "liquidation_bonus_wad": 113 * WAD // 100,
    }
    bps = threshold // (WAD // 10_000)
    rows = [
        {
            **common,
            "asset": "0xweth",
            "symbol": "WETH",
            "decimals": 18,
            "collateral_amount": amount,
            "debt_amount": 0,
            "price": price,
            "price_scale": WAD,
            "price_usd": price / WAD,
            "collateral_base": collateral,
            "debt_base": 0,
            "liquidation_threshold_wad": threshold,
            "liquidation_threshold_bps": bps,
            "ltv_bps": bps,
            "used_as_collateral": True,
        },
        {
            **common,
            "asset": "0xdai",
            "symbol": "DAI",
            "decimals": 18,
            "collateral_amount": 0,
            "debt_amount": debt,
            "price": WAD,
            "price_scale": WAD,
            "price_usd": 1.0,
            "collateral_base": 0,
            "debt_base": debt,
            "liquidation_threshold_wad": 0,
            "liquidation_threshold_bps": 0,
            "ltv_bps": 0,
            "used_as_collateral": False,
        },
    ]
    exact = ("collateral_amount", "debt_amount", "price", "price_scale", "collateral_base", "debt_base")
    return pl.DataFrame(
        rows,
        schema_overrides={
            **{c: pl.Int128 for c in exact},
            "liquidation_threshold_wad": pl.Int128,
            "liquidation_bonus_wad": pl.Int128,
            "full_close_below_health": pl.Float64,
        },
    )


@pytest.mark.parametrize(("short", "liquidatable"), [(1, True), (0, False)], ids=["one unit short", "exactly 1"])
def test_health_factor_below_one_exactly_when_the_integers_are(short: int, liquidatable: bool) -> None:
    """Threshold-adjusted collateral one unit short of a 1e25-unit debt: the float ratio rounds to 1.0, yet the
    wallet is liquidatable (Maker's bark takes it); at exactly the debt it is not."""
    debt = 10**25 + 12_345
    positions = _rows(collateral=debt - short, debt=debt, threshold=WAD)
    risk = score_positions(positions)["wallet_risk"].row(0, named=True)
    assert (risk["health_factor"] < 1) is liquidatable
    assert risk["liquidatable"] is liquidatable
    assert risk["health_factor"] == pytest.approx(1.0, abs=1e-15)


def test_liquidation_price_honours_a_threshold_finer_than_a_bps() -> None:
    """At 1 / 1.45 (6,896.55... bps) the price where HF reaches 1 is debt * 1.45 / amount, not debt / 0.6896."""
    amount, debt = 10**20, 100_000 * WAD
    positions = _rows(collateral=amount * 2_000, debt=debt, threshold=THRESHOLD, amount=amount)
    prices = score_positions(positions)["position_risk"].filter(pl.col("symbol") == "WETH")
    expected = debt / amount * 1.45  # USD per whole token
    assert prices["liquidation_price_usd"][0] == pytest.approx(expected, rel=1e-12)
