-- Liquity V1 liquidations: each TroveLiquidated with the trove's debt and collateral it took, in the shared
-- liquidation columns (chainrisk.protocols.adapter.LIQUIDATION_COLUMNS).
--
-- Grain: one row per TroveLiquidated (chain_id, market, block_number, log_index).
-- Key columns:
--   wallet                 the borrower
--   liquidator             who called the liquidation: the event does not name it, the transaction's receipt does
--                          (the caller TroveManager paid its gas compensation to; chainrisk.protocols.liquity_v1
--                          .events); NULL for events indexed before stop 52
--   debt_repaid            the trove's whole debt, exact LUSD wei (offset by the Stability Pool or redistributed)
--   collateral_seized      the trove's whole collateral, exact wei of ETH (the gas compensation included)
--   bad_debt_tokens        NULL: what the Stability Pool cannot offset is redistributed to the other troves, not
--                          written off
--   keeper_reward_debt, keeper_reward_collateral   exact: the gas compensation the caller received for the trove
--                          (LUSD_GAS_COMPENSATION, and its collateral / PERCENT_DIVISOR), where the batch's
--                          `Liquidation` log confirms the sums (stg_liquity_v1_events); NULL otherwise (a batch with
--                          a Recovery Mode liquidation capped at MCR, whose event logs its collateral net of it)
-- Reads: stg_liquity_v1_events.
WITH liquidated AS (
    SELECT * FROM stg_liquity_v1_events WHERE event = 'TroveLiquidated'
),

final AS (
    SELECT
        'liquity-v1' AS protocol,
        e.chain_id,
        e.source,
        e.market,
        e.wallet,
        e.liquidator,
        false AS keeper_pays,
        e.gas_compensation_lusd AS keeper_reward_debt,
        e.gas_compensation_lusd::DOUBLE / 1e18 AS keeper_reward_debt_tokens,
        e.gas_compensation_eth AS keeper_reward_collateral,
        e.gas_compensation_eth::DOUBLE / 1e18 AS keeper_reward_collateral_tokens,
        0::HUGEINT AS protocol_fee_debt,  -- none: the collateral goes to the Stability Pool or the troves
        0.0::DOUBLE AS protocol_fee_debt_tokens,
        0::HUGEINT AS protocol_fee_collateral,
        0.0::DOUBLE AS protocol_fee_collateral_tokens,
        e.block_number,
        e.tx_hash,
        e.log_index,
        e.action_asset AS debt_asset,
        'LUSD' AS debt_symbol,
        e.debt::HUGEINT AS debt_repaid,
        e.debt::DOUBLE / 1e18 AS debt_repaid_tokens,
        '0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee' AS collateral_asset,
        'ETH' AS collateral_symbol,
        e.coll::HUGEINT AS collateral_seized,
        e.coll::DOUBLE / 1e18 AS collateral_seized_tokens,
        NULL::DOUBLE AS bad_debt_tokens,
        TRUE AS bad_debt_known
    FROM liquidated AS e
)

SELECT * FROM final
