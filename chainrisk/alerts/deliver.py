"""Alert delivery: turns breach-state changes into events, sends them, and keeps alert_state / alert_events.

Reads and writes alert_state (per rule, subject and channel: breached or not) and appends to alert_events.
An event goes out when a subject starts breaching a rule (breach) or stops (recovery) — once per channel:
state only moves when the channel accepted the message, so a failed delivery is retried on the next run and a
delivered one is never repeated.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import duckdb
import httpx

from chainrisk.alerts.rules import EVENT_KINDS, AlertConfig, EmailChannel, Observation, WatchedMarket, evaluate

WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_ATTEMPTS = 3


#: What each kind of rule measures, in messages (else its kind's words: "bad debt").
_MEASURED = {
    "health_below": "health factor",
    "utilization_above": "utilization",
    "cap_used_above": "used",  # after a subject that ends in its cap: "... USDC supply cap used 96.00 %"
    "stale_above": "data age",
    "liquidation_above": "debt repaid",
    "keeper_gain_above": "keeper's gain",
    "auction_stalled_above": "left to raise",
}


def _shown(kind: str, value: float) -> str:
    """A measured value or a limit as messages write it: a health factor, a percentage, minutes, dai, or USD."""
    if kind == "health_below":
        return f"{value:.4f}"
    if kind in ("utilization_above", "cap_used_above"):
        return f"{value:.2f} %"
    if kind == "auction_stalled_above":
        return f"{value:,.0f} DAI"
    return f"{value:,.1f} min" if kind == "stale_above" else f"${value:,.0f}"


@dataclass(frozen=True)
class Event:
    observation: Observation
    kind: str  #: "breach" or "recovery"

    @property
    def text(self) -> str:
        o, rule = self.observation, self.observation.rule
        measured = _MEASURED.get(rule.kind) or rule.kind.split("_above")[0].replace("_", " ")
        value = "n/a" if o.value is None else _shown(rule.kind, o.value)
        limit = _shown(rule.kind, rule.threshold)
        block = f", chain {o.chain_id} block {o.block_number}" if o.block_number is not None else ""
        if rule.kind == "data_quality":  # a problem met or not: no measure, no limit
            head = "ALERT" if self.kind == "breach" else "RECOVERED"
            return f"{head} {rule.name}: {o.subject} ({o.where}{block})"
        if self.kind == "breach":
            compare = "<" if rule.kind == "health_below" else ">"
            head = f"ALERT {rule.name}: {o.subject} {measured} {value} {compare} {limit}"
        else:
            head = f"RECOVERED {rule.name}: {o.subject} {measured} {value} (limit {limit})"
        return f"{head} ({o.where}{block})"

    def payload(self, run_id: int) -> dict[str, Any]:
        o = self.observation
        return {
            "source": "chainrisk",
            "event": self.kind,
            "rule": o.rule.name,
            "kind": o.rule.kind,
            "subject": o.subject,
            "value": o.value,
            "threshold": o.rule.threshold,
            "chain_id": o.chain_id,
            "block_number": o.block_number,
            "where": o.where,
            "run_id": run_id,
            "text": self.text,
        }


@dataclass(frozen=True)
class Channel:
    name: str  #: stable key in alert_state (never the secret part of a URL)
    label: str  #: what messages about delivery show
    deliver: Callable[[list[Event], int], list[str | None]]  #: per event: None when delivered, else the error


@dataclass(frozen=True)
class AlertReport:
    evaluated: int  #: subjects observed
    breached: int  #: subjects breaching now
    sent: int  #: events delivered
    failed: int  #: events that could not be delivered (retried next run)
    errors: tuple[str, ...]  #: one line per failed delivery


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _post(client: httpx.Client, url: str, payload: dict[str, Any]) -> str | None:
    """POSTs with a few attempts on network errors, 429 and 5xx; None when accepted, else the last error."""
    last = ""
    for attempt in range(WEBHOOK_ATTEMPTS):
        try:
            response = client.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_S)
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        else:
            if response.is_success:
                return None
            last = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                return last
        time.sleep(0.5 * (attempt + 1))
    return last


def _webhook(url: str, client: httpx.Client) -> Channel:
    parts = urlsplit(url)
    label = f"webhook {parts.scheme}://{parts.hostname}"

    def deliver(events: list[Event], run_id: int) -> list[str | None]:
        return [_post(client, url, event.payload(run_id)) for event in events]

    return Channel(f"webhook:{_digest(url)}", label, deliver)


def _email(channel: EmailChannel) -> Channel:
    label = f"e-mail via {channel.host}"

    def send(events: list[Event], run_id: int) -> None:
        message = EmailMessage()
        breaches = sum(e.kind == "breach" for e in events)
        message["Subject"] = f"chainrisk: {breaches} alert(s), {len(events) - breaches} recovery(ies)"
        message["From"] = channel.sender
        message["To"] = ", ".join(channel.to)
        message.set_content("\n".join(e.text for e in events) + f"\n\n(chainrisk run {run_id})\n")
        smtp_class = smtplib.SMTP_SSL if channel.ssl else smtplib.SMTP
        with smtp_class(channel.host, channel.port, timeout=WEBHOOK_TIMEOUT_S) as smtp:
            if channel.starttls and not channel.ssl:
                smtp.starttls()
            if channel.username:
                password = os.environ.get(channel.password_env or "", "")
                if not password:
                    raise RuntimeError(f"no SMTP password in ${channel.password_env}")
                smtp.login(channel.username, password)
            smtp.send_message(message)

    def deliver(events: list[Event], run_id: int) -> list[str | None]:
        try:
            send(events, run_id)
        except (OSError, smtplib.SMTPException, RuntimeError) as exc:
            return [str(exc).splitlines()[0] if str(exc) else type(exc).__name__] * len(events)
        return [None] * len(events)

    return Channel(f"email:{_digest(','.join(channel.to))}", label, deliver)


def _state(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str], bool]:
    rows = con.execute("SELECT rule, subject, channel, active FROM alert_state").fetchall()
    return {(r[0], r[1], r[2]): bool(r[3]) for r in rows}


def run_alerts(
    con: duckdb.DuckDBPyConnection,
    config: AlertConfig,
    run_id: int,
    client: httpx.Client | None = None,
    markets: Sequence[WatchedMarket] = (),
    now: datetime | None = None,
) -> AlertReport:
    """Evaluates every rule on the latest scores (`stale_above`: on `markets`, the configured ones, at `now`) and
    delivers state changes, recording them (writer connection)."""
    observations = [o for rule in config.rules for o in evaluate(con, rule, markets, now)]
    state = _state(con)
    own_client = client is None
    http = client or httpx.Client()
    channels = [_webhook(url, http) for url in config.webhooks]
    if config.email is not None:
        channels.append(_email(config.email))
    sent = failed = 0
    errors: list[str] = []
    seen = {(o.rule.name, o.subject) for o in observations}
    rules = {r.name: r for r in config.rules}
    try:
        for channel in channels:
            events = []
            for o in observations:
                active = state.get((o.rule.name, o.subject, channel.name), False)
                if o.breached != active:
                    events.append(Event(o, "breach" if o.breached else "recovery"))
            # Subjects that vanished (a market no longer scored) while breaching have recovered too; an event (a
            # liquidation) leaves the rule's window without recovering.
            for (rule_name, subject, channel_name), active in state.items():
                if (
                    active
                    and channel_name == channel.name
                    and (rule_name, subject) not in seen
                    and rule_name in rules
                    and rules[rule_name].kind not in EVENT_KINDS
                ):
                    gone = Observation(rules[rule_name], subject, False, None, None, None, "no longer observed")
                    events.append(Event(gone, "recovery"))
            if not events:
                continue
            outcomes = channel.deliver(events, run_id)
            _record(con, run_id, channel.name, events, outcomes)
            for event, error in zip(events, outcomes, strict=True):
                if error is None:
                    sent += 1
                else:
                    failed += 1
                    errors.append(
                        f"{channel.label}: {event.observation.rule.name} {event.observation.subject}: {error}"
                    )
    finally:
        if own_client:
            http.close()
    return AlertReport(
        evaluated=len(observations),
        breached=sum(o.breached for o in observations),
        sent=sent,
        failed=failed,
        errors=tuple(errors),
    )


def _record(
    con: duckdb.DuckDBPyConnection, run_id: int, channel: str, events: list[Event], outcomes: list[str | None]
) -> None:
    now = datetime.now(UTC)
    con.execute("BEGIN")
    try:
        for event, error in zip(events, outcomes, strict=True):
            o = event.observation
            con.execute(
                "INSERT INTO alert_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    o.rule.name,
                    o.subject,
                    channel,
                    event.kind,
                    o.value,
                    o.rule.threshold,
                    o.chain_id,
                    o.block_number,
                    error is None,
                    error,
                    now,
                ],
            )
            if error is None:
                con.execute(
                    "INSERT OR REPLACE INTO alert_state VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [o.rule.name, o.subject, channel, event.kind == "breach", o.value, o.block_number, now],
                )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
