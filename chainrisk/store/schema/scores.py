"""Schema of what scoring writes (`chainrisk score`): wallet_risk, position_risk and liquidation_curve of each market's
latest scored block (their history: wallet_health_history, schema/history.py), wallet_portfolio and scored_markets."""

from __future__ import annotations

#: Score tables that describe only the latest snapshots (rebuilt whole by every score run).
LATEST_ONLY_TABLES = ("wallet_portfolio", "scored_markets")
#: Score tables keyed by protocol and risk-isolated market, of its latest scored block (which scored_markets names).
SCORE_TABLES = ("wallet_risk", "position_risk", "scored_markets")

DDL = """
CREATE TABLE IF NOT EXISTS wallet_risk (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    collateral_usd DOUBLE,
    debt_usd DOUBLE,
    health_factor DOUBLE,
    ltv_used DOUBLE,
    borrowing_power_usd DOUBLE,
    distance_to_liquidation DOUBLE,
    liquidatable BOOLEAN NOT NULL,
    close_factor DOUBLE NOT NULL,
    liquidatable_debt_usd DOUBLE,
    seizable_collateral_usd DOUBLE,
    bad_debt_usd DOUBLE,
    liquidation_threshold_bps INTEGER NOT NULL,
    ltv_bps INTEGER NOT NULL,
    health_factor_wad HUGEINT,
    liquidation_blocked VARCHAR,
    liquidation_blocked_until BIGINT,
    liquidatable_now BOOLEAN,
    PRIMARY KEY (protocol, chain_id, market, block_number, wallet)
);

CREATE TABLE IF NOT EXISTS position_risk (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    asset VARCHAR NOT NULL,
    symbol VARCHAR,
    price_group VARCHAR,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    collateral_usd DOUBLE,
    debt_usd DOUBLE,
    price_usd DOUBLE,
    liquidated_when_price VARCHAR,
    liquidation_price DOUBLE,
    liquidation_price_usd DOUBLE,
    liquidation_price_change DOUBLE,
    PRIMARY KEY (protocol, chain_id, market, block_number, wallet, asset)
);

CREATE TABLE IF NOT EXISTS liquidation_curve (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    axis_kind VARCHAR NOT NULL,
    axis VARCHAR NOT NULL,
    "drop" DOUBLE NOT NULL,
    liquidatable_collateral_usd DOUBLE NOT NULL,
    liquidatable_debt_usd DOUBLE NOT NULL,
    bad_debt_usd DOUBLE NOT NULL,
    liquidatable_wallets BIGINT NOT NULL,
    PRIMARY KEY (chain_id, market, block_number, axis_kind, axis, "drop")
);

CREATE TABLE IF NOT EXISTS wallet_portfolio (
    chain_id BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    protocols VARCHAR[] NOT NULL,
    markets BIGINT NOT NULL,
    markets_with_debt BIGINT NOT NULL,
    collateral_usd DOUBLE,
    debt_usd DOUBLE,
    borrowing_power_usd DOUBLE,
    worst_health_factor DOUBLE,
    worst_protocol VARCHAR,
    worst_market VARCHAR,
    liquidatable_markets BIGINT NOT NULL,
    liquidatable_debt_usd DOUBLE,
    bad_debt_usd DOUBLE,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    cross_protocol BOOLEAN NOT NULL,
    PRIMARY KEY (chain_id, wallet)
);

CREATE TABLE IF NOT EXISTS scored_markets (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    source VARCHAR,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    wallets BIGINT NOT NULL,
    scored_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (protocol, chain_id, market)
);
"""

#: wallet_risk's USD figures: NULL where the market's base currency has no known USD price (a Morpho Blue deployment
#: indexed without a `usd_oracle`), the wallet's health still exact in the market's own units. NOT NULL before version
#: 17, when such a market stopped the score (a NOT NULL constraint failed).
WALLET_USD_COLUMNS = (
    "collateral_usd",
    "debt_usd",
    "borrowing_power_usd",
    "liquidatable_debt_usd",
    "seizable_collateral_usd",
    "bad_debt_usd",
)

#: Version 7: the protocol's exact health factor beside the engine's, and whether a liquidatable wallet can be
#: liquidated now (NULL for rows scored before it). Version 8: a position's USD figures may be unknown (a token without
#: decimals(), an oracle without a price: chainrisk.protocols.quality), NULL then.
MIGRATIONS: dict[int, list[str]] = {
    17: [f"ALTER TABLE wallet_risk ALTER COLUMN {column} DROP NOT NULL" for column in WALLET_USD_COLUMNS],
    8: [
        f"ALTER TABLE position_risk ALTER COLUMN {column} DROP NOT NULL"
        for column in ("collateral_usd", "debt_usd", "price_usd")
    ],
    7: [
        "ALTER TABLE wallet_risk ADD COLUMN IF NOT EXISTS health_factor_wad HUGEINT",
        "ALTER TABLE wallet_risk ADD COLUMN IF NOT EXISTS liquidation_blocked VARCHAR",
        "ALTER TABLE wallet_risk ADD COLUMN IF NOT EXISTS liquidation_blocked_until BIGINT",
        "ALTER TABLE wallet_risk ADD COLUMN IF NOT EXISTS liquidatable_now BOOLEAN",
    ],
}
