"""Monte-Carlo VaR and expected shortfall of bad debt and liquidation volume, with a Kupiec backtest.

Scenarios: a Student-t copula with Student-t marginals of the same (jointly fitted) degrees of freedom, i.e. a
multivariate t: r = vol * sqrt((nu - 2) / nu) * L z / sqrt(w / nu), z standard normal, w chi-square(nu), L L' the
calibrated correlation; price multipliers exp(r). Chosen over a filtered historical bootstrap because the data hold
two years: about 630 daily and 90 weekly non-overlapping returns, so a bootstrap's 99 % 7-day tail would rest on
one or two weeks and could never go beyond the worst one seen. The t copula extrapolates past the sample, keeps
tail dependence (joint crashes: the shared w scales every asset at once), has one parameter the data can pin down,
and is reproducible from a seed (numpy's PCG64). One dof for marginals and copula keeps the model coherent without
an inverse t CDF per asset; the per-asset fits are in `Calibration.asset_dof` for a reader who wants to check.

Revaluation: the health engine's figures are linear in the prices per wallet and asset (collateral value, value x
threshold, value / bonus, value x recovery, debt value), so `build_book` takes them once per wallet and price series
from `chainrisk.scoring.health` at the snapshot's prices, and a scenario is an (S x A) multiplier matrix: S x W sums are
matrix products, computed in chunks of scenarios that bound memory, on two threads (numpy releases the GIL).
Per wallet and scenario it then follows `wallet_health` exactly-ish: Aave's floored average threshold (the
per-position rule keeps the exact sum), HF < 1 liquidatable, the close factor (1 below `full_close_below`,
else the market's), liquidatable debt = min(debt x close factor, recovered), seized collateral = that x collateral
/ (collateral / bonus), at most the collateral, bad debt = max(debt - recovered, 0) (or debt - collateral), where
recovered is collateral x the protocol's recovery (1 / bonus unless the protocol sells the collateral itself: Maker's
Clipper, Comet's store front). What it drops:
the base-unit floors of each position (< 1 unit of 1e-8 USD) and the floor of the shocked oracle price.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from chainrisk.chains.moves import AssetGraph
from chainrisk.risk.calibration import Calibration, Method, calibrate, load_price_panel, log_returns, resolve_series
from chainrisk.scoring.health import (
    CLOSE_FACTOR_HF_THRESHOLD,
    DEFAULT_CLOSE_FACTOR,
    FIXED,
    FLOOR_SLACK,
    PER_POSITION,
    recovered_usd,
    threshold_bps,
    value_positions,
)
from chainrisk.units import BPS, MARKET_KEY

METRICS = ("bad_debt_usd", "liquidatable_debt_usd", "seizable_collateral_usd")
CONFIDENCES = (0.95, 0.99)
HORIZONS = (24, 168)
#: Scenario x wallet cells per chunk and array (8 bytes each): ~32 MB, a dozen arrays live per chunk and thread.
CHUNK_CELLS = 4_000_000


def simulate_returns(calibration: Calibration, scenarios: int, seed: int) -> np.ndarray:
    """(scenarios x assets) log returns over the calibration's horizon from its multivariate Student-t."""
    rng = np.random.default_rng(seed)
    nu = calibration.dof
    eigenvalues, vectors = np.linalg.eigh(calibration.corr)
    root = vectors * np.sqrt(np.maximum(eigenvalues, 0.0))
    normal = rng.standard_normal((scenarios, len(calibration.assets))) @ root.T
    mixing = np.sqrt(rng.chisquare(nu, scenarios) / nu)
    # Unit variance: a t with nu dof has variance nu / (nu - 2).
    returns: np.ndarray = normal / mixing[:, None] * math.sqrt((nu - 2.0) / nu) * calibration.vols
    return returns


def simulate_multipliers(calibration: Calibration, scenarios: int, seed: int) -> np.ndarray:
    """(scenarios x assets) price multipliers exp(r), columns in the order of `calibration.assets`."""
    multipliers: np.ndarray = np.exp(simulate_returns(calibration, scenarios, seed))
    return multipliers


