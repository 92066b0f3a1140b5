-- Liquidation prices of every position at its market's latest scored block.
--
-- Grain: one row per (protocol, chain_id, market, wallet, asset).
-- Key columns:
--   collateral_usd, debt_usd, price_usd   USD now
--   liquidation_price_usd                 the asset's USD price (all others held) at which the wallet's HF is 1
--   liquidation_price_change              move from today's price to it, as a fraction; _pct the same × 100
--   liquidated_when_price                 'falls below' (collateral) or 'rises above' (debt)
--   price_group                           correlated group (ETH and LSTs, BTC wrappers, USD stablecoins)
-- Reads: position_risk, stg_scored_markets.
WITH risk AS (
    SELECT * FROM position_risk
),

latest AS (
    SELECT protocol, chain_id, market, block_number, market_label FROM stg_scored_markets
),

final AS (
    SELECT
        r.protocol,
        r.chain_id,
        r.market,
        l.market_label,
        r.wallet,
        r.asset,
        r.symbol,
        r.price_group,
        r.block_number,
        r.block_timestamp,
        to_timestamp(r.block_timestamp) AS block_time,
        r.collateral_usd,
        r.debt_usd,
        r.price_usd,
        r.liquidated_when_price,
        r.liquidation_price,
        r.liquidation_price_usd,
        r.liquidation_price_change,
        r.liquidation_price_change * 100 AS liquidation_price_change_pct
    FROM risk AS r
    JOIN latest AS l USING (protocol, chain_id, market, block_number)
)

SELECT * FROM final
