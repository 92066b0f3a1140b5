-- How fresh each indexed contract's data is: events, latest snapshot, latest score, and the snapshot's age.
--
-- Grain: one row per sync_state row: (protocol, chain_id, source).
-- Key columns:
--   source                 the indexed contract (Aave provider, Morpho singleton)
--   events_to_block        logs stored through this block
--   snapshot_block, snapshot_time (TIMESTAMPTZ)   latest snapshot
--   scored_block, scored_at   highest block scored over the source's markets, and when; NULL if never scored
--   scored_markets         markets of the source in the latest score
--   unscored_blocks        snapshot_block − scored_block (> 0: a newer snapshot awaits `chainrisk score`)
--   snapshot_age_seconds   now − snapshot time, seconds (block time: a devnet's replayed past looks old)
-- Reads: stg_sync_state, stg_scored_markets.
WITH sources AS (
    SELECT * FROM stg_sync_state
),

scores AS (
    SELECT
        protocol,
        chain_id,
        source,
        max(block_number) AS scored_block,
        max(scored_at) AS scored_at,
        count(*) AS scored_markets
    FROM stg_scored_markets
    GROUP BY protocol, chain_id, source
),

final AS (
    SELECT
        s.protocol,
        s.chain_id,
        s.source,
        s.from_block,
        s.events_to_block,
        s.snapshot_block,
        s.snapshot_timestamp,
        s.snapshot_time,
        c.scored_block,
        c.scored_at,
        coalesce(c.scored_markets, 0) AS scored_markets,
        s.snapshot_block - c.scored_block AS unscored_blocks,
        epoch(now()) - s.snapshot_timestamp AS snapshot_age_seconds
    FROM sources AS s
    LEFT JOIN scores AS c USING (protocol, chain_id, source)
)

SELECT * FROM final
