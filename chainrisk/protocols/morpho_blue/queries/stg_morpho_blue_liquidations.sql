-- Morpho Blue liquidations: each Liquidate with the loan assets repaid, the collateral seized and the bad debt
-- socialised, in the shared liquidation columns (chainrisk.protocols.adapter.LIQUIDATION_COLUMNS).
--
-- Grain: one row per Liquidate (chain_id, source, block_number, log_index).
-- Key columns:
--   wallet, liquidator     the borrower and the caller
--   debt_repaid            exact repaidAssets, in the loan token's smallest unit; the borrower's debt fell by that
--                          and bad_debt_tokens
--   collateral_seized      exact seizedAssets, in the collateral token's smallest unit
--   bad_debt_tokens        badDebtAssets in whole loan tokens: debt written off and socialised to the suppliers
-- Reads: stg_morpho_blue_events, raw_morpho_blue_markets.
WITH events AS (
    SELECT * FROM stg_morpho_blue_events
),

collateral AS (
    SELECT chain_id, market AS source, market_id, arg_max(collateral_symbol, block_number) AS collateral_symbol
    FROM raw_morpho_blue_markets
    GROUP BY chain_id, market, market_id
),

final AS (
    SELECT
        'morpho-blue' AS protocol,
        e.chain_id,
        e.source,
        e.market,
        e.wallet,
        e.caller AS liquidator,
        true AS keeper_pays,
        NULL::HUGEINT AS keeper_reward_debt,
        NULL::DOUBLE AS keeper_reward_debt_tokens,
        NULL::HUGEINT AS keeper_reward_collateral,
        NULL::DOUBLE AS keeper_reward_collateral_tokens,
        -- Morpho Blue takes no fee on a liquidation (src/Morpho.sol `liquidate`).
        0::HUGEINT AS protocol_fee_debt,
        0.0::DOUBLE AS protocol_fee_debt_tokens,
        0::HUGEINT AS protocol_fee_collateral,
        0.0::DOUBLE AS protocol_fee_collateral_tokens,
        e.block_number,
        e.tx_hash,
        e.log_index,
        e.loan_token AS debt_asset,
        e.assets_symbol AS debt_symbol,
        e.assets AS debt_repaid,
        e.assets_tokens AS debt_repaid_tokens,
        e.collateral_token AS collateral_asset,
        c.collateral_symbol,
        e.seized_assets AS collateral_seized,
        e.seized_tokens AS collateral_seized_tokens,
        e.bad_debt_tokens,
        TRUE AS bad_debt_known
    FROM events AS e
    LEFT JOIN collateral AS c ON c.chain_id = e.chain_id AND c.source = e.source AND c.market_id = e.market
    WHERE e.event = 'Liquidate'
)

SELECT * FROM final
