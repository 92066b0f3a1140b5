-- Maker/Sky ilks as pools (chainrisk.protocols.adapter.POOL_COLUMNS): each ilk's debt against its ceiling (line) at
-- its source's latest snapshot, for the cap alerts and the Markets page (stg_lending_pools).
--
-- Grain: one row per (chain_id, market), the ilk by name, at its source's latest snapshot.
-- Key columns:
--   pool                   the ilk (the market is the pool); symbol its collateral gem's
--   debt_tokens            Art × rate in dai; debt_usd the same at the Spotter's par (the Vat's value of dai)
--   supplied_tokens, supplied_usd, utilization_pct, supply_cap_*   NULL: an ilk mints its debt, it lends no supply
--   debt_cap_tokens, debt_cap_used_pct   the debt ceiling line in dai and the debt over it, percent (a line of 0,
--                          an offboarded ilk's, takes no new debt: 100 % while debt remains, NULL once none does);
--                          debt_room_tokens the line less the debt
-- The exact rad figures: raw_maker_ilks (decimal strings).
-- Reads: stg_maker_ilks.
WITH ilks AS (
    SELECT *
    FROM stg_maker_ilks
    WHERE is_latest
),

final AS (
    SELECT
        protocol,
        chain_id,
        market,
        market AS pool,
        'ilk' AS pool_kind,
        symbol,
        block_number,
        NULL::DOUBLE AS supplied_tokens,
        debt_dai AS debt_tokens,
        NULL::DOUBLE AS supplied_usd,
        debt_dai * par::DOUBLE / 1e27 AS debt_usd,
        NULL::DOUBLE AS utilization_pct,
        NULL::DOUBLE AS supply_cap_tokens,
        NULL::DOUBLE AS supply_cap_used_pct,
        NULL::DOUBLE AS supply_room_tokens,
        line_dai AS debt_cap_tokens,
        -- A line of 0 is a ceiling, not its absence: Vat.frob lets no debt be drawn past Art x rate <= line (an
        -- offboarded ilk), so it is full where debt remains, and there is nothing to watch where none does.
        CASE WHEN line_dai > 0 THEN line_used_pct WHEN debt_dai > 0 THEN 100 END AS debt_cap_used_pct,
        line_dai - debt_dai AS debt_room_tokens
    FROM ilks
)

SELECT * FROM final
