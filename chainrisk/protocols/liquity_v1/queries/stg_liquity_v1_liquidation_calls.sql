-- Liquity V1 liquidation calls a keeper can send now: per trove TroveManager.liquidate accepts at the latest snapshot
-- (under the MCR, or under the TCR in Recovery Mode), what it would take, in the shared liquidation-call columns
-- (chainrisk.protocols.adapter.LIQUIDATION_CALL_COLUMNS). The caller pays nothing and receives the gas compensation
-- (200 LUSD and 0.5 % of the collateral); the Stability Pool offsets the debt, the rest is redistributed.
--
-- Grain: one row per (chain_id, market, wallet) liquidatable at the trove manager's latest snapshot.
-- Key columns:
--   debt_repaid            exact: the trove's entire debt (pending rewards included), LUSD wei
--   collateral_seized      exact: its entire collateral less a Recovery Mode surplus left for the owner to claim
--   bad_debt_tokens        NULL: what the Stability Pool cannot offset is redistributed to the other troves
--   keeper_reward_debt, keeper_reward_collateral   exact: the gas compensation the caller receives for the trove (LUSD
--                          from the GasPool, and ETH: its liquidated collateral / PERCENT_DIVISOR), as the predicted
--                          keeper batch takes it (raw_liquity_v1_troves: NULL for a trove outside that batch)
--   blocked                NULL: liquidate takes any trove it deems liquidatable
-- Reads: stg_liquity_v1_troves_at_snapshot, raw_liquity_v1_system.
WITH troves AS (
    SELECT r.*
    FROM stg_liquity_v1_troves_at_snapshot AS r
    WHERE r.liquidatable
),

system AS (
    SELECT chain_id, market, arg_max(lusd_token, block_number) AS lusd_token
    FROM raw_liquity_v1_system
    GROUP BY chain_id, market
),

final AS (
    SELECT
        'liquity-v1' AS protocol,
        t.chain_id,
        t.market AS source,
        t.market,
        t.wallet,
        t.block_number,
        'liquidate' AS call,
        false AS keeper_pays,
        s.lusd_token AS debt_asset,
        'LUSD' AS debt_symbol,
        t.entire_debt AS debt_repaid,
        t.entire_debt::DOUBLE / 1e18 AS debt_repaid_tokens,
        '0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee' AS collateral_asset,
        'ETH' AS collateral_symbol,
        t.entire_coll - coalesce(t.coll_surplus, 0) AS collateral_seized,
        (t.entire_coll - coalesce(t.coll_surplus, 0))::DOUBLE / 1e18 AS collateral_seized_tokens,
        NULL::DOUBLE AS bad_debt_tokens,
        t.lusd_gas_compensation AS keeper_reward_debt,
        t.lusd_gas_compensation::DOUBLE / 1e18 AS keeper_reward_debt_tokens,
        t.coll_gas_compensation AS keeper_reward_collateral,
        t.coll_gas_compensation::DOUBLE / 1e18 AS keeper_reward_collateral_tokens,
        -- No fee to the protocol: the collateral goes to the Stability Pool or the other troves, less the
        -- keeper's gas compensation (TroveManager.sol).
        0::HUGEINT AS protocol_fee_debt,
        0.0::DOUBLE AS protocol_fee_debt_tokens,
        0::HUGEINT AS protocol_fee_collateral,
        0.0::DOUBLE AS protocol_fee_collateral_tokens,
        t.health_factor_wad::DOUBLE / 1e18 AS health_factor,
        NULL::VARCHAR AS blocked
    FROM troves AS t
    LEFT JOIN system AS s ON s.chain_id = t.chain_id AND s.market = t.market
)

SELECT * FROM final
