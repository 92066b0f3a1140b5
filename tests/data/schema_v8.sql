-- The schema a version 8 file has (chainrisk before schema 9: every snapshot kept per block), with Aave V3's raw
-- tables, as that version wrote it (tests/test_store_migration.py builds a v8 file from it).
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS sync_state (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    from_block BIGINT NOT NULL,
    events_to_block BIGINT,
    events_to_block_hash VARCHAR,
    snapshot_block BIGINT,
    snapshot_block_hash VARCHAR,
    snapshot_timestamp BIGINT,
    PRIMARY KEY (protocol, chain_id, market)
);

CREATE TABLE IF NOT EXISTS positions (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    asset VARCHAR NOT NULL,
    symbol VARCHAR,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    decimals INTEGER,
    supplied_amount HUGEINT NOT NULL,
    collateral_amount HUGEINT NOT NULL,
    debt_amount HUGEINT NOT NULL,
    used_as_collateral BOOLEAN NOT NULL,
    is_borrowing BOOLEAN NOT NULL,
    price HUGEINT NOT NULL,
    price_usd DOUBLE,
    supplied_usd DOUBLE,
    collateral_usd DOUBLE,
    debt_usd DOUBLE,
    ltv_bps INTEGER NOT NULL,
    liquidation_threshold_bps INTEGER NOT NULL,
    liquidation_bonus_bps INTEGER NOT NULL,
    emode_category INTEGER NOT NULL,
    source VARCHAR,
    price_scale HUGEINT,
    base_currency_usd DOUBLE,
    collateral_base HUGEINT,
    debt_base HUGEINT,
    liquidation_threshold_wad HUGEINT,
    health_rule VARCHAR,
    close_factor DOUBLE,
    full_close_below_health DOUBLE,
    liquidation_bonus_wad HUGEINT,
    liquidation_takes_all BOOLEAN,
    PRIMARY KEY (protocol, chain_id, market, block_number, wallet, asset)
);

CREATE TABLE IF NOT EXISTS wallet_health (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    collateral_usd DOUBLE,
    debt_usd DOUBLE,
    health_factor DOUBLE,
    health_factor_wad HUGEINT,
    total_collateral_base HUGEINT NOT NULL,
    total_debt_base HUGEINT NOT NULL,
    available_borrows_base HUGEINT NOT NULL,
    liquidation_threshold_bps INTEGER NOT NULL,
    ltv_bps INTEGER NOT NULL,
    emode_category INTEGER NOT NULL,
    source VARCHAR,
    liquidation_blocked VARCHAR,
    liquidation_blocked_until BIGINT,
    PRIMARY KEY (protocol, chain_id, market, block_number, wallet)
);

CREATE TABLE IF NOT EXISTS markets (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    name VARCHAR,
    parameters VARCHAR,
    loan_asset VARCHAR,
    bad_debt_rule VARCHAR NOT NULL,
    supply_amount HUGEINT,
    debt_amount HUGEINT,
    reserves_amount HUGEINT,
    PRIMARY KEY (protocol, chain_id, market, block_number)
);

-- Odd contracts a snapshot met (chainrisk.protocols.quality.KINDS): one row per market, contract and problem.
CREATE TABLE IF NOT EXISTS data_quality (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    subject VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    detail VARCHAR NOT NULL,
    unknown VARCHAR,
    PRIMARY KEY (protocol, chain_id, source, block_number, market, subject, kind)
);


