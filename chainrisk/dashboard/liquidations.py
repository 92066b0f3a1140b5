"""Liquidations page: first the liquidations a keeper can send now (each liquidatable account's call, what it would
repay, seize and leave, or why it reverts), then the Maker/Sky auctions those liquidations start (running ones against
the oracle's price, ended ones by what they raised), then every liquidation the indexed contracts logged, across
protocols: how much debt they repaid, the collateral they took and the bad debt they left, over time and per market,
then the latest ones one by one.

Reads mart_liquidation_calls (each call by the contract's own rules at the market's latest snapshot; USD at that
snapshot's prices), mart_liquidations (amounts exact in tokens; USD at the prices recorded at or before each event,
else the market's latest snapshot: its price_source column says which), mart_liquidators (who liquidates, and how
concentrated that is per protocol) and stg_maker_auctions (each Clipper auction, in dai: Maker's debt unit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard.data import database_location, missing_relations, query, require
from chainrisk.dashboard.ui import (
    CHAIN_COLUMN,
    PROTOCOL_NAMES,
    amount_short,
    chain_names,
    count_column,
    key_table,
    market_names,
    naive_utc,
    percent_column,
    series_colour,
    tokens_column,
    usd_column,
    usd_short,
    wallet_link_column,
    with_wallet_links,
)

VIEW = "mart_liquidations"
CALLS_VIEW = "mart_liquidation_calls"
LIQUIDATORS_VIEW = "mart_liquidators"
AUCTIONS_VIEW = "stg_maker_auctions"
STORE_FRONT_VIEW = "stg_compound_v3_store_front"
#: Auction states that still sell collateral (stg_maker_auctions.status).
RUNNING = ("running", "needs redo")
#: Auction states of an auction over, whose figures are final.
ENDED = ("raised", "sold out")
#: Liquidators drawn one by one in the concentration chart, per protocol; the rest are one bar segment.
CHART_LIQUIDATORS = 5
#: What a logged liquidation's gain is, wherever the page shows one.
LIQUIDATOR_GAIN = (
    "The liquidator's, before gas: collateral received less debt repaid where it repays (Aave, Morpho Blue), else "
    "what the protocol paid it (a Maker bark's incentive, Liquity's gas compensation where its batch's log confirms "
    "it)"
)
#: What a protocol fee is, wherever the page shows one.
PROTOCOL_FEE = (
    "What the protocol charged the account on top: Aave's liquidation protocol fee (collateral its treasury took, a "
    "share of the bonus), Maker's liquidation penalty as the bark charged it (the auction's tab over the debt; what "
    "the auctions raised of it is under Maker/Sky auctions); none in Morpho Blue and Liquity; a Comet absorb's share "
    "(the collateral's value beyond what it credits the account) is not counted"
)
#: What a logged liquidation's bad debt is, wherever the page shows one.
BAD_DEBT = (
    "Debt written off at the liquidation: Morpho Blue's bad debt, Aave 3.3+'s deficit, the debt a Comet absorb "
    "closed beyond its credit for the collateral (the reserves bear it), a Maker auction's shortfall once it ended "
    "(the Vow's); none in Liquity, which redistributes what its Stability Pool cannot offset"
)
#: What the tables say for liquidations whose liquidator is unknown.
UNKNOWN_LIQUIDATOR = "unknown (logged before stop 52)"
#: Liquidations listed one by one at most (newest first); the totals and the chart count every one.
ROWS_SHOWN = 500
#: A liquidation: one account liquidated in one transaction (a Comet absorb is several rows of the view).
ONE_LIQUIDATION = "protocol, chain_id, tx_hash, wallet"


def totals(db: Path) -> dict[str, float | int | None]:
    """Every liquidation's figures summed, and how many have no recorded time or no USD price."""
    frame = query(
        db,
        f"""
        SELECT count(DISTINCT ({ONE_LIQUIDATION})) AS liquidations, sum(debt_repaid_usd) AS debt_usd,
               sum(collateral_seized_usd) AS collateral_usd,
               sum(bad_debt_usd) AS bad_debt_usd, sum(liquidator_gain_usd) AS gain_usd,
               sum(protocol_fee_usd) AS fee_usd,
               count(*) FILTER (WHERE block_time IS NULL) AS untimed,
               count(*) FILTER (WHERE price_source IS NULL) AS unpriced,
               count(*) FILTER (WHERE price_source = 'latest') AS latest_priced,
               count(DISTINCT ({ONE_LIQUIDATION})) FILTER (WHERE NOT bad_debt_known) AS bad_debt_unknown
        FROM {VIEW}
        """,
    )
    return frame.row(0, named=True)


def per_day(db: Path) -> pl.DataFrame:
    """Debt repaid and bad debt per day and protocol (events with a recorded time)."""
    frame = query(
        db,
        f"""
        SELECT date_trunc('day', block_time) AS day, protocol, count(DISTINCT ({ONE_LIQUIDATION})) AS liquidations,
               sum(debt_repaid_usd) AS debt_usd, sum(bad_debt_usd) AS bad_debt_usd, sum(protocol_fee_usd) AS fee_usd
        FROM {VIEW} WHERE block_time IS NOT NULL
        GROUP BY ALL ORDER BY day, protocol
        """,
    )
    return frame.with_columns(pl.col("protocol").replace(PROTOCOL_NAMES))


