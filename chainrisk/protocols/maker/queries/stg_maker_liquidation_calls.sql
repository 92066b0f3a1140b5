-- Maker/Sky liquidation calls a keeper can send now: per unsafe urn, what Dog.bark would do at the latest snapshot
-- (raw_maker_urns: the art and ink it grabs for the auction, or why it reverts), in the shared liquidation-call
-- columns (chainrisk.protocols.adapter.LIQUIDATION_CALL_COLUMNS). The keeper who barks pays nothing and earns the
-- Clipper's tip and chip (keeper_reward_debt); the collateral goes to an auction.
--
-- Grain: one row per (chain_id, source, market, urn) not safe at the ChainLog's latest snapshot.
-- Key columns:
--   market                 the ilk by name (ETH-A); wallet: the urn
--   debt_repaid            exact: the debt bark grabs, its due (dart x rate) floored to dai's wei, as the Bark will
--                          log it (NULL in rows stored before the column)
--   collateral_seized      exact: the dink bark grabs, in the gem's smallest unit
--   bad_debt_tokens        the debt the urn's collateral at the pip's price cannot cover (what the auction will
--                          likely leave the Vow short), in dai
--   keeper_reward_debt     exact: the incentive the bark's kick pays the keeper (Clipper tip + chip x tab, dai's
--                          smallest unit, floored; sucked from the Vow); NULL where the clip does not answer tip
--                          and chip
--   protocol_fee_debt      exact: the liquidation penalty the bark charges, the tab its auction must raise (due x chop,
--                          floored to dai's wei as the Kick will log it) less the due; the Vow's once the auction
--                          raises it (NULL in rows stored before stop 53)
--   blocked                why Dog.bark reverts (Dog/liquidation-limit-hit, Dog/dusty-auction-from-partial-liquidation,
--                          ...), NULL when it starts an auction
-- Reads: stg_maker_urns_at_snapshot, stg_maker_gems, markets.
WITH urns AS (
    SELECT r.*
    FROM stg_maker_urns_at_snapshot AS r
    WHERE NOT r.safe
),

gems AS (
    SELECT * FROM stg_maker_gems
),

dai AS (
    SELECT chain_id, source, arg_max(loan_asset, block_number) AS dai
    FROM markets
    WHERE protocol = 'maker'
    GROUP BY chain_id, source
),

final AS (
    SELECT
        'maker' AS protocol,
        u.chain_id,
        u.market AS source,
        u.ilk AS market,
        u.urn AS wallet,
        u.block_number,
        'bark' AS call,
        false AS keeper_pays,
        d.dai AS debt_asset,
        'DAI' AS debt_symbol,
        u.bark_due AS debt_repaid,
        coalesce(u.bark_due::DOUBLE / 1e18, u.bark_due_dai) AS debt_repaid_tokens,
        g.gem AS collateral_asset,
        g.symbol AS collateral_symbol,
        abs(u.bark_dink) // g.vat_units_per_gem_unit AS collateral_seized,
        (abs(u.bark_dink) // g.vat_units_per_gem_unit)::DOUBLE / pow(10, g.gem_decimals) AS collateral_seized_tokens,
        nullif(u.bad_debt_dai, 0) AS bad_debt_tokens,
        u.bark_incentive AS keeper_reward_debt,
        u.bark_incentive::DOUBLE / 1e18 AS keeper_reward_debt_tokens,
        NULL::HUGEINT AS keeper_reward_collateral,
        NULL::DOUBLE AS keeper_reward_collateral_tokens,
        -- The liquidation penalty: the tab the auction must raise over the due (tab = due x chop / WAD).
        u.bark_tab - u.bark_due AS protocol_fee_debt,
        (u.bark_tab - u.bark_due)::DOUBLE / 1e18 AS protocol_fee_debt_tokens,
        CASE WHEN u.bark_refusal IS NULL THEN 0::HUGEINT END AS protocol_fee_collateral,  -- the penalty is in dai
        CASE WHEN u.bark_refusal IS NULL THEN 0.0::DOUBLE END AS protocol_fee_collateral_tokens,
        u.health_factor_wad::DOUBLE / 1e18 AS health_factor,
        u.bark_refusal AS blocked
    FROM urns AS u
    LEFT JOIN gems AS g ON g.chain_id = u.chain_id AND g.market = u.market AND g.ilk = u.ilk
    LEFT JOIN dai AS d ON d.chain_id = u.chain_id AND d.source = u.market
)

SELECT * FROM final
