"""Analysts' SQL console: one SELECT (or EXPLAIN SELECT) on the published snapshot, sandboxed, as a polars frame.

Defence in depth, each layer enough on its own for the common attacks:

1. The text is parsed and must be exactly one SELECT (or EXPLAIN [ANALYZE] of one); its table functions must be
   on an allowlist (generators and catalog views), so file and network readers, dynamic SQL (`query()`),
   checkpoint and logging switches are refused before DuckDB runs anything, and file paths as table names too.
2. It runs in a private in-memory DuckDB instance that attaches the published snapshot's catalog READ_ONLY (views
   over the snapshot's Parquet files, chainrisk.store.published), detaches its own writable catalog, turns external
   access off (no files, no network, no extension installs or loads) except reading exactly the Parquet files that
   snapshot's manifest names (`allowed_paths`: what its views read), limits memory and threads, disables spilling
   to disk, and locks its configuration so no SET can undo any of it.
3. A timer interrupts the query after `timeout_s`; at most `max_rows` rows come back and truncation is flagged.

The instance is private (not `duckdb.connect(path, config=...)`) because DuckDB caches one instance per file in
a process and refuses a second connection with another configuration: the dashboard's reader of the same copy
would break the console, or the console's locked settings would leak into the dashboard.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import duckdb.sqltypes
import polars as pl

from chainrisk.errors import UserError
from chainrisk.store.published import open_published, published_files

#: Longest SQL text accepted; analysts' queries are far shorter, and parsing megabytes only costs the server.
MAX_SQL_CHARS = 100_000
#: Catalog name the published snapshot is attached under (what `duckdb_databases()` and DESCRIBE show).
CATALOG = "published"

#: Table functions a console query may call: row generators and read-only views of the catalog and settings.
#: Everything else is refused: file and network readers (read_*, glob, parquet_*, sniff_csv), dynamic SQL
#: hidden in strings (query, query_table, json_execute_serialized_sql), state switches (checkpoint,
#: enable_logging, enable_profiling, truncate_duckdb_logs), scans of Python objects by pointer (arrow_scan,
#: pandas_scan) and whatever a future DuckDB adds.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "repeat",
        "repeat_row",
        "json_each",
        "json_tree",
        "histogram",
        "histogram_values",
        "duckdb_columns",
        "duckdb_constraints",
        "duckdb_databases",
        "duckdb_dependencies",
        "duckdb_functions",
        "duckdb_indexes",
        "duckdb_keywords",
        "duckdb_schemas",
        "duckdb_settings",
        "duckdb_tables",
        "duckdb_types",
        "duckdb_views",
        "pragma_table_info",
        "pragma_show",
        "pragma_version",
        "pragma_database_size",
    }
)
#: Scalar functions refused wherever they appear: write_log writes to DuckDB's log; getenv would read the
#: process environment (a secret RPC URL). The DuckDB CLI defines getenv, the Python package does not; it is
#: refused by name in case an extension or a later version brings it.
REFUSED_FUNCTIONS = frozenset({"write_log", "getenv"})

#: DuckDB types whose Arrow form polars would get wrong, returned as VARCHAR instead: UHUGEINT wraps to a
#: negative DECIMAL(38,0) above 2^127, BIGNUM and BIT arrive as opaque bytes, TIME WITH TIME ZONE loses its
#: offset, INTERVAL and UNION are refused by polars.
TEXT_TYPES = frozenset({"uhugeint", "bignum", "bit", "time with time zone", "interval", "union"})

#: Run on the console's instance once the copy is attached, in this order.
_LOCK_DOWN = (
    f"USE {CATALOG}",
    # The in-memory catalog is the only writable one besides temp; without it CREATE has nowhere to go.
    "DETACH memory",
    # Set after ATTACH, which needs file access; it cannot be turned back on while the instance runs.
    "SET enable_external_access = false",
    # Only settable per connection: a long query would otherwise draw a progress bar on the server's stdout.
    "SET enable_progress_bar = false",
    "SET lock_configuration = true",
)
_EXPLAIN_PREFIX = re.compile(r"EXPLAIN\s+(?:ANALYZE\s+)?", re.IGNORECASE)
_FILE_LIKE_NAME = re.compile(r"[/\\.:]")


@dataclass(frozen=True)
class ConsoleLimits:
    max_rows: int = 10_000  #: rows returned at most; more are cut off and the result flagged truncated
    timeout_s: float = 10.0  #: the query is interrupted after this many seconds
    memory_limit: str = "1GB"  #: DuckDB memory_limit of the console's instance (nothing spills to disk)
    threads: int = 2  #: DuckDB threads of the console's instance

    def __post_init__(self) -> None:
        if self.max_rows < 1:
            raise UserError(f"console max_rows must be at least 1, not {self.max_rows}")
        if not self.timeout_s > 0:
            raise UserError(f"console timeout must be positive, not {self.timeout_s} s")
        if self.threads < 1:
            raise UserError(f"console threads must be at least 1, not {self.threads}")


@dataclass(frozen=True)
class ConsoleResult:
    #: The rows; HUGEINT columns are exact DECIMAL(38, 0), the types in TEXT_TYPES are VARCHAR.
    frame: pl.DataFrame
    truncated: bool  #: the query returned more than max_rows rows; `frame` holds the first max_rows
    seconds: float  #: wall time from connecting to the last row


def console_connection(db: Path, limits: ConsoleLimits) -> duckdb.DuckDBPyConnection:
    """A private, locked-down DuckDB instance with the published snapshot of `db` attached read-only as the default
    catalog (asked again, like every reader, when the copy is pruned while attaching it)."""
    return open_published(db, lambda path: _locked_down(path, limits))


def _locked_down(path: Path, limits: ConsoleLimits) -> duckdb.DuckDBPyConnection:
    try:
        con = duckdb.connect(
            ":memory:",
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "allow_community_extensions": False,
                "memory_limit": limits.memory_limit,
                "threads": limits.threads,
                # No spill files: a query that outgrows memory_limit fails instead of writing to disk.
                "temp_directory": "",
                # Off already when external access is off; set so that no later default can turn it on.
                "python_enable_replacements": False,
            },
        )
    except duckdb.Error as exc:
        raise UserError(f"bad console limits: {_first_line(exc)}") from None
    try:
        files = published_files(path)
        con.execute(f"ATTACH ? AS {CATALOG} (READ_ONLY)", [str(path)])
        # Only these files, and only reads: the views over them work, any other path is refused like before.
        allowed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        con.execute(f"SET allowed_paths = [{allowed}]")
    except duckdb.IOException:
        con.close()
        raise
    except duckdb.Error as exc:
        con.close()
        raise UserError(f"cannot read {path}: {_first_line(exc)}") from None
    try:
        for statement in _LOCK_DOWN:
            con.execute(statement)
    except BaseException:
        con.close()
        raise
    return con


def run_console_query(db: Path, sql: str, limits: ConsoleLimits = ConsoleLimits()) -> ConsoleResult:
    """Runs one read-only query against the published snapshot of `db`; every failure is a one-line UserError
    ("query refused: ..." for what the console does not allow, "query failed: ..." for DuckDB's errors)."""
    query, checked = accepted_statement(sql)
    started = time.monotonic()
    con = console_connection(db, limits)
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        con.interrupt()

    timer = threading.Timer(limits.timeout_s, stop)
    timer.daemon = True
    timer.start()
    try:
        _refuse_forbidden_names(con, checked)
        relation = _with_exact_types(con.sql(query))
        table = relation.limit(limits.max_rows + 1).to_arrow_table()
    except duckdb.InterruptException:
        if timed_out.is_set():
            raise UserError(f"query stopped after {limits.timeout_s:g} s (the console's time limit)") from None
        raise UserError("query failed: interrupted") from None
    except duckdb.Error as exc:
        hint = ""
        if isinstance(exc, duckdb.ConversionException) and "to DECIMAL(38,0)" in str(exc):
            hint = " (an integer beyond 38 digits cannot be returned as an exact number; cast it to VARCHAR)"
        raise UserError(f"query failed: {_first_line(exc)}{hint}") from None
    finally:
        timer.cancel()
        timer.join()
        con.close()
    truncated = table.num_rows > limits.max_rows
    try:
        frame = pl.from_arrow(table)
    except (pl.exceptions.PolarsError, ValueError, TypeError, NotImplementedError) as exc:
        raise UserError(f"query failed: cannot convert the result: {_first_line(exc)}") from None
    assert isinstance(frame, pl.DataFrame)
    if truncated:
        frame = frame.head(limits.max_rows)
    return ConsoleResult(frame=frame, truncated=truncated, seconds=time.monotonic() - started)


def accepted_statement(sql: str) -> tuple[str, str]:
    """The statement text to run and the SELECT inside it to inspect (the same text, or what follows EXPLAIN);
    raises UserError unless `sql` is exactly one SELECT or EXPLAIN [ANALYZE] SELECT."""
    if len(sql) > MAX_SQL_CHARS:
        raise UserError(f"query refused: {len(sql):,} characters of SQL; the console accepts at most {MAX_SQL_CHARS:,}")
    if "\x00" in sql:
        raise UserError("query refused: the SQL contains a NUL character")
    statement = _single_statement(sql)
    kind = _kind(statement)
    if kind == "SELECT":
        return statement.query, statement.query
    if kind == "EXPLAIN":
        prefix = _EXPLAIN_PREFIX.match(statement.query)
        inner = _single_statement(statement.query[prefix.end() :]) if prefix else None
        if inner is None or _kind(inner) != "SELECT":
            raise UserError("query refused: EXPLAIN is accepted only as EXPLAIN [ANALYZE] followed by one SELECT")
        return statement.query, inner.query
    raise UserError(f"query refused: {_described(statement)} statement; the console runs one SELECT and nothing else")


def _single_statement(sql: str) -> duckdb.Statement:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise UserError(f"query failed: {_first_line(exc)}") from None
    if not statements:
        raise UserError("query refused: no SQL statement given")
    if len(statements) > 1:
        kinds = ", ".join(_described(s) for s in statements)
        raise UserError(f"query refused: {len(statements)} statements ({kinds}); the console runs exactly one SELECT")
    return statements[0]


def _kind(statement: duckdb.Statement) -> str:
    try:
        return str(statement.type.name)
    except ValueError:
        # The client's StatementType enum lacks some of DuckDB's types (UPDATE EXTENSIONS is number 29).
        return "UNKNOWN"


def _described(statement: duckdb.Statement) -> str:
    """The statement type, with the keyword that started it where that says more (TRANSACTION (BEGIN))."""
    kind = _kind(statement)
    words = statement.query.split(maxsplit=1)
    keyword = words[0].upper() if words else ""
    return kind if keyword in ("", kind) or not keyword.isalpha() else f"{kind} ({keyword})"


def _refuse_forbidden_names(con: duckdb.DuckDBPyConnection, select: str) -> None:
    """Refuses table functions off the allowlist, refused scalar functions and file paths used as table names,
    anywhere in the statement's syntax tree (CTEs, subqueries, lateral joins, DESCRIBE/SUMMARIZE targets)."""
    rows = con.execute("SELECT json_serialize_sql(?)", [select]).fetchall()
    try:
        tree = json.loads(rows[0][0])
    except RecursionError:
        raise UserError("query refused: the query is nested too deeply to inspect") from None
    if tree.get("error"):
        raise UserError(f"query refused: cannot inspect the query ({tree.get('error_message', 'unknown error')})")
    for node in _nodes(tree):
        if node.get("type") == "TABLE_FUNCTION" and isinstance(node.get("function"), dict):
            name = str(node["function"].get("function_name", "")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise UserError(
                    f"query refused: table function {name}() is not allowed; the console reads only the database's "
                    "tables (plus range/generate_series/unnest and the duckdb_* catalog views)"
                )
        name = str(node.get("function_name", "")).lower()
        if name in REFUSED_FUNCTIONS:
            raise UserError(f"query refused: function {name}() is not allowed in the console")
        if node.get("type") == "BASE_TABLE" and _FILE_LIKE_NAME.search(str(node.get("table_name", ""))):
            raise UserError(
                f"query refused: {node['table_name']!r} looks like a file or URL; the console reads only the "
                "database's tables"
            )


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in the tree, iteratively (deep expressions would exhaust Python's recursion limit)."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _type_ids(duck_type: duckdb.sqltypes.DuckDBPyType) -> Iterator[str]:
    """The type's id and those of every type nested in it (list items, struct fields, map keys and values)."""
    yield str(duck_type.id)
    try:
        children = duck_type.children
    except duckdb.InvalidInputException:  # not a nested type
        return
    for _, child in children:
        if isinstance(child, duckdb.sqltypes.DuckDBPyType):
            yield from _type_ids(child)


def _with_exact_types(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """Casts columns polars would get wrong (by position: names may repeat; DuckDB makes them unique when the
    LIMIT is put on top). HUGEINT becomes
    DECIMAL(38,0), which Arrow and polars carry exactly, and which fails loudly beyond 38 digits, where polars
    would round; nested HUGEINT and the TEXT_TYPES become VARCHAR."""
    casts: list[str] = []
    for position, duck_type in enumerate(relation.types, start=1):
        ids = set(_type_ids(duck_type))
        if duck_type.id == "hugeint":
            casts.append(f"#{position}::DECIMAL(38, 0)")
        elif ids & TEXT_TYPES or "hugeint" in ids:
            casts.append(f"#{position}::VARCHAR")
        else:
            casts.append(f"#{position}")
    if all(cast.startswith("#") and "::" not in cast for cast in casts):
        return relation
    return relation.project(
        *(duckdb.SQLExpression(cast).alias(name) for cast, name in zip(casts, relation.columns, strict=True))
    )


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
