"""The dashboard under `streamlit run`: every page opened by its URL in headless Chromium, a screenshot of each kept."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chainrisk.config import devnet_config
from chainrisk.credit.scorecard import Scorecard
from chainrisk.dashboard.pages import PAGES
from chainrisk.devnet.node import free_port
from chainrisk.jobs.credit import DEFAULT_MODEL, score_wallets
from chainrisk.jobs.credit_history import backfill
from tests.databases import copy_of

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
#: Text each page shows once its data is drawn (a heading, or a button under the data).
KEY_TEXT = {
    "overview": "Collateral at risk vs price drop",
    "markets": "Every market",
    "positions": "Download these rows as CSV",
    "liquidations": "Latest liquidations",
    "wallet": "What if",
    "risk": "Wallets first liquidated",
    "chains": "Collateral by base asset, held directly or through a wrapper",
    "credit": "Scores by band",
    "sql": "Views",
    "runs": "Last runs",
    "devnet": "Contracts (real bytecode or stand-in)",
}

#: Tables a risk steward reads at a glance: every column they show fits a 1400 px screen, no sideways scrolling.
#: Page -> the table's container key -> its column headers, in order.
KEY_TABLES = {
    "overview": {
        "overview_markets": [
            "market",
            "debt (USD)",
            "collateral (USD)",
            "bad debt (USD)",
            "liquidatable",
            "lowest HF",
            "borrowers",
        ],
        "overview_borrowers": [
            "wallet",
            "worst HF",
            "where",
            "collateral (USD)",
            "debt (USD)",
            "bad debt (USD)",
            "liquidatable in",
        ],
        "overview_freshness": [
            "indexed",
            "snapshot age",
            "snapshot time (UTC)",
            "snapshot block",
            "scored ago",
            "logs to block",
        ],
    },
    "markets": {
        "markets_morpho": ["market", "utilization (%)", "APR now (%)", "borrowed (USD)", "supplied (USD)"],
        "markets_pools": [
            "market",
            "pool",
            "utilization (%)",
            "supply cap used (%)",
            "debt cap used (%)",
            "borrowed (USD)",
        ],
        "markets_aave": [
            "market",
            "reserve",
            "supplied (USD)",
            "borrowed (USD)",
            "utilization (%)",
            "supply cap used (%)",
            "borrow cap used (%)",
        ],
    },
    "liquidations": {
        "liquidations_markets": [
            "market",
            "liquidations",
            "debt repaid (USD)",
            "collateral seized (USD)",
            "bad debt (USD)",
            "gain (USD)",
            "protocol fees (USD)",
        ],
        "liquidations_liquidators": [
            "liquidator",
            "protocol",
            "liquidations",
            "debt repaid (USD)",
            "share of debt",
            "gain (USD)",
        ],
        "liquidations_latest": [
            "time (UTC)",
            "market",
            "wallet",
            "debt",
            "repaid (USD)",
            "collateral",
            "seized (USD)",
            "gain (USD)",
        ],
    },
    "wallet": {
        "wallet_health": [
            "market",
            "health factor",
            "liquidatable",
            "collateral (USD)",
            "debt (USD)",
            "can still borrow (USD)",
            "drop to HF 1 (%)",
            "bad debt (USD)",
        ],
        "wallet_positions": [
            "market",
            "asset",
            "collateral (tokens)",
            "debt (tokens)",
            "price (USD)",
            "collateral (USD)",
            "debt (USD)",
        ],
        "wallet_what_if": [
            "market",
            "HF now",
            "HF what-if",
            "liquidatable now",
            "liquidatable what-if",
            "collateral what-if (USD)",
            "debt what-if (USD)",
        ],
    },
    "positions": {
        "positions_table": [
            "wallet",
            "HF",
            "market",
            "asset",
            "liquidated if price",
            "move to it (%)",
            "collateral (USD)",
            "debt (USD)",
        ]
    },
}


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("CHAINRISK_SCREENSHOTS", ROOT / ".chainrisk" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture()
def dashboard(devnet: dict[str, Any], risk_db: Path, tmp_path: Path) -> Iterator[str]:
    """`streamlit run` on a copy of the session database with every risk model and credit scores run on it (the Risk
    models and Credit scores pages then have something to draw; the others read the same data as the session
    file)."""
    port = free_port()
    db = copy_of(risk_db, tmp_path)
    # Credit scores by the bundled model on a sampled history, so the Credit scores page has them too.
    backfill(devnet_config(devnet, db), devnet["rpc_url"], every_s=86_400)
    score_wallets(db, Scorecard.load(DEFAULT_MODEL))
    env = {
        **os.environ,
        "CHAINRISK_MANIFEST": str(Path(devnet["state_dir"]) / "manifest.json"),
        "CHAINRISK_DB": str(db),
    }
    args = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true"]
    args += ["--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    log = (tmp_path / "streamlit.log").open("wb")
    server = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    yield url
    server.terminate()
    server.wait(timeout=10)
    log.close()


def settle(page: Any) -> None:
    """Waits until the page's script has finished (Streamlit marks its app `data-test-script-state="notRunning"`),
    every chart in view has drawn and every table in view has its grid (those in a closed expander or another tab
    draw when opened), then lets the last frames paint: a fixed wait per page (two and then one second) instead cost
    ~30 s of the test."""
    page.locator("[data-testid=stApp][data-test-script-state=notRunning]").wait_for(timeout=60_000)
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('[data-testid=stVegaLiteChart]'))
                .every(chart => !chart.checkVisibility() || chart.querySelector('canvas, svg'))
            && Array.from(document.querySelectorAll('[data-testid=stDataFrame]'))
                .every(table => !table.checkVisibility() || table.querySelector('.dvn-scroller'))""",
        timeout=60_000,
    )
    page.wait_for_timeout(300)


