-- Every market's name for people: the one definition of `market_label` that every view showing a market uses.
--
-- Grain: one row per (protocol, chain_id, market) known from scores or from the markets adapters describe.
-- Key columns:
--   market_label           the market's name and parameters as its adapter gives them in `markets` (Morpho Blue:
--                          'wstETH/WETH · LLTV 94.5%'; Aave V3: the provider's market id, 'Aave Ethereum Market');
--                          without a name, the market itself (an address as it is, a longer id shortened,
--                          '0x70ae0aed…'). Two markets of a chain with the same name get their shortened id appended
--                          ('WETH/USDC · LLTV 86.0% (0x9fcef4dc…)'), and a name found on several chains (Morpho Blue's
--                          markets of one pair and LLTV on Ethereum and Base) gets its chain's
--                          ('cbBTC/USDC · LLTV 86.0% · Base'), so a label names one market.
--   market_name, market_parameters   the two parts, as the adapter gives them (NULL when it gives none)
--   chain_name             the chain's name (stg_chain_names), 'chain <id>' for one chainrisk does not name
-- Reads: scored_markets, markets, stg_chain_names.
WITH scored AS (
    SELECT DISTINCT protocol, chain_id, market FROM scored_markets
),

-- A market's latest description (names and parameters such as an LLTV can change only with governance).
described AS (
    SELECT
        protocol,
        chain_id,
        market,
        arg_max(nullif(name, ''), block_number) AS market_name,
        arg_max(nullif(parameters, ''), block_number) AS market_parameters
    FROM markets
    GROUP BY protocol, chain_id, market
),

known AS (
    SELECT protocol, chain_id, market FROM scored
    UNION
    SELECT protocol, chain_id, market FROM described
),

named AS (
    SELECT
        k.protocol,
        k.chain_id,
        k.market,
        d.market_name,
        d.market_parameters,
        CASE WHEN length(k.market) > 42 THEN left(k.market, 10) || '…' ELSE k.market END AS short_market,
        CASE
            WHEN d.market_name IS NOT NULL AND d.market_parameters IS NOT NULL
                THEN d.market_name || ' · ' || d.market_parameters
            WHEN d.market_name IS NOT NULL THEN d.market_name
            ELSE short_market
        END AS name
    FROM known AS k
    LEFT JOIN described AS d USING (protocol, chain_id, market)
),

within_chain AS (
    SELECT
        n.*,
        coalesce(c.chain_name, 'chain ' || n.chain_id) AS chain_name,
        CASE
            WHEN count(*) OVER (PARTITION BY n.chain_id, n.name) > 1 AND n.name <> n.short_market
                THEN n.name || ' (' || n.short_market || ')'
            ELSE n.name
        END AS chain_label
    FROM named AS n
    LEFT JOIN stg_chain_names AS c USING (chain_id)
),

final AS (
    SELECT
        protocol,
        chain_id,
        market,
        CASE
            WHEN count(DISTINCT chain_id) OVER (PARTITION BY chain_label) > 1
                THEN chain_label || ' · ' || chain_name
            ELSE chain_label
        END AS market_label,
        market_name,
        market_parameters,
        chain_name
    FROM within_chain
)

SELECT * FROM final
