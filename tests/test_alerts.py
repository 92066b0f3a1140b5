"""Alert rules: config checks, evaluation over the latest scores, and delivery that is exactly-once per change."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from chainrisk.alerts.deliver import run_alerts
from chainrisk.alerts.rules import AlertConfig, WatchedMarket, parse_alerts, parse_watchlists
from chainrisk.config import load_config
from chainrisk.devnet.node import free_port
from chainrisk.errors import UserError
from chainrisk.store.db import Store

A, B, C = ("0x" + c * 40 for c in "abc")
POOL, MARKET = "0x" + "11" * 20, "0x" + "22" * 32
HOOK = "http://hooks.test/chainrisk"


def _score(store: Store, block: int, rows: list[tuple[str, str, str, float | None, float, bool, float]]) -> None:
    """Latest scores at `block`: rows of (protocol, market, wallet, health, collateral USD, liquidatable, bad debt)."""
    store.con.execute("DELETE FROM scored_markets")
    for protocol, market, wallet, health, collateral, liquidatable, bad_debt in rows:
        store.con.execute(
            "INSERT INTO wallet_risk (protocol, chain_id, market, wallet, block_number, block_timestamp, "
            "collateral_usd, debt_usd, health_factor, ltv_used, borrowing_power_usd, distance_to_liquidation, "
            "liquidatable, close_factor, liquidatable_debt_usd, seizable_collateral_usd, bad_debt_usd, "
            "liquidation_threshold_bps, ltv_bps) "
            "VALUES (?, 1, ?, ?, ?, 0, ?, 100.0, ?, 0.5, 0, NULL, ?, 0.5, 0, 0, ?, 8000, 7500)",
            [protocol, market, wallet, block, collateral, health, liquidatable, bad_debt],
        )
        # scored_markets is latest-only, kept without a key index (chainrisk.store.latest): replaced by hand.
        store.con.execute("DELETE FROM scored_markets WHERE protocol = ? AND market = ?", [protocol, market])
        store.con.execute(
            "INSERT INTO scored_markets VALUES (?, 1, ?, ?, ?, 0, 1, ?)",
            [protocol, market, market, block, datetime.now(UTC)],
        )


class Receiver:
    """httpx MockTransport that records payloads; `fail(subject)` says which deliveries answer HTTP 500."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.fail: Callable[[str], bool] = lambda _: False

    def handle(self, request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        if self.fail(payload["subject"]):
            return httpx.Response(500)
        self.payloads.append(payload)
        return httpx.Response(204)

    def seen(self) -> list[tuple[str, str]]:
        return [(p["event"], p["subject"]) for p in self.payloads]


@pytest.fixture()
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setattr(time, "sleep", lambda _: None)  # the webhook's retry backoff
    yield Receiver()


def _config(rules: list[dict[str, Any]], watchlists: dict[str, Any] | None = None) -> AlertConfig:
    config = parse_alerts({"webhooks": [HOOK], "rules": rules}, parse_watchlists(watchlists, "test"), "test")
    assert config is not None
    return config


def test_health_breach_and_recovery_are_sent_once(tmp_path: Path, receiver: Receiver) -> None:
    config = _config([{"name": "watch", "kind": "health_below", "threshold": 1.2, "watchlist": "w"}], {"w": [A, B]})
    client = httpx.Client(transport=httpx.MockTransport(receiver.handle))
    with Store(tmp_path / "a.duckdb") as store:
        _score(store, 1, [("aave-v3", POOL, A, 1.5, 100, False, 0), ("aave-v3", POOL, B, 1.3, 100, False, 0)])
        assert run_alerts(store.con, config, 1, client).sent == 0
        # A falls below in one market of two: its weakest market counts.
        _score(
            store,
            2,
            [
                ("aave-v3", POOL, A, 1.5, 100, False, 0),
                ("morpho-blue", MARKET, A, 1.1, 100, False, 0),
                ("aave-v3", POOL, B, 1.3, 100, False, 0),
            ],
        )
        report = run_alerts(store.con, config, 2, client)
        assert (report.breached, report.sent) == (1, 1)
        assert receiver.seen() == [("breach", A)]
        assert receiver.payloads[0]["value"] == 1.1 and f"morpho-blue market {MARKET}" in receiver.payloads[0]["text"]
        for run in (3, 4):
            assert run_alerts(store.con, config, run, client).sent == 0
        # A repays everything in Morpho: no debt there any more, its Aave health 1.5 is fine -> recovery.
        _score(store, 5, [("aave-v3", POOL, A, 1.5, 100, False, 0), ("aave-v3", POOL, B, 1.3, 100, False, 0)])
        assert run_alerts(store.con, config, 5, client).sent == 1
        assert run_alerts(store.con, config, 6, client).sent == 0
        # A has no debt anywhere after breaching again: recovered, value unknown.
        _score(store, 7, [("aave-v3", POOL, A, 0.9, 100, True, 0), ("aave-v3", POOL, B, 1.3, 100, False, 0)])
        run_alerts(store.con, config, 7, client)
        _score(store, 8, [("aave-v3", POOL, B, 1.3, 100, False, 0)])
        run_alerts(store.con, config, 8, client)
        events = store.query("SELECT run_id, event, subject, delivered FROM alert_events ORDER BY run_id")
    assert receiver.seen() == [("breach", A), ("recovery", A), ("breach", A), ("recovery", A)]
    assert receiver.payloads[-1]["value"] is None
    assert events["run_id"].to_list() == [2, 5, 7, 8] and all(events["delivered"])


def test_failed_delivery_is_retried_until_accepted_and_never_repeated(tmp_path: Path, receiver: Receiver) -> None:
    config = _config([{"name": "everyone", "kind": "health_below", "threshold": 1.2}])
    client = httpx.Client(transport=httpx.MockTransport(receiver.handle))
    with Store(tmp_path / "a.duckdb") as store:
        _score(store, 1, [("aave-v3", POOL, w, 1.0, 100, False, 0) for w in (A, B, C)])
        receiver.fail = lambda subject: subject == B
        first = run_alerts(store.con, config, 1, client)
        assert (first.sent, first.failed) == (2, 1) and "HTTP 500" in first.errors[0]
        receiver.fail = lambda _: False
        second = run_alerts(store.con, config, 2, client)
        assert (second.sent, second.failed) == (1, 0)
        assert run_alerts(store.con, config, 3, client).sent == 0
        undelivered = store.query("SELECT subject FROM alert_events WHERE NOT delivered")
    assert sorted(receiver.seen()) == [("breach", A), ("breach", B), ("breach", C)]
    assert undelivered["subject"].to_list() == [B]


def test_unreachable_webhook_fails_the_delivery_not_the_run(tmp_path: Path, receiver: Receiver) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    config = _config([{"name": "everyone", "kind": "health_below", "threshold": 1.2}])
    with Store(tmp_path / "a.duckdb") as store:
        _score(store, 1, [("aave-v3", POOL, A, 1.0, 100, False, 0)])
        report = run_alerts(store.con, config, 1, httpx.Client(transport=httpx.MockTransport(refuse)))
        assert (report.sent, report.failed) == (0, 1)
        assert report.errors == ("webhook http://hooks.test: everyone " + A + ": ConnectError",)
        assert store.query("SELECT count(*) AS n FROM alert_state")["n"][0] == 0


def test_market_rules_per_market_and_in_total(tmp_path: Path, receiver: Receiver) -> None:
    config = _config(
        [
            {"name": "liq", "kind": "liquidatable_collateral_above", "usd": 150},
            {"name": "liq total", "kind": "liquidatable_collateral_above", "usd": 250, "scope": "total"},
            {"name": "bad debt", "kind": "bad_debt_above", "usd": 10, "protocol": "morpho-blue"},
        ]
    )
    client = httpx.Client(transport=httpx.MockTransport(receiver.handle))
    with Store(tmp_path / "a.duckdb") as store:
        _score(
            store,
            1,
            [
                ("aave-v3", POOL, A, 0.9, 100, True, 0),
                ("aave-v3", POOL, B, 0.8, 100, True, 50),
                ("morpho-blue", MARKET, A, 0.5, 80, True, 20),
                ("morpho-blue", MARKET, C, 2.0, 900, False, 0),
            ],
        )
        run_alerts(store.con, config, 1, client)
    by_rule = {(p["rule"], p["subject"]): p["value"] for p in receiver.payloads}
    assert by_rule == {
        ("liq", f"aave-v3:{POOL}"): 200.0,
        ("liq total", "all markets"): 280.0,
        ("bad debt", f"morpho-blue:{MARKET}"): 20.0,
    }


def test_stale_data_per_configured_market_by_the_chain_time_of_its_newest_snapshot(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Age = the clock less the newest snapshot's chain time; a market never indexed breaches with no value; one whose
    config names no chain is not read off another chain's entry of the same contract; a market dropped from the
    config recovers."""
    config = _config([{"name": "stale", "kind": "stale_above", "minutes": 30}])
    client = httpx.Client(transport=httpx.MockTransport(receiver.handle))
    other = "0x" + "33" * 20
    t = 1_700_000_000
    watched = [
        WatchedMarket("aave default chain", "aave-v3", POOL, None),
        WatchedMarket("aave on 10", "aave-v3", POOL, 10),
        WatchedMarket("never indexed", "morpho-blue", other, 1),
    ]
    with Store(tmp_path / "a.duckdb") as store:
        for chain, block, timestamp in ((1, 100, t), (10, 500, t - 3_600)):
            store.con.execute(
                "INSERT INTO sync_state (protocol, chain_id, market, from_block, snapshot_block, snapshot_timestamp) "
                "VALUES ('aave-v3', ?, ?, 0, ?, ?)",
                [chain, POOL, block, timestamp],
            )

        def at(seconds: int) -> datetime:
            return datetime.fromtimestamp(t + seconds, UTC)

        run_alerts(store.con, config, 1, client, watched, at(10 * 60))
        # Chain 10's snapshot is 70 minutes old; the default chain's 10: only the market on chain 10 breaches.
        assert receiver.seen() == [("breach", "aave on 10"), ("breach", "never indexed")]
        on_ten, never = receiver.payloads
        assert (on_ten["value"], on_ten["chain_id"], on_ten["block_number"]) == (70.0, 10, 500)
        assert "data age 70.0 min > 30.0 min" in on_ten["text"] and "snapshot 2023-11-14 " in on_ten["text"]
        assert never["value"] is None and "never indexed" in never["text"]
        # Nothing refreshed for 25 more minutes: the default chain's market crosses 30 minutes, once.
        run_alerts(store.con, config, 2, client, watched, at(35 * 60))
        run_alerts(store.con, config, 3, client, watched, at(36 * 60))
        assert receiver.seen()[2:] == [("breach", "aave default chain")]
        # Chain 10 indexed again at a block of the clock's minute; the Morpho market removed from the config.
        store.con.execute(
            "UPDATE sync_state SET snapshot_block = 510, snapshot_timestamp = ? WHERE chain_id = 10", [t + 36 * 60]
        )
        run_alerts(store.con, config, 4, client, watched[:2], at(37 * 60))
        assert receiver.seen()[3:] == [("recovery", "aave on 10"), ("recovery", "never indexed")]
        assert receiver.payloads[3]["value"] == 1.0


def test_data_quality_alerts_per_problem_of_the_latest_snapshot(tmp_path: Path, receiver: Receiver) -> None:
    """One alert per (market, contract, problem) of the kinds watched, while the latest snapshot holds it; its
    recovery once a snapshot no longer does."""
    config = _config([{"name": "oracles", "kind": "data_quality", "kinds": ["oracle_reverts", "oracle_zero"]}])
    client = httpx.Client(transport=httpx.MockTransport(receiver.handle))
    oracle = "0x" + "44" * 20
    problems = [
        (MARKET, oracle, "oracle_reverts", "price() reverted", "health factors of this market"),
        (MARKET, "0x" + "55" * 20, "no_decimals", "decimals() reverted", None),
        ("0x" + "66" * 32, "0x" + "77" * 20, "oracle_zero", "price() answered 0", "health factors of this market"),
    ]
    with Store(tmp_path / "a.duckdb") as store:
        for market, subject, kind, detail, unknown in problems:
            store.con.execute(
                "INSERT INTO data_quality VALUES ('morpho-blue', 1, ?, '0xmorpho', 7, ?, ?, ?, ?)",
                [market, subject, kind, detail, unknown],
            )
        run_alerts(store.con, config, 1, client)
        run_alerts(store.con, config, 2, client)  # still met: nothing new
        subject = f"morpho-blue:{MARKET} oracle_reverts {oracle}"
        assert receiver.seen() == [
            ("breach", subject),
            ("breach", f"morpho-blue:{'0x' + '66' * 32} oracle_zero 0x{'77' * 20}"),
        ]
        assert receiver.payloads[0]["text"] == (
            f"ALERT oracles: {subject} (price() reverted; unknown: health factors of this market, chain 1 block 7)"
        )
        store.con.execute("DELETE FROM data_quality WHERE kind = 'oracle_reverts'")
        run_alerts(store.con, config, 3, client)
        assert receiver.seen()[2:] == [("recovery", subject)]


def test_cap_rules_check_their_caps() -> None:
    """`caps` names supply and/or debt caps, on cap_used_above rules only."""
    rule = _config([{"name": "c", "kind": "cap_used_above", "percent": 90, "caps": ["debt"]}]).rules[0]
    assert (rule.threshold, rule.caps) == (90.0, ("debt",))
    both = _config([{"name": "c", "kind": "cap_used_above", "percent": 90, "caps": ["debt", "supply"]}]).rules[0]
    assert both.caps == ("supply", "debt")
    with pytest.raises(UserError, match="caps must be a non-empty list of 'supply' and 'debt'"):
        _config([{"name": "c", "kind": "cap_used_above", "percent": 90, "caps": ["borrow"]}])
    with pytest.raises(UserError, match="`caps` applies to cap_used_above rules only"):
        _config([{"name": "u", "kind": "utilization_above", "percent": 90, "caps": ["debt"]}])
    with pytest.raises(UserError, match="cap_used_above needs `percent`"):
        _config([{"name": "c", "kind": "cap_used_above", "usd": 90}])


def test_email_channel_sends_one_message_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[Any] = []

    class Collect(Message):
        def handle_message(self, message: Any) -> None:
            received.append(message)

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        raw = {
            "email": {
                "host": "127.0.0.1",
                "port": port,
                "sender": "chainrisk@test",
                "to": ["risk@test"],
                "starttls": False,
            },
            "rules": [{"name": "everyone", "kind": "health_below", "threshold": 1.2}],
        }
        config = parse_alerts(raw, {}, "test")
        assert config is not None
        with Store(tmp_path / "a.duckdb") as store:
            _score(store, 1, [("aave-v3", POOL, A, 1.0, 100, False, 0), ("aave-v3", POOL, B, 1.1, 100, False, 0)])
            assert run_alerts(store.con, config, 1).sent == 2
            assert run_alerts(store.con, config, 2).sent == 0
    finally:
        controller.stop()
    assert len(received) == 1
    assert received[0]["Subject"] == "chainrisk: 2 alert(s), 0 recovery(ies)"
    body = received[0].get_payload(decode=True).decode()
    assert f"ALERT everyone: {A} health factor 1.0000 < 1.2000" in body and B in body


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ('[[alerts.rules]]\nname = "x"\nkind = "health_above"\nthreshold = 1', "kind must be one of"),
        ('webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "health_below"', "needs `threshold`"),
        ('webhooks = ["http://h"]\n[[alerts.rules]]\nkind = "bad_debt_above"\nusd = 1', "give the rule a name"),
        ('webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "bad_debt_above"\nusd = -1', "non-negative"),
        # TOML's nan and inf: a rule compared against nan never fires (stop 71: taken, "alerts: 0 breaching").
        ('webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "health_below"\nthreshold = nan', "finite"),
        ('webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "stale_above"\nminutes = inf', "finite"),
        (
            'webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "bad_debt_above"\nusd = 1\n'
            '[[alerts.rules]]\nname = "x"\nkind = "bad_debt_above"\nusd = 2',
            "two alert rules are named 'x'",
        ),
        (
            'webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "health_below"\nthreshold = 1\n'
            'watchlist = "nope"',
            "unknown watchlist 'nope'",
        ),
        (
            'webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "health_below"\nthreshold = 1\n'
            'wallets = ["0x12"]',
            "is not a 0x-prefixed 20-byte address",
        ),
        ('[[alerts.rules]]\nname = "x"\nkind = "bad_debt_above"\nusd = 1', "nowhere to send them"),
        ('webhooks = ["ftp://h"]\n[[alerts.rules]]\nname = "x"\nkind = "bad_debt_above"\nusd = 1', "http(s) URLs"),
        (
            '[alerts.email]\nhost = "h"\nsender = "a@b"\nto = ["c@d"]\npassword = "hunter2"\n'
            '[[alerts.rules]]\nname = "x"\nkind = "bad_debt_above"\nusd = 1',
            "keep the SMTP password out of the file",
        ),
        ('webhooks = ["http://h"]\nrule = 1', "unknown key 'rule'"),
        ('webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "stale_above"\nusd = 1', "needs `minutes`"),
        (
            'webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "data_quality"\nkinds = ["oracle_broke"]',
            "unknown problem kind 'oracle_broke'",
        ),
        (
            'webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "bad_debt_above"\nusd = 1\n'
            'kinds = ["no_code"]',
            "`kinds` applies to data_quality rules only",
        ),
        (
            'webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "stale_above"\nminutes = 5\nscope = "total"',
            "scope must be 'market' or 'total'",
        ),
        ('webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "liquidation_above"', "needs `usd`"),
        (
            'webhooks = ["http://h"]\n[[alerts.rules]]\nname = "x"\nkind = "liquidation_above"\nusd = 1\n'
            'scope = "total"',
            "scope must be 'market' or 'total'",
        ),
    ],
)
def test_bad_alert_config_is_one_clear_line(tmp_path: Path, alerts: str, message: str) -> None:
    path = tmp_path / "chainrisk.toml"
    path.write_text(f'[[markets]]\nprotocol = "aave-v3"\naddress = "{POOL}"\n[alerts]\n{alerts}\n')
    with pytest.raises(UserError) as caught:
        load_config(path)
    text = str(caught.value)
    assert message in text and "\n" not in text and "hunter2" not in text
