-- Every wallet on a chain across every protocol and market it uses, at the latest snapshots.
--
-- Grain: one row per (chain_id, wallet).
-- Key columns:
--   protocols (VARCHAR[]) and protocols_text (the same joined by ', ')
--   markets, markets_with_debt, liquidatable_markets   counts
--   collateral_usd, debt_usd, borrowing_power_usd, liquidatable_debt_usd, bad_debt_usd   USD
--   worst_health_factor    lowest HF over its markets (markets liquidate separately), with worst_protocol and
--                          worst_market; NULL without debt
-- Reads: wallet_portfolio.
WITH portfolio AS (
    SELECT * FROM wallet_portfolio
),

final AS (
    SELECT
        chain_id,
        wallet,
        protocols,
        array_to_string(protocols, ', ') AS protocols_text,
        cross_protocol,
        markets,
        markets_with_debt,
        collateral_usd,
        debt_usd,
        borrowing_power_usd,
        worst_health_factor,
        worst_protocol,
        worst_market,
        liquidatable_markets,
        liquidatable_debt_usd,
        bad_debt_usd,
        block_number,
        block_timestamp,
        to_timestamp(block_timestamp) AS block_time
    FROM portfolio
)

SELECT * FROM final
