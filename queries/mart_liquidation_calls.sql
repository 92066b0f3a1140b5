-- Every liquidation a keeper can send now, across protocols: per account the protocol would liquidate at its
-- market's latest snapshot, what the call would repay, seize and leave uncovered by the contract's own rules, in
-- tokens and USD, and the keeper's gain where a keeper repays the debt for the collateral; or why it reverts.
--
-- Grain: one row per stg_lending_liquidation_calls row: per call (Aave: per collateral and debt pair of a wallet),
-- a Comet absorb its debt row and a row per collateral.
-- Key columns:
--   market_label           the market's name for people (stg_market_labels)
--   call                   liquidationCall (Aave), liquidate (Morpho Blue, Liquity), absorb (Comet), bark (Maker);
--                          keeper_pays: the caller pays the debt and receives the collateral (Aave, Morpho Blue)
--   goes_through           blocked IS NULL: the call succeeds now
--   debt_repaid (exact), debt_repaid_tokens, debt_repaid_usd   the debt the call takes off the account
--   collateral_seized (exact), collateral_seized_tokens, collateral_seized_usd   what it takes from the account
--   bad_debt_tokens, bad_debt_usd   debt it leaves uncovered
--   keeper_reward_debt, keeper_reward_collateral (exact, and _tokens), keeper_reward_usd   what the protocol pays
--                          the caller where the keeper does not pay (bark's tip + chip x tab in dai, Liquity's gas
--                          compensation in LUSD and ETH), in USD at the latest snapshot; NULL where none in tokens
--   protocol_fee_debt, protocol_fee_collateral (exact, and _tokens), protocol_fee_usd   what the protocol charges
--                          the account on top (Maker's liquidation penalty in dai, Aave's liquidation protocol fee in
--                          the collateral), in USD at the latest snapshot; 0 where it charges none (Morpho Blue,
--                          Liquity), NULL for Comet and where the call reverts
--   keeper_gain_usd        where the call goes through, before gas and slippage: collateral_seized_usd -
--                          debt_repaid_usd where the keeper pays the debt and receives the collateral (Aave, Morpho
--                          Blue), else keeper_reward_usd (Maker, Liquity); NULL for an absorb (its points are no token)
--   best_for_account       the account's call to send: of an Aave wallet's pairs (alternatives: once one is sent,
--                          the account has changed) the one that goes through with the largest gain; every row of
--                          the other protocols' one call. Sum figures over these rows only
--   price_block            the snapshot whose USD prices value the row
-- Reads: stg_lending_liquidation_calls, stg_market_labels, stg_asset_prices_latest.
WITH calls AS (
    SELECT * FROM stg_lending_liquidation_calls
),

labels AS (
    SELECT protocol, chain_id, market, market_label FROM stg_market_labels
),

prices AS (
    SELECT protocol, chain_id, market, asset, price_usd, block_number FROM stg_asset_prices_latest
),

valued AS (
    SELECT
        c.*,
        c.debt_repaid_tokens * d.price_usd AS debt_repaid_usd,
        c.collateral_seized_tokens * k.price_usd AS collateral_seized_usd,
        c.bad_debt_tokens * d.price_usd AS bad_debt_usd,
        -- What the protocol pays the keeper and what it charges the account on top, at the same prices: NULL where the
        -- row has neither side in tokens, or a price a side needs is missing (never a partial sum).
        CASE WHEN c.keeper_reward_debt_tokens IS NOT NULL OR c.keeper_reward_collateral_tokens IS NOT NULL THEN
            if(c.keeper_reward_debt_tokens IS NULL, 0, c.keeper_reward_debt_tokens * d.price_usd)
            + if(c.keeper_reward_collateral_tokens IS NULL, 0, c.keeper_reward_collateral_tokens * k.price_usd)
        END AS keeper_reward_usd,
        CASE WHEN c.protocol_fee_debt_tokens IS NOT NULL OR c.protocol_fee_collateral_tokens IS NOT NULL THEN
            if(c.protocol_fee_debt_tokens IS NULL, 0, c.protocol_fee_debt_tokens * d.price_usd)
            + if(c.protocol_fee_collateral_tokens IS NULL, 0, c.protocol_fee_collateral_tokens * k.price_usd)
        END AS protocol_fee_usd,
        greatest(d.block_number, k.block_number) AS price_block
    FROM calls AS c
    LEFT JOIN prices AS d
        ON d.protocol = c.protocol AND d.chain_id = c.chain_id AND d.market = c.market AND d.asset = c.debt_asset
    LEFT JOIN prices AS k
        ON k.protocol = c.protocol AND k.chain_id = c.chain_id AND k.market = c.market
        AND k.asset = c.collateral_asset
),

final AS (
    SELECT
        v.protocol,
        v.chain_id,
        v.market,
        coalesce(lb.market_label, v.market) AS market_label,
        v.source,
        v.wallet,
        v.block_number,
        v.call,
        v.keeper_pays,
        v.blocked IS NULL AS goes_through,
        v.blocked,
        v.health_factor,
        v.debt_asset,
        v.debt_symbol,
        v.debt_repaid,
        v.debt_repaid_tokens,
        v.debt_repaid_usd,
        v.collateral_asset,
        v.collateral_symbol,
        v.collateral_seized,
        v.collateral_seized_tokens,
        v.collateral_seized_usd,
        v.bad_debt_tokens,
        v.bad_debt_usd,
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
            WHEN v.blocked IS NOT NULL THEN NULL
            WHEN v.keeper_pays THEN v.collateral_seized_usd - v.debt_repaid_usd
            ELSE v.keeper_reward_usd
        END AS keeper_gain_usd,
        -- Aave's pairs are alternatives for one account (a keeper sends one, then the account has changed): the
        -- one that goes through with the largest gain; any other protocol's rows are all of its one call.
        NOT v.keeper_pays OR row_number() OVER (
            PARTITION BY v.protocol, v.chain_id, v.market, v.wallet
            ORDER BY v.blocked IS NULL DESC, v.collateral_seized_usd - v.debt_repaid_usd DESC NULLS LAST,
                v.debt_repaid_tokens DESC NULLS LAST, v.collateral_asset, v.debt_asset
        ) = 1 AS best_for_account,
        v.price_block
    FROM valued AS v
    LEFT JOIN labels AS lb USING (protocol, chain_id, market)
)

SELECT * FROM final
