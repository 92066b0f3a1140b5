"""`chainrisk credit`: score wallets as of a block, train the scorecard, evaluate it out of time.

Reads the credit history (`chainrisk credit history`) and stored events; writes credit_scores, credit_features and
credit_advice (scoring), a model file (training), credit_evaluations and credit_calibration (evaluation).
Training rows: every borrower at cutoffs `every_days` apart whose label window (cutoff + horizon) ends by the
training end, each labelled "liquidated within the horizon". Out of time: the model evaluated at T is trained only on
cutoffs whose label windows close by T, then scores the borrowers at T against what happened in the horizon after T.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from chainrisk.credit.advice import TARGET_PD, advice, credit_limit
from chainrisk.credit.evaluate import auc, brier, calibration, fit_single, ks
from chainrisk.credit.features import (
    History,
    cutoff_sample,
    features,
    history_from_frames,
    horizon_covered,
    labelled,
    market_at,
)
from chainrisk.credit.regime import MarketState
from chainrisk.credit.scorecard import BANDS, Scorecard, band_of, fit
from chainrisk.credit.shipped import BUNDLED_MODEL
from chainrisk.errors import UserError
from chainrisk.protocols.adapter import adapters
from chainrisk.store.db import Store
from chainrisk.store.history import HOUR_S
from chainrisk.store.views import LENDING_EVENTS, query_sql
from chainrisk.units import DAY_S

#: The model `chainrisk credit` uses without --model: trained on the devnet history (README "Credit scores").
DEFAULT_MODEL = BUNDLED_MODEL
#: History a wallet population needs before its first training cutoff (the window features' length is 90 days;
#: a month gives them something to measure).
MIN_HISTORY_DAYS = 30
#: The columns of credit_calibration (the calibration frame carries the expected range besides).
CALIBRATION_COLUMNS = ("bucket", "score_min", "score_max", "wallets", "liquidated", "predicted_pd", "observed_rate")


@dataclass(frozen=True)
class CreditReport:
    chain_id: int
    as_of_block: int
    as_of_timestamp: int
    model_version: str
    wallets: int
    borrowers: int
    bands: dict[str, int]
    seconds: float

    def line(self) -> str:
        when = datetime.fromtimestamp(self.as_of_timestamp, UTC).strftime("%Y-%m-%d %H:%M")
        bands = ", ".join(f"{k} {v}" for k, v in self.bands.items())
        return (
            f"credit scores as of block {self.as_of_block} ({when} UTC) by model {self.model_version}: "
            f"{self.wallets} wallets ({self.borrowers} borrowing): {bands} ({self.seconds:.1f} s)"
        )


@dataclass
class Evaluation:
    cutoff_block: int
    cutoff_timestamp: int
    train_cutoffs: int
    train_rows: int
    train_liquidated: int
    metrics: pl.DataFrame  #: scorer, wallets, liquidated, auc, ks, brier
    calibration: pl.DataFrame  #: by band (chainrisk.credit.evaluate.calibration)
    model: Scorecard
    market: MarketState  #: the market at the cutoff (its regime)
    predicted_pd: float  #: the model's mean PD over the cutoff's borrowers
    observed_rate: float  #: the share of them liquidated within the horizon

    def lines(self) -> list[str]:
        when = datetime.fromtimestamp(self.cutoff_timestamp, UTC).strftime("%Y-%m-%d")
        head = (
            f"out of time at {when} (block {self.cutoff_block}): trained on {self.train_rows} borrower-cutoffs "
            f"({self.train_liquidated} liquidated) from {self.train_cutoffs} cutoffs before it"
        )
        rows = [head]
        for r in self.metrics.iter_rows(named=True):
            rows.append(
                f"  {r['scorer']:<12} wallets {r['wallets']:>5}  liquidated {r['liquidated']:>4}  "
                f"AUC {_fmt(r['auc'])}  KS {_fmt(r['ks'])}  Brier {_fmt(r['brier'])}"
            )
        rows.append(
            f"  calibration by regime: {self.market.text()}: predicted {self.predicted_pd:.1%}, observed "
            f"{self.observed_rate:.1%} ({_ratio(self.observed_rate, self.predicted_pd)})"
        )
        bands = []
        for r in self.calibration.iter_rows(named=True):
            verdict = (
                "within x2"
                if _within_two(r["observed_rate"], r["predicted_pd"])
                else "within chance"
                if r["expected_low"] <= r["liquidated"] <= r["expected_high"]
                else "off"
            )
            bands.append(
                f"{r['bucket']} {r['liquidated']}/{r['wallets']} vs {r['expected_low']}-{r['expected_high']} "
                f"expected ({verdict})"
            )
        rows.append("  calibration by band, liquidated vs the 95 % range the PDs predict: " + "; ".join(bands))
        return rows

    def regime_row(self) -> dict[str, object]:
        """The cutoff's credit_regimes row (without run_id and chain_id)."""
        return {
            "cutoff_block": self.cutoff_block,
            "cutoff_timestamp": self.cutoff_timestamp,
            "regime": self.market.regime,
            "market_vol": self.market.vol,
            "market_drawdown": self.market.drawdown,
            "wallets": int(self.metrics["wallets"][0]),
            "liquidated": int(self.metrics["liquidated"][0]),
            "predicted_pd": self.predicted_pd,
            "observed_rate": self.observed_rate,
        }


