"""Schema of the risk models (`chainrisk risk ...`): one risk_runs row per command, every result row keyed by its
run_id: replays, VaR and its backtest, parameter suggestions, optimisation, threshold sensitivity, cascades and
contagion."""

from __future__ import annotations

#: What joins a risk run's notes in `risk_runs.notes` (one text column): the jobs join with it, the pages split on it.
NOTES_SEPARATOR = "; "

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

-- How often a VaR run's scenarios lose anything at all, per scope, measure and horizon (a $0 VaR in plain words).
CREATE TABLE IF NOT EXISTS var_odds (
    run_id BIGINT NOT NULL,
    scope VARCHAR NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT,
    market VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    horizon_hours BIGINT NOT NULL,
    loss_probability DOUBLE,
    worst_usd DOUBLE,
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

-- The rest of each parameter_suggestions row (same run, market and symbol): bonus, ceilings, concentration, cap,
-- what the backtest gave the current and the proposed parameters, and the reasons in words (chainrisk.risk.advice).
CREATE TABLE IF NOT EXISTS parameter_advice (
    run_id BIGINT NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    suggested_bonus_bps BIGINT,
    bonus_change_bps BIGINT,
    bonus_floor_bps DOUBLE,
    lt_ceiling_bps BIGINT,
    ltv_ceiling_bps BIGINT,
    lag_move DOUBLE,
    ordinary_move DOUBLE,
    ordinary_confidence DOUBLE,
    venue VARCHAR,
    depth_usd_at_2pct DOUBLE,
    top_wallets BIGINT,
    top_wallets_collateral_usd DOUBLE,
    concentration_slippage DOUBLE,
    oracle_lag_hours BIGINT,
    liquidation_delay_hours BIGINT,
    max_change_bps BIGINT,
    extreme_drop DOUBLE,
    extreme_liquidation_usd DOUBLE,
    sellable_within_bonus_usd DOUBLE,
    cap_multiple DOUBLE,
    cap_usd DOUBLE,
    newly_liquidatable_wallets BIGINT,
    newly_liquidatable_debt_usd DOUBLE,
    bad_debt_current_usd DOUBLE,
    bad_debt_proposed_usd DOUBLE,
    liquidated_debt_current_usd DOUBLE,
    liquidated_debt_proposed_usd DOUBLE,
    liquidations_current BIGINT,
    liquidations_proposed BIGINT,
    reasons VARCHAR
);

-- Each advice row's backtest per historical window, current and proposed parameters (symbol 'all': a market's or,
-- with market 'all', the whole book's with every proposal at once).
CREATE TABLE IF NOT EXISTS parameter_backtest (
    run_id BIGINT NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT,
    market VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    window_name VARCHAR NOT NULL,
    variant VARCHAR NOT NULL,
    lt_bps BIGINT,
    ltv_bps BIGINT,
    bonus_bps BIGINT,
    liquidations BIGINT,
    liquidated_wallets BIGINT,
    liquidated_debt_usd DOUBLE,
    bad_debt_usd DOUBLE,
    skipped BIGINT
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

-- chainrisk risk optimise: how far each collateral's base can fall before its first holder in a market is liquidatable,
-- and the fall at which that market and collateral's threshold_sensitivity rows were read (chainrisk.risk.distance).
CREATE TABLE IF NOT EXISTS liquidation_distance (
    run_id BIGINT NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    base_symbol VARCHAR,
    holders BIGINT,
    holders_debt_usd DOUBLE,
    first_drop DOUBLE,
    first_wallet VARCHAR,
    first_wallet_debt_usd DOUBLE,
    median_drop DOUBLE,
    holders_within_10pct BIGINT,
    debt_within_10pct_usd DOUBLE,
    sensitivity_drop DOUBLE,
    liquidatable_now BIGINT
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

MIGRATIONS: dict[int, list[str]] = {
    #: 15: how many of a collateral's holders are liquidatable already (the first liquidation is now the first of the
    #: others); NULL in earlier runs' rows, whose first_drop counted them.
    15: ["ALTER TABLE liquidation_distance ADD COLUMN IF NOT EXISTS liquidatable_now BIGINT"]
}
