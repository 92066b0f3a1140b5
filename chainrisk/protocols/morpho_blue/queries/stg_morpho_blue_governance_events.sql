-- The logs in which Morpho Blue says its owner or a creator changed what mart_parameter_changes reads: a market's fee
-- (SetFee) and a market created (CreateMarket), where they are on the chain (GOVERNANCE_EVENT_COLUMNS).
--
-- Grain: one row per log (chain_id, source, block_number, log_index).
-- Key columns:
--   source, item           the singleton and the market id
--   change, parameter      'changed' and 'fee' (SetFee), 'listed' and NULL (CreateMarket)
--   block_number, tx_hash, log_index   where the log is
-- Reads: raw_morpho_blue_events.
SELECT
    'morpho-blue' AS protocol,
    chain_id,
    market AS source,
    market_id AS item,
    CASE event WHEN 'SetFee' THEN 'changed' ELSE 'listed' END AS change,
    CASE event WHEN 'SetFee' THEN 'fee' END AS parameter,
    block_number,
    tx_hash,
    log_index
FROM raw_morpho_blue_events
WHERE event IN ('SetFee', 'CreateMarket')
