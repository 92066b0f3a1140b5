-- Positions of every borrower with their liquidation prices: who is closest to liquidation, and at what price.
--
-- Grain: one row per (protocol, chain_id, market, wallet, asset), for wallets with debt in that market, at the
-- market's latest scored block. Sort by health_factor to see the weakest first (views carry no order).
-- Key columns:
--   health_factor, liquidatable            the wallet's in this market (markets liquidate separately)
--   wallet_collateral_usd, wallet_debt_usd, wallet_bad_debt_usd   the wallet's totals in the market, USD
--   collateral_usd, debt_usd, price_usd    this asset's position and price, USD
--   collateral_tokens, debt_tokens         the same in whole tokens (DOUBLE); collateral_amount, debt_amount exact
--   liquidation_price_usd                  this asset's price (all others held) at which HF reaches 1
--   liquidation_price_change_pct           move from today's price to it, % (negative: a fall)
--   liquidated_when_price                  'falls below' (collateral) or 'rises above' (debt)
--   price_fixed                            the protocol values it at par (dai in Maker/Sky, LUSD in Liquity): no
--                                          market price of it liquidates the wallet, so it has no liquidation price
-- Reads: stg_position_risk_latest, stg_wallet_risk_latest, stg_positions_latest.
WITH position_prices AS (
    SELECT * FROM stg_position_risk_latest
),

borrowers AS (
    SELECT * FROM stg_wallet_risk_latest WHERE is_borrower
),

amounts AS (
    SELECT
        protocol, chain_id, market, wallet, asset, block_number,
        collateral_amount, debt_amount, collateral_tokens, debt_tokens, price_fixed
    FROM stg_positions_latest
),

final AS (
    SELECT
        r.protocol,
        r.chain_id,
        r.market,
        r.market_label,
        r.wallet,
        r.asset,
        r.symbol,
        r.price_group,
        w.health_factor,
        w.liquidatable,
        w.distance_to_liquidation,
        w.collateral_usd AS wallet_collateral_usd,
        w.debt_usd AS wallet_debt_usd,
        w.bad_debt_usd AS wallet_bad_debt_usd,
        r.collateral_usd,
        r.debt_usd,
        a.collateral_tokens,
        a.debt_tokens,
        a.collateral_amount,
        a.debt_amount,
        r.price_usd,
        r.liquidation_price_usd,
        r.liquidation_price_change_pct,
        r.liquidated_when_price,
        coalesce(a.price_fixed, false) AS price_fixed,
        r.block_number,
        r.block_timestamp,
        r.block_time
    FROM position_prices AS r
    JOIN borrowers AS w USING (protocol, chain_id, market, wallet, block_number)
    LEFT JOIN amounts AS a USING (protocol, chain_id, market, wallet, asset, block_number)
)

SELECT * FROM final