def per_market(db: Path) -> pl.DataFrame:
    frame = query(
        db,
        f"""
        SELECT protocol, market_label, count(DISTINCT ({ONE_LIQUIDATION})) AS liquidations,
               count(DISTINCT wallet) AS wallets, sum(debt_repaid_usd) AS debt_usd,
               sum(collateral_seized_usd) AS collateral_usd, sum(bad_debt_usd) AS bad_debt_usd,
               sum(liquidator_gain_usd) AS gain_usd, sum(protocol_fee_usd) AS fee_usd,
               max(debt_repaid_usd) AS largest_usd,
               max(block_time) AS last_time, max(block_number) AS last_block, chain_id, market
        FROM {VIEW} GROUP BY protocol, chain_id, market, market_label
        ORDER BY debt_usd DESC NULLS LAST, liquidations DESC, protocol, market
        """,
    )
    return frame.with_columns(market_names(frame, "market_label"), pl.col("protocol").replace(PROTOCOL_NAMES))


def per_liquidator(db: Path, limit: int = ROWS_SHOWN) -> pl.DataFrame:
    """mart_liquidators' rows, the largest liquidators of each protocol first, shares in percent."""
    frame = query(
        db,
        f"""
        SELECT protocol, chain_id, coalesce(liquidator, '{UNKNOWN_LIQUIDATOR}') AS liquidator, rank, liquidations,
               wallets, markets, debt_repaid_usd, collateral_seized_usd, bad_debt_usd, liquidator_gain_usd,
               100 * debt_share AS debt_share_pct, 100 * liquidation_share AS liquidation_share_pct, liquidators,
               100 * top1_debt_share AS top1_debt_share_pct, hhi, first_block, last_block, last_time
        FROM {LIQUIDATORS_VIEW}
        ORDER BY protocol, chain_id, rank NULLS LAST
        LIMIT ?
        """,
        limit,
    )
    named = frame.with_columns(pl.col("protocol").replace(PROTOCOL_NAMES))
    # Where the book spans chains, each protocol's keepers are counted per chain: say which.
    several = named["chain_id"].n_unique() > 1
    where = pl.format("{} · {}", "protocol", chain_names(named)["chain_id"]) if several else pl.col("protocol")
    # An address as people quote one (0x1234…abcd): the table's column and the chart's legend have no room for 42
    # characters, and devnet or vanity keepers share their first ten.
    short = pl.when(pl.col("liquidator").str.starts_with("0x") & (pl.col("liquidator").str.len_chars() == 42))
    keeper = short.then(pl.format("{}…{}", pl.col("liquidator").str.slice(0, 6), pl.col("liquidator").str.slice(38)))
    return named.with_columns(where.alias("where"), keeper.otherwise(pl.col("liquidator")).alias("keeper"))


def concentration_lines(frame: pl.DataFrame) -> list[str]:
    """Per protocol and chain of `per_liquidator`'s rows: how many keepers liquidate there and how much rests on the
    largest (its share of the debt repaid, and the Herfindahl index as a number of equal keepers)."""
    lines = []
    for row in frame.filter(pl.col("rank") == 1).iter_rows(named=True):
        count = int(row["liquidators"])
        if count == 1:
            lines.append(f"**{row['where']}**: one liquidator did every liquidation")
            continue
        line = f"**{row['where']}**: {count:,} liquidators"
        if row["top1_debt_share_pct"] is not None and row["hhi"]:
            line += (
                f"; the largest repaid {row['top1_debt_share_pct']:.1f} % of the debt they repaid (as concentrated "
                f"as {1 / row['hhi']:.1f} equal liquidators)"
            )
        lines.append(line)
    return lines


def liquidation_rows(db: Path, wallet: str | None = None, limit: int | None = ROWS_SHOWN) -> pl.DataFrame:
    """The newest `limit` liquidation rows (None: every one), of `wallet` only when given, with wallet links; the
    exact amounts as text (a table's numbers are doubles, which round amounts past 2^53)."""
    frame = query(
        db,
        f"""
        SELECT block_time, protocol, market_label, wallet, debt_repaid_tokens, debt_symbol, debt_repaid_usd,
               collateral_seized_tokens, collateral_symbol, collateral_seized_usd, bad_debt_usd, liquidator_gain_usd,
               protocol_fee_usd, liquidator, price_source, price_block, block_number, tx_hash, log_index, chain_id,
               market, debt_repaid, collateral_seized
        FROM {VIEW} WHERE ?::VARCHAR IS NULL OR wallet = ?
        ORDER BY block_number DESC, log_index DESC LIMIT ?
        """,
        wallet,
        wallet,
        limit,
    )
    return _shown(frame)


def _shown(frame: pl.DataFrame) -> pl.DataFrame:
    """Liquidation or call rows as the tables show them: market names, protocol names, wallet links, the exact
    amounts as text (a table's numbers are doubles, which round amounts past 2^53)."""
    return with_wallet_links(frame.with_columns(market_names(frame, "market_label"))).with_columns(
        pl.col("protocol").replace(PROTOCOL_NAMES), pl.col("debt_repaid", "collateral_seized").cast(pl.String)
    )


