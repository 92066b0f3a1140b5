-- Each Maker/Sky ilk's collateral token (gem) as the ChainLog's latest snapshot names it, with what turns the Vat's
-- 18-decimal collateral amounts (ink, dink) into the gem's own smallest unit.
--
-- Grain: one row per (chain_id, market, ilk).
-- Key columns:
--   market                 the ChainLog indexed; ilk: the ilk by name (ETH-A)
--   gem, symbol, gem_decimals   the collateral token (18 decimals when it does not say)
--   vat_units_per_gem_unit 10^(18 - gem_decimals), exact: a Vat wad of gem over it is the gem's smallest unit
--                          (every power of ten up to 10^22 is a double exactly; DuckDB's ** of integers returns one)
-- Reads: raw_maker_ilks.
WITH ilks AS (
    SELECT * FROM raw_maker_ilks
),

latest AS (
    SELECT
        chain_id,
        market,
        ilk,
        arg_max(gem, block_number) AS gem,
        arg_max(symbol, block_number) AS symbol,
        arg_max(coalesce(gem_decimals, 18), block_number) AS gem_decimals
    FROM ilks
    GROUP BY chain_id, market, ilk
),

final AS (
    SELECT *, (10 ** (18 - gem_decimals))::HUGEINT AS vat_units_per_gem_unit FROM latest
)

SELECT * FROM final
