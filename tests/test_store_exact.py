"""Exact integers from polars into DuckDB (chainrisk.store.exact): every Int128 and whole-number DECIMAL arrives as the
same HUGEINT, across the 64-bit seam, signed, NULL and at the ends of the range; other columns as they were."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from chainrisk.store.exact import halves, registered

EDGES = [0, 1, -1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, -(2**64), 2**64 + 1, None]
WIDE = [10**38 - 1, -(10**38 - 1), 2**127 - 1, -(2**127) + 1, -(2**127) + 2**64, 123456789012345678901234567890]


def test_wide_integers_arrive_as_the_same_hugeint() -> None:
    values = EDGES + WIDE
    frame = pl.DataFrame(
        {
            "amount": pl.Series(values, dtype=pl.Int128),
            "label": [f"row {i}" for i in range(len(values))],
            "whole": pl.Series([v if v is None or abs(v) < 10**38 else None for v in values], dtype=pl.Int128).cast(
                pl.Decimal(38, 0)
            ),
            "price": pl.Series([1.5] * len(values)),
            "fraction": pl.Series(["1.25"] * len(values)).cast(pl.Decimal(10, 2)),
        }
    )
    con = duckdb.connect()
    con.execute("CREATE TABLE t (label VARCHAR, amount HUGEINT, whole HUGEINT, price DOUBLE, fraction DECIMAL(10,2))")
    with registered(con, "incoming", frame):
        types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE incoming)").fetchall())
        con.execute("INSERT INTO t BY NAME SELECT * FROM incoming")
    assert types == {
        "amount": "HUGEINT",
        "label": "VARCHAR",
        "whole": "HUGEINT",
        "price": "DOUBLE",
        "fraction": "DECIMAL(10,2)",
    }
    rows = con.execute("SELECT label, amount::VARCHAR, whole::VARCHAR, price, fraction::VARCHAR FROM t").fetchall()
    got = {label: (amount, whole, price, fraction) for label, amount, whole, price, fraction in rows}
    for i, value in enumerate(values):
        text = None if value is None else str(value)
        assert got[f"row {i}"] == (text, text if value is None or abs(value) < 10**38 else None, 1.5, "1.25")
    # The view and the halves are gone after the block.
    assert not con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'incoming'").fetchall()[0][0]
    with pytest.raises(duckdb.CatalogException):
        con.execute("SELECT * FROM incoming_halves")


def test_a_frame_without_wide_integers_is_registered_as_it_is() -> None:
    frame = pl.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert halves(frame) == (frame, "*")
    con = duckdb.connect()
    with registered(con, "incoming", frame):
        assert con.execute("SELECT * FROM incoming ORDER BY a").fetchall() == [(1, "x"), (2, "y")]
    with pytest.raises(duckdb.CatalogException):
        con.execute("SELECT * FROM incoming")
