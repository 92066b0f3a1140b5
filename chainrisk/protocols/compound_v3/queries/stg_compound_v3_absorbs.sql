-- What Comet's absorb would do to each account at every snapshot (chainrisk's prediction, checked against the
-- chain by the Compound V3 index test).
--
-- Grain: one row per (chain_id, market, block_number, wallet); is_latest marks the market's latest snapshot.
-- Key columns:
--   liquidatable           isLiquidatable(account) at the block
--   debt                   the account's debt at present value, base units (exact)
--   reserves_paid          how much absorb lowers getReserves() (supply added + borrows repaid), base units
--   shortfall              the debt the credited collateral does not cover: the protocol's loss, base units
-- Reads: raw_compound_v3_absorbs, sync_state.
WITH absorbs AS (
    -- The rows hold at the source's latest snapshot (sync_state); a table that no snapshot has changed since is
    -- not written again and keeps the block it was written at (Store._replace_rows): stamped here anew.
    SELECT r.* REPLACE (coalesce(s.snapshot_block, r.block_number) AS block_number)
    FROM raw_compound_v3_absorbs AS r
    LEFT JOIN sync_state AS s
        ON s.protocol = 'compound-v3' AND s.chain_id = r.chain_id AND s.market = r.market
        AND r.block_number <= s.snapshot_block
),

latest AS (
    SELECT chain_id, market, snapshot_block AS block_number, true AS is_latest
    FROM sync_state
    WHERE protocol = 'compound-v3'
),

final AS (
    SELECT
        'compound-v3' AS protocol,
        a.chain_id,
        a.market,
        a.block_number,
        coalesce(l.is_latest, false) AS is_latest,
        a.wallet,
        a.liquidatable,
        a.debt,
        a.reserves_paid,
        a.shortfall
    FROM absorbs AS a
    LEFT JOIN latest AS l USING (chain_id, market, block_number)
)

SELECT * FROM final
