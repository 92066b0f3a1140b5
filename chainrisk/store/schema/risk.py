"""Schema of the risk models (`chainrisk risk ...`): one risk_runs row per command, every result row keyed by its
run_id: replays, VaR and its backtest, parameter suggestions, optimisation, threshold sensitivity, cascades and
contagion."""

from __future__ import annotations

DDL = """
-- Risk models (chainrisk risk ...): one risk_runs row per command, every result row keyed by its run_id.
CREATE TABLE IF NOT EXISTS risk_runs (
    run_id BIGINT NOT NULL PRIMARY KEY,
    kind VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    seconds DOUBLE,
    block_number BIGINT,
    wallets BIGINT,
    params VARCHAR,
    notes VARCHAR
);

CREATE TABLE IF NOT EXISTS stress_replay_steps (
    run_id BIGINT NOT NULL,
    window_name VARCHAR NOT NULL,
    step BIGINT NOT NULL,
    time TIMESTAMPTZ NOT NULL,
    scope VARCHAR NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT,
    market VARCHAR NOT NULL,
    wallets BIGINT,
    liquidatable_wallets BIGINT,
    liquidatable_debt_usd DOUBLE,
    seizable_collateral_usd DOUBLE,
    bad_debt_usd DOUBLE,
    debt_usd DOUBLE,
    collateral_usd DOUBLE
);

CREATE TABLE IF NOT EXISTS stress_replay_prices (
    run_id BIGINT NOT NULL,
    window_name VARCHAR NOT NULL,
    step BIGINT NOT NULL,
    time TIMESTAMPTZ NOT NULL,
    symbol VARCHAR NOT NULL,
    series VARCHAR NOT NULL,
    multiplier DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS stress_replay_wallets (
    run_id BIGINT NOT NULL,
    window_name VARCHAR NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    health_factor_start DOUBLE,
    debt_usd_start DOUBLE,
    min_health_factor DOUBLE,
    first_liquidatable_step BIGINT,
    first_liquidatable_time TIMESTAMPTZ,
    max_bad_debt_usd DOUBLE
);

CREATE TABLE IF NOT EXISTS var_results (
    run_id BIGINT NOT NULL,
    scope VARCHAR NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT,
    market VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    horizon_hours BIGINT NOT NULL,
    confidence DOUBLE NOT NULL,
    var_usd DOUBLE,
    es_usd DOUBLE,
    mean_usd DOUBLE,
    scenarios BIGINT
);

CREATE TABLE IF NOT EXISTS var_calibration (
    run_id BIGINT NOT NULL,
    horizon_hours BIGINT NOT NULL,
    series VARCHAR NOT NULL,
    volatility DOUBLE NOT NULL,
    asset_dof DOUBLE,
    joint_dof DOUBLE NOT NULL,
    method VARCHAR NOT NULL,
    observations BIGINT NOT NULL,
    window_start TIMESTAMPTZ,
    window_end TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS var_backtest (
    run_id BIGINT NOT NULL,
    metric VARCHAR NOT NULL,
    horizon_hours BIGINT NOT NULL,
    confidence DOUBLE NOT NULL,
    time TIMESTAMPTZ NOT NULL,
    var_usd DOUBLE,
    realised_usd DOUBLE,
    exceedance BOOLEAN
);

CREATE TABLE IF NOT EXISTS var_backtest_summary (
    run_id BIGINT NOT NULL,
    metric VARCHAR NOT NULL,
    horizon_hours BIGINT NOT NULL,
    confidence DOUBLE NOT NULL,
    observations BIGINT,
    exceedances BIGINT,
    expected_rate DOUBLE,
    observed_rate DOUBLE,
    lr_statistic DOUBLE,
    p_value DOUBLE
);

CREATE TABLE IF NOT EXISTS parameter_suggestions (
    run_id BIGINT NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    series VARCHAR,
    collateral_usd DOUBLE,
    liquidation_bonus_bps BIGINT,
    current_lt_bps BIGINT,
    current_ltv_bps BIGINT,
    tail_move DOUBLE,
    suggested_lt_bps BIGINT,
    suggested_ltv_bps BIGINT,
    lt_change_bps BIGINT,
    ltv_change_bps BIGINT,
    horizon_hours BIGINT,
    confidence DOUBLE
);

CREATE TABLE IF NOT EXISTS optimise_plans (
    run_id BIGINT NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    target_health DOUBLE NOT NULL,
    health_before DOUBLE,
    health_after DOUBLE,
    feasible BOOLEAN NOT NULL,
    cost_usd DOUBLE,
    actions BIGINT,
    reason VARCHAR
);

CREATE TABLE IF NOT EXISTS optimise_actions (
    run_id BIGINT NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    kind VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    amount HUGEINT NOT NULL,
    amount_tokens DOUBLE,
    amount_usd DOUBLE,
    cost_usd DOUBLE,
    into_symbol VARCHAR,
    received HUGEINT,
    received_tokens DOUBLE
);

CREATE TABLE IF NOT EXISTS threshold_sensitivity (
    run_id BIGINT NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    shift_bps BIGINT NOT NULL,
    liquidatable_wallets BIGINT,
    liquidatable_collateral_usd DOUBLE,
    liquidatable_wallet_debt_usd DOUBLE,
    liquidatable_debt_usd DOUBLE,
    bad_debt_usd DOUBLE,
    liquidatable_wallets_change BIGINT,
    liquidatable_collateral_usd_change DOUBLE,
    liquidatable_wallet_debt_usd_change DOUBLE,
    liquidatable_debt_usd_change DOUBLE,
    bad_debt_usd_change DOUBLE
);

CREATE TABLE IF NOT EXISTS cascade_rounds (
    run_id BIGINT NOT NULL,
    round BIGINT NOT NULL,
    liquidatable_wallets BIGINT,
    new_liquidatable_wallets BIGINT,
    liquidated_debt_usd DOUBLE,
    cumulative_liquidated_debt_usd DOUBLE,
    collateral_sold_usd DOUBLE,
    amplification DOUBLE
);

CREATE TABLE IF NOT EXISTS cascade_prices (
    run_id BIGINT NOT NULL,
    round BIGINT NOT NULL,
    symbol VARCHAR NOT NULL,
    cumulative_sold_usd DOUBLE,
    impact DOUBLE,
    multiplier DOUBLE
);

-- chainrisk risk contagion: rounds of a base-asset shock through the asset graph and bad debt (run_id of risk_runs).
CREATE TABLE IF NOT EXISTS contagion_rounds (
    run_id BIGINT NOT NULL,
    round INTEGER NOT NULL,
    protocol VARCHAR NOT NULL,
    new_liquidatable_wallets BIGINT NOT NULL,
    new_liquidatable_debt_usd DOUBLE NOT NULL,
    new_bad_debt_usd DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS contagion_wallets (
    run_id BIGINT NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    round INTEGER NOT NULL,
    channel VARCHAR NOT NULL,
    health_factor_before DOUBLE,
    health_factor DOUBLE,
    debt_usd DOUBLE,
    bad_debt_usd DOUBLE
);

CREATE TABLE IF NOT EXISTS contagion_prices (
    run_id BIGINT NOT NULL,
    round INTEGER NOT NULL,
    asset VARCHAR NOT NULL,
    symbol VARCHAR,
    multiplier DOUBLE NOT NULL,
    rate_factor DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS contagion_markets (
    run_id BIGINT NOT NULL,
    round INTEGER NOT NULL,
    protocol VARCHAR NOT NULL,
    market VARCHAR NOT NULL,
    bad_debt_units DOUBLE NOT NULL,
    supply_units DOUBLE NOT NULL,
    supply_loss DOUBLE NOT NULL
);
"""

MIGRATIONS: dict[int, list[str]] = {}
