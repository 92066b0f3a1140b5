-- Every market's latest scored block: what "latest" means in each *_latest view and mart.
--
-- Grain: one row per (protocol, chain_id, market).
-- Key columns:
--   market_label      market shortened for display (10 characters and '…' when longer than an address)
--   source            the contract that was indexed (Aave: the PoolAddressesProvider; Morpho: the singleton)
--   block_number      latest scored snapshot block; block_timestamp in seconds, block_time as TIMESTAMPTZ
--   wallets           wallets with a position in the market at that block
--   scored_at         when the score run wrote it (TIMESTAMPTZ)
-- Reads: scored_markets.
WITH scored AS (
    SELECT * FROM scored_markets
),

final AS (
    SELECT
        protocol,
        chain_id,
        market,
        CASE WHEN length(market) > 42 THEN left(market, 10) || '…' ELSE market END AS market_label,
        source,
        block_number,
        block_timestamp,
        to_timestamp(block_timestamp) AS block_time,
        wallets,
        scored_at
    FROM scored
)

SELECT * FROM final
