-- Borrowers and their debt by health-factor band, across every market at its latest block.
--
-- Grain: one row per band, all six always present: '< 1 (liquidatable)', '1 to 1.1', '1.1 to 1.25',
-- '1.25 to 1.5', '1.5 to 2', '≥ 2' (bucket_order 1 to 6; lower bound included, upper excluded).
-- Key columns:
--   wallets                borrower positions in the band (a wallet borrowing in two markets counts twice:
--                          markets liquidate separately)
--   debt_usd               their debt, USD
--   lower_bound, upper_bound   the band's health factors (NULL: unbounded)
-- Reads: stg_wallet_risk_latest.
WITH bands AS (
    SELECT * FROM (
        VALUES
            (1, '< 1 (liquidatable)', NULL, 1.0),
            (2, '1 to 1.1', 1.0, 1.1),
            (3, '1.1 to 1.25', 1.1, 1.25),
            (4, '1.25 to 1.5', 1.25, 1.5),
            (5, '1.5 to 2', 1.5, 2.0),
            (6, '≥ 2', 2.0, NULL)
    ) AS b (bucket_order, bucket, lower_bound, upper_bound)
),

borrowers AS (
    SELECT health_factor, debt_usd FROM stg_wallet_risk_latest WHERE is_borrower
),

final AS (
    SELECT
        b.bucket,
        b.bucket_order,
        b.lower_bound::DOUBLE AS lower_bound,
        b.upper_bound::DOUBLE AS upper_bound,
        count(w.health_factor) AS wallets,
        coalesce(sum(w.debt_usd), 0) AS debt_usd
    FROM bands AS b
    LEFT JOIN borrowers AS w
        ON (b.lower_bound IS NULL OR w.health_factor >= b.lower_bound)
        AND (b.upper_bound IS NULL OR w.health_factor < b.upper_bound)
    GROUP BY b.bucket, b.bucket_order, b.lower_bound, b.upper_bound
)

SELECT * FROM final
