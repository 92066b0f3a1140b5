"""Collateral chains page: the asset graph, exposure by base asset counted once, loops and deep chains per wallet,
and the latest contagion run — for risk stewards asking "what is really backing this debt, and what if it falls?".

Reads asset_links, base_asset_exposure, wallet_lookthrough and collateral_chains at each chain's latest block, and
the latest `chainrisk risk contagion` run (risk_runs, contagion_*).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard.data import database_location, missing_relations, query
from chainrisk.dashboard.markets import market_labels
from chainrisk.dashboard.ui import (
    PROTOCOL_NAMES,
    health_column,
    market_name,
    table,
    tokens_column,
    usd,
    usd_column,
    usd_short,
    wallet_link_column,
    with_wallet_links,
)
from chainrisk.networks import chain_name
from chainrisk.store.schema.risk import NOTES_SEPARATOR

TABLES = ("asset_links", "base_asset_exposure", "wallet_lookthrough", "collateral_chains")
#: Rows shown in the wallet tables (the largest first); how many there are in all is said beside.
ROWS_SHOWN = 200
KIND_NAMES = {"atoken": "Aave aToken", "erc4626": "ERC-4626 vault", "lst": "liquid-staking token"}
CHANNELS = {
    "direct": "holds a shocked asset itself",
    "chain": "only through a wrapper (LST, aToken, vault share)",
    "bad debt": "only through a claim on a market that took bad debt",
    "before shock": "already liquidatable before the shock",
}
LATEST = "(chain_id, block_number) IN (SELECT (chain_id, max(block_number)) FROM {table} GROUP BY chain_id)"


def _latest(db: Path, table: str, columns: str = "*", order: str = "") -> pl.DataFrame:
    sql = f"SELECT {columns} FROM {table} WHERE {LATEST.format(table=table)}"
    return query(db, sql + (f" ORDER BY {order}" if order else ""))


def render() -> None:
    db = database_location()
    if missing_relations(db, TABLES):
        st.info(
            f"No look-through yet: run `chainrisk chains --db {db} --devnet` (or `--rpc-url URL`), or any "
            "`chainrisk run` (it looks through every snapshot it takes), then reload this page."
        )
        return
    with st.spinner("Reading the asset graph and look-through ..."):
        links = _latest(db, "asset_links", order="kind, symbol")
        base = _latest(db, "base_asset_exposure", order="collateral_usd DESC NULLS LAST")
    if base.is_empty():
        st.info(f"No look-through stored yet: run `chainrisk chains --db {db} --devnet` (or `--rpc-url URL`).")
        return
    block = int(base["block_number"].max())  # type: ignore[arg-type]
    chained = float(base["chained_collateral_usd"].fill_null(0).sum())
    total = float(base["collateral_usd"].fill_null(0).sum())
    cols = st.columns(4)
    cols[0].metric("Wrapped assets found", f"{links.height}", help="aTokens, ERC-4626 vaults and LSTs read on chain")
    share = f" ({chained / total:.1%} of all collateral)" if total else ""
    cols[1].metric("Collateral through chains", usd_short(chained), help=f"Held through a wrapper{share}")
    cols[2].metric(
        "Counted twice by a plain sum",
        usd_short(float(base["double_counted_usd"].fill_null(0).sum())),
        help="Collateral a sum over every position would count again: aTokens held by Morpho on behalf of "
        "its borrowers, a vault's own supply positions.",
    )
    cols[3].metric("Deepest chain", f"{int(base['max_depth'].max() or 0)} hops")  # type: ignore[arg-type]
    st.caption(
        f"Block {block:,}. Every position is followed through the wrappers it holds to the base assets it is "
        "ultimately a claim on, at exchange rates read from the contracts at that block; amounts in USD at the "
        "snapshot's oracle prices."
    )
    tabs = st.tabs(["By base asset", "Asset graph", "Wallets", "Contagion"])
    with tabs[0]:
        _by_base(base)
    with tabs[1]:
        _graph(links)
    with tabs[2]:
        _wallets(db)
    with tabs[3]:
        _contagion(db)


def _by_base(base: pl.DataFrame) -> None:
    st.subheader("Collateral by base asset, held directly or through a wrapper")
    st.caption(
        "Every position's collateral followed through its wrappers to the base assets it is a claim on, counted "
        "once. The table's \"debt it backs\" shares each position's debt among those base assets by value."
    )
    base = base.with_columns(asset_labels(base))
    bars = base.select(
        "base_symbol",
        pl.col("direct_collateral_usd").alias("held directly"),
        pl.col("chained_collateral_usd").alias("through a chain"),
    ).unpivot(index="base_symbol", variable_name="how", value_name="usd")
    chart = (
        alt.Chart(bars.to_pandas())
        .mark_bar()
        .encode(
            x=alt.X("usd:Q", title="collateral (USD)", axis=alt.Axis(format="$,.0f")),
            y=alt.Y("base_symbol:N", title="base asset", sort="-x", axis=alt.Axis(labelLimit=0)),
            color=alt.Color("how:N", title=None),
            tooltip=["base_symbol", "how", alt.Tooltip("usd:Q", format="$,.0f")],
        )
    )
    st.altair_chart(chart, width="stretch")
    config = {
        "base_symbol": st.column_config.TextColumn("base asset", help="Its token's address where a symbol repeats"),
        "price_usd": usd_column("price (USD)", "USD per whole token"),
        "collateral_usd": usd_column("collateral (USD)", "Posted as collateral by end owners, counted once"),
        "direct_collateral_usd": usd_column("held directly (USD)"),
        "chained_collateral_usd": usd_column("through chains (USD)"),
        "backed_debt_usd": usd_column(
            "debt it backs (USD)",
            "Debt across all protocols, shared among the base assets of each position's collateral by value",
        ),
        "backed_borrowers": st.column_config.NumberColumn("borrowers", help="Borrowers whose collateral it backs"),
        "debt_usd": usd_column("borrowed in it (USD)"),
        "supply_usd": usd_column("supplied, not collateral (USD)"),
        "double_counted_usd": usd_column("a plain sum adds (USD)", "What summing every position would count twice"),
        "max_depth": st.column_config.NumberColumn("deepest chain (hops)"),
    }
    key = [
        "base_symbol",
        "collateral_usd",
        "direct_collateral_usd",
        "chained_collateral_usd",
        "backed_debt_usd",
        "backed_borrowers",
        "debt_usd",
    ]
    with st.container(key="chains_by_base"):
        table(base.select(key), hide_index=True, column_config=config)
    with st.expander("Price, supply, double counting and depth per base asset"):
        others = ["price_usd", "supply_usd", "double_counted_usd", "max_depth"]
        table(base.select("base_symbol", *others), hide_index=True, column_config=config)


def asset_labels(base: pl.DataFrame) -> pl.Series:
    """`base_symbol` for people: the symbol (the address without one), and where a symbol names more than one token
    (the chain's WETH and a stand-in's own; USDC and bridged USDC on a rollup; one token on two chains) its short
    address too, and its chain's name when the frame holds several chains."""
    chains = base["chain_id"].n_unique() > 1
    named = [symbol or asset for symbol, asset in base.select("base_symbol", "base_asset").iter_rows()]
    repeated = {n for n in named if named.count(n) > 1}
    labels = []
    for name, (asset, chain) in zip(named, base.select("base_asset", "chain_id").iter_rows(), strict=True):
        where = f"{asset[:6]}…{asset[-4:]}" + (f", {chain_name(int(chain))}" if chains else "")
        labels.append(f"{name} ({where})" if name in repeated else name)
    return pl.Series("base_symbol", labels, dtype=pl.String)


