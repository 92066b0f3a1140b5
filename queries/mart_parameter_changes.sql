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
--   changed_by_block, changed_by_time   the snapshot that first read it: the change happened at or before it
--   changed_at_block, changed_in_tx, changed_log_index   where the chain logs the change itself
--                          (stg_lending_governance_events: Aave's PoolConfigurator and AaveOracle, Morpho Blue's SetFee
--                          and CreateMarket, a Comet's upgrade and pause, Maker's files), the last such log between
--                          the two snapshots; NULL where no log of it was read (placed between the snapshots)
-- Reads: stg_lending_parameter_changes, stg_snapshot_blocks, stg_market_labels, stg_lending_governance_events.
WITH changes AS (
    SELECT * FROM stg_lending_parameter_changes
),

snapshots AS (
    SELECT protocol, chain_id, source, block_number, block_time, previous_block, previous_time FROM stg_snapshot_blocks
),

labels AS (
    SELECT protocol, chain_id, market, market_label FROM stg_market_labels
),

logs AS (
    SELECT * FROM stg_lending_governance_events
),

-- Each change with the last log that says it happened, between the snapshot before and the one that read it.
pinned AS (
    SELECT
        c.protocol, c.chain_id, c.source, c.item, c.change, c.parameter, c.block_number,
        g.block_number AS changed_at_block,
        g.tx_hash AS changed_in_tx,
        g.log_index AS changed_log_index
    FROM changes AS c
    JOIN snapshots AS s
        ON s.protocol = c.protocol AND s.chain_id = c.chain_id AND s.source = c.source AND s.block_number = c.block_number
    JOIN logs AS g
        ON g.protocol = c.protocol AND g.chain_id = c.chain_id AND g.source = c.source
        -- A log without an item names every item of its source; one without a change, any change (an upgrade).
        AND (g.item IS NULL OR g.item = c.item)
        AND (g.change IS NULL OR (g.change = c.change AND g.parameter IS NOT DISTINCT FROM c.parameter))
        AND g.block_number > coalesce(s.previous_block, -1) AND g.block_number <= c.block_number
    QUALIFY row_number() OVER (
        PARTITION BY c.protocol, c.chain_id, c.source, c.item, c.change, c.parameter, c.block_number
        -- A log naming the change before one that says any changed (a pause's own log before an upgrade's).
        ORDER BY g.change IS NULL, g.block_number DESC, g.log_index DESC
    ) = 1
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
        s.block_time AS changed_by_time,
        p.changed_at_block,
        p.changed_in_tx,
        p.changed_log_index
    FROM changes AS c
    LEFT JOIN snapshots AS s
        ON s.protocol = c.protocol AND s.chain_id = c.chain_id AND s.source = c.source AND s.block_number = c.block_number
    LEFT JOIN labels AS l ON l.protocol = c.protocol AND l.chain_id = c.chain_id AND l.market = c.market
    LEFT JOIN pinned AS p
        ON p.protocol = c.protocol AND p.chain_id = c.chain_id AND p.source = c.source AND p.item = c.item
        AND p.change = c.change AND p.parameter IS NOT DISTINCT FROM c.parameter AND p.block_number = c.block_number
)

SELECT * FROM final
