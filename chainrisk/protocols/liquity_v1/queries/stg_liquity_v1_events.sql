-- Liquity V1 trove events, with what each did to the trove: TroveUpdated carries the trove's debt and collateral after
-- the operation, so its change from the trove's previous TroveUpdated is what the borrower did.
--
-- Grain: one row per (chain_id, market, block_number, log_index, part): a borrower's adjustment that moves both debt
-- and collateral is two rows (its collateral part and its debt part); every other event is one row.
-- Key columns:
--   source, market         the TroveManager
--   event                  TroveUpdated (by BorrowerOperations: openTrove, closeTrove, adjustTrove; by the
--                          TroveManager: applyPendingRewards, liquidations, redeemCollateral), TroveLiquidated
--   wallet                 the borrower; debt, coll, stake: after the operation (TroveLiquidated: what was liquidated)
--   liquidator             TroveLiquidated: who called the liquidation (from its transaction's receipt); else NULL
--   gas_compensation_lusd, gas_compensation_eth   TroveLiquidated: what its caller received for the trove (LUSD, wei
--                          of ETH), where its batch's `Liquidation` log in the receipt confirms the sums; else NULL
--   debt_change, coll_change   exact changes against the trove's previous TroveUpdated
--   action, position_key, action_asset, action_amount   the shared lending-event columns
--                          (chainrisk.protocols.adapter.LENDING_EVENT_COLUMNS): the borrower's own operations as borrow
--                          / repay (LUSD) and collateral_in / collateral_out (ETH); TroveLiquidated as liquidated (the
--                          debt); rewards applied and redemptions are not the borrower's acts (NULL)
-- Reads: raw_liquity_v1_events, markets.
WITH events AS (
    SELECT * FROM raw_liquity_v1_events
),

lusd AS (
    SELECT chain_id, market, arg_max(loan_asset, block_number) AS lusd
    FROM markets
    WHERE protocol = 'liquity-v1'
    GROUP BY chain_id, market
),

changes AS (
    SELECT
        e.*,
        e.debt - coalesce(lag(e.debt) OVER trove, 0) AS debt_change,
        e.coll - coalesce(lag(e.coll) OVER trove, 0) AS coll_change
    FROM events AS e
    WHERE e.event = 'TroveUpdated'
    WINDOW trove AS (PARTITION BY e.chain_id, e.market, e.wallet ORDER BY e.block_number, e.log_index)
),

every AS (
    SELECT * FROM changes
    UNION ALL BY NAME
    SELECT *, NULL::HUGEINT AS debt_change, NULL::HUGEINT AS coll_change FROM events WHERE event = 'TroveLiquidated'
),

parts AS (
    SELECT
        e.*,
        p.part,
        CASE
            WHEN e.event = 'TroveLiquidated' THEN 'liquidated'
            WHEN e.operation_name NOT IN ('openTrove', 'closeTrove', 'adjustTrove') THEN NULL
            WHEN p.part = 'debt' AND e.debt_change > 0 THEN 'borrow'
            WHEN p.part = 'debt' AND e.debt_change < 0 THEN 'repay'
            WHEN p.part = 'collateral' AND e.coll_change > 0 THEN 'collateral_in'
            WHEN p.part = 'collateral' AND e.coll_change < 0 THEN 'collateral_out'
        END AS action
    FROM every AS e
    CROSS JOIN (SELECT unnest(['debt', 'collateral']) AS part) AS p
    WHERE (e.event = 'TroveLiquidated' AND p.part = 'debt')
        OR (e.event = 'TroveUpdated' AND ((p.part = 'debt' AND e.debt_change <> 0)
            OR (p.part = 'collateral' AND e.coll_change <> 0)
            OR (p.part = 'debt' AND e.debt_change = 0 AND e.coll_change = 0)))
),

final AS (
    SELECT
        'liquity-v1' AS protocol,
        p.chain_id,
        p.market AS source,
        p.market,
        p.block_number,
        p.block_hash,
        p.tx_hash,
        p.log_index,
        p.event,
        p.emitter,
        p.operation_name,
        p.wallet,
        p.liquidator,
        p.gas_compensation_lusd,
        p.gas_compensation_eth,
        p.debt,
        p.coll,
        p.stake,
        p.debt_change,
        p.coll_change,
        p.action,
        p.market AS position_key,
        CASE WHEN p.part = 'debt' THEN l.lusd ELSE '0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee' END AS action_asset,
        CASE
            WHEN p.event = 'TroveLiquidated' THEN p.debt
            WHEN p.part = 'debt' THEN abs(p.debt_change)
            ELSE abs(p.coll_change)
        END AS action_amount
    FROM parts AS p
    LEFT JOIN lusd AS l ON l.chain_id = p.chain_id AND l.market = p.market
)

SELECT * FROM final
