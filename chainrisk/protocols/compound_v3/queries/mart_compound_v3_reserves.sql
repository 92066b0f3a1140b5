-- Each Comet's reserves against targetReserves, and whether they can absorb the protocol's loss now and under a
-- price drop (Comet charges what absorb's credit does not cover to its reserves).
--
-- Grain: one row per (chain_id, market), at the market's latest snapshot.
-- Key columns:
--   market_label           the market's name for people (stg_market_labels)
--   base_symbol            the asset lent; *_tokens columns in whole base tokens, *_usd in USD
--   reserves_tokens, target_reserves_tokens, reserves_usd, target_reserves_usd   getReserves(), targetReserves()
--   reserves_to_target_pct reserves ÷ targetReserves × 100 (NULL without a target)
--   liquidatable_accounts  accounts isLiquidatable now
--   absorb_reserves_paid_tokens   how much absorbing all of them lowers getReserves() (before the seized
--                          collateral is sold back through buyCollateral)
--   absorb_shortfall_tokens, absorb_shortfall_usd   the protocol's loss now: debt their collateral does not cover
--   reserves_after_absorb_tokens  reserves_tokens - absorb_reserves_paid_tokens
--   shock_drop_pct, shock_bad_debt_usd   the predicted bad debt when every non-stable price drops by
--                          shock_drop_pct: the liquidation curve's first step at or past 30 %
--   reserves_cover_shock   reserves_usd ≥ shock_bad_debt_usd
--   first_uncovered_drop_pct   the smallest drop of every non-stable price whose bad debt exceeds the reserves
--                          (NULL: the reserves cover every drop up to 90 %)
--   collateral_held_usd    collateral absorbs took that the Comet has not sold yet, at Comet's price now
--                          (stg_compound_v3_store_front): it turns into base reserves only when bought, at the store
--                          front's discount, and only while the reserves are under target
--   usd_route              where the *_usd figures' price comes from (stg_compound_v3_markets.usd_route)
-- Reads: stg_compound_v3_markets, stg_compound_v3_absorbs, stg_compound_v3_store_front, stg_liquidation_curve_latest, stg_market_labels.
WITH markets AS (
    SELECT * FROM stg_compound_v3_markets WHERE is_latest
),

absorbs AS (
    SELECT
        chain_id,
        market,
        count(*) FILTER (WHERE liquidatable) AS liquidatable_accounts,
        coalesce(sum(reserves_paid) FILTER (WHERE liquidatable), 0) AS reserves_paid,
        coalesce(sum(shortfall) FILTER (WHERE liquidatable), 0) AS shortfall
    FROM stg_compound_v3_absorbs
    WHERE is_latest
    GROUP BY chain_id, market
),

curve AS (
    SELECT chain_id, market, drop_pct, bad_debt_usd
    FROM stg_liquidation_curve_latest
    WHERE axis_kind = 'all_crypto'
),

labels AS (
    SELECT chain_id, market, market_label FROM stg_market_labels WHERE protocol = 'compound-v3'
),

held AS (
    SELECT chain_id, market, sum(held_usd) AS collateral_held_usd
    FROM stg_compound_v3_store_front
    GROUP BY chain_id, market
),

shock AS (
    SELECT
        m.chain_id,
        m.market,
        min(c.drop_pct) FILTER (WHERE c.drop_pct >= 30) AS shock_drop_pct,
        arg_min(c.bad_debt_usd, c.drop_pct) FILTER (WHERE c.drop_pct >= 30) AS shock_bad_debt_usd,
        min(c.drop_pct) FILTER (WHERE c.bad_debt_usd > m.reserves_usd) AS first_uncovered_drop_pct
    FROM markets AS m
    JOIN curve AS c USING (chain_id, market)
    GROUP BY m.chain_id, m.market
),

final AS (
    SELECT
        m.protocol,
        m.chain_id,
        m.market,
        coalesce(lb.market_label, m.market) AS market_label,
        m.block_number,
        m.base_symbol,
        m.base_price_usd,
        m.reserves,
        m.target_reserves,
        m.reserves_tokens,
        m.target_reserves_tokens,
        m.reserves_usd,
        m.target_reserves_usd,
        100 * m.reserves::DOUBLE / nullif(m.target_reserves, 0) AS reserves_to_target_pct,
        m.supply_tokens,
        m.borrow_tokens,
        m.utilization_pct,
        coalesce(a.liquidatable_accounts, 0) AS liquidatable_accounts,
        coalesce(a.reserves_paid, 0)::DOUBLE / pow(10, m.base_decimals) AS absorb_reserves_paid_tokens,
        coalesce(a.shortfall, 0)::DOUBLE / pow(10, m.base_decimals) AS absorb_shortfall_tokens,
        coalesce(a.shortfall, 0)::DOUBLE / pow(10, m.base_decimals) * m.base_price_usd AS absorb_shortfall_usd,
        (m.reserves - coalesce(a.reserves_paid, 0))::DOUBLE / pow(10, m.base_decimals)
            AS reserves_after_absorb_tokens,
        s.shock_drop_pct,
        s.shock_bad_debt_usd,
        m.reserves_usd >= s.shock_bad_debt_usd AS reserves_cover_shock,
        s.first_uncovered_drop_pct,
        coalesce(h.collateral_held_usd, 0) AS collateral_held_usd,
        m.usd_route
    FROM markets AS m
    LEFT JOIN absorbs AS a USING (chain_id, market)
    LEFT JOIN labels AS lb USING (chain_id, market)
    LEFT JOIN shock AS s USING (chain_id, market)
    LEFT JOIN held AS h USING (chain_id, market)
)

SELECT * FROM final
