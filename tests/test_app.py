"""The dashboard renders the devnet without errors, and explains itself when there is no devnet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def test_dashboard_shows_the_devnet(devnet: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINRISK_MANIFEST", str(Path(devnet["state_dir"]) / "manifest.json"))
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert not app.error
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Wallets"] == f"{len(devnet['wallets']):,}"
    assert metrics["Aave liquidations"] == str(devnet["history"]["aave_liquidations"])
    assert len(app.dataframe) == 3


def test_dashboard_without_devnet_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINRISK_MANIFEST", str(tmp_path / "missing.json"))
    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception
    assert any("chainrisk devnet up" in info.value for info in app.info)