#: How a table shows liquidation_rows' columns (this page's and the Wallet page's).
ROW_CONFIG = {
    "block_time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm"),
    "market_label": st.column_config.TextColumn("market", width="medium"),
    "wallet page": wallet_link_column(),
    "wallet": None,
    "debt_repaid_tokens": tokens_column("debt repaid (tokens)"),
    "debt_symbol": "debt",
    "debt_repaid_usd": usd_column("repaid (USD)", "The debt the liquidation took off the account"),
    "collateral_seized_tokens": tokens_column("collateral seized (tokens)"),
    "collateral_symbol": "collateral",
    "collateral_seized_usd": usd_column("seized (USD)", "The collateral it took"),
    "bad_debt_usd": usd_column("bad debt (USD)", BAD_DEBT),
    "liquidator_gain_usd": usd_column("gain (USD)", LIQUIDATOR_GAIN),
    "protocol_fee_usd": usd_column("protocol fee (USD)", PROTOCOL_FEE),
    "liquidator": "liquidator",
    "price_source": st.column_config.TextColumn(
        "USD from", help="history: prices recorded at or before the event; latest: the latest snapshot's"
    ),
    "price_block": count_column("price block"),
    "block_number": count_column("block"),
    "log_index": count_column("log index"),
    "chain_id": CHAIN_COLUMN,
    "market": "market id",
    "debt_repaid": st.column_config.TextColumn("debt repaid (exact)", help="Smallest units, as logged"),
    "collateral_seized": st.column_config.TextColumn("collateral seized (exact)", help="Smallest units"),
}


def calls_now(db: Path, limit: int = ROWS_SHOWN) -> tuple[dict[str, float | int | None], pl.DataFrame]:
    """The liquidation calls a keeper can send now, summed, and each account's call to send (best_for_account rows):
    those that go through first, by the debt they repay."""
    figures = query(
        db,
        f"""
        SELECT count(DISTINCT (protocol, chain_id, market, wallet)) AS accounts,
               count(DISTINCT (protocol, chain_id, market, wallet)) FILTER (WHERE goes_through) AS open_accounts,
               sum(debt_repaid_usd) FILTER (WHERE goes_through) AS debt_usd,
               sum(collateral_seized_usd) FILTER (WHERE goes_through) AS collateral_usd,
               sum(keeper_gain_usd) AS gain_usd, sum(bad_debt_usd) FILTER (WHERE goes_through) AS bad_debt_usd,
               sum(protocol_fee_usd) FILTER (WHERE goes_through) AS fee_usd,
               count(*) AS calls
        FROM {CALLS_VIEW} WHERE best_for_account
        """,
    ).row(0, named=True)
    frame = query(
        db,
        f"""
        SELECT * EXCLUDE (best_for_account) FROM {CALLS_VIEW} WHERE best_for_account
        ORDER BY goes_through DESC, max(debt_repaid_usd) OVER (PARTITION BY protocol, chain_id, market, wallet)
            DESC NULLS LAST, protocol, market, wallet, debt_repaid_usd DESC NULLS LAST, collateral_asset
        LIMIT ?
        """,
        limit,
    )
    return figures, _shown_calls(frame)


def wallet_calls(db: Path, wallet: str) -> pl.DataFrame:
    """Every liquidation call a keeper can send now against `wallet` (an Aave wallet's every pair), its call to send
    first in each market."""
    frame = query(
        db,
        f"""
        SELECT * FROM {CALLS_VIEW} WHERE wallet = ?
        ORDER BY protocol, market, best_for_account DESC, goes_through DESC, debt_repaid_usd DESC NULLS LAST,
            collateral_asset, debt_asset
        """,
        wallet.lower(),
    )
    return _shown_calls(frame)


def _shown_calls(frame: pl.DataFrame) -> pl.DataFrame:
    """mart_liquidation_calls rows as the tables show them (_shown), the health floored to the 4 decimals shown: a
    liquidatable account's 0.99996 would read "1.0000" rounded."""
    return _shown(frame).with_columns(((pl.col("health_factor") * 10**4).floor() / 10**4).alias("health_factor"))


#: How the calls table shows mart_liquidation_calls' columns.
CALL_CONFIG = {
    **{k: v for k, v in ROW_CONFIG.items() if k in ("market_label", "wallet page", "wallet", "chain_id", "market")},
    "call": st.column_config.TextColumn("call", help="The contract function a keeper sends"),
    "health_factor": st.column_config.NumberColumn("health", format="%.4f", help="As the protocol computes it"),
    "debt_symbol": "debt",
    "debt_repaid_tokens": tokens_column("repays (tokens)"),
    "debt_repaid_usd": usd_column("repays (USD)", "The debt the call would take off the account"),
    "collateral_symbol": "collateral",
    "collateral_seized_tokens": tokens_column("seizes (tokens)"),
    "collateral_seized_usd": usd_column("seizes (USD)", "The collateral it would take"),
    "keeper_gain_usd": usd_column(
        "gain (USD)",
        "The keeper's, before gas and slippage: collateral received less debt paid (Aave, Morpho Blue), or the "
        "protocol's reward (Maker's tip and chip, Liquity's gas compensation)",
    ),
    "bad_debt_usd": usd_column("bad debt (USD)", "Debt the call would leave uncovered"),
    "protocol_fee_usd": usd_column(
        "protocol fee (USD)",
        "What the protocol would charge on top: Aave's treasury fee in collateral, Maker's liquidation penalty",
    ),
    "blocked": st.column_config.TextColumn("blocked", help="Why the call reverts now; empty when it goes through"),
    "goes_through": st.column_config.CheckboxColumn("goes through"),
    "keeper_pays": st.column_config.CheckboxColumn("keeper pays", help="The caller pays the debt for the collateral"),
    "block_number": count_column("block"),
    "price_block": count_column("price block"),
    "debt_repaid": st.column_config.TextColumn("repays (exact)", help="Smallest units, by the contract's rules"),
    "collateral_seized": st.column_config.TextColumn("seizes (exact)", help="Smallest units"),
}


