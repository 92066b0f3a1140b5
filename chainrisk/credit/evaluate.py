"""Out-of-time evaluation: ranking (AUC, KS), probability (Brier) and calibration of a scorer against labels."""

from __future__ import annotations

import numpy as np
import polars as pl


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


def calibration(scores: np.ndarray, pd: np.ndarray, y: np.ndarray, buckets: int = 10) -> pl.DataFrame:
    """Rows sorted by score in `buckets` equal-count buckets (riskiest first): predicted vs observed rates."""
    frame = pl.DataFrame({"score": scores, "pd": pd, "y": y}).sort("score")
    n = frame.height
    frame = frame.with_columns((pl.int_range(0, n) * buckets // max(n, 1)).alias("b"))
    return (
        frame.group_by("b")
        .agg(
            pl.col("score").min().cast(pl.Int32).alias("score_min"),
            pl.col("score").max().cast(pl.Int32).alias("score_max"),
            pl.len().alias("wallets"),
            pl.col("y").sum().cast(pl.Int64).alias("liquidated"),
            pl.col("pd").mean().alias("predicted_pd"),
            pl.col("y").mean().alias("observed_rate"),
        )
        .sort("b")
        .with_columns(pl.format("{}/{}", pl.col("b") + 1, buckets).alias("bucket"))
        .drop("b")
    )


def fit_single(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """A one-feature logistic fit (a, b: logit = a + b x), so a baseline gets probabilities for its Brier score."""
    a, b = 0.0, 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-(a + b * x)))
        g = np.array([np.sum(p - y), np.sum((p - y) * x)])
        w = p * (1 - p)
        h = np.array([[w.sum(), (w * x).sum()], [(w * x).sum(), (w * x * x).sum()]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)
