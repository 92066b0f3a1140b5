-- Aave V3 liquidations: each LiquidationCall with the debt it covered, the collateral it paid the liquidator and the
-- deficit it wrote off, in the shared liquidation columns (chainrisk.protocols.adapter.LIQUIDATION_COLUMNS).
--
-- Grain: one row per LiquidationCall (chain_id, market, block_number, log_index), and one per deficit it booked in
-- another debt asset of the wallet (keyed by the DeficitCreated's own log_index). From 3.3 a liquidation that leaves
-- the wallet no collateral burns every debt it still has (aave-v3-origin src/contracts/protocol/libraries/logic/
-- LiquidationLogic.sol, _burnBadDebt), logging a DeficitCreated per debt asset before its own LiquidationCall: the
-- liquidated asset's deficit is on the call's row, each other asset's on a row of its own (the call's liquidator,
-- nothing repaid: 0, no collateral: NULL), so that a liquidation's bad debt is all on its rows.
-- Key columns:
--   wallet, liquidator     the borrower liquidated and the caller
--   debt_repaid            exact debtToCover the pool took (actualDebtToLiquidate), in debt_asset's smallest unit
--   collateral_seized      exact liquidatedCollateralAmount: what the liquidator received (the treasury's fee, taken
--                          from the borrower on top, is not in it)
--   protocol_fee_collateral   exact: the treasury's liquidation fee, in the collateral asset: the value of the
--                          collateral aToken's Transfer from the borrower to a receiver other than the liquidator, logged
--                          after the transaction's previous LiquidationCall and before this one (every version transfers
--                          the fee there, then logs the call: LiquidationLogic.sol, and @aave/core-v3 3.0.2's); 0 where
--                          none was logged (no fee set), NULL where the collateral is no reserve the indexer read (its
--                          transfers are not indexed). A liquidator that is the treasury itself is not told apart: 0
--   protocol_fee_debt      0: Aave's fee is in the collateral (NULL where protocol_fee_collateral is)
--   bad_debt_tokens        the deficit the liquidation booked in debt_asset (3.3+ DeficitCreated; NULL on a call's
--                          row when none: before 3.3, or collateral left); bad_debt_known always true (the same
--                          transaction logs it)
-- Reads: stg_aave_v3_events, raw_aave_v3_events, stg_aave_v3_tokens.
WITH events AS (
    SELECT * FROM stg_aave_v3_events
),

calls AS (
    SELECT
        *,
        -- The transaction's previous LiquidationCall: the fee of this one is logged after it.
        lag(log_index) OVER (PARTITION BY chain_id, market, tx_hash ORDER BY log_index) AS previous_call_index
    FROM events
    WHERE event = 'LiquidationCall'
),

