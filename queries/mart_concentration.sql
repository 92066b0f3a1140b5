-- How concentrated each market's debt is: top borrowers' shares and the Herfindahl index.
--
-- Grain: one row per (protocol, chain_id, market) scored, at its latest block (markets without debt: 0
-- borrowers, NULL shares).
-- Key columns:
--   borrowers              wallets with debt in the market
--   debt_usd               the market's debt, USD; largest_debt_usd the largest borrower's
--   top1_share, top10_share   share of the debt held by the largest / ten largest borrowers (0..1)
--   hhi                    Herfindahl-Hirschman index of debt shares (0..1; 1 = one borrower)
--   effective_borrowers    1 / hhi: the number of equal borrowers with the same concentration
--   largest_borrower       the wallet with the most debt (ties: lowest address)
-- Reads: stg_scored_markets, stg_wallet_risk_latest.
WITH markets AS (
    SELECT protocol, chain_id, market, market_label, block_number FROM stg_scored_markets
),

borrowers AS (
    SELECT protocol, chain_id, market, wallet, debt_usd FROM stg_wallet_risk_latest WHERE is_borrower
),

ranked AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY protocol, chain_id, market ORDER BY debt_usd DESC, wallet) AS debt_rank,
        debt_usd / nullif(sum(debt_usd) OVER (PARTITION BY protocol, chain_id, market), 0) AS debt_share
    FROM borrowers
),

per_market AS (
    SELECT
        protocol,
        chain_id,
        market,
        count(*) AS borrowers,
        sum(debt_usd) AS debt_usd,
        max(debt_usd) AS largest_debt_usd,
        max(debt_share) FILTER (WHERE debt_rank = 1) AS top1_share,
        -- sums of float shares can land a hair above 1
        least(sum(debt_share) FILTER (WHERE debt_rank <= 10), 1.0) AS top10_share,
        least(sum(debt_share * debt_share), 1.0) AS hhi,
        any_value(wallet) FILTER (WHERE debt_rank = 1) AS largest_borrower
    FROM ranked
    GROUP BY protocol, chain_id, market
),

final AS (
    SELECT
        m.protocol,
        m.chain_id,
        m.market,
        m.market_label,
        coalesce(c.borrowers, 0) AS borrowers,
        coalesce(c.debt_usd, 0) AS debt_usd,
        c.top1_share,
        c.top10_share,
        c.hhi,
        1 / nullif(c.hhi, 0) AS effective_borrowers,
        c.largest_borrower,
        c.largest_debt_usd,
        m.block_number
    FROM markets AS m
    LEFT JOIN per_market AS c USING (protocol, chain_id, market)
)

SELECT * FROM final
