"""The scorecard and its metrics on synthetic rows: monotone points, reason codes, the scale, files, AUC/KS/Brier."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from chainrisk.credit.evaluate import auc, brier, calibration, ks
from chainrisk.credit.features import FEATURES
from chainrisk.credit.scorecard import BANDS, FACTOR, OFFSET, SCORE_MAX, SCORE_MIN, Scorecard, band_of, fit, next_band
from chainrisk.errors import UserError


def synthetic(n: int = 6_000, seed: int = 3) -> pl.DataFrame:
    """Rows of every feature; liquidation driven by health now, the 90-day minimum and past liquidations, with one
    feature (debt) that carries no signal."""
    rng = np.random.default_rng(seed)
    hf = 1 + rng.gamma(2.0, 0.4, n)
    hf_min = hf * rng.uniform(0.7, 1.0, n)
    liquidations = rng.poisson(0.3, n).astype(float)
    logit = -1.0 - 4.0 * (hf - 1) - 2.0 * (hf_min - 1) + 0.8 * liquidations
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    columns: dict[str, np.ndarray] = {name: rng.normal(size=n) for name in FEATURES}
    columns |= {"hf_now": hf, "hf_min_90d": hf_min, "liquidations": liquidations, "liquidated": y}
    return pl.DataFrame(columns)


@pytest.fixture(scope="module")
def card() -> Scorecard:
    return fit(synthetic(), 30, {"source": "synthetic"})


def test_points_move_in_the_economic_direction_and_the_score_adds_up(card: Scorecard) -> None:
    names = [f.name for f in card.features]
    assert {"hf_now", "hf_min_90d", "liquidations"} <= set(names)
    for f in card.features:
        assert f.beta > 0
        steps = np.diff(f.points)
        # Direction -1 (less is riskier): points rise with the value; +1: they fall. Never against economics.
        assert np.all(steps * -f.direction >= -1e-9), f.name
    rows = synthetic(50, seed=9)
    explained = card.explain(rows)
    totals = explained.group_by("row").agg(pl.col("points").sum()).sort("row")["points"].to_numpy()
    assert np.array_equal(np.clip(np.round(totals), SCORE_MIN, SCORE_MAX), card.score(rows))
    # The score is the log-odds of staying clear on the stated scale: 40 points double the odds.
    pd_ = card.pd(rows)
    assert np.array_equal(card.score(rows), np.clip(np.round(OFFSET + FACTOR * np.log((1 - pd_) / pd_)), 300, 850))


def test_reason_codes_are_the_largest_shortfalls(card: Scorecard) -> None:
    rows = synthetic(200, seed=5)
    explained = card.explain(rows)
    reasons = card.reasons(explained)
    for r in reasons.iter_rows(named=True):
        lost = explained.filter(pl.col("row") == r["row"]).with_columns(lost=pl.col("max_points") - pl.col("points"))
        expected = lost.filter(pl.col("lost") > 0.5).sort(["lost", "feature"], descending=[True, False])
        assert r["reasons"] == expected["feature"].head(3).to_list()
        assert len(r["reason_text"]) == len(r["reasons"]) <= 3
    # A wallet in every feature's best bin has nothing to explain.
    best = {f.name: (1e9 if f.direction < 0 else -1e9) for f in card.features}
    top = pl.DataFrame({name: [best.get(name, 0.0)] for name in FEATURES})
    assert card.reasons(card.explain(top)).is_empty()


def test_bands_cover_the_scale() -> None:
    assert band_of(SCORE_MIN) == "poor" and band_of(SCORE_MAX) == "excellent"
    for (name, low), (_, following) in itertools.pairwise(BANDS):
        assert band_of(low) == name and band_of(following - 1) == name
        assert next_band(low) == (band_of(following), following)
    assert next_band(SCORE_MAX) is None


def test_the_model_file_round_trips_and_refuses_edits(card: Scorecard, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    card.save(path)
    again = Scorecard.load(path)
    rows = synthetic(100, seed=4)
    assert again.version == card.version and np.array_equal(again.score(rows), card.score(rows))
    body = json.loads(path.read_text())
    body["features"][0]["points"][0] += 50
    path.write_text(json.dumps(body))
    with pytest.raises(UserError, match="edited after training"):
        Scorecard.load(path)
    path.write_text("{not json")
    with pytest.raises(UserError, match="not a chainrisk credit model"):
        Scorecard.load(path)
    with pytest.raises(UserError, match="no credit model"):
        Scorecard.load(tmp_path / "missing.json")


def test_metrics_equal_their_definitions() -> None:
    rng = np.random.default_rng(1)
    risk = np.round(rng.normal(size=300), 1)  # ties on purpose
    y = (rng.random(300) < 1 / (1 + np.exp(-2 * risk))).astype(float)
    pos, neg = risk[y == 1], risk[y == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert auc(risk, y) == pytest.approx(pairs, abs=1e-12)
    thresholds = np.unique(risk)
    gaps = [abs((pos >= t).mean() - (neg >= t).mean()) for t in thresholds]
    assert ks(risk, y) == pytest.approx(max(gaps), abs=1e-12)
    p = 1 / (1 + np.exp(-risk))
    assert brier(p, y) == pytest.approx(float(np.mean((p - y) ** 2)))
    assert auc(risk, np.zeros(300)) is None and ks(risk, np.ones(300)) is None
    scores = np.linspace(300, 850, 300).round()
    table = calibration(scores, p, y)
    assert table["bucket"].to_list() == [name for name, _ in BANDS]
    assert table["wallets"].sum() == 300 and table["liquidated"].sum() == y.sum()
    poor = scores < 580
    assert table.row(0, named=True)["predicted_pd"] == pytest.approx(float(p[poor].mean()))


def test_too_few_liquidations_to_train_is_one_clear_error() -> None:
    rows = synthetic(500).with_columns(pl.lit(False).alias("liquidated"))
    with pytest.raises(UserError, match="too few liquidated"):
        fit(rows, 30, {})


def test_the_aave_v2_sanity_check_scores_real_repeat_liquidations(card: Scorecard) -> None:
    """The model's liquidation-history cards on the real Aave V2 file: one row per month of 2021, the partial
    score's AUC against being liquidated again within 30 days."""
    from chainrisk.devnet.toolchain import shared_prices_dir
    from chainrisk.jobs.credit import sanity_check

    prices = shared_prices_dir()
    table = sanity_check(card, prices.parent.parent / "aave_v2" / "liquidations.csv", prices)
    assert table.height == 12 and table["cutoff"][0] == "2021-01-01"
    assert (table["liquidated_again"] <= table["wallets"]).all() and table["wallets"].is_sorted()
    assert table["auc"].drop_nulls().is_between(0, 1).all()
    only_counts = Scorecard([f for f in card.features if f.name == "hf_now"], 0.0, 30, {})
    with pytest.raises(UserError, match="none of the liquidation features"):
        sanity_check(only_counts, prices.parent.parent / "aave_v2" / "liquidations.csv", prices)


