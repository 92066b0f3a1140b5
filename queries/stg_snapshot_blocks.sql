-- Every snapshot the indexer took of each indexed contract, with the snapshot before it: what a change first read at
-- a snapshot happened after.
--
-- Grain: one row per (protocol, chain_id, source, block_number).
-- Key columns:
--   source                 the indexed contract (Aave's PoolAddressesProvider, a Comet, Morpho Blue, Maker's
--                          ChainLog, Liquity's TroveManager), as raw tables' `market` name it
--   block_timestamp (s), block_time (TIMESTAMPTZ)   the snapshot block's time
--   previous_block, previous_timestamp, previous_time   the source's snapshot before this one (NULL for its first):
--                          state read at this snapshot and not at that one changed in between
--   is_first               the source's first snapshot
-- Reads: snapshot_blocks.
WITH snapshots AS (
    SELECT protocol, chain_id, source, block_number, block_hash, block_timestamp FROM snapshot_blocks
),

final AS (
    SELECT
        protocol,
        chain_id,
        source,
        block_number,
        block_hash,
        block_timestamp,
        to_timestamp(block_timestamp) AS block_time,
        lag(block_number) OVER source_order AS previous_block,
        lag(block_timestamp) OVER source_order AS previous_timestamp,
        to_timestamp(lag(block_timestamp) OVER source_order) AS previous_time,
        lag(block_number) OVER source_order IS NULL AS is_first
    FROM snapshots
    WINDOW source_order AS (PARTITION BY protocol, chain_id, source ORDER BY block_number)
)

SELECT * FROM final
