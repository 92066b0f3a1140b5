-- Liquity V1 troves as read at every snapshot: debt and collateral with pending rewards, ICR, liquidatable.
--
-- Grain: one row per (chain_id, market, block_number, wallet); is_latest marks the market's latest snapshot.
-- Key columns:
--   market                 the TroveManager; wallet: the borrower
--   debt_lusd, coll_eth    getEntireDebtAndColl (pending redistribution included), whole tokens
--   icr_pct                the trove's ICR at the last good price, in %
--   liquidatable           TroveManager.liquidate would accept it now (in the system's current mode)
-- Reads: raw_liquity_v1_troves, sync_state.
WITH troves AS (
    -- The rows hold at the source's latest snapshot (sync_state); a table that no snapshot has changed since is
    -- not written again and keeps the block it was written at (Store._replace_rows): stamped here anew.
    SELECT r.* REPLACE (coalesce(s.snapshot_block, r.block_number) AS block_number)
    FROM raw_liquity_v1_troves AS r
    LEFT JOIN sync_state AS s
        ON s.protocol = 'liquity-v1' AND s.chain_id = r.chain_id AND s.market = r.market
        AND r.block_number <= s.snapshot_block
),

latest AS (
    SELECT chain_id, market, snapshot_block AS block_number, true AS is_latest
    FROM sync_state
    WHERE protocol = 'liquity-v1'
),

final AS (
    SELECT
        'liquity-v1' AS protocol,
        t.chain_id,
        t.market,
        t.block_number,
        coalesce(l.is_latest, false) AS is_latest,
        t.wallet,
        t.status,
        t.entire_debt::DOUBLE / 1e18 AS debt_lusd,
        t.entire_coll::DOUBLE / 1e18 AS coll_eth,
        t.icr,
        t.icr::DOUBLE / 1e16 AS icr_pct,
        t.liquidatable
    FROM troves AS t
    LEFT JOIN latest AS l USING (chain_id, market, block_number)
)

SELECT * FROM final
