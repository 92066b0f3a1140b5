"""The Credit scores page (AppTest) on a small hand-made database: its figures equal the rows written, one wallet is
explained with reasons, advice and limits, model quality shows the latest evaluation, empty files say what to run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from chainrisk.dashboard.credit import ACTION_WORDS, advice_lines, band_table, log_ticks, regime_table, score_histogram
from chainrisk.store.db import Store
from chainrisk.store.published import publish_file
from tests.test_app import chart_data, table_with

APP = str(Path(__file__).resolve().parent.parent / "app.py")
CHAIN = 31337
NEW, OLD = "sc-new", "sc-old"
#: The latest as-of block (2022-06-01 00:00:36 UTC) and an older one.
LATEST, LATEST_TS = 200, 1_654_041_636
EARLIER, EARLIER_TS = 100, 1_650_000_000
RISKIEST = "0x" + "a" * 40
NO_HISTORY = "0x" + "d" * 40
NO_COLLATERAL = "0x" + "f" * 40

SCORE_SCHEMA = pl.Schema(
    {
        "chain_id": pl.Int64(),
        "wallet": pl.Utf8(),
        "as_of_block": pl.Int64(),
        "as_of_timestamp": pl.Int64(),
        "model_version": pl.Utf8(),
        "score": pl.Int32(),
        "band": pl.Utf8(),
        "pd": pl.Float64(),
        "reasons": pl.List(pl.Utf8()),
        "reason_text": pl.List(pl.Utf8()),
        "borrower": pl.Boolean(),
        "health_factor": pl.Float64(),
        "collateral_usd": pl.Float64(),
        "debt_usd": pl.Float64(),
        "protocol_ltv": pl.Float64(),
        "suggested_ltv": pl.Float64(),
        "suggested_max_debt_usd": pl.Float64(),
        "scored_at": pl.Datetime("us", "UTC"),
    }
)
FEATURE_SCHEMA = pl.Schema(
    {
        "chain_id": pl.Int64,
        "wallet": pl.Utf8,
        "as_of_block": pl.Int64,
        "model_version": pl.Utf8,
        "feature": pl.Utf8,
        "value": pl.Float64,
        "bin": pl.Utf8,
        "points": pl.Float64,
        "max_points": pl.Float64,
    }
)
ADVICE_SCHEMA = pl.Schema(
    {
        "chain_id": pl.Int64,
        "wallet": pl.Utf8,
        "as_of_block": pl.Int64,
        "model_version": pl.Utf8,
        "action": pl.Utf8,
        "amount_usd": pl.Float64,
        "target_band": pl.Utf8,
        "new_score": pl.Int32,
        "reachable": pl.Boolean,
    }
)


def score(
    wallet: str,
    score: int,
    band: str,
    pd: float,
    hf: float | None,
    collateral: float,
    debt: float,
    ltv: tuple[float | None, float | None, float | None],
    reasons: list[tuple[str, str | None]],
) -> dict[str, Any]:
    protocol_ltv, suggested_ltv, max_debt = ltv
    return {
        "chain_id": CHAIN,
        "wallet": wallet,
        "score": score,
        "band": band,
        "pd": pd,
        "borrower": debt > 0,
        "reasons": [r for r, _ in reasons],
        "reason_text": [t for _, t in reasons],
        "health_factor": hf,
        "collateral_usd": collateral,
        "debt_usd": debt,
        "protocol_ltv": protocol_ltv,
        "suggested_ltv": suggested_ltv,
        "suggested_max_debt_usd": max_debt,
    }


#: The latest as-of block's wallets: two poor, one fair, one good, two excellent (one without debt).
WALLETS = [
    score(
        RISKIEST,
        442,
        "poor",
        0.6480,
        1.0648,
        5_000.0,
        4_961.59,
        (0.8, 0.2, 1_000.0),
        [
            ("hf_now", "health factor now (worst market) = 1.065 costs 424 points"),
            ("hf_min_90d", "lowest health factor in 90 days = 1.0 costs 248 points"),
            ("debt_usd", "debt now (USD) = 4961.59 costs 8 points"),
        ],
    ),
    score(NO_COLLATERAL, 560, "poor", 0.20, 0.0, 0.0, 100.0, (None, None, None), [("hf_now", "health factor …")]),
    score("0x" + "b" * 40, 600, "fair", 0.07, 1.3, 10_000.0, 3_000.0, (0.75, 0.5, 5_000.0), []),
    score("0x" + "c" * 40, 700, "good", 0.02, 2.0, 20_000.0, 5_000.0, (0.8, 0.7, 14_000.0), []),
    score("0x" + "e" * 40, 820, "excellent", 0.0005, 4.0, 3_000.0, 500.0, (0.8, 0.8, 2_400.0), []),
    # Without history a feature has no value, and its stored reason text is empty (the page says it in words).
    score(NO_HISTORY, 850, "excellent", 1e-6, None, 1_000.0, 0.0, (0.8, 0.6, 600.0), [("liquidations", None)]),
]
FEATURES = [
    (RISKIEST, "hf_now", 1.0648, "(-inf, 1.2]", -18.0, 406.0),
    (RISKIEST, "hf_min_90d", 1.0, "(-inf, 1.1]", 10.0, 258.0),
    (RISKIEST, "debt_usd", 4_961.59, "(1000, inf]", 50.0, 58.0),
    (NO_HISTORY, "liquidations", None, "(-inf, 0]", 53.5, 57.5),
]
FEATURE_FIELDS = ["wallet", "feature", "value", "bin", "points", "max_points"]
ADVICE_FIELDS = ["wallet", "action", "amount_usd", "target_band", "new_score", "reachable"]
ADVICE = [(RISKIEST, "repay debt", 1_234.4, "fair", 581, True), (RISKIEST, "add collateral", None, "fair", 560, False)]


def credit_frames(
    block: int, ts: int, version: str, wallets: list[dict[str, Any]], scored_at: datetime
) -> dict[str, pl.DataFrame]:
    key = {"chain_id": CHAIN, "as_of_block": block, "model_version": version}
    return {
        "credit_scores": pl.DataFrame(
            [{**w, **key, "as_of_timestamp": ts, "scored_at": scored_at} for w in wallets], schema=SCORE_SCHEMA
        ),
        "credit_features": pl.DataFrame(
            [dict(zip(FEATURE_FIELDS, f, strict=True)) | key for f in FEATURES], schema=FEATURE_SCHEMA
        ),
        "credit_advice": pl.DataFrame(
            [dict(zip(ADVICE_FIELDS, a, strict=True)) | key for a in ADVICE], schema=ADVICE_SCHEMA
        ),
    }


def evaluation(run_id: int, cutoff: int, scorer: str, auc: float) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "model_version": NEW,
        "chain_id": CHAIN,
        "cutoff_block": cutoff,
        "cutoff_timestamp": EARLIER_TS + cutoff,
        "horizon_days": 30,
        "train_cutoffs": 14,
        "train_rows": 17_368,
        "scorer": scorer,
        "wallets": 1_138,
        "liquidated": 183,
        "auc": auc,
        "ks": auc - 0.2,
        "brier": 0.09,
        "evaluated_at": datetime(2026, 1, run_id, tzinfo=UTC),
    }


EVALUATIONS = [
    evaluation(1, 150, "scorecard", 0.5),
    *[
        evaluation(2, cutoff, s, auc)
        for cutoff in (150, 180)
        for s, auc in (("min_hf_90d", 0.830), ("current_hf", 0.842), ("scorecard", 0.943))
    ],
]
CALIBRATION = [
    (run_id, cutoff, ("poor", "fair")[k - 1], 400 + 100 * k, 500 + 100 * k, 50, 10 // k, 0.3 / k, 0.2 / k)
    for run_id in (1, 2)
    for cutoff in (150, 180)
    for k in (1, 2)
]
#: The market at run 2's cutoffs: calm at 150, a crash at 180.
REGIMES = [
    {
        "run_id": 2,
        "chain_id": CHAIN,
        "cutoff_block": 150,
        "cutoff_timestamp": EARLIER_TS + 150,
        "regime": "calm",
        "market_vol": 0.55,
        "market_drawdown": 0.08,
        "wallets": 100,
        "liquidated": 2,
        "predicted_pd": 0.03,
        "observed_rate": 0.02,
    },
    {
        "run_id": 2,
        "chain_id": CHAIN,
        "cutoff_block": 180,
        "cutoff_timestamp": EARLIER_TS + 180,
        "regime": "crash",
        "market_vol": 0.95,
        "market_drawdown": 0.45,
        "wallets": 100,
        "liquidated": 15,
        "predicted_pd": 0.12,
        "observed_rate": 0.15,
    },
]


def write(db: Path, evaluations: bool = True) -> Path:
    """The credit tables of `db` filled as above (published): the latest block scored by an old and a new model
    version (the new one last), the earlier block by the new one only with two wallets."""
    with Store(db) as store:
        store.replace_credit(
            credit_frames(LATEST, LATEST_TS, OLD, WALLETS[:3], datetime(2026, 1, 1, tzinfo=UTC)), CHAIN, LATEST, OLD
        )
        store.replace_credit(
            credit_frames(LATEST, LATEST_TS, NEW, WALLETS, datetime(2026, 1, 2, tzinfo=UTC)), CHAIN, LATEST, NEW
        )
        store.replace_credit(
            credit_frames(EARLIER, EARLIER_TS, NEW, WALLETS[:2], datetime(2026, 1, 3, tzinfo=UTC)), CHAIN, EARLIER, NEW
        )
        if evaluations:
            calibration = pl.DataFrame(
                CALIBRATION,
                schema=[
                    "run_id",
                    "cutoff_block",
                    "bucket",
                    "score_min",
                    "score_max",
                    "wallets",
                    "liquidated",
                    "predicted_pd",
                    "observed_rate",
                ],
                orient="row",
            )
            store.append_rows(
                {
                    "credit_evaluations": pl.DataFrame(EVALUATIONS),
                    "credit_calibration": calibration,
                    "credit_regimes": pl.DataFrame(REGIMES),
                }
            )
        store.publish()
    return db


@pytest.fixture()
def credit_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = write(tmp_path / "credit.duckdb")
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    return db


def open_page(**params: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    app.query_params["page"] = "credit"
    for name, value in params.items():
        app.query_params[name] = value
    return app.run()


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def metrics(app: AppTest) -> dict[str, Any]:
    return {m.label: m for m in app.metric}


def texts(app: AppTest) -> str:
    return "\n".join([m.value for m in app.markdown] + [c.value for c in app.caption])


def test_headline_bands_and_histogram_equal_the_latest_scores(credit_db: Path) -> None:
    app = open_page()
    assert_clean(app)
    assert not app.info
    # Latest block, its latest-scored model version: six wallets, five of them borrowing.
    shown = metrics(app)
    assert shown["Wallets scored"].value == "6"
    assert shown["Borrowers"].value == "5"
    assert shown["Borrowers"].help == "Wallets with debt, owing $13,562"
    assert shown["Median score"].value == "650"  # (600 + 700) / 2
    assert shown["Median score"].help == "Of all wallets; of borrowers: 600"
    assert shown["Share in poor/fair"].value == "50.0%"
    assert any(
        c.value.startswith("As of block 200 (2022-06-01 00:00 UTC) on devnet, model sc-new.") for c in app.caption
    )
    assert "Scores by band" in [s.value for s in app.subheader]

    bands = table_with(app, "mean_pd_pct")
    assert list(bands["band"]) == ["poor", "fair", "good", "very good", "excellent"]
    assert list(bands["scores"]) == ["300-579", "580-669", "670-739", "740-799", "800-850"]
    assert list(bands["wallets"]) == [2, 1, 1, 0, 2]
    assert list(bands["borrowers"]) == [2, 1, 1, 0, 1]
    assert list(bands["debt_usd"]) == pytest.approx([5_061.59, 3_000.0, 5_000.0, 0.0, 500.0])
    assert bands["mean_pd_pct"][0] == pytest.approx((64.8 + 20.0) / 2)
    # The band's share of the protocols' LTV (0.2 of 0.8); the wallet without collateral has no LTV.
    assert bands["suggested_share_pct"][0] == pytest.approx(25.0)
    assert bands["protocol_ltv_pct"][4] == pytest.approx(80.0)

    histogram = chart_data(app, "scores").to_pylist()
    assert sum(row["wallets"] for row in histogram) == 6
    top = [row for row in histogram if row["from"] == 840]
    assert top == [{"from": 840, "band": "excellent", "wallets": 1, "to": 850, "scores": "840-850"}]

    app.radio(key="credit_who").set_value("borrowers only").run()
    assert_clean(app)
    assert sum(chart_data(app, "scores").column("wallets").to_pylist()) == 5


def test_the_riskiest_borrower_is_explained_with_reasons_advice_and_limit(credit_db: Path) -> None:
    app = open_page()
    assert_clean(app)
    assert app.selectbox(key="credit_riskiest").value == RISKIEST
    assert app.selectbox(key="credit_riskiest").options[0].startswith("0xaaaaaa…aaaaaa · 442 poor · PD 64.8% · $4,962")
    shown = metrics(app)
    assert shown["Score"].value == "442"
    assert shown["Band"].value == "poor"
    assert shown["30-day PD"].value == "64.8%"
    assert shown["Health factor"].value == "1.065"
    assert shown["Debt"].value == "$4,962"
    assert shown["Collateral"].value == "$5,000"
    assert shown["Suggested LTV"].value == "20.0%"
    assert shown["Protocol LTV"].value == "80.0%"
    assert shown["Suggested max debt"].value == "$1,000"
    words = texts(app)
    assert "1. health factor now (worst market) = 1.065 costs 424 points" in words
    assert "3. debt now (USD) = 4961.59 costs 8 points" in words
    # Dollar signs are escaped for Markdown (a pair would be read as LaTeX).
    assert "- Repay \\$1,234 of debt to reach fair (581)" in words
    assert "- Adding collateral is not enough on its own to reach fair: best 560" in words
    assert "It owes \\$4,962: \\$3,962 over the suggested limit." in words

    points = chart_data(app, "lost").to_pylist()
    assert [p["measure"] for p in points] == [
        "health factor now (worst market)",
        "lowest health factor in 90 days",
        "debt now (USD)",
    ]
    assert [p["lost"] for p in points] == [424.0, 248.0, 8.0]
    assert [p["shown_value"] for p in points] == ["1.065 (ratio)", "1.000 (ratio)", "$4,962"]


def test_a_typed_wallet_without_history_or_collateral(credit_db: Path) -> None:
    app = open_page(wallet=NO_HISTORY.upper().replace("0X", "0x"))  # any case, from the URL
    assert_clean(app)
    shown = metrics(app)
    assert (shown["Score"].value, shown["Band"].value, shown["30-day PD"].value) == ("850", "excellent", "<0.1%")
    assert shown["Health factor"].value == "no debt"
    words = texts(app)
    assert "1. liquidations suffered: no history yet, costs 4 points" in words
    assert "Already in the top band." in words
    assert "It owes nothing." in words

    app.text_input(key="credit_address").set_value(NO_COLLATERAL).run()
    assert_clean(app)
    assert metrics(app)["Score"].value == "560"
    assert "No collateral, so no limit to suggest." in texts(app)
    assert "Suggested LTV" not in metrics(app)

    app.text_input(key="credit_address").set_value("0x" + "9" * 40).run()
    assert_clean(app)
    assert [i.value for i in app.info] == [
        f"{'0x' + '9' * 40} was not scored as of block 200: it held no position there."
    ]

    app.text_input(key="credit_address").set_value("not-an-address").run()
    assert not app.exception
    assert len(app.error) == 1 and "is not a wallet address" in app.error[0].value
    assert "Model quality" in [s.value for s in app.subheader], "a typo does not hide the rest of the page"


def test_older_as_of_blocks_and_model_versions_can_be_chosen(credit_db: Path) -> None:
    app = open_page()
    picker = app.selectbox(key="credit_as_of")
    assert picker.options == [
        "block 200 (2022-06-01 00:00 UTC) · model sc-new · 6 wallets",
        "block 200 (2022-06-01 00:00 UTC) · model sc-old · 3 wallets",
        "block 100 (2022-04-15 05:20 UTC) · model sc-new · 2 wallets",
    ]
    picker.set_value(2).run()
    assert_clean(app)
    assert metrics(app)["Wallets scored"].value == "2"
    assert any(c.value.startswith("As of block 100 (2022-04-15 05:20 UTC)") for c in app.caption)
    picker = app.selectbox(key="credit_as_of")
    picker.set_value(1).run()
    assert metrics(app)["Wallets scored"].value == "3"
    assert metrics(app)["Score"].value == "442"


def test_model_quality_shows_the_latest_evaluation_run(credit_db: Path) -> None:
    app = open_page()
    assert_clean(app)
    table = table_with(app, "auc")
    assert list(table["cutoff"]) == ["block 150 · 2022-04-15"] * 3 + ["block 180 · 2022-04-15"] * 3
    assert (
        list(table["scorer_name"])
        == ["credit scorecard (probability)", "health factor now", "lowest health factor in 90 days"] * 2
    )
    assert list(table["auc"]) == pytest.approx([0.943, 0.842, 0.830] * 2)
    assert list(table["wallets"]) == [1_138] * 6 and list(table["liquidated"]) == [183] * 6
    assert (
        "**Evaluated on this database**: run #2, 2026-01-02 00:00 UTC, model sc-new (the model these scores use)."
        in [m.value for m in app.markdown]
    )
    regimes = table_with(app, "market_vol_pct")
    assert list(regimes["window"]) == ["2022-04-15", "2022-04-15"]
    assert list(regimes["regime"]) == ["calm", "crash"]
    assert list(regimes["predicted_pct"]) == pytest.approx([3.0, 12.0])
    assert list(regimes["observed_pct"]) == pytest.approx([2.0, 15.0])
    assert list(regimes["market_vol_pct"]) == pytest.approx([55.0, 95.0])
    bands = table_with(app, "bucket")
    assert list(bands["bucket"]) == ["poor", "fair"] * 2 and list(bands["predicted_pct"]) == pytest.approx([30, 15] * 2)
    points = sorted(chart_data(app, "decile").to_pylist(), key=lambda p: (p["cutoff"], p["decile"]))
    assert [(p["cutoff"], p["decile"], p["scores"]) for p in points] == [
        (f"block {cutoff}", k, f"{400 + 100 * k}-{500 + 100 * k}") for cutoff in (150, 180) for k in (1, 2)
    ]
    assert [p["predicted_pd"] for p in points] == pytest.approx([0.3, 0.15] * 2)
    assert [p["observed_rate"] for p in points] == pytest.approx([0.2, 0.1] * 2)


def test_without_an_evaluation_the_page_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINRISK_DB", str(write(tmp_path / "credit.duckdb", evaluations=False)))
    app = open_page()
    assert_clean(app)
    assert [i.value for i in app.info] == [
        "No out-of-time evaluation yet: run `chainrisk credit evaluate --at BLOCK_OR_DATE` (repeatable) and reload "
        "this page."
    ]
    assert metrics(app)["Wallets scored"].value == "6"


def test_an_empty_or_older_database_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty.duckdb"
    with Store(empty) as store:
        store.publish()
    older = tmp_path / "older.duckdb"
    with duckdb.connect(str(older)) as con:
        con.execute("CREATE TABLE positions (wallet VARCHAR)")
    publish_file(older)
    for db in (empty, older):
        monkeypatch.setenv("CHAINRISK_DB", str(db))
        app = open_page()
        assert_clean(app)
        assert [i.value for i in app.info] == [
            f"No credit scores yet: run `chainrisk credit history --db {db} --devnet` (or `--rpc-url URL`), then "
            f"`chainrisk credit --db {db}`, and reload this page."
        ]
        assert not app.metric and not app.get("vega_lite_chart") and not app.dataframe

    monkeypatch.setenv("CHAINRISK_DB", str(tmp_path / "missing.duckdb"))
    app = open_page()
    assert_clean(app)
    assert any("chainrisk score" in i.value for i in app.info)


def test_helpers_on_tiny_frames() -> None:
    scored = pl.DataFrame(WALLETS)
    assert band_table(scored)["wallets"].to_list() == [2, 1, 1, 0, 2]
    bins = score_histogram(pl.DataFrame({"score": [300, 309, 310, 849, 850, 850], "band": ["poor"] * 6}))
    assert bins.select("from", "wallets", "scores").rows() == [
        (300, 2, "300-309"),
        (310, 1, "310-319"),
        (840, 3, "840-850"),
    ]
    assert log_ticks(1) == [0, 1] and log_ticks(120) == [0, 1, 2, 5, 10, 20, 50, 100]
    advice = pl.DataFrame(
        [
            ("unwind loop", 5.0, "good", 700, True),
            ("repay debt", 12_000.5, "good", 671, True),
            ("add collateral", None, "good", 655, False),
        ],
        schema=["action", "amount_usd", "target_band", "new_score", "reachable"],
        orient="row",
    )
    assert advice_lines(advice) == [
        "Unwind $5.00 of the loop (sell collateral to repay debt) to reach good (700)",
        "Repay $12,000 of debt to reach good (671)",
        "Adding collateral is not enough on its own to reach good: best 655",
    ]
    assert set(ACTION_WORDS) == {"repay debt", "add collateral", "unwind loop"}
    # A regime with several cutoffs gets a row pooling them, weighted by borrowers.
    third = {
        **REGIMES[1],
        "cutoff_block": 190,
        "cutoff_timestamp": LATEST_TS,
        "wallets": 300,
        "liquidated": 60,
        "predicted_pd": 0.16,
        "observed_rate": 0.2,
    }
    table = regime_table(pl.DataFrame([*REGIMES, third]))
    assert table["window"].to_list() == ["2022-04-15", "2022-04-15", "2022-06-01", "all crash cutoffs (2)"]
    pooled = table.row(3, named=True)
    assert pooled["wallets"] == 400 and pooled["liquidated"] == 75
    assert pooled["predicted_pct"] == pytest.approx(100 * (100 * 0.12 + 300 * 0.16) / 400)
    assert pooled["observed_pct"] == pytest.approx(100 * 75 / 400)


def test_scores_of_the_bundled_model_show_the_evaluation_shipped_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database the bundled model scored but nobody evaluated (the demo's) shows the evaluation shipped beside the
    model file, saying what it is; written in the shape `make credit-eval` exports it (JSON lines by part)."""
    import json

    from chainrisk.credit.scorecard import fit
    from tests.test_credit_model import synthetic

    model = tmp_path / "bundled.json"
    card = fit(synthetic(2_000), 30, {"source": "synthetic"})
    card.save(model)
    calibration = [
        "run_id",
        "cutoff_block",
        "bucket",
        "score_min",
        "score_max",
        "wallets",
        "liquidated",
        "predicted_pd",
        "observed_rate",
    ]
    rows = (
        [
            {
                "part": "evaluation",
                **{k: v for k, v in e.items() if k != "evaluated_at"},
                "bucket": None,
                "evaluated_at": e["evaluated_at"].isoformat(),
            }
            for e in EVALUATIONS
            if e["run_id"] == 2
        ]
        + [
            {"part": "calibration", **dict(zip(calibration, c, strict=True)), "scorer": None}
            for c in CALIBRATION
            if c[0] == 2
        ]
        + [{"part": "regime", **r} for r in REGIMES]
    )
    (tmp_path / "bundled.evaluation.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    db = tmp_path / "credit.duckdb"
    with Store(db) as store:
        store.replace_credit(
            credit_frames(LATEST, LATEST_TS, card.version, WALLETS, datetime(2026, 1, 2, tzinfo=UTC)),
            CHAIN,
            LATEST,
            card.version,
        )
        store.publish()
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    monkeypatch.setattr("chainrisk.dashboard.credit.BUNDLED_MODEL", model)
    app = open_page()
    assert_clean(app)
    assert not app.info
    words = texts(app)
    assert f"**Shipped with the bundled model {card.version}, not measured on these wallets**" in words
    assert list(table_with(app, "auc")["auc"]) == pytest.approx([0.943, 0.842, 0.830] * 2)
    assert list(table_with(app, "market_vol_pct")["regime"]) == ["calm", "crash"]
    assert list(table_with(app, "bucket")["observed_pct"]) == pytest.approx([20, 10] * 2)
