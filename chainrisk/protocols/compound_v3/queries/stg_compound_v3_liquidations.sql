-- Compound V3 (Comet) liquidations: each absorb's AbsorbDebt (the base credited to the account) and AbsorbCollateral
-- (each collateral taken into the protocol), in the shared liquidation columns
-- (chainrisk.protocols.adapter.LIQUIDATION_COLUMNS).
--
-- Grain: one row per AbsorbDebt or AbsorbCollateral (chain_id, market, block_number, log_index): an absorb takes every
-- collateral at once, so it is one debt row and one row per collateral asset, all of one transaction.
-- Key columns:
--   wallet, liquidator     the account absorbed and the absorber
--   debt_repaid            the debt the absorb cancelled, in the base token's smallest unit: AbsorbDebt's basePaidOut
--                          (the debt plus whatever the collateral was worth beyond it) less the supply credited to the
--                          account, the Transfer from the zero address logged right after it (stg_compound_v3_events'
--                          `liquidated` amount); exact when nothing was credited, else up to 2 units over (the credit's
--                          Transfer is the present value of a rounded-down principal: Comet.sol absorbInternal)
--   collateral_seized      AbsorbCollateral's collateralAbsorbed, exact in the asset's smallest unit (NULL on the debt
--                          row, as the debt is NULL on the collateral rows)
--   credited_base          on the debt row: what absorb credited the account for its collateral, base units (exact):
--                          deltaBalance = divPrice(deltaValue, basePrice, baseScale), deltaValue the sum over the
--                          AbsorbCollateral rows of mulFactor(usdValue, liquidationFactor) (compound-finance/comet
--                          contracts/Comet.sol absorbInternal). The liquidation factor is the one in force at the
--                          absorb's block (governance changes it by upgrading the Comet): the version of the
--                          collateral's AssetInfo the last snapshot before that block read (history.raw_compound_v3_
--                          assets), where the first snapshot at or after it read the same factor; the first snapshot's
--                          factor for an absorb before any snapshot; unknown where the factor changed between the two
--                          snapshots around the absorb (which one it used is not known). basePrice is the one integer
--                          for which AbsorbDebt's usdValue = mulPrice(basePaidOut, basePrice, baseScale), NULL where
--                          several are (an absorb of less than one whole base token) or a collateral's factor is unknown
--   shortfall              on the debt row: the debt absorb closed that the credit did not cover, base units (exact):
--                          basePaidOut - credited_base where absorb floored the account's new balance at zero (no
--                          supply credited; Comet.sol: "all excess debt absorbed by reserves"), 0 where it credited a
--                          supply, NULL where credited_base is unknown
--   bad_debt_tokens        the shortfall in whole base tokens, on the debt row (NULL on the collateral rows);
--                          bad_debt_known false on a debt row whose shortfall is unknown (NULL), true elsewhere
-- Reads: history.raw_compound_v3_assets, snapshot_blocks, stg_compound_v3_events, stg_compound_v3_tokens.
WITH events AS (
    SELECT * FROM stg_compound_v3_events WHERE event IN ('AbsorbDebt', 'AbsorbCollateral')
),

base AS (
    SELECT
        chain_id, market, asset AS base_token, symbol AS base_symbol, decimals AS base_decimals, scale AS base_scale
    FROM stg_compound_v3_tokens
    WHERE is_base
),

assets AS (
    SELECT chain_id, market, asset, symbol, decimals FROM stg_compound_v3_tokens WHERE NOT is_base
),

-- Each collateral's liquidation factor in runs: the versions (history.raw_compound_v3_assets) whose factor differs
-- from the version before; a run holds from the snapshot that first read it (run_from) until the next run's. The
-- factors change rarely (prices, which open most versions, do not matter here), so the runs are few.
factor_versions AS (
    SELECT
        chain_id,
        market,
        asset,
        block_number,
        liquidation_factor,
        lag(liquidation_factor) OVER (PARTITION BY chain_id, market, asset ORDER BY block_number) AS previous_factor
    FROM history.raw_compound_v3_assets
),

