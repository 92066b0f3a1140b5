-- Each Maker/Sky ilk's limits at a glance: debt ceiling used, dust, liquidation capacity left (per ilk and
-- Dog-wide) against the unsafe vaults waiting for it.
--
-- Grain: one row per (chain_id, source, market), the ilk at its source's latest snapshot.
-- Key columns:
--   market_label           the ilk's name with its liquidation ratio (stg_market_labels)
--   debt_dai, line_dai, line_used_pct, headroom_dai   Art × rate, the ceiling, its use and what is left (dai)
--   dust_dai               the smallest debt a vault may carry (dai)
--   hole_room_dai, global_room_dai, liquidation_room_dai   Dog's room: ilk hole - dirt, Dog-wide Hole - Dirt,
--                          and the smaller (what auctions may still start for, dai of tab)
--   unsafe_urns, unsafe_debt_dai   vaults the Vat calls unsafe now and their debt
--   barkable_urns, barkable_tab_dai   those Dog.bark would start an auction for now, and the tabs (debt plus
--                          penalty) the auctions would raise
--   unsafe_tab_dai         what auctions of every unsafe vault would need room for: their debt × chop (dai)
--   room_covers_unsafe     liquidation_room_dai ≥ unsafe_tab_dai: Dog can start every auction needed now
--   bad_debt_dai           debt the unsafe vaults' collateral cannot cover at the pip's price
-- Reads: stg_maker_ilks, stg_maker_urns, stg_market_labels.
WITH ilks AS (
    SELECT * FROM stg_maker_ilks WHERE is_latest
),

urns AS (
    SELECT
        chain_id,
        source,
        market,
        count(*) FILTER (WHERE NOT safe) AS unsafe_urns,
        coalesce(sum(debt_dai) FILTER (WHERE NOT safe), 0) AS unsafe_debt_dai,
        count(*) FILTER (WHERE NOT safe AND bark_refusal IS NULL) AS barkable_urns,
        coalesce(sum(bark_tab_dai) FILTER (WHERE NOT safe AND bark_refusal IS NULL), 0) AS barkable_tab_dai,
        coalesce(sum(bad_debt_dai) FILTER (WHERE NOT safe), 0) AS bad_debt_dai
    FROM stg_maker_urns
    WHERE is_latest
    GROUP BY chain_id, source, market
),

labels AS (
    SELECT chain_id, market, market_label FROM stg_market_labels WHERE protocol = 'maker'
),

final AS (
    SELECT
        i.protocol,
        i.chain_id,
        i.source,
        i.market,
        coalesce(lb.market_label, i.market) AS market_label,
        i.block_number,
        i.symbol,
        i.urns,
        i.debt_dai,
        i.line_dai,
        i.line_used_pct,
        greatest(i.line_dai - i.debt_dai, 0) AS headroom_dai,
        i.dust_dai,
        i.hole_room_dai,
        i.global_room_dai,
        i.liquidation_room_dai,
        coalesce(u.unsafe_urns, 0) AS unsafe_urns,
        coalesce(u.unsafe_debt_dai, 0) AS unsafe_debt_dai,
        coalesce(u.barkable_urns, 0) AS barkable_urns,
        coalesce(u.barkable_tab_dai, 0) AS barkable_tab_dai,
        coalesce(u.unsafe_debt_dai, 0) * (1 + i.penalty_pct / 100) AS unsafe_tab_dai,
        i.liquidation_room_dai >= unsafe_tab_dai AS room_covers_unsafe,
        coalesce(u.bad_debt_dai, 0) AS bad_debt_dai,
        i.liquidation_ratio_pct,
        i.penalty_pct,
        i.fee_per_year_pct,
        i.price_usd,
        i.price_next_usd
    FROM ilks AS i
    LEFT JOIN urns AS u USING (chain_id, source, market)
    LEFT JOIN labels AS lb USING (chain_id, market)
)

SELECT * FROM final
