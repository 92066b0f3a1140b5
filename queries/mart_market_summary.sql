-- One line per market: size, borrowers, what is liquidatable now and the weakest health factor.
--
-- Grain: one row per (protocol, chain_id, market), at its latest scored block.
-- Key columns:
--   wallets, borrowers, liquidatable_wallets   counts (borrowers: wallets with debt)
--   collateral_usd, debt_usd, liquidatable_debt_usd (what liquidators may repay now), seizable_collateral_usd,
--   bad_debt_usd (debt the collateral cannot cover)   USD
--   min_health_factor      the weakest borrower's HF
--   block_number, block_time (TIMESTAMPTZ), scored_at
-- Reads: stg_scored_markets, stg_wallet_risk_latest.
WITH markets AS (
    SELECT * FROM stg_scored_markets
),

wallets AS (
    SELECT * FROM stg_wallet_risk_latest
),

totals AS (
    SELECT
        protocol,
        chain_id,
        market,
        count(*) AS wallets,
        count(*) FILTER (WHERE is_borrower) AS borrowers,
        sum(collateral_usd) AS collateral_usd,
        sum(debt_usd) AS debt_usd,
        count(*) FILTER (WHERE liquidatable) AS liquidatable_wallets,
        sum(liquidatable_debt_usd) AS liquidatable_debt_usd,
        sum(seizable_collateral_usd) AS seizable_collateral_usd,
        sum(bad_debt_usd) AS bad_debt_usd,
        min(health_factor) AS min_health_factor
    FROM wallets
    GROUP BY protocol, chain_id, market
),

final AS (
    SELECT
        m.protocol,
        m.chain_id,
        m.market,
        m.market_label,
        m.source,
        coalesce(t.wallets, 0) AS wallets,
        coalesce(t.borrowers, 0) AS borrowers,
        coalesce(t.collateral_usd, 0) AS collateral_usd,
        coalesce(t.debt_usd, 0) AS debt_usd,
        coalesce(t.liquidatable_wallets, 0) AS liquidatable_wallets,
        coalesce(t.liquidatable_debt_usd, 0) AS liquidatable_debt_usd,
        coalesce(t.seizable_collateral_usd, 0) AS seizable_collateral_usd,
        coalesce(t.bad_debt_usd, 0) AS bad_debt_usd,
        t.min_health_factor,
        m.block_number,
        m.block_timestamp,
        m.block_time,
        m.scored_at
    FROM markets AS m
    LEFT JOIN totals AS t USING (protocol, chain_id, market)
)

SELECT * FROM final
