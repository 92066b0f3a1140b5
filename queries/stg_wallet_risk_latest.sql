-- Scored health of every wallet in every market at the market's latest scored block.
--
-- Grain: one row per (protocol, chain_id, market, wallet).
-- Key columns: as stg_wallet_risk (USD amounts, health_factor NULL without debt, is_borrower, liquidatable).
-- Reads: stg_wallet_risk, stg_scored_markets.
WITH risk AS (
    SELECT * FROM stg_wallet_risk
),

latest AS (
    SELECT protocol, chain_id, market, block_number FROM stg_scored_markets
),

final AS (
    SELECT risk.*
    FROM risk
    JOIN latest USING (protocol, chain_id, market, block_number)
)

SELECT * FROM final
