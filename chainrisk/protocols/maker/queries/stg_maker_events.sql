-- Maker/Sky vault events: the Vat's frob / fork / grab / init notes, the CDP manager's NewCdp, the Dog's Bark and the
-- Clippers' Take, Redo and Yank, in lending terms.
--
-- Grain: one row per (chain_id, source, block_number, log_index, part): a frob that moves both collateral and debt is
-- two rows (its collateral part and its debt part); every other event is one row.
-- Key columns:
--   source                 the ChainLog indexed; market: the ilk by name (ETH-A), as in positions
--   event                  frob, fork, grab, init (Vat notes), NewCdp (CDP manager), bark (Dog), take, redo, yank
--                          (the ilk's Clipper, since stop 54)
--   wallet                 the urn (frob, grab, bark; fork: the source urn; take, redo: the urn the auction sells
--                          for), NULL for NewCdp, init and yank
--   dink, dart             exact changes of collateral (wad) and normalised debt (wad); a bark's are its grab's
--   due_dai                a grab's debt exactly, in dai's smallest unit: the `due` (dart x rate, rad) of the Bark the
--                          Dog logged after it in the same transaction, floored to the wei; NULL for a grab no Bark
--                          follows (the Cat's before the Dog, End.skim, events indexed before bark was) and other
--                          events
--   keeper, keeper_incentive_dai   a bark's (and the grab it made): the keeper the Dog credited (`kpr`) and its
--                          incentive (tip + chip x tab, in dai's smallest unit, floored), from the Clipper's Kick in
--                          the transaction's receipt; NULL for events indexed before stop 52 and other events
--   auction_tab_dai        a bark's (and its grab's): the tab its auction must raise, the due times the ilk's chop (the
--                          liquidation penalty on top), from the Kick, in dai's smallest unit, floored (tab // 1e27);
--                          NULL for events indexed before stop 53; a take's: the tab it left; a redo's: the tab
--   clip, auction_id       a bark's (and its grab's) auction, and the auction a take, redo or yank acts on
--   auction_price          ray (1e27 = one dai per whole gem): the Kick's starting price (bark, since stop 54), the
--                          price a take paid, the price a redo restarted at
--   auction_owe_dai        a take's dai paid, owe // 1e27 (exact, floored)
--   auction_lot            the Vat's 18-decimal units of gem: the lot kicked (bark), left after a take, at a redo
--   action, position_key, action_asset, action_amount   the shared lending-event columns
--                          (chainrisk.protocols.adapter.LENDING_EVENT_COLUMNS): frob's dink > 0 collateral_in (the gem,
--                          in the Vat's 18-decimal units scaled to the gem's own), dink < 0 collateral_out, dart > 0
--                          borrow and dart < 0 repay (dai: dart times the ilk's rate at the nearest stored snapshot, at
--                          or before the event when there is one), grab liquidated (the debt confiscated: due_dai
--                          where a Bark gives it, else dart times the rate as for frob); bark: none
-- Reads: raw_maker_events, raw_maker_ilks, markets.
WITH raw AS (
    -- Governance's files (the only events with a `what`) are stg_maker_governance_events'.
    SELECT * FROM raw_maker_events WHERE what IS NULL
),

barks AS (
    SELECT
        chain_id, market, tx_hash, ilk, urn, log_index, due_dai AS bark_due, keeper AS bark_keeper,
        keeper_incentive_dai AS bark_incentive, auction_tab_dai AS bark_tab, clip AS bark_clip,
        auction_id AS bark_auction
    FROM raw
    WHERE event = 'bark'
),

-- Each grab with the Dog's Bark that made it: Dog.bark logs its Bark after the Vat.grab (dss src/dog.sol).
events AS (
    SELECT
        r.* EXCLUDE (due_dai, keeper, keeper_incentive_dai, auction_tab_dai, clip, auction_id),
        CASE WHEN r.event = 'grab' THEN b.bark_due ELSE r.due_dai END AS due_dai,
        CASE WHEN r.event = 'grab' THEN b.bark_keeper ELSE r.keeper END AS keeper,
        CASE WHEN r.event = 'grab' THEN b.bark_incentive ELSE r.keeper_incentive_dai END AS keeper_incentive_dai,
        CASE WHEN r.event = 'grab' THEN b.bark_tab ELSE r.auction_tab_dai END AS auction_tab_dai,
        CASE WHEN r.event = 'grab' THEN b.bark_clip ELSE r.clip END AS clip,
        CASE WHEN r.event = 'grab' THEN b.bark_auction ELSE r.auction_id END AS auction_id
    FROM raw AS r
    ASOF LEFT JOIN barks AS b
        ON b.chain_id = r.chain_id AND b.market = r.market AND b.tx_hash = r.tx_hash AND b.ilk = r.ilk
        AND b.urn = r.urn AND b.log_index > r.log_index
),

ilks AS (
    SELECT chain_id, market, ilk_hex, ilk, block_number, rate, gem, coalesce(gem_decimals, 18) AS gem_decimals
    FROM raw_maker_ilks
),

