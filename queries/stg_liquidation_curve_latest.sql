-- Collateral at risk against price drops, per market and for the whole chain (market 'all'), latest block.
--
-- Grain: one row per (chain_id, market, axis_kind, axis, drop_fraction).
-- Key columns:
--   market_label           the market's name for people (stg_market_labels); 'all' for the chain
--   axis_kind, axis        what is shocked: 'asset' (one symbol), 'group' (ETH, BTC, ...), 'all_crypto', or
--                          'depeg' (a stablecoin, or all of them)
--   drop_fraction          price drop as a fraction (0..0.9; depeg 0..0.2); drop_pct the same × 100
--   liquidatable_collateral_usd, liquidatable_debt_usd, bad_debt_usd   USD after the drop
--   liquidatable_wallets   wallets under HF 1 after the drop
-- A market's rows are those at its latest scored block (a market no longer scored drops out); the chain-wide
-- 'all' rows are those at the chain's highest block.
-- Reads: liquidation_curve, stg_scored_markets.
WITH curve AS (
    SELECT * FROM liquidation_curve
),

scored_blocks AS (
    SELECT DISTINCT chain_id, market, block_number, market_label FROM stg_scored_markets
),

chain_blocks AS (
    SELECT chain_id, 'all' AS market, max(block_number) AS block_number, 'all' AS market_label
    FROM curve
    WHERE market = 'all'
    GROUP BY chain_id
),

latest AS (
    SELECT * FROM scored_blocks
    UNION ALL
    SELECT * FROM chain_blocks
),

final AS (
    SELECT
        c.chain_id,
        c.market,
        l.market_label,
        c.block_number,
        c.block_timestamp,
        c.axis_kind,
        c.axis,
        c."drop" AS drop_fraction,
        c."drop" * 100 AS drop_pct,
        c.liquidatable_collateral_usd,
        c.liquidatable_debt_usd,
        c.bad_debt_usd,
        c.liquidatable_wallets
    FROM curve AS c
    JOIN latest AS l USING (chain_id, market, block_number)
)

SELECT * FROM final