def test_every_reason_value_carries_its_unit(card: Scorecard) -> None:
    from chainrisk.credit.features import UNITS, value_text
    from chainrisk.credit.regime import MARKET_INPUTS

    assert set(UNITS) == set(FEATURES)
    units = {"ratio": "(ratio)", "count": "(count)", "days": " days", "USD": "$", "sigmas": " sigmas"}
    for name in [*FEATURES, *MARKET_INPUTS]:
        text = value_text(name, 1.038)
        unit = UNITS.get(name) or MARKET_INPUTS[name][1]
        assert units.get(unit, f" {unit}") in text, (name, text)
    assert value_text("collateral_vol", 1.038) == "103.8 % a year"
    assert value_text("debt_usd", 4961.59) == "$4,961.59" and value_text("days_since_repay", 3650.0).startswith("never")
    reasons = card.reasons(card.explain(synthetic(300, seed=8)))
    texts = [t for row in reasons["reason_text"] for t in row]
    assert texts and all(any(u in t.split(" = ")[1] for u in units.values()) or " % " in t for t in texts), texts


def regime_rows(n: int = 8_000, seed: int = 11) -> pl.DataFrame:
    """Synthetic rows at 16 cutoffs whose market volatility moves every wallet's odds (and drawdown does not)."""
    base = synthetic(n, seed)
    rng = np.random.default_rng(seed)
    cutoff = rng.integers(0, 16, n)
    vol = 0.4 + 0.05 * cutoff
    drawdown = rng.uniform(0, 0.3, 16)[cutoff]
    hf = base["hf_now"].to_numpy()
    logit = -1.0 - 4.0 * (hf - 1) + 3.0 * (vol - 0.8)
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    return base.with_columns(
        pl.Series("liquidated", y),
        pl.Series("as_of_block", cutoff),
        pl.Series("market_vol", vol),
        pl.Series("market_drawdown", drawdown),
    )


