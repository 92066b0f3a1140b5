-- Liquity V1 system figures as read at every snapshot: TCR, Recovery Mode, Stability Pool, the predicted batch.
--
-- Grain: one row per (chain_id, market, block_number); is_latest marks the market's latest snapshot.
-- Key columns:
--   market                 the TroveManager, as in positions and the score tables
--   price_usd              the price feed's last good ETH price (USD per ETH)
--   tcr, ccr               exact WAD ratios (1e18 = 100 %)
--   tcr_pct, mcr_pct, ccr_pct   total collateral ratio, minimum (110 %) and critical (150 %) ratios, in %
--   recovery_mode          TCR < CCR at the block (TroveManager.checkRecoveryMode)
--   recovery_mode_price_usd   the ETH price at which TCR would reach CCR; price_drop_to_recovery_pct the drop
--                          from price_usd to it, in % (≤ 0 in Recovery Mode)
--   system_debt_lusd, system_coll_eth   getEntireSystemDebt / getEntireSystemColl, whole tokens
--   stability_pool_lusd    LUSD in the Stability Pool (what absorbs liquidated debt first), whole tokens
--   batch_*_lusd           batchLiquidateTroves over every liquidatable trove now (chainrisk's prediction): debt
--                          offset by the Stability Pool and debt redistributed to the other troves, whole LUSD
-- Reads: stg_liquity_v1_system_at_snapshot.
WITH system AS (
    SELECT * FROM stg_liquity_v1_system_at_snapshot
),

final AS (
    SELECT
        'liquity-v1' AS protocol,
        s.chain_id,
        s.market,
        s.block_number,
        s.is_latest,
        s.price::DOUBLE / 1e18 AS price_usd,
        s.tcr,
        s.ccr,
        s.tcr::DOUBLE / 1e16 AS tcr_pct,
        s.mcr::DOUBLE / 1e16 AS mcr_pct,
        s.ccr::DOUBLE / 1e16 AS ccr_pct,
        s.recovery_mode,
        s.recovery_mode_price::DOUBLE / 1e18 AS recovery_mode_price_usd,
        100 * s.recovery_mode_distance AS price_drop_to_recovery_pct,
        s.entire_system_debt::DOUBLE / 1e18 AS system_debt_lusd,
        s.entire_system_coll::DOUBLE / 1e18 AS system_coll_eth,
        s.stability_pool_lusd::DOUBLE / 1e18 AS stability_pool_lusd,
        s.batch_liquidations,
        s.batch_debt::DOUBLE / 1e18 AS batch_debt_lusd,
        s.batch_debt_to_offset::DOUBLE / 1e18 AS batch_debt_to_offset_lusd,
        s.batch_debt_to_redistribute::DOUBLE / 1e18 AS batch_debt_to_redistribute_lusd,
        s.trove_owners
    FROM system AS s
)

SELECT * FROM final
