"""`chainrisk export`: every table of the published copy as Hive-partitioned Parquet, for Spark/Trino/DuckDB users.

Reads the published copy (never the file a job may be writing). Partitions by chain_id and protocol where a table
has them, so engines prune by chain and protocol. Parquet has no 128-bit integers (DuckDB would write HUGEINT as
DOUBLE and round wei): exact amounts are written as DECIMAL(38,0), which chainrisk's values always fit.
The export lands in a temporary folder beside `out` and is renamed into place, so a crash leaves no half export.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from chainrisk.errors import UserError
from chainrisk.store.published import connect_reader

PARTITION_COLUMNS = ("chain_id", "protocol")


@dataclass(frozen=True)
class ExportReport:
    tables: dict[str, int]  #: table -> rows written
    files: int  #: Parquet files written
    out: Path
    seconds: float


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def export_parquet(db: Path, out: Path, *, overwrite: bool = False) -> ExportReport:
    started = time.perf_counter()
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; give a folder for the export")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out} exists and is not empty; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.export-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    rows: dict[str, int] = {}
    try:
        with connect_reader(db) as con:
            tables = [
                r[0]
                for r in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                    "AND schema_name = 'main' ORDER BY table_name"
                ).fetchall()
            ]
            for table in tables:
                columns = con.execute(
                    "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
                    "AND schema_name = 'main' AND table_name = ? ORDER BY column_index",
                    [table],
                ).fetchall()
                select = ", ".join(
                    f"{_quote(c)}::DECIMAL(38,0) AS {_quote(c)}" if t == "HUGEINT" else _quote(c) for c, t in columns
                )
                count = int(con.execute(f"SELECT count(*) FROM {_quote(table)}").fetchall()[0][0])
                rows[table] = count
                if count == 0:
                    continue
                names = {c for c, _ in columns}
                partition = [c for c in PARTITION_COLUMNS if c in names]
                options = "FORMAT parquet, COMPRESSION zstd"
                if partition:
                    options += f", PARTITION_BY ({', '.join(partition)})"
                target = staging / table if partition else staging / f"{table}.parquet"
                literal = "'" + str(target).replace("'", "''") + "'"
                con.execute(f"COPY (SELECT {select} FROM {_quote(table)}) TO {literal} ({options})").fetchall()
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = sum(1 for _ in out.rglob("*.parquet"))
    return ExportReport(rows, files, out, round(time.perf_counter() - started, 3))
