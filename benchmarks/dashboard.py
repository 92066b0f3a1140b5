"""Dashboard first view on a 1M-position database: the Overview page, cold, against pulling the rows into Python.

Builds (once, cached under benchmarks/.cache) a DuckDB file of `--positions` synthetic Aave-style positions over
four markets (benchmarks/health.py's generator: two collateral and two debt positions per wallet), scores it with
`chainrisk score` (which installs the views and publishes the read-only copy the dashboard opens), then measures:

- the whole page: `AppTest.from_file("app.py").run()` of the Overview in a fresh process each time (no warm
  Streamlit cache, no warm DuckDB buffer), i.e. what the server needs to produce the first view, charts included;
- with `--browser`, the wall time from a headless Chromium opening `streamlit run`'s URL to the Overview's
  metrics and curve being on screen: the first session of a cold server, then a new session on the warm server;
- the data behind the page, ours against the naive way, each in fresh processes, timed after imports: the
  Overview's own queries (aggregates computed in DuckDB over the views) against reading every latest wallet and
  position row into polars and aggregating there (what the dashboard did before it aggregated in SQL).

Figures go to benchmarks/results/dashboard.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from health import synthetic_positions  # noqa: E402

from chainrisk.jobs.score import score  # noqa: E402
from chainrisk.protocols.frames import exact  # noqa: E402
from chainrisk.store.db import Store  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "dashboard.json"
CACHE = ROOT / "benchmarks" / ".cache"
REFERENCE_POSITIONS = 20_000
MARKETS = [f"0x{i:040x}" for i in range(0xA1, 0xA5)]

AT_APP = """
import sys, time
from streamlit.testing.v1 import AppTest
started = time.perf_counter()
app = AppTest.from_file(sys.argv[1], default_timeout=600).run()
seconds = time.perf_counter() - started
problems = [e.value for e in app.exception] + [e.value for e in app.error]
metrics = {m.label: m.value for m in app.metric}
print(__import__("json").dumps({"seconds": seconds, "problems": problems, "metrics": metrics}))
"""

OURS_DATA = """
import sys, time, json, os
from pathlib import Path
os.environ["CHAINRISK_DB"] = sys.argv[1]
from chainrisk.dashboard import overview
db = Path(sys.argv[1])
started = time.perf_counter()
overview.totals(db), overview.health_buckets(db), overview.health_histogram(db)
axes = overview.curve_axes(db)
overview.total_curve(db, axes[0]), overview.markets(db), overview.freshness(db)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

NAIVE = """
import sys, time, json
import duckdb, polars as pl
from chainrisk.store.published import reader_path
started = time.perf_counter()
path = str(reader_path(__import__("pathlib").Path(sys.argv[1])))
with duckdb.connect(path, read_only=True) as con:
    wallets = pl.from_arrow(con.sql(
        "SELECT w.* FROM wallet_risk w JOIN scored_markets USING (protocol, chain_id, market, block_number)"
    ).to_arrow_table())
    positions = pl.from_arrow(con.sql(
        "SELECT r.* FROM position_risk r JOIN scored_markets USING (protocol, chain_id, market, block_number)"
    ).to_arrow_table())
borrowers = wallets.filter(pl.col("health_factor").is_not_null())
edges = [0.0, 1.0, 1.1, 1.25, 1.5, 2.0, float("inf")]
buckets = [borrowers.filter((pl.col("health_factor") >= lo) & (pl.col("health_factor") < hi)).height
           for lo, hi in zip(edges, edges[1:])]
totals = wallets.select(pl.col("collateral_usd").sum(), pl.col("debt_usd").sum(), pl.col("liquidatable").sum())
per_market = wallets.group_by("protocol", "market").agg(pl.col("debt_usd").sum(), pl.len())
at_risk = positions.join(wallets.select("protocol", "market", "wallet", "health_factor"),
                         on=["protocol", "market", "wallet"]).sort("health_factor").head(200)
print(json.dumps({"seconds": time.perf_counter() - started, "rows": wallets.height + positions.height}))
"""