CREATE TABLE IF NOT EXISTS wallet_risk (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    collateral_usd DOUBLE NOT NULL,
    debt_usd DOUBLE NOT NULL,
    health_factor DOUBLE,
    ltv_used DOUBLE,
    borrowing_power_usd DOUBLE NOT NULL,
    distance_to_liquidation DOUBLE,
    liquidatable BOOLEAN NOT NULL,
    close_factor DOUBLE NOT NULL,
    liquidatable_debt_usd DOUBLE NOT NULL,
    seizable_collateral_usd DOUBLE NOT NULL,
    bad_debt_usd DOUBLE NOT NULL,
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
    sensitivity_drop DOUBLE
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


-- Collateralization chains (chainrisk.chains), per chain and snapshot block: the asset graph read on chain, and
-- every end owner's positions looked through it to base assets.
CREATE TABLE IF NOT EXISTS asset_links (
    chain_id BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    asset VARCHAR NOT NULL,
    symbol VARCHAR,
    decimals INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    underlying VARCHAR NOT NULL,
    underlying_symbol VARCHAR,
    underlying_decimals INTEGER NOT NULL,
    rate_num HUGEINT NOT NULL,
    rate_den HUGEINT NOT NULL,
    rate DOUBLE NOT NULL,
    convert_function VARCHAR,
    abi_name VARCHAR,
    detected_by VARCHAR NOT NULL,
    pool VARCHAR,
    index_ray HUGEINT,
    total_assets HUGEINT,
    total_supply HUGEINT,
    PRIMARY KEY (chain_id, block_number, asset)
);

CREATE TABLE IF NOT EXISTS collateral_chains (
    chain_id BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    protocol VARCHAR NOT NULL,
    market VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    asset VARCHAR NOT NULL,
    symbol VARCHAR,
    amount HUGEINT NOT NULL,
    path VARCHAR NOT NULL,
    path_symbols VARCHAR[] NOT NULL,
    hops VARCHAR[] NOT NULL,
    depth INTEGER NOT NULL,
    base_asset VARCHAR NOT NULL,
    base_symbol VARCHAR,
    base_decimals INTEGER,
    base_amount HUGEINT NOT NULL,
    base_usd DOUBLE,
    claim_protocol VARCHAR,
    claim_market VARCHAR
);

CREATE TABLE IF NOT EXISTS wallet_exposure (
    chain_id BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    base_asset VARCHAR NOT NULL,
    base_symbol VARCHAR,
    base_decimals INTEGER,
    long_amount HUGEINT NOT NULL,
    short_amount HUGEINT NOT NULL,
    net_amount HUGEINT NOT NULL,
    long_usd DOUBLE,
    short_usd DOUBLE,
    net_usd DOUBLE,
    chained_usd DOUBLE,
    max_depth INTEGER NOT NULL,
    PRIMARY KEY (chain_id, block_number, wallet, base_asset)
);

CREATE TABLE IF NOT EXISTS wallet_lookthrough (
    chain_id BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    protocols VARCHAR[] NOT NULL,
    markets BIGINT NOT NULL,
    collateral_usd DOUBLE,
    assets_usd DOUBLE,
    debt_usd DOUBLE,
    net_usd DOUBLE,
    chained_usd DOUBLE,
    max_depth INTEGER NOT NULL,
    base_assets BIGINT NOT NULL,
    loop_group VARCHAR,
    loop_leverage DOUBLE,
    combined_health_factor DOUBLE,
    worst_health_factor DOUBLE,
    cross_protocol BOOLEAN NOT NULL,
    PRIMARY KEY (chain_id, block_number, wallet)
);

CREATE TABLE IF NOT EXISTS base_asset_exposure (
    chain_id BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    base_asset VARCHAR NOT NULL,
    base_symbol VARCHAR,
    price_usd DOUBLE,
    collateral_amount HUGEINT NOT NULL,
    collateral_usd DOUBLE,
    direct_collateral_usd DOUBLE,
    chained_collateral_usd DOUBLE,
    supply_usd DOUBLE,
    debt_usd DOUBLE,
    backed_debt_usd DOUBLE NOT NULL,
    backed_borrowers BIGINT NOT NULL,
    collateral_wallets BIGINT NOT NULL,
    max_depth INTEGER NOT NULL,
    naive_collateral_usd DOUBLE NOT NULL,
    double_counted_usd DOUBLE,
    PRIMARY KEY (chain_id, block_number, base_asset)
);


-- Credit scores (chainrisk credit ...). History sampled at past blocks (`credit history`): one credit_samples row
-- per sampled block, each wallet-market's health, holdings and look-through there, and the timestamps of the blocks
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

CREATE TABLE IF NOT EXISTS health_history (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    collateral_usd DOUBLE NOT NULL,
    debt_usd DOUBLE NOT NULL,
    health_factor DOUBLE,
    borrowing_power_usd DOUBLE NOT NULL,
    liquidation_threshold_bps INTEGER NOT NULL,
    ltv_bps INTEGER NOT NULL,
    liquidatable BOOLEAN NOT NULL,
    PRIMARY KEY (protocol, chain_id, market, block_number, wallet)
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
CREATE TABLE IF NOT EXISTS raw_aave_v3_events (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash VARCHAR NOT NULL,
    tx_hash VARCHAR NOT NULL,
    log_index INTEGER NOT NULL,
    contract VARCHAR NOT NULL,
    event VARCHAR NOT NULL,
    reserve VARCHAR,
    wallet VARCHAR NOT NULL,
    counterparty VARCHAR,
    amount HUGEINT,
    amount2 HUGEINT,
    debt_asset VARCHAR,
    code INTEGER,
    flag BOOLEAN,
    PRIMARY KEY (chain_id, market, block_number, log_index)
);

CREATE TABLE IF NOT EXISTS raw_aave_v3_reserves (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    asset VARCHAR NOT NULL,
    symbol VARCHAR,
    reserve_id INTEGER NOT NULL,
    configuration VARCHAR NOT NULL,
    ltv INTEGER, liquidation_threshold INTEGER, liquidation_bonus INTEGER, decimals INTEGER,
    active BOOLEAN, frozen BOOLEAN, paused BOOLEAN, borrowing_enabled BOOLEAN, stable_borrowing_enabled BOOLEAN,
    borrowable_in_isolation BOOLEAN, siloed_borrowing BOOLEAN, flashloan_enabled BOOLEAN,
    reserve_factor INTEGER, borrow_cap BIGINT, supply_cap BIGINT, liquidation_protocol_fee INTEGER,
    emode_category INTEGER, unbacked_mint_cap BIGINT, debt_ceiling BIGINT,
    a_token VARCHAR, variable_debt_token VARCHAR, stable_debt_token VARCHAR,
    liquidity_index HUGEINT, variable_borrow_index HUGEINT, liquidity_rate HUGEINT, variable_borrow_rate HUGEINT,
    last_update_timestamp BIGINT, normalized_income HUGEINT, normalized_variable_debt HUGEINT,
    price HUGEINT, price_usd DOUBLE, isolation_mode_total_debt HUGEINT,
    PRIMARY KEY (chain_id, market, block_number, asset)
);

CREATE TABLE IF NOT EXISTS raw_aave_v3_emode_categories (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    category_id INTEGER NOT NULL,
    ltv INTEGER, liquidation_threshold INTEGER, liquidation_bonus INTEGER,
    price_source VARCHAR, label VARCHAR, price_source_price HUGEINT,
    PRIMARY KEY (chain_id, market, block_number, category_id)
);

CREATE TABLE IF NOT EXISTS raw_aave_v3_accounts (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    user_configuration VARCHAR NOT NULL,
    emode_category INTEGER NOT NULL,
    PRIMARY KEY (chain_id, market, block_number, wallet)
);

CREATE TABLE IF NOT EXISTS raw_aave_v3_liquidations (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    collateral_asset VARCHAR NOT NULL,
    debt_asset VARCHAR NOT NULL,
    health_factor_wad HUGEINT,
    -- why liquidationCall(collateral, debt, wallet, max) reverts (Errors name), NULL when it goes through
    error VARCHAR,
    max_liquidatable_debt HUGEINT, debt_repaid HUGEINT, collateral_seized HUGEINT, protocol_fee HUGEINT,
    deficit_created HUGEINT,
    -- the largest debtToCover that goes through (the max call's repay, or below it when the max leaves dust)
    allowed_debt_to_cover HUGEINT,
    grace_until BIGINT,
    PRIMARY KEY (chain_id, market, block_number, wallet, collateral_asset, debt_asset)
);

CREATE TABLE IF NOT EXISTS raw_aave_v3_balances (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    wallet VARCHAR NOT NULL,
    asset VARCHAR NOT NULL,
    scaled_a_token HUGEINT NOT NULL,
    scaled_variable_debt HUGEINT NOT NULL,
    stable_debt HUGEINT NOT NULL,
    PRIMARY KEY (chain_id, market, block_number, wallet, asset)
);

-- Columns added with Aave 3.1-3.6 reading, as ALTERs so that a file made before them gains them on open (the DDL
-- runs whole on every index); NULL where the pool's version has no such thing.
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS pool_version VARCHAR;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS pool_revision BIGINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS virtual_accounting BOOLEAN;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS liquidation_grace_period_until BIGINT;
ALTER TABLE raw_aave_v3_reserves ADD COLUMN IF NOT EXISTS deficit HUGEINT;
ALTER TABLE raw_aave_v3_emode_categories ADD COLUMN IF NOT EXISTS collateral_bitmap VARCHAR;
ALTER TABLE raw_aave_v3_emode_categories ADD COLUMN IF NOT EXISTS borrowable_bitmap VARCHAR;
ALTER TABLE raw_aave_v3_emode_categories ADD COLUMN IF NOT EXISTS ltvzero_bitmap VARCHAR;
