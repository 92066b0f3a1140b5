-- What each protocol holds of each asset: supplied, used as collateral and borrowed, at the latest blocks.
--
-- Grain: one row per (chain_id, protocol, asset, symbol), summed over the protocol's markets.
-- Key columns:
--   supplied_usd, collateral_usd, debt_usd         USD
--   collateral_of_liquidatable_usd                 collateral held by wallets liquidatable now, USD
--   suppliers, collateral_wallets, borrowers       wallets with a non-zero amount (a wallet counts once)
--   supplied_tokens, collateral_tokens, debt_tokens   whole tokens (DOUBLE)
--   supplied_amount, collateral_amount, debt_amount   exact, the token's smallest unit (HUGEINT); NULL where the
--                                                  sum could reach 38 digits (an odd token's amounts: a plain
--                                                  sum of HUGEINTs stops the query with an overflow past 2^127),
--                                                  summed in 64-bit halves under that bound
--   markets                                        markets of the protocol holding the asset
-- Reads: stg_positions_latest, stg_wallet_risk_latest.
WITH holdings AS (
    SELECT * FROM stg_positions_latest
),

wallet_status AS (
    SELECT protocol, chain_id, market, wallet, liquidatable FROM stg_wallet_risk_latest
),

final AS (
    SELECT
        p.chain_id,
        p.protocol,
        p.asset,
        p.symbol,
        count(DISTINCT p.market) AS markets,
        coalesce(sum(p.supplied_usd), 0) AS supplied_usd,
        coalesce(sum(p.collateral_usd), 0) AS collateral_usd,
        coalesce(sum(p.debt_usd), 0) AS debt_usd,
        coalesce(sum(p.collateral_usd) FILTER (WHERE w.liquidatable), 0) AS collateral_of_liquidatable_usd,
        count(DISTINCT p.wallet) FILTER (WHERE p.supplied_amount > 0) AS suppliers,
        count(DISTINCT p.wallet) FILTER (WHERE p.collateral_amount > 0) AS collateral_wallets,
        count(DISTINCT p.wallet) FILTER (WHERE p.debt_amount > 0) AS borrowers,
        sum(p.supplied_tokens) AS supplied_tokens,
        sum(p.collateral_tokens) AS collateral_tokens,
        sum(p.debt_tokens) AS debt_tokens,
        CASE WHEN sum(abs(p.supplied_amount::DOUBLE)) < 1e38
            THEN sum(p.supplied_amount // 18446744073709551616) * 18446744073709551616 + sum(p.supplied_amount % 18446744073709551616)
        END AS supplied_amount,
        CASE WHEN sum(abs(p.collateral_amount::DOUBLE)) < 1e38
            THEN sum(p.collateral_amount // 18446744073709551616) * 18446744073709551616 + sum(p.collateral_amount % 18446744073709551616)
        END AS collateral_amount,
        CASE WHEN sum(abs(p.debt_amount::DOUBLE)) < 1e38
            THEN sum(p.debt_amount // 18446744073709551616) * 18446744073709551616 + sum(p.debt_amount % 18446744073709551616)
        END AS debt_amount
    FROM holdings AS p
    LEFT JOIN wallet_status AS w USING (protocol, chain_id, market, wallet)
    GROUP BY p.chain_id, p.protocol, p.asset, p.symbol
)

SELECT * FROM final
