"""Devnet page: the local chain's protocols (real bytecode or labelled stand-ins), contracts, reserves, replayed prices
and wallet behaviour, from its manifest."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard.ui import series_colour, table
from chainrisk.devnet.aave import RESERVES
from chainrisk.devnet.manifest import manifest_path, read_manifest
from chainrisk.devnet.prices import BASE_FEEDS, FEED_DECIMALS, load_price_path, parse_start
from chainrisk.devnet.summary import STAND_IN, protocol_summaries
from chainrisk.errors import UserError


def manifest_location() -> Path:
    """The manifest named by CHAINRISK_MANIFEST, else the default devnet's."""
    env = os.environ.get("CHAINRISK_MANIFEST")
    return Path(env) if env else manifest_path()


def load_manifest(path: Path) -> dict[str, Any]:
    return read_manifest(path)


def protocols_frame(manifest: dict[str, Any]) -> pl.DataFrame:
    """One row per protocol on the devnet: real bytecode or stand-in, its markets, wallets and liquidations."""
    rows = [(r.protocol, r.bytecode, r.markets, r.wallets, r.liquidations) for r in protocol_summaries(manifest)]
    return pl.DataFrame(rows, schema=["protocol", "bytecode", "markets", "wallets", "liquidations"], orient="row")


def contracts_frame(manifest: dict[str, Any]) -> pl.DataFrame:
    """Every protocol's main contracts, each labelled real bytecode or stand-in (chainrisk's own Solidity)."""
    rows = [
        (r.protocol, r.bytecode, contract, address)
        for r in protocol_summaries(manifest)
        for contract, address in r.contracts
    ]
    return pl.DataFrame(rows, schema=["protocol", "bytecode", "contract", "address"], orient="row")


def reserves_frame(manifest: dict[str, Any]) -> pl.DataFrame:
    rows = []
    for spec in RESERVES:
        reserve = manifest["aave_v3"]["reserves"][spec.symbol]
        rows.append(
            {
                "asset": spec.symbol,
                "decimals": spec.decimals,
                "LTV %": spec.ltv / 100,
                "liq. threshold %": spec.liquidation_threshold / 100,
                "liq. bonus %": (spec.liquidation_bonus - 10_000) / 100,
                "e-mode": "ETH correlated" if spec.emode_category else "",
                "isolation debt ceiling": f"${spec.debt_ceiling / 100:,.0f}" if spec.debt_ceiling else "",
                "token": reserve["asset"],
            }
        )
    return pl.DataFrame(rows)


def morpho_markets_frame(manifest: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "market": f"{m['collateral_symbol']} / {m['loan_symbol']}",
                "LLTV %": m["lltv"] / 10**16,
                "market id": m["market_id"],
            }
            for m in manifest["morpho_blue"]["markets"]
        ]
    )


#: Devnet plumbing (token faucet) rather than wallet behaviour; left out of the behaviour chart.
FUNDING_ACTIONS = frozenset({"mint", "approve"})


def actions_frame(manifest: dict[str, Any]) -> pl.DataFrame:
    history = manifest["history"]
    kinds = sorted((set(history["actions"]) | set(history["reverted"])) - FUNDING_ACTIONS)
    return pl.DataFrame(
        {
            "action": kinds,
            "succeeded": [history["actions"].get(k, 0) for k in kinds],
            "refused by the contracts": [history["reverted"].get(k, 0) for k in kinds],
        }
    )


def replayed_prices(manifest: dict[str, Any]) -> pl.DataFrame:
    """Long frame (time, asset, price USD, change %) of the base feed answers the replay set, from the same
    history (wrapped assets' feeds follow their base on chain)."""
    options = manifest["options"]
    path = load_price_path(BASE_FEEDS, parse_start(options["start"]), options["days"], options["step_hours"])
    return (
        path.unpivot(index=["step", "time"], variable_name="asset", value_name="answer")
        .sort("asset", "step")
        .with_columns(
            (pl.col("answer") / 10**FEED_DECIMALS).alias("price USD"),
            ((pl.col("answer") / pl.col("answer").first().over("asset") - 1) * 100).alias("change %"),
        )
    )


