"""Schema of what indexing writes: schema_version, sync_state (per indexed contract: watermarks and the latest
snapshot) and the shared contract tables every adapter fills: positions, wallet_health, markets and data_quality
(README "The SQL contract"); with the migrations that changed them."""

from __future__ import annotations

#: Snapshot tables shared by every protocol: their rows are replaced per protocol as well as per block.
CONTRACT_TABLES = ("positions", "wallet_health", "markets", "data_quality")

DDL = """
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
    price_fixed BOOLEAN,
    liquidation_recovery_wad HUGEINT,
    full_close_below_base HUGEINT,
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
"""

#: Version 1 files (Aave only) gain the columns every adapter now fills (version 2): the indexed contract
#: (`source`), the exact base values and the health rule; USD becomes nullable (a Morpho market whose tokens have no
#: USD price still has exact health). Version 4: the exact liquidation bonus (Morpho's incentive factor is not a
#: whole number of bps), filled for stored rows from what they hold. Version 7: whether a liquidation takes the whole
#: position at once (Compound V3's absorb; NULL reads as no), and why a wallet under health 1 cannot be liquidated
#: now (a grace period, an L2 sequencer down; NULL: it can, or it is healthy) and until when. Version 8: a token's
#: decimals may be unknown (one without decimals(), optional in ERC-20): NULL then, its amounts still exact. Version
#: 14: whether the protocol fixes a position's price (`price_fixed`: Maker/Sky's dai debt at par, Liquity's LUSD debt
#: at one dollar), set for the stored latest snapshot of those two protocols' debt rows (every later snapshot sets it).
#: Version 16: the share of a collateral's value the protocol recovers towards the debt when it is all sold
#: (`liquidation_recovery_wad`; NULL: 1 / bonus, what a liquidator repays for it). Stored Maker/Sky rows get 1: chop
#: is the Vow's penalty on top of the debt, not a keeper's cut. Stored Compound V3 rows stay NULL (the engine reads
#: liquidationFactor for them, as before); every later snapshot carries Comet's store-front price.
MIGRATIONS: dict[int, list[str]] = {
    # Filled by the next snapshot of an Aave V3.3+ market (until then its wallets keep the 50 % close factor).
    20: ["ALTER TABLE positions ADD COLUMN IF NOT EXISTS full_close_below_base HUGEINT"],
    16: [
        "ALTER TABLE positions ADD COLUMN IF NOT EXISTS liquidation_recovery_wad HUGEINT",
        "UPDATE positions SET liquidation_recovery_wad = 1000000000000000000 WHERE protocol = 'maker'",
    ],
    14: [
        "ALTER TABLE positions ADD COLUMN IF NOT EXISTS price_fixed BOOLEAN",
        "UPDATE positions SET price_fixed = is_borrowing WHERE protocol IN ('maker', 'liquity-v1')",
    ],
    8: ["ALTER TABLE positions ALTER COLUMN decimals DROP NOT NULL"],
    7: [
        "ALTER TABLE positions ADD COLUMN IF NOT EXISTS liquidation_takes_all BOOLEAN",
        "ALTER TABLE wallet_health ADD COLUMN IF NOT EXISTS liquidation_blocked VARCHAR",
        "ALTER TABLE wallet_health ADD COLUMN IF NOT EXISTS liquidation_blocked_until BIGINT",
    ],
    2: [
        *(
            f"ALTER TABLE positions ADD COLUMN IF NOT EXISTS {column}"
            for column in (
                "source VARCHAR",
                "price_scale HUGEINT",
                "base_currency_usd DOUBLE",
                "collateral_base HUGEINT",
                "debt_base HUGEINT",
                "liquidation_threshold_wad HUGEINT",
                "health_rule VARCHAR",
                "close_factor DOUBLE",
                "full_close_below_health DOUBLE",
            )
        ),
        "ALTER TABLE wallet_health ADD COLUMN IF NOT EXISTS source VARCHAR",
        *(
            f"ALTER TABLE positions ALTER COLUMN {c} DROP NOT NULL"
            for c in ("price_usd", "supplied_usd", "collateral_usd", "debt_usd")
        ),
        *(f"ALTER TABLE wallet_health ALTER COLUMN {c} DROP NOT NULL" for c in ("collateral_usd", "debt_usd")),
        """UPDATE positions SET source = market, price_scale = pow(10, decimals)::HUGEINT,
            base_currency_usd = price_usd / price,
            collateral_base = collateral_amount * price // pow(10, decimals)::HUGEINT,
            debt_base = debt_amount * price // pow(10, decimals)::HUGEINT,
            liquidation_threshold_wad = liquidation_threshold_bps::HUGEINT * 100000000000000,
            health_rule = 'average-threshold', close_factor = 0.5, full_close_below_health = 0.95
           WHERE source IS NULL AND protocol = 'aave-v3'""",
        "UPDATE wallet_health SET source = market WHERE source IS NULL",
    ],
    4: [
        "ALTER TABLE positions ADD COLUMN IF NOT EXISTS liquidation_bonus_wad HUGEINT",
        """UPDATE positions SET liquidation_bonus_wad = CASE
            WHEN health_rule = 'per-position' AND liquidation_threshold_wad > 0
              -- Morpho Blue: min(1.15, 1 / (1 - 0.3 (1 - lltv))) in WAD (wDivDown of wMulDown), ConstantsLib.
              THEN least(1150000000000000000::HUGEINT, (10::HUGEINT ** 36)::HUGEINT // (1000000000000000000::HUGEINT
                   - 300000000000000000::HUGEINT * (1000000000000000000::HUGEINT - liquidation_threshold_wad)
                   // 1000000000000000000::HUGEINT))
            ELSE liquidation_bonus_bps::HUGEINT * 100000000000000 END
           WHERE liquidation_bonus_wad IS NULL""",
    ],
}
