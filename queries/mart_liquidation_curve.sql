-- Collateral that becomes liquidatable as prices drop: per market and chain-wide (market 'all'), latest block.
--
-- Grain: one row per (chain_id, market, axis_kind, axis, drop_pct).
-- Key columns:
--   axis_kind, axis        what is shocked: 'asset' (one symbol), 'group' (ETH, BTC, ...), 'all_crypto' (every
--                          non-stable asset together), 'depeg' (a stablecoin, or all of them)
--   drop_pct               price drop, % (0 to 90; depeg 0 to 20)
--   liquidatable_collateral_usd, liquidatable_debt_usd, bad_debt_usd   USD liquidatable / unrecoverable after
--                          the drop
--   liquidatable_wallets   wallets under HF 1 after the drop
-- Reads: stg_liquidation_curve_latest.
WITH curve AS (
    SELECT * FROM stg_liquidation_curve_latest
),

final AS (
    SELECT
        chain_id,
        market,
        market_label,
        axis_kind,
        axis,
        drop_pct,
        liquidatable_collateral_usd,
        liquidatable_debt_usd,
        bad_debt_usd,
        liquidatable_wallets,
        block_number,
        block_timestamp
    FROM curve
)

SELECT * FROM final
