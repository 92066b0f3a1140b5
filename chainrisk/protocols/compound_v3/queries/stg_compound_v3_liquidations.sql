-- Compound V3 (Comet) liquidations: each absorb's AbsorbDebt (the base credited to the account) and AbsorbCollateral
-- (each collateral taken into the protocol), in the shared liquidation columns
-- (chainrisk.protocols.adapter.LIQUIDATION_COLUMNS).
--
-- Grain: one row per AbsorbDebt or AbsorbCollateral (chain_id, market, block_number, log_index): an absorb takes every
-- collateral at once, so it is one debt row and one row per collateral asset, all of one transaction.
-- Key columns:
--   wallet, liquidator     the account absorbed and the absorber
--   debt_repaid            the debt the absorb cancelled, in the base token's smallest unit: AbsorbDebt's basePaidOut
--                          (the debt plus whatever the collateral was worth beyond it) less the supply credited to the
--                          account, the Transfer from the zero address logged right after it (stg_compound_v3_events'
--                          `liquidated` amount); exact when nothing was credited, else up to 2 units over (the credit's
--                          Transfer is the present value of a rounded-down principal: Comet.sol absorbInternal)
--   collateral_seized      AbsorbCollateral's collateralAbsorbed, exact in the asset's smallest unit (NULL on the debt
--                          row, as the debt is NULL on the collateral rows)
--   bad_debt_tokens        NULL: what the collateral does not cover falls on the reserves, which no event logs
-- Reads: stg_compound_v3_events, stg_compound_v3_tokens.
WITH events AS (
    SELECT * FROM stg_compound_v3_events WHERE event IN ('AbsorbDebt', 'AbsorbCollateral')
),

base AS (
    SELECT chain_id, market, asset AS base_token, symbol AS base_symbol, decimals AS base_decimals
    FROM stg_compound_v3_tokens
    WHERE is_base
),

assets AS (
    SELECT chain_id, market, asset, symbol, decimals FROM stg_compound_v3_tokens WHERE NOT is_base
),

final AS (
    SELECT
        'compound-v3' AS protocol,
        e.chain_id,
        e.source,
        e.market,
        e.wallet,
        e.counterparty AS liquidator,
        false AS keeper_pays,
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
        e.block_number,
        e.tx_hash,
        e.log_index,
        CASE WHEN e.event = 'AbsorbDebt' THEN b.base_token END AS debt_asset,
        CASE WHEN e.event = 'AbsorbDebt' THEN b.base_symbol END AS debt_symbol,
        CASE WHEN e.event = 'AbsorbDebt' THEN e.action_amount::HUGEINT END AS debt_repaid,
        CASE WHEN e.event = 'AbsorbDebt' THEN e.action_amount::DOUBLE / pow(10, b.base_decimals) END
            AS debt_repaid_tokens,
        CASE WHEN e.event = 'AbsorbCollateral' THEN e.asset END AS collateral_asset,
        CASE WHEN e.event = 'AbsorbCollateral' THEN a.symbol END AS collateral_symbol,
        CASE WHEN e.event = 'AbsorbCollateral' THEN e.amount::HUGEINT END AS collateral_seized,
        CASE WHEN e.event = 'AbsorbCollateral' THEN e.amount::DOUBLE / pow(10, a.decimals) END
            AS collateral_seized_tokens,
        NULL::DOUBLE AS bad_debt_tokens
    FROM events AS e
    LEFT JOIN base AS b ON b.chain_id = e.chain_id AND b.market = e.market
    LEFT JOIN assets AS a ON a.chain_id = e.chain_id AND a.market = e.market AND a.asset = e.asset
)

SELECT * FROM final