def _merged(frame: pl.DataFrame) -> pl.DataFrame:
    """The generator's rows in the positions table's shape, spread over MARKETS, one row per (wallet, asset)."""
    wallet_index = frame["wallet"].cast(pl.Int64)
    frame = frame.with_columns(
        market=pl.Series(np.array(MARKETS))[wallet_index % len(MARKETS)],
        wallet=pl.format("0x{}", wallet_index.cast(pl.Utf8).str.zfill(40)),
    ).with_columns(
        source=pl.col("market"),
        supplied_amount=pl.col("collateral_amount"),
        used_as_collateral=pl.col("collateral_amount") > 0,
        is_borrowing=pl.col("debt_amount") > 0,
        emode_category=pl.lit(0),
        price_scale=pl.lit(10, dtype=pl.Int128).pow(pl.col("decimals")),
        base_currency_usd=pl.lit(1e-8),
        collateral_base=pl.col("collateral_amount")
        * pl.col("price")
        // pl.lit(10, dtype=pl.Int128).pow(pl.col("decimals")),
        debt_base=pl.col("debt_amount") * pl.col("price") // pl.lit(10, dtype=pl.Int128).pow(pl.col("decimals")),
        liquidation_threshold_wad=pl.col("liquidation_threshold_bps").cast(pl.Int128) * 10**14,
        health_rule=pl.lit("average-threshold"),
        close_factor=pl.lit(0.5),
        full_close_below_health=pl.lit(0.95),
        collateral_usd=pl.col("collateral_amount").cast(pl.Float64)
        / pl.lit(10.0).pow(pl.col("decimals"))
        * pl.col("price_usd"),
        debt_usd=pl.col("debt_amount").cast(pl.Float64) / pl.lit(10.0).pow(pl.col("decimals")) * pl.col("price_usd"),
    )
    # One row per (wallet, asset): the generator may draw the same asset twice for a wallet; merge those.
    keys = ["protocol", "chain_id", "market", "block_number", "wallet", "asset"]
    summed = ["supplied_amount", "collateral_amount", "debt_amount", "collateral_base", "debt_base"]
    frame = frame.group_by(keys).agg(
        *(pl.col(c).sum() for c in summed),
        *(pl.col(c).sum() for c in ("collateral_usd", "debt_usd")),
        pl.exclude(*keys, *summed, "collateral_usd", "debt_usd").first(),
    )
    frame = frame.with_columns(
        supplied_usd=pl.col("collateral_usd"),
        used_as_collateral=pl.col("collateral_amount") > 0,
        is_borrowing=pl.col("debt_amount") > 0,
        price=pl.col("price").cast(pl.Int128),
    )
    return frame


