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
