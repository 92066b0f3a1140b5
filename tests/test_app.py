"""The dashboard, page by page (AppTest): no error anywhere, figures equal to the database's, the wallet what-if equal
to the health engine, the SQL console read-only, and a note saying what to run when data or views are missing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from chainrisk.cli import main
from chainrisk.dashboard import overview, positions, risk
from chainrisk.dashboard.chains import asset_labels
from chainrisk.dashboard.liquidations import UNKNOWN_LIQUIDATOR
from chainrisk.dashboard.pages import PAGES
from chainrisk.dashboard.ui import MISSING, PROTOCOL_NAMES, chain_names, series_colour, usd, usd_short
from chainrisk.devnet.summary import REAL
from chainrisk.scoring.health import stress
from chainrisk.store.db import Store
from chainrisk.store.history import HistorySettings, record_samples
from chainrisk.store.published import publish_file
from chainrisk.store.views import list_queries
from tests.databases import copy_of

APP = str(Path(__file__).resolve().parent.parent / "app.py")
#: Pages that read the database (the devnet page reads the devnet's manifest).
DATABASE_PAGES = [p.slug for p in PAGES if p.slug != "devnet"]


@pytest.fixture()
def scored(devnet: dict[str, Any], scored_db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The dashboard pointed at the session's scored devnet database and manifest."""
    monkeypatch.setenv("CHAINRISK_MANIFEST", str(Path(devnet["state_dir"]) / "manifest.json"))
    monkeypatch.setenv("CHAINRISK_DB", str(scored_db))
    return scored_db


def open_page(slug: str, **params: str) -> AppTest:
    """The dashboard at ?page=`slug` (and any other query `params`, e.g. wallet=0x…), run once."""
    app = AppTest.from_file(APP, default_timeout=120)
    app.query_params["page"] = slug
    for name, value in params.items():
        app.query_params[name] = value
    return app.run()


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Straight from the file with DuckDB, bypassing the dashboard's code."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def table_with(app: AppTest, column: str) -> Any:
    """The (pandas) frame of the page's st.dataframe that has `column` (a key table and its expander's "every figure"
    show one frame: counted once)."""
    found = [d.value for d in app.dataframe if column in d.value.columns]
    tables = [t for i, t in enumerate(found) if not any(t.equals(u) for u in found[:i])]
    assert len(tables) == 1, f"{len(tables)} tables with a {column!r} column"
    return tables[0]


def chart_data(app: AppTest, column: str) -> pa.Table:
    """The data of the page's Altair chart that has `column`."""
    for chart in app.get("vega_lite_chart"):
        for dataset in chart.proto.datasets:
            table = pa.ipc.open_stream(dataset.data.data).read_all()
            if column in table.column_names:
                return table
    raise AssertionError(f"no chart with a {column!r} column")


LATEST_WALLETS = "SELECT w.* FROM wallet_risk w JOIN scored_markets USING (protocol, chain_id, market, block_number)"


@pytest.mark.parametrize("slug", [p.slug for p in PAGES])
def test_every_page_opens_from_its_url(scored: Path, slug: str) -> None:
    app = open_page(slug)
    assert_clean(app)
    assert app.radio(key="page").value == slug
    title = next(p.title for p in PAGES if p.slug == slug)
    assert title in [t.value for t in app.title]
    if slug not in ("runs", "risk", "chains", "credit"):  # no runs, risk models, contagion or credit scores yet
        assert not app.info, [i.value for i in app.info]
    # A missing figure reads as a dash, not Streamlit's "None" (the SQL console's as NULL).
    assert all(d.proto.placeholder == ("NULL" if slug == "sql" else MISSING) for d in app.dataframe), slug


def test_markets_page_gives_morpho_rates_as_stored(scored: Path) -> None:
    """The Morpho section lists every Morpho Blue market of the latest snapshot with its rate as read; the devnet's
    markets run the devnet's kinked IRM, so no rate ahead is projected (the projection itself: irm.rate_at against
    the real AdaptiveCurveIrm's vectors and on a chain, tests/test_morpho_adaptive_irm*.py)."""
    app = open_page("markets")
    assert_clean(app)
    assert "Morpho Blue: borrow rates" in [s.value for s in app.subheader]
    assert any("None of these markets runs Morpho's AdaptiveCurveIrm" in c.value for c in app.caption)
    # The section's table, then the same frame with every figure in its expander.
    shown = next(d.value for d in app.dataframe if "apr_in_7d_pct" in d.value.columns)
    stored = rows(
        scored,
        "SELECT market_id, borrow_rate::DOUBLE / 1e18 * 31536000 * 100, rate_at_target FROM raw_morpho_blue_markets",
    )
    assert sorted(shown["market"]) == sorted(r[0] for r in stored)
    apr = dict(zip(shown["market"], shown["borrow_apr_pct"], strict=True))
    assert all(apr[market] == pytest.approx(expected, rel=1e-12) for market, expected, _ in stored)
    assert all(target is None for *_, target in stored), "the devnet's IRM is not an AdaptiveCurveIrm"
    assert shown[[f"apr_in_{d}d_pct" for d in (1, 7, 30)]].isna().all().all()
    # "USD from": the loan token's price from the USD oracle the devnet's Morpho is indexed with (Aave's), or the
    # collateral's through the market's oracle where the oracle does not price the loan token.
    sources = rows(
        scored, "SELECT market_id, loan_symbol, loan_usd_source, loan_price_usd FROM raw_morpho_blue_markets"
    )
    route = dict(zip(shown["market"], shown["usd_route"], strict=True))
    for market, symbol, source, price in sources:
        assert (source is None) == (price is None) and (source is None or source.startswith("usd oracle 0x")), market
        assert price is None or route[market] == f"loan {symbol}: {source}", (market, route[market])


def test_markets_page_gives_each_aave_reserve_its_totals_and_cap_usage(scored: Path) -> None:
    """The Aave section lists every reserve of the latest snapshot with its supply and debt as its tokens hold them
    (whole tokens, from the stored exact totals) and the share of each cap they use, charted where a cap is set."""
    app = open_page("markets")
    assert_clean(app)
    assert "Aave V3: reserves and caps" in [s.value for s in app.subheader]
    shown = table_with(app, "supply_headroom_tokens")
    stored = rows(
        scored,
        "SELECT symbol, total_supplied, total_variable_debt + coalesce(total_stable_debt, 0), decimals, supply_cap, "
        "borrow_cap, supply_cap_used, supply_cap_headroom FROM raw_aave_v3_reserves",
    )
    assert len(shown) == len(stored) > 3
    by_symbol = {row["symbol"]: row for _, row in shown.iterrows()}
    for symbol, supplied, debt, decimals, supply_cap, borrow_cap, cap_used, headroom in stored:
        row = by_symbol[symbol]
        assert row["supplied_tokens"] == pytest.approx(int(supplied) / 10**decimals, rel=1e-12), symbol
        assert row["debt_tokens"] == pytest.approx(int(debt) / 10**decimals, rel=1e-12), symbol
        for column, used, cap in (
            ("supply_cap_used_pct", cap_used, supply_cap),
            ("borrow_cap_used_pct", debt, borrow_cap),
        ):
            expected = 100 * int(used) / (cap * 10**decimals) if cap else None
            assert bool(pd.isna(row[column])) == (expected is None), (symbol, column)
            if expected is not None:
                assert row[column] == pytest.approx(expected, rel=1e-9), (symbol, column)
        assert row["utilization_pct"] == pytest.approx(100 * int(debt) / int(supplied), rel=1e-9), symbol
        if headroom is not None:
            assert row["supply_headroom_tokens"] == pytest.approx(int(headroom) / 10**decimals, rel=1e-12), symbol
    used = shown[["supply_cap_used_pct", "borrow_cap_used_pct"]].max().max()
    if used >= 1:
        assert chart_data(app, "used_pct").num_rows > 0
    else:  # the devnet's caps are mainnet-sized: its reserves use under 1 % of each
        assert any("No reserve uses 1 % or more of a cap" in c.value for c in app.caption)


