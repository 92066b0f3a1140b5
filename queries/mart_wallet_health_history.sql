-- Each wallet's health in each market over time: how it moved towards or away from liquidation, every bucket kept.
--
-- Grain: one row per (protocol, chain_id, market, wallet, bucket): an hour, a day once older than the hourly window.
-- Key columns:
--   block_number, block_timestamp (s), block_time (TIMESTAMPTZ)   the bucket's last sample
--   health_factor          the last sample's; NULL without debt; liquidatable below 1
--   health_factor_min, health_factor_max   the bucket's lowest and highest (a dip within it is kept)
--   samples                scores and credit samples folded into the bucket; bucket_time, bucket_seconds
--   collateral_usd, debt_usd, bad_debt_usd   USD, the last sample's
--   is_latest              the bucket holds the market's latest scored block
-- Reads: stg_wallet_health_history, stg_scored_markets.
WITH history AS (
    SELECT * FROM stg_wallet_health_history
),

latest AS (
    SELECT protocol, chain_id, market, block_number, true AS is_latest FROM stg_scored_markets
),

final AS (
    SELECT
        h.protocol,
        h.chain_id,
        h.market,
        h.market_label,
        h.wallet,
        h.last_block AS block_number,
        h.last_timestamp AS block_timestamp,
        to_timestamp(h.last_timestamp) AS block_time,
        h.bucket_time,
        h.bucket_seconds,
        h.samples,
        h.health_factor,
        h.health_factor_min,
        h.health_factor_max,
        h.collateral_usd,
        h.debt_usd,
        h.bad_debt_usd,
        h.liquidatable,
        coalesce(l.is_latest, false) AS is_latest
    FROM history AS h
    LEFT JOIN latest AS l ON l.protocol = h.protocol AND l.chain_id = h.chain_id AND l.market = h.market
        AND l.block_number = h.last_block
)

SELECT * FROM final
