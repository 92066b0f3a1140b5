"""Calibration on the real hourly prices, Monte-Carlo revaluation against the engine's stress(), VaR / ES, Kupiec."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from chainrisk.risk.calibration import (
    _DOF_GRID,
    RISKMETRICS_LAMBDA,
    Calibration,
    CalibrationError,
    _grid_argmax,
    _t_loglik_unit_variance,
    calibrate,
    ewma_covariances,
    filtered_residuals,
    fit_dof,
    load_price_panel,
    resolve_series,
)
from chainrisk.risk.var import (
    backtest_var,
    build_book,
    historical_backtest,
    kupiec_pof,
    monte_carlo_var,
    revalue,
    risk_table,
    simulate_multipliers,
    var_es,
    wallet_outcomes,
)
from chainrisk.scoring.health import stress

SYMBOLS = ["WETH", "wstETH", "WBTC", "USDC", "DAI", "USDT", "LINK"]
#: symbol, decimals, USD price, threshold, LTV, bonus (bps)
ASSETS = [
    ("WETH", 18, 2000.0, 8300, 8050, 10500),
    ("wstETH", 18, 2200.0, 8100, 7850, 10600),
    ("WBTC", 8, 30000.0, 7800, 7300, 10500),
    ("USDC", 6, 1.0, 8000, 7700, 10450),
    ("DAI", 18, 1.0, 8000, 7700, 10500),
    ("USDT", 6, 1.0, 7600, 7400, 10450),
    ("LINK", 18, 7.0, 6800, 5300, 10700),
]


def positions(wallets: int = 400, seed: int = 5, per_position: bool = False) -> pl.DataFrame:
    """Wallets with one or two collateral assets and one debt asset over two markets of two protocols; health
    factors between 0.95 and 1.6 so that shocks flip many of them."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(wallets):
        place = ("aave-v3", "0xaaa") if w % 3 else ("morpho-blue", "0xbbb")
        collateral = rng.choice([0, 1, 2, 6], size=int(rng.integers(1, 3)), replace=False)
        debt_asset = int(rng.choice([3, 4, 5, 0]))
        size = float(rng.uniform(1e3, 1e6))
        target = float(rng.uniform(0.95, 1.6))
        weighted = 0.0
        for k, a in enumerate(collateral):
            usd = size * (0.7 if k == 0 else 0.3) if len(collateral) == 2 else size
            weighted += usd * ASSETS[a][3] / 1e4
            rows.append((w, place, a, usd, 0.0))
        rows.append((w, place, debt_asset, 0.0, weighted / target))
    records = []
    for w, (protocol, market), a, collateral_usd, debt_usd in rows:
        symbol, decimals, price, threshold, ltv, bonus = ASSETS[a]
        records.append(
            {
                "protocol": protocol,
                "chain_id": 1,
                "market": market,
                "wallet": f"0x{w:040x}",
                "asset": symbol,
                "symbol": symbol,
                "block_number": 10,
                "block_timestamp": 1_700_000_000,
                "decimals": decimals,
                "collateral_amount": int(collateral_usd / price * 10**decimals),
                "debt_amount": int(debt_usd / price * 10**decimals),
                "price": int(price * 1e8),
                "price_usd": price,
                "liquidation_threshold_bps": threshold,
                "ltv_bps": ltv,
                "liquidation_bonus_bps": bonus,
            }
        )
    frame = pl.DataFrame(records).with_columns(
        pl.col("collateral_amount").cast(pl.Int128), pl.col("debt_amount").cast(pl.Int128)
    )
    if per_position:
        frame = frame.with_columns(
            pl.lit("per-position").alias("health_rule"),
            pl.lit(1.0).alias("close_factor"),
            pl.lit(None, dtype=pl.Float64).alias("full_close_below_health"),
        )
    return frame.sort("wallet", "symbol")


@pytest.fixture(scope="module")
def daily() -> Calibration:
    return calibrate(SYMBOLS, "2021-06-01", "2023-02-25", horizon_hours=24, method="sample")


