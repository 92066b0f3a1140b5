"""One asset graph for every model: a wrapped position (an aToken, a vault share) moves with its shocked base in the
replays, VaR, the cascade, optimisation's sensitivity, the parameter advice and contagion. Pure: no chain."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from chainrisk.assets import Link, Token
from chainrisk.chains.contagion import contagion
from chainrisk.chains.moves import AssetGraph
from chainrisk.risk.calibration import calibrate
from chainrisk.risk.cascade import cascade
from chainrisk.risk.replay import WINDOWS, price_path, replay
from chainrisk.risk.var import build_book, revalue, simulate_multipliers
from chainrisk.scoring.health import stress

WETH, AWETH, USDC, CVUSDC = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, "0x" + "44" * 20
#: aWETH is Aave's aToken of WETH (1:1); cvUSDC an ERC-4626 vault over USDC at 1.05 USDC a share.
LINKS = {
    AWETH: Link(Token(AWETH, "aWETH", 18), "atoken", Token(WETH, "WETH", 18), 1, 1, None, "", "probe"),
    CVUSDC: Link(
        Token(CVUSDC, "cvUSDC", 6),
        "erc4626",
        Token(USDC, "USDC", 6),
        105,
        100,
        "convertToAssets",
        "tokens/IERC4626",
        "probe",
        total_assets=1_050_000_000_000,
        total_supply=1_000_000_000_000,
    ),
}
GRAPH = AssetGraph.from_links(LINKS)
PRICES = {"WETH": (WETH, 18, 2000.0), "aWETH": (AWETH, 18, 2000.0), "USDC": (USDC, 6, 1.0)}


def book(health: float = 1.25) -> pl.DataFrame:
    """Two wallets of one market at the same health factor: one posts WETH, the other aWETH; both owe USDC."""
    rows = []
    for wallet, collateral in (("0x" + "a1" * 20, "WETH"), ("0x" + "a2" * 20, "aWETH")):
        for symbol, amount, debt in ((collateral, 10 * 10**18, 0), ("USDC", 0, int(20_000 * 0.8 / health * 1e6))):
            asset, decimals, price = PRICES[symbol]
            rows.append(
                {
                    "protocol": "aave-v3",
                    "chain_id": 1,
                    "market": "0xpool",
                    "wallet": wallet,
                    "asset": asset,
                    "symbol": symbol,
                    "block_number": 10,
                    "block_timestamp": 1_700_000_000,
                    "decimals": decimals,
                    "collateral_amount": amount,
                    "supplied_amount": amount,
                    "debt_amount": debt,
                    "price": int(price * 1e8),
                    "price_usd": price,
                    "collateral_usd": amount / 10**decimals * price,
                    "debt_usd": debt / 10**decimals * price,
                    "liquidation_threshold_bps": 8000,
                    "ltv_bps": 7500,
                    "liquidation_bonus_bps": 10500,
                }
            )
    return pl.DataFrame(rows).with_columns(
        pl.col("collateral_amount", "supplied_amount", "debt_amount").cast(pl.Int128)
    )


def health_of(frame: pl.DataFrame) -> dict[str, float]:
    return dict(zip(frame["wallet"], frame["health_factor"], strict=True))


def test_graph_multipliers_follow_the_base_the_rate_and_the_wrappers_own_move() -> None:
    graph = AssetGraph({"aWETH": "WETH", "stkaWETH": "aWETH", "cvUSDC": "USDC"})
    moves = graph.multipliers({"WETH": 0.7}, ["USDC"], factors={"cvUSDC": 0.98})
    assert moves["aWETH"] == moves["stkaWETH"] == pytest.approx(0.7)  # two hops
    assert moves["cvUSDC"] == pytest.approx(0.98) and moves["USDC"] == 1.0  # the vault's rate fell 2 %
    assert graph.multipliers({"WETH": 0.7, "aWETH": 0.9})["aWETH"] == pytest.approx(0.63)  # a depeg on top
    assert graph.base("stkaWETH") == "WETH" and graph.base("LINK") == "LINK"
    looped = AssetGraph({"A": "B", "B": "A"})
    assert set(looped.multipliers({"A": 0.5})) == {"A", "B"}  # a malformed cycle ends
    by_address = AssetGraph.from_links(LINKS, by="address")
    assert by_address.base(CVUSDC) == USDC and by_address.multipliers({WETH: 0.5})[AWETH] == 0.5


def test_cascade_moves_the_wrapped_collateral_with_its_base() -> None:
    positions = book()
    with_graph = cascade(positions, {"WETH": 0.7}, graph=GRAPH)
    shocked = with_graph.shocked
    assert dict(zip(shocked["symbol"], shocked["multiplier"], strict=True))["aWETH"] == pytest.approx(0.7)
    final = with_graph.prices.filter(pl.col("round") == pl.col("round").max())
    assert dict(zip(final["symbol"], final["multiplier"], strict=True))["aWETH"] < 0.7  # and the sales' impact
    both = health_of(with_graph.health)
    assert both["0x" + "a1" * 20] < 1 and both["0x" + "a2" * 20] == pytest.approx(both["0x" + "a1" * 20], rel=1e-9)
    assert with_graph.rounds["new_liquidatable_wallets"][0] == 2
    alone = cascade(positions, {"WETH": 0.7})  # without the graph the aToken stays at its price (the old gap)
    assert alone.rounds["new_liquidatable_wallets"][0] == 1


def test_replay_moves_the_wrapped_collateral_with_its_base() -> None:
    path = price_path(["WETH", "aWETH", "USDC"], WINDOWS["luna-2022"], 24, graph=GRAPH)
    wide = path.frame.pivot(on="symbol", index="step", values="multiplier")
    assert wide["aWETH"].to_list() == wide["WETH"].to_list() and wide["WETH"].min() < 0.7  # type: ignore[operator]
    assert path.series["aWETH"] == "WETH"
    result = replay(book(), WINDOWS["luna-2022"], 24, graph=GRAPH)
    low = dict(zip(result.wallets["wallet"], result.wallets["min_health_factor"], strict=True))
    assert low["0x" + "a1" * 20] < 1 and low["0x" + "a2" * 20] == pytest.approx(low["0x" + "a1" * 20], rel=1e-9)


def test_var_moves_the_wrapped_collateral_with_its_base() -> None:
    calibration = calibrate(["WETH", "aWETH", "USDC"], "2022-01-01", "2022-12-31", 24, "sample", graph=GRAPH)
    assert calibration.symbols["aWETH"] == "WETH"
    positions = book(1.02)
    losses = build_book(positions, calibration.symbols, calibration.assets)
    scenarios = simulate_multipliers(calibration, 2_000, seed=1)
    # Both wallets lose the same in every scenario: the aToken's price is WETH's.
    per_wallet = revalue(losses, scenarios)
    assert per_wallet.liquidatable_debt_usd.max() > 0
    weth = calibration.assets.index("WETH")
    np.testing.assert_allclose(losses.collateral[0], losses.collateral[1])
    assert losses.collateral[1, weth] == pytest.approx(20_000)


def test_contagion_moves_the_wrapped_collateral_with_its_base() -> None:
    markets = pl.DataFrame(
        {"protocol": ["aave-v3"], "market": ["0xpool"], "bad_debt_rule": ["unbacked"], "reserves_amount": [None]},
        schema_overrides={"reserves_amount": pl.Float64},
    )
    result = contagion(book(), LINKS, {"WETH": 0.7}, {}, markets)
    channels = dict(zip(result.wallets["wallet"], result.wallets["channel"], strict=True))
    assert channels == {"0x" + "a1" * 20: "direct", "0x" + "a2" * 20: "chain"}


def test_engine_shock_through_the_graph_moves_the_wrapped_position() -> None:
    before = health_of(stress(book()))
    after = health_of(stress(book(), GRAPH.multiplier_frame({"WETH": 0.8}, ["WETH", "aWETH", "USDC"])))
    for wallet, health in after.items():
        assert health == pytest.approx(before[wallet] * 0.8, rel=1e-6)
