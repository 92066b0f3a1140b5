-- Morpho Blue positions as stored (shares and collateral) at the latest snapshot, with whole-token estimates.
-- Earlier snapshots' values: history.raw_morpho_blue_positions (raw state is kept by change).
--
-- Grain: one row per (chain_id, source, block_number, market, wallet); is_latest marks the latest snapshot.
-- Key columns:
--   source, market         the singleton and the market id (as in stg_morpho_blue_markets)
--   supply_shares, borrow_shares, collateral   exact as stored (shares; collateral in its smallest unit)
--   collateral_tokens      collateral in whole tokens (DOUBLE)
--   supply_tokens, borrow_tokens   shares converted with the accrued totals and Morpho's virtual shares
--                          (DOUBLE, loan token); the exact assets, rounded as Morpho rounds, are in
--                          stg_positions_latest (supplied_amount, debt_amount)
-- Reads: stg_morpho_blue_positions_at_snapshot, stg_morpho_blue_markets.
WITH stored AS (
    SELECT * FROM stg_morpho_blue_positions_at_snapshot
),

markets AS (
    SELECT * FROM stg_morpho_blue_markets
),

final AS (
    SELECT
        'morpho-blue' AS protocol,
        p.chain_id,
        p.market AS source,
        p.market_id AS market,
        p.block_number,
        coalesce(m.is_latest, false) AS is_latest,
        p.wallet,
        m.loan_token,
        m.loan_symbol,
        m.collateral_token,
        m.collateral_symbol,
        p.supply_shares,
        p.borrow_shares,
        p.collateral,
        p.collateral::DOUBLE / pow(10, m.collateral_decimals) AS collateral_tokens,
        -- SharesMathLib: assets = shares × (total assets + 1) / (total shares + 1e6)
        p.supply_shares::DOUBLE * (m.accrued_total_supply_assets::DOUBLE + 1)
            / (m.accrued_total_supply_shares::DOUBLE + 1e6) / pow(10, m.loan_decimals) AS supply_tokens,
        p.borrow_shares::DOUBLE * (m.accrued_total_borrow_assets::DOUBLE + 1)
            / (m.accrued_total_borrow_shares::DOUBLE + 1e6) / pow(10, m.loan_decimals) AS borrow_tokens
    FROM stored AS p
    LEFT JOIN markets AS m ON m.chain_id = p.chain_id AND m.source = p.market AND m.market = p.market_id
        AND m.block_number = p.block_number
)

SELECT * FROM final
