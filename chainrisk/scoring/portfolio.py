"""Cross-protocol wallet view: one row per wallet and chain over every market it uses, from wallet_risk."""

from __future__ import annotations

import polars as pl


def wallet_portfolio(wallet_risk: pl.DataFrame) -> pl.DataFrame:
    """Collateral, debt, the worst health factor (and where), and the protocols and markets each wallet uses.

    Health factors of different markets do not combine (each market liquidates on its own), so the
    portfolio reports the weakest one; sums are in USD at each market's own prices.
    """
    with_debt = pl.col("debt_usd") > 0
    return (
        wallet_risk.sort("health_factor", nulls_last=True)
        .group_by("chain_id", "wallet")
        .agg(
            pl.col("protocol").unique().sort().alias("protocols"),
            pl.len().alias("markets"),
            with_debt.sum().cast(pl.Int64).alias("markets_with_debt"),
            pl.col("collateral_usd").sum().alias("collateral_usd"),
            pl.col("debt_usd").sum().alias("debt_usd"),
            pl.col("borrowing_power_usd").sum().alias("borrowing_power_usd"),
            pl.col("health_factor").drop_nulls().first().alias("worst_health_factor"),
            pl.col("protocol").filter(pl.col("health_factor").is_not_null()).first().alias("worst_protocol"),
            pl.col("market").filter(pl.col("health_factor").is_not_null()).first().alias("worst_market"),
            pl.col("liquidatable").sum().cast(pl.Int64).alias("liquidatable_markets"),
            pl.col("liquidatable_debt_usd").sum().alias("liquidatable_debt_usd"),
            pl.col("bad_debt_usd").sum().alias("bad_debt_usd"),
            pl.col("block_number").max().alias("block_number"),
            pl.col("block_timestamp").max().alias("block_timestamp"),
        )
        .with_columns((pl.col("protocols").list.len() > 1).alias("cross_protocol"))
        .sort("chain_id", "wallet")
    )
