"""`chainrisk export`: the history and latest tables as a Hive-partitioned Parquet lake that Spark, Trino and DuckDB
read, written incrementally (reads EXPORT_TABLES of the published snapshot; writes Parquet files and the manifest).

Each export adds only the rows new since the last one, in new files; files already exported are never rewritten.
"New" is by block: the manifest keeps, per table and per (chain_id, protocol, market) the table has, the highest
block_number exported (the watermark), and the next export takes the rows above it. So a latest-only table (rebuilt
whole by every run) accumulates its snapshots in the lake, one set per export. Rows a later job writes for a block
at or below a watermark (a backfill of older blocks, a rescore of the same block) are not exported again: export
with `--overwrite` after such a backfill to rebuild the lake from the database.

Parquet has no 128-bit integers (DuckDB would write HUGEINT as DOUBLE and round wei): exact amounts are written as
DECIMAL(38,0), which chainrisk's values always fit. Files are partitioned by chain_id and protocol where a table has
them, so engines prune by chain and protocol. An export is staged beside the folder: the first is renamed into place
whole, later ones are moved in file by file and the manifest written last; files a crashed export left that the
manifest does not list are removed by the next export before it writes, so a row is never exported twice.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from chainrisk.errors import UserError
from chainrisk.store.parquet import PARQUET_OPTIONS
from chainrisk.store.published import connect_reader

#: The tables exported, in order; a table of the list that the database does not have (yet, or any more) is skipped,
#: so schema changes elsewhere only need this list kept current. Each needs its watermark column (block_number,
#: or the one WATERMARK_COLUMNS names).
#: Inputs of the marts (markets and scored_markets name and time the markets; wallet_risk is the scored health),
#: the exact positions and health the protocols report, the rest of the score, and the credit health samples.
EXPORT_TABLES: tuple[str, ...] = (
    "markets",
    "scored_markets",
    "positions",
    "wallet_health",
    "wallet_risk",
    "position_risk",
    "liquidation_curve",
    "wallet_portfolio",
    "wallet_health_history",
    "data_quality",
)
PARTITION_COLUMNS = ("chain_id", "protocol")
#: A table's watermark is kept per value of these columns (those the table has).
WATERMARK_GROUP = ("chain_id", "protocol", "market")
WATERMARK_COLUMN = "block_number"
#: Tables whose rows are revised in place, marked by another block column: a health bucket's last sampled block
#: moves as samples join it, so each export adds the buckets' new versions (readers keep the highest last_block
#: per bucket).
WATERMARK_COLUMNS = {"wallet_health_history": "last_block"}


def watermark_column(table: str) -> str:
    """The block column a table's watermark follows."""
    return WATERMARK_COLUMNS.get(table, WATERMARK_COLUMN)


MANIFEST = "chainrisk-export.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExportReport:
    tables: dict[str, int]  #: table -> rows added by this export
    files: int  #: Parquet files this export added
    out: Path
    seconds: float
    sequence: int  #: this export's number in the folder (1 for the first)
    skipped: tuple[str, ...]  #: EXPORT_TABLES the database does not have


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The export folder's manifest, or None for a folder no export has written."""
    path = out / MANIFEST
    if not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def _start(out: Path, overwrite: bool) -> dict[str, Any]:
    """The manifest to extend: the folder's own, or a new one for an empty, new or overwritten folder."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; give a folder for the export")
    manifest = None if overwrite else read_manifest(out)
    if manifest is None and out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(
            f"{out} is not empty and holds no chainrisk export; give an empty folder or an earlier export's, "
            "or pass --overwrite to replace it"
        )
    if manifest is not None and manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{out} holds an export of another format version; pass --overwrite to rebuild it")
    return manifest or {"format_version": FORMAT_VERSION, "tables": {}, "exports": []}


def _remove_orphans(out: Path, manifest: dict[str, Any]) -> None:
    """Deletes Parquet files a crashed export moved in but never recorded (their rows are above the watermark)."""
    listed = {f for export in manifest["exports"] for files in export["files"].values() for f in files}
    for path in out.rglob("*.parquet"):
        if path.relative_to(out).as_posix() not in listed:
            path.unlink()


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [
        (str(c), str(t))
        for c, t in con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = ? ORDER BY column_index",
            [table],
        ).fetchall()
    ]


def _new_rows_sql(table: str, columns: list[tuple[str, str]], group: list[str], watermarked: bool, mark: str) -> str:
    """The table's rows above its watermark (`_watermark`, registered by the caller), HUGEINT as DECIMAL(38,0)."""
    select = ", ".join(
        f"t.{_quote(c)}::DECIMAL(38,0) AS {_quote(c)}" if t == "HUGEINT" else f"t.{_quote(c)}" for c, t in columns
    )
    if not watermarked:
        return f"SELECT {select} FROM {_quote(table)} AS t"
    on = " AND ".join(f"t.{_quote(c)} = w.{_quote(c)}" for c in group) or "true"
    return (
        f"SELECT {select} FROM {_quote(table)} AS t LEFT JOIN _watermark AS w ON {on} "
        f"WHERE w.{mark} IS NULL OR t.{mark} > w.{mark}"
    )


