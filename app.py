"""chainrisk dashboard (Streamlit): pages grow with each risk feature; today the devnet overview."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard import devnet as devnet_data
from chainrisk.dashboard import risk as risk_data
from chainrisk.errors import UserError

st.set_page_config(page_title="chainrisk", layout="wide")


@st.cache_data(ttl=30)
def _manifest(path: str, modified_ns: int) -> dict[str, Any]:
    """Cached per file and version: a rebuilt devnet shows at once."""
    return devnet_data.load_manifest(Path(path))


@st.cache_data(ttl=600)
def _prices(manifest: dict[str, Any]) -> pl.DataFrame:
    return devnet_data.replayed_prices(manifest)


@st.cache_data(ttl=30)
def _risk(path: str, modified_ns: int) -> dict[str, pl.DataFrame]:
    location = Path(path)
    wallets = risk_data.latest_wallet_risk(location)
    return {
        "wallets": wallets,
        "buckets": risk_data.health_buckets(wallets),
        "positions": risk_data.at_risk_positions(location, 200),
        "portfolios": risk_data.cross_protocol_wallets(location, 200),
    }


def render_risk() -> None:
    location = risk_data.database_location()
    if not risk_data.has_scores(location):
        st.info(f"No scores in {location} yet: run `chainrisk index` and `chainrisk score`, or `make demo`.")
        return
    data = _risk(str(location), location.stat().st_mtime_ns)
    wallets = data["wallets"]
    cols = st.columns(5)
    protocols = sorted(set(wallets["protocol"].to_list()))
    cols[4].metric("Protocols", f"{len(protocols)}", help=", ".join(protocols))
    cols[0].metric("Borrowing positions", f"{wallets.filter(pl.col('debt_usd') > 0).height:,}")
    cols[1].metric("Debt (USD)", f"${wallets['debt_usd'].sum():,.0f}")
    cols[2].metric("Liquidatable now", f"{int(wallets['liquidatable'].sum()):,}")
    cols[3].metric("Bad debt (USD)", f"${wallets['bad_debt_usd'].sum():,.0f}")
    left, right = st.columns(2)
    with left:
        st.subheader("Wallets by health factor")
        st.altair_chart(
            alt.Chart(data["buckets"].to_pandas())
            .mark_bar()
            .encode(
                x=alt.X("health factor:N", sort=None, title="health factor"),
                y=alt.Y("debt (USD):Q", title="debt (USD)", axis=alt.Axis(format="$,.0f")),
                tooltip=["health factor", "wallets", alt.Tooltip("debt (USD):Q", format="$,.0f")],
            ),
            width="stretch",
        )
    with right:
        st.subheader("Collateral at risk vs price drop")
        axes = risk_data.curve_axes(location)
        axis = st.selectbox("Shock", axes, index=axes.index("all non-stable") if "all non-stable" in axes else 0)
        curve = risk_data.total_curve(location, axis).unpivot(
            index="price drop (%)", variable_name="measure", value_name="USD"
        )
        st.altair_chart(
            alt.Chart(curve.to_pandas())
            .mark_line()
            .encode(
                x=alt.X("price drop (%):Q", title="price drop (%)"),
                y=alt.Y("USD:Q", title="USD", axis=alt.Axis(format="$,.0f")),
                color="measure:N",
                tooltip=["measure", "price drop (%)", alt.Tooltip("USD:Q", format="$,.0f")],
            ),
            width="stretch",
        )
    st.subheader("Positions closest to liquidation")
    st.caption("Liquidation price: the asset's price, all other prices held, at which the wallet's health factor is 1.")
    st.dataframe(
        data["positions"],
        hide_index=True,
        column_config={
            "health factor": st.column_config.NumberColumn(format="%.4f"),
            "collateral (USD)": st.column_config.NumberColumn(format="dollar"),
            "debt (USD)": st.column_config.NumberColumn(format="dollar"),
            "price (USD)": st.column_config.NumberColumn(format="dollar"),
            "liquidation price (USD)": st.column_config.NumberColumn(format="dollar"),
            "move to liquidation (%)": st.column_config.NumberColumn(format="%.1f%%"),
        },
    )
    st.download_button("Download as CSV", data["positions"].write_csv(), "at_risk_positions.csv", "text/csv")
    portfolios = data["portfolios"]
    if not portfolios.is_empty():
        st.subheader("Borrowers across protocols")
        st.caption(
            "One row per wallet over every market it uses (Aave V3 pools, Morpho Blue markets); markets liquidate "
            "separately, so the weakest health factor is shown rather than a blend."
        )
        st.dataframe(
            portfolios,
            hide_index=True,
            column_config={
                "worst health factor": st.column_config.NumberColumn(format="%.4f"),
                "collateral (USD)": st.column_config.NumberColumn(format="dollar"),
                "debt (USD)": st.column_config.NumberColumn(format="dollar"),
                "bad debt (USD)": st.column_config.NumberColumn(format="dollar"),
            },
        )


def render() -> None:
    st.title("chainrisk")
    st.caption("Exact, cross-protocol risk for on-chain lending. Devnet: real Aave V3 and Morpho Blue bytecode.")
    risk_tab, devnet_tab = st.tabs(["Risk", "Devnet"])
    with risk_tab:
        render_risk()
    with devnet_tab:
        render_devnet()


def render_devnet() -> None:
    try:
        location = devnet_data.manifest_location()
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

    st.subheader("Replayed oracle prices: change since the window opened")
    with st.spinner("loading the price history ..."):
        prices = _prices(manifest)
    assets = st.multiselect("Assets", sorted(prices["asset"].unique()), default=["WETH", "wstETH", "WBTC", "LINK"])
    chart = (
        alt.Chart(prices.filter(pl.col("asset").is_in(assets)).to_pandas())
        .mark_line()
        .encode(
            x=alt.X("time:T", title="time (UTC)"),
            y=alt.Y("change %:Q", title="change since window start (%)"),
            color="asset:N",
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
    actions = devnet_data.actions_frame(manifest)
    long = actions.unpivot(index="action", variable_name="outcome", value_name="transactions")
    st.altair_chart(
        alt.Chart(long.to_pandas())
        .mark_bar()
        .encode(
            y=alt.Y("action:N", sort="-x", title=None),
            x=alt.X("transactions:Q", title="transactions (count)"),
            color="outcome:N",
        ),
        width="stretch",
    )

    left, right = st.columns(2)
    with left:
        st.subheader("Aave V3 reserves")
        st.dataframe(devnet_data.reserves_frame(manifest), hide_index=True)
    with right:
        st.subheader("Morpho Blue markets")
        st.dataframe(devnet_data.morpho_markets_frame(manifest), hide_index=True)
    st.subheader("Contracts")
    st.dataframe(devnet_data.contracts_frame(manifest), hide_index=True)


try:
    render()
except Exception as exc:  # the dashboard never shows a traceback
    st.error(f"Something went wrong while drawing this page: {type(exc).__name__}: {exc}")