def _now(db: Path) -> None:
    figures, rows = calls_now(db)
    st.subheader("Liquidatable now")
    if not figures["accounts"]:
        st.caption("No account any indexed market would liquidate at its latest snapshot.")
        return
    cols = st.columns(5)
    cols[0].metric(
        "Accounts",
        f"{figures['open_accounts']:,} of {figures['accounts']:,}",
        help="Liquidatable accounts whose call goes through now, of all the liquidatable ones",
    )
    cols[1].metric("Debt to repay (USD)", usd_short(figures["debt_usd"]), help="What those calls would take off")
    cols[2].metric(
        "Keepers' gain (USD)",
        usd_short(figures["gain_usd"]),
        help="Before gas and slippage: collateral received less debt paid where the keeper repays (Aave, Morpho "
        "Blue); the protocol's reward elsewhere (a Maker bark's tip and chip, Liquity's gas compensation)",
    )
    cols[3].metric(
        "Protocol fees due (USD)",
        usd_short(figures["fee_usd"]),
        help="What the protocols would charge the accounts on top: Aave's treasury fee in collateral, Maker's "
        "liquidation penalty",
    )
    cols[4].metric("Bad debt left (USD)", usd_short(figures["bad_debt_usd"]), help="Debt the calls leave uncovered")
    st.caption(
        "Each liquidatable account's call as its contract would execute it at the market's latest snapshot (Aave: "
        "the pair of collateral and debt that goes through with the largest gain; a Comet absorb: its debt and "
        "every collateral), USD at that snapshot's prices; `mart_liquidation_calls` holds every pair."
        + (
            f" The first {rows.height:,} rows of {figures['calls']:,}, those that go through first, by debt repaid."
            if int(figures["calls"] or 0) > rows.height
            else ""
        )
    )
    key_table(
        rows,
        "liquidation_calls",
        (
            "market_label",
            "wallet page",
            "call",
            "health_factor",
            "debt_symbol",
            "debt_repaid_usd",
            "collateral_symbol",
            "collateral_seized_usd",
            "keeper_gain_usd",
            "blocked",
        ),
        CALL_CONFIG,
        "these calls",
    )


def auction_totals(db: Path) -> dict[str, float | int | None]:
    """Maker's Clipper auctions summed: running ones, what they have left to raise and sell; ended ones, what they
    raised and left the Vow short (whole dai)."""
    running, ended = (", ".join(f"'{s}'" for s in states) for states in (RUNNING, ENDED))
    return query(
        db,
        f"""
        SELECT count(*) FILTER (WHERE status IN ({running})) AS running,
               count(*) FILTER (WHERE status = 'needs redo') AS needs_redo,
               sum(tab_left_dai::DOUBLE / 1e18) FILTER (WHERE status IN ({running})) AS tab_left,
               sum(lot_left_tokens * feed_price_dai) FILTER (WHERE status IN ({running})) AS lot_value,
               count(*) FILTER (WHERE status IN ({ended})) AS ended,
               sum(raised_dai::DOUBLE / 1e18) FILTER (WHERE status IN ({ended})) AS raised,
               sum(shortfall_dai::DOUBLE / 1e18) AS shortfall,
               sum(penalty_raised_dai::DOUBLE / 1e18) FILTER (WHERE status IN ({ended})) AS penalty,
               count(*) AS auctions
        FROM {AUCTIONS_VIEW}
        """,
    ).row(0, named=True)


def auction_buyers(db: Path) -> dict[str, float | int | None]:
    """Who bought the auctions' collateral: how many take senders (stg_maker_events' take rows with a known sender),
    and the share of the dai those takes paid that the largest one paid."""
    return query(
        db,
        """
        WITH paid AS (
            SELECT keeper, sum(auction_owe_dai::DOUBLE) AS paid
            FROM stg_maker_events WHERE event = 'take' AND keeper IS NOT NULL GROUP BY keeper
        )
        SELECT count(*) AS buyers, max(paid) / nullif(sum(paid), 0) AS top_share FROM paid
        """,
    ).row(0, named=True)


