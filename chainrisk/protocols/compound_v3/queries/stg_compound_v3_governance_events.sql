-- The logs in which a Comet says governance changed what mart_parameter_changes reads (GOVERNANCE_EVENT_COLUMNS):
-- its proxy's Upgraded, when CometProxyAdmin.deployAndUpgradeTo points it at an implementation its Configurator
-- deployed, at which every setting of that proposal takes effect at once (the collaterals' factors, caps and feeds, a
-- collateral listed, the rate model, the store front's factor, the reserves target); and Comet.pause's PauseAction,
-- which sets pauseFlags.
--
-- Grain: one row per log (chain_id, source, block_number, log_index).
-- Key columns:
--   source                 the Comet (its proxy)
--   item                   NULL: every item of the Comet (an upgrade changes collaterals and the Comet's own
--                          settings at once)
--   change, parameter      NULL and NULL (Upgraded: any change, but one a log of its own pins), 'changed' and
--                          'pause_flags' (PauseAction)
--   block_number, tx_hash, log_index   where the log is
-- Reads: raw_compound_v3_events.
SELECT
    'compound-v3' AS protocol,
    chain_id,
    market AS source,
    NULL::VARCHAR AS item,
    CASE event WHEN 'PauseAction' THEN 'changed' END AS change,
    CASE event WHEN 'PauseAction' THEN 'pause_flags' END AS parameter,
    block_number,
    tx_hash,
    log_index
FROM raw_compound_v3_events
WHERE event IN ('Upgraded', 'PauseAction')
