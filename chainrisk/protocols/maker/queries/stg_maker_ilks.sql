-- Maker/Sky ilks as read at every snapshot: debt against the ceiling, dust, liquidation limits (Dog hole/dirt).
--
-- Grain: one row per (chain_id, source, block_number, ilk); is_latest marks the source's latest snapshot.
-- Key columns:
--   source                 the ChainLog indexed; market: the ilk by name (ETH-A), as in positions
--   debt_dai, line_dai, dust_dai   Art × rate, the debt ceiling line and the minimum vault debt dust, in dai
--                          (the exact rad figures are in raw_maker_ilks as decimal strings)
--   line_used_pct          Art × rate ÷ line × 100 (NULL without a ceiling)
--   hole_room_dai          the ilk's liquidation room: hole - dirt (dai of debt plus penalty Dog may still start
--                          auctions for); global_room_dai the Dog-wide Hole - Dirt; liquidation_room_dai the
--                          smaller of the two, floored at 0
--   liquidation_ratio_pct  mat × 100; penalty_pct (chop - 1) × 100; fee_per_year_pct the stability fee
--   price_usd, price_next_usd   the pip's current and next (OSM) price, USD per whole gem
--   par                    the Spotter's par, ray (1e27 = 1 USD): what the Vat values one dai at, exact
-- Reads: stg_maker_ilks_at_snapshot.
WITH ilks AS (
    SELECT * FROM stg_maker_ilks_at_snapshot
),

final AS (
    SELECT
        'maker' AS protocol,
        i.chain_id,
        i.market AS source,
        i.ilk AS market,
        i.block_number,
        i.is_latest,
        i.ilk,
        i.symbol,
        i.gem,
        i.urns,
        i.debt_dai,
        i.line_dai,
        i.dust_dai,
        100 * i.line_used AS line_used_pct,
        i.hole_room_dai,
        i.global_room_dai,
        i.liquidation_room_dai,
        100 * i.liquidation_ratio AS liquidation_ratio_pct,
        100 * i.penalty AS penalty_pct,
        100 * i.fee_per_year AS fee_per_year_pct,
        i.price_usd,
        i.price_next_usd,
        i.par
    FROM ilks AS i
)

SELECT * FROM final
