-- Compound V3 (Comet) pools (chainrisk.protocols.adapter.POOL_COLUMNS): each Comet's base, lent from its supply, and
-- each collateral under its supplyCap, at the market's latest snapshot, for the utilization and cap alerts and the
-- Markets page (stg_lending_pools stacks every protocol's).
--
-- Grain: one row per (chain_id, market, pool) at the market's latest snapshot: pool the Comet itself for its base
-- (pool_kind base), the collateral's asset for each collateral (pool_kind collateral).
-- Key columns:
--   supplied_tokens, debt_tokens   base: supply and borrow at present value; collateral: totalsCollateral's
--                          totalSupplyAsset (no debt); whole tokens, _usd in USD at Comet's price
--   utilization_pct        base: Comet's getUtilization() × 100; NULL for a collateral (it is not lent)
--   supply_cap_tokens, supply_cap_used_pct   a collateral's supplyCap in whole tokens and totalSupplyAsset over it,
--                          percent (Comet refuses a supply past it: SupplyCapExceeded; a cap of 0 takes no supply:
--                          100 % where some is held, NULL where none is); supply_room_tokens the cap less
--                          totalSupplyAsset; NULL for the base
--   debt_cap_*             NULL: Comet caps no borrowing
-- The exact integers: stg_compound_v3_markets and raw_compound_v3_assets.
-- Reads: stg_compound_v3_markets, stg_compound_v3_assets_at_snapshot.
WITH bases AS (
    SELECT *
    FROM stg_compound_v3_markets
    WHERE is_latest
),

collaterals AS (
    SELECT *
    FROM stg_compound_v3_assets_at_snapshot
    WHERE is_latest
),

final AS (
    SELECT
        protocol,
        chain_id,
        market,
        market AS pool,
        'base' AS pool_kind,
        base_symbol AS symbol,
        block_number,
        supply_tokens AS supplied_tokens,
        borrow_tokens AS debt_tokens,
        supply_tokens * base_price_usd AS supplied_usd,
        borrow_tokens * base_price_usd AS debt_usd,
        utilization_pct,
        NULL::DOUBLE AS supply_cap_tokens,
        NULL::DOUBLE AS supply_cap_used_pct,
        NULL::DOUBLE AS supply_room_tokens,
        NULL::DOUBLE AS debt_cap_tokens,
        NULL::DOUBLE AS debt_cap_used_pct,
        NULL::DOUBLE AS debt_room_tokens
    FROM bases
    UNION ALL
    SELECT
        'compound-v3' AS protocol,
        chain_id,
        market,
        asset AS pool,
        'collateral' AS pool_kind,
        symbol,
        block_number,
        total_supply_asset::DOUBLE / 10 ^ decimals AS supplied_tokens,
        NULL::DOUBLE AS debt_tokens,
        total_supply_asset::DOUBLE / 10 ^ decimals * price_usd AS supplied_usd,
        NULL::DOUBLE AS debt_usd,
        NULL::DOUBLE AS utilization_pct,
        supply_cap::DOUBLE / 10 ^ decimals AS supply_cap_tokens,
        -- A cap of 0 accepts no supply at all (supplyCollateral: totalSupplyAsset > supplyCap reverts): full where some
        -- is held (a collateral being retired), nothing to watch where none is.
        CASE
            WHEN supply_cap > 0 THEN 100 * total_supply_asset::DOUBLE / supply_cap::DOUBLE
            WHEN total_supply_asset > 0 THEN 100
        END AS supply_cap_used_pct,
        (supply_cap - total_supply_asset)::DOUBLE / 10 ^ decimals AS supply_room_tokens,
        NULL::DOUBLE AS debt_cap_tokens,
        NULL::DOUBLE AS debt_cap_used_pct,
        NULL::DOUBLE AS debt_room_tokens
    FROM collaterals
)

SELECT * FROM final
