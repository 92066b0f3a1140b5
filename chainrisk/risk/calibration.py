"""Calibration of market risk from real hourly USD prices: volatilities, correlations and fat tails per horizon.

Data: ../shared/data/prices/hourly_usd/<SERIES>_usd.csv (bhemen/aave-data, CoinGecko USD prices, 2021-01-01 to
2023-02-25; see /work/shared/data/README.md). Timestamps are milliseconds; rows are roughly hourly with jitter and
gaps. The panel puts each series on an hourly UTC grid (last quote of each hour), carries a quote forward across
gaps of up to `FILL_HOURS` and leaves longer gaps empty, so no return spans a long gap.

Cleaning, stated because it changes the figures:
- stETH before `STETH_START` is dropped: in early 2021 the CoinGecko stETH quote is noisy (its monthly 1 %
  quantile of stETH/ETH is 0.93 against 0.98 from June 2021 on, one hourly ratio is 0.869 in April 2021) while the
  token traded near par. From then on a stETH hour whose stETH/ETH ratio departs from its centred 25-hour median by
  more than `STETH_RATIO_SPIKE` (log) is dropped: single-hour quotes out of step with ETH (e.g. 1.208 on
  2022-06-13 04:00); the persistent discount of June 2022 moves the median with it and is kept.
- Every series: an hour whose log price departs from its centred 25-hour median by more than `SPIKE_LOG` is a bad
  print and dropped; a real crash persists, so the median follows it and the move is kept.

Returns are log returns over non-overlapping windows of the horizon (1 h, 24 h, 168 h), taken only where every
requested series has both ends (complete cases), with zero mean assumed in scenarios (means at these horizons are
noise). `method="sample"`: sample covariance over the window. `method="ewma"`: RiskMetrics exponentially weighted
covariance with decay `lambda` per observation (0.94 by default, RiskMetrics' daily figure), the latest estimate.

Fat tails: returns standardised by their volatility (the sample one, or for EWMA the one forecast the step before,
i.e. filtered residuals) are fitted by maximum likelihood to a unit-variance Student-t: per asset
(`asset_dof`, for inspection) and jointly as a multivariate t with the calibrated correlation (`dof`, which the
scenario generator uses). The likelihood is maximised on a fine log grid of degrees of freedom in (2, 200].
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from chainrisk.chains.moves import AssetGraph
from chainrisk.errors import first_line

#: ../shared/data/prices/hourly_usd beside the repository: where the price history lies in a checkout next to it.
DEFAULT_PRICES_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "prices" / "hourly_usd"
#: The environment variable naming the price history's folder (its <SERIES>_usd.csv files) when none is given.
PRICES_ENV = "CHAINRISK_PRICES_DIR"
#: Longest gap (hours) a quote is carried across; longer gaps stay empty so no return spans them.
FILL_HOURS = 3
#: stETH quotes start here (noisy before; see the module docstring).
STETH_START = datetime(2021, 6, 1, tzinfo=UTC)
STETH_RATIO_SPIKE = 0.02
SPIKE_LOG = 0.2
#: Centred window (hours) of the rolling medians the spike filters compare with.
SPIKE_WINDOW = 25
RISKMETRICS_LAMBDA = 0.94
DATA_START = datetime(2021, 1, 1, tzinfo=UTC)
DATA_END = datetime(2023, 2, 26, tzinfo=UTC)
#: Degrees of freedom the likelihood is searched over: 2 (no variance) excluded, 200 is a normal in practice.
_DOF_GRID = np.exp(np.linspace(math.log(2.05), math.log(200.0), 400))
#: Every how many grid points the likelihood is first taken (_grid_argmax).
_DOF_COARSE_STEP = 8

#: Market symbol -> price series. LSTs follow stETH (the exchange rate is irrelevant to returns), wrapped and
#: bridged tokens their namesakes, USD stablecoins without a series of their own the nearest one. A symbol with
#: a series file of its own name maps to it without being listed.
DEFAULT_SERIES: dict[str, str] = {
    "ETH": "WETH",
    "WETH": "WETH",
    "wstETH": "stETH",
    "stETH": "stETH",
    "rETH": "stETH",
    "cbETH": "stETH",
    "weETH": "stETH",
    "osETH": "stETH",
    "ETHx": "stETH",
    "sfrxETH": "stETH",
    "WBTC": "WBTC",
    "cbBTC": "WBTC",
    "tBTC": "WBTC",
    "LBTC": "WBTC",
    "USDC": "USDC",
    "USDT": "USDT",
    "DAI": "DAI",
    "USDS": "DAI",
    "sDAI": "DAI",
    "GHO": "USDC",
    "PYUSD": "USDC",
    "crvUSD": "USDC",
}

Method = Literal["sample", "ewma"]


class CalibrationError(ValueError):
    """A calibration the data cannot support (unknown symbol, too few returns); the message names the fix."""


@dataclass(frozen=True, eq=False)
class Calibration:
    """Per-horizon risk of a set of price series; every vector and matrix is in the order of `assets`."""

    assets: tuple[str, ...]  #: price series (file names without _usd.csv)
    symbols: Mapping[str, str]  #: market symbol -> series in `assets`
    vols: np.ndarray  #: standard deviation of the log return over the horizon, per asset
    corr: np.ndarray  #: correlation matrix of those returns (symmetric, PSD, unit diagonal)
    dof: float  #: joint Student-t degrees of freedom (multivariate t with `corr`), used for scenarios
    asset_dof: np.ndarray  #: per-asset Student-t degrees of freedom (marginal fits, for inspection)
    window: tuple[datetime, datetime]  #: first and last return's start time used
    horizon_hours: int  #: return horizon
    method: Method  #: "sample" or "ewma"
    ewma_lambda: float | None  #: decay per observation for "ewma"
    observations: int  #: non-overlapping returns used
    extra: Mapping[str, float] = field(default_factory=dict)  #: free-form diagnostics (log-likelihoods)

    def table(self) -> pl.DataFrame:
        """One row per asset: vol, annualised vol and marginal degrees of freedom."""
        per_year = math.sqrt(24 * 365 / self.horizon_hours)
        return pl.DataFrame(
            {
                "asset": list(self.assets),
                "horizon_hours": self.horizon_hours,
                "vol": self.vols,
                "annualised_vol": self.vols * per_year,
                "asset_dof": self.asset_dof,
            }
        )


def _as_datetime(value: datetime | date | str | None, default: datetime) -> datetime:
    if value is None:
        return default
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _hourly(path: Path) -> pl.DataFrame:
    """One series on the hourly grid of its own span: the last quote of each hour, bad prints dropped."""
    series = path.name.removesuffix("_usd.csv")
    frame = (
        pl.read_csv(path, schema_overrides={"timestamp": pl.Int64, "USD_price": pl.Float64})
        .filter(pl.col("USD_price").is_finite() & (pl.col("USD_price") > 0))
        .select(
            pl.from_epoch((pl.col("timestamp") // 3_600_000) * 3_600, time_unit="s")
            .dt.replace_time_zone("UTC")
            .alias("time"),
            pl.col("USD_price").log().alias("log_price"),
        )
        .sort("time")
        .group_by("time", maintain_order=True)
        .last()
    )
    median = pl.col("log_price").rolling_median(SPIKE_WINDOW, center=True, min_samples=1)
    frame = frame.filter((pl.col("log_price") - median).abs() <= SPIKE_LOG)
    return frame.rename({"log_price": series})


def _readable(path: Path) -> pl.DataFrame:
    """_hourly, with a file it cannot read (a wrong header, no rows, bytes that are not CSV) named in one line."""
    try:
        frame = _hourly(path)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(
            f"cannot read the price history {path} ({type(exc).__name__}: {first_line(exc)[:160]}); it needs the "
            "columns timestamp (ms) and USD_price, one quote a row"
        ) from None
    if frame.is_empty():
        raise CalibrationError(f"the price history {path} holds no positive price; fix or remove the file")
    return frame


def prices_folder(given: Path | None = None) -> Path:
    """The price history's folder: `given` (a command's --prices, a config's [risk] prices), else $CHAINRISK_PRICES_DIR,
    else ../shared/data/prices/hourly_usd beside the repository (DEFAULT_PRICES_DIR)."""
    if given is not None:
        return given
    env = os.environ.get(PRICES_ENV)
    return Path(env) if env else DEFAULT_PRICES_DIR


def load_price_panel(prices_dir: Path | None = None, fill_hours: int = FILL_HOURS) -> pl.DataFrame:
    """All series as log prices on one hourly UTC grid: `time` and one Float64 column per series (null in gaps), from
    the folder prices_folder(`prices_dir`) names."""
    return _price_panel(prices_folder(prices_dir), fill_hours)


@lru_cache(maxsize=4)
def _price_panel(prices_dir: Path, fill_hours: int) -> pl.DataFrame:
    paths = sorted(prices_dir.glob("*_usd.csv"))
    if not paths:
        raise CalibrationError(
            f"no price history in {prices_dir} (no *_usd.csv files): give the folder of hourly USD prices, one "
            f"<SERIES>_usd.csv each (columns symbol, timestamp in ms, USD_price), with --prices, [risk] prices in "
            f"chainrisk.toml, or ${PRICES_ENV}"
        )
    series = [_readable(p) for p in paths]
    start, end = (
        pl.concat([s.select("time") for s in series]).select(pl.min("time"), pl.max("time").alias("end")).row(0)
    )
    grid = pl.DataFrame({"time": pl.datetime_range(start, end, "1h", time_zone="UTC", eager=True)})
    panel = grid
    for s in series:
        panel = panel.join(s, on="time", how="left")
    if "stETH" in panel.columns and "WETH" in panel.columns:
        ratio = pl.col("stETH") - pl.col("WETH")
        # Interpolated WETH hours keep the ratio's median defined across a one-hour WETH gap.
        median = ratio.rolling_median(SPIKE_WINDOW, center=True, min_samples=1)
        keep = (pl.col("time") >= STETH_START) & ((ratio - median).abs() <= STETH_RATIO_SPIKE)
        panel = panel.with_columns(pl.when(keep).then(pl.col("stETH")).alias("stETH"))
    names = [c for c in panel.columns if c != "time"]
    return panel.with_columns(pl.col(names).fill_null(strategy="forward", limit=fill_hours))


def resolve_series(
    symbols: Iterable[str],
    overrides: Mapping[str, str] | None = None,
    available: Iterable[str] | None = None,
    graph: AssetGraph | None = None,
    prices_dir: Path | None = None,
) -> dict[str, str]:
    """Market symbol -> price series: `overrides`, then (for a wrapper of the asset `graph`) its base's series, so an
    aToken or vault share moves with what it is a claim on, then DEFAULT_SERIES, then a series of the symbol's own
    name."""
    known = set(load_price_panel(prices_dir).columns) - {"time"} if available is None else set(available)
    explicit = dict(overrides or {})
    mapping = {**DEFAULT_SERIES, **explicit}
    resolved: dict[str, str] = {}
    for symbol in symbols:
        base = symbol if graph is None or symbol in explicit else graph.base(symbol)
        target = mapping.get(base, base if base in known else None)
        if target is None or target not in known:
            what = f"maps to {target!r}, which has no price series" if target else "has no price series"
            where = f"(a claim on {base}, which {what})" if base != symbol else what
            raise CalibrationError(
                f"market symbol {symbol!r} {where}; map it to one of {sorted(known)} in the [risk] series table of "
                f"chainrisk.toml (overrides= in Python)"
            )
        resolved[symbol] = target
    return resolved


def log_returns(
    panel: pl.DataFrame,
    assets: Iterable[str],
    horizon_hours: int,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
) -> pl.DataFrame:
    """Non-overlapping log returns over `horizon_hours`, starting in [start, end), complete cases only."""
    names = list(assets)
    begin, finish = _as_datetime(start, DATA_START), _as_datetime(end, DATA_END)
    window = panel.filter((pl.col("time") >= begin) & (pl.col("time") < finish)).select("time", *names)
    # Rows every horizon_hours from the window's first hour; the return runs to the next such row.
    sampled = window.gather_every(horizon_hours)
    return (
        sampled.with_columns(pl.col(names).shift(-1) - pl.col(names))
        .head(max(sampled.height - 1, 0))
        .drop_nulls()
        .filter(pl.all_horizontal(pl.col(names).is_finite()))
    )


def ewma_covariances(returns: np.ndarray, lam: float) -> np.ndarray:
    """RiskMetrics recursion S_t = lam S_{t-1} + (1 - lam) r_t r_t', seeded with the first 20 returns' second
    moment; returns the T + 1 estimates (index t: the forecast before return t)."""
    count, width = returns.shape
    seed_rows = returns[: min(20, count)]
    current = seed_rows.T @ seed_rows / max(len(seed_rows), 1)
    out = np.empty((count + 1, width, width))
    out[0] = current
    for t in range(count):
        current = lam * current + (1.0 - lam) * np.outer(returns[t], returns[t])
        out[t + 1] = current
    return out


def filtered_residuals(returns: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Each return over the volatility forecast before it: `returns` (T x N) over the square root of the diagonal of
    `path`'s first T estimates (ewma_covariances of `returns`), the forecast floored just above zero."""
    residuals: np.ndarray = returns / np.sqrt(np.maximum(np.einsum("tii->ti", path[:-1]), 1e-30))
    return residuals