def test_calibration_on_real_prices(daily: Calibration) -> None:
    vol = dict(zip(daily.assets, daily.vols, strict=True))
    # ETH's daily vol in 2021-2023 was about 4-5 % (70-90 % a year); stablecoins' a small fraction of a percent.
    assert 0.03 < vol["WETH"] < 0.06
    assert 0.025 < vol["WBTC"] < vol["WETH"]
    for stable in ("USDC", "DAI", "USDT"):
        assert vol[stable] < 0.005
    assert daily.symbols["wstETH"] == "stETH"
    corr = daily.corr
    np.testing.assert_allclose(corr, corr.T)
    np.testing.assert_allclose(np.diag(corr), 1.0)
    assert np.linalg.eigvalsh(corr).min() > -1e-10
    i, j = daily.assets.index("WETH"), daily.assets.index("stETH")
    assert corr[i, j] > 0.95
    # Crypto daily returns are fat-tailed: far from a normal's infinite dof, and above 2 (finite variance).
    assert 2 < daily.dof < 10
    assert daily.observations > 500
    ewma = calibrate(SYMBOLS, "2021-06-01", "2023-02-25", horizon_hours=168, method="ewma")
    assert ewma.ewma_lambda == 0.94 and ewma.horizon_hours == 168
    weekly_weth = ewma.vols[ewma.assets.index("WETH")]
    assert 0.04 < weekly_weth < 0.2


def test_symbol_mapping_and_overrides() -> None:
    available = ["WETH", "stETH", "USDC", "WBTC"]
    assert resolve_series(["wstETH", "cbBTC"], available=available) == {"wstETH": "stETH", "cbBTC": "WBTC"}
    assert resolve_series(["wstETH"], {"wstETH": "WETH"}, available=available) == {"wstETH": "WETH"}
    with pytest.raises(CalibrationError, match="'PEPE'"):
        resolve_series(["PEPE"], available=available)
    with pytest.raises(CalibrationError, match="'wstETH' maps to 'NOPE'"):
        resolve_series(["wstETH"], {"wstETH": "NOPE"}, available=available)


def test_scenarios_reproducible_from_seed(daily: Calibration) -> None:
    a = simulate_multipliers(daily, 2_000, seed=42)
    np.testing.assert_array_equal(a, simulate_multipliers(daily, 2_000, seed=42))
    assert not np.array_equal(a, simulate_multipliers(daily, 2_000, seed=43))
    # The simulated log returns keep the calibrated vols and correlation (sampling error at n = 200k).
    big = np.log(simulate_multipliers(daily, 200_000, seed=1))
    np.testing.assert_allclose(big.std(axis=0), daily.vols, rtol=0.05)
    np.testing.assert_allclose(np.corrcoef(big, rowvar=False), daily.corr, atol=0.03)
    frame = positions(60)
    first = monte_carlo_var(frame, horizons=[24], scenarios=500, seed=9)
    assert first.equals(monte_carlo_var(frame, horizons=[24], scenarios=500, seed=9))


