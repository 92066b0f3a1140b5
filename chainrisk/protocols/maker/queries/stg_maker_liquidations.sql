-- Maker/Sky liquidations: each Vat.grab a Dog.bark makes, with the vault's collateral and debt it confiscated, in the
-- shared liquidation columns (chainrisk.protocols.adapter.LIQUIDATION_COLUMNS).
--
-- Grain: one row per grab (chain_id, source, block_number, log_index).
-- Key columns:
--   wallet                 the urn
--   liquidator             the keeper the Dog's bark credited (the Clipper Kick's `kpr`, from the transaction's
--                          receipt: stg_maker_events.keeper); NULL for a grab without a Bark or indexed before stop 52
--   debt_repaid            the dai the grab confiscated, exact (to the wei) from the `due` of the Dog's Bark that made
--                          it (stg_maker_events.due_dai); NULL for a grab without a Bark (the grab logs normalised debt,
--                          dart), whose debt_repaid_tokens is then dart x the rate of the ilk's snapshot at or before
--                          the grab, exact when no drip came in between
--   collateral_seized      exact, in the gem's smallest unit (the Vat's 18-decimal dink scaled to the gem's decimals)
--   bad_debt_tokens        the due the grab's auction did not recover once it ended (stg_maker_auctions.shortfall_dai,
--                          in dai: 0 when its takes raised the due); NULL while the auction runs, for a grab without a
--                          Bark, and where the auction's end was not read (bad_debt_known false: not known yet)
--   keeper_reward_debt     exact: the incentive the bark's kick paid its keeper (the Clipper Kick's coin, in dai's
--                          smallest unit, floored: stg_maker_events.keeper_incentive_dai); NULL where unknown
--   protocol_fee_debt      exact: the liquidation penalty the bark charged, its auction's tab (due x chop, from the
--                          Clipper's Kick in the receipt) less its due, each floored to dai's wei; the Vow's once the
--                          auction raises it; NULL for grabs indexed before stop 53 or without a Bark
-- Reads: stg_maker_events, stg_maker_gems, stg_maker_auctions.
WITH grabs AS (
    SELECT * FROM stg_maker_events WHERE event = 'grab'
),

gems AS (
    SELECT * FROM stg_maker_gems
),

auctions AS (
    SELECT chain_id, source, clip, auction_id, shortfall_dai FROM stg_maker_auctions
),

seized AS (
    SELECT
        e.*,
        g.gem,
        g.symbol,
        g.gem_decimals,
        abs(e.dink) // g.vat_units_per_gem_unit AS seized,
        a.shortfall_dai
    FROM grabs AS e
    LEFT JOIN gems AS g ON g.chain_id = e.chain_id AND g.market = e.source AND g.ilk = e.market
    LEFT JOIN auctions AS a
        ON a.chain_id = e.chain_id AND a.source = e.source AND a.clip = e.clip AND a.auction_id = e.auction_id
),

final AS (
    SELECT
        'maker' AS protocol,
        e.chain_id,
        e.source,
        e.market,
        e.wallet,
        e.keeper AS liquidator,
        false AS keeper_pays,
        e.keeper_incentive_dai AS keeper_reward_debt,
        e.keeper_incentive_dai::DOUBLE / 1e18 AS keeper_reward_debt_tokens,
        NULL::HUGEINT AS keeper_reward_collateral,
        NULL::DOUBLE AS keeper_reward_collateral_tokens,
        -- The liquidation penalty: the Kick's tab over the Bark's due, each floored to dai's wei.
        e.auction_tab_dai - e.due_dai AS protocol_fee_debt,
        (e.auction_tab_dai - e.due_dai)::DOUBLE / 1e18 AS protocol_fee_debt_tokens,
        0::HUGEINT AS protocol_fee_collateral,  -- the penalty is in dai
        0.0::DOUBLE AS protocol_fee_collateral_tokens,
        e.block_number,
        e.tx_hash,
        e.log_index,
        e.action_asset AS debt_asset,
        'DAI' AS debt_symbol,
        e.due_dai AS debt_repaid,
        e.action_amount::DOUBLE / 1e18 AS debt_repaid_tokens,
        e.gem AS collateral_asset,
        e.symbol AS collateral_symbol,
        e.seized AS collateral_seized,
        e.seized::DOUBLE / pow(10, e.gem_decimals) AS collateral_seized_tokens,
        e.shortfall_dai::DOUBLE / 1e18 AS bad_debt_tokens,
        e.shortfall_dai IS NOT NULL AS bad_debt_known
    FROM seized AS e
)

SELECT * FROM final
