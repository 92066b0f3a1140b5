-- Compound V3 (Comet) store front: the collateral absorbs took into each Comet, what buyCollateral sold of it, to whom
-- and for how much, and what the Comet still holds awaiting sale at its latest snapshot.
--
-- Grain: one row per (chain_id, market, asset) that an absorb or a sale touched or that the Comet holds reserves of.
-- Absorb credits the account a share of its collateral's value and keeps the collateral; the protocol recovers what it
-- paid only by selling it through buyCollateral, at Comet's price less the store front's discount, and only while
-- getReserves() is under targetReserves (Comet.sol buyCollateral: NotForSale). Until then the collateral is the
-- reserves' exposure to its price.
-- Key columns:
--   absorbed, absorbed_tokens      AbsorbCollateral's collateralAbsorbed summed: exact (the asset's smallest unit),
--                                  and in whole tokens
--   absorbed_value, absorbed_usd   AbsorbCollateral's usdValue summed: what each absorb valued the collateral at,
--                                  exact in Comet's price unit (8 decimals of its feeds' quote: USD for a USD-priced
--                                  Comet), and in USD at the price unit's USD value at the latest snapshot
--   sold, sold_tokens              BuyCollateral's collateralAmount summed (exact; whole tokens)
--   paid, paid_tokens, paid_usd    BuyCollateral's baseAmount summed: what the buyers paid, exact in the base token's
--                                  smallest unit, in whole base tokens, and in USD at the base's price now
--   sales, buyers                  BuyCollateral events, and the distinct buyers (the event's buyer)
--   top_buyer, top_buyer_paid_pct  the buyer who paid the most, and its share of what all paid, percent
--   held, held_tokens, held_usd    getCollateralReserves(asset) at the latest snapshot: the Comet's balance of the asset
--                                  beyond what accounts supplied, exact, whole tokens, USD at Comet's price now
--   unaccounted, unaccounted_tokens   held - (absorbed - sold): what the indexed absorbs and sales do not explain
--                                  (absorbs before the indexed blocks, tokens sent to the Comet directly)
--   for_sale                       whether buyCollateral sells now: getReserves() < targetReserves at the snapshot
--   discount_pct                   the store front's discount on Comet's price now: storeFrontPriceFactor x
--                                  (1 - liquidationFactor) x 100 (Comet.quoteCollateral)
--   block_number                   the market's latest snapshot block (held, for_sale, discount_pct, the USD figures)
-- Reads: raw_compound_v3_events, stg_compound_v3_assets_at_snapshot, stg_compound_v3_markets.
WITH events AS (
    -- The raw events: these two need none of stg_compound_v3_events' pairing of base transfers (a join over every
    -- event of the market).
    SELECT chain_id, market, event, counterparty, asset, amount, value AS usd_value, collateral_amount
    FROM raw_compound_v3_events
    WHERE event IN ('AbsorbCollateral', 'BuyCollateral')
),

markets AS (
    SELECT * FROM stg_compound_v3_markets WHERE is_latest
),

assets AS (
    SELECT * FROM stg_compound_v3_assets_at_snapshot WHERE is_latest
),

flows AS (
    SELECT
        chain_id,
        market,
        asset,
        coalesce(sum(amount) FILTER (WHERE event = 'AbsorbCollateral'), 0) AS absorbed,
        coalesce(sum(usd_value) FILTER (WHERE event = 'AbsorbCollateral'), 0) AS absorbed_value,
        coalesce(sum(collateral_amount) FILTER (WHERE event = 'BuyCollateral'), 0) AS sold,
        coalesce(sum(amount) FILTER (WHERE event = 'BuyCollateral'), 0) AS paid,
        count(*) FILTER (WHERE event = 'BuyCollateral') AS sales,
        count(DISTINCT counterparty) FILTER (WHERE event = 'BuyCollateral') AS buyers
    FROM events
    GROUP BY chain_id, market, asset
),

buyers AS (
    SELECT chain_id, market, asset, counterparty AS buyer, sum(amount) AS paid
    FROM events
    WHERE event = 'BuyCollateral'
    GROUP BY chain_id, market, asset, counterparty
),

top_buyers AS (
    SELECT chain_id, market, asset, arg_max(buyer, paid) AS top_buyer, max(paid) AS top_buyer_paid
    FROM buyers
    GROUP BY chain_id, market, asset
),

keys AS (
    SELECT chain_id, market, asset FROM flows
    UNION
    SELECT chain_id, market, asset FROM assets WHERE collateral_reserves <> 0
),

final AS (
    SELECT
        'compound-v3' AS protocol,
        k.chain_id,
        k.market,
        k.asset,
        a.symbol,
        a.decimals,
        m.block_number,
        m.base_symbol,
        coalesce(f.absorbed, 0) AS absorbed,
        coalesce(f.absorbed, 0)::DOUBLE / pow(10, a.decimals) AS absorbed_tokens,
        coalesce(f.absorbed_value, 0) AS absorbed_value,
        coalesce(f.absorbed_value, 0)::DOUBLE * m.base_currency_usd AS absorbed_usd,
        coalesce(f.sold, 0) AS sold,
        coalesce(f.sold, 0)::DOUBLE / pow(10, a.decimals) AS sold_tokens,
        coalesce(f.paid, 0) AS paid,
        coalesce(f.paid, 0)::DOUBLE / pow(10, m.base_decimals) AS paid_tokens,
        coalesce(f.paid, 0)::DOUBLE / pow(10, m.base_decimals) * m.base_price_usd AS paid_usd,
        coalesce(f.sales, 0) AS sales,
        coalesce(f.buyers, 0) AS buyers,
        t.top_buyer,
        100 * t.top_buyer_paid::DOUBLE / nullif(f.paid, 0) AS top_buyer_paid_pct,
        a.collateral_reserves AS held,
        a.collateral_reserves::DOUBLE / pow(10, a.decimals) AS held_tokens,
        a.collateral_reserves::DOUBLE / pow(10, a.decimals) * a.price_usd AS held_usd,
        a.collateral_reserves - (coalesce(f.absorbed, 0) - coalesce(f.sold, 0)) AS unaccounted,
        (a.collateral_reserves - (coalesce(f.absorbed, 0) - coalesce(f.sold, 0)))::DOUBLE / pow(10, a.decimals)
            AS unaccounted_tokens,
        m.reserves < m.target_reserves AS for_sale,
        100 * m.store_front_price_factor::DOUBLE * (1e18 - a.liquidation_factor::DOUBLE) / 1e36 AS discount_pct
    FROM keys AS k
    LEFT JOIN flows AS f ON f.chain_id = k.chain_id AND f.market = k.market AND f.asset = k.asset
    LEFT JOIN top_buyers AS t ON t.chain_id = k.chain_id AND t.market = k.market AND t.asset = k.asset
    LEFT JOIN assets AS a ON a.chain_id = k.chain_id AND a.market = k.market AND a.asset = k.asset
    LEFT JOIN markets AS m ON m.chain_id = k.chain_id AND m.market = k.market
)

SELECT * FROM final