dai AS (
    SELECT protocol, chain_id, source, arg_max(loan_asset, block_number) AS dai
    FROM markets
    WHERE protocol = 'maker'
    GROUP BY protocol, chain_id, source
),

-- Each event beside its ilk's snapshot at or before it (else the earliest one): its rate, gem and name.
placed AS (
    SELECT e.*, i.ilk AS ilk_label, i.rate, i.gem, i.gem_decimals
    FROM events AS e
    ASOF LEFT JOIN ilks AS i
        ON i.chain_id = e.chain_id AND i.market = e.market AND i.ilk_hex = e.ilk AND i.block_number <= e.block_number
),

first_ilks AS (
    SELECT chain_id, market, ilk_hex, arg_min(ilk, block_number) AS ilk, arg_min(rate, block_number) AS rate,
        arg_min(gem, block_number) AS gem, arg_min(gem_decimals, block_number) AS gem_decimals
    FROM ilks
    GROUP BY chain_id, market, ilk_hex
),

described AS (
    SELECT
        p.* EXCLUDE (ilk_label, rate, gem, gem_decimals),
        coalesce(p.ilk_label, f.ilk, p.ilk_name) AS ilk_label,
        coalesce(p.rate, f.rate) AS rate,
        coalesce(p.gem, f.gem) AS gem,
        coalesce(p.gem_decimals, f.gem_decimals, 18) AS gem_decimals
    FROM placed AS p
    LEFT JOIN first_ilks AS f ON f.chain_id = p.chain_id AND f.market = p.market AND f.ilk_hex = p.ilk
),

parts AS (
    SELECT
        e.*,
        p.part,
        CASE
            WHEN e.event = 'frob' AND p.part = 'collateral' AND e.dink > 0 THEN 'collateral_in'
            WHEN e.event = 'frob' AND p.part = 'collateral' AND e.dink < 0 THEN 'collateral_out'
            WHEN e.event = 'frob' AND p.part = 'debt' AND e.dart > 0 THEN 'borrow'
            WHEN e.event = 'frob' AND p.part = 'debt' AND e.dart < 0 THEN 'repay'
            WHEN e.event = 'grab' AND p.part = 'debt' THEN 'liquidated'
        END AS action
    FROM described AS e
    CROSS JOIN (SELECT unnest(['collateral', 'debt']) AS part) AS p
    WHERE (e.event = 'frob' AND ((p.part = 'collateral' AND e.dink <> 0) OR (p.part = 'debt' AND e.dart <> 0)))
        OR (e.event = 'grab' AND p.part = 'debt')
        OR (e.event NOT IN ('frob', 'grab') AND p.part = 'collateral')
),

final AS (
    SELECT
        'maker' AS protocol,
        e.chain_id,
        e.market AS source,
        e.ilk_label AS market,
        e.block_number,
        e.block_hash,
        e.tx_hash,
        e.log_index,
        e.event,
        e.ilk AS ilk_hex,
        e.urn AS wallet,
        e.dst,
        e.cdp_id,
        e.owner,
        e.sender,
        e.dink,
        e.dart,
        CASE WHEN e.event = 'grab' THEN e.due_dai END AS due_dai,
        e.keeper,
        e.keeper_incentive_dai,
        e.auction_tab_dai,
        e.clip,
        e.auction_id,
        e.auction_price,
        e.auction_owe_dai,
        e.auction_lot,
        e.action,
        e.ilk_label AS position_key,
        CASE WHEN e.part = 'collateral' THEN e.gem ELSE d.dai END AS action_asset,
        CASE
            WHEN e.part = 'collateral' THEN abs(e.dink) // (10 ** (18 - e.gem_decimals))::HUGEINT
            WHEN e.due_dai IS NOT NULL THEN e.due_dai
            ELSE
                -- floor(|dart| x rate / 1e27) in HUGEINT: dart = d1 1e18 + d0 and rate = r1 1e18 + r0, so it is
                -- d1 r1 1e9 + (d1 r0 + d0 r1 + d0 r0 // 1e18) // 1e9, no product above ~1e37 (|dart| x rate itself
                -- would leave 128 bits; DuckDB's ** of integers is a double, which rounded it)
                (abs(e.dart) // 1000000000000000000) * (e.ray_rate // 1000000000000000000) * 1000000000
                + (
                    (abs(e.dart) // 1000000000000000000) * (e.ray_rate % 1000000000000000000)
                    + (abs(e.dart) % 1000000000000000000) * (e.ray_rate // 1000000000000000000)
                    + (abs(e.dart) % 1000000000000000000) * (e.ray_rate % 1000000000000000000)
                    // 1000000000000000000
                ) // 1000000000
        END AS action_amount
    FROM (
        SELECT *, coalesce(rate, 1000000000000000000000000000)::HUGEINT AS ray_rate FROM parts
    ) AS e
    LEFT JOIN dai AS d ON d.chain_id = e.chain_id AND d.source = e.market
)

SELECT * FROM final