def auction_rows(db: Path, wallet: str | None = None, limit: int | None = ROWS_SHOWN) -> pl.DataFrame:
    """Maker's Clipper auctions (of `wallet`'s urn only when given), running ones first (the oldest first), then
    ended ones (newest first), with wallet links; dai figures in whole dai."""
    running = ", ".join(f"'{s}'" for s in RUNNING)
    frame = query(
        db,
        f"""
        SELECT a.protocol, coalesce(l.market_label, a.market) AS market_label, a.wallet, a.status,
               a.age_s / 3600.0 AS age_h,
               CASE WHEN a.status IN ({running}) THEN a.tab_left_dai::DOUBLE / 1e18 END AS tab_left,
               CASE WHEN a.status IN ({running}) THEN a.lot_left_tokens END AS lot_left_tokens,
               a.collateral_symbol, a.price_dai, a.feed_price_dai, 100 * a.price_to_feed AS price_to_feed_pct,
               a.lot_value_to_tab, a.takes, a.redos, a.due_dai::DOUBLE / 1e18 AS due, a.tab_dai::DOUBLE / 1e18 AS tab,
               a.raised_dai::DOUBLE / 1e18 AS raised, a.shortfall_dai::DOUBLE / 1e18 AS shortfall,
               a.average_price_dai, a.top_buyer, a.buyers, a.keeper, a.kicked_block, a.last_take_block, a.chain_id,
               a.market AS ilk,
               a.source, a.clip, a.auction_id::VARCHAR AS auction_id
        FROM {AUCTIONS_VIEW} AS a
        LEFT JOIN stg_market_labels AS l ON l.protocol = a.protocol AND l.chain_id = a.chain_id AND l.market = a.market
        WHERE ?::VARCHAR IS NULL OR a.wallet = ?
        ORDER BY a.status IN ({running}) DESC, CASE WHEN a.status IN ({running}) THEN a.age_s END DESC NULLS LAST,
            a.kicked_block DESC NULLS LAST, a.clip, a.auction_id
        LIMIT ?
        """,
        wallet,
        wallet,
        limit,
    )
    return with_wallet_links(frame.with_columns(market_names(frame, "market_label")))


def _dai_column(label: str, help: str | None = None) -> Any:
    """Dai amounts in whole dai, to the cent."""
    return st.column_config.NumberColumn(label, format="%.2f", help=help)


#: How the auctions tables (this page's and the Wallet page's) show `auction_rows`' columns.
AUCTION_CONFIG = {
    "market_label": st.column_config.TextColumn("market", width="medium"),
    "wallet page": wallet_link_column(),
    "wallet": None,
    "status": st.column_config.TextColumn(
        "status",
        help="running; needs redo (past the clip's tail or under its cusp of the start price: no one can buy until "
        "a keeper resets it); raised (tab raised, the rest of the collateral back to the vault); sold out (all "
        "collateral sold, tab not raised); yanked; not followed; unknown",
    ),
    "age_h": st.column_config.NumberColumn("age (h)", format="%.1f", help="Since its kick or last reset"),
    "tab_left": _dai_column(
        "tab left (DAI)", "Dai a running auction still has to raise: what is left of the debt plus the penalty"
    ),
    "lot_left_tokens": tokens_column("lot left (tokens)", "Collateral a running auction still sells, whole tokens"),
    "collateral_symbol": "collateral",
    "price_dai": _dai_column("price now (DAI)", "The auction's price per whole token now (getStatus)"),
    "feed_price_dai": _dai_column("oracle (DAI)", "The oracle's current price per whole token, at par"),
    "price_to_feed_pct": percent_column("price / oracle", "Under 100 %: the auction sells below the oracle's price"),
    "lot_value_to_tab": st.column_config.NumberColumn(
        "lot / tab",
        format="%.3f",
        help="The lot left at the oracle's price over the tab left: under 1, the Vow "
        "will be short even if it all sells at the oracle's price",
    ),
    "takes": count_column("takes"),
    "redos": count_column("resets"),
    "due": _dai_column("debt (DAI)", "The debt the bark moved to the Vow"),
    "tab": _dai_column("tab (DAI)", "What the auction had to raise: the debt times the liquidation penalty"),
    "raised": _dai_column("raised (DAI)", "What its takes paid"),
    "shortfall": _dai_column("shortfall (DAI)", "The debt it did not recover once it ended: bad debt on the Vow"),
    "average_price_dai": _dai_column("average price (DAI)", "Raised over collateral sold, per whole token"),
    "top_buyer": st.column_config.TextColumn(
        "bought by",
        help="The take sender that paid the most dai: the buyer, or the operator of the keeper contract that bought "
        "(the Take event names no buyer; its transaction's sender)",
    ),
    "buyers": count_column("buyers"),
    "keeper": st.column_config.TextColumn("kicked by", help="The keeper the bark credited with the incentive"),
    "kicked_block": count_column("kicked at block"),
    "last_take_block": count_column("last take block"),
    "chain_id": CHAIN_COLUMN,
    "ilk": "ilk",
    "protocol": None,
    "source": "ChainLog",
    "clip": "Clipper",
    "auction_id": "auction id",
}


