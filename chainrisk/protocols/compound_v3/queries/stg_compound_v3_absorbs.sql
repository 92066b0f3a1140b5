-- What Comet's absorb would do to each account at every snapshot (chainrisk's prediction, checked against the
-- chain by the Compound V3 index test).
--
-- Grain: one row per (chain_id, market, block_number, wallet); is_latest marks the market's latest snapshot.
-- Key columns:
--   liquidatable           isLiquidatable(account) at the block
--   debt                   the account's debt at present value, base units (exact)
--   reserves_paid          how much absorb lowers getReserves() (supply added + borrows repaid), base units
--   shortfall              the debt the credited collateral does not cover: the protocol's loss, base units
-- Reads: stg_compound_v3_absorbs_at_snapshot.
WITH absorbs AS (
    SELECT * FROM stg_compound_v3_absorbs_at_snapshot
),

final AS (
    SELECT
        'compound-v3' AS protocol,
        a.chain_id,
        a.market,
        a.block_number,
        a.is_latest,
        a.wallet,
        a.liquidatable,
        a.debt,
        a.reserves_paid,
        a.shortfall
    FROM absorbs AS a
)

SELECT * FROM final
