"""The credit scorecard: monotone binned features, weights of evidence, a logistic fit, points on 300-850.

Why a scorecard (and not gradient boosting): every point a wallet gets comes from one feature's bin, so the score
adds up on paper, reason codes are exact (the points a wallet lost against the best bin of each feature), and each
feature's points move in the direction economics says (a lower health factor never scores higher), enforced by
merging bins until the bad rate is monotone. The cost is no interactions between features; the evaluation reports
what it reaches against the health-factor baselines (README "Credit scores").

Scale: score = OFFSET + FACTOR x ln(odds of not being liquidated), FACTOR = PDO / ln 2 (PDO = 25 points double the
odds), OFFSET puts even odds (a 50 % 30-day liquidation probability) at 500; clipped to 300-850. The band cut-offs
then sit at 30-day liquidation probabilities of 10 % (580), 0.9 % (670), 0.13 % (740) and 0.025 % (800). A steeper
scale (40 points per doubling) put most healthy borrowers at the 850 ceiling, where the score could no longer rank
them: on the June 2022 evaluation its AUC fell to 0.893 against the probability's 0.922; at 25 it is 0.920.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.special import expit  # the logistic function without exp's overflow warnings

from chainrisk.credit.features import FEATURES, describe, value_text
from chainrisk.credit.regime import MARKET_INPUTS
from chainrisk.errors import UserError

PDO = 25.0
FACTOR = PDO / math.log(2)
ANCHOR_SCORE, ANCHOR_ODDS = 500.0, 1.0
OFFSET = ANCHOR_SCORE - FACTOR * math.log(ANCHOR_ODDS)
SCORE_MIN, SCORE_MAX = 300, 850
#: Bands by their lowest score (FICO's cut-offs).
BANDS: tuple[tuple[str, int], ...] = (
    ("poor", SCORE_MIN),
    ("fair", 580),
    ("good", 670),
    ("very good", 740),
    ("excellent", 800),
)
#: Candidate bin edges per feature: quantiles of the training values.
QUANTILES = tuple(k / 10 for k in range(1, 10))
#: Smallest share of training rows a bin may hold before it is merged into a neighbour.
MIN_BIN_SHARE = 0.02
#: L2 penalty of the logistic fit, per training row.
RIDGE = 1e-4
MODEL_FORMAT = 2
#: Market-state inputs the probability is fitted on (chainrisk.credit.regime), when the training rows carry them.
MARKET_FIT: tuple[str, ...] = tuple(MARKET_INPUTS)


def band_of(score: int) -> str:
    name = BANDS[0][0]
    for band, low in BANDS:
        if score >= low:
            name = band
    return name


def next_band(score: int) -> tuple[str, int] | None:
    """The band above the one `score` is in, and its lowest score (None in the top band)."""
    for band, low in BANDS:
        if low > score:
            return band, low
    return None


def score_of_logit(logit_bad: np.ndarray) -> np.ndarray:
    """Scores (rounded, clipped) for log-odds of liquidation."""
    scores: np.ndarray = np.clip(np.round(OFFSET - FACTOR * logit_bad), SCORE_MIN, SCORE_MAX).astype(np.int64)
    return scores


@dataclass
class FeatureCard:
    name: str
    direction: int  #: +1: more means more risk
    edges: list[float]  #: bin i holds edges[i-1] < x <= edges[i] (open ends)
    woe: list[float]  #: ln(share of good / share of bad) per bin
    beta: float  #: logistic weight of the WOE
    points: list[float] = field(default_factory=list)  #: score points per bin

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        index: np.ndarray = np.searchsorted(np.asarray(self.edges, dtype=float), values, side="left")
        return index

    def label(self, index: int) -> str:
        lo = "-inf" if index == 0 else f"{self.edges[index - 1]:.4g}"
        hi = "inf" if index == len(self.edges) else f"{self.edges[index]:.4g}"
        return f"({lo}, {hi}]"


@dataclass
class Scorecard:
    features: list[FeatureCard]
    intercept: float
    horizon_days: int
    trained: dict[str, Any]  #: what it was trained on (chain, cutoffs, rows, liquidated)
    #: Market-state input (chainrisk.credit.regime.MARKET_INPUTS) -> its weight on the log-odds (never negative: a
    #: more volatile or deeper-fallen market never lowers a probability). Each input's points are -FACTOR x weight x
    #: value: 0 in a market that does not move.
    market: dict[str, float] = field(default_factory=dict)
    format: int = MODEL_FORMAT

    @property
    def version(self) -> str:
        body = json.dumps(
            [asdict(f) for f in self.features] + [self.intercept, self.horizon_days, self.market], sort_keys=True
        )
        return "sc-" + hashlib.sha256(body.encode()).hexdigest()[:10]

    # -- scoring ---------------------------------------------------------------------------------------------
    def bins(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        return {f.name: f.bin_index(frame[f.name].fill_null(np.nan).to_numpy().astype(float)) for f in self.features}

    def logit(self, frame: pl.DataFrame) -> np.ndarray:
        """Log-odds of liquidation within the horizon, per row."""
        total = np.full(frame.height, self.intercept)
        for f, index in zip(self.features, self.bins(frame).values(), strict=True):
            total -= f.beta * np.asarray(f.woe)[index]
        for name, weight in self.market.items():
            total += weight * frame[name].cast(pl.Float64).to_numpy()
        return total

    def pd(self, frame: pl.DataFrame) -> np.ndarray:
        probability: np.ndarray = expit(self.logit(frame))
        return probability

    def score(self, frame: pl.DataFrame) -> np.ndarray:
        return score_of_logit(self.logit(frame))

    def explain(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Per row and feature (long: row, feature, value, bin, points, max_points): where the row's points come
        from (`reasons` reads the reason codes off it)."""
        rows: dict[str, list[Any]] = {k: [] for k in ("row", "feature", "value", "bin", "points", "max_points")}
        for f, index in zip(self.features, self.bins(frame).values(), strict=True):
            points = np.asarray(f.points)[index]
            rows["row"].extend(range(frame.height))
            rows["feature"].extend([f.name] * frame.height)
            rows["value"].extend(frame[f.name].cast(pl.Float64).to_list())
            rows["bin"].extend(f.label(int(i)) for i in index)
            rows["points"].extend(points.tolist())
            rows["max_points"].extend([max(f.points)] * frame.height)
        for name, weight in self.market.items():
            values = frame[name].cast(pl.Float64).to_numpy()
            rows["row"].extend(range(frame.height))
            rows["feature"].extend([name] * frame.height)
            rows["value"].extend(values.tolist())
            rows["bin"].extend(["market (linear)"] * frame.height)
            rows["points"].extend((-FACTOR * weight * values).tolist())
            rows["max_points"].extend([0.0] * frame.height)
        return pl.DataFrame(
            rows,
            schema={
                "row": pl.Int64,
                "feature": pl.Utf8,
                "value": pl.Float64,
                "bin": pl.Utf8,
                "points": pl.Float64,
                "max_points": pl.Float64,
            },
        )

    def reasons(self, explained: pl.DataFrame, top: int = 3) -> pl.DataFrame:
        """row -> reasons (feature names) and reason_text, the `top` largest shortfalls (none for a top score)."""
        lost = (
            explained.with_columns((pl.col("max_points") - pl.col("points")).alias("lost"))
            .filter(pl.col("lost") > 0.5)
            .sort(["row", "lost", "feature"], descending=[False, True, False])
            .group_by("row", maintain_order=True)
            .head(top)
        )
        # Every value with its unit (a bare "= 1.038" says nothing of whether it is a ratio, a share or a rate).
        text = [
            f"{describe(feature)} = {value_text(feature, value)} costs {round(points):d} points"
            for feature, value, points in lost.select("feature", "value", "lost").iter_rows()
        ]
        return (
            lost.with_columns(pl.Series("text", text, pl.Utf8))
            .group_by("row", maintain_order=True)
            .agg(pl.col("feature").alias("reasons"), pl.col("text").alias("reason_text"))
        )

    # -- files -----------------------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        body = {
            "format": self.format,
            "version": self.version,
            "intercept": self.intercept,
            "horizon_days": self.horizon_days,
            "trained": self.trained,
            "market": self.market,
            "scale": {"pdo": PDO, "anchor_score": ANCHOR_SCORE, "anchor_odds": ANCHOR_ODDS},
            "features": [asdict(f) for f in self.features],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(body, indent=1) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Scorecard:
        try:
            body = json.loads(path.read_text())
            if body.get("format") != MODEL_FORMAT:
                raise UserError(f"{path} is a credit model of format {body.get('format')!r}; expected {MODEL_FORMAT}")
            card = cls(
                features=[FeatureCard(**f) for f in body["features"]],
                intercept=float(body["intercept"]),
                horizon_days=int(body["horizon_days"]),
                trained=dict(body["trained"]),
                market={str(k): float(v) for k, v in body["market"].items()},
            )
        except FileNotFoundError:
            raise UserError(f"no credit model at {path}; train one with `chainrisk credit train`") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"{path} is not a chainrisk credit model ({type(exc).__name__}: {exc})") from None
        unknown = [f.name for f in card.features if f.name not in FEATURES] + [
            name for name in card.market if name not in MARKET_INPUTS
        ]
        if unknown:
            raise UserError(f"{path} uses features this chainrisk does not compute: {', '.join(unknown)}")
        if card.version != body.get("version"):
            raise UserError(f"{path} was edited after training (version {body.get('version')} != {card.version})")
        return card


