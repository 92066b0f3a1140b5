-- Every asset's USD price at each block `chainrisk credit history` sampled, per chain.
--
-- Grain: one row per (chain_id, asset, block_number).
-- Key columns:
--   price_usd              USD per whole token at the block (the indexed markets' oracle prices)
--   symbol, decimals       the token's
--   block_timestamp (s), block_time (TIMESTAMPTZ)   the sampled block's
-- Reads: asset_price_history.
WITH prices AS (
    SELECT * FROM asset_price_history
),

final AS (
    SELECT
        chain_id,
        asset,
        symbol,
        decimals,
        block_number,
        block_timestamp,
        to_timestamp(block_timestamp) AS block_time,
        price_usd
    FROM prices
)

SELECT * FROM final
