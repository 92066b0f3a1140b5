-- Who liquidates, per protocol and chain: each liquidator's liquidations, the debt it repaid and its share of the
-- protocol's, and what it gained. A protocol whose liquidations rest on one or two keepers depends on them staying up
-- in the next crash: the largest keeper's share and the Herfindahl index of the shares say how much.
--
-- Grain: one row per (protocol, chain_id, liquidator) over every logged liquidation (mart_liquidations); the
-- liquidations whose liquidator is unknown (logged before stop 52 for Maker and Liquity, whose events do not name it)
-- are one row with liquidator NULL, outside the shares.
-- Key columns:
--   liquidator             the caller (Aave, Morpho Blue, Comet's absorber), the keeper a Maker bark credited, the
--                          caller Liquity paid its gas compensation to; NULL: unknown
--   liquidations           accounts it liquidated, one per transaction (a Comet absorb's rows count once)
--   wallets, markets       distinct accounts and markets it liquidated
--   debt_repaid_usd, collateral_seized_usd, bad_debt_usd, liquidator_gain_usd   sums of mart_liquidations' (USD at
--                          each event's prices; gain only where a liquidator repays for the collateral: Aave, Morpho)
--   debt_share             its share of the debt repaid by the protocol's known liquidators on the chain (0..1; NULL
--                          for the unknown row, or where no debt repaid has a USD price)
--   liquidation_share      its share of their liquidations (0..1), which needs no price
--   rank                   1 for the liquidator that repaid the most debt (then the most liquidations, then address)
--   liquidators, top1_debt_share, hhi   the protocol and chain's: known liquidators, the largest one's share of the
--                          debt repaid, and the Herfindahl-Hirschman index of the debt shares (1: one keeper)
--   first_block, last_block, last_time   its first and last liquidation (time NULL until recorded)
-- Reads: mart_liquidations.
WITH liquidations AS (
    SELECT * FROM mart_liquidations
),

per_liquidator AS (
    SELECT
        protocol,
        chain_id,
        liquidator,
        count(DISTINCT (tx_hash, wallet)) AS liquidations,
        count(DISTINCT wallet) AS wallets,
        count(DISTINCT market) AS markets,
        sum(debt_repaid_usd) AS debt_repaid_usd,
        sum(collateral_seized_usd) AS collateral_seized_usd,
        sum(bad_debt_usd) AS bad_debt_usd,
        sum(liquidator_gain_usd) AS liquidator_gain_usd,
        min(block_number) AS first_block,
        max(block_number) AS last_block,
        max(block_time) AS last_time
    FROM liquidations
    GROUP BY protocol, chain_id, liquidator
),

shared AS (
    SELECT
        *,
        CASE WHEN liquidator IS NOT NULL THEN
            debt_repaid_usd / nullif(sum(debt_repaid_usd) FILTER (WHERE liquidator IS NOT NULL)
                OVER (PARTITION BY protocol, chain_id), 0)
        END AS debt_share,
        CASE WHEN liquidator IS NOT NULL THEN
            liquidations / sum(liquidations) FILTER (WHERE liquidator IS NOT NULL)
                OVER (PARTITION BY protocol, chain_id)
        END AS liquidation_share
    FROM per_liquidator
),

ranked AS (
    SELECT
        *,
        CASE WHEN liquidator IS NOT NULL THEN
            row_number() OVER (
                PARTITION BY protocol, chain_id, liquidator IS NULL
                ORDER BY debt_repaid_usd DESC NULLS LAST, liquidations DESC, liquidator
            )
        END AS rank
    FROM shared
),

protocol_figures AS (
    SELECT
        protocol,
        chain_id,
        count(*) FILTER (WHERE liquidator IS NOT NULL) AS liquidators,
        max(debt_share) AS top1_debt_share,
        sum(debt_share * debt_share) AS hhi
    FROM ranked
    GROUP BY protocol, chain_id
),

final AS (
    SELECT
        r.protocol,
        r.chain_id,
        r.liquidator,
        r.rank,
        r.liquidations,
        r.wallets,
        r.markets,
        r.debt_repaid_usd,
        r.collateral_seized_usd,
        r.bad_debt_usd,
        r.liquidator_gain_usd,
        r.debt_share,
        r.liquidation_share,
        p.liquidators,
        p.top1_debt_share,
        p.hhi,
        r.first_block,
        r.last_block,
        r.last_time
    FROM ranked AS r
    JOIN protocol_figures AS p ON p.protocol = r.protocol AND p.chain_id = r.chain_id
)

SELECT * FROM final
