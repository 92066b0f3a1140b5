-- Liquity V1 troves as read at every snapshot: debt and collateral with pending rewards, ICR, liquidatable.
--
-- Grain: one row per (chain_id, market, block_number, wallet); is_latest marks the market's latest snapshot.
-- Key columns:
--   market                 the TroveManager; wallet: the borrower
--   debt_lusd, coll_eth    getEntireDebtAndColl (pending redistribution included), whole tokens
--   icr_pct                the trove's ICR at the last good price, in %
--   liquidatable           TroveManager.liquidate would accept it now (in the system's current mode)
-- Reads: stg_liquity_v1_troves_at_snapshot.
WITH troves AS (
    SELECT * FROM stg_liquity_v1_troves_at_snapshot
),

final AS (
    SELECT
        'liquity-v1' AS protocol,
        t.chain_id,
        t.market,
        t.block_number,
        t.is_latest,
        t.wallet,
        t.status,
        t.entire_debt::DOUBLE / 1e18 AS debt_lusd,
        t.entire_coll::DOUBLE / 1e18 AS coll_eth,
        t.icr,
        t.icr::DOUBLE / 1e16 AS icr_pct,
        t.liquidatable
    FROM troves AS t
)

SELECT * FROM final
