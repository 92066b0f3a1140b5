-- Indexing progress of every indexed contract: how far its events and its latest snapshot reach.
--
-- Grain: one row per (protocol, chain_id, source).
-- Key columns:
--   source                     the indexed contract (sync_state.market: the Aave provider, the Morpho singleton)
--   from_block                 first block indexed
--   events_to_block            logs stored through this block (NULL before the first run finished)
--   snapshot_block             block of the latest snapshot; snapshot_timestamp in seconds,
--                              snapshot_time as TIMESTAMPTZ
-- Reads: sync_state.
WITH state AS (
    SELECT * FROM sync_state
),

final AS (
    SELECT
        protocol,
        chain_id,
        market AS source,
        from_block,
        events_to_block,
        events_to_block_hash,
        snapshot_block,
        snapshot_block_hash,
        snapshot_timestamp,
        to_timestamp(snapshot_timestamp) AS snapshot_time
    FROM state
)

SELECT * FROM final
