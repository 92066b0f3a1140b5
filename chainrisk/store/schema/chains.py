"""Schema of collateralization chains (`chainrisk chains`), per chain and snapshot block: asset_links,
collateral_chains, wallet_exposure, wallet_lookthrough, base_asset_exposure."""

from __future__ import annotations

#: Collateralization-chain tables: one row set per (chain_id, block_number), over every market of the chain.
CHAIN_TABLES = ("asset_links", "collateral_chains", "wallet_exposure", "wallet_lookthrough", "base_asset_exposure")

DDL = """
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
    long_amount HUGEINT,
    short_amount HUGEINT,
    net_amount HUGEINT,
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
    collateral_amount HUGEINT,
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
"""

#: Version 8: a base asset's decimals may be unknown (a token without decimals(), optional in ERC-20), NULL then.
#: Version 19: an exact sum that could reach 38 digits (an odd token's amounts: polars' Int128 sum wraps around,
#: DuckDB's HUGEINT stops at 2^127) is unknown, NULL then (lookthrough._exact_sum).
MIGRATIONS: dict[int, list[str]] = {
    8: [
        f"ALTER TABLE {table} ALTER COLUMN base_decimals DROP NOT NULL"
        for table in ("collateral_chains", "wallet_exposure")
    ],
    19: [
        *(
            f"ALTER TABLE wallet_exposure ALTER COLUMN {column} DROP NOT NULL"
            for column in ("long_amount", "short_amount", "net_amount")
        ),
        "ALTER TABLE base_asset_exposure ALTER COLUMN collateral_amount DROP NOT NULL",
    ],
}