runs AS (
    SELECT
        chain_id,
        market,
        asset,
        block_number AS run_from,
        liquidation_factor,
        lead(block_number) OVER (PARTITION BY chain_id, market, asset ORDER BY block_number) AS next_from,
        row_number() OVER (PARTITION BY chain_id, market, asset ORDER BY block_number) = 1 AS first_run
    FROM factor_versions
    WHERE previous_factor IS NULL OR previous_factor <> liquidation_factor
),

-- The Comet's last snapshot before the next run was read: up to it the run's factor was still in force; between it
-- and next_from the factor changed at a block no snapshot saw.
run_ends AS (
    SELECT
        r.*,
        (
            SELECT max(s.block_number)
            FROM snapshot_blocks AS s
            WHERE s.protocol = 'compound-v3' AND s.chain_id = r.chain_id AND s.source = r.market
                AND s.block_number < r.next_from
        ) AS certain_to
    FROM runs AS r
),

-- The factor each absorb used: the run read before its block and still read after it (the first run's for an absorb
-- before every snapshot); none where the factor changed between the snapshots around it.
factors AS (
    SELECT e.chain_id, e.market, e.asset, e.block_number, r.liquidation_factor
    FROM (SELECT DISTINCT chain_id, market, asset, block_number FROM events WHERE event = 'AbsorbCollateral') AS e
    JOIN run_ends AS r
        ON r.chain_id = e.chain_id AND r.market = e.market AND r.asset = e.asset
        AND (r.run_from < e.block_number OR r.first_run)
        AND (r.next_from IS NULL OR e.block_number <= r.certain_to)
),