def _contract_health(frame: pl.DataFrame) -> pl.DataFrame:
    """The adapter's `wallet_health` rows of the synthetic positions: what Pool.getUserAccountData returns, by Aave
    V3's GenericLogic in integers (average threshold floored to bps, percentMul half-up, wadDiv half-up). The score
    checks the engine against these and leaves out any borrower without one (an oracle that reverts)."""
    keys = ["protocol", "chain_id", "market", "source", "wallet", "block_number", "block_timestamp"]
    collateral, debt = pl.col("total_collateral_base"), pl.col("total_debt_base")
    wad = pl.lit(10**18, dtype=pl.Int128)
    summed = frame.group_by(keys).agg(
        pl.col("collateral_base").sum().alias("total_collateral_base"),
        pl.col("debt_base").sum().alias("total_debt_base"),
        (pl.col("collateral_base") * pl.col("liquidation_threshold_bps").cast(pl.Int128)).sum().alias("_lt"),
        (pl.col("collateral_base") * pl.col("ltv_bps").cast(pl.Int128)).sum().alias("_ltv"),
    )
    averaged = summed.with_columns(
        pl.when(collateral > 0).then(pl.col("_lt") // collateral).otherwise(0).alias("liquidation_threshold_bps"),
        pl.when(collateral > 0).then(pl.col("_ltv") // collateral).otherwise(0).alias("ltv_bps"),
    )
    adjusted = (collateral * pl.col("liquidation_threshold_bps") + 5_000) // 10_000
    capacity = (collateral * pl.col("ltv_bps") + 5_000) // 10_000
    health = pl.when(debt > 0).then((adjusted * wad + debt // 2) // debt)
    return averaged.with_columns(
        health.alias("health_factor_wad"),
        (health.cast(pl.Float64) / 1e18).alias("health_factor"),
        pl.when(capacity > debt).then(capacity - debt).otherwise(0).alias("available_borrows_base"),
        (collateral.cast(pl.Float64) * 1e-8).alias("collateral_usd"),
        (debt.cast(pl.Float64) * 1e-8).alias("debt_usd"),
        pl.lit(0).alias("emode_category"),
    ).drop("_lt", "_ltv")


def build_database(path: Path, positions: int, seed: int) -> dict[str, Any]:
    """Synthetic positions in the shape the Aave adapter writes, over four markets, then `chainrisk score`."""
    started = time.perf_counter()
    # A wallet drawing the same asset twice gets one merged row; size the population so ~`positions` remain.
    per_wallet = _merged(synthetic_positions(10_000, seed)).height / 10_000
    frame = _merged(synthetic_positions(round(positions / per_wallet), seed))
    if path.exists():
        path.unlink()
    shutil.rmtree(path.with_name(path.name + ".published"), ignore_errors=True)
    with Store(path) as store:
        for market in MARKETS:
            store.con.execute(
                "INSERT INTO sync_state VALUES ('aave-v3', 1, ?, 1, 1, '0x', 1, '0x', 1)", [market]
            ).fetchall()
        store.con.register("incoming", exact(frame))
        store.con.execute("INSERT INTO positions BY NAME SELECT * FROM incoming").fetchall()
        store.con.unregister("incoming")
        store.con.register("incoming", exact(_contract_health(frame)))
        store.con.execute("INSERT INTO wallet_health BY NAME SELECT * FROM incoming").fetchall()
        store.con.unregister("incoming")
    built = time.perf_counter() - started
    report = score(path)
    return {
        "positions": frame.height,
        "wallets": report.wallets,
        "markets": report.markets,
        "build_seconds": round(built, 2),
        "score_seconds": report.seconds,
        "file_mib": round(path.stat().st_size / 2**20, 1),
    }


def _child(code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def browser_first_view(db: Path) -> list[float]:
    """Seconds from opening the Overview in headless Chromium to its metrics and curve on screen: the first
    session of a freshly started server, then a second session on the same (warm) server."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return []
    from playwright.sync_api import sync_playwright

    from chainrisk.devnet.node import free_port

    port = free_port()
    env = {**os.environ, "CHAINRISK_DB": str(db), "CHAINRISK_MANIFEST": str(CACHE / "no-devnet.json")}
    args = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true"]
    args += ["--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    server = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).text == "ok":
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        seconds = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            for _ in range(2):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                started = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/?page=overview")
                page.locator('[data-testid="stMetric"]').first.wait_for(timeout=120_000)
                page.locator('[data-testid="stVegaLiteChart"]').nth(2).wait_for(timeout=120_000)
                seconds.append(round(time.perf_counter() - started, 3))
                context.close()
            browser.close()
        return seconds
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--positions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="cold first views of each kind")
    parser.add_argument("--browser", action="store_true", help="also time a real headless Chromium")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached database")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    db = CACHE / f"dashboard-{args.positions}-{args.seed}.duckdb"
    meta = db.with_suffix(".json")
    if args.rebuild or not meta.is_file() or not db.is_file():
        print(f"building {args.positions:,} positions ...", flush=True)
        meta.write_text(json.dumps(build_database(db, args.positions, args.seed)))
    database = json.loads(meta.read_text())
    print(f"database: {database}", flush=True)

    env = {"CHAINRISK_DB": str(db), "CHAINRISK_MANIFEST": str(CACHE / "no-devnet.json")}
    page, ours, naive = [], [], []
    for _ in range(args.repeat):  # interleaved, so all see the same machine state
        view = _child(AT_APP, str(ROOT / "app.py"), env=env)
        if view["problems"]:
            raise SystemExit(f"the Overview page reported problems: {view['problems']}")
        page.append(round(view["seconds"], 3))
        ours.append(round(_child(OURS_DATA, str(db))["seconds"], 3))
        naive.append(round(_child(NAIVE, str(db))["seconds"], 3))
    browser = browser_first_view(db) if args.browser else []
    # The same browser timing on a small database: what the page costs regardless of size (Streamlit's frontend,
    # the websocket session, Vega drawing the charts in Chromium).
    reference: list[float] = []
    if args.browser:
        small = CACHE / f"dashboard-reference-{REFERENCE_POSITIONS}-{args.seed}.duckdb"
        if not small.is_file():
            build_database(small, REFERENCE_POSITIONS, args.seed)
        reference = browser_first_view(small)
    result = {
        "command": "python benchmarks/dashboard.py " + " ".join(sys.argv[1:]),
        "database": database,
        "overview_page_seconds_best": min(page),
        "overview_page_seconds_all": page,
        "overview_metrics": view["metrics"],
        "browser_first_view_seconds_cold_server": browser[0] if browser else None,
        "browser_first_view_seconds_warm_server": browser[1] if browser else None,
        "browser_reference_positions": REFERENCE_POSITIONS,
        "browser_reference_seconds_cold_server": reference[0] if reference else None,
        "browser_reference_seconds_warm_server": reference[1] if reference else None,
        "overview_data_seconds_best": min(ours),
        "overview_data_seconds_all": ours,
        "naive_pull_into_python_seconds_best": min(naive),
        "naive_pull_into_python_seconds_all": naive,
        "ratio_naive_over_ours_data_median": round(statistics.median(naive) / statistics.median(ours), 2),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
