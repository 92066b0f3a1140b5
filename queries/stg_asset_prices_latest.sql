-- Each asset's USD price in each market at the market's latest snapshot, as its positions carry it.
--
-- Grain: one row per (protocol, chain_id, market, asset) that some latest position holds with a USD price.
-- Key columns:
--   price_usd              USD per whole token (the market's oracle price, through its USD route)
--   block_number           the snapshot's block
-- Reads: stg_positions_latest.
WITH positions AS (
    SELECT * FROM stg_positions_latest WHERE price_usd IS NOT NULL
),

final AS (
    SELECT protocol, chain_id, market, asset, any_value(price_usd) AS price_usd, max(block_number) AS block_number
    FROM positions
    GROUP BY protocol, chain_id, market, asset
)

SELECT * FROM final
