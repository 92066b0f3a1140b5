"""Credit scores page: wallets' 300-850 scores by band, one wallet's score explained with advice, and model quality.

Reads credit_scores, credit_features and credit_advice of one (chain_id, as_of_block, model_version) — by default the
latest as-of block and the model version scored last there — and the latest credit_evaluations run with its
credit_calibration rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.credit.features import describe, unit_of, value_text
from chainrisk.credit.regime import DRAWDOWN_DAYS, REGIMES, VOL_DAYS
from chainrisk.credit.scorecard import ANCHOR_ODDS, ANCHOR_SCORE, BANDS, PDO, SCORE_MAX, SCORE_MIN, Scorecard
from chainrisk.credit.shipped import BUNDLED_MODEL, shipped_evaluation
from chainrisk.dashboard.data import database_location, missing_relations, query
from chainrisk.dashboard.ui import percent_column, table, usd, usd_column
from chainrisk.dashboard.wallet import parse_address
from chainrisk.errors import UserError
from chainrisk.networks import chain_name

TABLES = ("credit_scores", "credit_features", "credit_advice")
EVALUATION_TABLES = ("credit_evaluations", "credit_calibration")
#: Red to green, poor to excellent (ColorBrewer RdYlGn).
BAND_COLOURS = ("#d73027", "#fc8d59", "#e6c229", "#91cf60", "#1a9850")
BAND_NAMES = tuple(name for name, _ in BANDS)
#: Width of the histogram's bins in score points (the band cut-offs are multiples of it, so no bin spans two bands).
BIN_POINTS = 10
#: Borrowers offered in the lookup's picker, riskiest first.
RISKIEST_OFFERED = 200
#: Each advice action in plain words: what to do (with the amount), and the same as a subject when it falls short.
ACTION_WORDS = {
    "repay debt": ("Repay {amount} of debt", "Repaying debt"),
    "add collateral": ("Add {amount} of collateral", "Adding collateral"),
    "unwind loop": ("Unwind {amount} of the loop (sell collateral to repay debt)", "Unwinding the loop"),
}
SCORER_NAMES = {
    "scorecard": "credit scorecard (probability)",
    "score": "credit score 300-850 (rounded)",
    "current_hf": "health factor now",
    "min_hf_90d": "lowest health factor in 90 days",
}


def empty_hint(db: Path) -> str:
    """The one line the page shows when nothing was scored yet."""
    return (
        f"No credit scores yet: run `chainrisk credit history --db {db} --devnet` (or `--rpc-url URL`), then "
        f"`chainrisk credit --db {db}`, and reload this page."
    )


def utc_text(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def percent(share: float | None) -> str:
    """A probability or share as a percentage that never rounds a small risk to zero ("<0.1%")."""
    if share is None:
        return "—"
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{share:.1%}"


def dollars(amount: float) -> str:
    """USD for advice: whole dollars, cents under $10 (a $0 repayment would read as nothing to do)."""
    return f"${amount:,.2f}" if amount < 10 else usd(amount)


def markdown_text(text: str) -> str:
    """Text shown through Markdown: Streamlit reads a pair of $ as LaTeX, so dollar signs are escaped."""
    return text.replace("$", "\\$")


def scored_runs(db: Path) -> pl.DataFrame:
    """One row per (chain_id, as_of_block, model_version) scored, the latest as-of first and, at one as-of block,
    the version scored last first."""
    return query(
        db,
        """
        SELECT chain_id, as_of_block, any_value(as_of_timestamp) AS as_of_timestamp, model_version,
               max(scored_at) AS scored_at, count(*) AS wallets
        FROM credit_scores GROUP BY chain_id, as_of_block, model_version
        ORDER BY as_of_timestamp DESC, as_of_block DESC, scored_at DESC, model_version
        """,
    )


def scores(db: Path, chain_id: int, block: int, version: str) -> pl.DataFrame:
    return query(
        db,
        """
        SELECT wallet, score, band, pd, reasons, reason_text, borrower, health_factor, collateral_usd, debt_usd,
               protocol_ltv, suggested_ltv, suggested_max_debt_usd
        FROM credit_scores WHERE chain_id = ? AND as_of_block = ? AND model_version = ? ORDER BY wallet
        """,
        chain_id,
        block,
        version,
    )


def band_table(scored: pl.DataFrame) -> pl.DataFrame:
    """Per band (every band, poor first): score range, wallets, borrowers, debt, mean PD, the band's suggested share
    of the protocols' LTV and the mean protocol LTV, in percent."""
    lows = [low for _, low in BANDS]
    bands = pl.DataFrame(
        {
            "band": BAND_NAMES,
            "scores": [f"{low}-{high - 1}" for low, high in zip(lows, [*lows[1:], SCORE_MAX + 1], strict=True)],
        }
    )
    per_band = scored.group_by("band").agg(
        pl.len().alias("wallets"),
        pl.col("borrower").sum().alias("borrowers"),
        pl.col("debt_usd").sum(),
        (pl.col("pd").mean() * 100).alias("mean_pd_pct"),
        (pl.col("suggested_ltv") / pl.col("protocol_ltv")).mean().mul(100).alias("suggested_share_pct"),
        (pl.col("protocol_ltv").mean() * 100).alias("protocol_ltv_pct"),
    )
    return bands.join(per_band, on="band", how="left", maintain_order="left").with_columns(
        pl.col("wallets", "borrowers").fill_null(0).cast(pl.Int64), pl.col("debt_usd").fill_null(0.0)
    )