def _graph(links: pl.DataFrame) -> None:
    st.subheader("Asset graph")
    if links.is_empty():
        st.info("No wrapped asset in these positions: every collateral is a base asset.")
        return
    shown = links.with_columns(
        pl.col("kind").replace_strict(KIND_NAMES, default=pl.col("kind")).alias("kind"),
        pl.format("1 {} = {} {}", "symbol", pl.col("rate").round(8), "underlying_symbol").alias("exchange rate"),
        (pl.col("total_assets").cast(pl.Float64) / pl.lit(10.0).pow(pl.col("underlying_decimals"))).alias(
            "vault assets"
        ),
        (pl.col("index_ray").cast(pl.Float64) / 1e27).alias("liquidity index"),
    )
    table(
        shown.select(
            "symbol",
            "kind",
            "underlying_symbol",
            "exchange rate",
            "vault assets",
            "liquidity index",
            "detected_by",
            "asset",
        ),
        hide_index=True,
        column_config={
            "symbol": "asset",
            "underlying_symbol": "claim on",
            "detected_by": "found by",
            "asset": st.column_config.TextColumn("token", width="small"),
            "vault assets": tokens_column("vault assets (tokens)"),
            "liquidity index": st.column_config.NumberColumn("liquidity index", format="%.6f"),
        },
    )
    st.caption(
        "Found on chain: aTokens by UNDERLYING_ASSET_ADDRESS() and POOL() (the pool confirming it), ERC-4626 vaults "
        "by asset() and totalAssets(), wstETH-style LSTs by stETH(); rETH, cbETH and weETH from a registry."
    )


