-- Every Morpho Blue market's parameters and tokens as the singleton's snapshots read them: the symbols and decimals
-- the events and liquidation views turn exact amounts into whole tokens with.
--
-- Grain: one row per (chain_id, market, market_id) some snapshot read.
-- Key columns:
--   market, market_id      the singleton indexed and the market id
--   loan_token, collateral_token, oracle, irm, lltv (WAD)   as created (they never change)
--   loan_symbol, loan_decimals, collateral_symbol, collateral_decimals   as of the latest snapshot that read them
-- Reads: raw_morpho_blue_markets.
WITH markets AS (
    SELECT * FROM raw_morpho_blue_markets
),

final AS (
    SELECT
        chain_id,
        market,
        market_id,
        any_value(loan_token) AS loan_token,
        any_value(collateral_token) AS collateral_token,
        any_value(oracle) AS oracle,
        any_value(irm) AS irm,
        any_value(lltv) AS lltv,
        arg_max(loan_symbol, block_number) AS loan_symbol,
        arg_max(loan_decimals, block_number) AS loan_decimals,
        arg_max(collateral_symbol, block_number) AS collateral_symbol,
        arg_max(collateral_decimals, block_number) AS collateral_decimals
    FROM markets
    GROUP BY chain_id, market, market_id
)

SELECT * FROM final