def _auctions(db: Path) -> None:
    if missing_relations(db, (AUCTIONS_VIEW,)):
        return
    figures = auction_totals(db)
    if not figures["auctions"]:
        return
    rows = auction_rows(db)
    st.subheader("Maker/Sky auctions")
    cols = st.columns(5)
    cols[0].metric(
        "Open auctions",
        f"{figures['running']:,}",
        help="Auctions not ended: selling collateral now, or waiting for a reset",
    )
    cols[1].metric(
        "Need a reset", f"{figures['needs_redo']:,}", help="Of the open ones: no one can buy until a keeper calls redo"
    )
    cols[2].metric("Left to raise (DAI)", amount_short(figures["tab_left"]), help="The open auctions' tabs left")
    cols[3].metric(
        "Raised by ended (DAI)",
        amount_short(figures["raised"]),
        help=f"What the takes of the {figures['ended']:,} ended auctions paid",
    )
    cols[4].metric(
        "Shortfall (DAI)",
        amount_short(figures["shortfall"]),
        help="The debt ended auctions did not recover: bad debt on the Vow",
    )
    st.caption(
        "Each Clipper auction a bark started, from its Kick, Takes and Redos and, while it runs, the Clipper's sale "
        f"and price at the latest snapshot; dai amounts in whole DAI. Collateral left at the oracle's price: "
        f"{amount_short(figures['lot_value'])} DAI against "
        f"{amount_short(figures['tab_left'])} DAI to raise. Of the liquidation penalty the ended auctions charged, "
        f"they raised {amount_short(figures['penalty'])} DAI (the Vow's; the rest of what they raised covered debt)."
        + _buyers_line(auction_buyers(db))
    )
    key_table(
        rows,
        "maker_auctions",
        (
            "market_label",
            "wallet page",
            "status",
            "age_h",
            "tab_left",
            "lot_left_tokens",
            "collateral_symbol",
            "price_to_feed_pct",
            "shortfall",
        ),
        AUCTION_CONFIG,
        "these auctions",
    )


def store_front_rows(db: Path) -> pl.DataFrame:
    """Each Comet's absorbed collateral per asset: what absorbs took, what buyCollateral sold, what the Comet holds now
    (stg_compound_v3_store_front), the largest holdings first."""
    frame = query(
        db,
        f"""
        SELECT s.protocol, coalesce(l.market_label, s.market) AS market_label, s.symbol, s.held_tokens, s.held_usd,
               s.for_sale, s.discount_pct, s.absorbed_tokens, s.absorbed_usd, s.sold_tokens, s.paid_tokens,
               s.base_symbol, s.paid_usd, s.sales, s.buyers, s.top_buyer, s.top_buyer_paid_pct, s.unaccounted_tokens,
               s.chain_id, s.market, s.asset, s.block_number
        FROM {STORE_FRONT_VIEW} AS s
        LEFT JOIN stg_market_labels AS l ON l.protocol = s.protocol AND l.chain_id = s.chain_id AND l.market = s.market
        ORDER BY s.held_usd DESC NULLS LAST, s.absorbed_usd DESC NULLS LAST, s.market, s.symbol
        """,
    )
    return frame.with_columns(market_names(frame, "market_label"))


#: How the store front table shows `store_front_rows`' columns.
STORE_FRONT_CONFIG = {
    "market_label": st.column_config.TextColumn("market", width="medium"),
    "symbol": "collateral",
    "held_tokens": tokens_column("held (tokens)", "Absorbed collateral the Comet still holds (getCollateralReserves)"),
    "held_usd": usd_column("held (USD)", "What it holds at Comet's price now: the reserves' exposure to that price"),
    "for_sale": st.column_config.CheckboxColumn(
        "for sale", help="buyCollateral sells only while the Comet's reserves are under targetReserves"
    ),
    "discount_pct": percent_column(
        "discount", "The store front's discount on Comet's price: storeFrontPriceFactor x (1 - liquidationFactor)"
    ),
    "absorbed_tokens": tokens_column("absorbed (tokens)", "What absorbs took of it in the indexed blocks"),
    "absorbed_usd": usd_column("absorbed (USD)", "What those absorbs valued it at, at each absorb's price"),
    "sold_tokens": tokens_column("sold (tokens)", "What buyCollateral sold of it"),
    "paid_tokens": tokens_column("paid (base tokens)", "What its buyers paid, in the Comet's base token"),
    "base_symbol": "base",
    "paid_usd": usd_column("paid (USD)", "What its buyers paid, at the base token's price now"),
    "sales": count_column("sales"),
    "buyers": count_column("buyers"),
    "top_buyer": st.column_config.TextColumn("top buyer", help="The buyer who paid the most"),
    "top_buyer_paid_pct": percent_column("top buyer's share", "Its share of what all buyers paid"),
    "unaccounted_tokens": tokens_column(
        "unexplained (tokens)",
        "Held less (absorbed less sold): absorbs before the indexed blocks, or tokens sent to the Comet directly",
    ),
    "chain_id": CHAIN_COLUMN,
    "market": "Comet",
    "asset": "asset",
    "block_number": count_column("snapshot block"),
    "protocol": None,
}


