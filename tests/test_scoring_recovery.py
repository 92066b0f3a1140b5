"""The `liquidation_recovery_wad` positions column, on tiny frames by hand: bad debt is the debt less what the protocol
recovers by selling the collateral. A liquidator's bonus is a cost to the protocol (Aave, Morpho: 1 / bonus); Maker's
chop is not (the Clipper sells for tab = debt x chop and the penalty goes to the Vow), nor is all of the credit absorb
gives a Comet borrower (the store front sells above it). The engine, the curves, the VaR book, the backtest along a
path and the parameter advice's what-ifs all read it the same way."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from chainrisk.protocols.compound_v3.normalise import liquidation_bonus_wad, recovery_wad
from chainrisk.risk.advice import with_collateral_parameters
from chainrisk.risk.cascade import DepthCurve
from chainrisk.risk.liquidations import liquidate_along
from chainrisk.risk.var import build_book, wallet_outcomes
from chainrisk.scoring.health import liquidation_curve, stress, value_positions
from tests.rows import per_position

WAD = 10**18
CHOP = 113 * 10**16
#: Maker's 1 / mat for mat 145 %.
THRESHOLD = WAD * WAD // (145 * 10**16)


def _vault(wallet: str, collateral_usd: int, recovery: int | None, protocol: str = "maker") -> list[dict[str, Any]]:
    """One WETH vault worth `collateral_usd` against 100 DAI at par, threshold 1 / 1.45 and a 13 % chop, in 8-decimal
    base units."""
    common = per_position(protocol, "ETH-A", wallet) | {
        "ltv_bps": 6896,
        "liquidation_bonus_bps": 11300,
        "liquidation_bonus_wad": CHOP,
        "liquidation_recovery_wad": recovery,
    }
    return [
        common
        | {
            "asset": "0xweth",
            "symbol": "WETH",
            "collateral_amount": WAD,
            "debt_amount": 0,
            "price": collateral_usd * 10**8,
            "price_scale": WAD,
            "collateral_base": collateral_usd * 10**8,
            "debt_base": 0,
            "liquidation_threshold_bps": 6896,
            "liquidation_threshold_wad": THRESHOLD,
            "price_fixed": False,
        },
        common
        | {
            "asset": "0xdai",
            "symbol": "DAI",
            "collateral_amount": 0,
            "debt_amount": 100 * WAD,
            "price": 10**8,
            "price_scale": WAD,
            "collateral_base": 0,
            "debt_base": 100 * 10**8,
            "ltv_bps": 0,
            "liquidation_threshold_bps": 0,
            "liquidation_threshold_wad": 0,
            "price_fixed": True,
        },
    ]


#: Collateral worth less than the debt, between the debt and the tab (debt x chop), and above the tab; all three under
#: the 145 % line.
VALUES = {"0xunder": 90, "0xpenalty": 110, "0xabove": 120}


def _book(recovery: int | None = WAD, values: dict[str, int] = VALUES) -> pl.DataFrame:
    rows = [row for wallet, value in values.items() for row in _vault(wallet, value, recovery)]
    schema = {"full_close_below_health": pl.Float64, "liquidation_recovery_wad": pl.Int128, "decimals": pl.Int32}
    return pl.DataFrame(rows, schema_overrides=schema).with_columns(pl.lit(18, pl.Int32).alias("decimals"))


def _figures(book: pl.DataFrame) -> dict[str, tuple[float, float, float]]:
    """Per wallet: (bad debt, liquidatable debt, seized collateral)."""
    health = stress(book)
    assert health["liquidatable"].all()
    columns = ("wallet", "bad_debt_usd", "liquidatable_debt_usd", "seizable_collateral_usd")
    return {w: (b, d, s) for w, b, d, s in health.select(columns).iter_rows()}


def test_a_penalty_the_protocol_keeps_is_not_bad_debt() -> None:
    figures = _figures(_book())
    # Worth $90: the sale pays $90 of the $100; $10 is the Vow's loss, whatever the penalty.
    assert figures["0xunder"] == pytest.approx((10.0, 90.0, 90.0))
    # Worth $110 against a $113 tab: the debt is paid in full and the Vow misses $3 of penalty, not $100 - 110 / 1.13.
    assert figures["0xpenalty"] == pytest.approx((0.0, 100.0, 110.0))
    # Worth $120: the Clipper sells $113 of it and gives the rest back.
    assert figures["0xabove"] == pytest.approx((0.0, 100.0, 113.0))
    # Read as a liquidator's bonus (the column NULL: 1 / bonus, as Aave's and Morpho's are), the penalty is a loss.
    as_bonus = _figures(_book(recovery=None))
    assert as_bonus["0xpenalty"] == pytest.approx((100 - 110 / 1.13, 110 / 1.13, 110.0))
    assert as_bonus["0xunder"] == pytest.approx((100 - 90 / 1.13, 90 / 1.13, 90.0))
    without = _figures(_book().drop("liquidation_recovery_wad"))
    assert all(without[w] == pytest.approx(as_bonus[w]) for w in VALUES)
    # To the last bit: a NULL recovery is value / bonus, not value x (1 / bonus) ($87 / 1.13 and $87 x (1 / 1.13) are
    # two doubles), and a VaR book of such rows needs no second matrix.
    odd = _book(None, {"0xodd": 87})
    assert _figures(odd) == _figures(odd.drop("liquidation_recovery_wad"))
    linear = build_book(odd, {"WETH": "WETH"}, ["WETH"])
    assert linear.recovered is linear.recoverable


def test_comet_recovers_at_its_store_front_price() -> None:
    # compound-finance/comet test/quote-collateral-test.ts: storeFrontPriceFactor 0.5, liquidationFactor 0.6 quotes
    # COMP at $200 for $160 (Comet.quoteCollateral).
    assert recovery_wad(5 * 10**17, 6 * 10**17) == 8 * 10**17
    # liquidationFactor 0: absorb seizes it for nothing and the store front sells it at 1 - 0.5.
    assert recovery_wad(5 * 10**17, 0) == 5 * 10**17
    assert recovery_wad(0, 93 * 10**16) == WAD  # no store-front discount: it sells at the oracle's price
    # $110 of collateral absorbed at liquidationFactor 0.9 credits $99 of a $100 debt; the store front sells it at
    # 1 - 0.5 x 0.1 = 95 %, $104.5: the reserves lose nothing.
    comet = _book(recovery_wad(5 * 10**17, 9 * 10**17)).with_columns(
        pl.lit(liquidation_bonus_wad(9 * 10**17), pl.Int128).alias("liquidation_bonus_wad"),
        pl.lit(True).alias("liquidation_takes_all"),
    )
    figures = _figures(comet)
    assert figures["0xpenalty"] == pytest.approx((0.0, 100.0, 110.0))
    assert figures["0xunder"] == pytest.approx((100 - 90 * 0.95, 90 * 0.95, 90.0))


def test_the_curves_the_var_book_and_the_backtest_read_the_same_recovery() -> None:
    book = _book()
    engine = stress(book).sort("wallet")
    # The liquidation curve at no drop: the engine's bad debt over the market.
    curve = liquidation_curve(value_positions(book))
    at_zero = curve.filter((pl.col("market") == "ETH-A") & (pl.col("axis") == "WETH") & (pl.col("drop") == 0.0))
    assert at_zero["bad_debt_usd"].item() == pytest.approx(engine["bad_debt_usd"].sum())
    # The VaR book at the snapshot's prices: the engine's three figures per wallet.
    linear = build_book(book, {"WETH": "WETH"}, ["WETH"])
    assert linear.recovered is not linear.recoverable
    bad, repaid, seized, _ = wallet_outcomes(linear, np.array([[1.0]]))
    order = [linear.wallets["wallet"].to_list().index(w) for w in engine["wallet"].to_list()]
    assert bad[0, order] == pytest.approx(engine["bad_debt_usd"].to_numpy())
    assert repaid[0, order] == pytest.approx(engine["liquidatable_debt_usd"].to_numpy())
    assert seized[0, order] == pytest.approx(engine["seizable_collateral_usd"].to_numpy())
    # A book without a recovery of its own keeps one matrix for both.
    aave = build_book(_book(None), {"WETH": "WETH"}, ["WETH"])
    assert aave.recovered is aave.recoverable
    # Along a flat path with deep markets, the Clipper sells every vault: no liquidator's profit gates it, and only
    # the vault worth less than its debt leaves bad debt ($10). Read as a liquidator's bonus, the $90 and $110 vaults
    # each left their debt less value / 1.13 unpaid.
    flat, deep = np.ones((3, 1)), {"WETH": DepthCurve(1e12)}
    auctioned = liquidate_along(linear, flat, {}, deep, 0, 0)
    assert (auctioned.liquidations, auctioned.skipped) == (3, 0)
    # (the deep market's slippage on $320 of sales is a few millionths)
    assert auctioned.bad_debt_usd == pytest.approx(10.0, rel=1e-5)
    assert auctioned.liquidated_debt_usd == pytest.approx(290.0, rel=1e-5)
    bonus = liquidate_along(build_book(_book(None), {"WETH": "WETH"}, ["WETH"]), flat, {}, deep, 0, 0)
    assert (bonus.liquidations, bonus.skipped) == (3, 0)
    assert bonus.bad_debt_usd == pytest.approx(100 - 90 / 1.13 + 100 - 110 / 1.13, rel=1e-5)


def test_a_new_bonus_keeps_the_protocols_own_recovery_rule() -> None:
    key = ("maker", 1, "ETH-A")
    # Maker: chop 13 % -> 10 %; the Vow still recovers the whole value.
    maker = with_collateral_parameters(_book(), key, "WETH", 6896, 6896, 11000)
    assert set(maker["liquidation_recovery_wad"].to_list()) == {WAD}
    assert set(maker.filter(pl.col("symbol") == "WETH")["liquidation_bonus_wad"].to_list()) == {11 * 10**17}
    # Comet: liquidationFactor 0.9 -> 0.8 (bonus 1 / 0.8 = 12,500 bps) at storeFrontPriceFactor 0.5: 0.95 -> 0.90.
    comet = _book(recovery_wad(5 * 10**17, 9 * 10**17)).with_columns(
        pl.lit(liquidation_bonus_wad(9 * 10**17), pl.Int128).alias("liquidation_bonus_wad")
    )
    moved = with_collateral_parameters(comet, key, "WETH", 6896, 6896, 12500)
    weth = moved.filter(pl.col("symbol") == "WETH")["liquidation_recovery_wad"].to_list()
    assert weth == [recovery_wad(5 * 10**17, 8 * 10**17)] * 3
    # A recovery left to the bonus stays so, and follows the new bonus.
    assert with_collateral_parameters(_book(None), key, "WETH", 6896, 6896, 11000)[
        "liquidation_recovery_wad"
    ].null_count() == len(comet)