@pytest.mark.parametrize("per_position", [False, True])
def test_revaluation_equals_engine_stress(daily: Calibration, per_position: bool) -> None:
    frame = positions(per_position=per_position)
    book = build_book(frame, daily.symbols, daily.assets)
    # Tolerance 1e-7 of the wallet's debt: the engine floors the shocked oracle price (8 decimals, up to 1e-8 of
    # a value), which we leave out, and bad debt is a difference of two such values.
    # Scaled-up draws so that several shocks cross many wallets' HF = 1 and some leave bad debt.
    multipliers = np.exp(np.log(simulate_multipliers(daily, 6, seed=3)) * 4)
    multipliers[0] = 1.0
    bad, repaid, seized, liquidatable = wallet_outcomes(book, multipliers)
    flipped = 0
    for s in range(len(multipliers)):
        shock = pl.DataFrame(
            {"symbol": SYMBOLS, "multiplier": [multipliers[s, daily.assets.index(daily.symbols[x])] for x in SYMBOLS]}
        )
        columns = ["wallet", "debt_usd", "liquidatable", "bad_debt_usd", "liquidatable_debt_usd"]
        engine = stress(frame, shock).select(*columns, "seizable_collateral_usd")
        ours = pl.DataFrame(
            {
                "wallet": book.wallets["wallet"],
                "ours_liquidatable": liquidatable[s],
                "ours_bad": bad[s],
                "ours_repaid": repaid[s],
                "ours_seized": seized[s],
            }
        )
        joined = engine.join(ours, on="wallet", how="full", coalesce=True)
        assert joined.height == engine.height == book.wallets.height
        assert (joined["liquidatable"] == joined["ours_liquidatable"]).all(), s
        tolerance = 1e-7 * joined["debt_usd"].to_numpy() + 1e-6
        for mine, theirs in [
            ("ours_bad", "bad_debt_usd"),
            ("ours_repaid", "liquidatable_debt_usd"),
            ("ours_seized", "seizable_collateral_usd"),
        ]:
            gap = np.abs(joined[mine].to_numpy() - joined[theirs].to_numpy())
            assert (gap <= tolerance).all(), (s, theirs, gap.max())
        flipped += int(joined["liquidatable"].sum())
        if s == 0:
            unshocked = int(joined["liquidatable"].sum())
    assert flipped > 3 * unshocked + 10  # the shocks did move wallets across HF = 1
    losses = revalue(book, multipliers, chunk_cells=100)  # several chunks on both threads
    np.testing.assert_allclose(losses.bad_debt_usd.sum(axis=1), bad.sum(axis=1))
    np.testing.assert_allclose(losses.liquidatable_debt_usd.sum(axis=1), repaid.sum(axis=1))


def test_var_monotone_and_es_at_least_var(daily: Calibration) -> None:
    frame = positions()
    book = build_book(frame, daily.symbols, daily.assets)
    losses = revalue(book, simulate_multipliers(daily, 4_000, seed=11))
    table = risk_table(losses, 24, confidences=(0.9, 0.95, 0.99))
    assert set(table["scope"]) == {"market", "protocol", "total"}
    assert set(table.filter(pl.col("scope") == "protocol")["protocol"]) == {"aave-v3", "morpho-blue"}
    for (_, _, _, metric), group in table.group_by("scope", "protocol", "market", "metric"):
        ordered = group.sort("confidence")
        assert (ordered["var_usd"].diff().drop_nulls() >= 0).all(), metric
        assert (ordered["es_usd"] >= ordered["var_usd"] - 1e-9).all(), metric
    total = table.filter((pl.col("scope") == "total") & (pl.col("metric") == "liquidatable_debt_usd"))
    assert (total["var_usd"] > 0).any()
    # Per-scenario totals are the sum of the markets': the total's mean is the markets' means summed.
    markets = table.filter((pl.col("scope") == "market") & (pl.col("metric") == "liquidatable_debt_usd"))
    assert math.isclose(total["mean_usd"][0], markets.filter(pl.col("confidence") == 0.9)["mean_usd"].sum())
    var, es = var_es(np.arange(1, 101, dtype=float), 0.95)
    assert var == pytest.approx(95.05) and es == pytest.approx(np.mean([96, 97, 98, 99, 100]))


def test_kupiec_pof() -> None:
    # Hand-computed: T = 250, x = 10, p = 0.01: LR = -2 ln(0.99^240 0.01^10) + 2 ln(0.96^240 0.04^10) = 12.96.
    result = kupiec_pof(10, 250, 0.99)
    assert result.lr_statistic == pytest.approx(12.955, abs=1e-3)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(result.lr_statistic / 2)))
    assert result.p_value < 0.001
    assert kupiec_pof(0, 250, 0.99).lr_statistic == pytest.approx(-2 * 250 * math.log(0.99))
    rng = np.random.default_rng(0)
    losses = rng.standard_normal(20_000)
    right = backtest_var(losses, np.full(losses.size, 2.3263478740), 0.99)  # the normal's true 99 % quantile
    assert abs(right.observed_rate - 0.01) < 0.003 and right.p_value > 0.01
    wrong = backtest_var(losses, np.full(losses.size, 1.6448536270), 0.99)  # a 95 % VaR sold as 99 %
    assert wrong.exceedances > 800 and wrong.p_value < 1e-12
    with pytest.raises(ValueError):
        kupiec_pof(5, 4, 0.99)


