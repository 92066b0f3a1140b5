-- Aave V3 liquidation calls a keeper can send now: per borrower under health 1 and (collateral, debt) pair, what
-- liquidationCall(collateral, debt, user, type(uint256).max, false) would do at the latest snapshot, by the pool
-- version's rules (raw_aave_v3_liquidations), in the shared liquidation-call columns
-- (chainrisk.protocols.adapter.LIQUIDATION_CALL_COLUMNS).
--
-- Grain: one row per (chain_id, market, wallet, collateral_asset, debt_asset) at the market's latest snapshot.
-- Key columns:
--   debt_repaid            exact: the debt the call covers, what the keeper pays (NULL when it reverts)
--   collateral_seized      exact: the collateral the keeper receives (the treasury's fee on top is not in it)
--   protocol_fee_collateral   exact: the treasury's liquidation fee the call moves from the borrower, in the collateral
--                          asset (capped at the scaled aTokens the borrower has left, as the pool caps it); NULL when
--                          the call reverts
--   bad_debt_tokens        the deficit the call books (3.3+: the account's debts left when no collateral remains)
--   blocked                the pool's error when the call reverts (a grace period, the sequencer, MustNotLeaveDust
--                          with the largest debtToCover that goes through), NULL when it goes through
-- Reads: stg_aave_v3_liquidations_at_snapshot, stg_aave_v3_tokens.
WITH calls AS (
    SELECT * FROM stg_aave_v3_liquidations_at_snapshot
),

reserves AS (
    SELECT * FROM stg_aave_v3_tokens
),

final AS (
    SELECT
        'aave-v3' AS protocol,
        c.chain_id,
        c.market AS source,
        c.market,
        c.wallet,
        c.block_number,
        'liquidationCall' AS call,
        true AS keeper_pays,
        c.debt_asset,
        d.symbol AS debt_symbol,
        c.debt_repaid,
        c.debt_repaid::DOUBLE / pow(10, d.decimals) AS debt_repaid_tokens,
        c.collateral_asset,
        k.symbol AS collateral_symbol,
        c.collateral_seized,
        c.collateral_seized::DOUBLE / pow(10, k.decimals) AS collateral_seized_tokens,
        nullif(c.deficit_created, 0)::DOUBLE / pow(10, d.decimals) AS bad_debt_tokens,
        NULL::HUGEINT AS keeper_reward_debt,
        NULL::DOUBLE AS keeper_reward_debt_tokens,
        NULL::HUGEINT AS keeper_reward_collateral,
        NULL::DOUBLE AS keeper_reward_collateral_tokens,
        CASE WHEN c.error IS NULL THEN 0::HUGEINT END AS protocol_fee_debt,  -- the fee is in the collateral
        CASE WHEN c.error IS NULL THEN 0.0::DOUBLE END AS protocol_fee_debt_tokens,
        CASE WHEN c.error IS NULL THEN c.protocol_fee END AS protocol_fee_collateral,
        CASE WHEN c.error IS NULL THEN c.protocol_fee::DOUBLE / pow(10, k.decimals) END
            AS protocol_fee_collateral_tokens,
        c.health_factor_wad::DOUBLE / 1e18 AS health_factor,
        CASE
            WHEN c.error IS NOT NULL AND c.allowed_debt_to_cover > 0 THEN
                c.error || ': a debtToCover up to ' || (c.allowed_debt_to_cover::DOUBLE / pow(10, d.decimals))::VARCHAR
                || ' ' || coalesce(d.symbol, c.debt_asset) || ' goes through'
            ELSE c.error
        END AS blocked
    FROM calls AS c
    LEFT JOIN reserves AS d ON d.chain_id = c.chain_id AND d.market = c.market AND d.asset = c.debt_asset
    LEFT JOIN reserves AS k ON k.chain_id = c.chain_id AND k.market = c.market AND k.asset = c.collateral_asset
)

SELECT * FROM final
