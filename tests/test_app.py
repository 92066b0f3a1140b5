"""The dashboard renders risk and devnet pages without errors, and explains itself when there is no data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def test_dashboard_shows_risk_and_devnet(
    devnet: dict[str, Any], scored_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAINRISK_MANIFEST", str(Path(devnet["state_dir"]) / "manifest.json"))
    monkeypatch.setenv("CHAINRISK_DB", str(scored_db))
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert not app.error
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Wallets"] == f"{len(devnet['wallets']):,}"
    assert metrics["Aave liquidations"] == str(devnet["history"]["aave_liquidations"])
    with duckdb.connect(str(scored_db), read_only=True) as con:
        debtors, liquidatable = con.execute(
            "SELECT count(*) FILTER (WHERE debt_usd > 0), count(*) FILTER (WHERE liquidatable) FROM wallet_risk"
        ).fetchall()[0]
    assert metrics["Borrowing positions"] == f"{debtors:,}"
    assert metrics["Protocols"] == "2"
    assert metrics["Liquidatable now"] == f"{liquidatable:,}"
    assert len(app.dataframe) == 5  # at-risk positions, borrowers across protocols, and the devnet's three
    assert app.selectbox[0].value == "all non-stable"


def test_dashboard_without_data_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINRISK_MANIFEST", str(tmp_path / "missing.json"))
    monkeypatch.setenv("CHAINRISK_DB", str(tmp_path / "missing.duckdb"))
    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception
    assert any("chainrisk devnet up" in info.value for info in app.info)
    assert any("chainrisk score" in info.value for info in app.info)
