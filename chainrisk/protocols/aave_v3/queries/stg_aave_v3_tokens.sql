-- Every Aave V3 reserve's token as its latest snapshot names it: the symbol and decimals the events and liquidation
-- views turn exact amounts into whole tokens with.
--
-- Grain: one row per (chain_id, market, asset).
-- Key columns:
--   market                 the PoolAddressesProvider indexed; asset: the reserve's underlying token
--   symbol, decimals       as of the market's latest snapshot that read the reserve
-- Reads: raw_aave_v3_reserves.
WITH reserves AS (
    SELECT * FROM raw_aave_v3_reserves
),

final AS (
    SELECT
        chain_id,
        market,
        asset,
        arg_max(symbol, block_number) AS symbol,
        arg_max(decimals, block_number) AS decimals
    FROM reserves
    GROUP BY chain_id, market, asset
)

SELECT * FROM final