def _t_loglik_unit_variance(z: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """Log-likelihood of each dof for z under a Student-t rescaled to unit variance; z is 1-d, dof 1-d."""
    nu = dof[:, None]
    scale2 = (nu - 2.0) / nu
    log_norm = (
        np.vectorize(math.lgamma)((nu + 1) / 2)
        - np.vectorize(math.lgamma)(nu / 2)
        - 0.5 * np.log(nu * math.pi * scale2)
    )
    loglik: np.ndarray = (log_norm - (nu + 1) / 2 * np.log1p(z[None, :] ** 2 / (nu * scale2))).sum(axis=1)
    return loglik


def _grid_argmax(loglik: Callable[[np.ndarray], np.ndarray]) -> int:
    """The index of _DOF_GRID where `loglik` (the log-likelihoods of an array of dofs) is greatest, taken at every
    _DOF_COARSE_STEP-th dof first, then at every dof between the best one's coarse neighbours: the same index as the
    whole grid's argmax wherever the likelihood rises then falls along the grid, as it did in every one of 2,937 fits
    of 1 h and 24 h returns of the 37 series in ../shared/data (random windows of 100 to 26,000 hours), at a sixth
    of the work. Where the coarse values do not rise then fall, the whole grid is taken."""
    coarse_index = np.unique(np.append(np.arange(0, len(_DOF_GRID), _DOF_COARSE_STEP), len(_DOF_GRID) - 1))
    coarse = loglik(_DOF_GRID[coarse_index])
    best = int(np.argmax(coarse))
    if not (np.all(np.diff(coarse[: best + 1]) >= 0) and np.all(np.diff(coarse[best:]) <= 0)):
        return int(np.argmax(loglik(_DOF_GRID)))
    low = int(coarse_index[max(best - 1, 0)])
    high = int(coarse_index[min(best + 1, len(coarse_index) - 1)])
    return low + int(np.argmax(loglik(_DOF_GRID[low : high + 1])))


def fit_dof(z: np.ndarray) -> float:
    """Maximum-likelihood degrees of freedom of a unit-variance Student-t for standardised residuals `z`."""
    z = z[np.isfinite(z)]
    if z.size < 10:
        raise CalibrationError(f"{z.size} returns are too few to fit a Student-t; widen the window")
    return float(_DOF_GRID[_grid_argmax(lambda dof: _t_loglik_unit_variance(z, dof))])


def fit_joint_dof(z: np.ndarray, corr: np.ndarray) -> tuple[float, float]:
    """(dof, log-likelihood) of a unit-variance multivariate t with correlation `corr` for rows of `z` (T x A)."""
    width = corr.shape[0]
    eigenvalues, vectors = np.linalg.eigh(corr)
    eigenvalues = np.maximum(eigenvalues, 1e-12)
    inverse = (vectors / eigenvalues) @ vectors.T
    quad = np.einsum("ti,ij,tj->t", z, inverse, z)
    log_det = float(np.log(eigenvalues).sum())

    def loglik(dofs: np.ndarray) -> np.ndarray:
        found = []
        for nu in dofs:
            scale2 = (nu - 2.0) / nu
            found.append(
                (
                    math.lgamma((nu + width) / 2)
                    - math.lgamma(nu / 2)
                    - width / 2 * math.log(nu * math.pi * scale2)
                    - 0.5 * log_det
                )
                * len(z)
                - (nu + width) / 2 * float(np.log1p(quad / (nu * scale2)).sum())
            )
        return np.array(found)

    index = _grid_argmax(loglik)
    return float(_DOF_GRID[index]), float(loglik(_DOF_GRID[index : index + 1])[0])


def nearest_correlation(cov: np.ndarray) -> np.ndarray:
    """Correlation of a covariance, symmetrised with negative eigenvalues (rounding) clipped to zero."""
    sd = np.sqrt(np.maximum(np.diag(cov), 1e-30))
    corr = cov / np.outer(sd, sd)
    corr = (corr + corr.T) / 2
    eigenvalues, vectors = np.linalg.eigh(corr)
    corr = (vectors * np.maximum(eigenvalues, 0.0)) @ vectors.T
    sd = np.sqrt(np.diag(corr))
    corr = corr / np.outer(sd, sd)
    np.fill_diagonal(corr, 1.0)
    result: np.ndarray = corr
    return result


def calibrate(
    symbols: Iterable[str],
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    horizon_hours: int = 24,
    method: Method = "ewma",
    overrides: Mapping[str, str] | None = None,
    ewma_lambda: float = RISKMETRICS_LAMBDA,
    prices_dir: Path | None = None,
    graph: AssetGraph | None = None,
) -> Calibration:
    """Vols, correlation and Student-t tails of the series behind market `symbols` over [start, end) (wrappers of
    the asset `graph` through their base's series)."""
    if method not in ("sample", "ewma"):
        raise CalibrationError(f"method {method!r} is unknown; use 'sample' or 'ewma'")
    if horizon_hours < 1:
        raise CalibrationError(f"horizon_hours={horizon_hours} must be at least 1")
    panel = load_price_panel(prices_dir)
    mapping = resolve_series(symbols, overrides, [c for c in panel.columns if c != "time"], graph)
    assets = tuple(sorted(set(mapping.values())))
    returns_frame = log_returns(panel, assets, horizon_hours, start, end)
    if returns_frame.height < 10 * len(assets) and returns_frame.height < 30:
        raise CalibrationError(
            f"only {returns_frame.height} complete {horizon_hours} h returns for {list(assets)} in the window;"
            " widen it or drop the series that starts late"
        )
    returns = returns_frame.select(assets).to_numpy()
    if method == "sample":
        cov = np.cov(returns, rowvar=False, ddof=1).reshape(len(assets), len(assets))
        z = (returns - returns.mean(axis=0)) / np.sqrt(np.diag(cov))
    else:
        path = ewma_covariances(returns, ewma_lambda)
        cov = path[-1]
        z = filtered_residuals(returns, path)
    vols = np.sqrt(np.diag(cov))
    corr = nearest_correlation(cov)
    asset_dof = np.array([fit_dof(z[:, i]) for i in range(len(assets))])
    dof, loglik = fit_joint_dof(z, corr)
    times = returns_frame["time"]
    return Calibration(
        assets=assets,
        symbols=mapping,
        vols=vols,
        corr=corr,
        dof=dof,
        asset_dof=asset_dof,
        window=(times.min(), times.max()),  # type: ignore[arg-type]
        horizon_hours=horizon_hours,
        method=method,
        ewma_lambda=ewma_lambda if method == "ewma" else None,
        observations=returns_frame.height,
        extra={"joint_loglik": loglik},
    )
