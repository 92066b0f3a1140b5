-- Every Comet's tokens as its latest snapshot names them: the base token and each collateral, with the symbol and
-- decimals the liquidation views turn exact amounts into whole tokens with.
--
-- Grain: one row per (chain_id, market, asset).
-- Key columns:
--   market                 the Comet (its proxy); asset: the base token (is_base) or a collateral
--   symbol, decimals       as of the Comet's latest snapshot that read the token
--   scale                  Comet's scale of the token (baseScale, or the asset's AssetInfo.scale), as of that snapshot
--   liquidation_factor     a collateral's AssetInfo.liquidationFactor (1e18 = 100 %) as of that snapshot: the share of
--                          its value absorb credits the account with (NULL for the base token)
-- Reads: raw_compound_v3_markets, raw_compound_v3_assets.
WITH base AS (
    SELECT
        chain_id,
        market,
        arg_max(base_token, block_number) AS asset,
        arg_max(base_symbol, block_number) AS symbol,
        arg_max(base_decimals, block_number) AS decimals,
        arg_max(base_scale, block_number) AS scale,
        NULL::HUGEINT AS liquidation_factor,
        true AS is_base
    FROM raw_compound_v3_markets
    GROUP BY chain_id, market
),

collaterals AS (
    SELECT
        chain_id,
        market,
        asset,
        arg_max(symbol, block_number) AS symbol,
        arg_max(decimals, block_number) AS decimals,
        arg_max(scale, block_number) AS scale,
        arg_max(liquidation_factor, block_number) AS liquidation_factor,
        false AS is_base
    FROM raw_compound_v3_assets
    GROUP BY chain_id, market, asset
),

final AS (
    SELECT * FROM base
    UNION ALL BY NAME
    SELECT * FROM collaterals
)

SELECT * FROM final