def _export_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[tuple[str, str]],
    entry: dict[str, Any],
    staging: Path,
    sequence: int,
) -> tuple[int, list[dict[str, Any]]]:
    """Writes the table's new rows under `staging/table`; returns (rows, the table's watermark rows after)."""
    names = [c for c, _ in columns]
    mark = watermark_column(table)
    group = [c for c in WATERMARK_GROUP if c in names]
    previous = entry.get("watermark", [])
    if previous:
        types = {c: pl.Int64 if c == "chain_id" else pl.Utf8 for c in group} | {mark: pl.Int64}
        con.register("_watermark", pl.DataFrame(previous, schema=types))
    try:
        new_rows = _new_rows_sql(table, columns, group, bool(previous), mark)
        keys = ", ".join(_quote(c) for c in group)
        found = pl.from_arrow(
            con.sql(
                f"SELECT {keys + ', ' if keys else ''}max({mark}) AS {mark}, count(*) AS n "
                f"FROM ({new_rows}) {'GROUP BY ' + keys if keys else ''}"
            ).to_arrow_table()
        )
        assert isinstance(found, pl.DataFrame)
        maxima = found.filter(pl.col("n") > 0)
        rows = int(maxima["n"].sum())
        if rows:
            partition = [c for c in PARTITION_COLUMNS if c in names]
            options = PARQUET_OPTIONS
            target = staging / table
            if partition:
                options += f", PARTITION_BY ({', '.join(partition)}), FILENAME_PATTERN 'export-{sequence:06d}-{{i}}'"
            else:
                target.mkdir(parents=True)
                target = target / f"export-{sequence:06d}-0.parquet"
            # Rows in block order: engines skip row groups by block_number's min/max statistics.
            con.execute(
                f"COPY (SELECT * FROM ({new_rows}) ORDER BY {mark}) TO {_literal(target)} ({options})"
            ).fetchall()
    finally:
        if previous:
            con.unregister("_watermark")
    merged = {tuple(r[c] for c in group): r[mark] for r in previous}
    for row in maxima.drop("n").iter_rows(named=True):
        merged[tuple(row[c] for c in group)] = row[mark]
    return rows, [{**dict(zip(group, key, strict=True)), mark: block} for key, block in sorted(merged.items())]


def export_parquet(db: Path, out: Path, *, overwrite: bool = False) -> ExportReport:
    """Adds to the lake at `out` the rows of EXPORT_TABLES new since its last export (all of them the first time,
    or with `overwrite`, which rebuilds the folder)."""
    started = time.perf_counter()
    manifest = _start(out, overwrite)
    if not overwrite and out.is_dir() and any(out.iterdir()):
        _remove_orphans(out, manifest)
    sequence = len(manifest["exports"]) + 1
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.export-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    rows: dict[str, int] = {}
    skipped: list[str] = []
    tables: dict[str, Any] = dict(manifest["tables"])
    try:
        with connect_reader(db) as con:
            for table in EXPORT_TABLES:
                columns = _table_columns(con, table)
                if watermark_column(table) not in {c for c, _ in columns}:
                    skipped.append(table)
                    continue
                entry = tables.get(table, {})
                rows[table], watermark = _export_table(con, table, columns, entry, staging, sequence)
                partition = [c for c in PARTITION_COLUMNS if c in dict(columns)]
                tables[table] = {"columns": dict(columns), "partition_by": partition, "watermark": watermark}
        written = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*.parquet"))
        files: dict[str, list[str]] = {}
        for name in written:
            files.setdefault(name.split("/", 1)[0], []).append(name)
        export = {
            "sequence": sequence,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": rows,
            "files": files,
        }
        manifest = {**manifest, "tables": tables, "exports": [*manifest["exports"], export]}
        text = json.dumps(manifest, indent=1) + "\n"
        if overwrite or not out.exists():
            # A whole new lake: the staged folder, manifest included, renamed into place in one step.
            (staging / MANIFEST).write_text(text)
            if out.exists():
                shutil.rmtree(out)
            os.replace(staging, out)
        else:
            for name in written:
                target = out / name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / name, target)
            temporary = out / f".{MANIFEST}.tmp"
            temporary.write_text(text)
            os.replace(temporary, out / MANIFEST)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportReport(rows, len(written), out, round(time.perf_counter() - started, 3), sequence, tuple(skipped))
