-- Every market's name for people: the one definition of `market_label` that every view showing a market uses.
--
-- Grain: one row per (protocol, chain_id, market) known from scores, indexed Aave providers or Morpho markets.
-- Key columns:
--   market_label           Morpho Blue: collateral/loan symbols and LLTV in % ('wstETH/WETH 94.5%'); Aave V3:
--                          the PoolAddressesProvider shortened ('Aave V3 0x9a67…7508'); otherwise, or when a
--                          Morpho token has no symbol, the market shortened ('0x70ae0aed…' when longer than an
--                          address). Two markets of a chain with the same name get their shortened id appended
--                          ('WETH/USDC 86.0% (0x9fcef4dc…)'), so a label names one market.
--   lltv_pct               Morpho Blue LLTV, % (NULL elsewhere)
-- Reads: scored_markets, sync_state, raw_morpho_blue_markets.
WITH scored AS (
    SELECT DISTINCT protocol, chain_id, market FROM scored_markets
),

-- An Aave market is its PoolAddressesProvider, which is what sync_state indexes: named before its first score.
aave_providers AS (
    SELECT DISTINCT protocol, chain_id, market FROM sync_state WHERE protocol = 'aave-v3'
),

-- A market's tokens and LLTV are fixed when it is created; the latest snapshot's symbols are taken. Read from
-- the raw table, not stg_morpho_blue_markets: every view naming a market plans this, so it is kept small.
morpho_markets AS (
    SELECT
        'morpho-blue' AS protocol,
        chain_id,
        market_id AS market,
        arg_max(nullif(collateral_symbol, ''), block_number) AS collateral_symbol,
        arg_max(nullif(loan_symbol, ''), block_number) AS loan_symbol,
        arg_max(lltv, block_number)::DOUBLE / 1e16 AS lltv_pct
    FROM raw_morpho_blue_markets
    GROUP BY chain_id, market_id
),

known AS (
    SELECT protocol, chain_id, market FROM scored
    UNION
    SELECT protocol, chain_id, market FROM aave_providers
    UNION
    SELECT protocol, chain_id, market FROM morpho_markets
),

named AS (
    SELECT
        k.protocol,
        k.chain_id,
        k.market,
        m.lltv_pct,
        CASE WHEN length(k.market) > 42 THEN left(k.market, 10) || '…' ELSE k.market END AS short_market,
        CASE
            WHEN m.collateral_symbol IS NOT NULL AND m.loan_symbol IS NOT NULL
                THEN m.collateral_symbol || '/' || m.loan_symbol || ' ' || printf('%.1f%%', m.lltv_pct)
            WHEN k.protocol = 'aave-v3' THEN 'Aave V3 ' || left(k.market, 6) || '…' || right(k.market, 4)
            ELSE short_market
        END AS name
    FROM known AS k
    LEFT JOIN morpho_markets AS m USING (protocol, chain_id, market)
),

final AS (
    SELECT
        protocol,
        chain_id,
        market,
        CASE
            WHEN count(*) OVER (PARTITION BY chain_id, name) > 1 AND name <> short_market
                THEN name || ' (' || short_market || ')'
            ELSE name
        END AS market_label,
        lltv_pct
    FROM named
)

SELECT * FROM final
