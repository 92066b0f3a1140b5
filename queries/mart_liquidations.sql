-- Every liquidation the indexed contracts logged, across protocols: who was liquidated, by whom, when, the debt it
-- repaid and the collateral it took, in tokens and in USD at the time.
--
-- Grain: one row per liquidation event (stg_lending_liquidations): a Comet absorb is its debt row and one row per
-- collateral it took, all of one tx_hash.
-- Key columns:
--   market_label           the market's name for people (stg_market_labels)
--   wallet, liquidator     the account liquidated and the caller (Maker: the keeper the bark credited; Liquity: the
--                          caller paid its gas compensation; both from the transaction's receipt, NULL for those
--                          indexed before stop 52)
--   block_number, block_time   the event's block and its time (NULL until `chainrisk credit history` has recorded
--                          the block's timestamp)
--   debt_symbol, debt_repaid (exact, smallest unit; NULL where the event gives no exact figure), debt_repaid_tokens,
--   debt_repaid_usd        the debt taken off the account
--   collateral_symbol, collateral_seized (exact), collateral_seized_tokens, collateral_seized_usd   what it took
--   bad_debt_tokens, bad_debt_usd   debt written off at the liquidation (Morpho Blue, Aave 3.3+, a Comet absorb's
--                          shortfall, a Maker grab's ended auction's)
--   bad_debt_known         false where that figure is not known (yet): a Maker auction still running or whose end was
--                          not read, a Comet absorb whose liquidation factor changed between the snapshots around it
--   keeper_reward_debt, keeper_reward_collateral (exact, and _tokens), keeper_reward_usd   what the protocol paid the
--                          liquidator (a Maker bark's incentive, Liquity's gas compensation in Normal Mode), in USD at
--                          the row's prices; NULL where it paid none in tokens or the logs do not say
--   protocol_fee_debt, protocol_fee_collateral (exact, and _tokens), protocol_fee_usd   what the protocol charged
--                          the account on top: Maker's liquidation penalty in dai (the auction's tab over the due, the
--                          Vow's once the auction raises it), Aave's liquidation protocol fee in the collateral (the
--                          aToken's transfer to the treasury); in USD at the row's prices; 0 where the protocol charges
--                          none (Morpho Blue, Liquity), NULL for Comet and where the logs do not say
--   liquidator_gain_usd    before gas: collateral_seized_usd - debt_repaid_usd where the liquidator repaid the debt
--                          for the collateral (keeper_pays: Aave, Morpho Blue), else keeper_reward_usd (NULL for a
--                          Comet absorb: points; the collateral is the protocol's, not the keeper's)
--   price_block, price_source   where the USD prices come from: 'history' (stg_asset_price_history, the last sample at
--                          or before the event: `chainrisk credit history` records them) or 'latest' (the market's
--                          latest snapshot, after the event, when no earlier sample exists); NULL USD without either
-- Reads: stg_lending_liquidations, stg_market_labels, stg_asset_price_history, stg_block_times, stg_asset_prices_latest.
WITH liquidations AS (
    SELECT * FROM stg_lending_liquidations
),

labels AS (
    SELECT protocol, chain_id, market, market_label FROM stg_market_labels
),

prices AS (
    SELECT chain_id, asset, block_number, price_usd FROM stg_asset_price_history
),

latest_prices AS (
    SELECT protocol, chain_id, market, asset, price_usd, block_number FROM stg_asset_prices_latest
),

times AS (
    SELECT chain_id, block_number, block_timestamp, block_time FROM stg_block_times
),

debt_priced AS (
    SELECT l.*, p.price_usd AS debt_history_price, p.block_number AS debt_history_block
    FROM liquidations AS l
    ASOF LEFT JOIN prices AS p
        ON p.chain_id = l.chain_id AND p.asset = l.debt_asset AND p.block_number <= l.block_number
),

priced AS (
    SELECT d.*, p.price_usd AS collateral_history_price, p.block_number AS collateral_history_block
    FROM debt_priced AS d
    ASOF LEFT JOIN prices AS p
        ON p.chain_id = d.chain_id AND p.asset = d.collateral_asset AND p.block_number <= d.block_number
),

chosen AS (
    SELECT
        p.*,
        -- One source per row, so both sides of a row are valued alike: the history where it has every asset the
        -- row names, else the latest snapshot.
        (p.debt_asset IS NULL OR p.debt_history_price IS NOT NULL)
        AND (p.collateral_asset IS NULL OR p.collateral_history_price IS NOT NULL) AS from_history,
        ld.price_usd AS debt_latest_price,
        lc.price_usd AS collateral_latest_price,
        greatest(ld.block_number, lc.block_number) AS latest_block
    FROM priced AS p
    LEFT JOIN latest_prices AS ld
        ON ld.protocol = p.protocol AND ld.chain_id = p.chain_id AND ld.market = p.market AND ld.asset = p.debt_asset
    LEFT JOIN latest_prices AS lc
        ON lc.protocol = p.protocol AND lc.chain_id = p.chain_id AND lc.market = p.market
        AND lc.asset = p.collateral_asset
),

valued AS (
    SELECT
        c.*,
        CASE WHEN c.from_history THEN c.debt_history_price ELSE c.debt_latest_price END AS debt_price_usd,
        CASE WHEN c.from_history THEN c.collateral_history_price ELSE c.collateral_latest_price END
            AS collateral_price_usd,
        CASE
            WHEN c.from_history THEN greatest(c.debt_history_block, c.collateral_history_block)
            ELSE c.latest_block
        END AS price_block
    FROM chosen AS c
),

rewarded AS (
    SELECT
        v.*,
        -- What the protocol paid the liquidator and what it charged the account on top, each at the row's prices:
        -- NULL where the row has neither side in tokens, or a price a side needs is missing (never a partial sum).
        CASE WHEN v.keeper_reward_debt_tokens IS NOT NULL OR v.keeper_reward_collateral_tokens IS NOT NULL THEN
            if(v.keeper_reward_debt_tokens IS NULL, 0, v.keeper_reward_debt_tokens * v.debt_price_usd)
            + if(v.keeper_reward_collateral_tokens IS NULL, 0, v.keeper_reward_collateral_tokens * v.collateral_price_usd)
        END AS keeper_reward_usd,
        CASE WHEN v.protocol_fee_debt_tokens IS NOT NULL OR v.protocol_fee_collateral_tokens IS NOT NULL THEN
            if(v.protocol_fee_debt_tokens IS NULL, 0, v.protocol_fee_debt_tokens * v.debt_price_usd)
            + if(v.protocol_fee_collateral_tokens IS NULL, 0, v.protocol_fee_collateral_tokens * v.collateral_price_usd)
        END AS protocol_fee_usd
    FROM valued AS v
),

final AS (
    SELECT
        v.protocol,
        v.chain_id,
        v.market,
        coalesce(lb.market_label, v.market) AS market_label,
        v.source,
        v.wallet,
        v.liquidator,
        v.keeper_pays,
        v.block_number,
        t.block_timestamp,
        t.block_time,
        v.tx_hash,
        v.log_index,
        v.debt_asset,
        v.debt_symbol,
        v.debt_repaid,
        v.debt_repaid_tokens,
        v.debt_repaid_tokens * v.debt_price_usd AS debt_repaid_usd,
        v.collateral_asset,
        v.collateral_symbol,
        v.collateral_seized,
        v.collateral_seized_tokens,
        v.collateral_seized_tokens * v.collateral_price_usd AS collateral_seized_usd,
        v.bad_debt_tokens,
        v.bad_debt_tokens * v.debt_price_usd AS bad_debt_usd,
        v.bad_debt_known,
        v.keeper_reward_debt,
        v.keeper_reward_debt_tokens,
        v.keeper_reward_collateral,
        v.keeper_reward_collateral_tokens,
        v.keeper_reward_usd,
        v.protocol_fee_debt,
        v.protocol_fee_debt_tokens,
        v.protocol_fee_collateral,
        v.protocol_fee_collateral_tokens,
        v.protocol_fee_usd,
        CASE
            WHEN v.keeper_pays THEN
                v.collateral_seized_tokens * v.collateral_price_usd - v.debt_repaid_tokens * v.debt_price_usd
            ELSE v.keeper_reward_usd
        END AS liquidator_gain_usd,
        v.price_block,
        CASE
            WHEN v.debt_price_usd IS NULL AND v.collateral_price_usd IS NULL THEN NULL
            WHEN v.from_history THEN 'history'
            ELSE 'latest'
        END AS price_source
    FROM rewarded AS v
    LEFT JOIN labels AS lb USING (protocol, chain_id, market)
    LEFT JOIN times AS t ON t.chain_id = v.chain_id AND t.block_number = v.block_number
)

SELECT * FROM final