# -- fitting -------------------------------------------------------------------------------------------------------
def _monotone_bins(x: np.ndarray, y: np.ndarray, direction: int) -> list[float]:
    """Quantile edges merged until every bin holds MIN_BIN_SHARE of the rows and the liquidation rate rises with the
    value (direction +1) or falls (-1)."""
    edges = sorted({float(q) for q in np.quantile(x, QUANTILES)})
    edges = [e for e in edges if e < x.max()]
    min_rows = max(1, int(MIN_BIN_SHARE * len(x)))
    while edges:
        index = np.searchsorted(np.asarray(edges), x, side="left")
        counts = np.bincount(index, minlength=len(edges) + 1)
        bad = np.bincount(index, weights=y, minlength=len(edges) + 1)
        rate = (bad + 0.5) / (counts + 1.0)
        small = [i for i in range(len(counts)) if counts[i] < min_rows]
        violations = [i for i in range(len(rate) - 1) if (rate[i + 1] - rate[i]) * direction < 0]
        if not small and not violations:
            break
        # Merge at the first problem: remove the edge between bin i and i + 1.
        i = small[0] if small else violations[0]
        edges.pop(min(i, len(edges) - 1))
    return edges


def _woe(index: np.ndarray, y: np.ndarray, bins: int) -> np.ndarray:
    counts = np.bincount(index, minlength=bins).astype(float)
    bad = np.bincount(index, weights=y, minlength=bins)
    good = counts - bad
    woe: np.ndarray = np.log(((good + 0.5) / (good.sum() + 0.5)) / ((bad + 0.5) / (bad.sum() + 0.5)))
    return woe


