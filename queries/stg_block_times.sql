-- The timestamp of every block `chainrisk credit history` has recorded: the blocks it sampled and every block an
-- indexed event came from, up to its last sample.
--
-- Grain: one row per (chain_id, block_number).
-- Key columns:
--   block_timestamp (s), block_time (TIMESTAMPTZ)
-- Reads: block_times.
WITH times AS (
    SELECT * FROM block_times
),

final AS (
    SELECT chain_id, block_number, block_timestamp, to_timestamp(block_timestamp) AS block_time FROM times
)

SELECT * FROM final
