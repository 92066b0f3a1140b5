-- Every risk parameter governance changed on the indexed markets, across protocols: what, from what to what, and
-- between which two snapshots; with each item listed or gone after a market's first snapshot.
--
-- Grain: one row per change a snapshot first read (stg_lending_parameter_changes): a parameter of an item (an Aave
-- reserve or e-mode category, a Comet collateral or the Comet's own configuration, a Maker ilk, a Morpho market's
-- fee) whose value differs from what the source's snapshot before read; 'listed' and 'gone' rows name a whole item.
-- Key columns:
--   market_label           the market's name for people (stg_market_labels)
--   change                 'changed', 'listed' (first read after the source's first snapshot), 'gone' (no longer read)
--   item_kind, item, symbol   what the setting belongs to, and its token or name
--   parameter, unit        the setting (its raw column's name) and what the amounts are in ('percent', 'percent a
--                          year', 'tokens', 'dai', 'usd', 'unix time'; NULL: not an amount)
--   old_value, new_value   exact, in the contract's own units, as text
--   old_amount, new_amount, change_amount   the same in `unit`, and new less old
--   changed_after_block, changed_after_time   the source's snapshot before: the change happened after it
--   changed_by_block, changed_by_time   the snapshot that first read it: the change happened at or before it (the
--                          chain does not say when in between without the governance transaction's logs)
-- Reads: stg_lending_parameter_changes, stg_snapshot_blocks, stg_market_labels.
WITH changes AS (
    SELECT * FROM stg_lending_parameter_changes
),

snapshots AS (
    SELECT protocol, chain_id, source, block_number, block_time, previous_block, previous_time FROM stg_snapshot_blocks
),

labels AS (
    SELECT protocol, chain_id, market, market_label FROM stg_market_labels
),

final AS (
    SELECT
        c.protocol,
        c.chain_id,
        c.source,
        c.market,
        coalesce(l.market_label, c.market) AS market_label,
        c.change,
        c.item_kind,
        c.item,
        c.symbol,
        c.parameter,
        c.unit,
        c.old_value,
        c.new_value,
        c.old_amount,
        c.new_amount,
        c.new_amount - c.old_amount AS change_amount,
        s.previous_block AS changed_after_block,
        s.previous_time AS changed_after_time,
        c.block_number AS changed_by_block,
        s.block_time AS changed_by_time
    FROM changes AS c
    LEFT JOIN snapshots AS s
        ON s.protocol = c.protocol AND s.chain_id = c.chain_id AND s.source = c.source AND s.block_number = c.block_number
    LEFT JOIN labels AS l ON l.protocol = c.protocol AND l.chain_id = c.chain_id AND l.market = c.market
)

SELECT * FROM final