def _logistic(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Ridge logistic regression by Newton's method with one unpenalised intercept per group (a training cutoff):
    the market's regime at each cutoff moves its intercept, not the features' weights. Returns
    [intercepts per group..., weights...]."""
    labels, index = np.unique(groups, return_inverse=True)
    design = np.column_stack([np.eye(len(labels))[index], x])
    w = np.zeros(design.shape[1])
    penalty = RIDGE * len(x) * np.eye(design.shape[1])
    penalty[: len(labels), : len(labels)] = 0.0
    for _ in range(100):
        p = expit(design @ w)
        grad = design.T @ (p - y) + penalty @ w
        hess = (design * (p * (1 - p))[:, None]).T @ design + penalty + 1e-9 * np.eye(design.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return w


def _pooled_fit(risk: np.ndarray, y: np.ndarray, market: np.ndarray) -> np.ndarray:
    """The intercept, the slope on the features' log-odds (`risk`, fitted within cutoffs) and the market-state
    weights (columns of `market`) that fit the training rows pooled over all cutoffs: [intercept, slope, weights...].
    The slope is under 1 when the within-cutoff weights rank too steeply for the pooled history: a calm month
    liquidates only the nearly liquidatable, a crash also the comfortable, and a probability must hold over both."""
    design = np.column_stack([np.ones(len(y)), risk, market])
    w = np.zeros(design.shape[1])
    w[0] = float(np.log((y.mean() + 1e-9) / (1 - y.mean() + 1e-9)))
    w[1] = 1.0
    for _ in range(100):
        p = expit(design @ w)
        grad = design.T @ (p - y)
        hess = (design * (p * (1 - p))[:, None]).T @ design + 1e-9 * np.eye(design.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-12:
            break
    return w


def fit(train: pl.DataFrame, horizon_days: int, trained: dict[str, Any]) -> Scorecard:
    """Fits the scorecard on labelled rows (FEATURES columns, `liquidated`, and `as_of_block` naming each row's
    cutoff). Weights are fitted with one intercept per cutoff, so a feature that only tracks the date (every
    wallet's age grows with it) cannot stand in for the market's regime; the score's intercept is then the one
    matching the average liquidation rate over all cutoffs. Features whose weight comes out negative (their evidence
    already carried by others, against their economic direction) are dropped and the fit repeated, so every kept
    feature scores in its economic direction."""
    y = train["liquidated"].cast(pl.Float64).to_numpy()
    if y.sum() < 5 or (len(y) - y.sum()) < 5:
        raise UserError(f"too few liquidated ({int(y.sum())}) or safe ({int(len(y) - y.sum())}) rows to train on")
    groups = train["as_of_block"].to_numpy() if "as_of_block" in train.columns else np.zeros(len(y))
    n_groups = len(np.unique(groups))
    cards = []
    for name, (_, direction) in FEATURES.items():
        x = train[name].fill_null(np.nan).to_numpy().astype(float)
        x = np.nan_to_num(x, nan=0.0)
        edges = _monotone_bins(x, y, direction)
        if not edges:
            continue  # one bin: no evidence
        index = np.searchsorted(np.asarray(edges), x, side="left")
        cards.append(FeatureCard(name, direction, edges, _woe(index, y, len(edges) + 1).tolist(), 0.0))
    while True:
        matrix = np.column_stack(
            [np.asarray(c.woe)[c.bin_index(np.nan_to_num(train[c.name].to_numpy().astype(float)))] for c in cards]
        )
        w = _logistic(-matrix, y, groups)[n_groups:]  # logit(bad) = a_cutoff - sum(beta x WOE)
        negative = [i for i, b in enumerate(w) if b <= 0]
        if not negative:
            break
        cards.pop(min(negative, key=lambda i: w[i]))
        if not cards:
            raise UserError("no feature carries evidence of liquidation in the training rows")
    risk = -(matrix @ w)
    # The market's state at each cutoff moves every wallet's odds alike; an input whose weight comes out negative
    # (a calmer market riskier) is dropped and the rest refitted.
    market = [name for name in MARKET_FIT if name in train.columns]
    while True:
        columns = [train[name].cast(pl.Float64).to_numpy() for name in market]
        pooled = _pooled_fit(risk, y, np.column_stack(columns) if columns else np.zeros((len(y), 0)))
        if all(weight > 0 for weight in pooled[2:]):
            break
        market.pop(int(np.argmin(pooled[2:])))
    intercept, slope = float(pooled[0]), float(pooled[1])
    share = (OFFSET - FACTOR * intercept) / len(cards)
    for card, beta in zip(cards, w * slope, strict=True):
        card.beta = float(beta)
        card.points = [float(share + FACTOR * beta * v) for v in card.woe]
    weights = {name: float(weight) for name, weight in zip(market, pooled[2:], strict=True)}
    return Scorecard(cards, intercept, horizon_days, trained, weights)