def _store_front(db: Path) -> None:
    if missing_relations(db, (STORE_FRONT_VIEW,)):
        return
    rows = store_front_rows(db)
    if rows.is_empty():
        return
    st.subheader("Compound V3 store front")

    def total(column: str, frame: pl.DataFrame = rows) -> str:
        return usd_short(float(frame.get_column(column).fill_null(0.0).sum()))

    cols = st.columns(4)
    cols[0].metric(
        "Collateral held (USD)",
        total("held_usd"),
        help="Collateral absorbs took that no one has bought yet, at Comet's price now",
    )
    cols[1].metric(
        "Not for sale (USD)",
        total("held_usd", rows.filter(~pl.col("for_sale").fill_null(False))),
        help="Of it, held by Comets whose reserves reached targetReserves: buyCollateral refuses to sell until "
        "they fall under it",
    )
    cols[2].metric(
        "Absorbed (USD)", total("absorbed_usd"), help="What the indexed absorbs valued the collateral they took at"
    )
    cols[3].metric(
        "Sold for (USD)",
        total("paid_usd"),
        help="What buyCollateral's buyers paid for it, at the base tokens' price now",
    )
    st.caption(
        "A Comet absorb credits the account part of its collateral's value and keeps the collateral; the protocol gets "
        "its base back only by selling it at the store front (buyCollateral), at Comet's price less a discount, while "
        "its reserves are under target. Per Comet and collateral: what the indexed absorbs took, what was sold and "
        "for how much, and what the Comet holds at its latest snapshot."
    )
    key_table(
        rows,
        "compound_store_front",
        ("market_label", "symbol", "held_tokens", "held_usd", "for_sale", "discount_pct", "sold_tokens", "buyers"),
        STORE_FRONT_CONFIG,
        "the store fronts",
    )


def _buyers_line(buyers: dict[str, float | int | None]) -> str:
    """The caption's sentence on who bought the collateral (nothing before a take with a known sender)."""
    count, share = int(buyers["buyers"] or 0), buyers["top_share"]
    if not count or share is None:
        return ""
    if count == 1:
        return " One buyer bought all of the collateral sold (takes whose sender is known: indexed since stop 55)."
    return (
        f" {count:,} buyers bought the collateral sold; the largest paid {100 * float(share):.1f} % of their dai "
        "(takes whose sender is known: indexed since stop 55)."
    )


def render() -> None:
    db = database_location()
    require(db, VIEW, CALLS_VIEW, LIQUIDATORS_VIEW)
    _now(db)
    _auctions(db)
    _store_front(db)
    figures = totals(db)
    if not figures["liquidations"]:
        st.info(
            "No liquidation in the indexed blocks of any market: they appear here as `chainrisk index` (or `run`) "
            "reads them from the contracts' logs."
        )
        return
    st.subheader("Liquidations logged")
    # Two rows of three: six labels in one row of a 1,400 px page cut the longest short.
    cols = [*st.columns(3), *st.columns(3)]
    cols[0].metric("Liquidations", f"{figures['liquidations']:,}", help="Accounts liquidated, one per transaction")
    cols[1].metric("Debt repaid (USD)", usd_short(figures["debt_usd"]), help="The debt the liquidations took off")
    cols[2].metric("Collateral seized (USD)", usd_short(figures["collateral_usd"]))
    cols[3].metric("Bad debt (USD)", usd_short(figures["bad_debt_usd"]), help=BAD_DEBT)
    cols[4].metric("Liquidators' gain (USD)", usd_short(figures["gain_usd"]), help=LIQUIDATOR_GAIN)
    cols[5].metric("Protocol fees (USD)", usd_short(figures["fee_usd"]), help=PROTOCOL_FEE)
    notes = [
        "USD at each event's time: the asset prices `chainrisk credit history` recorded at or before its block"
        + (
            f"; {figures['latest_priced']:,} rows without one are valued at their market's latest snapshot"
            if figures["latest_priced"]
            else ""
        )
        + (f"; {figures['unpriced']:,} rows have no USD price at all" if figures["unpriced"] else "")
        + "."
    ]
    if figures["untimed"]:
        notes.append(
            f"{figures['untimed']:,} rows have no recorded block time (run `chainrisk credit history` to record it): "
            "they count in the totals and the tables, not on the chart."
        )
    if figures["bad_debt_unknown"]:
        notes.append(
            f"{figures['bad_debt_unknown']:,} liquidations' bad debt is not known yet, or not at all, and is not in "
            "the bad debt total: a Maker auction still running (or whose end was not read), a Comet absorb whose "
            "liquidation factor changed between the snapshots around it."
        )
    st.caption(" ".join(notes))
    _over_time(per_day(db))
    st.subheader("By market")
    key_table(
        per_market(db),
        "liquidations_markets",
        ("market_label", "liquidations", "debt_usd", "collateral_usd", "bad_debt_usd", "gain_usd", "fee_usd"),
        {
            "market_label": st.column_config.TextColumn("market", width="medium"),
            "liquidations": count_column("liquidations"),
            "wallets": count_column("wallets"),
            "debt_usd": usd_column("debt repaid (USD)"),
            "collateral_usd": usd_column("collateral seized (USD)"),
            "bad_debt_usd": usd_column("bad debt (USD)", BAD_DEBT),
            "gain_usd": usd_column("gain (USD)", LIQUIDATOR_GAIN),
            "fee_usd": usd_column("protocol fees (USD)", PROTOCOL_FEE),
            "largest_usd": usd_column("largest (USD)", "The most debt one liquidation repaid"),
            "last_time": st.column_config.DatetimeColumn("last (UTC)", format="YYYY-MM-DD HH:mm"),
            "last_block": count_column("last block"),
            "chain_id": CHAIN_COLUMN,
            "market": "market id",
        },
        "these markets",
    )
    _liquidators(per_liquidator(db))
    _latest(liquidation_rows(db), int(figures["liquidations"] or 0))


