-- Morpho Blue markets as pools (chainrisk.protocols.adapter.POOL_COLUMNS): each market is one pool of its loan
-- token, at its source's latest snapshot, for the utilization alerts and the Markets page (stg_lending_pools).
--
-- Grain: one row per (chain_id, market), the market id, at its source's latest snapshot.
-- Key columns:
--   pool                   the market id (the market is the pool); symbol the loan token's
--   supplied_tokens, debt_tokens   the totals accrued to the block, whole loan tokens; _usd in USD
--   utilization_pct        borrowed over supplied, percent
--   supply_cap_*, debt_cap_*   NULL: Morpho Blue caps nothing (a vault's caps on its allocation are the vault's)
-- The exact integers: stg_morpho_blue_markets.
-- Reads: stg_morpho_blue_markets.
WITH markets AS (
    SELECT *
    FROM stg_morpho_blue_markets
    WHERE is_latest
),

final AS (
    SELECT
        protocol,
        chain_id,
        market,
        market AS pool,
        'market' AS pool_kind,
        loan_symbol AS symbol,
        block_number,
        supply_tokens AS supplied_tokens,
        borrow_tokens AS debt_tokens,
        supply_usd AS supplied_usd,
        borrow_usd AS debt_usd,
        utilization_pct,
        NULL::DOUBLE AS supply_cap_tokens,
        NULL::DOUBLE AS supply_cap_used_pct,
        NULL::DOUBLE AS supply_room_tokens,
        NULL::DOUBLE AS debt_cap_tokens,
        NULL::DOUBLE AS debt_cap_used_pct,
        NULL::DOUBLE AS debt_room_tokens
    FROM markets
)

SELECT * FROM final
