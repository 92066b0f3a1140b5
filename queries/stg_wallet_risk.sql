-- Scored health of every wallet in every market, at every scored block (history; see stg_wallet_risk_latest).
--
-- Grain: one row per (protocol, chain_id, market, wallet, block_number).
-- Key columns:
--   collateral_usd, debt_usd, borrowing_power_usd       USD
--   health_factor            NULL without debt; liquidatable below 1
--   is_borrower              the wallet has debt in the market (health_factor is not NULL)
--   distance_to_liquidation  uniform drop of all non-stable collateral that brings HF to 1 (fraction)
--   liquidatable_debt_usd, seizable_collateral_usd, bad_debt_usd   USD
--   block_timestamp in seconds, block_time as TIMESTAMPTZ
-- Reads: wallet_risk.
WITH risk AS (
    SELECT * FROM wallet_risk
),

final AS (
    SELECT
        protocol,
        chain_id,
        market,
        CASE WHEN length(market) > 42 THEN left(market, 10) || '…' ELSE market END AS market_label,
        wallet,
        block_number,
        block_timestamp,
        to_timestamp(block_timestamp) AS block_time,
        collateral_usd,
        debt_usd,
        health_factor,
        health_factor IS NOT NULL AS is_borrower,
        ltv_used,
        borrowing_power_usd,
        distance_to_liquidation,
        liquidatable,
        close_factor,
        liquidatable_debt_usd,
        seizable_collateral_usd,
        bad_debt_usd,
        liquidation_threshold_bps,
        ltv_bps
    FROM risk
)

SELECT * FROM final
