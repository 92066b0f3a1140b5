-- Maker/Sky urns as read at every snapshot: the Vat's verdict and what Dog.bark would do now.
--
-- Grain: one row per (chain_id, source, block_number, ilk, urn); is_latest marks the source's latest snapshot.
-- Key columns:
--   source                 the ChainLog indexed; market: the ilk by name (ETH-A)
--   safe                   ink × spot ≥ art × rate, as Vat and Dog.bark check it
--   debt_dai               art × rate in dai
--   bark_refusal           why Dog.bark would revert (NULL when it would start an auction: an unsafe urn within
--                          the limits)
--   bark_tab_dai           what the auction would raise (due × chop), the figure Dog adds to dirt
--   bad_debt_dai           debt the urn's collateral at the pip's price cannot cover
-- Reads: raw_maker_urns, sync_state.
WITH urns AS (
    -- The rows hold at the source's latest snapshot (sync_state); a table that no snapshot has changed since is
    -- not written again and keeps the block it was written at (Store._replace_rows): stamped here anew.
    SELECT r.* REPLACE (coalesce(s.snapshot_block, r.block_number) AS block_number)
    FROM raw_maker_urns AS r
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
        u.chain_id,
        u.market AS source,
        u.ilk AS market,
        u.block_number,
        coalesce(l.is_latest, false) AS is_latest,
        u.urn,
        u.owner,
        u.safe,
        u.debt_dai,
        u.collateral_dai,
        u.bark_refusal,
        u.bark_tab_dai,
        u.bad_debt_dai
    FROM urns AS u
    LEFT JOIN latest AS l USING (chain_id, market, block_number)
)

SELECT * FROM final
