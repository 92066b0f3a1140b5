"""The dashboard served by `streamlit run`, opened once in a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from chainrisk.devnet.node import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def dashboard(devnet: dict[str, Any], scored_db: Path, tmp_path: Path) -> Any:
    port = free_port()
    env = {
        **os.environ,
        "CHAINRISK_MANIFEST": str(Path(devnet["state_dir"]) / "manifest.json"),
        "CHAINRISK_DB": str(scored_db),
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


def test_dashboard_in_headless_chromium(dashboard: str, devnet: dict[str, Any], tmp_path: Path) -> None:
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI; `make test` installs it with apt")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking"]
    flags += ["--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(dashboard)
        page.get_by_text("Collateral at risk vs price drop", exact=True).wait_for(timeout=60_000)
        page.wait_for_timeout(2_000)
        page.screenshot(path=str(tmp_path / "risk.png"), full_page=True)
        risk_body = page.inner_text("body")
        page.get_by_role("tab", name="Devnet").click()
        page.get_by_text("Contracts", exact=True).wait_for(timeout=30_000)
        page.wait_for_timeout(1_000)
        page.screenshot(path=str(tmp_path / "devnet.png"), full_page=True)
        assert page.locator("[data-testid='stException']").count() == 0
        body = page.inner_text("body")
        browser.close()
    assert "Traceback" not in risk_body + body
    assert "Liquidatable now" in risk_body and "Positions closest to liquidation" in risk_body
    # Tables draw on a canvas; the metrics and the caption are text.
    assert devnet["rpc_url"] in body
    metric = page_text_after(body, "Aave liquidations")
    assert metric == str(devnet["history"]["aave_liquidations"])


def page_text_after(body: str, label: str) -> str:
    """The first non-empty line after `label` in the page's text."""
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    return lines[lines.index(label) + 1]
    assert "change since window start (%)" in body
