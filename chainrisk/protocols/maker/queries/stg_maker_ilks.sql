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
-- Reads: raw_maker_ilks, sync_state.
WITH ilks AS (
    -- The rows hold at the source's latest snapshot (sync_state); a table that no snapshot has changed since is
    -- not written again and keeps the block it was written at (Store._replace_rows): stamped here anew.
    SELECT r.* REPLACE (coalesce(s.snapshot_block, r.block_number) AS block_number)
    FROM raw_maker_ilks AS r
    LEFT JOIN sync_state AS s
        ON s.protocol = 'maker' AND s.chain_id = r.chain_id AND s.market = r.market
        AND r.block_number <= s.snapshot_block
),

latest AS (
    SELECT chain_id, market, snapshot_block AS block_number, true AS is_latest
    FROM sync_state
    WHERE protocol = 'maker'
),

final AS (
    SELECT
        'maker' AS protocol,
        i.chain_id,
        i.market AS source,
        i.ilk AS market,
        i.block_number,
        coalesce(l.is_latest, false) AS is_latest,
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
    LEFT JOIN latest AS l USING (chain_id, market, block_number)
)

SELECT * FROM final
