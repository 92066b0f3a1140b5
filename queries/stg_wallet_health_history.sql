-- Every wallet's health in every market over time, from the one bucketed history (scores and credit samples).
--
-- Grain: one row per (protocol, chain_id, market, wallet, bucket_start): an hour, a day beyond the hourly window
-- ([storage] hourly_days, default 90).
-- Key columns:
--   market_label           the market's name for people (stg_market_labels)
--   bucket_start (s), bucket_time (TIMESTAMPTZ), bucket_seconds   the bucket: 3600 or 86400 seconds
--   samples                scores and credit samples folded into the bucket; liquidatable_samples of them under 1
--   first_block, last_block, last_timestamp   the bucket's first and last sampled block
--   health_factor, health_factor_wad, collateral_usd, debt_usd, bad_debt_usd, liquidatable   the last sample's
--                          (health_factor NULL without debt; health_factor_wad the protocol's exact one, 1e18 = 1.0)
--   health_factor_min, health_factor_max, health_factor_min_block   the bucket's extremes: a dip is never averaged
-- Reads: wallet_health_history, stg_market_labels.
WITH history AS (
    SELECT * FROM wallet_health_history
),

labels AS (
    SELECT protocol, chain_id, market, market_label FROM stg_market_labels
),

final AS (
    SELECT
        h.protocol,
        h.chain_id,
        h.market,
        coalesce(l.market_label, h.market) AS market_label,
        h.wallet,
        h.bucket_start,
        to_timestamp(h.bucket_start) AS bucket_time,
        h.bucket_seconds,
        h.samples,
        h.first_block,
        h.last_block,
        h.last_timestamp,
        h.health_factor,
        h.health_factor_wad,
        h.health_factor_min,
        h.health_factor_max,
        h.health_factor_min_block,
        h.collateral_usd,
        h.debt_usd,
        h.borrowing_power_usd,
        h.bad_debt_usd,
        h.liquidatable,
        h.liquidatable_samples,
        h.liquidation_threshold_bps,
        h.ltv_bps
    FROM history AS h
    LEFT JOIN labels AS l USING (protocol, chain_id, market)
)

SELECT * FROM final