-- deltaValue per absorbed account: mulFactor(value, liquidationFactor) = value * factor / 1e18, split at 1e18 so the
-- product stays inside HUGEINT. An account absorbed with no collateral has no row here (deltaValue 0).
credits AS (
    SELECT
        e.chain_id,
        e.market,
        e.tx_hash,
        e.wallet,
        sum(
            (e.usd_value // 1000000000000000000) * f.liquidation_factor
            + ((e.usd_value % 1000000000000000000) * f.liquidation_factor) // 1000000000000000000
        ) AS credited_value,
        bool_and(f.liquidation_factor IS NOT NULL AND e.usd_value IS NOT NULL) AS factors_known
    FROM events AS e
    LEFT JOIN factors AS f
        ON f.chain_id = e.chain_id AND f.market = e.market AND f.asset = e.asset AND f.block_number = e.block_number
    WHERE e.event = 'AbsorbCollateral'
    GROUP BY e.chain_id, e.market, e.tx_hash, e.wallet
),

-- basePrice from AbsorbDebt: the least integer p with floor(basePaidOut * p / baseScale) = usdValue, and whether it is
-- the only one (p + 1 gives a larger value). Values past 1e20 price units ($1e12) are left unknown: HUGEINT's bound.
debt_prices AS (
    SELECT
        e.chain_id,
        e.market,
        e.block_number,
        e.log_index,
        e.amount AS paid,
        b.base_scale,
        (e.usd_value * b.base_scale + e.amount - 1) // e.amount AS base_price
    FROM events AS e
    JOIN base AS b ON b.chain_id = e.chain_id AND b.market = e.market
    WHERE e.event = 'AbsorbDebt' AND e.amount > 0 AND e.usd_value < 100000000000000000000
),

-- mulPrice(basePaidOut, p, baseScale) for p and p + 1, split at baseScale (exact, inside HUGEINT).
debt_checks AS (
    SELECT
        d.*,
        (d.paid // d.base_scale) * d.base_price + ((d.paid % d.base_scale) * d.base_price) // d.base_scale
            AS value_at_price,
        (d.paid // d.base_scale) * (d.base_price + 1)
        + ((d.paid % d.base_scale) * (d.base_price + 1)) // d.base_scale AS value_above
    FROM debt_prices AS d
),

credited AS (
    SELECT
        e.chain_id,
        e.market,
        e.block_number,
        e.log_index,
        e.amount AS paid_out,
        CASE
            WHEN d.base_price > 0 AND d.value_at_price = e.usd_value AND d.value_above > e.usd_value
                AND coalesce(c.factors_known, true)
                THEN
                    -- divPrice(deltaValue, basePrice, baseScale) = deltaValue * baseScale / basePrice, split at
                    -- basePrice.
                    (coalesce(c.credited_value, 0) // d.base_price) * d.base_scale
                    + ((coalesce(c.credited_value, 0) % d.base_price) * d.base_scale) // d.base_price
        END AS credited_base,
        -- A supply credited to the account (the debt row's `liquidated` amount under basePaidOut): absorb's new
        -- balance was positive, the credit covered the whole debt.
        e.action_amount < e.amount AS credited_supply
    FROM events AS e
    LEFT JOIN debt_checks AS d
        ON d.chain_id = e.chain_id AND d.market = e.market AND d.block_number = e.block_number
        AND d.log_index = e.log_index
    LEFT JOIN credits AS c
        ON c.chain_id = e.chain_id AND c.market = e.market AND c.tx_hash = e.tx_hash AND c.wallet = e.wallet
    WHERE e.event = 'AbsorbDebt'
),

absorbed AS (
    SELECT
        *,
        CASE
            WHEN credited_supply THEN 0::HUGEINT
            -- greatest() would pass over a NULL credit
            WHEN credited_base IS NOT NULL THEN greatest(paid_out - credited_base, 0)
        END AS shortfall
    FROM credited
),

final AS (
    SELECT
        'compound-v3' AS protocol,
        e.chain_id,
        e.source,
        e.market,
        e.wallet,
        e.counterparty AS liquidator,
        false AS keeper_pays,
        NULL::HUGEINT AS keeper_reward_debt,
        NULL::DOUBLE AS keeper_reward_debt_tokens,
        NULL::HUGEINT AS keeper_reward_collateral,
        NULL::DOUBLE AS keeper_reward_collateral_tokens,
        -- Absorb takes all of the collateral and credits the account its liquidationFactor share of the value: the
        -- rest is the protocol's in value (less the store-front discount buyers get), no fee in tokens: unknown.
        NULL::HUGEINT AS protocol_fee_debt,
        NULL::DOUBLE AS protocol_fee_debt_tokens,
        NULL::HUGEINT AS protocol_fee_collateral,
        NULL::DOUBLE AS protocol_fee_collateral_tokens,
        e.block_number,
        e.tx_hash,
        e.log_index,
        CASE WHEN e.event = 'AbsorbDebt' THEN b.base_token END AS debt_asset,
        CASE WHEN e.event = 'AbsorbDebt' THEN b.base_symbol END AS debt_symbol,
        CASE WHEN e.event = 'AbsorbDebt' THEN e.action_amount::HUGEINT END AS debt_repaid,
        CASE WHEN e.event = 'AbsorbDebt' THEN e.action_amount::DOUBLE / pow(10, b.base_decimals) END
            AS debt_repaid_tokens,
        CASE WHEN e.event = 'AbsorbCollateral' THEN e.asset END AS collateral_asset,
        CASE WHEN e.event = 'AbsorbCollateral' THEN a.symbol END AS collateral_symbol,
        CASE WHEN e.event = 'AbsorbCollateral' THEN e.amount::HUGEINT END AS collateral_seized,
        CASE WHEN e.event = 'AbsorbCollateral' THEN e.amount::DOUBLE / pow(10, a.decimals) END
            AS collateral_seized_tokens,
        x.credited_base,
        x.shortfall,
        x.shortfall::DOUBLE / pow(10, b.base_decimals) AS bad_debt_tokens,
        e.event <> 'AbsorbDebt' OR x.shortfall IS NOT NULL AS bad_debt_known
    FROM events AS e
    LEFT JOIN base AS b ON b.chain_id = e.chain_id AND b.market = e.market
    LEFT JOIN assets AS a ON a.chain_id = e.chain_id AND a.market = e.market AND a.asset = e.asset
    LEFT JOIN absorbed AS x
        ON x.chain_id = e.chain_id AND x.market = e.market AND x.block_number = e.block_number
        AND x.log_index = e.log_index
)

SELECT * FROM final