def score_histogram(scored: pl.DataFrame) -> pl.DataFrame:
    """Wallets per score bin and band (`from`, `to`, `scores` as text, band, wallets); the top score joins the last
    bin."""
    last = SCORE_MAX - BIN_POINTS
    return (
        scored.with_columns(((pl.col("score") // BIN_POINTS) * BIN_POINTS).clip(upper_bound=last).alias("from"))
        .group_by("from", "band")
        .agg(pl.len().alias("wallets"))
        .with_columns(
            (pl.col("from") + BIN_POINTS).alias("to"),
            pl.format(
                "{}-{}",
                "from",
                pl.when(pl.col("from") == last).then(SCORE_MAX).otherwise(pl.col("from") + BIN_POINTS - 1),
            ).alias("scores"),
        )
        .sort("from", "band")
    )


def log_ticks(top: int) -> list[int]:
    """0, 1, 2, 5, 10, 20, 50 ... up to `top`: a log axis's labels (Vega-Lite labels a symlog axis only at its ends)."""
    return [0] + [m * 10**e for e in range(len(str(top))) for m in (1, 2, 5) if m * 10**e <= top]


def riskiest(scored: pl.DataFrame, limit: int = RISKIEST_OFFERED) -> pl.DataFrame:
    """Borrowers by liquidation probability, highest first (the larger debt first among equals)."""
    return (
        scored.filter(pl.col("borrower")).sort(["pd", "debt_usd", "wallet"], descending=[True, True, False]).head(limit)
    )


def advice_lines(advice: pl.DataFrame) -> list[str]:
    """Each advice row in plain words, the cheapest reachable first and the ones that fall short last."""
    lines = []
    ordered = advice.sort(["reachable", "amount_usd"], descending=[True, False], nulls_last=True)
    for action, amount, target, new_score, reachable in ordered.select(
        "action", "amount_usd", "target_band", "new_score", "reachable"
    ).iter_rows():
        do, doing = ACTION_WORDS.get(action, (f"{action.capitalize()}: {{amount}}", action.capitalize()))
        if reachable and amount is not None:
            lines.append(f"{do.format(amount=dollars(amount))} to reach {target} ({new_score})")
        else:
            lines.append(f"{doing} is not enough on its own to reach {target}: best {new_score}")
    return lines


def reason_lines(row: dict[str, Any], features: pl.DataFrame) -> list[str]:
    """The wallet's stored reasons; one whose text is missing (a feature without a value) is said from its points."""
    lost = {f: m - p for f, p, m in features.select("feature", "points", "max_points").iter_rows() if m is not None}
    lines = []
    for feature, text in zip(row["reasons"] or [], row["reason_text"] or [], strict=False):
        if text:
            lines.append(text)
        else:
            name = describe(feature)
            lines.append(f"{name}: no history yet, costs {lost.get(feature, 0):.0f} points")
    return lines


def feature_value(feature: str, value: float | None) -> str:
    """A feature's value with its unit (chainrisk.credit.features.value_text), USD in whole dollars."""
    if value is not None and unit_of(feature) == "USD":
        return usd(value)
    return value_text(feature, value)


def render() -> None:
    db = database_location()
    if missing_relations(db, TABLES):
        st.info(empty_hint(db))
        return
    runs = scored_runs(db)
    if runs.is_empty():
        st.info(empty_hint(db))
        return
    run = _choose_run(runs)
    chain_id, block, version = int(run["chain_id"]), int(run["as_of_block"]), str(run["model_version"])
    scored = scores(db, chain_id, block, version)
    _headline(scored, run)
    _distribution(scored)
    _lookup(db, scored, chain_id, block, version)
    _quality(db, chain_id, version)


def _choose_run(runs: pl.DataFrame) -> dict[str, Any]:
    rows = list(runs.iter_rows(named=True))
    if len(rows) == 1:
        return rows[0]
    several_chains = runs["chain_id"].n_unique() > 1

    def label(index: int) -> str:
        r = rows[index]
        chain = f"{chain_name(int(r['chain_id']))} · " if several_chains else ""
        return (
            f"{chain}block {r['as_of_block']:,} ({utc_text(r['as_of_timestamp'])}) · model {r['model_version']} · "
            f"{r['wallets']:,} wallets"
        )

    index = st.selectbox("Scores as of", list(range(len(rows))), format_func=label, key="credit_as_of")
    return rows[index or 0]


def _headline(scored: pl.DataFrame, run: dict[str, Any]) -> None:
    borrowers = scored.filter(pl.col("borrower"))
    low = scored.filter(pl.col("band").is_in(BAND_NAMES[:2]))
    low_borrowers = borrowers.filter(pl.col("band").is_in(BAND_NAMES[:2]))
    cols = st.columns(4)
    cols[0].metric("Wallets scored", f"{scored.height:,}", help="Every wallet with a position at the as-of block")
    cols[1].metric(
        "Borrowers", f"{borrowers.height:,}", help=f"Wallets with debt, owing {usd(float(borrowers['debt_usd'].sum()))}"
    )
    borrower_median = f"{borrowers.select(pl.col('score').median()).item():.0f}" if borrowers.height else "—"
    cols[2].metric(
        "Median score",
        f"{scored.select(pl.col('score').median()).item():.0f}",
        help=f"Of all wallets; of borrowers: {borrower_median}",
    )
    borrower_share = f"{low_borrowers.height / borrowers.height:.1%}" if borrowers.height else "—"
    cols[3].metric(
        "Share in poor/fair",
        f"{low.height / scored.height:.1%}",
        help=f"{low.height:,} wallets score under {BANDS[2][1]}; of borrowers: {borrower_share}",
    )
    chain = chain_name(int(run["chain_id"]))
    st.caption(
        f"As of block {run['as_of_block']:,} ({utc_text(run['as_of_timestamp'])}) on {chain}, "
        f"model {run['model_version']}. Scores run {SCORE_MIN}-{SCORE_MAX}: {PDO:.0f} points double the odds of not "
        f"being liquidated within 30 days, {ANCHOR_SCORE:.0f} stands for a {1 / (1 + ANCHOR_ODDS):.1%} chance; PD is "
        "that 30-day liquidation probability."
    )


def _distribution(scored: pl.DataFrame) -> None:
    st.subheader("Scores by band")
    who = st.radio(
        "Wallets", ["all wallets", "borrowers only"], horizontal=True, key="credit_who", label_visibility="collapsed"
    )
    shown = scored.filter(pl.col("borrower")) if who == "borrowers only" else scored
    if shown.is_empty():
        st.info("No borrower at this as-of block.")
    else:
        st.altair_chart(_histogram(score_histogram(shown)), width="stretch")
    table(
        band_table(scored),
        hide_index=True,
        column_config={
            "scores": "score range",
            "wallets": st.column_config.NumberColumn("wallets", format="localized"),
            "borrowers": st.column_config.NumberColumn("borrowers", format="localized"),
            "debt_usd": usd_column("debt", "Debt of the band's borrowers now"),
            "mean_pd_pct": st.column_config.NumberColumn(
                "mean PD", format="%.2f%%", help="Mean 30-day liquidation probability of the band's wallets"
            ),
            "suggested_share_pct": percent_column(
                "suggested share of protocol LTV",
                "Credit-aware limit: the band's share of what the protocols allow; "
                "from its wallets' own limits (the most debt keeping PD at the target), never lower for a better band",
            ),
            "protocol_ltv_pct": percent_column(
                "mean protocol LTV", "What the protocols allow: borrowing capacity / collateral"
            ),
        },
    )


def _histogram(bins: pl.DataFrame) -> alt.LayerChart:
    """Bars coloured by band on the whole score scale, with the bands' cut-offs."""
    most = int(bins.select(pl.col("wallets").max()).item())
    colour = alt.Color(
        "band:N", title="band", sort=list(BAND_NAMES), scale=alt.Scale(domain=list(BAND_NAMES), range=BAND_COLOURS)
    )
    bars = (
        alt.Chart(bins.to_pandas())
        .mark_bar()
        .encode(
            x=alt.X("from:Q", title="score", scale=alt.Scale(domain=[SCORE_MIN, SCORE_MAX]), bin="binned"),
            x2="to:Q",
            # Wallets without debt crowd the top score; a log scale keeps the lower bands readable beside them.
            y=alt.Y(
                "wallets:Q",
                title="wallets (log scale)",
                scale=alt.Scale(type="symlog"),
                axis=alt.Axis(values=log_ticks(most), format=",d"),
            ),
            color=colour,
            tooltip=["scores", "band", "wallets"],
        )
    )
    cuts = pl.DataFrame({"score": [low for _, low in BANDS[1:]], "label": [f"{n} {low}" for n, low in BANDS[1:]]})
    rules = alt.Chart(cuts.to_pandas()).mark_rule(color="#555555", strokeDash=[4, 3]).encode(x="score:Q")
    labels = (
        alt.Chart(cuts.to_pandas())
        .mark_text(align="left", dx=3, dy=-4, baseline="top", color="#555555")
        .encode(x="score:Q", y=alt.value(0), text="label:N")
    )
    return alt.LayerChart(layer=[bars, rules, labels], height=280)


def _lookup(db: Path, scored: pl.DataFrame, chain_id: int, block: int, version: str) -> None:
    st.subheader("Wallet lookup")
    offered = riskiest(scored)
    names = {
        w: f"{w[:8]}…{w[-6:]} · {s} {b} · PD {percent(p)} · {usd(d)} debt"
        for w, s, b, p, d in offered.select("wallet", "score", "band", "pd", "debt_usd").iter_rows()
    }
    left, right = st.columns(2)
    typed = left.text_input(
        "Wallet address", value=st.query_params.get("wallet", ""), placeholder="0x… (any case)", key="credit_address"
    )
    picked = right.selectbox(
        "or one of the riskiest borrowers", list(names), format_func=names.__getitem__, key="credit_riskiest"
    )
    wallet = picked
    if typed.strip():
        try:
            wallet = parse_address(typed)
        except UserError as exc:
            st.error(str(exc))
            return
    if wallet is None:
        st.info("No borrower at this as-of block: type a wallet address to see its score.")
        return
    found = scored.filter(pl.col("wallet") == wallet)
    if found.is_empty():
        st.info(f"{wallet} was not scored as of block {block:,}: it held no position there.")
        return
    _wallet(db, found.row(0, named=True), chain_id, block, version)


def _wallet(db: Path, row: dict[str, Any], chain_id: int, block: int, version: str) -> None:
    key = (chain_id, block, version, row["wallet"])
    features = query(
        db,
        "SELECT feature, value, bin, points, max_points FROM credit_features "
        "WHERE chain_id = ? AND as_of_block = ? AND model_version = ? AND wallet = ?",
        *key,
    )
    advice = query(
        db,
        "SELECT action, amount_usd, target_band, new_score, reachable FROM credit_advice "
        "WHERE chain_id = ? AND as_of_block = ? AND model_version = ? AND wallet = ?",
        *key,
    )
    cols = st.columns(6)
    cols[0].metric("Score", f"{row['score']}", help=f"{SCORE_MIN}-{SCORE_MAX}; good from {BANDS[2][1]}")
    cols[1].metric("Band", row["band"])
    cols[2].metric("30-day PD", percent(row["pd"]), help="Probability of a liquidation within 30 days")
    hf = row["health_factor"]
    cols[3].metric("Health factor", "no debt" if hf is None else f"{hf:.3f}", help="Its weakest market's")
    cols[4].metric("Debt", usd(row["debt_usd"]), help="USD at the as-of block's prices")
    cols[5].metric("Collateral", usd(row["collateral_usd"]), help="USD at the as-of block's prices")
    reasons = reason_lines(row, features)
    left, right = st.columns(2)
    with left:
        st.markdown("**What holds the score down**")
        if reasons:
            st.markdown(markdown_text("\n".join(f"{i}. {text}" for i, text in enumerate(reasons, 1))))
        else:
            st.markdown("Nothing: every feature is in its best bin.")
        st.markdown("**How to raise it**")
        lines = advice_lines(advice)
        if lines:
            st.markdown(markdown_text("\n".join(f"- {line}" for line in lines)))
            st.caption(
                "Each action on its own, in the wallet's weakest market now; the score in brackets is what "
                "the smallest such change reaches. Its history stays as it was."
            )
        elif row["band"] == BAND_NAMES[-1]:
            st.markdown("Already in the top band.")
        else:
            st.markdown("No advice: it is given to borrowers, and this wallet owes nothing.")
    with right:
        _limit(row)
    if not features.is_empty():
        _points(features)


def _limit(row: dict[str, Any]) -> None:
    st.markdown("**Credit-aware borrowing limit**")
    if row["protocol_ltv"] is None:
        st.markdown("No collateral, so no limit to suggest.")
        return
    cols = st.columns(3)
    cols[0].metric("Suggested LTV", percent(row["suggested_ltv"]), help="Suggested max debt / collateral")
    cols[1].metric("Protocol LTV", percent(row["protocol_ltv"]), help="Borrowing capacity / collateral")
    cols[2].metric("Suggested max debt", usd(row["suggested_max_debt_usd"]))
    room = float(row["suggested_max_debt_usd"] or 0.0) - float(row["debt_usd"])
    if row["debt_usd"] <= 0:
        owes = "It owes nothing."
    elif room >= 0:
        owes = f"It owes {usd(row['debt_usd'])}: {usd(room)} under the suggested limit."
    else:
        owes = f"It owes {usd(row['debt_usd'])}: {usd(-room)} over the suggested limit."
    st.caption(
        markdown_text(
            f"{owes} The limit is the most it could owe against its collateral "
            "now while the model's 30-day liquidation probability stays at the target (`chainrisk credit "
            "--target-pd`, 2% by default), never more than the protocols allow."
        )
    )


def _points(features: pl.DataFrame) -> None:
    st.markdown("**Points by feature**, most points lost first")
    ranked = features.with_columns((pl.col("max_points") - pl.col("points")).alias("lost")).sort(
        ["lost", "feature"], descending=[True, False]
    )
    values = [feature_value(f, v) for f, v in ranked.select("feature", "value").iter_rows()]
    shown = ranked.with_columns(
        pl.Series("measure", [describe(f) for f in ranked["feature"]], dtype=pl.String),
        pl.Series("shown_value", values, dtype=pl.String),
    )
    order = shown["measure"].to_list()
    tooltip = [
        alt.Tooltip("measure:N", title="feature"),
        alt.Tooltip("shown_value:N", title="value"),
        alt.Tooltip("bin:N", title="bin"),
        alt.Tooltip("points:Q", format=".0f"),
        alt.Tooltip("max_points:Q", title="best bin", format=".0f"),
        alt.Tooltip("lost:Q", title="lost", format=".0f"),
    ]
    base = alt.Chart(shown.select("measure", "shown_value", "bin", "points", "max_points", "lost").to_pandas())
    best = base.mark_bar(color="#d9d9d9").encode(
        x=alt.X("max_points:Q", title="points (grey: the feature's best bin)"),
        y=alt.Y("measure:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
        tooltip=tooltip,
    )
    own = base.mark_bar(color="#4c78a8", size=10).encode(
        x="points:Q", y=alt.Y("measure:N", sort=order), tooltip=tooltip
    )
    st.altair_chart(alt.layer(best, own).properties(height=24 * len(order) + 40), width="stretch")


def latest_evaluation(db: Path, chain_id: int) -> dict[str, pl.DataFrame] | None:
    """The latest evaluation run on this database for the chain, by table (credit_evaluations, credit_calibration,
    credit_regimes: empty in a file evaluated before regimes were recorded), or None."""
    if missing_relations(db, EVALUATION_TABLES):
        return None
    metrics = query(
        db,
        "SELECT * FROM credit_evaluations WHERE chain_id = ? AND run_id = "
        "(SELECT max(run_id) FROM credit_evaluations WHERE chain_id = ?) ORDER BY cutoff_block",
        chain_id,
        chain_id,
    )
    if metrics.is_empty():
        return None
    run_id = int(metrics["run_id"][0])
    calibration = query(db, "SELECT * FROM credit_calibration WHERE run_id = ?", run_id)
    regimes = (
        query(db, "SELECT * FROM credit_regimes WHERE run_id = ? ORDER BY cutoff_block", run_id)
        if not missing_relations(db, ("credit_regimes",))
        else pl.DataFrame()
    )
    return {"credit_evaluations": metrics, "credit_calibration": calibration, "credit_regimes": regimes}


@st.cache_data(ttl=600)
def _bundled(model: str) -> tuple[str | None, dict[str, pl.DataFrame] | None]:
    """The version of the model file `model` and the evaluation shipped with it (None for what is missing)."""
    try:
        version = Scorecard.load(Path(model)).version
    except UserError:
        return None, None
    return version, shipped_evaluation(Path(model))


def _quality(db: Path, chain_id: int, version: str) -> None:
    st.subheader("Model quality")
    hint = "`chainrisk credit evaluate --at BLOCK_OR_DATE` (repeatable)"
    frames = latest_evaluation(db, chain_id)
    bundled, shipped = _bundled(str(BUNDLED_MODEL))
    if frames is not None:
        first = frames["credit_evaluations"].row(0, named=True)
        evaluated = str(first["model_version"])
        same = "the model these scores use" if evaluated == version else f"these scores use {version}"
        source = (
            f"**Evaluated on this database**: run #{int(first['run_id'])}, {first['evaluated_at']:%Y-%m-%d %H:%M} "
            f"UTC, model {evaluated} ({same})."
        )
    elif shipped is not None and version == bundled:
        frames = shipped
        first = frames["credit_evaluations"].row(0, named=True)
        source = (
            f"**Shipped with the bundled model {bundled}, not measured on these wallets**: no evaluation has been "
            f"run on this database (it needs months of history: {hint}). This is `make credit-eval`'s out-of-time "
            "evaluation on the 2,000-wallet devnet (real prices, November 2021 to June 2022), of models trained "
            "the way the bundled one was, each only on what was known before its cutoff."
        )
    else:
        st.info(f"No out-of-time evaluation yet: run {hint} and reload this page.")
        return
    st.markdown(source)
    st.caption(
        "At each cutoff a model trained only on label windows closed by then (for the first, "
        f"{first['train_rows']:,} borrower-cutoffs from {first['train_cutoffs']} cutoffs) ranks the borrowers there "
        f"against who was liquidated in the next {first['horizon_days']} days, beside the health factor alone. AUC and "
        "KS: higher ranks better; Brier: lower is better (probabilities near what happened)."
    )
    metrics = frames["credit_evaluations"]
    rank = {name: i for i, name in enumerate(SCORER_NAMES)}
    evaluations = metrics.with_columns(
        pl.format(
            "block {} · {}", pl.col("cutoff_block"), pl.from_epoch("cutoff_timestamp").dt.strftime("%Y-%m-%d")
        ).alias("cutoff"),
        pl.col("scorer").replace_strict(rank, default=len(rank), return_dtype=pl.Int64).alias("rank"),
        pl.col("scorer").replace_strict(SCORER_NAMES, default=pl.col("scorer")).alias("scorer_name"),
    ).sort("cutoff_block", "rank")
    table(
        evaluations.select("cutoff", "scorer_name", "auc", "ks", "brier", "wallets", "liquidated"),
        hide_index=True,
        column_config={
            "scorer_name": "scorer",
            "auc": _metric_column("AUC", "Chance a liquidated borrower ranks riskier than a safe one (0.5: a coin)"),
            "ks": _metric_column("KS", "Largest gap between the liquidated and the safe borrowers' cumulative shares"),
            "brier": _metric_column("Brier", "Mean squared error of the probability against what happened"),
            "wallets": st.column_config.NumberColumn("borrowers", format="localized"),
            "liquidated": st.column_config.NumberColumn("liquidated in the horizon", format="localized"),
        },
    )
    horizon = int(first["horizon_days"])
    _regimes(frames["credit_regimes"], horizon)
    _calibration(frames["credit_calibration"], metrics, horizon)


def _metric_column(label: str, help: str) -> Any:
    return st.column_config.NumberColumn(label, format="%.3f", help=help)


def regime_table(regimes: pl.DataFrame) -> pl.DataFrame:
    """Per cutoff (credit_regimes rows): date, regime, the market measures and the calibration of all borrowers, in
    percent; then, for each regime with several cutoffs, one row pooling them (wallet-weighted)."""
    per_cutoff = regimes.sort("cutoff_block").select(
        pl.from_epoch("cutoff_timestamp").dt.strftime("%Y-%m-%d").alias("window"),
        "regime",
        (pl.col("market_vol") * 100).alias("market_vol_pct"),
        (pl.col("market_drawdown") * 100).alias("drawdown_pct"),
        "wallets",
        "liquidated",
        (pl.col("predicted_pd") * 100).alias("predicted_pct"),
        (pl.col("observed_rate") * 100).alias("observed_pct"),
    )
    order = {name: i for i, (name, _, _) in enumerate(REGIMES)}
    pooled = (
        regimes.group_by("regime")
        .agg(
            pl.format("all {} cutoffs ({})", pl.col("regime").first(), pl.len()).alias("window"),
            pl.len().alias("cutoffs"),
            pl.col("market_vol").mean().mul(100).alias("market_vol_pct"),
            pl.col("market_drawdown").mean().mul(100).alias("drawdown_pct"),
            pl.col("wallets").sum(),
            pl.col("liquidated").sum(),
            ((pl.col("predicted_pd") * pl.col("wallets")).sum() / pl.col("wallets").sum())
            .mul(100)
            .alias("predicted_pct"),
            (pl.col("liquidated").sum() / pl.col("wallets").sum()).mul(100).alias("observed_pct"),
        )
        .filter(pl.col("cutoffs") > 1)
        .sort(pl.col("regime").replace_strict(order, default=len(order), return_dtype=pl.Int64))
        .select(per_cutoff.columns)
    )
    return pl.concat([per_cutoff, pooled.cast(per_cutoff.schema)])


def _regimes(regimes: pl.DataFrame, horizon_days: int) -> None:
    st.markdown("**Calibration by market regime**: the model's mean PD against the share liquidated, per cutoff")
    if regimes.is_empty():
        st.info("This evaluation was run before regimes were recorded: run `chainrisk credit evaluate` again.")
        return
    table(
        regime_table(regimes),
        hide_index=True,
        column_config={
            "window": "cutoff",
            "market_vol_pct": percent_column(
                "market volatility",
                f"Annualised, over the {VOL_DAYS} days before the cutoff, of the collateral "
                "markets (weighted by the USD held as collateral in each), from the sampled on-chain prices",
            ),
            "drawdown_pct": percent_column(
                "drawdown", f"How far those markets stood below their {DRAWDOWN_DAYS}-day high"
            ),
            "wallets": st.column_config.NumberColumn("borrowers", format="localized"),
            "liquidated": st.column_config.NumberColumn(f"liquidated within {horizon_days} days", format="localized"),
            "predicted_pct": st.column_config.NumberColumn("predicted PD", format="%.2f%%"),
            "observed_pct": st.column_config.NumberColumn("observed", format="%.2f%%"),
        },
    )
    st.caption(
        "Regimes: "
        + "; ".join(
            f"{name} from {100 * vol:.0f} % volatility or {100 * drawdown:.0f} % drawdown"
            for name, vol, drawdown in REGIMES[1:]
        )
        + "; calm below. The probability reads both measures with weights that are never negative, fitted on the "
        "training history (near zero on the devnet's, where the market at a cutoff did not forecast the next month: "
        "README \"Credit scores\"), and each position's own volatility, so the same wallet's PD rises when its "
        "markets move more."
    )


def calibration_points(calibration: pl.DataFrame) -> pl.DataFrame:
    """credit_calibration rows (one per cutoff and score band) with the band's rank (1: poor, the riskiest)."""
    ranks = {name: i + 1 for i, (name, _) in enumerate(BANDS)}
    return calibration.with_columns(
        pl.col("bucket").replace_strict(ranks, default=None, return_dtype=pl.Int64).alias("decile"),
        pl.format("block {}", "cutoff_block").alias("cutoff"),
        pl.format("{}-{}", "score_min", "score_max").alias("scores"),
    )


def _calibration(calibration: pl.DataFrame, metrics: pl.DataFrame, horizon_days: int) -> None:
    if calibration.is_empty():
        return
    dates = dict(
        metrics.select("cutoff_block", pl.from_epoch("cutoff_timestamp").dt.strftime("%Y-%m-%d")).unique().rows()
    )
    points = (
        calibration_points(calibration)
        .with_columns(pl.col("cutoff_block").replace_strict(dates, default=None, return_dtype=pl.Utf8).alias("date"))
        .sort("cutoff_block", "decile")
    )
    top = max(float(points.select(pl.max_horizontal(pl.col("predicted_pd", "observed_rate").max())).item()), 0.01)
    diagonal = pl.DataFrame({"predicted_pd": [0.0, top], "observed_rate": [0.0, top]})
    axis = alt.Axis(format="%")
    line = (
        alt.Chart(diagonal.to_pandas())
        .mark_line(color="#7f7f7f", strokeDash=[4, 3])
        .encode(x="predicted_pd:Q", y="observed_rate:Q")
    )
    dots = (
        alt.Chart(points.to_pandas())
        .mark_line(point=True)
        .encode(
            x=alt.X("predicted_pd:Q", title=f"predicted {horizon_days}-day PD (band mean)", axis=axis),
            y=alt.Y("observed_rate:Q", title=f"share liquidated within {horizon_days} days", axis=axis),
            color=alt.Color("cutoff:N", title="cutoff", sort=points["cutoff"].unique(maintain_order=True).to_list()),
            order="decile:Q",
            tooltip=[
                "cutoff",
                "date",
                alt.Tooltip("bucket:N", title="band"),
                "scores",
                "wallets",
                "liquidated",
                alt.Tooltip("predicted_pd:Q", title="predicted", format=".1%"),
                alt.Tooltip("observed_rate:Q", title="observed", format=".1%"),
            ],
        )
    )
    st.markdown("**Calibration by score band**: predicted against observed, per cutoff")
    st.altair_chart(alt.layer(line, dots).properties(height=320), width="stretch")
    table(
        points.select(
            pl.format("{} · {}", "cutoff", "date").alias("window"),
            "bucket",
            "scores",
            "wallets",
            "liquidated",
            (pl.col("predicted_pd") * 100).alias("predicted_pct"),
            (pl.col("observed_rate") * 100).alias("observed_pct"),
        ),
        hide_index=True,
        column_config={
            "window": "cutoff",
            "bucket": "band",
            "wallets": st.column_config.NumberColumn("borrowers", format="localized"),
            "predicted_pct": st.column_config.NumberColumn("predicted PD", format="%.2f%%"),
            "observed_pct": st.column_config.NumberColumn("observed", format="%.2f%%"),
        },
    )
    st.caption(
        "On the dashed diagonal the model's probabilities equal what happened; above it, more borrowers were "
        f"liquidated than predicted. {points.height} bands, {int(points['wallets'].sum()):,} borrowers in all."
    )
