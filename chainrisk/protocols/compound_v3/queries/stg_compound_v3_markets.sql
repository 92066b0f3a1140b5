-- Compound V3 (Comet) markets as read at every snapshot: base asset, totals, reserves against targetReserves.
--
-- Grain: one row per (chain_id, market, block_number); is_latest marks the market's latest snapshot.
-- Key columns:
--   market                 the Comet (proxy) address, as in positions and the score tables
--   reserves, target_reserves   getReserves() (signed: negative when the protocol owes more than it holds) and
--                          targetReserves(), exact, base token's smallest unit
--   reserves_tokens, target_reserves_tokens   the same in whole base tokens (DOUBLE)
--   base_currency_usd      USD per unit of Comet's prices (8 decimals of its feeds' quote)
--   base_price_usd         USD per whole base token; reserves_usd, target_reserves_usd in USD
--   usd_route              the token whose USD price converts Comet's prices to USD (the base, else the first
--                          collateral a USD source prices) and the contract it was read from: "usd feed 0x…" (its
--                          configured Chainlink-compatible feed) or "usd oracle 0x…" (the AaveOracle-compatible
--                          USD oracle); NULL without a USD price, and in rows stored before the column
--   supply_amount, borrow_amount   totals at present value (principal × accrued index / 1e15, rounded down: what
--                          totalSupply() and totalBorrow() answer), exact, base token's smallest unit
--   supply_tokens, borrow_tokens   the same in whole base tokens
--   utilization_pct        Comet's getUtilization() × 100
--   utilization, supply_rate, borrow_rate   getUtilization() (1e18 = 100 %) and the per-second rates at it (1e18 =
--                          100 %), exact; supply_apr_pct, borrow_apr_pct the same a year (× 31,536,000), percent
--   supply_kink, supply_base, supply_slope_low, supply_slope_high, borrow_kink, borrow_base, borrow_slope_low,
--   borrow_slope_high      the rate model governance sets (Comet's immutables, 1e18 = 100 %; rates per second):
--                          below its kink a rate is base + slope_low × utilization, above it slope_high takes over
-- Reads: stg_compound_v3_markets_at_snapshot.
WITH markets AS (
    -- Totals at present value as CometCore.presentValueSupply / presentValueBorrow take them: principal x index /
    -- 1e15, rounded down; the principal split at 1e15 so that no product leaves HUGEINT (uint104 x a 1e15-scale index
    -- may), floor(q x i + r x i / 1e15) for principal q x 1e15 + r.
    SELECT
        r.*,
        (r.total_supply_base // 1000000000000000) * r.accrued_supply_index
        + ((r.total_supply_base % 1000000000000000) * r.accrued_supply_index) // 1000000000000000 AS supply_amount,
        (r.total_borrow_base // 1000000000000000) * r.accrued_borrow_index
        + ((r.total_borrow_base % 1000000000000000) * r.accrued_borrow_index) // 1000000000000000 AS borrow_amount
    FROM stg_compound_v3_markets_at_snapshot AS r
),

final AS (
    SELECT
        'compound-v3' AS protocol,
        m.chain_id,
        m.market,
        m.block_number,
        m.is_latest,
        m.base_token,
        m.base_symbol,
        m.base_decimals,
        m.base_currency_usd,
        m.base_price * m.base_currency_usd AS base_price_usd,
        m.reserves,
        m.target_reserves,
        m.reserves::DOUBLE / pow(10, m.base_decimals) AS reserves_tokens,
        m.target_reserves::DOUBLE / pow(10, m.base_decimals) AS target_reserves_tokens,
        m.reserves::DOUBLE / pow(10, m.base_decimals) * m.base_price * m.base_currency_usd AS reserves_usd,
        m.target_reserves::DOUBLE / pow(10, m.base_decimals) * m.base_price * m.base_currency_usd
            AS target_reserves_usd,
        m.supply_amount,
        m.borrow_amount,
        m.supply_amount::DOUBLE / pow(10, m.base_decimals) AS supply_tokens,
        m.borrow_amount::DOUBLE / pow(10, m.base_decimals) AS borrow_tokens,
        m.utilization::DOUBLE / 1e16 AS utilization_pct,
        m.utilization,
        m.supply_rate,
        m.borrow_rate,
        m.supply_rate::DOUBLE * 31536000 / 1e16 AS supply_apr_pct,
        m.borrow_rate::DOUBLE * 31536000 / 1e16 AS borrow_apr_pct,
        m.supply_kink,
        m.supply_base,
        m.supply_slope_low,
        m.supply_slope_high,
        m.borrow_kink,
        m.borrow_base,
        m.borrow_slope_low,
        m.borrow_slope_high,
        m.store_front_price_factor,
        m.num_assets,
        m.usd_route
    FROM markets AS m
)

SELECT * FROM final
