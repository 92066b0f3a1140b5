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
-- Reads: stg_maker_urns_at_snapshot.
WITH urns AS (
    SELECT * FROM stg_maker_urns_at_snapshot
),

final AS (
    SELECT
        'maker' AS protocol,
        u.chain_id,
        u.market AS source,
        u.ilk AS market,
        u.block_number,
        u.is_latest,
        u.urn,
        u.owner,
        u.safe,
        u.debt_dai,
        u.collateral_dai,
        u.bark_refusal,
        u.bark_tab_dai,
        u.bad_debt_dai
    FROM urns AS u
)

SELECT * FROM final
