-- Each wallet's health in each market at every scored block: how it moved towards or away from liquidation.
--
-- Grain: one row per (protocol, chain_id, market, wallet, block_number).
-- Key columns:
--   block_number, block_timestamp (s), block_time (TIMESTAMPTZ)
--   health_factor          NULL without debt; liquidatable below 1
--   collateral_usd, debt_usd, bad_debt_usd   USD
--   is_latest              the market's latest scored block
-- Reads: stg_wallet_risk, stg_scored_markets.
WITH history AS (
    SELECT * FROM stg_wallet_risk
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
        h.block_number,
        h.block_timestamp,
        h.block_time,
        h.health_factor,
        h.collateral_usd,
        h.debt_usd,
        h.bad_debt_usd,
        h.liquidatable,
        coalesce(l.is_latest, false) AS is_latest
    FROM history AS h
    LEFT JOIN latest AS l USING (protocol, chain_id, market, block_number)
)

SELECT * FROM final
