-- Each Liquity V1 system at a glance: TCR and the distance to Recovery Mode, and the Stability Pool's cover of the
-- debt that is liquidatable now and of the debt Recovery Mode would make liquidatable.
--
-- Grain: one row per (chain_id, market), the TroveManager at its latest snapshot.
-- Key columns:
--   market_label           the system's name with its MCR (stg_market_labels)
--   tcr_pct, ccr_pct, mcr_pct, recovery_mode, recovery_mode_price_usd, price_drop_to_recovery_pct
--                          as stg_liquity_v1_system (%, USD per ETH)
--   stability_pool_lusd    LUSD in the Stability Pool (whole tokens)
--   liquidatable_troves, liquidatable_debt_lusd   troves liquidate would accept now and their debt
--   sp_cover_pct           Stability Pool ÷ liquidatable debt × 100 (NULL: nothing liquidatable); below 100 the
--                          rest is redistributed to the other troves
--   below_ccr_troves, below_ccr_debt_lusd   troves with ICR under CCR (liquidatable in Recovery Mode) and their debt
--   sp_cover_below_ccr_pct Stability Pool ÷ below_ccr_debt_lusd × 100
--   batch_debt_to_offset_lusd, batch_debt_to_redistribute_lusd   what liquidating every liquidatable trove now
--                          would take from the Stability Pool and redistribute (chainrisk's prediction)
-- Reads: stg_liquity_v1_system, stg_liquity_v1_troves, stg_market_labels.
WITH system AS (
    SELECT * FROM stg_liquity_v1_system WHERE is_latest
),

troves AS (
    SELECT
        t.chain_id,
        t.market,
        count(*) FILTER (WHERE t.liquidatable) AS liquidatable_troves,
        coalesce(sum(t.debt_lusd) FILTER (WHERE t.liquidatable), 0) AS liquidatable_debt_lusd,
        count(*) FILTER (WHERE t.icr < s.ccr) AS below_ccr_troves,
        coalesce(sum(t.debt_lusd) FILTER (WHERE t.icr < s.ccr), 0) AS below_ccr_debt_lusd
    FROM stg_liquity_v1_troves AS t
    JOIN system AS s USING (chain_id, market, block_number)
    WHERE t.is_latest AND t.debt_lusd > 0
    GROUP BY t.chain_id, t.market
),

labels AS (
    SELECT chain_id, market, market_label FROM stg_market_labels WHERE protocol = 'liquity-v1'
),

final AS (
    SELECT
        s.protocol,
        s.chain_id,
        s.market,
        coalesce(lb.market_label, s.market) AS market_label,
        s.block_number,
        s.price_usd,
        s.tcr_pct,
        s.ccr_pct,
        s.mcr_pct,
        s.recovery_mode,
        s.recovery_mode_price_usd,
        s.price_drop_to_recovery_pct,
        s.system_debt_lusd,
        s.system_coll_eth,
        s.stability_pool_lusd,
        s.trove_owners,
        coalesce(t.liquidatable_troves, 0) AS liquidatable_troves,
        coalesce(t.liquidatable_debt_lusd, 0) AS liquidatable_debt_lusd,
        100 * s.stability_pool_lusd / nullif(t.liquidatable_debt_lusd, 0) AS sp_cover_pct,
        coalesce(t.below_ccr_troves, 0) AS below_ccr_troves,
        coalesce(t.below_ccr_debt_lusd, 0) AS below_ccr_debt_lusd,
        100 * s.stability_pool_lusd / nullif(t.below_ccr_debt_lusd, 0) AS sp_cover_below_ccr_pct,
        s.batch_liquidations,
        s.batch_debt_to_offset_lusd,
        s.batch_debt_to_redistribute_lusd
    FROM system AS s
    LEFT JOIN troves AS t USING (chain_id, market)
    LEFT JOIN labels AS lb USING (chain_id, market)
)

SELECT * FROM final
