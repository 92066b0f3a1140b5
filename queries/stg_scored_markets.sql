-- Every market's latest scored block: what "latest" means in each *_latest view and mart.
--
-- Grain: one row per (protocol, chain_id, market).
-- Key columns:
--   market_label      the market's name for people (stg_market_labels: 'wstETH/WETH 94.5%', 'Aave V3 0x9a67…7508')
--   source            the contract that was indexed (Aave: the PoolAddressesProvider; Morpho: the singleton)
--   block_number      latest scored snapshot block; block_timestamp in seconds, block_time as TIMESTAMPTZ
--   wallets           wallets with a position in the market at that block
--   scored_at         when the score run wrote it (TIMESTAMPTZ)
-- Reads: scored_markets, stg_market_labels.
WITH scored AS (
    SELECT * FROM scored_markets
),

labels AS (
    SELECT protocol, chain_id, market, market_label FROM stg_market_labels
),

final AS (
    SELECT
        s.protocol,
        s.chain_id,
        s.market,
        l.market_label,
        s.source,
        s.block_number,
        s.block_timestamp,
        to_timestamp(s.block_timestamp) AS block_time,
        s.wallets,
        s.scored_at
    FROM scored AS s
    LEFT JOIN labels AS l USING (protocol, chain_id, market)
)

SELECT * FROM final