def _liquidators(frame: pl.DataFrame) -> None:
    if frame.is_empty():
        return
    st.subheader("Who liquidates")
    st.caption(
        "A protocol whose liquidations rest on one or two keepers depends on them staying up in the next crash. "
        + "; ".join(concentration_lines(frame))
        + "."
    )
    known = frame.filter(pl.col("rank").is_not_null() & pl.col("debt_share_pct").is_not_null())
    if not known.is_empty():
        shown = known.with_columns(
            pl.when(pl.col("rank") <= CHART_LIQUIDATORS)
            .then(pl.format("#{} {}", "rank", "keeper"))
            .otherwise(pl.lit("the others"))
            .alias("keeper")
        )
        chart = (
            alt.Chart(shown)
            .mark_bar()
            .encode(
                x=alt.X(
                    "sum(debt_share_pct):Q", title="share of the debt repaid (%)", scale=alt.Scale(domain=[0, 100])
                ),
                y=alt.Y("where:N", title=None),
                color=series_colour("keeper:N", CHART_LIQUIDATORS + 1, "liquidator"),
                order=alt.Order("min(rank):Q"),
                tooltip=[
                    alt.Tooltip("where:N", title="protocol"),
                    "keeper",
                    alt.Tooltip("sum(debt_share_pct):Q", format=".1f", title="share of the debt repaid (%)"),
                    alt.Tooltip("sum(liquidations):Q", format="d", title="liquidations"),
                    alt.Tooltip("sum(debt_repaid_usd):Q", format="$,.0f", title="debt repaid (USD)"),
                ],
            )
        )
        st.altair_chart(chart, width="stretch")
    key_table(
        frame,
        "liquidations_liquidators",
        ("keeper", "protocol", "liquidations", "debt_repaid_usd", "debt_share_pct", "liquidator_gain_usd"),
        {
            "keeper": st.column_config.TextColumn("liquidator", help="The liquidator's address, shortened"),
            "liquidator": st.column_config.TextColumn("address", width="large"),
            "where": None,
            "rank": count_column("rank"),
            "liquidations": count_column("liquidations"),
            "wallets": count_column("wallets"),
            "markets": count_column("markets"),
            "debt_repaid_usd": usd_column("debt repaid (USD)"),
            "collateral_seized_usd": usd_column("collateral seized (USD)"),
            "bad_debt_usd": usd_column("bad debt (USD)", BAD_DEBT),
            "liquidator_gain_usd": usd_column("gain (USD)", LIQUIDATOR_GAIN),
            "debt_share_pct": percent_column("share of debt", "Of the debt the protocol's known liquidators repaid"),
            "liquidation_share_pct": percent_column("share of liquidations"),
            "liquidators": count_column("liquidators in protocol"),
            "top1_debt_share_pct": percent_column("largest's share"),
            "hhi": st.column_config.NumberColumn("HHI", format="%.3f", help="Herfindahl index of the debt shares"),
            "first_block": count_column("first block"),
            "last_block": count_column("last block"),
            "last_time": st.column_config.DatetimeColumn("last (UTC)", format="YYYY-MM-DD HH:mm"),
        },
        "these liquidators",
    )


def _over_time(days: pl.DataFrame) -> None:
    if days.is_empty():
        return
    st.subheader("Debt repaid by liquidations, per day")
    frame = naive_utc(days, "day")
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("day:T", title="day (UTC)"),
            y=alt.Y("sum(debt_usd):Q", title="debt repaid (USD)", axis=alt.Axis(format="$,.0f")),
            color=series_colour("protocol:N", frame["protocol"].n_unique(), "protocol"),
            tooltip=[
                alt.Tooltip("day:T", format="%Y-%m-%d", title="day (UTC)"),
                "protocol",
                alt.Tooltip("liquidations:Q", format="d"),
                alt.Tooltip("debt_usd:Q", format="$,.2f", title="debt repaid (USD)"),
                alt.Tooltip("bad_debt_usd:Q", format="$,.2f", title="bad debt (USD)"),
                alt.Tooltip("fee_usd:Q", format="$,.2f", title="protocol fees (USD)"),
            ],
        )
    )
    st.altair_chart(bars, width="stretch")


def _latest(frame: pl.DataFrame, count: int) -> None:
    st.subheader("Latest liquidations")
    if count > frame.height:
        st.caption(f"The newest {frame.height:,} rows of {count:,} liquidations; `mart_liquidations` holds every one.")
    key_table(
        frame,
        "liquidations_latest",
        (
            "block_time",
            "market_label",
            "wallet page",
            "debt_symbol",
            "debt_repaid_usd",
            "collateral_symbol",
            "collateral_seized_usd",
            "liquidator_gain_usd",
        ),
        ROW_CONFIG,
        "these liquidations",
    )