def test_floored_average_threshold_decides_liquidation(daily: Calibration) -> None:
    """Aave floors the average threshold: WETH $1000 at 83 % and WBTC $999 at 78 % average 8050.125 bps, floored to
    8050, so a debt of $1609.21 is liquidatable (1609.195 < 1609.21) though the unfloored sum (1609.22) covers it."""
    row = positions(1).row(0, named=True)
    legs = [("WETH", 18, 2000.0, 8300, 5 * 10**17, 0), ("WBTC", 8, 30000.0, 7800, 3_330_000, 0)]
    legs.append(("USDC", 6, 1.0, 8000, 0, 1_609_210_000))
    frame = pl.DataFrame(
        [
            row
            | {"asset": s, "symbol": s, "decimals": d, "price": int(p * 1e8), "price_usd": p}
            | {"liquidation_threshold_bps": lt, "collateral_amount": c, "debt_amount": debt}
            for s, d, p, lt, c, debt in legs
        ],
        schema=positions(1).schema,
    )
    book = build_book(frame, daily.symbols, daily.assets)
    _, _, _, liquidatable = wallet_outcomes(book, np.ones((1, len(daily.assets))))
    assert stress(frame, pl.DataFrame({"symbol": ["WETH"], "multiplier": [1.0]}))["liquidatable"].to_list() == [True]
    assert liquidatable.tolist() == [[True]]


def test_historical_backtest_of_todays_book() -> None:
    """The LUNA / stETH spring of 2022, daily: every day a VaR from the 180 days before, the realised move after."""
    book = positions(200)
    series, result = historical_backtest(book, "2022-04-01", "2022-08-01", confidence=0.95, scenarios=500)
    assert series.height == result.observations > 100
    assert series["exceedance"].sum() == result.exceedances == (series["realised_usd"] > series["var_usd"]).sum()
    assert (series["var_usd"] > 0).all() and series["time"].is_sorted()
    # A turbulent window: more exceedances than the 5 % a calm one would give.
    assert result.observed_rate > 0.05
    again, _ = historical_backtest(book, "2022-04-01", "2022-08-01", confidence=0.95, scenarios=500)
    assert again.equals(series)


def _whole_grid_dof(z: np.ndarray) -> float:
    """fit_dof as it was: the likelihood at every dof of the grid."""
    z = z[np.isfinite(z)]
    return float(_DOF_GRID[int(np.argmax(_t_loglik_unit_variance(z, _DOF_GRID)))])


def test_dof_search_finds_the_whole_grids_maximum() -> None:
    """fit_dof takes the likelihood on a coarse grid, then between the best one's neighbours: the same dof as the whole
    grid on real returns (hourly and daily, standardised by a RiskMetrics EWMA as calibrate does), and the whole grid
    where the coarse likelihood does not rise then fall."""
    panel = load_price_panel()
    rng = np.random.default_rng(5)
    for symbol in ("WETH", "WBTC", "LINK", "USDC", "stETH", "CRV"):
        prices = panel.get_column(symbol).drop_nulls().to_numpy()
        returns = np.diff(np.log(prices[prices > 0]))
        for hours in (1, 24):
            steps = returns[: len(returns) // hours * hours].reshape(-1, hours).sum(axis=1)
            start = int(rng.integers(0, max(len(steps) - 200, 1)))
            window = steps[start : start + int(rng.integers(200, 20_000))]
            moves = window[:, None]
            z = filtered_residuals(moves, ewma_covariances(moves, RISKMETRICS_LAMBDA))[:, 0]
            assert fit_dof(z) == _whole_grid_dof(z), (symbol, hours)
    # A likelihood with two peaks (the coarse values fall, then rise): the whole grid decides.
    twin_peaks = np.where(np.arange(len(_DOF_GRID)) < 200, 0.0, 1.0) * np.sin(np.arange(len(_DOF_GRID)) / 7.0)
    twin_peaks[3] = 5.0

    def loglik(dofs: np.ndarray) -> np.ndarray:
        return np.array([twin_peaks[int(np.argmin(np.abs(_DOF_GRID - d)))] for d in dofs])

    assert _grid_argmax(loglik) == 3
