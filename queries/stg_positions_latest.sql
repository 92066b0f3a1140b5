-- Positions (supplied, collateral, debt per wallet and asset) at each market's latest scored block.
--
-- Grain: one row per (protocol, chain_id, market, wallet, asset).
-- Key columns:
--   supplied_amount, collateral_amount, debt_amount   exact token amounts in the token's smallest unit (HUGEINT)
--   supplied_tokens, collateral_tokens, debt_tokens   the same in whole tokens (DOUBLE: amount / 10^decimals)
--   price_usd, supplied_usd, collateral_usd, debt_usd USD (DOUBLE; NULL where no USD price is known)
--   price, price_scale                                value in base currency = amount × price / price_scale
--   collateral_base, debt_base                        exact values in base currency (HUGEINT)
--   ltv_bps, liquidation_threshold_bps, liquidation_bonus_bps   effective parameters, basis points
--   liquidation_recovery_wad                          share of the collateral's value the protocol recovers towards
--                                                     the debt when it is all sold, at 1e18 (NULL: 1 / bonus)
--   price_fixed                                       the protocol values it at a price no market moves (dai at par
--                                                     in Maker/Sky, LUSD in Liquity): no market price change moves it
-- Reads: positions, stg_scored_markets.
WITH snapshot_positions AS (
    SELECT * FROM positions
),

latest AS (
    SELECT protocol, chain_id, market, block_number, market_label FROM stg_scored_markets
),

final AS (
    SELECT
        p.protocol,
        p.chain_id,
        p.market,
        l.market_label,
        p.source,
        p.wallet,
        p.asset,
        p.symbol,
        p.decimals,
        p.block_number,
        p.block_timestamp,
        to_timestamp(p.block_timestamp) AS block_time,
        p.supplied_amount,
        p.collateral_amount,
        p.debt_amount,
        p.supplied_amount::DOUBLE / pow(10, p.decimals) AS supplied_tokens,
        p.collateral_amount::DOUBLE / pow(10, p.decimals) AS collateral_tokens,
        p.debt_amount::DOUBLE / pow(10, p.decimals) AS debt_tokens,
        p.used_as_collateral,
        p.is_borrowing,
        p.price,
        p.price_scale,
        p.price_usd,
        p.supplied_usd,
        p.collateral_usd,
        p.debt_usd,
        p.base_currency_usd,
        p.collateral_base,
        p.debt_base,
        p.ltv_bps,
        p.liquidation_threshold_bps,
        p.liquidation_bonus_bps,
        p.liquidation_threshold_wad,
        p.health_rule,
        p.close_factor,
        p.full_close_below_health,
        p.full_close_below_base,
        p.liquidation_bonus_wad,
        p.liquidation_takes_all,
        p.liquidation_recovery_wad,
        p.price_fixed,
        p.emode_category
    FROM snapshot_positions AS p
    JOIN latest AS l USING (protocol, chain_id, market, block_number)
)

SELECT * FROM final
