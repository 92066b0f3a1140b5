-- Every pool a market lends from or caps, across protocols, with how close it is to its limits: debt over supply
-- (lenders cannot withdraw near 100 %) and the share of each cap used (supply or borrowing refused at 100 %).
--
-- Grain: one row per (chain_id, market, pool) at the market's latest snapshot (stg_lending_pools).
-- Key columns:
--   market_label           the market's name for people (stg_market_labels); chain_name
--   pool, pool_kind, symbol   an Aave reserve's asset (reserve), a Morpho market (market), a Comet's base (base) or
--                          collateral (collateral), a Maker ilk (ilk)
--   supplied_tokens, debt_tokens, supplied_usd, debt_usd   whole tokens and USD (NULL where the pool has no side)
--   utilization_pct, supply_cap_used_pct, debt_cap_used_pct   percent (NULL where the pool has no such limit)
--   supply_cap_tokens, debt_cap_tokens   the caps in whole tokens (Aave's borrow cap, Maker's line)
--   supply_room_tokens, debt_room_tokens   the most a supply or a borrow may add now, whole tokens (negative: the cap
--                          is exceeded by that much; NULL without a cap)
--   nearest_limit, nearest_limit_pct   the limit with the highest figure of the three ('utilization', 'supply cap',
--                          'debt cap') and that figure; NULL for a pool with none
-- Reads: stg_lending_pools, stg_market_labels.
WITH pools AS (
    SELECT * FROM stg_lending_pools
),

labels AS (
    SELECT protocol, chain_id, market, market_label, chain_name FROM stg_market_labels
),

limits AS (
    SELECT
        p.*,
        greatest(p.utilization_pct, p.supply_cap_used_pct, p.debt_cap_used_pct) AS nearest_limit_pct
    FROM pools AS p
),

final AS (
    SELECT
        l.protocol,
        l.chain_id,
        coalesce(n.chain_name, l.chain_id::VARCHAR) AS chain_name,
        l.market,
        coalesce(n.market_label, l.market) AS market_label,
        l.pool,
        l.pool_kind,
        l.symbol,
        l.block_number,
        l.supplied_tokens,
        l.debt_tokens,
        l.supplied_usd,
        l.debt_usd,
        l.utilization_pct,
        l.supply_cap_tokens,
        l.supply_cap_used_pct,
        l.supply_room_tokens,
        l.debt_cap_tokens,
        l.debt_cap_used_pct,
        l.debt_room_tokens,
        CASE l.nearest_limit_pct
            WHEN l.utilization_pct THEN 'utilization'
            WHEN l.supply_cap_used_pct THEN 'supply cap'
            WHEN l.debt_cap_used_pct THEN 'debt cap'
        END AS nearest_limit,
        l.nearest_limit_pct
    FROM limits AS l
    LEFT JOIN labels AS n USING (protocol, chain_id, market)
)

SELECT * FROM final
