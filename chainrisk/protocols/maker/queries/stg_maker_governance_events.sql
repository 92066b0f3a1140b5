-- The logs in which Maker/Sky's governance files what mart_parameter_changes reads (GOVERNANCE_EVENT_COLUMNS): the
-- Vat's notes of file(ilk, 'line' | 'dust', ...), the Spotter's of 'mat' and 'pip' and the Jug's of 'duty' (anonymous
-- LibNote logs), the Dog's File of 'chop', 'hole' and 'clip', each Clipper's File of 'buf', 'tail', 'cusp', 'chip' and
-- 'tip' (chainrisk.protocols.maker.events.FILED), and the Vat's init of an ilk (listed).
--
-- Grain: one row per log (chain_id, source, block_number, log_index).
-- Key columns:
--   source                 the ChainLog indexed
--   item                   the ilk by name (ETH-A), as stg_maker_parameter_changes names it
--   change, parameter      'changed' and the raw_maker_ilks column the file sets (a Clipper's prefixed clip_), or
--                          'listed' (init; parameter NULL)
--   block_number, tx_hash, log_index   where the log is
-- Reads: raw_maker_events.
SELECT
    'maker' AS protocol,
    chain_id,
    market AS source,
    ilk_name AS item,
    CASE WHEN event = 'init' THEN 'listed' ELSE 'changed' END AS change,
    CASE
        WHEN event = 'init' THEN NULL
        WHEN event = 'clip_file' THEN 'clip_' || what
        ELSE what
    END AS parameter,
    block_number,
    tx_hash,
    log_index
FROM raw_maker_events
WHERE event = 'init' OR what IS NOT NULL
