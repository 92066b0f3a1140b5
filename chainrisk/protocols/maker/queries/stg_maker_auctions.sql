-- Maker/Sky liquidation auctions: every Clipper auction a Dog.bark started (its Bark and the Kick in its receipt) or
-- the latest snapshot finds running, with what its takes raised, its resets, how it ended and, while it runs, its
-- price against the oracle's (makerdao/dss src/clip.sol).
--
-- Grain: one row per (chain_id, source, clip, auction_id).
-- Key columns:
--   market                 the ilk by name (ETH-A); wallet: the urn the auction sells for
--   status                 running; needs redo (older than the clip's tail or priced under its cusp of its start:
--                          no take until a keeper resets it); raised (its tab fully raised: the collateral left went
--                          back to the urn); sold out (every unit sold, the tab not raised: the rest is the Vow's
--                          loss); yanked (cancelled by its ward, Maker's End); not followed (its clip is no ilk's
--                          clip now and no closing take of it was read: a file indexed before stop 55, which read a
--                          replaced clip no more; since, every clip a bark named is followed); unknown (no closing
--                          take was read)
--   due_dai, tab_dai       exact, in dai's smallest unit: the debt the bark moved to the Vow (the Bark's due) and the
--                          tab the auction had to raise (the Kick's, due x chop: the penalty on top); NULL for an
--                          auction whose bark was not indexed (started before the indexed blocks)
--   buyers, top_buyer, top_buyer_paid_dai   who bought: the takes' distinct senders (each take's transaction's
--                          sender, from its receipt: the buyer, or the operator of the keeper contract that bought; 0
--                          and NULL for takes indexed before stop 55), the one that paid the most dai and how much
--   raised_dai             exact: the dai its takes paid, each take's owe floored to the wei (0 before any take);
--                          where takes may have gone unread (its bark was indexed before stop 54 or while its clip was
--                          not followed, or its clip is no ilk's now), the Kick's tab less the tab now, when that is
--                          known (the running sale's, or its closing take's: a take lowers the tab by its owe, nothing
--                          else moves it), to the wei's rounding; else NULL
--   debt_recovered_dai     exact: the part of raised_dai that covers the due; penalty_raised_dai: the part beyond it
--   shortfall_dai          exact: the due the auction did not recover (bad debt on the Vow), once it ended (raised or
--                          sold out; 0 when it recovered the due); NULL while it runs, and where raised_dai is
--   tab_left_dai, lot_left the tab still to raise and the collateral still for sale (the last take's or redo's, else
--                          the Kick's; the snapshot's while running), lot in the gem's smallest unit
--   collateral_sold, collateral_returned   exact, the gem's smallest unit: sold to takers; given back to the urn
--                          when the tab was raised
--   average_price_dai      raised over sold, dai per whole gem
--   price_dai              a running auction's price now (getStatus), dai per whole gem; feed_price_dai the oracle's
--                          current value at par (what a reset restarts from, times buf); price_to_feed their ratio
--                          (under 1: sold below the oracle's price)
--   lot_value_to_tab       the collateral left at the oracle's price over the tab left: under 1, even a sale at the
--                          oracle's price leaves the Vow short
-- Reads: raw_maker_events, stg_maker_auctions_at_snapshot, sync_state, stg_maker_ilks_at_snapshot, stg_maker_gems.
WITH events AS (
    SELECT * FROM raw_maker_events WHERE clip IS NOT NULL AND auction_id IS NOT NULL
),

barks AS (
    SELECT
        chain_id, market AS source, clip, auction_id,
        arg_min(ilk, block_number) AS ilk_hex,
        arg_min(urn, block_number) AS urn,
        min(block_number) AS kicked_block,
        arg_min(tx_hash, block_number) AS kick_tx_hash,
        arg_min(keeper, block_number) AS keeper,
        arg_min(due_dai, block_number) AS due_dai,
        arg_min(auction_tab_dai, block_number) AS tab_dai,
        arg_min(coalesce(auction_lot, abs(dink)), block_number) AS lot,
        arg_min(auction_followed, block_number) AS followed
    FROM events
    WHERE event = 'bark'
    GROUP BY chain_id, market, clip, auction_id
),

takes AS (
    SELECT
        chain_id, market AS source, clip, auction_id,
        arg_min(ilk, block_number) AS ilk_hex,
        arg_min(urn, block_number) AS urn,
        count(*) AS takes,
        sum(auction_owe_dai) AS raised_dai,
        arg_max(auction_tab_dai, (block_number, log_index)) AS tab_left_dai,
        arg_max(auction_lot, (block_number, log_index)) AS lot_left,
        max(block_number) AS last_take_block
    FROM events
    WHERE event = 'take'
    GROUP BY chain_id, market, clip, auction_id
),

-- Each auction's buyers: the takes' senders (from the receipts; NULL for takes indexed before stop 55), and the one
-- that paid the most dai.
buyers AS (
    SELECT
        chain_id, source, clip, auction_id,
        count(*) AS buyers,
        arg_max(keeper, paid_dai) AS top_buyer,
        max(paid_dai) AS top_buyer_paid_dai
    FROM (
        SELECT chain_id, market AS source, clip, auction_id, keeper, sum(auction_owe_dai) AS paid_dai
        FROM events
        WHERE event = 'take' AND keeper IS NOT NULL
        GROUP BY ALL
    )
    GROUP BY chain_id, source, clip, auction_id
),

redos AS (
    SELECT
        chain_id, market AS source, clip, auction_id,
        count(*) AS redos,
        max(block_number) AS last_redo_block,
        sum(keeper_incentive_dai) AS redo_incentives_dai
    FROM events
    WHERE event = 'redo'
    GROUP BY chain_id, market, clip, auction_id
),

yanks AS (
    SELECT chain_id, market AS source, clip, auction_id, min(block_number) AS yanked_block
    FROM events
    WHERE event = 'yank'
    GROUP BY chain_id, market, clip, auction_id
),

live AS (
    SELECT l.*, s.snapshot_timestamp
    FROM stg_maker_auctions_at_snapshot AS l
    LEFT JOIN sync_state AS s ON s.protocol = 'maker' AND s.chain_id = l.chain_id AND s.market = l.market
),

ilks AS (
    SELECT chain_id, market AS source, ilk_hex, ilk, clip, price, par, price_usd, block_number
    FROM stg_maker_ilks_at_snapshot
),

auctions AS (
    SELECT chain_id, source, clip, auction_id FROM barks
    UNION
    SELECT chain_id, market AS source, clip, auction_id FROM live
),

joined AS (
    SELECT
        a.chain_id,
        a.source,
        a.clip,
        a.auction_id,
        coalesce(b.ilk_hex, l.ilk_hex, t.ilk_hex) AS ilk_hex,
        coalesce(b.urn, l.urn, t.urn) AS urn,
        b.kicked_block,
        b.kick_tx_hash,
        b.keeper,
        b.due_dai,
        b.tab_dai,
        b.lot AS lot_kicked,
        b.followed,
        coalesce(t.takes, 0) AS takes,
        t.raised_dai,
        t.tab_left_dai AS take_tab_left,
        t.lot_left AS take_lot_left,
        t.last_take_block,
        coalesce(u.buyers, 0) AS buyers,
        u.top_buyer,
        u.top_buyer_paid_dai,
        coalesce(r.redos, 0) AS redos,
        r.last_redo_block,
        r.redo_incentives_dai,
        y.yanked_block,
        l.auction_id IS NOT NULL AS is_live,
        l.tab_dai AS live_tab_dai,
        l.lot AS live_lot,
        l.price AS live_price,
        l.needs_redo,
        l.tic,
        l.block_number AS snapshot_block,
        l.snapshot_timestamp
    FROM auctions AS a
    LEFT JOIN barks AS b USING (chain_id, source, clip, auction_id)
    LEFT JOIN takes AS t USING (chain_id, source, clip, auction_id)
    LEFT JOIN buyers AS u USING (chain_id, source, clip, auction_id)
    LEFT JOIN redos AS r USING (chain_id, source, clip, auction_id)
    LEFT JOIN yanks AS y USING (chain_id, source, clip, auction_id)
    LEFT JOIN live AS l ON l.chain_id = a.chain_id AND l.market = a.source AND l.clip = a.clip
        AND l.auction_id = a.auction_id
),

placed AS (
    SELECT
        j.*,
        i.ilk AS market,
        i.price AS feed_value,
        i.par,
        g.gem,
        g.symbol,
        g.gem_decimals,
        g.vat_units_per_gem_unit,
        f.clip IS NOT NULL AS clip_followed,
        CASE
            WHEN j.yanked_block IS NOT NULL THEN 'yanked'
            WHEN j.take_tab_left = 0 THEN 'raised'
            WHEN j.take_lot_left = 0 THEN 'sold out'
            WHEN j.is_live AND j.needs_redo THEN 'needs redo'
            WHEN j.is_live THEN 'running'
            WHEN f.clip IS NULL THEN 'not followed'
            ELSE 'unknown'
        END AS status
    FROM joined AS j
    LEFT JOIN ilks AS i ON i.chain_id = j.chain_id AND i.source = j.source AND i.ilk_hex = j.ilk_hex
    LEFT JOIN ilks AS f ON f.chain_id = j.chain_id AND f.source = j.source AND f.clip = j.clip
    LEFT JOIN stg_maker_gems AS g ON g.chain_id = j.chain_id AND g.market = j.source AND g.ilk = i.ilk
),

figures AS (
    SELECT
        p.*,
        -- Every take was read where the clip's logs were read from the bark on (and still are): none read is none
        -- made, and the takes' owe summed. Otherwise what was read is a floor, not the figure; but a take lowers the
        -- tab by its owe and nothing else moves it (dss src/clip.sol: redo keeps it), so where the tab now is known
        -- (the running sale's, or the closing take's) what was raised is the Kick's tab less it, to the wei's
        -- rounding (each floored to the wei).
        CASE
            WHEN p.followed AND p.clip_followed THEN coalesce(p.raised_dai, 0)
            WHEN p.is_live THEN p.tab_dai - p.live_tab_dai
            WHEN p.status IN ('raised', 'sold out') THEN p.tab_dai - p.take_tab_left
        END AS raised,
        coalesce(p.live_tab_dai, p.take_tab_left, p.tab_dai) AS tab_left_dai,
        coalesce(p.live_lot, p.take_lot_left, p.lot_kicked) AS lot_left_vat,
        -- The oracle's current value at par, dai per whole gem: val x 1e9 x 1e27 / par over 1e27 (the Clipper's
        -- feed price, which kick and redo multiply by buf).
        p.feed_value::DOUBLE / 1e18 / (p.par::DOUBLE / 1e27) AS feed_price_dai
    FROM placed AS p
),

final AS (
    SELECT
        'maker' AS protocol,
        f.chain_id,
        f.source,
        f.market,
        f.ilk_hex,
        f.clip,
        f.auction_id,
        f.urn AS wallet,
        f.status,
        f.kicked_block,
        f.kick_tx_hash,
        f.keeper,
        f.gem AS collateral_asset,
        f.symbol AS collateral_symbol,
        f.due_dai,
        f.tab_dai,
        f.takes,
        f.buyers,
        f.top_buyer,
        f.top_buyer_paid_dai,
        f.raised AS raised_dai,
        -- least and greatest skip a NULL argument: an unknown figure must stay unknown.
        CASE WHEN f.raised IS NOT NULL AND f.due_dai IS NOT NULL THEN least(f.raised, f.due_dai) END
            AS debt_recovered_dai,
        CASE WHEN f.raised IS NOT NULL AND f.due_dai IS NOT NULL THEN greatest(f.raised - f.due_dai, 0) END
            AS penalty_raised_dai,
        CASE WHEN f.status IN ('raised', 'sold out') AND f.raised IS NOT NULL AND f.due_dai IS NOT NULL
            THEN greatest(f.due_dai - f.raised, 0) END AS shortfall_dai,
        f.tab_left_dai,
        f.lot_left_vat // f.vat_units_per_gem_unit AS lot_left,
        f.lot_left_vat::DOUBLE / 1e18 AS lot_left_tokens,
        (f.lot_kicked - f.lot_left_vat) // f.vat_units_per_gem_unit AS collateral_sold,
        CASE WHEN f.status = 'raised' THEN f.take_lot_left // f.vat_units_per_gem_unit END AS collateral_returned,
        f.raised::DOUBLE / 1e18
        / nullif((f.lot_kicked - f.lot_left_vat)::DOUBLE / 1e18, 0)
            AS average_price_dai,
        f.redos,
        f.last_redo_block,
        f.redo_incentives_dai,
        f.last_take_block,
        f.yanked_block,
        f.tic AS started_at,
        f.snapshot_timestamp - f.tic AS age_s,
        f.needs_redo,
        f.live_price::DOUBLE / 1e27 AS price_dai,
        f.feed_price_dai,
        f.live_price::DOUBLE / 1e27 / nullif(f.feed_price_dai, 0) AS price_to_feed,
        CASE
            WHEN f.is_live
                THEN f.lot_left_vat::DOUBLE / 1e18 * f.feed_price_dai / nullif(f.tab_left_dai::DOUBLE / 1e18, 0)
        END AS lot_value_to_tab,
        f.snapshot_block
    FROM figures AS f
)

SELECT * FROM final