-- Each call's treasury fee: the collateral aToken's transfer from the borrower to anyone but the liquidator (a burn,
-- to the zero address, is not indexed; with receiveAToken the liquidator's own share goes to the liquidator). Read
-- from the raw table, in the call's block: the transfers are most of the events, and valuing them all costs more.
fees AS (
    SELECT c.chain_id, c.market, c.tx_hash, c.log_index AS call_index, sum(t.amount) AS fee
    FROM calls AS c
    JOIN raw_aave_v3_events AS t
        ON t.chain_id = c.chain_id AND t.market = c.market AND t.block_number = c.block_number
        AND t.tx_hash = c.tx_hash AND t.event = 'ATokenTransfer' AND t.reserve = c.asset
        AND t.counterparty = c.wallet AND t.wallet <> c.counterparty
        AND t.log_index < c.log_index AND t.log_index > coalesce(c.previous_call_index, -1)
    GROUP BY c.chain_id, c.market, c.tx_hash, c.log_index
),

indexed_reserves AS (
    SELECT chain_id, market, asset, decimals FROM stg_aave_v3_tokens
),

-- Each deficit with the liquidation that booked it: the wallet's first LiquidationCall after it in the transaction.
deficits AS (
    SELECT
        d.chain_id,
        d.market,
        d.tx_hash,
        d.wallet,
        d.log_index,
        d.amount_asset,
        d.amount_symbol,
        d.amount_tokens,
        c.log_index AS call_index,
        c.debt_asset AS call_debt_asset
    FROM events AS d
    ASOF JOIN calls AS c
        ON c.chain_id = d.chain_id AND c.market = d.market AND c.tx_hash = d.tx_hash AND c.wallet = d.wallet
        AND c.log_index > d.log_index
    WHERE d.event = 'DeficitCreated'
),

own_deficits AS (
    SELECT chain_id, market, tx_hash, call_index, sum(amount_tokens) AS deficit_tokens
    FROM deficits
    WHERE amount_asset = call_debt_asset
    GROUP BY chain_id, market, tx_hash, call_index
),

call_rows AS (
    SELECT
        'aave-v3' AS protocol,
        e.chain_id,
        e.source,
        e.market,
        e.wallet,
        e.counterparty AS liquidator,
        true AS keeper_pays,
        NULL::HUGEINT AS keeper_reward_debt,
        NULL::DOUBLE AS keeper_reward_debt_tokens,
        NULL::HUGEINT AS keeper_reward_collateral,
        NULL::DOUBLE AS keeper_reward_collateral_tokens,
        e.block_number,
        e.tx_hash,
        e.log_index,
        e.debt_asset,
        e.debt_symbol,
        e.amount AS debt_repaid,
        e.amount_tokens AS debt_repaid_tokens,
        e.asset AS collateral_asset,
        e.symbol AS collateral_symbol,
        e.liquidated_collateral_amount AS collateral_seized,
        e.liquidated_collateral_tokens AS collateral_seized_tokens,
        d.deficit_tokens AS bad_debt_tokens,
        TRUE AS bad_debt_known,
        CASE WHEN r.asset IS NOT NULL THEN 0::HUGEINT END AS protocol_fee_debt,  -- the fee is in the collateral
        CASE WHEN r.asset IS NOT NULL THEN 0.0::DOUBLE END AS protocol_fee_debt_tokens,
        CASE WHEN r.asset IS NOT NULL THEN coalesce(f.fee, 0) END AS protocol_fee_collateral,
        CASE WHEN r.asset IS NOT NULL THEN coalesce(f.fee, 0)::DOUBLE / pow(10, r.decimals) END
            AS protocol_fee_collateral_tokens
    FROM calls AS e
    LEFT JOIN own_deficits AS d
        ON d.chain_id = e.chain_id AND d.market = e.market AND d.tx_hash = e.tx_hash AND d.call_index = e.log_index
    LEFT JOIN fees AS f
        ON f.chain_id = e.chain_id AND f.market = e.market AND f.tx_hash = e.tx_hash AND f.call_index = e.log_index
    LEFT JOIN indexed_reserves AS r ON r.chain_id = e.chain_id AND r.market = e.market AND r.asset = e.asset
),

other_deficit_rows AS (
    SELECT
        'aave-v3' AS protocol,
        c.chain_id,
        c.source,
        c.market,
        c.wallet,
        c.counterparty AS liquidator,
        true AS keeper_pays,
        NULL::HUGEINT AS keeper_reward_debt,
        NULL::DOUBLE AS keeper_reward_debt_tokens,
        NULL::HUGEINT AS keeper_reward_collateral,
        NULL::DOUBLE AS keeper_reward_collateral_tokens,
        c.block_number,
        c.tx_hash,
        d.log_index,
        d.amount_asset AS debt_asset,
        d.amount_symbol AS debt_symbol,
        0::HUGEINT AS debt_repaid,
        0.0::DOUBLE AS debt_repaid_tokens,
        NULL::VARCHAR AS collateral_asset,
        NULL::VARCHAR AS collateral_symbol,
        NULL::HUGEINT AS collateral_seized,
        NULL::DOUBLE AS collateral_seized_tokens,
        d.amount_tokens AS bad_debt_tokens,
        TRUE AS bad_debt_known,
        NULL::HUGEINT AS protocol_fee_debt,
        NULL::DOUBLE AS protocol_fee_debt_tokens,
        NULL::HUGEINT AS protocol_fee_collateral,
        NULL::DOUBLE AS protocol_fee_collateral_tokens
    FROM deficits AS d
    JOIN calls AS c
        ON c.chain_id = d.chain_id AND c.market = d.market AND c.tx_hash = d.tx_hash AND c.log_index = d.call_index
    WHERE d.amount_asset <> d.call_debt_asset
),

final AS (
    SELECT * FROM call_rows
    UNION ALL BY NAME
    SELECT * FROM other_deficit_rows
)

SELECT * FROM final