@dataclass(frozen=True, eq=False)
class Book:
    """The positions as per-wallet, per-price-series linear terms (USD at the snapshot's prices)."""

    assets: tuple[str, ...]  #: price series, the columns of every matrix
    markets: pl.DataFrame  #: protocol, chain_id, market: one row per market, the order of `market_start`
    market_start: np.ndarray  #: index of each market's first wallet (wallets are sorted by market)
    wallets: pl.DataFrame  #: protocol, chain_id, market, wallet of each row of the matrices
    collateral: np.ndarray  #: W x A collateral USD
    weighted: np.ndarray  #: W x A collateral USD x liquidation threshold (bps)
    recoverable: np.ndarray  #: W x A collateral USD / liquidation bonus
    #: W x A collateral USD x the protocol's recovery (`recoverable` itself where every recovery is 1 / bonus)
    recovered: np.ndarray
    debt: np.ndarray  #: W x A debt USD
    #: W each: the same terms of positions whose price the protocol fixes (`price_fixed`: dai at par in the Vat, LUSD
    #: in Liquity), which no price series moves
    fixed_collateral: np.ndarray
    fixed_weighted: np.ndarray
    fixed_recoverable: np.ndarray
    fixed_recovered: np.ndarray
    fixed_debt: np.ndarray
    average_threshold: np.ndarray  #: W bool: Aave's floored average threshold (else the per-position sum)
    close_factor: np.ndarray  #: W close factor above `full_close_below`
    full_close_below: np.ndarray  #: W health factor at or under which the whole debt may be repaid
    #: W debt or collateral value (USD) under which the whole debt may be repaid (Aave 3.3+: $2,000; 0: no such rule)
    full_close_usd: np.ndarray

    def closes_whole(self, adjusted: np.ndarray, debt: np.ndarray, collateral: np.ndarray) -> np.ndarray:
        """Where one liquidation may repay the whole debt (per wallet, or scenario x wallet): at a health factor of
        `full_close_below` or under (Aave: 0.95), or (Aave 3.3+) where the debt or the collateral is worth under
        `full_close_usd` ($2,000). `adjusted` is the threshold-weighted collateral, in USD as the debt."""
        whole: np.ndarray = adjusted <= self.full_close_below * debt
        whole |= (debt < self.full_close_usd) | (collateral < self.full_close_usd)
        return whole

    @property
    def own_recovery(self) -> bool:
        """Whether some protocol of the book recovers other than 1 / bonus (`recovered` is then a matrix of its own)."""
        return self.recovered is not self.recoverable


def run_starts(keys: pl.DataFrame) -> np.ndarray:
    """Index of the first row of each run of equal `keys` rows (rows sorted by them): the offsets np.add.reduceat
    sums over."""
    if keys.height == 0:
        return np.array([], dtype=np.int64)
    changed = ~(keys[1:].to_numpy() == keys[:-1].to_numpy()).all(axis=1)
    starts: np.ndarray = np.flatnonzero(np.r_[True, changed])
    return starts


