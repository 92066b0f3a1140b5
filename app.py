"""chainrisk dashboard (Streamlit): pages grow with each risk feature; today the devnet overview."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard import devnet as devnet_data
from chainrisk.errors import UserError

st.set_page_config(page_title="chainrisk", layout="wide")


@st.cache_data(ttl=30)
def _manifest(path: str, modified_ns: int) -> dict[str, Any]:
    """Cached per file and version: a rebuilt devnet shows at once."""
    return devnet_data.load_manifest(Path(path))


@st.cache_data(ttl=600)
def _prices(manifest: dict[str, Any]) -> pl.DataFrame:
    return devnet_data.replayed_prices(manifest)


def render() -> None:
    st.title("chainrisk")
    st.caption("Exact, cross-protocol risk for on-chain lending. Devnet: real Aave V3 and Morpho Blue bytecode.")
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
