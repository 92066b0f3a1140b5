-- Scored health of every wallet in every market at its latest scored block (the history: stg_wallet_health_history).
--
-- Grain: one row per (protocol, chain_id, market, wallet, block_number); one block per market (its latest).
-- Key columns:
--   market_label             the market's name for people (stg_market_labels)
--   collateral_usd, debt_usd, borrowing_power_usd       USD
--   health_factor            NULL without debt; liquidatable below 1 (the engine's, equal to the protocol's own)
--   health_factor_wad        the protocol's exact health factor (1e18 = 1.0; NULL without debt or before schema 7)
--   is_borrower              the wallet has debt in the market (health_factor is not NULL)
--   distance_to_liquidation  uniform drop of all non-stable collateral that brings HF to 1 (fraction; 0 when
--                            liquidatable now, NULL when no such drop liquidates the wallet)
--   liquidatable_debt_usd, seizable_collateral_usd, bad_debt_usd   USD
--   block_timestamp in seconds, block_time as TIMESTAMPTZ
-- Reads: wallet_risk, stg_market_labels.
WITH risk AS (
    SELECT * FROM wallet_risk
),

labels AS (
    SELECT protocol, chain_id, market, market_label FROM stg_market_labels
),

final AS (
    SELECT
        r.protocol,
        r.chain_id,
        r.market,
        -- a market met only in old blocks, of a protocol without a market table, has no label: its id then
        coalesce(l.market_label, r.market) AS market_label,
        r.wallet,
        r.block_number,
        r.block_timestamp,
        to_timestamp(r.block_timestamp) AS block_time,
        r.collateral_usd,
        r.debt_usd,
        r.health_factor,
        r.health_factor_wad,
        r.health_factor IS NOT NULL AS is_borrower,
        r.ltv_used,
        r.borrowing_power_usd,
        r.distance_to_liquidation,
        r.liquidatable,
        r.close_factor,
        r.liquidatable_debt_usd,
        r.seizable_collateral_usd,
        r.bad_debt_usd,
        r.liquidation_threshold_bps,
        r.ltv_bps
    FROM risk AS r
    LEFT JOIN labels AS l USING (protocol, chain_id, market)
)

SELECT * FROM final