def test_the_market_regime_raises_the_same_wallets_probability() -> None:
    rows = regime_rows()
    model = fit(rows, 30, {})
    assert model.market.get("market_vol", 0.0) > 1.0, model.market
    assert all(weight > 0 for weight in model.market.values())
    wallets = rows.head(200)
    calm = wallets.with_columns(pl.lit(0.4).alias("market_vol"), pl.lit(0.0).alias("market_drawdown"))
    crash = wallets.with_columns(pl.lit(1.1).alias("market_vol"), pl.lit(0.5).alias("market_drawdown"))
    assert np.all(model.pd(crash) > model.pd(calm)) and np.all(model.score(crash) <= model.score(calm))
    # The market's points are in the explanation: a wallet's points still add up to its score.
    explained = model.explain(crash)
    assert set(explained["feature"]) >= set(model.market)
    totals = explained.group_by("row").agg(pl.col("points").sum()).sort("row")["points"].to_numpy()
    assert np.array_equal(np.clip(np.round(totals), SCORE_MIN, SCORE_MAX), model.score(crash))
    # Each cutoff's mean PD follows its liquidation rate far closer than one average-regime intercept would.
    frame = rows.with_columns(pl.Series("pd", model.pd(rows)))
    by_cutoff = frame.group_by("as_of_block").agg(pl.col("pd").mean(), pl.col("liquidated").mean()).sort("as_of_block")
    assert np.corrcoef(by_cutoff["pd"], by_cutoff["liquidated"])[0, 1] > 0.9


def test_a_market_input_against_economics_is_dropped() -> None:
    rows = regime_rows().with_columns((1.5 - pl.col("market_vol")).alias("market_drawdown"))
    model = fit(rows, 30, {})
    assert "market_drawdown" not in model.market and model.market.get("market_vol", 0.0) > 0


def test_band_shares_never_fall_as_the_band_improves() -> None:
    from chainrisk.credit.advice import band_shares

    bands = ["poor", "fair", "fair", "good", "good", "very good", "excellent"]
    shares = np.array([0.3, 0.9, 0.7, 0.5, 0.5, 0.95, 1.0])
    weights = np.array([1.0, 1.0, 3.0, 2.0, 2.0, 1.0, 1.0])
    got = band_shares(bands, shares, weights)
    # fair (mean 0.75) above good (0.5) breaks the order: both pooled at their weighted mean.
    assert got["fair"] == got["good"] == pytest.approx((0.9 + 3 * 0.7 + 4 * 0.5) / 8)
    assert got["poor"] == pytest.approx(0.3) and got["excellent"] == pytest.approx(1.0)
    order = [got[name] for name, _ in BANDS]
    assert order == sorted(order)
    rng = np.random.default_rng(2)
    for _ in range(50):
        labels = [BANDS[i][0] for i in rng.integers(0, 5, 40)]
        result = band_shares(labels, rng.random(40), rng.random(40) + 0.1)
        values = [result[name] for name, _ in BANDS if name in result]
        assert values == sorted(values)


def test_the_count_range_is_the_poisson_binomial() -> None:
    from chainrisk.credit.evaluate import count_range

    assert count_range(np.full(100, 0.1)) == (5, 16)  # Binomial(100, 0.1): P(X <= 4) < 2.5 % <= P(X <= 5)
    assert count_range(np.full(400, 0.0001)) == (0, 1)
    assert count_range(np.array([])) == (0, 0)