def _wallets(db: Path) -> None:
    view = _latest(db, "wallet_lookthrough")
    labels = market_labels(db)
    st.subheader("Loops: collateral and debt in the same asset family")
    loops = view.filter(pl.col("loop_leverage").is_not_null()).sort("loop_leverage", descending=True)
    st.caption(
        f"{loops.height:,} wallets loop (post collateral and owe debt in one correlated group, e.g. wstETH against "
        "WETH). Leverage = collateral / (collateral - debt) within that group. Combined health treats every market "
        "the wallet uses as one cross-margined account: sum of collateral x threshold over sum of debt."
    )
    wallet_cols = {
        "protocols": "protocols",
        "loop_group": "family",
        "loop_leverage": st.column_config.NumberColumn("leverage", format="%.2fx"),
        "collateral_usd": usd_column("collateral (USD)", "Looked through every wrapper to its base assets"),
        "debt_usd": usd_column("debt (USD)"),
        "net_usd": usd_column("net worth (USD)"),
        "chained_usd": usd_column("through chains (USD)"),
        "max_depth": "depth (hops)",
        "worst_health_factor": health_column("worst market HF"),
        "combined_health_factor": health_column("combined HF"),
        "wallet page": wallet_link_column(),
        "wallet": None,
    }
    fields = [
        "wallet page",
        "wallet",
        "loop_group",
        "loop_leverage",
        "collateral_usd",
        "debt_usd",
        "chained_usd",
        "max_depth",
        "worst_health_factor",
        "combined_health_factor",
        "protocols",
        "net_usd",
    ]
    table(with_wallet_links(loops.head(ROWS_SHOWN)).select(fields), hide_index=True, column_config=wallet_cols)
    st.subheader("Deepest chains")
    deep = view.filter(pl.col("max_depth") > 0).sort("chained_usd", descending=True, nulls_last=True)
    st.caption(f"{deep.height:,} wallets hold collateral through at least one wrapper; the largest first.")
    table(with_wallet_links(deep.head(ROWS_SHOWN)).select(fields), hide_index=True, column_config=wallet_cols)
    if deep.is_empty():
        return
    wallet = st.selectbox("Follow one wallet's chains", deep["wallet"].head(ROWS_SHOWN).to_list(), key="chains_wallet")
    legs = query(
        db,
        f"SELECT * FROM collateral_chains WHERE wallet = ? AND {LATEST.format(table='collateral_chains')} "
        "ORDER BY protocol, market, path",
        wallet,
    )
    names = [
        labels.get((p, c, m)) or market_name(p, m[:10] + "…")
        for p, c, m in legs.select("protocol", "chain_id", "market").iter_rows()
    ]
    claims = [
        None if m is None else (labels.get((p, c, m)) or market_name(p, m[:10] + "…"))
        for p, c, m in legs.select("claim_protocol", "chain_id", "claim_market").iter_rows()
    ]
    shown = legs.with_columns(
        pl.Series("where", names, dtype=pl.String),
        pl.Series("money sits in", claims, dtype=pl.String),
        (pl.col("base_amount").cast(pl.Float64) / pl.lit(10.0).pow(pl.col("base_decimals"))).alias("base tokens"),
    )
    table(
        shown.select("where", "role", "path", "depth", "base tokens", "base_symbol", "base_usd", "money sits in"),
        hide_index=True,
        column_config={
            "where": st.column_config.TextColumn("where", width=220),
            "base tokens": tokens_column("base amount (tokens)"),
            "base_symbol": "base asset",
            "base_usd": usd_column("value (USD)"),
            "money sits in": st.column_config.TextColumn("money sits in", width=220),
        },
    )


