"""`chainrisk watch` against the devnet while prices move: one webhook per breach and per recovery, readers unharmed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from chainrisk.abi import Abi
from chainrisk.config import load_config
from chainrisk.devnet.node import DEPLOYER, free_port
from chainrisk.devnet.toolchain import compiled_contracts
from chainrisk.jobs.run import run_once
from chainrisk.rpc import RpcClient
from chainrisk.store.published import connect_reader, current_copy
from tests.configs import devnet_toml
from tests.webhooks import Hooks

APP = str(Path(__file__).resolve().parent.parent / "app.py")
FEED = Abi(compiled_contracts()["SettableFeed"].abi)
THRESHOLD = 1.2
SHOCK = 0.55  #: WETH falls 45 %: a WETH-only wallet's health factor falls by the same factor


def _watched_wallets(scored_db: Path) -> list[str]:
    """Borrowers whose only collateral is WETH (Aave), no WETH debt, and every market's health 1.3-2: a 45 % WETH
    drop takes them below 1.2, the restored price above it again."""
    with duckdb.connect(str(scored_db), read_only=True) as con:
        rows = con.execute(
            """
            WITH p AS (SELECT * FROM positions JOIN scored_markets USING (protocol, chain_id, market, block_number)),
            weth_only AS (
                SELECT wallet FROM p WHERE protocol = 'aave-v3' GROUP BY wallet
                HAVING bool_and(collateral_amount = 0 OR symbol = 'WETH') AND bool_or(collateral_amount > 0)
                   AND bool_and(debt_amount = 0 OR symbol <> 'WETH') AND bool_or(debt_amount > 0)
            )
            SELECT wallet FROM wallet_portfolio JOIN weth_only USING (wallet)
            WHERE worst_health_factor BETWEEN 1.3 AND 2.0 AND markets_with_debt = 1
            ORDER BY wallet LIMIT 3
            """
        ).fetchall()
    return [r[0] for r in rows]


def _set_weth(rpc: RpcClient, devnet: dict[str, Any], answer: int) -> None:
    """One block moving the WETH feed, one second after the head (no interest worth speaking of accrues)."""
    feed = devnet["aave_v3"]["reserves"]["WETH"]["feed"]
    head = rpc.call("eth_getBlockByNumber", ["latest", False])
    nonce = int(rpc.call("eth_getTransactionCount", [DEPLOYER, "pending"]), 16)
    tx = {"from": DEPLOYER, "to": feed, "data": FEED.encode("setAnswer", answer), "gas": hex(200_000)}
    rpc.call("eth_sendTransaction", [{**tx, "gasPrice": "0x0", "nonce": hex(nonce)}])
    rpc.call("evm_mine", [int(head["timestamp"], 16) + 1])


class Dashboard:
    """The dashboard's Overview and Runs pages rendered (AppTest) again and again while the watch writes."""

    #: Seconds between two views: each renders two pages (~1-2 s of CPU), and viewing without a pause took a core
    #: from the watch being tested (with the other test worker on the other one), slowing every run it waits for.
    EVERY_S = 3.0

    def __init__(self, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CHAINRISK_DB", str(db))
        self.views = 0
        self.problems: list[str] = []
        self._last = float("-inf")

    def view(self) -> None:
        if time.monotonic() - self._last < self.EVERY_S:
            return
        for slug in ("overview", "runs"):
            app = AppTest.from_file(APP, default_timeout=120)
            app.query_params["page"] = slug
            app.run()
            self.problems += [f"{slug}: {e.value}" for e in [*app.exception, *app.error]]
            self.views += 1
        self._last = time.monotonic()


def _wait(condition: Callable[[], bool], what: str, meanwhile: Callable[[], None], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        meanwhile()
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _runs(db: Path) -> int:
    try:
        with connect_reader(db) as con:
            return int(con.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchall()[0][0])
    except Exception:
        return 0


def test_watch_alerts_once_per_breach_and_recovery(
    devnet: dict[str, Any],
    rpc: RpcClient,
    scored_db: Path,
    hooks: Hooks,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wallets = _watched_wallets(scored_db)
    assert wallets, "the devnet population has no WETH-only borrower with health 1.3-2"
    db = tmp_path / "watch.duckdb"
    dashboard = Dashboard(db, monkeypatch)
    config = tmp_path / "chainrisk.toml"
    config.write_text(
        devnet_toml(devnet, db)
        + f"[watchlists]\nweth_borrowers = {json.dumps(wallets)}\n"
        + f'[alerts]\nwebhooks = ["{hooks.url}"]\n'
        + f'[[alerts.rules]]\nname = "watchlist health"\nkind = "health_below"\nthreshold = {THRESHOLD}\n'
        + 'watchlist = "weth_borrowers"\n'
    )
    weth_feed = devnet["aave_v3"]["reserves"]["WETH"]["feed"]
    before = int(rpc.call("eth_call", [{"to": weth_feed, "data": FEED.encode("latestAnswer")}, "latest"]), 16)
    snapshot = rpc.call("evm_snapshot")
    log = (tmp_path / "watch.log").open("wb")
    watch = subprocess.Popen(
        [sys.executable, "-m", "chainrisk.cli", "watch", "--config", str(config), "--every", "1s"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    reader_errors: list[str] = []
    reads = 0
    stop = threading.Event()

    def read_throughout() -> None:
        nonlocal reads
        while not stop.is_set():
            # Readers have nothing to open before the first publish (its folder appears while the copy is still
            # being written; the pointer last).
            if current_copy(db) is None:
                time.sleep(0.05)
                continue
            try:
                with connect_reader(db) as con:
                    con.execute("SELECT count(*), min(health_factor) FROM wallet_risk").fetchall()
                reads += 1
            except Exception as exc:  # any reader error fails the test
                reader_errors.append(f"{type(exc).__name__}: {exc}")

    reader = threading.Thread(target=read_throughout, daemon=True)
    reader.start()
    try:
        _wait(lambda: _runs(db) >= 2, "two quiet runs", dashboard.view)
        assert hooks.events("breach") == [] and hooks.events("recovery") == []

        _set_weth(rpc, devnet, before * 55 // 100)
        _wait(lambda: hooks.events("breach") == wallets, "one breach per watched wallet", dashboard.view)
        settled = _runs(db)
        _wait(lambda: _runs(db) >= settled + 2, "two more runs after the breach", dashboard.view)
        assert hooks.events("breach") == wallets  # exactly once each, not once per run
        assert hooks.events("recovery") == []

        _set_weth(rpc, devnet, before)
        _wait(lambda: hooks.events("recovery") == wallets, "one recovery per watched wallet", dashboard.view)
        settled = _runs(db)
        _wait(lambda: _runs(db) >= settled + 2, "two more runs after the recovery", dashboard.view)
        assert hooks.events("breach") == wallets and hooks.events("recovery") == wallets
    finally:
        stop.set()
        watch.send_signal(signal.SIGTERM)
        code = watch.wait(timeout=120)
        reader.join(timeout=10)
        assert rpc.call("evm_revert", [snapshot]) is True
    assert code == 0, (tmp_path / "watch.log").read_text()[-2000:]
    assert reader_errors == []
    assert reads > 20
    # The first views may come before the first publish ("no scores yet" is an st.info, not an error).
    assert dashboard.problems == [] and dashboard.views >= 6
    with duckdb.connect(str(db), read_only=True) as con:
        samples, lowest = con.execute(
            "SELECT max(samples), min(health_factor_min) FROM (SELECT sum(samples) AS samples, "
            "min(health_factor_min) AS health_factor_min FROM wallet_health_history WHERE list_contains(?, wallet) "
            "GROUP BY protocol, market, wallet)",
            [wallets],
        ).fetchall()[0]
        events = con.execute("SELECT event, count(*) FROM alert_events WHERE delivered GROUP BY event").fetchall()
        statuses = con.execute("SELECT DISTINCT status FROM runs").fetchall()
    # The quiet head, the shocked block and the restored block each a sample; the dip kept though it recovered.
    assert samples >= 3 and lowest < THRESHOLD
    assert dict(events) == {"breach": len(wallets), "recovery": len(wallets)}
    assert statuses == [("ok",)], (tmp_path / "watch.log").read_text()[-3000:]
    payload = next(h for h in hooks.received if h["event"] == "breach")
    assert payload["value"] < THRESHOLD and payload["threshold"] == THRESHOLD and "ALERT" in payload["text"]


def test_a_run_that_loses_its_rpc_still_sends_the_stale_data_alert(
    devnet: dict[str, Any], rpc: RpcClient, hooks: Hooks, tmp_path: Path
) -> None:
    """`stale_above` is evaluated on every run, one whose every market failed included: the RPC going down is alerted
    once the newest snapshots are older than the limit, and recovers when a run reads the chain again; a configured
    market that was never indexed (here an address with no code) breaches from the first run."""
    db = tmp_path / "stale.duckdb"
    nowhere = "0x" + "5a" * 20
    path = tmp_path / "chainrisk.toml"
    path.write_text(
        devnet_toml(devnet, db)
        + f'[[markets]]\nprotocol = "aave-v3"\naddress = "{nowhere}"\n'
        + f'[alerts]\nwebhooks = ["{hooks.url}"]\n'
        + '[[alerts.rules]]\nname = "stale data"\nkind = "stale_above"\nminutes = 30\n'
    )
    config = load_config(path)
    head = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def after(minutes: int) -> datetime:
        return datetime.fromtimestamp(head + minutes * 60, UTC)

    first = run_once(config, devnet["rpc_url"], clock=lambda: after(10))
    assert first.status == "partial" and list(first.failures) == [f"aave-v3:{nowhere}"]
    assert hooks.events("breach") == [f"aave-v3:{nowhere}"]
    with duckdb.connect(str(db), read_only=True) as con:
        snapshots = dict(con.execute("SELECT market, snapshot_timestamp FROM sync_state").fetchall())
    devnet_markets = sorted(m.name for m in config.markets if m.address in snapshots)
    assert len(devnet_markets) == 2

    down = run_once(config, f"http://127.0.0.1:{free_port()}", clock=lambda: after(45))
    assert down.status == "failed" and len(down.failures) == 3
    assert hooks.events("breach") == sorted([*devnet_markets, f"aave-v3:{nowhere}"])
    for payload in hooks.received[1:]:
        address = next(m.address for m in config.markets if m.name == payload["subject"])
        assert payload["value"] == round((head + 45 * 60 - snapshots[address]) / 60, 1) > 30
        assert "ALERT stale data" in payload["text"] and "data age" in payload["text"]

    back = run_once(config, devnet["rpc_url"], clock=lambda: after(20))
    assert back.status == "partial"
    assert hooks.events("recovery") == devnet_markets  # the market with no code stays breached
    with duckdb.connect(str(db), read_only=True) as con:
        active = con.execute("SELECT subject FROM alert_state WHERE active").fetchall()
    assert active == [(f"aave-v3:{nowhere}",)]
