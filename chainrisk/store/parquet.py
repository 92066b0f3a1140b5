"""Writing DuckDB rows to Parquet exactly, shared by the publisher (chainrisk.store.published) and the health
history's cold days (chainrisk.store.history): Parquet has no 128-bit integer, and DuckDB's writer turns a HUGEINT into
a DOUBLE (1234567890123456789 comes back as 1234567890123456768), so wide integers are written as DECIMAL(38,0), or as
text when a value has more digits; readers cast them back to the table's type."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import duckdb

#: COPY options of every Parquet file chainrisk writes (published tables, cold days, exports). zstd at level 1, not
#: DuckDB's default level: on the goal-size book's nine tables a steady run rewrites (3.3M rows), 1.57 s against
#: 2.04 s to write and 0.16 s against 0.21 s to read back, and 107.7 against 113.9 MB (the health buckets the same
#: size within 0.1 %); medians of five writes each, turn about, Dec 2026.
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"
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
    ordered by `order` if given, to `target` as Parquet (PARQUET_OPTIONS) with wide integers exact; the file appears
    under its name only once whole. Returns the rows written."""
    partial = target.with_name(target.name + ".partial")
    ordered = f" ORDER BY {order}" if order else ""
    for wide_as in ("DECIMAL(38,0)", "VARCHAR"):
        select = ", ".join(
            f"CAST({quote(c)} AS {wide_as}) AS {quote(c)}" if t in WIDE_INTEGERS else quote(c) for c, t in columns
        )
        try:
            rows = con.execute(
                f"COPY (SELECT {select} FROM {source}{ordered}) TO {literal(partial)} ({PARQUET_OPTIONS})"
            ).fetchall()
        except duckdb.ConversionException:
            partial.unlink(missing_ok=True)  # a value beyond 38 digits: write the wide integers as text
            continue
        os.replace(partial, target)
        return int(rows[0][0]) if rows else 0
    raise AssertionError("unreachable: VARCHAR holds every integer")
