"""Writing DuckDB rows to Parquet exactly, shared by the publisher (chainrisk.store.published) and the health
history's cold days (chainrisk.store.history): Parquet has no 128-bit integer, and DuckDB's writer turns a HUGEINT into
a DOUBLE (1234567890123456789 comes back as 1234567890123456768), so wide integers are written as DECIMAL(38,0), or as
text when a value has more digits; readers cast them back to the table's type."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import duckdb

#: Types Parquet cannot hold exactly.
WIDE_INTEGERS = frozenset({"HUGEINT", "UHUGEINT"})


def quote(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str | Path) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def write_exact(
    con: duckdb.DuckDBPyConnection, columns: Sequence[tuple[str, str]], source: str, target: Path, order: str = ""
) -> int:
    """Writes `columns` ((name, DuckDB type) pairs) of `source` (a FROM clause: a table, a subquery, with its WHERE),
    ordered by `order` if given, to `target` as zstd Parquet with wide integers exact; the file appears under its name
    only once whole. Returns the rows written."""
    partial = target.with_name(target.name + ".partial")
    ordered = f" ORDER BY {order}" if order else ""
    for wide_as in ("DECIMAL(38,0)", "VARCHAR"):
        select = ", ".join(
            f"CAST({quote(c)} AS {wide_as}) AS {quote(c)}" if t in WIDE_INTEGERS else quote(c) for c, t in columns
        )
        try:
            rows = con.execute(
                f"COPY (SELECT {select} FROM {source}{ordered}) TO {literal(partial)} "
                "(FORMAT parquet, COMPRESSION zstd)"
            ).fetchall()
        except duckdb.ConversionException:
            partial.unlink(missing_ok=True)  # a value beyond 38 digits: write the wide integers as text
            continue
        os.replace(partial, target)
        return int(rows[0][0]) if rows else 0
    raise AssertionError("unreachable: VARCHAR holds every integer")
