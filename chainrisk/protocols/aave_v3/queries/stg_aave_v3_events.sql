-- Aave V3 pool events and aToken / debt-token transfers, with amounts in whole tokens beside the exact ones.
--
-- Grain: one row per (chain_id, market, block_number, log_index).
-- Key columns:
--   event                  Supply, Withdraw, Borrow, Repay, LiquidationCall, ReserveUsedAsCollateralEnabled /
--                          Disabled, UserEModeSet, DeficitCreated (3.3+: amount = debt burnt into the reserve's
--                          deficit), or ATokenTransfer / VariableDebtTransfer / StableDebtTransfer
--   wallet                 the account whose position the event changes; counterparty: caller, repayer,
--                          liquidator or transfer sender
--   asset, symbol          the reserve (the collateral asset for LiquidationCall)
--   amount                 exact token amount, smallest unit (HUGEINT), in amount_asset (the debt asset for
--                          LiquidationCall: the debt covered); amount_tokens the same in whole tokens (DOUBLE)
--   liquidated_collateral_amount / _tokens   LiquidationCall: collateral seized, in asset
--   interest_rate_mode (Borrow), referral_code (Supply), emode_category (UserEModeSet), use_a_tokens (Repay),
--   receive_a_token (LiquidationCall)
--   source, action, position_key, action_asset, action_amount   the shared lending-event columns
--                          (chainrisk.protocols.adapter.LENDING_EVENT_COLUMNS): Supply, Withdraw, Borrow, Repay,
--                          LiquidationCall (the debt covered) by the reserve; NULL action for the rest
-- Decimals and symbols come from the reserves the indexer read.
-- Reads: raw_aave_v3_events, stg_aave_v3_tokens.
WITH events AS (
    -- Governance's logs (the configurator's and the oracle's, stored with the zero address as the wallet) are
    -- stg_aave_v3_governance_events'.
    SELECT * FROM raw_aave_v3_events WHERE wallet <> '0x0000000000000000000000000000000000000000'
),

tokens AS (
    SELECT * FROM stg_aave_v3_tokens
),

final AS (
    SELECT
        'aave-v3' AS protocol,
        e.chain_id,
        e.market,
        e.block_number,
        e.block_hash,
        e.tx_hash,
        e.log_index,
        e.contract,
        e.event,
        e.wallet,
        e.counterparty,
        e.reserve AS asset,
        reserve.symbol,
        CASE WHEN e.event = 'LiquidationCall' THEN e.debt_asset ELSE e.reserve END AS amount_asset,
        CASE WHEN e.event = 'LiquidationCall' THEN debt.symbol ELSE reserve.symbol END AS amount_symbol,
        e.amount,
        e.amount::DOUBLE / pow(10, CASE WHEN e.event = 'LiquidationCall' THEN debt.decimals ELSE reserve.decimals END)
            AS amount_tokens,
        e.debt_asset,
        debt.symbol AS debt_symbol,
        e.amount2 AS liquidated_collateral_amount,
        e.amount2::DOUBLE / pow(10, reserve.decimals) AS liquidated_collateral_tokens,
        CASE WHEN e.event = 'Borrow' THEN e.code END AS interest_rate_mode,
        CASE WHEN e.event = 'Supply' THEN e.code END AS referral_code,
        CASE WHEN e.event = 'UserEModeSet' THEN e.code END AS emode_category,
        CASE WHEN e.event = 'Repay' THEN e.flag END AS use_a_tokens,
        CASE WHEN e.event = 'LiquidationCall' THEN e.flag END AS receive_a_token,
        e.market AS source,
        CASE e.event
            WHEN 'Supply' THEN 'supply' WHEN 'Withdraw' THEN 'withdraw' WHEN 'Borrow' THEN 'borrow'
            WHEN 'Repay' THEN 'repay' WHEN 'LiquidationCall' THEN 'liquidated'
        END AS action,
        e.reserve AS position_key,
        CASE WHEN e.event = 'LiquidationCall' THEN e.debt_asset ELSE e.reserve END AS action_asset,
        e.amount AS action_amount
    FROM events AS e
    LEFT JOIN tokens AS reserve ON reserve.chain_id = e.chain_id AND reserve.market = e.market
        AND reserve.asset = e.reserve
    LEFT JOIN tokens AS debt ON debt.chain_id = e.chain_id AND debt.market = e.market
        AND debt.asset = e.debt_asset
)

SELECT * FROM final
