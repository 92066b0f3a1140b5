"""DuckDB's metadata blocks across the checkpoints of a run (README "Storage and history", the first rewrite).

On a copy of a database after its first `chainrisk run` (`--db`), the raw snapshot tables (every `raw_*` table of the
main schema but the events) are rewritten as a run rewrites them (delete every row, insert the same rows), in
`--groups` groups, each group checkpointed: once with a connection of its own per group (as a run's jobs each open a
Store) and once with one connection checkpointing after each group. After each checkpoint: the file's used and free
blocks and its metadata blocks (`pragma_metadata_info`) with their free pages. Nothing is written to the database
given; figures go to standard output.

    python benchmarks/metadata_blocks.py --db PATH [--groups 6]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb


def _figures(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    used, free = con.execute("SELECT used_blocks, free_blocks FROM pragma_database_size()").fetchall()[0]
    blocks, pages = con.execute(
        "SELECT count(DISTINCT block_id), sum(free_blocks) FROM pragma_metadata_info()"
    ).fetchall()[0]
    return {
        "used_blocks": int(used),
        "free_blocks": int(free),
        "metadata_blocks": int(blocks),
        "free_pages": int(pages),
    }


def _rewrite(con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    for table in tables:
        con.execute(f"CREATE TEMP TABLE rewritten AS SELECT * FROM {table}")
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} SELECT * FROM rewritten")
        con.execute("DROP TABLE rewritten")


def replay(source: Path, groups: int, one_connection: bool) -> list[dict[str, int]]:
    """The figures at the start and after each group's checkpoint, on a copy of `source`."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "copy.duckdb"
        shutil.copyfile(source, path)
        with duckdb.connect(str(path)) as con:
            tables = [
                str(r[0])
                for r in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND table_name LIKE 'raw_%' "
                    "AND table_name NOT LIKE '%_events' ORDER BY 1"
                ).fetchall()
            ]
            figures = [_figures(con)]
        parts = [tables[i::groups] for i in range(groups)]
        if one_connection:
            with duckdb.connect(str(path)) as con:
                for part in parts:
                    _rewrite(con, part)
                    con.execute("CHECKPOINT")
                    figures.append(_figures(con))
        else:
            for part in parts:
                with duckdb.connect(str(path)) as con:
                    _rewrite(con, part)
                with duckdb.connect(str(path), read_only=True) as con:
                    figures.append(_figures(con))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a database after its first run (only read)")
    parser.add_argument("--groups", type=int, default=6)
    args = parser.parse_args()
    result: dict[str, Any] = {
        "connection_per_group": replay(args.db, args.groups, one_connection=False),
        "one_connection": replay(args.db, args.groups, one_connection=True),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