def build_book(positions: pl.DataFrame | pl.LazyFrame, symbols: Mapping[str, str], assets: Sequence[str]) -> Book:
    """Per wallet and price series, the engine's values at the snapshot; wallets without debt are left out."""
    valued = value_positions(positions).collect()
    names = valued.columns
    fixed = pl.col(FIXED) if FIXED in names else pl.lit(False)
    moving = valued.filter(~fixed) if FIXED in names else valued
    unknown = sorted(set(moving["symbol"].unique().to_list()) - set(symbols))
    if unknown:
        raise ValueError(f"symbols {unknown} have no price series; calibrate with them or map them in overrides")
    index = {a: i for i, a in enumerate(assets)}
    rows = valued.select(
        "_wid",
        *MARKET_KEY,
        "wallet",
        # A fixed-price position needs no series: its column is never read (its weights are zero in the matrices).
        pl.when(fixed)
        .then(0)
        .otherwise(
            pl.col("symbol").replace_strict(
                {s: index[t] for s, t in symbols.items()}, default=None, return_dtype=pl.Int64
            )
        )
        .alias("_a"),
        fixed.alias("_fixed"),
        pl.col("collateral_usd_now").alias("c"),
        pl.col("debt_usd_now").alias("d"),
        # The engine's own threshold: with the fraction of a bps a WAD threshold carries (Maker's 1 / 1.45 is
        # 6,896.55... bps), which the whole bps column drops.
        threshold_bps(names).alias("lt"),
        pl.col("_bonus").alias("bonus"),
        recovered_usd(names).alias("recovered"),
        (pl.col("_rule") if "_rule" in names else pl.lit("average")).alias("_rule"),
        (pl.col("_close_factor") if "_close_factor" in names else pl.lit(DEFAULT_CLOSE_FACTOR)).alias("_cf"),
        (pl.col("_full_close_below") if "_full_close_below" in names else pl.lit(CLOSE_FACTOR_HF_THRESHOLD))
        .fill_null(0.0)
        .alias("_full"),
        (
            (pl.col("_full_close_base").cast(pl.Float64) / pl.col("_base_unit")).fill_null(0.0)
            if "_full_close_base" in names
            else pl.lit(0.0)
        ).alias("_full_usd"),
    )
    debtors = rows.group_by("_wid").agg(pl.col("d").sum()).filter(pl.col("d") > 0).select("_wid")
    rows = rows.join(debtors, on="_wid", how="semi").sort([*MARKET_KEY, "_wid"])
    wallet_ids, wallet_of_row = np.unique(rows["_wid"].to_numpy(), return_inverse=True)
    first_row = np.zeros(len(wallet_ids), dtype=np.int64)
    first_row[wallet_of_row[::-1]] = np.arange(rows.height)[::-1]
    # np.unique sorts by hash; reorder wallets by their first row so they stay grouped by market.
    order = np.argsort(first_row, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    wallet_of_row = rank[wallet_of_row]
    first_row = first_row[order]
    width = len(assets)
    cell = wallet_of_row * width + rows["_a"].to_numpy()
    size = len(wallet_ids) * width

    def matrix(values: pl.Expr) -> np.ndarray:
        weights = rows.select(pl.when(pl.col("_fixed")).then(0.0).otherwise(values.cast(pl.Float64))).to_series()
        return np.bincount(cell, weights=weights.to_numpy(), minlength=size).reshape(len(wallet_ids), width)

    def fixed_sums(values: pl.Expr) -> np.ndarray:
        weights = rows.select(pl.when(pl.col("_fixed")).then(values.cast(pl.Float64)).otherwise(0.0)).to_series()
        return np.bincount(wallet_of_row, weights=weights.to_numpy(), minlength=len(wallet_ids))

    firsts = rows[first_row]
    market_codes = firsts.select(MARKET_KEY)
    boundaries = run_starts(market_codes)
    recoverable, fixed_recoverable = matrix(pl.col("c") / pl.col("bonus")), fixed_sums(pl.col("c") / pl.col("bonus"))
    # A second matrix only where some protocol's recovery differs from 1 / bonus (a book of Aave and Morpho has none).
    own_recovery = rows.select((pl.col("recovered") != pl.col("c") / pl.col("bonus")).any()).item()
    return Book(
        assets=tuple(assets),
        markets=market_codes[boundaries],
        market_start=boundaries,
        wallets=firsts.select(*MARKET_KEY, "wallet"),
        collateral=matrix(pl.col("c")),
        weighted=matrix(pl.col("c") * pl.col("lt")),
        recoverable=recoverable,
        recovered=matrix(pl.col("recovered")) if own_recovery else recoverable,
        debt=matrix(pl.col("d")),
        fixed_collateral=fixed_sums(pl.col("c")),
        fixed_weighted=fixed_sums(pl.col("c") * pl.col("lt")),
        fixed_recoverable=fixed_recoverable,
        fixed_recovered=fixed_sums(pl.col("recovered")) if own_recovery else fixed_recoverable,
        fixed_debt=fixed_sums(pl.col("d")),
        average_threshold=(firsts["_rule"] != PER_POSITION).to_numpy(),
        close_factor=firsts["_cf"].to_numpy().astype(np.float64),
        full_close_below=firsts["_full"].to_numpy().astype(np.float64),
        full_close_usd=firsts["_full_usd"].to_numpy().astype(np.float64),
    )


@dataclass(frozen=True, eq=False)
class ScenarioLosses:
    """Per scenario and market (S x G): the three metrics, in `book.markets` order."""

    markets: pl.DataFrame
    bad_debt_usd: np.ndarray
    liquidatable_debt_usd: np.ndarray
    seizable_collateral_usd: np.ndarray

    def metric(self, name: str) -> np.ndarray:
        value: np.ndarray = getattr(self, name)
        return value


def wallet_outcomes(
    book: Book, multipliers: np.ndarray, after_bonus: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(bad debt, liquidatable debt, seized collateral, liquidatable), each S x W, for multipliers S x A.

    In place where it can be: at 10k x 100k the time goes in passes over S x W arrays, not in the products.
    Multipliers are positive, so a wallet's shocked collateral is positive exactly when it holds any: the
    zero-collateral masks are per wallet, not per cell.
    """
    collateral = multipliers @ book.collateral.T + book.fixed_collateral
    debt = multipliers @ book.debt.T + book.fixed_debt
    recoverable = multipliers @ book.recoverable.T + book.fixed_recoverable
    own_recovery = book.own_recovery
    recovered = multipliers @ book.recovered.T + book.fixed_recovered if own_recovery else recoverable
    adjusted = multipliers @ book.weighted.T + book.fixed_weighted
    holds = (book.collateral.sum(axis=1) + book.fixed_collateral) > 0
    average = book.average_threshold & holds
    if average.any():
        threshold = np.divide(adjusted, collateral, out=np.zeros_like(adjusted), where=average)
        threshold *= 1 + FLOOR_SLACK
        np.floor(threshold, out=threshold)
        threshold *= collateral
        np.copyto(adjusted, threshold, where=average)
        del threshold
    adjusted /= BPS
    # Every wallet in the book borrows, and positive multipliers keep its debt positive.
    liquidatable = adjusted < debt
    repaid = debt * book.close_factor
    np.copyto(repaid, debt, where=book.closes_whole(adjusted, debt, collateral))
    del adjusted
    np.minimum(repaid, recovered, out=repaid)
    repaid *= liquidatable
    seized = np.divide(collateral, recoverable, out=np.zeros_like(collateral), where=holds)
    seized *= repaid
    if own_recovery:
        np.minimum(seized, collateral, out=seized)
    bad = np.subtract(debt, recovered if after_bonus else collateral, out=debt)
    np.maximum(bad, 0.0, out=bad)
    return bad, repaid, seized, liquidatable


def revalue(
    book: Book, multipliers: np.ndarray, after_bonus: bool = True, workers: int = 2, chunk_cells: int = CHUNK_CELLS
) -> ScenarioLosses:
    """Bad debt, liquidatable debt and seized collateral per scenario and market, in chunks of scenarios."""
    count = multipliers.shape[0]
    groups = len(book.market_start)
    out = {m: np.zeros((count, groups)) for m in METRICS}
    wallets = max(book.debt.shape[0], 1)
    step = max(1, chunk_cells // wallets)

    def run(start: int) -> None:
        chunk = multipliers[start : start + step]
        bad, repaid, seized, _ = wallet_outcomes(book, chunk, after_bonus)
        for name, values in zip(METRICS, (bad, repaid, seized), strict=True):
            if book.debt.shape[0]:
                out[name][start : start + len(chunk)] = np.add.reduceat(values, book.market_start, axis=1)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run, range(0, count, step)))
    return ScenarioLosses(
        book.markets, out["bad_debt_usd"], out["liquidatable_debt_usd"], out["seizable_collateral_usd"]
    )


def var_es(losses: np.ndarray, confidence: float) -> tuple[float, float]:
    """(VaR, ES) of a loss sample: the `confidence` quantile (numpy's linear interpolation) and the mean of the
    worst ceil(n (1 - confidence)) losses (the tail the quantile cuts off, so ES >= VaR)."""
    var = float(np.quantile(losses, confidence))
    tail = max(1, math.ceil(losses.size * (1.0 - confidence) - 1e-9))
    return var, float(np.partition(losses, losses.size - tail)[losses.size - tail :].mean())


def _scopes(losses: ScenarioLosses, metric: str) -> list[tuple[str, str, int | None, str, np.ndarray]]:
    """Each scope's per-scenario sample of `metric`: every market, every protocol (its markets summed per scenario)
    and the total."""
    markets = losses.markets
    values = losses.metric(metric)
    scopes: list[tuple[str, str, int | None, str, np.ndarray]] = [
        ("market", str(p), int(c), str(m), values[:, i])
        for i, (p, c, m) in enumerate(markets.select(MARKET_KEY).iter_rows())
    ]
    for protocol in sorted(set(markets["protocol"].to_list())):
        member = (markets["protocol"] == protocol).to_numpy()
        scopes.append(("protocol", protocol, None, "all", values[:, member].sum(axis=1)))
    scopes.append(("total", "all", None, "all", values.sum(axis=1)))
    return scopes


def risk_table(losses: ScenarioLosses, horizon_hours: int, confidences: Iterable[float] = CONFIDENCES) -> pl.DataFrame:
    """VaR and ES per market, per protocol (markets summed per scenario) and in total, for every metric."""
    rows: list[dict[str, object]] = []
    for metric in METRICS:
        for scope, protocol, chain_id, market, sample in _scopes(losses, metric):
            for confidence in confidences:
                var, es = var_es(sample, confidence)
                rows.append(
                    {
                        "scope": scope,
                        "protocol": protocol,
                        "chain_id": chain_id,
                        "market": market,
                        "metric": metric,
                        "horizon_hours": horizon_hours,
                        "confidence": confidence,
                        "var_usd": var,
                        "es_usd": es,
                        "mean_usd": float(sample.mean()),
                        "scenarios": len(sample),
                    }
                )
    schema = {
        "scope": pl.Utf8,
        "protocol": pl.Utf8,
        "chain_id": pl.Int64,
        "market": pl.Utf8,
        "metric": pl.Utf8,
        "horizon_hours": pl.Int64,
        "confidence": pl.Float64,
        "var_usd": pl.Float64,
        "es_usd": pl.Float64,
        "mean_usd": pl.Float64,
        "scenarios": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def loss_odds(losses: ScenarioLosses, horizon_hours: int) -> pl.DataFrame:
    """Per scope and metric: the share of scenarios with any loss (over a cent) and the worst one; what says plainly
    that a book is safe when its VaR is $0 (fewer scenarios lose anything than the confidence's complement)."""
    rows = [
        {
            "scope": scope,
            "protocol": protocol,
            "chain_id": chain_id,
            "market": market,
            "metric": metric,
            "horizon_hours": horizon_hours,
            "loss_probability": float((sample > 0.01).mean()),
            "worst_usd": float(sample.max()) if sample.size else 0.0,
            "scenarios": len(sample),
        }
        for metric in METRICS
        for scope, protocol, chain_id, market, sample in _scopes(losses, metric)
    ]
    schema = {
        "scope": pl.Utf8,
        "protocol": pl.Utf8,
        "chain_id": pl.Int64,
        "market": pl.Utf8,
        "metric": pl.Utf8,
        "horizon_hours": pl.Int64,
        "loss_probability": pl.Float64,
        "worst_usd": pl.Float64,
        "scenarios": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def monte_carlo_var(
    positions: pl.DataFrame | pl.LazyFrame,
    horizons: Iterable[int] = HORIZONS,
    scenarios: int = 10_000,
    seed: int = 0,
    confidences: Iterable[float] = CONFIDENCES,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    method: Method = "ewma",
    overrides: Mapping[str, str] | None = None,
    after_bonus: bool = True,
    graph: AssetGraph | None = None,
    prices_dir: Path | None = None,
) -> pl.DataFrame:
    """VaR / ES of bad debt, liquidatable debt and seized collateral for `positions`, per horizon (hours); wrapped
    collateral moves with its base's series through the asset `graph`."""
    frame = positions.lazy().collect()
    symbols = sorted(set(frame["symbol"].to_list()))
    frames = []
    for horizon in horizons:
        calibration = calibrate(symbols, start, end, horizon, method, overrides, prices_dir=prices_dir, graph=graph)
        book = build_book(frame, calibration.symbols, calibration.assets)
        # One stream per (seed, horizon): reproducible, and horizons do not share draws.
        multipliers = simulate_multipliers(calibration, scenarios, seed * 1_000_003 + horizon)
        frames.append(risk_table(revalue(book, multipliers, after_bonus), horizon, confidences))
    return pl.concat(frames)


@dataclass(frozen=True)
class KupiecResult:
    """Kupiec's proportion-of-failures test of a VaR series."""

    observations: int  #: periods tested
    exceedances: int  #: periods whose loss exceeded the VaR
    expected_rate: float  #: 1 - confidence
    observed_rate: float  #: exceedances / observations
    lr_statistic: float  #: likelihood ratio, chi-square(1) under a correct VaR
    p_value: float  #: P(chi-square(1) >= lr_statistic)


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * math.log(y)


def kupiec_pof(exceedances: int, observations: int, confidence: float) -> KupiecResult:
    """LR = -2 ln[(1-p)^(T-x) p^x / ((1-x/T)^(T-x) (x/T)^x)], p = 1 - confidence; p-value from chi-square(1)."""
    if observations <= 0 or not 0 <= exceedances <= observations:
        raise ValueError(f"{exceedances} exceedances of {observations} observations is not a backtest")
    p = 1.0 - confidence
    rate = exceedances / observations
    misses = observations - exceedances
    null = _xlogy(misses, 1 - p) + _xlogy(exceedances, p)
    alternative = _xlogy(misses, 1 - rate) + _xlogy(exceedances, rate)
    lr = max(-2.0 * (null - alternative), 0.0)
    # chi-square(1) survival function: P(Z^2 >= lr) = erfc(sqrt(lr / 2)).
    return KupiecResult(observations, exceedances, p, rate, lr, math.erfc(math.sqrt(lr / 2)))


def backtest_var(losses: np.ndarray, var: np.ndarray, confidence: float) -> KupiecResult:
    """Kupiec test of a VaR series against the losses realised over the same periods (exceedance: loss > VaR)."""
    losses, var = np.asarray(losses, dtype=np.float64), np.asarray(var, dtype=np.float64)
    if losses.shape != var.shape:
        raise ValueError(f"{losses.shape[0]} losses against {var.shape[0]} VaR figures")
    return kupiec_pof(int((losses > var).sum()), int(losses.size), confidence)


def historical_backtest(
    positions: pl.DataFrame | pl.LazyFrame,
    start: datetime | date | str,
    end: datetime | date | str,
    horizon_hours: int = 24,
    confidence: float = 0.99,
    metric: str = "liquidatable_debt_usd",
    lookback_days: int = 180,
    scenarios: int = 2_000,
    seed: int = 0,
    method: Method = "ewma",
    overrides: Mapping[str, str] | None = None,
    graph: AssetGraph | None = None,
    prices_dir: Path | None = None,
) -> tuple[pl.DataFrame, KupiecResult]:
    """Today's book through history: at each non-overlapping horizon in [start, end), the total `metric` VaR
    calibrated on the `lookback_days` before, against the `metric` the realised price move gives the book.

    Returns one row per period (time, var_usd, realised_usd, exceedance) and the Kupiec test of the series.
    """
    frame = positions.lazy().collect()
    symbols = sorted(set(frame["symbol"].to_list()))
    panel = load_price_panel(prices_dir)
    mapping = resolve_series(symbols, overrides, [c for c in panel.columns if c != "time"], graph)
    assets = tuple(sorted(set(mapping.values())))
    book = build_book(frame, mapping, assets)
    realised = log_returns(panel, assets, horizon_hours, start, end)
    times, moves = realised["time"].to_list(), np.exp(realised.select(assets).to_numpy())
    realised_losses = revalue(book, moves).metric(metric).sum(axis=1)
    var = np.empty(len(times))
    for k, time in enumerate(times):
        window_start = time - timedelta(days=lookback_days)
        calibration = calibrate(
            symbols, window_start, time, horizon_hours, method, overrides, prices_dir=prices_dir, graph=graph
        )
        multipliers = simulate_multipliers(calibration, scenarios, seed + k)
        var[k] = var_es(revalue(book, multipliers).metric(metric).sum(axis=1), confidence)[0]
    series = pl.DataFrame({"time": times, "var_usd": var, "realised_usd": realised_losses}).with_columns(
        (pl.col("realised_usd") > pl.col("var_usd")).alias("exceedance")
    )
    return series, backtest_var(realised_losses, var, confidence)
