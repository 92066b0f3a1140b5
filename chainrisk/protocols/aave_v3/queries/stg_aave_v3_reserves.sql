-- Aave V3 reserves as read at the latest snapshot: decoded configuration, indexes, rates and prices.
-- Earlier snapshots' values: history.raw_aave_v3_reserves (raw state is kept by change).
-- In history, normalized_income and normalized_variable_debt are as of each version's first block (interest alone
-- opens no version); the exact figures at any snapshotted block: chainrisk.store.db.Store.raw_as_of, which
-- recomputes them.
--
-- Grain: one row per (chain_id, market, block_number, asset); is_latest marks the market's latest snapshot.
-- Key columns:
--   market, source         the PoolAddressesProvider (Aave's risk-isolated unit and the indexed contract)
--   ltv_bps, liquidation_threshold_bps, liquidation_bonus_bps (10500 = 5 % bonus), reserve_factor_bps,
--   liquidation_protocol_fee_bps                                     basis points
--   borrow_cap_tokens, supply_cap_tokens, unbacked_mint_cap_tokens   whole tokens (0: no cap)
--   debt_ceiling, isolation_mode_total_debt   exact, in cents (2 decimals); _usd the same in USD; NULL from 3.7
--                                             (isolation mode and siloed borrowing removed), as the two flags
--   liquidity_index, variable_borrow_index, normalized_income, normalized_variable_debt   ray (1e27), exact
--   liquidity_rate, variable_borrow_rate      ray (1e27) per year, exact; supply_apr_pct, variable_borrow_apr_pct
--   price                  the oracle's price in base currency units (exact); price_usd in USD
--   price_source           the feed AaveOracle reads for the asset (getSourceOfAsset; the zero address: none)
--   interest_rate_strategy, optimal_usage_ratio, base_variable_borrow_rate, variable_rate_slope1, variable_rate_slope2
--                          the strategy and its curve for the reserve, ray (per year for the rates), exact; _pct the
--                          same in percent (the nearest double to the exact figure); NULL where the strategy answers no known getter or was not read
--   total_supplied, total_variable_debt, total_stable_debt, total_debt   exact token units at the row's block: what
--                          the aToken's and debt tokens' totalSupply() answer (stable debt: 0 from 3.2); NULL where
--                          not read (rows written before they were); total_supplied_tokens, total_debt_tokens the
--                          same in whole tokens; _usd in USD at the oracle's price
--   utilization_pct        total_debt over total_supplied, percent (Aave's rate model divides by available liquidity
--                          plus debt, which differs by what is unbacked and the treasury's share not yet minted)
--   supply_cap_used        what the pool's supply-cap check (ValidationLogic.validateSupply) holds against the cap at
--                          the row's block before the amount supplied: the aToken's scaled supply plus the treasury's
--                          share once the reserve is updated, over the liquidity index (exact, token units)
--   supply_cap_headroom    the most a supply at that block may add under the cap (exact, token units, the pool's own
--                          roundings: maths.supply_cap; negative when a cap was lowered below; NULL without)
--   borrow_cap_headroom    borrow cap x 10^decimals less total_debt (exact; NULL without a cap or past 27 decimals)
--   supply_cap_headroom_tokens, borrow_cap_headroom_tokens   the two headrooms in whole tokens
--   supply_cap_used_pct, borrow_cap_used_pct   supply_cap_used and total_debt as shares of the caps
-- Reads: stg_aave_v3_reserves_at_snapshot.
WITH reserves AS (
    SELECT
        r.*,
        r.total_variable_debt + coalesce(r.total_stable_debt, 0) AS total_debt,
        10 ^ r.decimals AS unit
    FROM stg_aave_v3_reserves_at_snapshot AS r
),

capped AS (
    SELECT
        *,
        CASE WHEN borrow_cap > 0 AND decimals <= 27
            THEN borrow_cap::HUGEINT * CAST('1' || repeat('0', decimals) AS HUGEINT) - total_debt
        END AS borrow_cap_headroom
    FROM reserves
),

final AS (
    SELECT
        'aave-v3' AS protocol,
        r.chain_id,
        r.market,
        r.market AS source,
        r.block_number,
        r.is_latest,
        r.asset,
        r.symbol,
        r.decimals,
        r.reserve_id,
        r.configuration,
        r.active,
        r.frozen,
        r.paused,
        r.borrowing_enabled,
        r.stable_borrowing_enabled,
        r.borrowable_in_isolation,
        r.siloed_borrowing,
        r.flashloan_enabled,
        r.emode_category,
        r.ltv AS ltv_bps,
        r.liquidation_threshold AS liquidation_threshold_bps,
        r.liquidation_bonus AS liquidation_bonus_bps,
        r.reserve_factor AS reserve_factor_bps,
        r.liquidation_protocol_fee AS liquidation_protocol_fee_bps,
        r.borrow_cap AS borrow_cap_tokens,
        r.supply_cap AS supply_cap_tokens,
        r.unbacked_mint_cap AS unbacked_mint_cap_tokens,
        r.debt_ceiling,
        r.debt_ceiling::DOUBLE / 100 AS debt_ceiling_usd,
        r.isolation_mode_total_debt,
        r.isolation_mode_total_debt::DOUBLE / 100 AS isolation_mode_total_debt_usd,
        r.a_token,
        r.variable_debt_token,
        r.stable_debt_token,
        r.liquidity_index,
        r.variable_borrow_index,
        r.normalized_income,
        r.normalized_variable_debt,
        r.liquidity_rate,
        r.variable_borrow_rate,
        r.liquidity_rate::DOUBLE / 1e25 AS supply_apr_pct,
        r.variable_borrow_rate::DOUBLE / 1e25 AS variable_borrow_apr_pct,
        -- the interest rate curve governance set (its strategy's, ray; NULL where the strategy answers no known getter)
        r.interest_rate_strategy,
        r.optimal_usage_ratio,
        r.base_variable_borrow_rate,
        r.variable_rate_slope1,
        r.variable_rate_slope2,
        TRY_CAST(r.optimal_usage_ratio::VARCHAR || 'e-25' AS DOUBLE) AS optimal_usage_pct,
        TRY_CAST(r.base_variable_borrow_rate::VARCHAR || 'e-25' AS DOUBLE) AS base_variable_borrow_apr_pct,
        TRY_CAST(r.variable_rate_slope1::VARCHAR || 'e-25' AS DOUBLE) AS variable_rate_slope1_pct,
        TRY_CAST(r.variable_rate_slope2::VARCHAR || 'e-25' AS DOUBLE) AS variable_rate_slope2_pct,
        r.price_source,
        r.last_update_timestamp,
        r.price,
        r.price_usd,
        r.a_token_scaled_total_supply,
        r.variable_debt_scaled_total_supply,
        r.accrued_to_treasury,
        r.total_supplied,
        r.total_variable_debt,
        r.total_stable_debt,
        r.total_debt,
        r.total_supplied::DOUBLE / r.unit AS total_supplied_tokens,
        r.total_debt::DOUBLE / r.unit AS total_debt_tokens,
        r.total_supplied::DOUBLE / r.unit * r.price_usd AS total_supplied_usd,
        r.total_debt::DOUBLE / r.unit * r.price_usd AS total_debt_usd,
        CASE WHEN r.total_supplied > 0 THEN 100 * r.total_debt::DOUBLE / r.total_supplied::DOUBLE END AS utilization_pct,
        r.supply_cap_used,
        r.supply_cap_headroom,
        r.supply_cap_headroom::DOUBLE / r.unit AS supply_cap_headroom_tokens,
        r.borrow_cap_headroom,
        r.borrow_cap_headroom::DOUBLE / r.unit AS borrow_cap_headroom_tokens,
        CASE WHEN r.supply_cap > 0
            THEN 100 * r.supply_cap_used::DOUBLE / (r.supply_cap * r.unit)
        END AS supply_cap_used_pct,
        CASE WHEN r.borrow_cap > 0
            THEN 100 * r.total_debt::DOUBLE / (r.borrow_cap * r.unit)
        END AS borrow_cap_used_pct
    FROM capped AS r
)

SELECT * FROM final
