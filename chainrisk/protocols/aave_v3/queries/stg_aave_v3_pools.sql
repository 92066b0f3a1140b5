-- Aave V3 reserves as pools (chainrisk.protocols.adapter.POOL_COLUMNS): supply, debt and cap usage at the market's
-- latest snapshot, for the utilization and cap alerts and the Markets page (stg_lending_pools stacks every protocol's).
--
-- Grain: one row per (chain_id, market, pool), pool the reserve's asset, at the market's latest snapshot.
-- Key columns:
--   supplied_tokens, debt_tokens   total_supplied and total_debt (variable plus stable) in whole tokens; _usd in USD
--   utilization_pct        total debt over total supplied, percent (stg_aave_v3_reserves.utilization_pct)
--   supply_cap_tokens, supply_cap_used_pct   the supply cap in whole tokens and what the pool's supply check holds
--                          against it (supply_cap_used: scaled supply plus the treasury's accrued share), percent
--   supply_room_tokens     supply_cap_headroom in whole tokens: the most a supply may add at the block
--   debt_cap_tokens, debt_cap_used_pct       the borrow cap in whole tokens and total debt over it, percent
--                          (NULL without a cap: a cap of 0); debt_room_tokens borrow_cap_headroom in whole tokens
-- The exact integers: stg_aave_v3_reserves.
-- Reads: stg_aave_v3_reserves.
WITH reserves AS (
    SELECT *
    FROM stg_aave_v3_reserves
    WHERE is_latest
),

final AS (
    SELECT
        protocol,
        chain_id,
        market,
        asset AS pool,
        'reserve' AS pool_kind,
        symbol,
        block_number,
        total_supplied_tokens AS supplied_tokens,
        total_debt_tokens AS debt_tokens,
        total_supplied_usd AS supplied_usd,
        total_debt_usd AS debt_usd,
        utilization_pct,
        nullif(supply_cap_tokens, 0)::DOUBLE AS supply_cap_tokens,
        supply_cap_used_pct,
        supply_cap_headroom_tokens AS supply_room_tokens,
        nullif(borrow_cap_tokens, 0)::DOUBLE AS debt_cap_tokens,
        borrow_cap_used_pct AS debt_cap_used_pct,
        borrow_cap_headroom_tokens AS debt_room_tokens
    FROM reserves
)

SELECT * FROM final
