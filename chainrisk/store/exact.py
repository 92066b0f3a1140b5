"""Polars frames read by DuckDB with their exact integers: Arrow has no 128-bit integer type, so each Int128 column
(and each DECIMAL of scale 0, as the adapters hand exact amounts over) travels as two 64-bit halves, the high one
signed and the low one unsigned, and is put together again in SQL as a HUGEINT.

Why not DECIMAL(38,0), as before: DuckDB reads Arrow's decimal128 several times slower than two 64-bit integers
(400,000 positions of three exact columns inserted in 0.16-0.25 s against 0.08 s, the halves made by polars in
0.02 s), and a steady run at the goal size inserts millions of such rows. The halves also carry every Int128, where
DECIMAL(38,0) stopped at 38 digits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import polars as pl

from chainrisk.store.parquet import quote

_HALF = 2**64


def _whole(dtype: pl.DataType) -> bool:
    """Whether a column of `dtype` holds exact integers wider than 64 bits: Int128, or a DECIMAL of scale 0."""
    return dtype == pl.Int128 or (isinstance(dtype, pl.Decimal) and dtype.scale == 0)


def halves(frame: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """`frame` with each wide integer column split into its halves, and the SELECT list that gives back `frame`'s
    columns, in its order, from the split one (each wide column a HUGEINT)."""
    wide = [name for name, dtype in frame.schema.items() if _whole(dtype)]
    if not wide:
        return frame, "*"
    exprs: list[pl.Expr] = []
    for i, name in enumerate(wide):
        whole = pl.col(name).cast(pl.Int128)
        exprs.append((whole // pl.lit(_HALF, pl.Int128)).cast(pl.Int64).alias(f"_hi{i}"))
        exprs.append((whole % pl.lit(_HALF, pl.Int128)).cast(pl.UInt64).alias(f"_lo{i}"))
    split = frame.with_columns(exprs).drop(wide)
    index = {name: i for i, name in enumerate(wide)}
    select = ", ".join(
        f"CAST(_hi{index[name]} AS HUGEINT) * {_HALF} + CAST(_lo{index[name]} AS HUGEINT) AS {quote(name)}"
        if name in index
        else quote(name)
        for name in frame.columns
    )
    return split, select


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[None]:
    """`frame` readable as the relation `name` on `con` while the block runs, its wide integers as HUGEINT: a
    temporary view over the split frame (registered as `name`_halves)."""
    split, select = halves(frame)
    if select == "*":
        con.register(name, frame)
        try:
            yield
        finally:
            con.unregister(name)
        return
    hidden = f"{name}_halves"
    con.register(hidden, split)
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS SELECT {select} FROM {quote(hidden)}")
        try:
            yield
        finally:
            con.execute(f"DROP VIEW IF EXISTS {quote(name)}")
    finally:
        con.unregister(hidden)
