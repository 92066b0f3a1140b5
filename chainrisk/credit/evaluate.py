"""Out-of-time evaluation: ranking (AUC, KS), probability (Brier) and calibration of a scorer against labels."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.special import expit  # the logistic function without exp's overflow warnings


def auc(risk: np.ndarray, y: np.ndarray) -> float | None:
    """Area under the ROC curve of `risk` (higher = riskier) for labels `y` (Mann-Whitney, ties count half)."""
    positives = float(y.sum())
    negatives = float(len(y) - positives)
    if positives == 0 or negatives == 0:
        return None
    ranks = pl.Series(risk).rank("average").to_numpy()
    return float((ranks[y.astype(bool)].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def ks(risk: np.ndarray, y: np.ndarray) -> float | None:
    """Kolmogorov-Smirnov statistic: the largest gap between the liquidated and the safe rows' risk distributions."""
    positives = float(y.sum())
    negatives = float(len(y) - positives)
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(-risk, kind="stable")
    sorted_risk, sorted_y = risk[order], y[order]
    # Only thresholds between distinct risk values.
    last = np.r_[sorted_risk[1:] != sorted_risk[:-1], True]
    tpr = np.cumsum(sorted_y)[last] / positives
    fpr = np.cumsum(1 - sorted_y)[last] / negatives
    return float(np.max(np.abs(tpr - fpr)))


def brier(pd: np.ndarray, y: np.ndarray) -> float | None:
    return float(np.mean((pd - y) ** 2)) if len(y) else None


def count_range(pd: np.ndarray, level: float = 0.95) -> tuple[int, int]:
    """The central `level` range of how many of independent events with probabilities `pd` happen (the exact
    Poisson-binomial distribution): an observed count outside it is more than chance around the prediction."""
    dist = np.zeros(len(pd) + 1)
    dist[0] = 1.0
    for k, p in enumerate(pd, start=1):
        dist[1 : k + 1] = dist[1 : k + 1] * (1 - p) + dist[:k] * p
        dist[0] *= 1 - p
    cumulative = np.cumsum(dist)
    tail = (1 - level) / 2
    return int(np.searchsorted(cumulative, tail)), int(np.searchsorted(cumulative, 1 - tail))


def calibration(scores: np.ndarray, pd: np.ndarray, y: np.ndarray) -> pl.DataFrame:
    """Per score band (riskiest first): wallets, liquidated, the model's mean PD against the observed rate, and the
    central 95 % range of the liquidations the PDs predict (expected_low, expected_high). Bands rather than
    equal-count buckets: safe wallets pile up at the top of the scale, and buckets of one score say nothing."""
    from chainrisk.credit.scorecard import BANDS, band_of

    frame = pl.DataFrame({"score": scores, "pd": pd, "y": y}).with_columns(
        pl.col("score").map_elements(band_of, return_dtype=pl.Utf8).alias("bucket")
    )
    order = {name: i for i, (name, _) in enumerate(BANDS)}
    ranges = {str(bucket): count_range(part["pd"].to_numpy()) for (bucket,), part in frame.group_by(["bucket"])}
    return (
        frame.group_by("bucket")
        .agg(
            pl.col("score").min().cast(pl.Int32).alias("score_min"),
            pl.col("score").max().cast(pl.Int32).alias("score_max"),
            pl.len().cast(pl.Int64).alias("wallets"),
            pl.col("y").sum().cast(pl.Int64).alias("liquidated"),
            pl.col("pd").mean().alias("predicted_pd"),
            pl.col("y").mean().alias("observed_rate"),
        )
        .with_columns(
            pl.col("bucket")
            .replace_strict({k: v[0] for k, v in ranges.items()}, return_dtype=pl.Int64)
            .alias("expected_low"),
            pl.col("bucket")
            .replace_strict({k: v[1] for k, v in ranges.items()}, return_dtype=pl.Int64)
            .alias("expected_high"),
        )
        .sort(pl.col("bucket").replace_strict(order, return_dtype=pl.Int32))
    )


def fit_single(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """A one-feature logistic fit (a, b: logit = a + b x), so a baseline gets probabilities for its Brier score."""
    a, b = 0.0, 0.0
    for _ in range(100):
        p = expit(a + b * x)
        g = np.array([np.sum(p - y), np.sum((p - y) * x)])
        w = p * (1 - p)
        h = np.array([[w.sum(), (w * x).sum()], [(w * x).sum(), (w * x * x).sum()]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)
