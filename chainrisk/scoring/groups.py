"""Correlated price groups: assets that move together under a shock (ETH and its LSTs; USD stablecoins)."""

from __future__ import annotations

import polars as pl

#: Symbol -> group. Wrapped and staked ETH follow ETH; wrapped BTC follows BTC; USD stablecoins together.
ETH_LIKE = ("WETH", "ETH", "wstETH", "stETH", "rETH", "cbETH", "weETH", "osETH", "ETHx", "sfrxETH")
BTC_LIKE = ("WBTC", "cbBTC", "tBTC", "LBTC")
USD_STABLES = ("USDC", "USDT", "DAI", "USDS", "sDAI", "LUSD", "GHO", "FRAX", "PYUSD", "USDe", "sUSDe", "crvUSD")
DEFAULT_GROUPS: dict[str, str] = (
    {s: "ETH" for s in ETH_LIKE} | {s: "BTC" for s in BTC_LIKE} | {s: "USD" for s in USD_STABLES}
)
STABLE_GROUP = "USD"


def group_expr(symbol: pl.Expr, groups: dict[str, str] | None = None) -> pl.Expr:
    """The correlated group of each asset; an asset outside every group is a group of its own."""
    mapping = DEFAULT_GROUPS if groups is None else groups
    return symbol.replace_strict(mapping, default=symbol, return_dtype=pl.Utf8)
