"""Schema of scheduled runs and alerts: runs (one row per `chainrisk run`), alert_state and alert_events."""

from __future__ import annotations

DDL = """
CREATE TABLE IF NOT EXISTS runs (
    run_id BIGINT NOT NULL PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,
    markets BIGINT,
    markets_failed BIGINT,
    wallets BIGINT,
    liquidatable BIGINT,
    alerts_sent BIGINT,
    summary VARCHAR
);

CREATE TABLE IF NOT EXISTS alert_state (
    rule VARCHAR NOT NULL,
    subject VARCHAR NOT NULL,
    channel VARCHAR NOT NULL,
    active BOOLEAN NOT NULL,
    value DOUBLE,
    since_block BIGINT,
    changed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (rule, subject, channel)
);

CREATE TABLE IF NOT EXISTS alert_events (
    run_id BIGINT NOT NULL,
    rule VARCHAR NOT NULL,
    subject VARCHAR NOT NULL,
    channel VARCHAR NOT NULL,
    event VARCHAR NOT NULL,
    value DOUBLE,
    threshold DOUBLE,
    chain_id BIGINT,
    block_number BIGINT,
    delivered BOOLEAN NOT NULL,
    error VARCHAR,
    sent_at TIMESTAMPTZ NOT NULL
);
"""

MIGRATIONS: dict[int, list[str]] = {}
