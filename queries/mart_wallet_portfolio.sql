-- Every wallet across protocols and markets: totals, and its weakest market (where it would be liquidated first).
--
-- Grain: one row per (chain_id, wallet), at the latest snapshots.
-- Key columns:
--   protocols (VARCHAR[]), protocols_text (joined by ', '), cross_protocol (more than one protocol)
--   markets, markets_with_debt, liquidatable_markets   counts
--   collateral_usd, debt_usd, borrowing_power_usd, liquidatable_debt_usd, bad_debt_usd   USD
--   worst_health_factor, worst_protocol, worst_market   the lowest HF over its markets (not blended: markets
--                          liquidate separately); NULL without debt
-- Reads: stg_wallet_portfolio.
WITH portfolio AS (
    SELECT * FROM stg_wallet_portfolio
),

final AS (
    SELECT
        chain_id,
        wallet,
        protocols,
        protocols_text,
        cross_protocol,
        markets,
        markets_with_debt,
        collateral_usd,
        debt_usd,
        borrowing_power_usd,
        worst_health_factor,
        worst_protocol,
        worst_market,
        CASE WHEN length(worst_market) > 42 THEN left(worst_market, 10) || '…' ELSE worst_market END
            AS worst_market_label,
        liquidatable_markets,
        liquidatable_debt_usd,
        bad_debt_usd,
        block_number,
        block_timestamp,
        block_time
    FROM portfolio
)

SELECT * FROM final
