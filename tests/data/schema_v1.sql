-- chainrisk DuckDB schema version 1 (as released before the adapter interface), for the migration test.
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);

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

CREATE TABLE IF NOT EXISTS positions (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    asset VARCHAR NOT NULL,
    symbol VARCHAR,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    decimals INTEGER NOT NULL,
    supplied_amount HUGEINT NOT NULL,
    collateral_amount HUGEINT NOT NULL,
    debt_amount HUGEINT NOT NULL,
    used_as_collateral BOOLEAN NOT NULL,
    is_borrowing BOOLEAN NOT NULL,
    price HUGEINT NOT NULL,
    price_usd DOUBLE NOT NULL,
    supplied_usd DOUBLE NOT NULL,
    collateral_usd DOUBLE NOT NULL,
    debt_usd DOUBLE NOT NULL,
    ltv_bps INTEGER NOT NULL,
    liquidation_threshold_bps INTEGER NOT NULL,
    liquidation_bonus_bps INTEGER NOT NULL,
    emode_category INTEGER NOT NULL,
    PRIMARY KEY (protocol, chain_id, market, block_number, wallet, asset)
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
    collateral_usd DOUBLE NOT NULL,
    debt_usd DOUBLE NOT NULL,
    price_usd DOUBLE NOT NULL,
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

CREATE TABLE IF NOT EXISTS wallet_health (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_timestamp BIGINT NOT NULL,
    collateral_usd DOUBLE NOT NULL,
    debt_usd DOUBLE NOT NULL,
    health_factor DOUBLE,
    health_factor_wad HUGEINT,
    total_collateral_base HUGEINT NOT NULL,
    total_debt_base HUGEINT NOT NULL,
    available_borrows_base HUGEINT NOT NULL,
    liquidation_threshold_bps INTEGER NOT NULL,
    ltv_bps INTEGER NOT NULL,
    emode_category INTEGER NOT NULL,
    PRIMARY KEY (protocol, chain_id, market, block_number, wallet)
);