def _ratio(observed: float, predicted: float) -> str:
    return "observed/predicted n/a" if predicted <= 0 else f"observed/predicted {observed / predicted:.2f}"


def _within_two(observed: float, predicted: float) -> bool:
    """Observed and predicted within a factor of two of each other (the goal of issue 23)."""
    return predicted > 0 and 0.5 <= observed / predicted <= 2.0


def _fmt(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


def _chain(store: Store, chain_id: int | None) -> int:
    chains = store.query("SELECT DISTINCT chain_id FROM credit_samples ORDER BY 1")["chain_id"].to_list()
    if not chains:
        raise UserError("no credit history yet; run `chainrisk credit history` first")
    if chain_id is None:
        if len(chains) > 1:
            raise UserError(f"the database holds credit history of chains {chains}; give --chain-id")
        return int(chains[0])
    if chain_id not in chains:
        raise UserError(f"no credit history for chain {chain_id} (chains with history: {chains})")
    return chain_id


def read_history(db: Path, chain_id: int | None = None) -> History:
    if not db.is_file():
        raise UserError(f"no database at {db}; run `chainrisk run` and `chainrisk credit history` first")
    with Store(db) as store:  # writable: an older file is migrated to the credit tables first
        for adapter in adapters().values():  # the events view reads every adapter's raw tables
            store.ensure_tables(adapter.ddl)
        return load_history(store, _chain(store, chain_id))


def lending_events_sql() -> str:
    """Every protocol's borrows, repays, liquidations and supplies (stg_lending_events, inlined so it runs whether
    or not the views are installed), in the shape credit features read; built when called, so an adapter installed
    since (a plugin protocol) is in it."""
    return f"""
SELECT wallet, protocol, source || ':' || position_key AS market_key, block_number,
    CASE WHEN action IN ('supply', 'collateral_in') THEN 'supply' ELSE action END AS kind,
    CASE WHEN action IN ('borrow', 'repay', 'liquidated') THEN action_asset END AS asset,
    CASE WHEN action IN ('borrow', 'repay', 'liquidated') THEN CAST(action_amount AS DOUBLE) END AS amount
FROM ({query_sql(LENDING_EVENTS)}) AS e
WHERE chain_id = ? AND action IN ('borrow', 'repay', 'liquidated', 'supply', 'collateral_in')
"""


def load_history(store: Store, chain_id: int) -> History:
    """Reads the stored history of `chain_id`, every part in a fixed order (UserError when it has none); every
    adapter's raw tables must exist (read_history makes sure)."""
    where = [chain_id]
    return history_from_frames(
        chain_id,
        samples=store.query(
            "SELECT block_number, block_timestamp FROM credit_samples WHERE chain_id = ? ORDER BY block_number", where
        ),
        # The one health history at the blocks `credit history` sampled: the bucket holding each sample, with its
        # last sample's figures. A sample's bucket may have taken later samples since (a run's score in the same hour,
        # or the other samples of a day once hours fold into days): matching the bucket's last block alone lost
        # those wallets, and every wallet at the newest sample once a run followed `credit history` in its hour.
        # Matched on the bucket a sample falls in (an hour or a day of UTC, as chainrisk.store.history buckets
        # them): an equality join, one pass over the buckets, where a join on the block range alone compared every
        # bucket with every sample.
        health=store.query(
            "WITH samples AS (SELECT s.block_number, s.block_timestamp, b.seconds AS bucket_seconds, "
            "s.block_timestamp // b.seconds * b.seconds AS bucket_start FROM credit_samples AS s, "
            f"(VALUES ({HOUR_S}), ({DAY_S})) AS b(seconds) WHERE s.chain_id = $1) "
            "SELECT h.wallet, h.protocol, h.market, s.block_number, s.block_timestamp, "
            "h.collateral_usd, h.debt_usd, h.health_factor, h.collateral_usd * h.ltv_bps / 1e4 AS capacity_usd, "
            "h.collateral_usd * h.liquidation_threshold_bps / 1e4 AS adjusted_collateral_usd "
            "FROM wallet_health_history AS h JOIN samples AS s ON s.bucket_seconds = h.bucket_seconds "
            "AND s.bucket_start = h.bucket_start AND s.block_number BETWEEN h.first_block AND h.last_block "
            "WHERE h.chain_id = $1 ORDER BY h.wallet, s.block_number, h.protocol, h.market",
            where,
        ),
        holdings=store.query(
            "SELECT wallet, block_number, base_asset, asset, collateral_usd, debt_usd FROM holdings_history "
            "WHERE chain_id = ? AND (collateral_usd > 0 OR debt_usd > 0) "
            "ORDER BY wallet, block_number, base_asset, asset, protocol, market",
            where,
        ),
        prices=store.query(
            "SELECT asset, block_number, block_timestamp, price_usd, decimals FROM asset_price_history "
            "WHERE chain_id = ? ORDER BY asset, block_number",
            where,
        ),
        lookthrough=store.query(
            "SELECT wallet, block_number, loop_leverage, max_depth FROM lookthrough_history WHERE chain_id = ? "
            "ORDER BY wallet, block_number",
            where,
        ),
        events=store.query(lending_events_sql(), where),
        block_times=store.query("SELECT block_number, block_timestamp FROM block_times WHERE chain_id = ?", where),
    )


def parse_when(history: History, text: str) -> int:
    """A cutoff given as a block number or a UTC date (YYYY-MM-DD) -> the sampled block at or before it."""
    if text.isdigit():
        return cutoff_sample(history, int(text))[0]
    try:
        moment = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise UserError(f"{text!r} is neither a block number nor a date like 2022-05-01") from None
    samples = history.samples.filter(pl.col("block_timestamp") <= int(moment.timestamp()))
    if samples.is_empty():
        raise UserError(f"no credit history sample on or before {text}")
    return int(samples["block_number"][-1])


def training_cutoffs(
    history: History, until_ts: int, horizon_days: int, every_days: int, min_history_days: int = MIN_HISTORY_DAYS
) -> list[int]:
    """Sampled blocks `every_days` apart (counted back from the latest allowed) whose label window ends by
    `until_ts`, after `min_history_days` of history."""
    samples = history.samples
    first = int(samples["block_timestamp"][0])
    allowed = samples.filter(
        (pl.col("block_timestamp") >= first + min_history_days * DAY_S)
        & (pl.col("block_timestamp") + horizon_days * DAY_S <= until_ts)
    )
    chosen: list[int] = []
    next_ts: int | None = None
    for block, ts in reversed(allowed.select("block_number", "block_timestamp").rows()):
        if next_ts is None or ts <= next_ts - every_days * DAY_S + DAY_S // 2:
            chosen.append(int(block))
            next_ts = int(ts)
    return sorted(chosen)


def training_rows(history: History, cutoffs: list[int], horizon_days: int) -> pl.DataFrame:
    frames = [labelled(history, block, horizon_days) for block in cutoffs]
    frames = [f for f in frames if f.height]
    if not frames:
        raise UserError("no borrowers at the training cutoffs; give a longer history or an earlier --until")
    return pl.concat(frames, how="vertical")


def train_model(
    history: History, until_ts: int, horizon_days: int, every_days: int, min_history_days: int = MIN_HISTORY_DAYS
) -> tuple[Scorecard, list[int], pl.DataFrame]:
    """The scorecard trained on every cutoff whose label window closes by `until_ts`; with its cutoffs and rows."""
    cutoffs = training_cutoffs(history, until_ts, horizon_days, every_days, min_history_days)
    if len(cutoffs) < 2:
        raise UserError(
            f"only {len(cutoffs)} training cutoff(s) before that date: the history needs {min_history_days} days "
            f"before the first and {horizon_days} days after the last; sample a longer history"
        )
    rows = training_rows(history, cutoffs, horizon_days)
    trained = {
        "chain_id": history.chain_id,
        "cutoffs": len(cutoffs),
        "first_cutoff_block": cutoffs[0],
        "last_cutoff_block": cutoffs[-1],
        "until_timestamp": until_ts,
        "rows": rows.height,
        "liquidated": int(rows["liquidated"].sum()),
        "every_days": every_days,
        "min_history_days": min_history_days,
    }
    return fit(rows, horizon_days, trained), cutoffs, rows


def evaluate_at(
    history: History, cutoff_block: int, horizon_days: int, every_days: int, min_history_days: int = MIN_HISTORY_DAYS
) -> Evaluation:
    """Trains on what was known before the cutoff and scores the borrowers there, with the health-factor baselines
    (current health alone, the 90-day minimum alone; each with a one-feature logistic fit for its Brier score)."""
    block, now = cutoff_sample(history, cutoff_block)
    if not horizon_covered(history, block, horizon_days):
        raise UserError(
            f"the history ends before block {block}'s {horizon_days}-day label window does; pick an earlier cutoff"
        )
    card, cutoffs, train = train_model(history, now, horizon_days, every_days, min_history_days)
    test = labelled(history, block, horizon_days)
    if test.is_empty():
        raise UserError(f"no borrowers at block {block}")
    y = test["liquidated"].cast(pl.Float64).to_numpy()
    y_train = train["liquidated"].cast(pl.Float64).to_numpy()
    pd_ = card.pd(test)
    scores = card.score(test)
    # The model's probability ranks; the published score is its rounded, clipped transform (ties at the top).
    rows = [("scorecard", pd_, pd_), ("score", -scores.astype(float), pd_)]
    for name, column in (("current_hf", "hf_now"), ("min_hf_90d", "hf_min_90d")):
        x = np.log(np.maximum(test[column].to_numpy(), 1e-6))
        a, b = fit_single(np.log(np.maximum(train[column].to_numpy(), 1e-6)), y_train)
        rows.append((name, -x, 1 / (1 + np.exp(-(a + b * x)))))
    metrics = pl.DataFrame(
        [
            {
                "scorer": name,
                "wallets": len(y),
                "liquidated": int(y.sum()),
                "auc": auc(risk, y),
                "ks": ks(risk, y),
                "brier": brier(p, y),
            }
            for name, risk, p in rows
        ]
    )
    return Evaluation(
        cutoff_block=block,
        cutoff_timestamp=now,
        train_cutoffs=len(cutoffs),
        train_rows=train.height,
        train_liquidated=int(y_train.sum()),
        metrics=metrics,
        calibration=calibration(scores, pd_, y),
        model=card,
        market=market_at(history, block),
        predicted_pd=float(pd_.mean()),
        observed_rate=float(y.mean()),
    )


def store_evaluations(db: Path, evaluations: list[Evaluation], horizon_days: int, chain_id: int) -> int:
    """Appends the evaluations (one run id for them all); returns the run id."""
    with Store(db) as store:
        row = store.query("SELECT coalesce(max(run_id), 0) + 1 AS n FROM credit_evaluations")
        run_id = int(row["n"][0])
        now = datetime.now(UTC)
        metrics = pl.concat(
            [
                e.metrics.with_columns(
                    pl.lit(run_id, pl.Int64).alias("run_id"),
                    pl.lit(e.model.version).alias("model_version"),
                    pl.lit(chain_id, pl.Int64).alias("chain_id"),
                    pl.lit(e.cutoff_block, pl.Int64).alias("cutoff_block"),
                    pl.lit(e.cutoff_timestamp, pl.Int64).alias("cutoff_timestamp"),
                    pl.lit(horizon_days, pl.Int32).alias("horizon_days"),
                    pl.lit(e.train_cutoffs, pl.Int32).alias("train_cutoffs"),
                    pl.lit(e.train_rows, pl.Int64).alias("train_rows"),
                    pl.lit(now).alias("evaluated_at"),
                )
                for e in evaluations
            ]
        )
        calibrations = pl.concat(
            [
                e.calibration.select(CALIBRATION_COLUMNS).with_columns(
                    pl.lit(run_id, pl.Int64).alias("run_id"), pl.lit(e.cutoff_block, pl.Int64).alias("cutoff_block")
                )
                for e in evaluations
            ]
        )
        regimes = pl.DataFrame([e.regime_row() for e in evaluations]).with_columns(
            pl.lit(run_id, pl.Int64).alias("run_id"), pl.lit(chain_id, pl.Int64).alias("chain_id")
        )
        store.append_rows(
            {"credit_evaluations": metrics, "credit_calibration": calibrations, "credit_regimes": regimes}
        )
        store.publish()
    return run_id


def score_wallets(
    db: Path, model: Scorecard, as_of: str | None = None, *, chain_id: int | None = None, target_pd: float = TARGET_PD
) -> CreditReport:
    """Scores every wallet with a position at the sampled block at or before `as_of` (the latest sample when None):
    credit_scores (score, band, PD, top-3 reasons, credit-aware LTV), credit_features (points per feature) and
    credit_advice (smallest change to the next band, per action)."""
    started = time.perf_counter()
    history = read_history(db, chain_id)
    block = parse_when(history, as_of) if as_of is not None else cutoff_sample(history, None)[0]
    frame = features(history, block)
    if frame.is_empty():
        raise UserError(
            f"no wallet holds a position valued in USD at block {block} (the credit model reads USD figures: a market "
            "without a USD price, such as a Morpho Blue indexed without a usd_oracle, is left out)"
        )
    scores = model.score(frame)
    pd_ = model.pd(frame)
    explained = model.explain(frame)
    reasons = model.reasons(explained)
    limit = credit_limit(model, frame, target_pd)
    now = int(frame["as_of_timestamp"][0])
    version = model.version
    base = frame.select("wallet").with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    table = (
        frame.select("wallet", "chain_id", "as_of_block", "as_of_timestamp", "collateral_usd", "debt_usd", "hf_now")
        .with_columns(
            pl.Series("score", scores, pl.Int32),
            pl.Series("band", [band_of(int(s)) for s in scores]),
            pl.Series("pd", pd_),
            (pl.col("debt_usd") > 0).alias("borrower"),
            pl.when(pl.col("debt_usd") > 0).then(pl.col("hf_now")).alias("health_factor"),
            pl.lit(version).alias("model_version"),
            pl.lit(datetime.now(UTC)).alias("scored_at"),
        )
        .with_row_index("row")
        .with_columns(pl.col("row").cast(pl.Int64))
        .join(reasons, on="row", how="left")
        .join(limit, on="wallet", how="left")
        .with_columns(
            pl.col("reasons").fill_null(pl.lit([], pl.List(pl.Utf8))),
            pl.col("reason_text").fill_null(pl.lit([], pl.List(pl.Utf8))),
        )
        .drop("row", "hf_now")
    )
    feature_rows = (
        explained.join(base, on="row")
        .with_columns(
            pl.lit(history.chain_id, pl.Int64).alias("chain_id"),
            pl.lit(block, pl.Int64).alias("as_of_block"),
            pl.lit(version).alias("model_version"),
        )
        .drop("row")
    )
    advice_rows = advice(model, frame).with_columns(
        pl.lit(history.chain_id, pl.Int64).alias("chain_id"),
        pl.lit(block, pl.Int64).alias("as_of_block"),
        pl.lit(version).alias("model_version"),
    )
    with Store(db) as store:
        store.replace_credit(
            {"credit_scores": table, "credit_features": feature_rows, "credit_advice": advice_rows},
            history.chain_id,
            block,
            version,
        )
        store.publish()
    counts = dict(table.group_by("band").len().rows())
    bands = {name: int(counts[name]) for name, _ in reversed(BANDS) if name in counts}  # best band first
    return CreditReport(
        history.chain_id,
        block,
        now,
        version,
        table.height,
        int(table["borrower"].sum()),
        bands,
        round(time.perf_counter() - started, 3),
    )


#: The model features the Aave V2 file can feed (it records liquidations only); chainrisk.credit.aave_v2 names its
#: columns the same.
SANITY_FEATURES = ("liquidations", "liquidated_usd", "days_since_liquidation")


def sanity_check(model: Scorecard, liquidations: Path, prices_dir: Path, horizon_days: int = 30) -> pl.DataFrame:
    """The model's liquidation-history points on real wallets: Aave V2 borrowers liquidated before each monthly
    cutoff of 2021, scored by the model's cards for the features the file can feed, against whether Aave V2
    liquidated them again within the horizon. Per cutoff: wallets, liquidated again, their rate, the AUC of the
    partial score, and the again-rate of the riskier and safer halves (what the model's direction predicts; the top
    score against the rest when more than half share it, none when all do)."""
    from chainrisk.credit.aave_v2 import load_liquidations, sanity_table

    cards = [c for c in model.features if c.name in SANITY_FEATURES]
    if not cards:
        raise UserError(f"model {model.version} uses none of the liquidation features; nothing to check")
    frame = load_liquidations(liquidations, prices_dir)
    cutoffs = [int(datetime(2021, month, 1, tzinfo=UTC).timestamp()) for month in range(1, 13)]
    table = sanity_table(frame, cutoffs, horizon_days)
    partial = Scorecard(cards, 0.0, model.horizon_days, {})
    risk = partial.logit(table)
    table = table.with_columns(pl.Series("risk", risk))
    out = []
    for (cutoff,), part in table.group_by(["cutoff"], maintain_order=True):
        y = part["label"].cast(pl.Float64).to_numpy()
        r = part["risk"].to_numpy()
        # The riskier half: at or above the median; when that is everyone (more than half share the top value), the
        # wallets at the top value against the rest.
        riskier = r >= np.median(r)
        if riskier.all():
            riskier = r >= r.max()
        out.append(
            {
                "cutoff": datetime.fromtimestamp(int(cutoff), UTC).strftime("%Y-%m-%d"),
                "wallets": part.height,
                "liquidated_again": int(y.sum()),
                "rate": float(y.mean()),
                "auc": auc(r, y),
                "riskier_half_rate": float(y[riskier].mean()) if riskier.any() else None,
                "safer_half_rate": float(y[~riskier].mean()) if (~riskier).any() else None,
            }
        )
    return pl.DataFrame(out)
