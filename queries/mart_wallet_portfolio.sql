-- Every wallet across protocols and markets: totals, and its weakest market (where it would be liquidated first).
--
-- Grain: one row per (chain_id, wallet), at the latest snapshots.
-- Key columns:
--   protocols (VARCHAR[]), protocols_text (joined by ', '), cross_protocol (more than one protocol)
--   markets, markets_with_debt, liquidatable_markets   counts
--   collateral_usd, debt_usd, borrowing_power_usd, liquidatable_debt_usd, bad_debt_usd   USD
--   worst_health_factor, worst_protocol, worst_market   the lowest HF over its markets (not blended: markets
--                          liquidate separately); NULL without debt
--   worst_market_label     the weakest market's name for people (stg_market_labels)
-- Reads: stg_wallet_portfolio, stg_market_labels.
WITH portfolio AS (
    SELECT * FROM stg_wallet_portfolio
),

labels AS (
    SELECT protocol, chain_id, market, market_label FROM stg_market_labels
),

final AS (
    SELECT
        p.chain_id,
        p.wallet,
        p.protocols,
        p.protocols_text,
        p.cross_protocol,
        p.markets,
        p.markets_with_debt,
        p.collateral_usd,
        p.debt_usd,
        p.borrowing_power_usd,
        p.worst_health_factor,
        p.worst_protocol,
        p.worst_market,
        l.market_label AS worst_market_label,
        p.liquidatable_markets,
        p.liquidatable_debt_usd,
        p.bad_debt_usd,
        p.block_number,
        p.block_timestamp,
        p.block_time
    FROM portfolio AS p
    LEFT JOIN labels AS l
        ON l.protocol = p.worst_protocol AND l.chain_id = p.chain_id AND l.market = p.worst_market
)

SELECT * FROM final
