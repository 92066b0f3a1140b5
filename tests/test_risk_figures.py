"""Figures that say something: the distance to the first liquidation per collateral (against the engine), threshold
sensitivity read where liquidations start instead of a flat $0 at today's prices, and how often a VaR scenario loses
anything at all. Pure: no chain."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from chainrisk.chains.moves import AssetGraph
from chainrisk.risk.distance import liquidation_distance, sensitivity_drop
from chainrisk.risk.optimise import threshold_sensitivity
from chainrisk.risk.var import ScenarioLosses, loss_odds
from chainrisk.scoring.health import stress
from tests.test_risk_advice import frame, position

GRAPH = AssetGraph({"aWETH": "WETH"})


def book() -> pl.DataFrame:
    """WETH at HF 1.25 and 1.6, aWETH at HF 1.4, all against USDC; a WETH-on-WETH loop no WETH fall can liquidate;
    a LINK position at HF 1.1."""
    rows = []
    for wallet, symbol, health in (("0x1", "WETH", 1.25), ("0x2", "WETH", 1.6), ("0x3", "aWETH", 1.4)):
        rows += [position(wallet, "0xm", symbol, 10_000.0, 0.0), position(wallet, "0xm", "USDC", 0.0, 8_000 / health)]
    rows += [position("0x4", "0xm", "WETH", 10_000.0, 0.0), position("0x4", "0xm", "WETH", 0.0, 7_000.0)]
    rows += [position("0x5", "0xm", "LINK", 10_000.0, 0.0, lt=7000), position("0x5", "0xm", "USDC", 0.0, 7_000 / 1.1)]
    # Two rows for 0x4's WETH: one market row per asset, as positions hold it.
    merged = (
        frame(rows)
        .group_by("wallet", "symbol", maintain_order=True)
        .agg(
            pl.all().exclude("collateral_amount", "debt_amount", "collateral_usd", "debt_usd").first(),
            pl.col("collateral_amount", "debt_amount", "collateral_usd", "debt_usd").sum(),
        )
    )
    return merged.select(frame(rows).columns)


def test_distance_to_the_first_liquidation_matches_the_engine() -> None:
    positions = book()
    distance = liquidation_distance(positions, GRAPH)
    by_symbol = {r["symbol"]: r for r in distance.iter_rows(named=True)}
    assert set(by_symbol) == {"WETH", "aWETH", "LINK"}
    weth = by_symbol["WETH"]
    # HF 1.25: liquidatable once WETH has fallen 1 - 1 / 1.25 = 20 %; the WETH-on-WETH loop never is.
    assert weth["first_drop"] == pytest.approx(0.2, abs=1e-6) and weth["first_wallet"] == "0x1"
    assert weth["holders"] == 3 and weth["median_drop"] == pytest.approx((0.2 + 1 - 1 / 1.6) / 2, abs=1e-6)
    assert weth["sensitivity_drop"] == pytest.approx(0.25)
    assert by_symbol["aWETH"]["first_drop"] == pytest.approx(1 - 1 / 1.4, abs=1e-6)  # moves with WETH
    assert by_symbol["aWETH"]["base_symbol"] == "WETH"
    for symbol, row in by_symbol.items():
        base = GRAPH.base(symbol)
        held = positions["symbol"].unique().to_list()
        before, after = (
            stress(positions, GRAPH.multiplier_frame({base: 1 - row["first_drop"] + step}, held))
            for step in (1e-4, -1e-4)
        )
        holders = positions.filter((pl.col("symbol") == symbol) & (pl.col("collateral_amount") > 0))["wallet"]
        assert not before.filter(pl.col("wallet").is_in(holders.to_list()))["liquidatable"].any(), symbol
        assert after.filter(pl.col("wallet") == row["first_wallet"])["liquidatable"].all(), symbol
    assert sensitivity_drop(None) == 0 and sensitivity_drop(0.0) == pytest.approx(0.05)


def test_sensitivity_is_read_where_liquidations_start() -> None:
    positions = book()
    today = threshold_sensitivity(positions)
    assert (today["liquidatable_collateral_usd_change"] == 0).all()  # the flat line: nobody near a threshold today
    distance = liquidation_distance(positions, GRAPH)
    levels = {
        (p, c, m, s): d
        for p, c, m, s, d in distance.select("protocol", "chain_id", "market", "symbol", "sensitivity_drop").iter_rows()
    }
    shocked = threshold_sensitivity(positions, levels=levels, graph=GRAPH)
    # WETH read at -25 %: the HF 1.25 wallet is at 0.9375, liquidatable whatever +-100 bps does (0.949 at 81 %).
    weth = shocked.filter(pl.col("symbol") == "WETH").sort("shift_bps")
    assert weth["liquidatable_wallets"].to_list() == [1, 1, 1, 1, 1]
    # aWETH read at -30 % of WETH: the aToken moves with it, so its HF 1.4 holder is at 0.98, beside the HF 1.25 one.
    aweth = shocked.filter(pl.col("symbol") == "aWETH").sort("shift_bps")
    assert aweth["liquidatable_wallets"].to_list() == [2, 2, 2, 2, 2]
    # LINK read at -10 %: its HF 1.1 holder is at 0.99; +100 bps (71 %) lifts it to 1.004 and spares its $9,000.
    link = shocked.filter(pl.col("symbol") == "LINK").sort("shift_bps")
    assert link["liquidatable_wallets"].to_list() == [1, 1, 1, 1, 0]
    assert link["liquidatable_collateral_usd_change"].to_list() == pytest.approx([0, 0, 0, 0, -9_000])


def test_loss_odds_say_how_often_anything_is_lost() -> None:
    markets = pl.DataFrame({"protocol": ["p", "p"], "chain_id": [1, 1], "market": ["a", "b"]})
    bad = np.zeros((1000, 2))
    bad[:4, 0] = [10.0, 20.0, 30.0, 40.0]  # 4 scenarios in 1000 lose anything: a 99 % VaR of $0
    losses = ScenarioLosses(markets, bad, bad * 10, bad * 12)
    odds = loss_odds(losses, 24).filter((pl.col("scope") == "total") & (pl.col("metric") == "bad_debt_usd"))
    assert odds["loss_probability"][0] == pytest.approx(0.004) and odds["worst_usd"][0] == 40.0
    market_b = loss_odds(losses, 24).filter((pl.col("market") == "b") & (pl.col("metric") == "bad_debt_usd"))
    assert market_b["loss_probability"][0] == 0


def test_the_first_liquidation_is_the_first_of_the_holders_not_liquidatable_already() -> None:
    """A market almost always holds a position nobody liquidates (dust): counting it made every collateral's distance
    0. It is counted apart (liquidatable_now), and the first liquidation is the first of the others, as the engine
    finds it."""
    dust = [position("0x9", "0xm", "WETH", 100.0, 0.0), position("0x9", "0xm", "USDC", 0.0, 90.0)]  # HF 0.89
    positions = pl.concat([book(), frame(dust).select(book().columns)])
    assert stress(positions).filter(pl.col("wallet") == "0x9")["liquidatable"].all()
    weth = liquidation_distance(positions, GRAPH).filter(pl.col("symbol") == "WETH").row(0, named=True)
    assert weth["liquidatable_now"] == 1 and weth["holders"] == 4
    assert weth["first_drop"] == pytest.approx(0.2, abs=1e-6) and weth["first_wallet"] == "0x1"
    assert weth["holders_within_10pct"] == 1  # the dust is within any fall
    assert weth["median_drop"] == pytest.approx((0.2 + 1 - 1 / 1.6) / 2, abs=1e-6)  # of the three others, as before
    held = positions["symbol"].unique().to_list()
    before = stress(positions, GRAPH.multiplier_frame({"WETH": 1 - 0.2 + 1e-4}, held))
    after = stress(positions, GRAPH.multiplier_frame({"WETH": 1 - 0.2 - 1e-4}, held))
    assert before.filter(pl.col("liquidatable"))["wallet"].sort().to_list() == ["0x9"]
    assert after.filter(pl.col("wallet") == "0x1")["liquidatable"].all()
    nobody = liquidation_distance(book(), GRAPH)
    assert (nobody["liquidatable_now"] == 0).all()
