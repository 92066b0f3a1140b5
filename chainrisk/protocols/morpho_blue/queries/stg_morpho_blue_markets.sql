-- Morpho Blue markets as read at the latest snapshot: parameters, totals accrued to the block, rate, oracle price.
-- Earlier snapshots' values: history.raw_morpho_blue_markets (raw state is kept by change).
-- In history, the accrued_total_* columns (and borrow_rate under an AdaptiveCurveIrm) are as of each version's
-- first block (time alone opens no version); the exact figures at any snapshotted block:
-- chainrisk.store.db.Store.raw_as_of, which recomputes them.
--
-- Grain: one row per (chain_id, source, block_number, market); is_latest marks the source's latest snapshot.
-- Key columns:
--   source                 the Morpho Blue singleton (raw `market`); market: the market id (raw `market_id`),
--                          as in positions and the score tables
--   lltv, fee, liquidation_incentive_factor   WAD (1e18), exact; lltv_pct, fee_pct, liquidation_bonus_pct
--   total_*                totals as stored at last_update; accrued_total_* accrued to the snapshot block
--                          (exact, loan-token smallest unit / shares)
--   supply_tokens, borrow_tokens   accrued totals in whole loan tokens (DOUBLE); supply_usd, borrow_usd in USD
--   utilization_pct        borrowed / supplied × 100
--   borrow_rate            per-second rate (WAD), exact; borrow_apr_pct = rate × seconds per year × 100
--   rate_at_target         Morpho's AdaptiveCurveIrm: its rateAtTarget(id), per second (WAD), exact, where chainrisk's
--                          port of that IRM reproduces the rate read; NULL for any other IRM;
--                          rate_at_target_apr_pct the same per year × 100
--   price                  the oracle's 1e36-scaled price as an exact decimal string (can exceed HUGEINT);
--                          price_float the same as DOUBLE
--   loan_price_usd, collateral_price_usd   USD per whole token; a collateral no USD source prices (a wrapper: an
--                          aToken, a vault's shares) at the market oracle's price in loan tokens times the loan token's
--                          USD, as its positions are valued
--   loan_usd_source, collateral_usd_source  the contract each was read from: "usd feed 0x…" (the token's configured
--                          Chainlink-compatible feed) or "usd oracle 0x…" (the AaveOracle-compatible USD oracle), or
--                          "market oracle x loan USD" for a collateral priced through the market;
--                          NULL where the token has no USD price (and in rows stored before these columns)
--   base_currency_usd      USD per loan-token unit, what every USD figure of the market is taken at;
--                          usd_route says how it was found: from the loan token's own price, or from the collateral's
--                          through the market's own oracle (a loan token no USD source prices)
--   supply_usd, borrow_usd the accrued totals at base_currency_usd (so also where only the collateral is priced)
-- Reads: stg_morpho_blue_markets_at_snapshot.
WITH markets AS (
    SELECT * FROM stg_morpho_blue_markets_at_snapshot
),

final AS (
    SELECT
        'morpho-blue' AS protocol,
        m.chain_id,
        m.market AS source,
        m.market_id AS market,
        m.block_number,
        m.is_latest,
        m.loan_token,
        m.loan_symbol,
        m.loan_decimals,
        m.collateral_token,
        m.collateral_symbol,
        m.collateral_decimals,
        m.oracle,
        m.irm,
        m.lltv,
        m.lltv::DOUBLE / 1e16 AS lltv_pct,
        m.fee,
        m.fee::DOUBLE / 1e16 AS fee_pct,
        m.liquidation_incentive_factor,
        (m.liquidation_incentive_factor::DOUBLE / 1e18 - 1) * 100 AS liquidation_bonus_pct,
        m.total_supply_assets,
        m.total_supply_shares,
        m.total_borrow_assets,
        m.total_borrow_shares,
        m.last_update,
        m.accrued_total_supply_assets,
        m.accrued_total_supply_shares,
        m.accrued_total_borrow_assets,
        m.accrued_total_borrow_shares,
        m.accrued_total_supply_assets::DOUBLE / pow(10, m.loan_decimals) AS supply_tokens,
        m.accrued_total_borrow_assets::DOUBLE / pow(10, m.loan_decimals) AS borrow_tokens,
        m.accrued_total_supply_assets::DOUBLE * m.base_currency_usd AS supply_usd,
        m.accrued_total_borrow_assets::DOUBLE * m.base_currency_usd AS borrow_usd,
        100 * m.accrued_total_borrow_assets::DOUBLE / nullif(m.accrued_total_supply_assets, 0) AS utilization_pct,
        m.borrow_rate,
        m.borrow_rate::DOUBLE / 1e18 * 31536000 * 100 AS borrow_apr_pct,
        m.rate_at_target,
        m.rate_at_target::DOUBLE / 1e18 * 31536000 * 100 AS rate_at_target_apr_pct,
        m.price,
        m.price_float,
        m.loan_price_usd,
        coalesce(
            m.collateral_price_usd,
            m.price_float * pow(10, m.collateral_decimals) / 1e36 * m.base_currency_usd
        ) AS collateral_price_usd,
        m.base_currency_usd,
        m.loan_usd_source,
        CASE
            WHEN m.collateral_price_usd IS NULL AND m.price_float IS NOT NULL AND m.base_currency_usd IS NOT NULL
                AND m.collateral_decimals IS NOT NULL
                THEN 'market oracle x loan USD'
            ELSE m.collateral_usd_source
        END AS collateral_usd_source,
        CASE
            WHEN m.base_currency_usd IS NULL THEN NULL
            WHEN m.loan_price_usd IS NOT NULL AND m.loan_decimals IS NOT NULL
                THEN 'loan ' || m.loan_symbol || ': ' || coalesce(m.loan_usd_source, 'source not recorded')
            ELSE 'collateral ' || m.collateral_symbol || ': ' || coalesce(m.collateral_usd_source, 'source not recorded')
                || ', through the market oracle'
        END AS usd_route
    FROM markets AS m
)

SELECT * FROM final