def test_markets_page_ranks_every_pool_by_its_nearest_limit(scored: Path) -> None:
    """The pools section lists every Aave reserve and Morpho market of the latest snapshots, closest to a limit first,
    each figure as the stored exact integers give it, and charts the closest."""
    app = open_page("markets")
    assert_clean(app)
    assert "Pools closest to their limits" in [s.value for s in app.subheader]
    shown = table_with(app, "nearest_limit_pct")
    expected: dict[str, dict[str, float | None]] = {}
    reserves = rows(
        scored,
        "SELECT asset, total_supplied, total_variable_debt + coalesce(total_stable_debt, 0), decimals, supply_cap, "
        "borrow_cap, supply_cap_used FROM raw_aave_v3_reserves",
    )
    for asset, supplied, debt, decimals, supply_cap, borrow_cap, cap_used in reserves:
        unit = 10**decimals
        expected[asset] = {
            "utilization_pct": 100 * int(debt) / int(supplied) if int(supplied) else None,
            "supply_cap_used_pct": 100 * int(cap_used) / (supply_cap * unit) if supply_cap else None,
            "debt_cap_used_pct": 100 * int(debt) / (borrow_cap * unit) if borrow_cap else None,
        }
    for market, supplied, debt in rows(
        scored, "SELECT market, supply_amount, debt_amount FROM markets WHERE protocol = 'morpho-blue'"
    ):
        utilization = 100 * int(debt) / int(supplied) if int(supplied) else None
        expected[market] = {"utilization_pct": utilization, "supply_cap_used_pct": None, "debt_cap_used_pct": None}
    assert sorted(shown["pool"]) == sorted(expected) and len(reserves) > 3
    for _, row in shown.iterrows():
        for column, value in expected[row["pool"]].items():
            assert bool(pd.isna(row[column])) == (value is None), (row["pool"], column)
            if value is not None:
                assert row[column] == pytest.approx(value, rel=1e-9), (row["pool"], column)
    nearest = shown["nearest_limit_pct"].dropna().tolist()
    assert nearest == sorted(nearest, reverse=True) and nearest[0] == max(
        v for figures in expected.values() for v in figures.values() if v is not None
    )
    assert chart_data(app, "limit_used_pct").num_rows > 0