def _contagion(db: Path) -> None:
    hint = f"`chainrisk risk contagion --db {db} --shock WETH=-35% --shock stETH=-35%`"
    if missing_relations(db, ("risk_runs", "contagion_rounds")):
        st.info(f"No contagion run yet: run {hint} and reload this page.")
        return
    runs = query(db, "SELECT * FROM risk_runs WHERE kind = 'contagion' ORDER BY run_id DESC LIMIT 1")
    if runs.is_empty():
        st.info(f"No contagion run yet: run {hint} and reload this page.")
        return
    run: dict[str, Any] = runs.row(0, named=True)
    run_id = int(run["run_id"])
    shock = json.loads(run["params"] or "{}").get("shock", {})
    st.caption(
        f"Run #{run_id} · positions at block {run['block_number'] or 0:,} · shock "
        + ", ".join(f"{s} {m - 1:+.0%}" for s, m in shock.items())
        + ". Round 1 moves the base prices and every price built on them; each later round follows the bad debt "
        "that Morpho markets book (lowering what their suppliers, and vaults supplying them, hold)."
    )
    if run["notes"]:  # what the run could not carry as the shock names it (chainrisk.jobs.risk.run_contagion)
        st.info("  \n".join(f"- {note}" for note in str(run["notes"]).split(NOTES_SEPARATOR)))
    rounds = query(db, "SELECT * FROM contagion_rounds WHERE run_id = ? ORDER BY round, protocol", run_id)
    wallets = query(db, "SELECT * FROM contagion_wallets WHERE run_id = ? ORDER BY round, debt_usd DESC", run_id)
    cols = st.columns(3)
    cols[0].metric("Wallet-markets liquidatable", f"{wallets.height:,}")
    cols[1].metric("Their debt", usd_short(float(wallets["debt_usd"].sum())))
    cols[2].metric("Bad debt", usd_short(float(wallets["bad_debt_usd"].sum())))
    shown = rounds.filter(pl.col("new_liquidatable_wallets") > 0).with_columns(
        pl.col("protocol").replace_strict(PROTOCOL_NAMES, default=pl.col("protocol"))
    )
    if shown.is_empty():
        st.success("This shock liquidates nobody.")
        return
    chart = (
        alt.Chart(shown.to_pandas())
        .mark_bar()
        .encode(
            x=alt.X("round:O", title="round"),
            y=alt.Y(
                "new_liquidatable_debt_usd:Q", title="newly liquidatable debt (USD)", axis=alt.Axis(format="$,.0f")
            ),
            color=alt.Color("protocol:N", title=None),
            tooltip=[
                "round",
                "protocol",
                "new_liquidatable_wallets",
                alt.Tooltip("new_liquidatable_debt_usd:Q", format="$,.0f"),
                alt.Tooltip("new_bad_debt_usd:Q", format="$,.0f"),
            ],
        )
    )
    st.altair_chart(chart, width="stretch")
    channels = (
        wallets.group_by("channel")
        .agg(pl.len().alias("wallets"), pl.col("debt_usd").sum())
        .with_columns(pl.col("channel").replace_strict(CHANNELS, default=pl.col("channel")).alias("how it was hit"))
    )
    table(
        channels.select("channel", "how it was hit", "wallets", "debt_usd"),
        hide_index=True,
        column_config={"debt_usd": usd_column("debt")},
    )
    prices = query(
        db,
        "SELECT round, symbol, multiplier, rate_factor FROM contagion_prices WHERE run_id = ? AND "
        "asset IN (SELECT asset FROM contagion_prices WHERE run_id = ? AND rate_factor < 1) ORDER BY round",
        run_id,
        run_id,
    )
    if not prices.is_empty():
        settled = prices.filter(pl.col("round") == pl.col("round").max())
        st.caption(
            "Vault shares repriced by the bad debt of the markets they supply, once the rounds settle: "
            + "; ".join(f"{s} {float(f) - 1:+.3%}" for s, f in settled.select("symbol", "rate_factor").iter_rows())
        )
    labels = market_labels(db)
    names = [
        labels.get((p, c, m)) or market_name(p, m[:10] + "…")
        for p, c, m in wallets.select("protocol", "chain_id", "market").iter_rows()
    ]
    listed = with_wallet_links(wallets.with_columns(pl.Series("market_name", names, dtype=pl.String)))
    table(
        listed.select(
            "round",
            "channel",
            "wallet page",
            "wallet",
            "market_name",
            "health_factor_before",
            "health_factor",
            "debt_usd",
            "bad_debt_usd",
        ).head(ROWS_SHOWN),
        hide_index=True,
        column_config={
            "market_name": "market",
            "health_factor_before": health_column("HF before"),
            "health_factor": health_column("HF when liquidatable"),
            "debt_usd": usd_column("debt"),
            "bad_debt_usd": usd_column("bad debt"),
            "wallet page": wallet_link_column(),
            "wallet": None,
        },
    )
    st.caption(f"{wallets.height:,} wallet-markets in all; {usd(float(wallets['debt_usd'].sum()))} of debt.")