def full_page_screenshot(page: Any, path: Path) -> None:
    """Streamlit scrolls inside its main block, so the viewport grows to the content before the shot."""
    height = page.evaluate(
        "Math.max(...Array.from(document.querySelectorAll("
        "'[data-testid=stMain], [data-testid=stMainBlockContainer]')).map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": 1400, "height": max(int(height) + 150, 1000)})
    settle(page)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def table_fit(page: Any, key: str) -> dict[str, Any]:
    """The headers of the table in the container `key` (the grid's accessible table names each drawn column) and
    whether it scrolls sideways: its scroller's content width against its visible width, its right edge against
    the window's."""
    table = f".st-key-{key} [data-testid=stDataFrame]"
    page.locator(f"{table} .dvn-scroller").first.wait_for(timeout=60_000)
    # The accessible table (drawn cells have no DOM of their own) fills in once the grid has drawn.
    page.locator(f"{table} th[role=columnheader]").first.wait_for(state="attached", timeout=60_000)
    fit: dict[str, Any] = page.evaluate(
        """key => {
            const table = document.querySelector(`.st-key-${key} [data-testid=stDataFrame]`);
            const scroller = table.querySelector('.dvn-scroller');
            return {
                headers: Array.from(table.querySelectorAll('th[role=columnheader]')).map(th => th.textContent),
                content: scroller.scrollWidth, visible: scroller.clientWidth,
                right: table.getBoundingClientRect().right, window: window.innerWidth,
            };
        }""",
        key,
    )
    return fit


def test_every_page_in_headless_chromium(dashboard: str, devnet: dict[str, Any]) -> None:
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI; `make test` installs it with apt")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    assert set(KEY_TEXT) == {p.slug for p in PAGES}, "a new page needs its key text here"
    shots = screenshot_dir()
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking"]
    flags += ["--disable-component-update", "--disable-sync", "--no-first-run"]
    bodies: dict[str, str] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for slug, text in KEY_TEXT.items():
            page.goto(f"{dashboard}/?page={slug}")
            page.get_by_text(text, exact=True).first.wait_for(timeout=60_000)
            if slug == "sql":
                page.get_by_role("button", name="Run").click()
                page.get_by_text("rows in").first.wait_for(timeout=30_000)
            settle(page)
            for key, headers in KEY_TABLES.get(slug, {}).items():
                fit = table_fit(page, key)
                assert fit["headers"] == headers, (key, fit)
                assert fit["content"] <= fit["visible"] and fit["right"] <= fit["window"], (key, fit)
            full_page_screenshot(page, shots / f"{slug}.png")
            assert page.locator("[data-testid='stException']").count() == 0, slug
            assert page.locator("[data-testid='stAlertContentError']").count() == 0, slug
            bodies[slug] = page.inner_text("body")
        browser.close()
    for slug, body in bodies.items():
        assert "Traceback" not in body and "Error" not in body, slug
        assert (shots / f"{slug}.png").stat().st_size > 20_000, slug
    assert "Liquidatable now" in bodies["overview"] and "Health factors of borrowers" in bodies["overview"]
    assert "matching positions" in bodies["positions"]
    assert "rows in" in bodies["sql"]
    assert "Health per market" in bodies["wallet"] and "price change (%)" in bodies["wallet"]
    assert "Active alerts" in bodies["runs"] and "Alert events" in bodies["runs"]
    assert "Worst point (UTC)" in bodies["risk"] and "VaR / ES" in bodies["risk"]
    # Tables draw on a canvas; the metrics and the captions are text.
    assert devnet["rpc_url"] in bodies["devnet"]
    assert page_text_after(bodies["devnet"], "Aave liquidations") == str(devnet["history"]["aave_liquidations"])


def page_text_after(body: str, label: str) -> str:
    """The first non-empty line after `label` in the page's text."""
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    return lines[lines.index(label) + 1]
