-- Each market over time: its collateral, debt, bad debt, borrowers and liquidatable wallets in every bucket of the
-- one health history, summed over its wallets (the cold days' sums are stored with their files: no second history).
--
-- Grain: one row per (protocol, chain_id, market, bucket): an hour, a day beyond the hourly window ([storage]
-- hourly_days), as in mart_wallet_health_history.
-- Key columns:
--   bucket_time (TIMESTAMPTZ), bucket_start (s), bucket_seconds   the bucket
--   block_number, block_time   the bucket's last sampled block
--   wallets, borrowers     wallets sampled in the bucket; those with debt at their last sample
--   collateral_usd, debt_usd, bad_debt_usd   USD, the sum of each wallet's last sample in the bucket (NULL where the
--                          market has no USD price)
--   liquidatable_wallets   wallets liquidatable at their last sample
--   wallets_liquidatable_in_bucket   wallets liquidatable at any sample of the bucket (a dip that recovered counts)
--   min_health_factor      the weakest borrower's last health factor; lowest_health_factor: the lowest of any sample
--   samples                scores and credit samples summed over the wallets
--   mixed_blocks           true when the wallets' last samples are not all of one block (a wallet that left the
--                          market, or was sampled by `credit history` alone, within the bucket): the sums then add
--                          figures of different blocks; a bucket whose every run sampled the whole market is false
--   is_latest              the bucket's last sampled block is the market's latest scored block (its figures are
--                          then mart_market_summary's when mixed_blocks is false)
-- Reads: stg_market_health_buckets, stg_market_labels, stg_scored_markets.
WITH buckets AS (
    -- The sums per bucket: the hot days' summed at read, the cold days' as written with their files (a chart of a
    -- market's 90 days reads a few rows per bucket, not its wallets').
    SELECT
        * EXCLUDE (last_block, last_timestamp),
        last_block AS block_number,
        last_timestamp AS block_timestamp
    FROM stg_market_health_buckets
),

labels AS (
    SELECT protocol, chain_id, market, market_label FROM stg_market_labels
),

latest AS (
    SELECT protocol, chain_id, market, block_number AS latest_block FROM stg_scored_markets
),

final AS (
    SELECT
        b.protocol,
        b.chain_id,
        b.market,
        coalesce(lb.market_label, b.market) AS market_label,
        to_timestamp(b.bucket_start) AS bucket_time,
        b.bucket_start,
        b.bucket_seconds,
        b.block_number,
        b.block_timestamp,
        to_timestamp(b.block_timestamp) AS block_time,
        b.wallets,
        b.borrowers,
        b.collateral_usd,
        b.debt_usd,
        b.bad_debt_usd,
        b.liquidatable_wallets,
        b.wallets_liquidatable_in_bucket,
        b.min_health_factor,
        b.lowest_health_factor,
        b.samples,
        b.earliest_last_block <> b.block_number AS mixed_blocks,
        coalesce(l.latest_block = b.block_number, false) AS is_latest
    FROM buckets AS b
    LEFT JOIN latest AS l USING (protocol, chain_id, market)
    LEFT JOIN labels AS lb USING (protocol, chain_id, market)
)

SELECT * FROM final
