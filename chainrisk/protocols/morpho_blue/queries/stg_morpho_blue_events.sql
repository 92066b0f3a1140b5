-- Morpho Blue events (EventsLib), with amounts in whole tokens beside the exact ones.
--
-- Grain: one row per (chain_id, source, block_number, log_index).
-- Key columns:
--   source, market         the singleton (raw `market`) and the market id (raw `market_id`; NULL for
--                          SetFeeRecipient)
--   event                  CreateMarket, Supply, Withdraw, Borrow, Repay, SupplyCollateral, WithdrawCollateral,
--                          Liquidate, AccrueInterest, SetFee, SetFeeRecipient
--   wallet                 position owner (onBehalf, borrower), or the new fee recipient; caller, receiver
--   assets, shares         exact: assets / shares; Liquidate: repaid assets / shares; AccrueInterest: interest /
--                          fee shares; SetFee: the new fee (WAD)
--   assets_token, assets_symbol, assets_tokens   which token `assets` counts (collateral for Supply- and
--                          WithdrawCollateral, else the loan token; NULL for SetFee) and the amount in whole tokens
--   seized_assets / seized_tokens (collateral), bad_debt_assets / bad_debt_tokens (loan token): Liquidate
--   rate                   AccrueInterest: the per-second borrow rate (WAD)
--   loan_token, collateral_token, oracle, irm, lltv (WAD): CreateMarket, else the market's (from the snapshots)
--   action, position_key, action_asset, action_amount   the shared lending-event columns
--                          (chainrisk.protocols.adapter.LENDING_EVENT_COLUMNS): Supply, Withdraw, Borrow, Repay,
--                          Liquidate (the assets repaid), SupplyCollateral, WithdrawCollateral; NULL for the rest
-- Reads: raw_morpho_blue_events, stg_morpho_blue_market_tokens.
WITH events AS (
    SELECT * FROM raw_morpho_blue_events
),

market_tokens AS (
    SELECT * FROM stg_morpho_blue_market_tokens
),

-- A market's tokens as its CreateMarket event names them: known even before (or without) a snapshot of it.
created AS (
    SELECT chain_id, market, market_id, any_value(loan_token) AS loan_token,
        any_value(collateral_token) AS collateral_token
    FROM events
    WHERE event = 'CreateMarket'
    GROUP BY chain_id, market, market_id
),

classified AS (
    SELECT
        e.*,
        CASE
            WHEN e.event IN ('SupplyCollateral', 'WithdrawCollateral') THEN 'collateral'
            WHEN e.event IN ('Supply', 'Withdraw', 'Borrow', 'Repay', 'Liquidate', 'AccrueInterest') THEN 'loan'
        END AS assets_side
    FROM events AS e
),

final AS (
    SELECT
        'morpho-blue' AS protocol,
        e.chain_id,
        e.market AS source,
        e.market_id AS market,
        e.block_number,
        e.block_hash,
        e.tx_hash,
        e.log_index,
        e.event,
        e.wallet,
        e.caller,
        e.receiver,
        e.assets,
        e.shares,
        CASE e.assets_side WHEN 'collateral' THEN t.collateral_token WHEN 'loan' THEN t.loan_token END
            AS assets_token,
        CASE e.assets_side WHEN 'collateral' THEN t.collateral_symbol WHEN 'loan' THEN t.loan_symbol END
            AS assets_symbol,
        e.assets::DOUBLE / pow(
            10, CASE e.assets_side WHEN 'collateral' THEN t.collateral_decimals WHEN 'loan' THEN t.loan_decimals END
        ) AS assets_tokens,
        e.seized_assets,
        e.seized_assets::DOUBLE / pow(10, t.collateral_decimals) AS seized_tokens,
        e.bad_debt_assets,
        e.bad_debt_assets::DOUBLE / pow(10, t.loan_decimals) AS bad_debt_tokens,
        e.bad_debt_shares,
        e.rate,
        coalesce(e.loan_token, t.loan_token) AS loan_token,
        coalesce(e.collateral_token, t.collateral_token) AS collateral_token,
        coalesce(e.oracle, t.oracle) AS oracle,
        coalesce(e.irm, t.irm) AS irm,
        coalesce(e.lltv, t.lltv) AS lltv,
        CASE e.event
            WHEN 'Supply' THEN 'supply' WHEN 'Withdraw' THEN 'withdraw' WHEN 'Borrow' THEN 'borrow'
            WHEN 'Repay' THEN 'repay' WHEN 'Liquidate' THEN 'liquidated'
            WHEN 'SupplyCollateral' THEN 'collateral_in' WHEN 'WithdrawCollateral' THEN 'collateral_out'
        END AS action,
        e.market_id AS position_key,
        CASE e.assets_side WHEN 'collateral' THEN coalesce(c.collateral_token, t.collateral_token)
            WHEN 'loan' THEN coalesce(c.loan_token, t.loan_token) END AS action_asset,
        e.assets AS action_amount
    FROM classified AS e
    LEFT JOIN market_tokens AS t ON t.chain_id = e.chain_id AND t.market = e.market AND t.market_id = e.market_id
    LEFT JOIN created AS c ON c.chain_id = e.chain_id AND c.market = e.market AND c.market_id = e.market_id
)

SELECT * FROM final
