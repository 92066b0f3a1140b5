-- Compound V3 (Comet) events, with each base-token Supply and Withdraw split into what it did to the account.
--
-- Grain: one row per (chain_id, market, block_number, log_index, part): a Supply of base is a repay (the part that
-- paid debt down) and a supply (the part minted as balance, the Transfer from the zero address Comet emits right
-- after it); a Withdraw of base is a withdraw (the part burned from balance, the Transfer to the zero address) and a
-- borrow (the rest). A rest of 10 units or less is Comet's principal rounding (the Transfer carries the present value
-- of a rounded principal), not a repay or a borrow. Other events are one row each.
-- Key columns:
--   source, market         the Comet (its proxy): the indexed contract and the market are the same
--   event                  Supply, Withdraw, Transfer, SupplyCollateral, WithdrawCollateral, TransferCollateral,
--                          AbsorbDebt, AbsorbCollateral, BuyCollateral
--   wallet, counterparty   the account whose position changes; the payer, receiver, absorber or buyer
--   asset                  the collateral asset (NULL for base-token events), amount: exact, its smallest unit
--   action, position_key, action_asset, action_amount   the shared lending-event columns
--                          (chainrisk.protocols.adapter.LENDING_EVENT_COLUMNS): supply, repay, withdraw, borrow
--                          (base token), collateral_in / collateral_out (the asset), liquidated (AbsorbDebt: the
--                          debt absorbed, basePaidOut less the supply credited to the account in the same absorb);
--                          NULL for transfers and buys
-- Reads: raw_compound_v3_events, raw_compound_v3_markets.
WITH events AS (
    -- Governance's logs (the proxy's Upgraded, PauseAction) are stg_compound_v3_governance_events'.
    SELECT * FROM raw_compound_v3_events WHERE event NOT IN ('Upgraded', 'PauseAction')
),

base_tokens AS (
    SELECT chain_id, market, arg_max(base_token, block_number) AS base_token
    FROM raw_compound_v3_markets
    GROUP BY chain_id, market
),

-- The balance part of a base Supply / Withdraw: the Transfer from (to) the zero address logged right after it; of an
-- AbsorbDebt, the supply Comet credits the account with when its collateral was worth more than its debt (the
-- Transfer from the zero address absorb logs right after it: compound-finance/comet contracts/Comet.sol
-- absorbInternal, `if (newPrincipal > 0) emit Transfer(address(0), account, ...)`).
balance_parts AS (
    SELECT
        e.chain_id,
        e.market,
        e.block_number,
        e.log_index,
        t.amount AS balance_amount
    FROM events AS e
    JOIN events AS t
        ON t.chain_id = e.chain_id AND t.market = e.market AND t.tx_hash = e.tx_hash
        AND t.log_index = e.log_index + 1 AND t.event = 'Transfer'
        AND ((e.event IN ('Supply', 'AbsorbDebt') AND t.wallet = '0x0000000000000000000000000000000000000000'
              AND t.counterparty = e.wallet)
          OR (e.event = 'Withdraw' AND t.wallet = e.wallet
              AND t.counterparty = '0x0000000000000000000000000000000000000000'))
    WHERE e.event IN ('Supply', 'Withdraw', 'AbsorbDebt')
),

parts AS (
    SELECT
        e.*,
        p.part,
        CASE
            WHEN e.event = 'Supply' AND p.part = 'balance' THEN 'supply'
            WHEN e.event = 'Supply' THEN 'repay'
            WHEN e.event = 'Withdraw' AND p.part = 'balance' THEN 'withdraw'
            WHEN e.event = 'Withdraw' THEN 'borrow'
            WHEN e.event = 'SupplyCollateral' THEN 'collateral_in'
            WHEN e.event = 'WithdrawCollateral' THEN 'collateral_out'
            WHEN e.event = 'AbsorbDebt' THEN 'liquidated'
        END AS action,
        CASE
            -- basePaidOut less the credit: the debt the absorb cancelled (the credit's Transfer is the present value
            -- of a rounded-down principal, up to 2 units under the credit, so this is up to 2 units over the debt).
            WHEN e.event = 'AbsorbDebt' THEN greatest(e.amount - coalesce(b.balance_amount, 0), 0)
            WHEN e.event NOT IN ('Supply', 'Withdraw') THEN e.amount
            WHEN p.part = 'balance' THEN least(e.amount, coalesce(b.balance_amount, 0))
            ELSE greatest(e.amount - coalesce(b.balance_amount, 0), 0)
        END AS part_amount
    FROM events AS e
    CROSS JOIN (SELECT unnest(['balance', 'debt']) AS part) AS p
    LEFT JOIN balance_parts AS b
        ON b.chain_id = e.chain_id AND b.market = e.market AND b.block_number = e.block_number
        AND b.log_index = e.log_index
    WHERE p.part = 'balance' OR e.event IN ('Supply', 'Withdraw')
),

final AS (
    SELECT
        'compound-v3' AS protocol,
        p.chain_id,
        p.market AS source,
        p.market,
        p.block_number,
        p.block_hash,
        p.tx_hash,
        p.log_index,
        p.event,
        p.wallet,
        p.counterparty,
        p.asset,
        p.amount,
        p.value AS usd_value,
        p.collateral_amount,
        p.action,
        p.market AS position_key,
        CASE WHEN p.asset IS NOT NULL AND p.event <> 'BuyCollateral' THEN p.asset ELSE t.base_token END
            AS action_asset,
        p.part_amount AS action_amount
    FROM parts AS p
    LEFT JOIN base_tokens AS t ON t.chain_id = p.chain_id AND t.market = p.market
    WHERE NOT (p.event IN ('Supply', 'Withdraw') AND p.part = 'debt' AND p.part_amount <= 10 AND p.part_amount < p.amount)
        AND NOT (p.event IN ('Supply', 'Withdraw') AND p.part = 'balance' AND p.part_amount = 0 AND p.amount > 0)
)

SELECT * FROM final
