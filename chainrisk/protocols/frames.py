"""Frame helpers every protocol's normaliser shares: exact integers on their way to DuckDB, and raw-table keys."""

from __future__ import annotations

import polars as pl

#: Exact integers are built as Int128 (polars takes mixed Python ints there) and cast to DECIMAL(38,0),
#: the type that carries them into DuckDB's HUGEINT.
EXACT = pl.Int128
#: health_factor_wad saturates here (HF above 1e20: debt is dust next to the collateral); HUGEINT's reach.
HEALTH_WAD_CAP = 10**38 - 1


def exact(frame: pl.DataFrame) -> pl.DataFrame:
    """Int128 columns as DECIMAL(38,0), which DuckDB stores as HUGEINT."""
    return frame.with_columns(pl.col(pl.Int128).cast(pl.Decimal(38, 0)))


def keyed(frame: pl.DataFrame, chain_id: int, source: str, block: int) -> pl.DataFrame:
    """A raw snapshot table's rows: exact, with chain_id, the indexed contract (`market`) and block_number."""
    return exact(frame).with_columns(
        pl.lit(chain_id, pl.Int64).alias("chain_id"),
        pl.lit(source).alias("market"),
        pl.lit(block, pl.Int64).alias("block_number"),
    )


#: The shared `positions` rows every adapter's snapshot gives (README "The SQL contract"), before chain_id and
#: block_number.
POSITION_SCHEMA: dict[str, pl.DataType] = {
    "market": pl.Utf8(),
    "wallet": pl.Utf8(),
    "asset": pl.Utf8(),
    "symbol": pl.Utf8(),
    "decimals": pl.Int32(),
    "supplied_amount": EXACT(),
    "collateral_amount": EXACT(),
    "debt_amount": EXACT(),
    "used_as_collateral": pl.Boolean(),
    "is_borrowing": pl.Boolean(),
    "price": EXACT(),
    "price_scale": EXACT(),
    "price_usd": pl.Float64(),
    "base_currency_usd": pl.Float64(),
    "collateral_base": EXACT(),
    "debt_base": EXACT(),
    "supplied_usd": pl.Float64(),
    "collateral_usd": pl.Float64(),
    "debt_usd": pl.Float64(),
    "ltv_bps": pl.Int32(),
    "liquidation_threshold_bps": pl.Int32(),
    "liquidation_threshold_wad": EXACT(),
    "liquidation_bonus_bps": pl.Int32(),
    "liquidation_bonus_wad": EXACT(),
    "liquidation_recovery_wad": EXACT(),
}
#: The shared `wallet_health` rows every adapter's snapshot gives, before chain_id and block_number.
HEALTH_SCHEMA: dict[str, pl.DataType] = {
    "market": pl.Utf8(),
    "wallet": pl.Utf8(),
    "collateral_usd": pl.Float64(),
    "debt_usd": pl.Float64(),
    "health_factor": pl.Float64(),
    "health_factor_wad": EXACT(),
    "total_collateral_base": EXACT(),
    "total_debt_base": EXACT(),
    "available_borrows_base": EXACT(),
    "liquidation_threshold_bps": pl.Int32(),
    "ltv_bps": pl.Int32(),
}


#: The shared `markets` table (README "The SQL contract"): one row per market and snapshot block.
MARKET_SCHEMA: dict[str, pl.DataType] = {
    "market": pl.Utf8(),
    "name": pl.Utf8(),
    "parameters": pl.Utf8(),
    "loan_asset": pl.Utf8(),
    "bad_debt_rule": pl.Utf8(),
    "supply_amount": EXACT(),
    "debt_amount": EXACT(),
    "reserves_amount": EXACT(),
}


def markets_frame(
    rows: list[dict[str, object]], protocol: str, chain_id: int, source: str, block: int, timestamp: int
) -> pl.DataFrame:
    """The `markets` rows of one snapshot: `rows` hold MARKET_SCHEMA's columns (missing ones are NULL)."""
    return exact(pl.DataFrame(rows, schema=MARKET_SCHEMA)).with_columns(
        pl.lit(protocol).alias("protocol"),
        pl.lit(chain_id, pl.Int64).alias("chain_id"),
        pl.lit(source).alias("source"),
        pl.lit(block, pl.Int64).alias("block_number"),
        pl.lit(timestamp, pl.Int64).alias("block_timestamp"),
    )


#: A configured market whose name has this in it runs on a stand-in contract (the devnet's own Solidity for a protocol
#: no registry ships): its `markets` rows say so in their name, so every label on every page does.
STANDIN_MARK = "stand-in"


def standin_names(markets: pl.DataFrame) -> pl.DataFrame:
    """`markets` rows named as stand-ins: "cUSDCv3 (stand-in)", "ETH-A (stand-in)", an unnamed one "stand-in"."""
    name = pl.col("name")
    return markets.with_columns(
        pl.when(name.is_null())
        .then(pl.lit(STANDIN_MARK))
        .when(name.str.contains(STANDIN_MARK, literal=True))
        .then(name)
        .otherwise(pl.concat_str(name, pl.lit(f" ({STANDIN_MARK})")))
        .alias("name")
    )


def default_markets(positions: pl.DataFrame, rule: str, timestamp: int) -> pl.DataFrame:
    """`markets` rows for an adapter that describes none: each market of its positions, unnamed, with the adapter's
    bad-debt rule."""
    keys = positions.select("protocol", "chain_id", "market", "source", "block_number").unique().sort("market")
    rows = [{"market": m, "bad_debt_rule": rule} for m in keys["market"].to_list()]
    described = exact(pl.DataFrame(rows, schema=MARKET_SCHEMA))
    return described.join(keys, on="market", how="left").with_columns(
        pl.lit(timestamp, pl.Int64).alias("block_timestamp")
    )
