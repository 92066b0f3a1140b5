-- Aave V3 liquidations: each LiquidationCall with the debt it covered, the collateral it paid the liquidator and the
-- deficit it wrote off, in the shared liquidation columns (chainrisk.protocols.adapter.LIQUIDATION_COLUMNS).
--
-- Grain: one row per LiquidationCall (chain_id, market, block_number, log_index).
-- Key columns:
--   wallet, liquidator     the borrower liquidated and the caller
--   debt_repaid            exact debtToCover the pool took (actualDebtToLiquidate), in debt_asset's smallest unit
--   collateral_seized      exact liquidatedCollateralAmount: what the liquidator received; the treasury's liquidation
--                          fee, taken from the borrower on top, is not in the event
--   bad_debt_tokens        the debt asset's deficit the same transaction burned for the wallet (3.3+ DeficitCreated;
--                          NULL when none: before 3.3, or collateral left); the wallet's other debts' deficits are in
--                          stg_aave_v3_events
-- Reads: stg_aave_v3_events.
WITH events AS (
    SELECT * FROM stg_aave_v3_events
),

deficits AS (
    SELECT chain_id, market, tx_hash, wallet, amount_asset, sum(amount_tokens) AS deficit_tokens
    FROM events
    WHERE event = 'DeficitCreated'
    GROUP BY chain_id, market, tx_hash, wallet, amount_asset
),

final AS (
    SELECT
        'aave-v3' AS protocol,
        e.chain_id,
        e.source,
        e.market,
        e.wallet,
        e.counterparty AS liquidator,
        e.block_number,
        e.tx_hash,
        e.log_index,
        e.debt_asset,
        e.debt_symbol,
        e.amount AS debt_repaid,
        e.amount_tokens AS debt_repaid_tokens,
        e.asset AS collateral_asset,
        e.symbol AS collateral_symbol,
        e.liquidated_collateral_amount AS collateral_seized,
        e.liquidated_collateral_tokens AS collateral_seized_tokens,
        d.deficit_tokens AS bad_debt_tokens
    FROM events AS e
    LEFT JOIN deficits AS d
        ON d.chain_id = e.chain_id AND d.market = e.market AND d.tx_hash = e.tx_hash AND d.wallet = e.wallet
        AND d.amount_asset = e.debt_asset
    WHERE e.event = 'LiquidationCall'
)

SELECT * FROM final