@st.cache_data(ttl=30, show_spinner=False)
def _manifest(path: str, modified_ns: int) -> dict[str, Any]:
    """Cached per file and version: a rebuilt devnet shows at once."""
    return load_manifest(Path(path))


@st.cache_data(ttl=600, show_spinner=False)
def _prices(manifest: dict[str, Any]) -> pl.DataFrame:
    return replayed_prices(manifest)


def render() -> None:
    try:
        location = manifest_location()
        modified = location.stat().st_mtime_ns if location.is_file() else 0
        manifest = _manifest(str(location), modified)
    except UserError as exc:
        st.info(f"No devnet to show yet. {exc}")
        return
    history = manifest["history"]
    head_time = datetime.fromtimestamp(manifest["head_timestamp"], tz=UTC)
    cols = st.columns(5)
    cols[0].metric("Chain id", manifest["chain_id"])
    cols[1].metric("Head block", f"{manifest['head_block']:,}")
    cols[2].metric("Wallets", f"{len(manifest['wallets']):,}")
    cols[3].metric("Aave liquidations", history["aave_liquidations"])
    cols[4].metric("Morpho liquidations", history["morpho_liquidations"])
    st.caption(
        f"RPC {manifest['rpc_url']} · chain time at head {head_time:%Y-%m-%d %H:%M} UTC · "
        f"prices replayed from {history['window'][0][:10]} to {history['window'][1][:10]} "
        f"(CoinGecko hourly USD, via shared/data)"
    )

    st.subheader("Protocols on this devnet")
    protocols = protocols_frame(manifest)
    table(protocols, hide_index=True)
    stand_ins = protocols.filter(pl.col("bytecode") == STAND_IN)["protocol"].to_list()
    if stand_ins:
        st.caption(
            f"{', '.join(stand_ins)}: stand-ins, chainrisk's own Solidity with the protocols' interfaces and maths, "
            "not the real bytecode (no registry ships it). Aave and Morpho run their real bytecode."
        )

    st.subheader("Replayed oracle prices: change since the window opened")
    with st.spinner("loading the price history ..."):
        prices = _prices(manifest)
    present = sorted(prices["asset"].unique())
    assets = st.multiselect(
        "Assets", present, default=[a for a in ("WETH", "stETH", "WBTC", "LINK") if a in present], key="devnet_assets"
    )
    chart = (
        alt.Chart(prices.filter(pl.col("asset").is_in(assets)))
        .mark_line()
        .encode(
            x=alt.X("time:T", title="time (UTC)"),
            y=alt.Y("change %:Q", title="change since window start (%)"),
            color=series_colour("asset:N", len(assets)),
            tooltip=[
                "asset",
                alt.Tooltip("time:T", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("price USD:Q", format="$,.2f"),
                alt.Tooltip("change %:Q", format="+.1f"),
            ],
        )
    )
    st.altair_chart(chart, width="stretch")

    st.subheader("What the wallet population did (transactions by kind)")
    long = actions_frame(manifest).unpivot(index="action", variable_name="outcome", value_name="transactions")
    st.altair_chart(
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("action:N", sort="-x", title=None, axis=alt.Axis(labelLimit=0)),
            x=alt.X("transactions:Q", title="transactions (count)"),
            color="outcome:N",
        ),
        width="stretch",
    )

    # One above the other: side by side, neither fitted half the page.
    st.subheader("Aave V3 reserves")
    table(
        reserves_frame(manifest),
        hide_index=True,
        column_config={"token": st.column_config.TextColumn("token", width="medium")},
    )
    st.subheader("Morpho Blue markets")
    table(morpho_markets_frame(manifest), hide_index=True)
    st.subheader("Contracts (real bytecode or stand-in)")
    table(contracts_frame(manifest), hide_index=True)