def test_markets_page_draws_a_market_over_time(scored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With two more buckets of samples (every wallet an hour earlier at twice its debt, and 20 days earlier at three
    times it), the largest market's chart holds the three, each its wallets' sums as the database holds them, and the
    last 7 days the two recent ones; with one bucket the page says so."""
    app = open_page("markets")
    assert_clean(app)
    assert "A market over time" in [s.value for s in app.subheader]
    assert any("One bucket of health history for this market" in c.value for c in app.caption)
    db = copy_of(scored, tmp_path)
    with Store(db) as store:
        largest = store.con.execute(
            "SELECT protocol, chain_id, market FROM mart_market_summary ORDER BY debt_usd DESC NULLS LAST, protocol, "
            "market LIMIT 1"
        ).fetchall()[0]
        latest = store.query(
            "SELECT protocol, chain_id, market, wallet, last_block AS block_number, last_timestamp AS block_timestamp, "
            "health_factor, collateral_usd, debt_usd, borrowing_power_usd, bad_debt_usd, liquidation_threshold_bps, "
            "ltv_bps, liquidatable FROM wallet_health_history"
        )
        for back, blocks, factor in ((3600, 1, 2), (20 * 86_400, 2, 3)):
            earlier = latest.with_columns(
                pl.col("block_number") - blocks, pl.col("block_timestamp") - back, pl.col("debt_usd") * factor
            )
            record_samples(store.con, earlier, HistorySettings())
        store.publish()
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    app = open_page("markets")
    assert_clean(app)
    expected = rows(
        db,
        "SELECT bucket_start, sum(debt_usd), sum(collateral_usd), count(*) FILTER (WHERE liquidatable) "
        "FROM wallet_health_history WHERE protocol = ? AND chain_id = ? AND market = ? GROUP BY 1 ORDER BY 1",
        list(largest),
    )
    assert len(expected) == 3 and expected[0][1] == pytest.approx(3 * expected[2][1])
    money = pl.from_arrow(chart_data(app, "series"))
    assert isinstance(money, pl.DataFrame)
    for series, at in (("debt", 1), ("collateral", 2)):
        drawn = money.filter(pl.col("series") == series).sort("bucket_time")["value"].to_list()
        assert drawn == pytest.approx([row[at] for row in expected], rel=1e-12), series
    counts = pl.from_arrow(chart_data(app, "last"))
    assert isinstance(counts, pl.DataFrame)
    assert counts.sort("bucket_time")["last"].to_list() == [row[3] for row in expected]
    assert any("3 buckets of the health history" in c.value for c in app.caption)
    # The last 7 days of the market's scores: the bucket 20 days back is not read.
    app.selectbox(key="markets_over_time_range").select("last 7 days").run()
    assert_clean(app)
    week = pl.from_arrow(chart_data(app, "series"))
    assert isinstance(week, pl.DataFrame)
    drawn = week.filter(pl.col("series") == "debt").sort("bucket_time")["value"].to_list()
    assert drawn == pytest.approx([row[1] for row in expected[1:]], rel=1e-12)


def test_liquidations_page_sums_every_liquidation(scored: Path) -> None:
    """The metrics count and sum every liquidation the chain logged (stg_lending_liquidations, straight from the file),
    the per-market table gives each market's, the latest table lists them newest first with their wallets' links."""
    app = open_page("liquidations")
    assert_clean(app)
    logged = rows(
        scored,
        "SELECT count(DISTINCT (protocol, chain_id, tx_hash, wallet)), sum(debt_repaid_usd), sum(protocol_fee_usd) "
        "FROM mart_liquidations",
    )[0]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Liquidations"] == f"{logged[0]:,}" and logged[0] > 0
    assert metrics["Debt repaid (USD)"] == usd_short(logged[1])
    assert metrics["Protocol fees (USD)"] == usd_short(logged[2])
    per_market = dict(rows(scored, "SELECT market, count(*) FROM stg_lending_liquidations GROUP BY 1"))
    markets = table_with(app, "largest_usd")
    assert dict(zip(markets["market"], markets["liquidations"], strict=True)) == per_market
    fees = dict(rows(scored, "SELECT market, sum(protocol_fee_usd) FROM mart_liquidations GROUP BY 1"))
    shown_fees = dict(zip(markets["market"], markets["fee_usd"], strict=True))
    assert shown_fees.keys() == fees.keys()
    assert all((fees[m] is None and pd.isna(shown_fees[m])) or shown_fees[m] == fees[m] for m in fees), shown_fees
    latest = table_with(app, "price_source")
    assert latest["block_number"].tolist() == sorted(latest["block_number"], reverse=True)
    assert latest.shape[0] == min(logged[0], 500)
    assert all(link.endswith(wallet) for link, wallet in zip(latest["wallet page"], latest["wallet"], strict=True))
    # Who liquidates: each liquidator of mart_liquidators with its share (straight from the file), the largest first,
    # the concentration said per protocol and drawn.
    keepers = rows(
        scored,
        "SELECT protocol, liquidator, liquidations, 100 * debt_share, rank, liquidators FROM mart_liquidators "
        "ORDER BY protocol, chain_id, rank NULLS LAST",
    )
    shown = table_with(app, "debt_share_pct")
    assert shown["liquidator"].tolist() == [k[1] or UNKNOWN_LIQUIDATOR for k in keepers]
    assert shown["liquidations"].tolist() == [k[2] for k in keepers]
    assert shown["debt_share_pct"].tolist() == pytest.approx([k[3] for k in keepers], rel=1e-12, nan_ok=True)
    caption = next(c.value for c in app.caption if c.value.startswith("A protocol whose liquidations rest"))
    for protocol, _, _, share, rank, count in keepers:
        name = PROTOCOL_NAMES.get(protocol, protocol)
        if rank == 1 and count == 1:
            assert f"**{name}**: one liquidator did every liquidation" in caption
        elif rank == 1:
            assert f"**{name}**: {count:,} liquidators; the largest repaid {share:.1f} %" in caption
    drawn = chart_data(app, "keeper").to_pylist()
    assert sum(d["debt_share_pct"] for d in drawn) == pytest.approx(100.0 * len({k[0] for k in keepers if k[4]}))


def test_the_sidebar_switches_pages_and_the_url_follows(scored: Path) -> None:
    app = open_page("overview")
    for page in PAGES[1:]:
        app.radio(key="page").set_value(page.slug).run()
        assert_clean(app)
        assert app.query_params["page"] == page.slug
        assert page.title in [t.value for t in app.title]


def test_an_unknown_page_says_so_and_names_the_pages(scored: Path) -> None:
    app = open_page("no-such-page")
    assert_clean(app)
    assert app.radio(key="page").value == "overview"
    assert [w.value for w in app.warning] == [
        f"No page named 'no-such-page'; pages: {', '.join(p.slug for p in PAGES)}. Showing the Overview instead."
    ]
    # The note is about the URL it came with: once the reader picks a page, it is gone.
    app.radio(key="page").set_value("positions").run()
    assert not app.warning


def test_overview_figures_equal_the_database(scored: Path) -> None:
    app = open_page("overview")
    assert_clean(app)
    collateral, debt, borrowers, liquidatable, bad_debt, protocols, positions_with_debt = rows(
        scored,
        f"""
        WITH latest AS ({LATEST_WALLETS})
        SELECT sum(collateral_usd), sum(debt_usd), count(DISTINCT (chain_id, wallet)) FILTER (WHERE debt_usd > 0),
               count(*) FILTER (WHERE liquidatable), sum(bad_debt_usd), count(DISTINCT protocol),
               count(*) FILTER (WHERE health_factor IS NOT NULL)
        FROM latest
        """,
    )[0]
    metrics = {m.label: m for m in app.metric}
    assert metrics["Collateral (USD)"].help == f"${collateral:,.0f}"
    assert metrics["Debt (USD)"].help == f"${debt:,.0f}"
    assert metrics["Debt (USD)"].value.startswith("$")
    assert metrics["Borrowing wallets"].value == f"{borrowers:,}"
    assert metrics["Liquidatable now"].value == f"{liquidatable:,}"
    assert metrics["Bad debt (USD)"].help.startswith(f"${bad_debt:,.0f}:")
    assert metrics["Protocols"].value == str(protocols) == "2"
    assert borrowers > 100 and positions_with_debt >= borrowers

    # Every borrowing position is counted once in the histogram, whatever its health factor.
    histogram = chart_data(app, "positions")
    assert sum(histogram.column("positions").to_pylist()) == positions_with_debt
    buckets = chart_data(app, "bucket_order")
    assert sum(buckets.column("wallets").to_pylist()) == positions_with_debt

    per_market = dict(
        rows(scored, f"WITH latest AS ({LATEST_WALLETS}) SELECT market, sum(debt_usd) FROM latest GROUP BY market")
    )
    markets = table_with(app, "market_label")
    assert sorted(markets["market"]) == sorted(per_market)
    for market, shown in zip(markets["market"], markets["debt_usd"], strict=True):
        assert shown == pytest.approx(per_market[market], rel=1e-12)
    freshness = table_with(app, "snapshot age")
    assert len(freshness) == rows(scored, "SELECT count(*) FROM sync_state")[0][0]

    assert app.selectbox(key="overview_axis").value == ("all_crypto", "all non-stable")
    curve = chart_data(app, "price drop (%)")
    at_90 = rows(
        scored,
        """SELECT sum(liquidatable_collateral_usd) FROM liquidation_curve c
           WHERE market = 'all' AND axis = 'all non-stable' AND "drop" = 0.9
             AND block_number = (SELECT max(block_number) FROM liquidation_curve WHERE chain_id = c.chain_id)""",
    )[0][0]
    shown = [
        point["USD"]
        for point in curve.to_pylist()
        if point["price drop (%)"] == 90 and point["measure"] == "collateral at risk (USD)"
    ]
    assert shown == [pytest.approx(at_90, rel=1e-12)]
    app.selectbox(key="overview_axis").select(("asset", "WETH")).run()
    assert_clean(app)
    assert chart_data(app, "price drop (%)").num_rows == curve.num_rows


def test_overview_lists_the_weakest_borrowers_across_protocols(scored: Path) -> None:
    app = open_page("overview")
    assert_clean(app)
    table = table_with(app, "worst_health_factor")
    borrowers = "FROM wallet_portfolio WHERE worst_health_factor IS NOT NULL"
    (total,) = rows(scored, f"SELECT count(*) {borrowers}")[0]
    order = "ORDER BY worst_health_factor, chain_id, wallet LIMIT ?"
    weakest = rows(scored, f"SELECT wallet {borrowers} {order}", [overview.BORROWER_LIMIT])
    assert total > overview.BORROWER_LIMIT == 200, "the devnet has more borrowers than the table shows"
    assert len(table) == overview.BORROWER_LIMIT
    assert list(table["wallet"]) == [wallet for (wallet,) in weakest]
    assert list(table["worst_health_factor"]) == sorted(table["worst_health_factor"])
    assert any(c.value.startswith(f"The weakest 200 of {total:,} borrowers") for c in app.caption)
    protocols = set(table["protocols"])
    assert len(protocols) > 1 and protocols <= {"Aave V3", "Morpho Blue", "Aave V3, Morpho Blue"}, protocols
    assert not any(where.startswith("0x") for where in table["worst_market_label"]), "markets by name, not id"
    assert list(table["wallet page"]) == [f"?page=wallet&wallet={wallet}" for wallet in table["wallet"]]


def test_one_market_label_everywhere_with_its_parameter_named(scored: Path) -> None:
    overview_page = open_page("overview")
    positions_page = open_page("positions")
    assert_clean(overview_page)
    assert_clean(positions_page)
    markets = table_with(overview_page, "market_label")
    names = dict(zip(markets["market"], markets["market_name"], strict=True))
    assert all(n.startswith(("Aave V3 · ", "Morpho Blue · ")) for n in names.values()), names
    assert all(" · LLTV " in n for n in names.values() if n.startswith("Morpho Blue")), names
    assert not any("0x" in n for n in names.values()), "markets by name, not by id"
    # The Borrowers table and the At-risk positions name each market exactly as the Markets table does.
    assert set(table_with(overview_page, "worst_health_factor")["worst_market_name"]) <= set(names.values())
    at_risk = table_with(positions_page, "liquidation_price_change_pct")
    # The chain by its name in every table of the page, the expander's "other columns" too.
    assert {c for d in positions_page.dataframe if "chain_id" in d.value for c in d.value["chain_id"]} == {"devnet"}
    assert all(names[m] == n for m, n in zip(at_risk["market"], at_risk["market_name"], strict=True))
    # A liquidation price is read with its direction: collateral falls below it, debt rises above it.
    for when, price, phrase in zip(
        at_risk["liquidated_when_price"], at_risk["liquidation_price_usd"], at_risk["liquidated_if_price"], strict=True
    ):
        if price is None or price != price:  # no liquidation price (None or NaN in pandas): nothing to say
            assert phrase is None or phrase != phrase
            continue
        assert when in ("falls below", "rises above") and phrase.startswith(f"{when} $")
        assert float(phrase.split("$")[1].replace(",", "")) == pytest.approx(price, rel=1e-3)


def test_histogram_bins_hold_their_health_factors(scored: Path) -> None:
    bins = list(overview.health_histogram(scored).select("from", "to", "positions").iter_rows())
    counted = [0] * len(bins)
    for (hf,) in rows(scored, f"SELECT health_factor FROM ({LATEST_WALLETS}) WHERE health_factor IS NOT NULL"):
        drawn = min(max(hf, overview.HF_MIN), overview.HF_MAX)  # the end bins take what lies beyond the axis
        (where,) = [
            i for i, (low, high, _) in enumerate(bins) if low <= drawn < high or drawn == high == overview.HF_MAX
        ]
        counted[where] += 1
    assert counted == [count for _, _, count in bins]


AT_RISK = f"""
SELECT count(*), min(w.health_factor) FROM position_risk r
JOIN scored_markets USING (protocol, chain_id, market, block_number)
JOIN ({LATEST_WALLETS}) w USING (protocol, chain_id, market, wallet, block_number)
WHERE w.health_factor <= ? AND r.protocol = ANY(?)
"""


def test_at_risk_positions_filter_and_limit_in_sql(scored: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("positions")
    assert_clean(app)
    count, weakest = rows(scored, AT_RISK, [1.5, ["aave-v3", "morpho-blue"]])[0]
    table = table_with(app, "liquidation_price_change_pct")
    assert 0 < len(table) == count
    assert table["health_factor"].iloc[0] == weakest
    assert list(table["health_factor"]) == sorted(table["health_factor"])
    assert "raw" not in " ".join(table.columns) and "debt_amount" not in table.columns

    app.multiselect(key="positions_protocols").select("morpho-blue")
    app.slider(key="positions_max_hf").set_value(3.0).run()
    assert_clean(app)
    morpho = table_with(app, "liquidation_price_change_pct")
    assert set(morpho["protocol"]) == {"Morpho Blue"}
    assert len(morpho) == rows(scored, AT_RISK, [3.0, ["morpho-blue"]])[0][0]

    monkeypatch.setattr(positions, "ROW_LIMIT", 7)
    app.run()
    assert len(table_with(app, "liquidation_price_change_pct")) == 7
    assert any(c.value.startswith(f"Showing the weakest 7 of {len(morpho):,}") for c in app.caption)


def latest_positions(db: Path, wallet: str) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        table = con.sql(
            "SELECT p.* FROM positions p JOIN scored_markets USING (protocol, chain_id, market, block_number) "
            "WHERE wallet = ?",
            params=[wallet],
        ).to_arrow_table()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def stored_health(db: Path, wallet: str) -> dict[str, float]:
    sql = f"SELECT market, health_factor FROM ({LATEST_WALLETS}) WHERE wallet = ? AND health_factor IS NOT NULL"
    return dict(rows(db, sql, [wallet]))


def what_if(app: AppTest) -> dict[str, float | None]:
    """The what-if health factor per market (None: no debt left)."""
    table = table_with(app, "health_factor_after")
    after = zip(table["market"], table["health_factor_after"], strict=True)
    return {m: None if hf is None or hf != hf else float(hf) for m, hf in after}


def position_key(app: AppTest, key: str) -> str:
    """The market of the position a what-if selectbox names."""
    value = app.selectbox(key=key).value
    assert isinstance(value, tuple)
    return str(value[2])


def test_wallet_page_and_live_what_if_agree_with_the_engine(scored: Path) -> None:
    # A wallet borrowing in two markets, weakest first: the what-if must move both.
    wallet = rows(
        scored,
        f"""SELECT wallet FROM ({LATEST_WALLETS}) WHERE health_factor IS NOT NULL
            GROUP BY wallet HAVING count(*) >= 2 ORDER BY min(health_factor), wallet LIMIT 1""",
    )[0][0]
    app = open_page("wallet")
    app.text_input(key="wallet_address").input("0x" + wallet[2:].upper()).run()
    assert_clean(app)
    assert any(wallet in m.value for m in app.markdown)
    stored = stored_health(scored, wallet)
    assert len(stored) >= 2

    # No change: the engine on the wallet's latest positions gives back the stored health factors, bit for bit.
    assert {m: hf for m, hf in what_if(app).items() if hf is not None} == stored

    # Half the price of its weakest market's collateral: HF falls there, as the engine's stress() has it.
    held = latest_positions(scored, wallet)
    weakest_market = min(stored, key=stored.__getitem__)
    symbol = held.filter((pl.col("market") == weakest_market) & (pl.col("collateral_amount") > 0))["symbol"][0]
    app.slider(key=f"whatif_price_{symbol}").set_value(-50).run()
    assert_clean(app)
    shocked = what_if(app)
    assert (shocked[weakest_market] or 0.0) < stored[weakest_market]
    engine = stress(held, pl.DataFrame({"symbol": [symbol], "multiplier": [0.5]}))
    for market, hf in zip(engine["market"], engine["health_factor"], strict=True):
        assert shocked[market] == pytest.approx(hf, rel=1e-9)
    assert table_with(app, "health_factor_after")["liquidatable_after"].tolist() == [
        hf < 1 for hf in table_with(app, "health_factor_after")["health_factor_after"]
    ]

    # Back to today's prices, then top up collateral (token units) and repay a whole debt.
    app.slider(key=f"whatif_price_{symbol}").set_value(0).run()
    topped_up = position_key(app, "whatif_add_on")
    app.text_input(key="whatif_add_tokens").input("0.5").run()
    assert_clean(app)
    assert (what_if(app)[topped_up] or 0.0) > stored[topped_up]
    repaid = position_key(app, "whatif_repay_on")
    app.text_input(key="whatif_add_tokens").input("0")
    app.text_input(key="whatif_repay_tokens").input("1e30").run()  # more than owed: the debt goes to zero
    assert_clean(app)
    debts = held.filter((pl.col("market") == repaid) & (pl.col("debt_amount") > 0)).height
    hf = what_if(app)[repaid]
    assert hf is None if debts == 1 else (hf or 0.0) > stored[repaid]

    app.text_input(key="whatif_repay_tokens").input("lots").run()
    assert not app.exception and not app.error
    assert any("is not an amount" in w.value for w in app.warning)


def test_a_link_from_the_at_risk_table_opens_the_wallet(scored: Path) -> None:
    link = table_with(open_page("positions"), "wallet page")["wallet page"].iloc[0]
    assert link.startswith("?page=wallet&wallet=0x")
    app = AppTest.from_file(APP, default_timeout=120)
    for key, value in (part.split("=") for part in link[1:].split("&")):
        app.query_params[key] = value
    app.run()
    assert_clean(app)
    assert app.radio(key="page").value == "wallet"
    assert any(link.rsplit("=", 1)[1] in m.value for m in app.markdown)


def test_wallet_page_lists_the_wallets_liquidations(scored: Path) -> None:
    """A wallet the chain liquidated shows each of its liquidations (mart_liquidations, straight from the file),
    newest first, whether or not it still holds positions."""
    wallet, count = rows(
        scored, "SELECT wallet, count(*) FROM mart_liquidations GROUP BY wallet ORDER BY count(*) DESC, wallet LIMIT 1"
    )[0]
    app = open_page("wallet", wallet=wallet)
    assert_clean(app)
    assert "Liquidations" in [s.value for s in app.subheader]
    shown = table_with(app, "debt_repaid_usd")
    expected = rows(
        scored,
        "SELECT block_number, debt_repaid_usd FROM mart_liquidations WHERE wallet = ? "
        "ORDER BY block_number DESC, log_index DESC",
        [wallet],
    )
    assert shown.shape[0] == count == len(expected)
    assert shown["block_number"].tolist() == [block for block, _ in expected]
    assert shown["debt_repaid_usd"].tolist() == pytest.approx([usd for _, usd in expected], rel=1e-12)


def test_wallet_page_refuses_a_bad_address_and_explains_an_unknown_one(scored: Path) -> None:
    app = open_page("wallet")
    app.text_input(key="wallet_address").input("0x1234").run()
    assert_clean(app)
    assert any("is not a wallet address" in w.value for w in app.warning)
    app.text_input(key="wallet_address").input("0x" + "ab" * 20).run()
    assert_clean(app)
    assert any("No positions of 0x" + "ab" * 20 in i.value for i in app.info)


def test_sql_console_runs_selects_and_refuses_writes(scored: Path) -> None:
    app = open_page("sql")
    assert_clean(app)
    # Every view with its description, the marts (what people read) first.
    listed = next(m.value for m in app.markdown if m.value.startswith("- `")).splitlines()
    assert sorted(listed) == sorted(f"- `{q.name}`: {q.description}" for q in list_queries())
    layers = [line.split("`")[1].split("_")[0] for line in listed]
    assert layers == sorted(layers, key=lambda layer: layer != "mart")

    app.text_area(key="console_sql").input("INSERT INTO runs (run_id, started_at, status) VALUES (1, now(), 'ok')")
    app.button(key="console_run").click().run()
    assert not app.exception
    assert len(app.error) == 1 and app.error[0].value.startswith("query refused")
    assert rows(scored, "SELECT count(*) FROM runs")[0][0] == 0

    app.text_area(key="console_sql").input("SELECT protocol, count(*) AS markets FROM mart_market_summary GROUP BY 1")
    app.button(key="console_run").click().run()
    assert_clean(app)
    result = table_with(app, "markets")
    expected = dict(rows(scored, "SELECT protocol, count(*) FROM scored_markets GROUP BY 1"))
    assert dict(zip(result["protocol"], result["markets"], strict=True)) == expected
    assert any(c.value.startswith(f"{len(expected)} rows in") for c in app.caption)

    app.selectbox(key="console_example").select("Markets").run()
    assert "mart_market_summary" in str(app.text_area(key="console_sql").value)


def publish(db: Path) -> None:
    with Store(db) as store:
        store.publish()


def test_runs_page_lists_runs_events_and_active_alerts(
    scored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = copy_of(scored, tmp_path)
    with duckdb.connect(str(db)) as con:
        con.execute(
            """INSERT INTO runs VALUES
               (1, '2024-01-01 00:00:00+00', '2024-01-01 00:00:42+00', 'ok', 5, 0, 772, 0, NULL,
                '{"line": "run 1 ok in 42.0 s; 5/5 markets indexed", "indexed": [], "failures": {}}'),
               (2, '2024-01-01 01:00:00+00', '2024-01-01 01:30:00+00', 'partial', 5, 1, 700, 3, 2, 'run 2 partial')"""
        )
        con.execute(
            """INSERT INTO alert_events VALUES
               (2, 'treasury health', '0xabc', 'webhook', 'breach', 1.05, 1.2, 31337, 231, true, NULL,
                '2024-01-01 01:01:00+00'),
               (2, 'bad debt', 'all markets', 'webhook', 'breach', 5000, 1000, 31337, 231, false, 'HTTP 500',
                '2024-01-01 01:01:01+00')"""
        )
        con.execute(
            "INSERT INTO alert_state VALUES ('treasury health', '0xabc', 'webhook', true, 1.05, 231, "
            "'2024-01-01 01:01:00+00'), ('bad debt', 'all markets', 'webhook', false, 0, 231, '2024-01-01 01:01:01+00')"
        )
    publish(db)
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    app = open_page("runs")
    assert_clean(app)
    assert not app.info
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {"Last run": "#2", "Status": "partial", "Markets failed": "1", "Alerts sent": "2"}
    runs = table_with(app, "summary")
    assert list(runs["run_id"]) == [2, 1] and list(runs["duration"]) == ["30 min", "42 s"]
    # A run's summary in words as `chainrisk run` writes its line, not the JSON details; no alert rules: 0 sent.
    assert list(runs["summary"]) == ["run 2 partial", "run 1 ok in 42.0 s; 5/5 markets indexed"]
    assert list(runs["alerts_sent"]) == [2, 0]
    assert list(table_with(app, "since_block")["subject"]) == ["0xabc"]
    assert len(table_with(app, "delivered")) == 2
    assert chart_data(app, "rule").num_rows == 2


def test_runs_page_shows_each_run_s_rpc_usage(scored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What each run's markets and look-through asked of the RPCs (requests and calls, summed from its JSON details),
    in the table and as a chart; a run that recorded none (older, or as text) shows nothing rather than 0."""
    db = copy_of(scored, tmp_path)
    details = [
        '{"line": "run 1 ok", "indexed": [], "chains": []}',
        '{"line": "run 2 ok", "indexed": [{"rpc_requests": 14, "rpc_calls": 120}, {"rpc_requests": 13, '
        '"rpc_calls": 80}], "chains": [{"rpc_requests": 10, "rpc_calls": 300}]}',
        '{"line": "run 3 partial", "indexed": [{"rpc_requests": 12, "rpc_calls": 100}], "chains": []}',
    ]
    with duckdb.connect(str(db)) as con:
        for run_id, summary in enumerate(details, start=1):
            con.execute(
                "INSERT INTO runs VALUES (?, '2024-01-01 00:00:00+00', '2024-01-01 00:00:42+00', 'ok', 2, 0, 772, 0, "
                "NULL, ?)",
                [run_id, summary],
            )
    publish(db)
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    app = open_page("runs")
    assert_clean(app)
    runs = table_with(app, "rpc_calls")
    assert list(runs["run_id"]) == [3, 2, 1]
    assert [None if v is None or v != v else int(v) for v in runs["rpc_requests"]] == [12, 37, None]
    assert [None if v is None or v != v else int(v) for v in runs["rpc_calls"]] == [100, 500, None]
    chart = chart_data(app, "rpc_calls").to_pydict()
    assert sorted(zip(chart["run_id"], chart["rpc_calls"], strict=True)) == [(2, 500), (3, 100)]


def test_runs_page_without_runs_says_so(scored: Path) -> None:
    app = open_page("runs")
    assert_clean(app)
    notes = " ".join(i.value for i in app.info)
    assert "No runs recorded yet" in notes and "No alert is active" in notes and "No alert events yet" in notes


def test_without_a_database_every_page_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINRISK_MANIFEST", str(tmp_path / "missing.json"))
    monkeypatch.setenv("CHAINRISK_DB", str(tmp_path / "missing.duckdb"))
    for slug in DATABASE_PAGES:
        app = open_page(slug)
        assert_clean(app)
        assert any("chainrisk score" in info.value for info in app.info), slug
    app = open_page("devnet")
    assert_clean(app)
    assert any("chainrisk devnet up" in info.value for info in app.info)


def test_a_database_without_the_views_says_to_score_again(
    scored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = copy_of(scored, tmp_path)
    with duckdb.connect(str(db)) as con:
        for query in reversed(list_queries()):
            con.execute(f"DROP VIEW IF EXISTS {query.name}")
    publish(db)
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    for slug in ("overview", "positions", "wallet"):
        app = open_page(slug)
        assert_clean(app)
        assert any("run `chainrisk score` again" in info.value for info in app.info), slug


def test_a_failure_inside_a_page_is_one_line(scored: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(db: Path) -> dict[str, Any]:
        raise RuntimeError("the disk caught fire\nline two of the message")

    monkeypatch.setattr(overview, "totals", broken)
    app = open_page("overview")
    assert not app.exception
    assert [e.value for e in app.error] == [
        "Something went wrong while drawing this page: RuntimeError: the disk caught fire"
    ]
    app.radio(key="page").set_value("positions").run()
    assert_clean(app)


def test_devnet_page_shows_the_manifest(scored: Path, devnet: dict[str, Any]) -> None:
    app = open_page("devnet")
    assert_clean(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Wallets"] == f"{len(devnet['wallets']):,}"
    assert metrics["Aave liquidations"] == str(devnet["history"]["aave_liquidations"])
    assert devnet["rpc_url"] in " ".join(c.value for c in app.caption)
    assert len(app.dataframe) == 4
    # The session devnet holds only the base pair, both real bytecode.
    assert list(table_with(app, "liquidations")["bytecode"]) == [REAL, REAL]
    assert set(table_with(app, "contract")["bytecode"]) == {REAL}


def latest_run(db: Path, kind: str) -> int:
    (run_id,) = rows(db, "SELECT max(run_id) FROM risk_runs WHERE kind = ?", [kind])[0]
    return int(run_id)


def metrics_of(app: AppTest) -> dict[str, Any]:
    return {m.label: m for m in app.metric}


def charts_with(app: AppTest, *columns: str) -> list[pa.Table]:
    """The data sets of the page's charts that have every one of `columns`."""
    found = []
    for chart in app.get("vega_lite_chart"):
        for dataset in chart.proto.datasets:
            table = pa.ipc.open_stream(dataset.data.data).read_all()
            if set(columns) <= set(table.column_names):
                found.append(table)
    return found


def test_risk_page_without_a_risk_run_says_which_command(
    scored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page("risk")  # the session database: the risk tables exist but hold no run
    assert_clean(app)
    assert [i.value for i in app.info] == [risk.no_run_hint(scored)]
    assert f"`chainrisk risk stress --db {scored}`" in app.info[0].value and not app.tabs

    older = copy_of(scored, tmp_path)  # a file from before the risk models: no risk tables at all
    with duckdb.connect(str(older)) as con:
        con.execute("DROP TABLE risk_runs")
    publish_file(older)  # as the older chainrisk published it: opening a Store would create the table again
    monkeypatch.setenv("CHAINRISK_DB", str(older))
    app = open_page("risk")
    assert_clean(app)
    assert [i.value for i in app.info] == [risk.no_run_hint(older)]


def test_risk_page_with_one_model_says_what_to_run_for_the_others(
    scored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = copy_of(scored, tmp_path)
    assert main(["risk", "cascade", "--db", str(db), "--shock", "WETH=-30%"]) == 0
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    app = open_page("risk")
    assert_clean(app)
    assert [i.value for i in app.info] == [risk.no_run_hint(db, kind) for kind in ("stress", "var", "optimise")]
    assert "Amplification" in metrics_of(app)


def test_risk_page_replays_equal_the_tables(risk_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINRISK_DB", str(risk_db))
    app = open_page("risk")
    assert_clean(app)
    assert not app.info, [i.value for i in app.info]
    assert [t.label for t in app.tabs] == ["Historical replays", "VaR / ES", "Optimisation", "Cascade"]
    captions = [c.value for c in app.caption]
    for kind in risk.KINDS:  # every section names the run it shows: the latest of its kind
        assert any(c.startswith(f"Run #{latest_run(risk_db, kind)} · written ") for c in captions), kind
    run_id = latest_run(risk_db, "stress")
    assert app.selectbox(key="risk_window").options == ["luna-2022", "ftx-2022"]  # earliest first

    for window in ("luna-2022", "ftx-2022"):
        app.selectbox(key="risk_window").set_value(window).run()
        assert_clean(app)
        steps = "FROM stress_replay_steps WHERE run_id = ? AND window_name = ? AND scope = 'total'"
        worst_bad_debt, peak_liquidatable = rows(
            risk_db, f"SELECT max(bad_debt_usd), max(liquidatable_debt_usd) {steps}", [run_id, window]
        )[0]
        worst_time, debt_then = rows(
            risk_db,
            f"SELECT time, liquidatable_debt_usd {steps} ORDER BY bad_debt_usd DESC, liquidatable_debt_usd DESC, step "
            "LIMIT 1",
            [run_id, window],
        )[0]
        hit, followed = rows(
            risk_db,
            "SELECT count(first_liquidatable_step), count(*) FROM stress_replay_wallets WHERE run_id = ? AND "
            "window_name = ?",
            [run_id, window],
        )[0]
        metrics = metrics_of(app)
        assert worst_bad_debt > 0 and hit > 0, "the devnet's book takes bad debt in both windows"
        assert metrics["Bad debt at worst (USD)"].help.startswith(f"{usd(worst_bad_debt)}:")
        assert metrics["Worst point (UTC)"].value == f"{worst_time.astimezone(UTC):%Y-%m-%d %H:%M}"
        assert metrics["Liquidatable debt then (USD)"].help.startswith(f"{usd(debt_then)}:")
        assert f"the most at any step: {usd(peak_liquidatable)}" in metrics["Liquidatable debt then (USD)"].help
        assert metrics["Liquidatable at some step"].value == f"{hit:,} of {followed:,}"

        (series,) = charts_with(app, "measure", "USD", "time")
        drawn = {(p["measure"], p["time"]): p["USD"] for p in series.to_pylist()}
        stored = rows(risk_db, f"SELECT time, bad_debt_usd, liquidatable_debt_usd {steps}", [run_id, window])
        assert len(drawn) == 2 * len(stored)
        for time, bad_debt, liquidatable in stored:
            at = time.astimezone(UTC).replace(tzinfo=None)
            assert drawn["bad debt", at] == bad_debt and drawn["liquidatable debt", at] == liquidatable
        (prices,) = charts_with(app, "change_pct", "series")
        multipliers = rows(
            risk_db,
            "SELECT multiplier FROM stress_replay_prices WHERE run_id = ? AND window_name = ?",
            [run_id, window],
        )
        assert sorted(prices.column("change_pct").to_pylist()) == pytest.approx(
            sorted((m - 1) * 100 for (m,) in multipliers), abs=1e-9
        )

        first = table_with(app, "first_liquidatable_time")
        expected = rows(
            risk_db,
            """SELECT wallet FROM stress_replay_wallets WHERE run_id = ? AND window_name = ?
               AND first_liquidatable_step IS NOT NULL
               ORDER BY first_liquidatable_step, min_health_factor, wallet, market LIMIT ?""",
            [run_id, window, risk.WALLETS_SHOWN],
        )
        assert list(first["wallet"]) == [w for (w,) in expected]
        assert list(first["wallet page"]) == [f"?page=wallet&wallet={w}" for w in first["wallet"]]
        assert (first["min_health_factor"] < 1).all() and (
            first["min_health_factor"] <= first["health_factor_start"]
        ).all()
        assert not any(name.startswith("0x") for name in first["market_name"]), "markets by name, not id"


def test_risk_page_var_equals_the_tables(risk_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINRISK_DB", str(risk_db))
    app = open_page("risk")
    assert_clean(app)
    run_id = latest_run(risk_db, "var")
    stored = rows(
        risk_db,
        """SELECT scope, protocol, market, metric, horizon_hours, confidence, var_usd, es_usd FROM var_results
           WHERE run_id = ?""",
        [run_id],
    )
    tables = [d.value for d in app.dataframe if "var_usd" in d.value.columns]
    shown = pd_rows(tables, ["scope", "protocol", "market", "metric", "horizon_hours", "confidence_pct"])
    assert len(shown) == len(stored) == sum(len(t) for t in tables)
    for scope, protocol, market, metric, horizon, confidence, var, es in stored:
        row = shown[scope, protocol, market, metric, horizon, round(confidence * 100, 6)]
        assert (row["var_usd"], row["es_usd"]) == (var, es)
    var_99, es_99 = rows(
        risk_db,
        """SELECT var_usd, es_usd FROM var_results WHERE run_id = ? AND scope = 'total'
           AND metric = 'liquidatable_debt_usd' AND horizon_hours = 24 AND confidence = 0.99""",
        [run_id],
    )[0]
    card = metrics_of(app)["Liquidatable debt: VaR / ES, 99 %, 24 h (USD)"]
    assert card.help.startswith(f"VaR {usd(var_99)}; ES {usd(es_99)};")
    bars = [b for chart in charts_with(app, "measure", "statistic", "case") for b in chart.to_pylist()]
    assert {(b["measure"], b["case"], b["statistic"]): b["USD"] for b in bars}[
        "liquidatable debt", "24 h · 99.0%", "VaR"
    ] == var_99

    calibration = table_with(app, "annualised_pct")
    volatility = dict(rows(risk_db, "SELECT series, volatility FROM var_calibration WHERE run_id = ?", [run_id]))
    for series, annualised in zip(calibration["series"], calibration["annualised_pct"], strict=True):
        assert annualised == pytest.approx(volatility[series] * (24 * 365 / 24) ** 0.5 * 100, rel=1e-12)

    observations, exceedances, expected_rate, p_value = rows(
        risk_db,
        "SELECT observations, exceedances, expected_rate, p_value FROM var_backtest_summary WHERE run_id = ?",
        [run_id],
    )[0]
    metrics = metrics_of(app)
    assert metrics["Periods tested"].value == f"{observations:,}"
    assert metrics["Exceedances (expected)"].value == f"{exceedances:,} ({expected_rate * observations:.1f})"
    assert metrics["Kupiec p-value"].value == f"{p_value:.3f}"
    verdicts = [v.value for v in (*app.success, *app.warning)]
    assert len(verdicts) == 1 and (verdicts[0].startswith("The model holds up") == (p_value >= 0.05))
    (hits,) = charts_with(app, "exceedance", "realised_usd")
    assert hits.num_rows == exceedances > 0

    suggestions = table_with(app, "suggested_lt_pct")
    stored_suggestions = rows(
        risk_db,
        "SELECT symbol, market, current_lt_bps, suggested_lt_bps, ltv_change_bps FROM parameter_suggestions "
        "WHERE run_id = ?",
        [run_id],
    )
    assert len(suggestions) == len(stored_suggestions) > 0
    shown_suggestions = {
        (s, m): (lt, suggested, change)
        for s, m, lt, suggested, change in zip(
            suggestions["symbol"],
            suggestions["market"],
            suggestions["current_lt_pct"],
            suggestions["suggested_lt_pct"],
            suggestions["ltv_change_bps"],
            strict=True,
        )
    }
    for symbol, market, lt_bps, suggested_bps, ltv_change in stored_suggestions:
        assert shown_suggestions[symbol, market] == (lt_bps / 100, suggested_bps / 100, ltv_change)


def pd_rows(tables: list[Any], key: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Rows of pandas frames by `key` (unique)."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for table in tables:
        for record in table.to_dict("records"):
            out[tuple(round(v, 6) if isinstance(v, float) else v for v in (record[k] for k in key))] = record
    return out


def test_risk_page_plans_and_cascade_equal_the_tables(risk_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINRISK_DB", str(risk_db))
    app = open_page("risk")
    assert_clean(app)
    run_id = latest_run(risk_db, "optimise")
    plans = table_with(app, "health_before")
    (count, cost) = rows(
        risk_db,
        "SELECT count(*), sum(cost_usd) FILTER (WHERE feasible AND actions > 0) FROM optimise_plans WHERE run_id = ?",
        [run_id],
    )[0]
    assert len(plans) == count > 0
    assert metrics_of(app)["Total cost (USD)"].help.startswith(usd(cost))
    actions = table_with(app, "amount_tokens")
    stored = rows(
        risk_db,
        "SELECT wallet, market, seq + 1, kind, symbol, amount_tokens, amount_usd FROM optimise_actions "
        "WHERE run_id = ? ORDER BY wallet, protocol, market, seq",
        [run_id],
    )
    assert "amount" not in actions.columns and "received" not in actions.columns, "no raw base units"
    shown = list(
        zip(
            *(actions[c] for c in ("wallet", "market", "step", "kind", "symbol", "amount_tokens", "amount_usd")),
            strict=True,
        )
    )
    assert shown == stored
    steps = dict(zip(zip(plans["wallet"], plans["market"], strict=True), plans["steps"], strict=True))
    for wallet, market, _, kind, symbol, tokens, amount_usd in stored:
        assert f"{kind} {risk.tokens_text(tokens)} {symbol} ({usd(amount_usd)})" in steps[wallet, market]

    (by_symbol,) = charts_with(app, "collateral_change_usd", "shift_bps")
    sums = rows(
        risk_db,
        "SELECT symbol, shift_bps, sum(liquidatable_collateral_usd_change) FROM threshold_sensitivity "
        "WHERE run_id = ? GROUP BY ALL",
        [run_id],
    )
    drawn = {(p["symbol"], p["shift_bps"]): p["collateral_change_usd"] for p in by_symbol.to_pylist()}
    assert drawn == {(s, shift): pytest.approx(change, abs=1e-6) for s, shift, change in sums}

    cascade = latest_run(risk_db, "cascade")
    assert cascade == max(r for (r,) in rows(risk_db, "SELECT run_id FROM risk_runs"))
    cumulative, amplification, rounds = rows(
        risk_db,
        """SELECT arg_max(cumulative_liquidated_debt_usd, round), any_value(amplification), count(*)
           FROM cascade_rounds WHERE run_id = ?""",
        [cascade],
    )[0]
    metrics = metrics_of(app)
    assert metrics["Liquidated debt (USD)"].help.startswith(f"{usd(cumulative)} over every round")
    assert metrics["Amplification"].value == f"{amplification:.3f}x"
    assert metrics["Rounds"].value == str(rounds)
    (drawn_rounds,) = charts_with(app, "cumulative_liquidated_debt_usd", "round")
    assert drawn_rounds.column("cumulative_liquidated_debt_usd").to_pylist()[-1] == cumulative
    prices = table_with(app, "impact_pct")
    final = dict(
        rows(
            risk_db,
            """SELECT symbol, (multiplier - 1) * 100 FROM cascade_prices WHERE run_id = ?
               AND round = (SELECT max(round) FROM cascade_prices WHERE run_id = ?)""",
            [cascade, cascade],
        )
    )
    assert dict(zip(prices["symbol"], prices["price_change_pct"], strict=True)) == final
    assert dict(zip(prices["symbol"], prices["shock_pct"], strict=True))["WETH"] == pytest.approx(-30)


def test_chains_page_equals_the_tables(scored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("chains")
    assert_clean(app)
    assert any("No contagion run yet" in i.value for i in app.info)
    chained, double = rows(
        scored, "SELECT sum(chained_collateral_usd), sum(double_counted_usd) FROM base_asset_exposure"
    )[0]
    metrics = metrics_of(app)
    assert metrics["Collateral through chains"].value == usd_short(chained)
    assert metrics["Counted twice by a plain sum"].value == usd_short(double)
    (bars,) = charts_with(app, "base_symbol", "how", "usd")
    stored = rows(
        scored,
        "SELECT base_symbol, direct_collateral_usd, chained_collateral_usd, chain_id, base_asset "
        "FROM base_asset_exposure",
    )
    labels = asset_labels(
        pl.DataFrame([(r[0], r[3], r[4]) for r in stored], ["base_symbol", "chain_id", "base_asset"], orient="row")
    )
    drawn = {(b["base_symbol"], b["how"]): b["usd"] for b in bars.to_pylist()}
    for symbol, (_, direct, through, *_) in zip(labels, stored, strict=True):
        assert drawn[(symbol, "held directly")] == pytest.approx(direct or 0.0)
        assert drawn[(symbol, "through a chain")] == pytest.approx(through or 0.0)
    graph = table_with(app, "exchange rate")
    assert sorted(graph["asset"]) == sorted(r[0] for r in rows(scored, "SELECT asset FROM asset_links"))

    db = copy_of(scored, tmp_path)
    assert main(["risk", "contagion", "--db", str(db), "--shock", "WETH=-35%", "--shock", "stETH=-35%"]) == 0
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    app = open_page("chains")
    assert_clean(app)
    channels = table_with(app, "how it was hit")
    stored_channels = dict(rows(db, "SELECT channel, count(*) FROM contagion_wallets GROUP BY channel"))
    assert dict(zip(channels["channel"], channels["wallets"], strict=True)) == stored_channels
    assert metrics_of(app)["Wallet-markets liquidatable"].value == f"{sum(stored_channels.values()):,}"


def test_base_assets_of_one_symbol_are_told_apart() -> None:
    """The chains page's base assets: two tokens named WETH (the chain's and a stand-in's own) read apart by their
    addresses, a token without a symbol by its address, and one token on two chains by its chain too."""
    weth, stand_in, usdc = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20
    one_chain = pl.DataFrame(
        {"chain_id": [1, 1, 1, 1], "base_asset": [weth, stand_in, usdc, "0x" + "d4" * 20]}
    ).with_columns(pl.Series("base_symbol", ["WETH", "WETH", "USDC", None], dtype=pl.String))
    assert asset_labels(one_chain).to_list() == ["WETH (0xa1a1…a1a1)", "WETH (0xb2b2…b2b2)", "USDC", "0x" + "d4" * 20]
    two_chains = pl.DataFrame(
        {"chain_id": [1, 10, 777_777], "base_asset": [usdc] * 3, "base_symbol": ["USDC", "USDC", "USDC"]}
    )
    assert asset_labels(two_chains).to_list() == [
        "USDC (0xc3c3…c3c3, Ethereum)",
        "USDC (0xc3c3…c3c3, OP Mainnet)",
        "USDC (0xc3c3…c3c3, chain 777777)",
    ]


def test_tables_name_chains() -> None:
    """Every table shows a chain by its name, one chainrisk does not name by its id; the rows stay as they were."""
    frame = pl.DataFrame({"chain_id": [8453, 31337, 777_777, 1], "x": [1, 2, 3, 4]})
    shown = chain_names(frame)
    assert shown["chain_id"].to_list() == ["Base", "devnet", "chain 777777", "Ethereum"]
    assert shown["x"].to_list() == [1, 2, 3, 4] and chain_names(frame.drop("chain_id")).equals(frame.drop("chain_id"))


def test_risk_page_advice_distance_and_plain_words_equal_the_tables(
    risk_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAINRISK_DB", str(risk_db))
    app = open_page("risk")
    assert_clean(app)
    run_id = latest_run(risk_db, "var")
    advice = table_with(app, "reasons")
    stored = dict(rows(risk_db, "SELECT symbol || market, reasons FROM parameter_advice WHERE run_id = ?", [run_id]))
    assert dict(zip(advice["symbol"] + advice["market"], advice["reasons"], strict=True)) == stored
    bad, repaid = rows(
        risk_db,
        """SELECT sum(bad_debt_usd) FILTER (WHERE variant = 'proposed'), sum(liquidated_debt_usd)
           FILTER (WHERE variant = 'current') FROM parameter_backtest WHERE run_id = ? AND market = 'all'""",
        [run_id],
    )[0]
    metrics = metrics_of(app)
    assert metrics["Backtest bad debt, now → proposed (USD)"].help.split(" → ")[1].startswith(usd(bad))
    assert metrics["Backtest liquidated debt, now → proposed (USD)"].help.startswith(usd(repaid))
    # The VaR headline in words: how many scenarios lose anything, from var_odds.
    (share,) = rows(
        risk_db,
        "SELECT loss_probability FROM var_odds WHERE run_id = ? AND scope = 'total' AND metric = 'bad_debt_usd'",
        [run_id],
    )[0]
    words = " ".join(m.value for m in app.markdown)
    assert f"only {share:.2%} of scenarios produce any" in words if share else "**Bad debt: none**" in words
    # The distance to the first liquidation, nearest first, said plainly above its table.
    optimise = latest_run(risk_db, "optimise")
    symbol, drop = rows(
        risk_db,
        "SELECT symbol, first_drop FROM liquidation_distance WHERE run_id = ? ORDER BY first_drop NULLS LAST LIMIT 1",
        [optimise],
    )[0]
    assert f"The nearest liquidation: **{symbol}**" in words and f"falls {drop * 100:.1f} %" in words
    distance = table_with(app, "first_drop_pct")
    assert distance["symbol"].iloc[0] == symbol


def test_a_chart_of_many_series_gives_each_its_own_colour() -> None:
    """Streamlit's palette has ten colours, so an eleventh series (a replay's eleventh price path) was drawn in the
    first one's: past ten series the charts take twenty, and each series of the replay's price chart its own."""
    from chainrisk.dashboard.risk.replay import _price_chart

    symbols = [f"S{i}" for i in range(14)]
    prices = pl.DataFrame(
        {
            "time": [datetime(2026, 1, 1, tzinfo=UTC)] * len(symbols),
            "symbol": symbols,
            "series": ["feed"] * len(symbols),
            "change_pct": [0.0] * len(symbols),
        }
    )
    colour = _price_chart(prices).to_dict()["encoding"]["color"]
    assert colour["scale"] == {"scheme": "tableau20"}
    few, many = series_colour("x:N", 10).to_dict(), series_colour("x:N", 11).to_dict()
    assert isinstance(few, dict) and isinstance(many, dict)
    assert few["scale"] == {"scheme": "tableau10"}
    assert many["scale"] == {"scheme": "tableau20"}
