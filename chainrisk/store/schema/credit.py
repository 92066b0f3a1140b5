"""Schema of credit scores (`chainrisk credit ...`): the history sampled at past blocks, scores with their features
and advice, and out-of-time evaluations."""

from __future__ import annotations

#: Credit history sampled at past blocks (`chainrisk credit history`), keyed by (chain_id, block_number).
HISTORY_TABLES = ("credit_samples", "holdings_history", "asset_price_history", "lookthrough_history", "block_times")
#: Credit scores as of a block (`chainrisk credit`), keyed by (chain_id, as_of_block).
CREDIT_TABLES = ("credit_scores", "credit_features", "credit_advice")

DDL = """
-- Credit scores (chainrisk credit ...). History sampled at past blocks (`credit history`): one credit_samples row
-- per sampled block, each wallet-market's holdings and look-through there (its health goes to the one
-- wallet_health_history, schema/history.py), and the timestamps of the blocks
-- events were stored from (feature times).
CREATE TABLE IF NOT EXISTS credit_samples (
    chain_id BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    block_hash VARCHAR NOT NULL,
    markets INTEGER NOT NULL,
    wallets BIGINT NOT NULL,
    seconds DOUBLE NOT NULL,
    sampled_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (chain_id, block_number)
);

CREATE TABLE IF NOT EXISTS holdings_history (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    asset VARCHAR NOT NULL,
    symbol VARCHAR,
    base_asset VARCHAR NOT NULL,
    collateral_usd DOUBLE NOT NULL,
    debt_usd DOUBLE NOT NULL,
    PRIMARY KEY (protocol, chain_id, market, block_number, wallet, asset)
);

CREATE TABLE IF NOT EXISTS asset_price_history (
    chain_id BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    asset VARCHAR NOT NULL,
    symbol VARCHAR,
    decimals INTEGER NOT NULL,
    price_usd DOUBLE NOT NULL,
    PRIMARY KEY (chain_id, block_number, asset)
);

CREATE TABLE IF NOT EXISTS lookthrough_history (
    chain_id BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    loop_leverage DOUBLE,
    max_depth INTEGER NOT NULL,
    chained_usd DOUBLE,
    PRIMARY KEY (chain_id, block_number, wallet)
);

CREATE TABLE IF NOT EXISTS block_times (
    chain_id BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    PRIMARY KEY (chain_id, block_number)
);

-- One row per wallet scored as of a block by a model version; the features behind it with their points, and the
-- advice (smallest changes that reach the next band).
CREATE TABLE IF NOT EXISTS credit_scores (
    chain_id BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    as_of_block BIGINT NOT NULL,
    as_of_timestamp BIGINT NOT NULL,
    model_version VARCHAR NOT NULL,
    score INTEGER NOT NULL,
    band VARCHAR NOT NULL,
    pd DOUBLE NOT NULL,
    reasons VARCHAR[] NOT NULL,
    reason_text VARCHAR[] NOT NULL,
    borrower BOOLEAN NOT NULL,
    health_factor DOUBLE,
    collateral_usd DOUBLE NOT NULL,
    debt_usd DOUBLE NOT NULL,
    protocol_ltv DOUBLE,
    suggested_ltv DOUBLE,
    suggested_max_debt_usd DOUBLE,
    scored_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (chain_id, as_of_block, model_version, wallet)
);

CREATE TABLE IF NOT EXISTS credit_features (
    chain_id BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    as_of_block BIGINT NOT NULL,
    model_version VARCHAR NOT NULL,
    feature VARCHAR NOT NULL,
    value DOUBLE,
    bin VARCHAR NOT NULL,
    points DOUBLE NOT NULL,
    max_points DOUBLE NOT NULL,
    PRIMARY KEY (chain_id, as_of_block, model_version, wallet, feature)
);

CREATE TABLE IF NOT EXISTS credit_advice (
    chain_id BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    as_of_block BIGINT NOT NULL,
    model_version VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    amount_usd DOUBLE,
    target_band VARCHAR NOT NULL,
    new_score INTEGER,
    reachable BOOLEAN NOT NULL,
    PRIMARY KEY (chain_id, as_of_block, model_version, wallet, action)
);

-- Out-of-time evaluations (chainrisk credit evaluate): the model and the baselines side by side, and calibration.
CREATE TABLE IF NOT EXISTS credit_evaluations (
    run_id BIGINT NOT NULL,
    model_version VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    cutoff_block BIGINT NOT NULL,
    cutoff_timestamp BIGINT NOT NULL,
    horizon_days INTEGER NOT NULL,
    train_cutoffs INTEGER NOT NULL,
    train_rows BIGINT NOT NULL,
    scorer VARCHAR NOT NULL,
    wallets BIGINT NOT NULL,
    liquidated BIGINT NOT NULL,
    auc DOUBLE,
    ks DOUBLE,
    brier DOUBLE,
    evaluated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS credit_calibration (
    run_id BIGINT NOT NULL,
    cutoff_block BIGINT NOT NULL,
    bucket VARCHAR NOT NULL,
    score_min INTEGER NOT NULL,
    score_max INTEGER NOT NULL,
    wallets BIGINT NOT NULL,
    liquidated BIGINT NOT NULL,
    predicted_pd DOUBLE NOT NULL,
    observed_rate DOUBLE NOT NULL
);

-- The market at each evaluated cutoff (chainrisk.credit.regime): the collateral markets' annualised volatility over
-- the 30 days before it and their fall from the 90-day high, the regime they name, and the cutoff's borrowers:
-- the model's mean 30-day PD against the share liquidated (calibration by regime; by band: credit_calibration).
CREATE TABLE IF NOT EXISTS credit_regimes (
    run_id BIGINT NOT NULL,
    chain_id BIGINT NOT NULL,
    cutoff_block BIGINT NOT NULL,
    cutoff_timestamp BIGINT NOT NULL,
    regime VARCHAR NOT NULL,
    market_vol DOUBLE NOT NULL,
    market_drawdown DOUBLE NOT NULL,
    wallets BIGINT NOT NULL,
    liquidated BIGINT NOT NULL,
    predicted_pd DOUBLE NOT NULL,
    observed_rate DOUBLE NOT NULL,
    PRIMARY KEY (run_id, cutoff_block)
);
"""

#: Version 9: health_history is folded into wallet_health_history (chainrisk.store.migrate_v9), then dropped.
MIGRATIONS: dict[int, list[str]] = {}
