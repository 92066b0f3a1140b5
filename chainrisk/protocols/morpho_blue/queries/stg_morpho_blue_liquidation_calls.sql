-- Morpho Blue liquidation calls a keeper can send now: per unhealthy borrower, what the largest Morpho.liquidate
-- call would do at the latest snapshot (raw_morpho_blue_liquidations: every borrow share where the collateral they
-- buy at the incentive is there, else every unit of collateral), in the shared liquidation-call columns
-- (chainrisk.protocols.adapter.LIQUIDATION_CALL_COLUMNS).
--
-- Grain: one row per (chain_id, source, market, wallet) at the singleton's latest snapshot.
-- Key columns:
--   source, market         the Morpho Blue singleton and the market id
--   debt_repaid            exact: repaidAssets, what the keeper pays (repaidShares rounded up to assets)
--   collateral_seized      exact: seizedAssets, what the keeper receives
--   bad_debt_tokens        badDebtAssets, socialised to the market's suppliers, when no collateral is left
--   blocked                why liquidate reverts (no oracle price), NULL when it goes through
-- Reads: stg_morpho_blue_liquidations_at_snapshot, stg_morpho_blue_market_tokens.
WITH calls AS (
    SELECT * FROM stg_morpho_blue_liquidations_at_snapshot
),

markets AS (
    SELECT * FROM stg_morpho_blue_market_tokens
),

final AS (
    SELECT
        'morpho-blue' AS protocol,
        c.chain_id,
        c.market AS source,
        c.market_id AS market,
        c.wallet,
        c.block_number,
        'liquidate' AS call,
        true AS keeper_pays,
        m.loan_token AS debt_asset,
        m.loan_symbol AS debt_symbol,
        c.repaid_assets AS debt_repaid,
        c.repaid_assets::DOUBLE / pow(10, m.loan_decimals) AS debt_repaid_tokens,
        m.collateral_token AS collateral_asset,
        m.collateral_symbol,
        c.seized_assets AS collateral_seized,
        c.seized_assets::DOUBLE / pow(10, m.collateral_decimals) AS collateral_seized_tokens,
        nullif(c.bad_debt_assets, 0)::DOUBLE / pow(10, m.loan_decimals) AS bad_debt_tokens,
        NULL::HUGEINT AS keeper_reward_debt,
        NULL::DOUBLE AS keeper_reward_debt_tokens,
        NULL::HUGEINT AS keeper_reward_collateral,
        NULL::DOUBLE AS keeper_reward_collateral_tokens,
        -- Morpho Blue takes no fee on a liquidation (src/Morpho.sol `liquidate`): the keeper gets all it seizes.
        CASE WHEN c.error IS NULL THEN 0::HUGEINT END AS protocol_fee_debt,
        CASE WHEN c.error IS NULL THEN 0.0::DOUBLE END AS protocol_fee_debt_tokens,
        CASE WHEN c.error IS NULL THEN 0::HUGEINT END AS protocol_fee_collateral,
        CASE WHEN c.error IS NULL THEN 0.0::DOUBLE END AS protocol_fee_collateral_tokens,
        c.health_factor_wad::DOUBLE / 1e18 AS health_factor,
        c.error AS blocked
    FROM calls AS c
    LEFT JOIN markets AS m ON m.chain_id = c.chain_id AND m.market = c.market AND m.market_id = c.market_id
)

SELECT * FROM final
