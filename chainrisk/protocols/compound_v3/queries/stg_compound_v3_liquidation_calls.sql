-- Compound V3 (Comet) liquidation calls a keeper can send now: per account isLiquidatable, what absorb would do at
-- the latest snapshot (raw_compound_v3_absorbs: Comet.absorbInternal's arithmetic), in the shared liquidation-call
-- columns (chainrisk.protocols.adapter.LIQUIDATION_CALL_COLUMNS). The absorber pays nothing and receives nothing but
-- liquidator points: the protocol takes the collateral (sold later through buyCollateral).
--
-- Grain: one row per absorbable account's debt and one per collateral it holds (absorb takes them all), at the
-- Comet's latest snapshot.
-- Key columns:
--   debt_repaid            exact: the account's debt at present value, cancelled by absorb (NULL on collateral rows)
--   collateral_seized      exact: each collateral balance absorb takes (NULL on the debt row)
--   bad_debt_tokens        the debt the collateral's credited value (times its liquidation factor) does not cover,
--                          paid by the reserves (the debt row)
--   blocked                'absorb paused' when the pause guardian paused it (pauseFlags bit 3), else NULL
-- Reads: stg_compound_v3_absorbs_at_snapshot, raw_compound_v3_collateral, raw_compound_v3_markets, stg_compound_v3_tokens.
WITH absorbs AS (
    SELECT r.*
    FROM stg_compound_v3_absorbs_at_snapshot AS r
    WHERE r.liquidatable
),

base AS (
    SELECT
        t.chain_id,
        t.market,
        t.asset AS base_token,
        t.symbol AS base_symbol,
        t.decimals AS base_decimals,
        -- CometCore's PAUSE_ABSORB_OFFSET: bit 3 of pauseFlags
        (m.pause_flags // 8) % 2 = 1 AS absorb_paused
    FROM stg_compound_v3_tokens AS t
    LEFT JOIN (
        SELECT chain_id, market, arg_max(pause_flags, block_number) AS pause_flags
        FROM raw_compound_v3_markets
        GROUP BY chain_id, market
    ) AS m ON m.chain_id = t.chain_id AND m.market = t.market
    WHERE t.is_base
),

assets AS (
    SELECT chain_id, market, asset, symbol, decimals FROM stg_compound_v3_tokens WHERE NOT is_base
),

debt_rows AS (
    SELECT
        a.chain_id,
        a.market,
        a.wallet,
        a.block_number,
        b.base_token AS debt_asset,
        b.base_symbol AS debt_symbol,
        a.debt AS debt_repaid,
        a.debt::DOUBLE / pow(10, b.base_decimals) AS debt_repaid_tokens,
        NULL::VARCHAR AS collateral_asset,
        NULL::VARCHAR AS collateral_symbol,
        NULL::HUGEINT AS collateral_seized,
        NULL::DOUBLE AS collateral_seized_tokens,
        nullif(a.shortfall, 0)::DOUBLE / pow(10, b.base_decimals) AS bad_debt_tokens,
        a.health_factor_wad::DOUBLE / 1e18 AS health_factor,
        b.absorb_paused
    FROM absorbs AS a
    LEFT JOIN base AS b ON b.chain_id = a.chain_id AND b.market = a.market
),

collateral_rows AS (
    SELECT
        a.chain_id,
        a.market,
        a.wallet,
        a.block_number,
        NULL::VARCHAR AS debt_asset,
        NULL::VARCHAR AS debt_symbol,
        NULL::HUGEINT AS debt_repaid,
        NULL::DOUBLE AS debt_repaid_tokens,
        c.asset AS collateral_asset,
        s.symbol AS collateral_symbol,
        c.balance AS collateral_seized,
        c.balance::DOUBLE / pow(10, s.decimals) AS collateral_seized_tokens,
        NULL::DOUBLE AS bad_debt_tokens,
        a.health_factor_wad::DOUBLE / 1e18 AS health_factor,
        b.absorb_paused
    FROM absorbs AS a
    JOIN raw_compound_v3_collateral AS c ON c.chain_id = a.chain_id AND c.market = a.market AND c.wallet = a.wallet
    LEFT JOIN assets AS s ON s.chain_id = c.chain_id AND s.market = c.market AND s.asset = c.asset
    LEFT JOIN base AS b ON b.chain_id = a.chain_id AND b.market = a.market
    WHERE c.balance > 0
),

final AS (
    SELECT
        'compound-v3' AS protocol,
        r.chain_id,
        r.market AS source,
        r.market,
        r.wallet,
        r.block_number,
        'absorb' AS call,
        false AS keeper_pays,
        r.* EXCLUDE (chain_id, market, wallet, block_number, absorb_paused),
        NULL::HUGEINT AS keeper_reward_debt,
        NULL::DOUBLE AS keeper_reward_debt_tokens,
        NULL::HUGEINT AS keeper_reward_collateral,
        NULL::DOUBLE AS keeper_reward_collateral_tokens,
        -- Absorb takes all of the collateral and credits the account its liquidationFactor share of the value: the
        -- rest is the protocol's in value (less the store-front discount buyers get), no fee in tokens: unknown.
        NULL::HUGEINT AS protocol_fee_debt,
        NULL::DOUBLE AS protocol_fee_debt_tokens,
        NULL::HUGEINT AS protocol_fee_collateral,
        NULL::DOUBLE AS protocol_fee_collateral_tokens,
        CASE WHEN r.absorb_paused THEN 'absorb paused' END AS blocked
    FROM (SELECT * FROM debt_rows UNION ALL BY NAME SELECT * FROM collateral_rows) AS r
)

SELECT * FROM final
