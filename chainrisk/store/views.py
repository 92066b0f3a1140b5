"""Analysts' SQL: reads the stg_* and mart_* files, orders them by dependency, installs them as views.

The views come from `queries/` (shared ones over the jobs' tables), from each protocol adapter's own `queries`
folder (stg_<protocol>_* over its raw tables), and seven generated here: `stg_lending_events`, every adapter's events
view stacked in the shared lending-event columns (chainrisk.protocols.adapter.LENDING_EVENT_COLUMNS), so a new
protocol package reaches the credit features without an edit elsewhere; `stg_lending_pools`, every adapter's pools
view stacked in the shared pool columns (POOL_COLUMNS), which the utilization and cap alerts and the Markets page
read; `stg_lending_liquidations`, every adapter's liquidations view in the shared columns (LIQUIDATION_COLUMNS);
`stg_lending_liquidation_calls`, every adapter's liquidation-calls view (LIQUIDATION_CALL_COLUMNS);
`stg_lending_parameter_changes`, every adapter's parameter-changes view (PARAMETER_CHANGE_COLUMNS); and
`stg_chain_names`, the chains chainrisk knows by name (chainrisk.networks); `stg_market_health_buckets`, each
market's health history per bucket, with the cold days' sums the writer stored (chainrisk.store.schema.history.
MARKET_SUMS, one definition for both). Besides, a view that reads
`stg_<table>_at_snapshot` for one of an adapter's raw snapshot tables (`raw_<table>`: every table of its DDL but its
events table) gets it generated here: the table's rows stamped with their market's latest snapshot block, which
every view of those tables needs (`at_snapshot`); and an adapter with `settings` gets its parameter-changes view
(`parameter_changes_view`) generated from them, one definition of what a change of a governed setting is.

Each file is one view named after the file: a header of `--` lines (its first line describes the view, a
`Reads:` line lists its inputs) and a single SELECT. stg_* views sit over the tables the jobs write; mart_* views
read only stg_* views and other marts. The score job installs the views before it publishes, so readers of the
published snapshot find them; `query_sql` gives a view's SQL with its dependencies inlined, runnable on any chainrisk
file whether or not the views were installed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from chainrisk.errors import UserError
from chainrisk.networks import CHAIN_NAMES
from chainrisk.protocols.adapter import (
    GOVERNANCE_EVENT_COLUMNS,
    LENDING_EVENT_COLUMNS,
    LIQUIDATION_CALL_COLUMNS,
    LIQUIDATION_COLUMNS,
    PARAMETER_CHANGE_COLUMNS,
    POOL_COLUMNS,
    Adapter,
    SettingsTable,
    adapters,
)
from chainrisk.resources import data_dir
from chainrisk.store.latest import create_adapter_tables
from chainrisk.store.parquet import literal as _literal
from chainrisk.store.schema.history import HISTORY_SCHEMA, market_buckets
from chainrisk.store.versions import ensure_history

#: The shared SQL files (top-level queries/ in a checkout, chainrisk/_data/queries in a wheel).
QUERIES_DIR = data_dir("queries")
#: The generated view stacking every adapter's events view.
LENDING_EVENTS = "stg_lending_events"
#: The generated view stacking every adapter's pools view.
LENDING_POOLS = "stg_lending_pools"
#: The generated view stacking every adapter's liquidations view.
LENDING_LIQUIDATIONS = "stg_lending_liquidations"
#: The generated view stacking every adapter's liquidation-calls view.
LENDING_LIQUIDATION_CALLS = "stg_lending_liquidation_calls"
#: The generated view stacking every adapter's parameter-changes view.
LENDING_PARAMETER_CHANGES = "stg_lending_parameter_changes"
#: The generated view stacking every adapter's governance-events view.
LENDING_GOVERNANCE_EVENTS = "stg_lending_governance_events"
#: The generated view of chain names (chainrisk.networks.CHAIN_NAMES).
CHAIN_NAMES_VIEW = "stg_chain_names"
#: The generated view of each market's health history per bucket (chainrisk.store.schema.history.MARKET_SUMS).
MARKET_HEALTH_BUCKETS = "stg_market_health_buckets"
#: The views generated here rather than read from a file.
GENERATED = (
    CHAIN_NAMES_VIEW,
    MARKET_HEALTH_BUCKETS,
    LENDING_EVENTS,
    LENDING_POOLS,
    LENDING_LIQUIDATIONS,
    LENDING_LIQUIDATION_CALLS,
    LENDING_PARAMETER_CHANGES,
    LENDING_GOVERNANCE_EVENTS,
)
#: The generated view of an adapter's raw snapshot table `raw_<table>` is `stg_<table>` followed by this.
AT_SNAPSHOT = "_at_snapshot"
#: Layers in build order: staging views over the tables, then the marts people read.
LAYERS = ("stg", "mart")

_NAME = re.compile(r"^(stg|mart)_[a-z0-9_]+$")
_COMMENT = re.compile(r"--[^\n]*")
_READ = re.compile(r"\b(?:from|join)\s+([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)\b", re.IGNORECASE)
_DISTINCT_FROM = re.compile(r"\bdistinct\s+from\b", re.IGNORECASE)
_CTE = re.compile(r"\b([a-z_][a-z0-9_]*)\s+as\s*\(", re.IGNORECASE)


@dataclass(frozen=True)
class Query:
    name: str  #: view name, the file's stem
    path: Path | None  #: the .sql file (None for the generated stg_lending_events)
    layer: str  #: 'stg' or 'mart'
    description: str  #: the header's first sentence (its lines joined)
    sql: str  #: the body: one SELECT, without the header
    reads: tuple[str, ...]  #: tables and views the body reads (its FROM / JOIN targets that are not its CTEs)


def _parse(path: Path) -> Query:
    """The query file at `path`, parsed once per process while its size and modification time stay the same (every
    score installs the views, and parsing the ~40 files with DuckDB's parser was ~1 % of the suite's profile)."""
    stat = path.stat()
    return _parse_version(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1024)
def _parse_version(path: Path, _mtime_ns: int, _size: int) -> Query:
    name = path.stem
    match = _NAME.match(name)
    if match is None:
        raise UserError(f"{path}: a query file is named stg_<name>.sql or mart_<name>.sql in lowercase; rename it")
    lines = path.read_text(encoding="utf-8").splitlines()
    header: list[str] = []
    while lines and lines[0].lstrip().startswith("--"):
        header.append(lines.pop(0).lstrip()[2:].strip())
    if not header or not header[0]:
        raise UserError(f"{path}: start the file with a `--` comment whose first line says what the view is")
    body = "\n".join(lines).strip().rstrip(";").rstrip()
    try:
        statements = duckdb.extract_statements(body)
    except duckdb.Error as exc:
        raise UserError(f"{path}: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise UserError(f"{path}: the body must be a single SELECT (found {len(statements)} statement(s))")
    # `a IS [NOT] DISTINCT FROM b` compares two values: its FROM names no input.
    code = _DISTINCT_FROM.sub(" ", _COMMENT.sub("", body))
    ctes = {c.lower() for c in _CTE.findall(code)}
    reads = sorted({r.lower() for r in _READ.findall(code)} - ctes)
    # The header's first sentence: its lines up to the one that ends it (a sentence may run over two lines).
    first = next((i for i, line in enumerate(header) if not line or line.endswith(".")), len(header) - 1)
    sentence = " ".join(line for line in header[: first + 1] if line)
    return Query(name, path, match.group(1), sentence, body, tuple(reads))


def _ordered(queries: dict[str, Query]) -> list[Query]:
    """Dependencies first; among views that are ready, stg before mart, then by name (a stable order)."""
    needs = {q.name: {r for r in q.reads if r in queries and r != q.name} for q in queries.values()}
    for query in queries.values():
        marts = sorted(n for n in needs[query.name] if queries[n].layer == "mart")
        if query.layer == "stg" and marts:
            raise UserError(
                f"{query.path or query.name}: a stg_ view may not read marts ({', '.join(marts)}); make it a mart"
            )
    done: list[Query] = []
    placed: set[str] = set()
    while len(done) < len(queries):
        ready = [queries[n] for n in queries if n not in placed and needs[n] <= placed]
        if not ready:
            stuck = sorted(n for n in queries if n not in placed)
            raise UserError(f"queries read each other in a cycle: {', '.join(stuck)}; break the cycle")
        first = min(ready, key=lambda q: (LAYERS.index(q.layer), q.name))
        done.append(first)
        placed.add(first.name)
    return done


#: Each generated view that stacks one kind of adapter view: (the Adapter attribute naming the view, the shared
#: columns, a condition on its rows, the description).
STACKED = {
    LENDING_EVENTS: (
        "events_view",
        LENDING_EVENT_COLUMNS,
        "action IS NOT NULL",
        "Every protocol's lending events in one shape: supply, withdraw, borrow, repay, liquidated, collateral",
    ),
    LENDING_POOLS: (
        "pools_view",
        POOL_COLUMNS,
        None,
        "Every pool a market lends from or caps, in one shape: supply, debt, utilization and cap usage",
    ),
    LENDING_LIQUIDATIONS: (
        "liquidations_view",
        LIQUIDATION_COLUMNS,
        None,
        "Every liquidation the chains logged, in one shape: who, by whom, the debt repaid and the collateral seized",
    ),
    LENDING_LIQUIDATION_CALLS: (
        "liquidation_calls_view",
        LIQUIDATION_CALL_COLUMNS,
        None,
        "Every liquidation a keeper can send now, in one shape: what each call would repay, seize and leave, or why "
        "it reverts",
    ),
    LENDING_PARAMETER_CHANGES: (
        "parameter_changes_view",
        PARAMETER_CHANGE_COLUMNS,
        None,
        "Every governed setting the stored history saw change, in one shape: what, from what to what, first read when",
    ),
    LENDING_GOVERNANCE_EVENTS: (
        "governance_events_view",
        GOVERNANCE_EVENT_COLUMNS,
        None,
        "Every log in which a chain says governance changed a setting or listed an item, in one shape: where it is",
    ),
}


def _stacked(name: str, views: list[str]) -> Query:
    """STACKED's view `name` over `views` (each adapter's): their shared columns, UNION ALL."""
    _, columns, condition, description = STACKED[name]
    where = f" WHERE {condition}" if condition else ""
    body = "\nUNION ALL\n".join(f"SELECT {', '.join(columns)} FROM {view}{where}" for view in views)
    return Query(name, None, "stg", description, body, tuple(views))


def at_snapshot_view(table: str) -> str:
    """The name of the generated view of the raw snapshot table `table` (raw_maker_ilks: stg_maker_ilks_at_snapshot)."""
    return "stg_" + table.removeprefix("raw_") + AT_SNAPSHOT


def _at_snapshot(protocol: str, table: str) -> Query:
    """stg_<table>_at_snapshot: `table`'s rows with block_number the market's latest snapshot (sync_state) and
    is_latest. A snapshot writes a raw table only when it changed (Store._replace_rows), so its rows keep the block
    they were written at while they still hold at every later snapshot; a row past the market's snapshot (written by a
    run that stopped before it recorded the snapshot) keeps its own block and is not the latest."""
    body = (
        "SELECT r.* REPLACE (coalesce(s.snapshot_block, r.block_number) AS block_number),\n"
        "    s.snapshot_block IS NOT NULL AS is_latest\n"
        f"FROM {table} AS r\n"
        "LEFT JOIN sync_state AS s\n"
        f"    ON s.protocol = {_literal(protocol)} AND s.chain_id = r.chain_id AND s.market = r.market\n"
        "    AND r.block_number <= s.snapshot_block"
    )
    description = f"{table}'s rows stamped with their market's latest snapshot block, and whether they hold at it"
    return Query(at_snapshot_view(table), None, "stg", description, body, (table, "sync_state"))


def _chain_names() -> Query:
    """stg_chain_names: each chain chainrisk knows by name (its presets' chains and the devnet's)."""
    rows = ",\n".join(f"    ({chain_id}, '{name}')" for chain_id, name in sorted(CHAIN_NAMES.items()))
    body = f"SELECT chain_id::BIGINT AS chain_id, chain_name FROM (VALUES\n{rows}\n) AS t(chain_id, chain_name)"
    return Query(
        CHAIN_NAMES_VIEW, None, "stg", "Each chain chainrisk knows by name: its presets' and the devnet's", body, ()
    )


def _market_health_buckets() -> Query:
    """stg_market_health_buckets: every market's sums over its wallets in each bucket of the health history, summed
    over the database's buckets for the hot days and read from cold_history_markets (written with each cold file) for
    the cold ones: a bucket is in one or the other."""
    hot = market_buckets("SELECT * FROM wallet_health_buckets")
    body = f"SELECT * FROM ({hot})\nUNION ALL BY NAME\nSELECT * EXCLUDE (day) FROM cold_history_markets"
    description = "Each market's health history per bucket, summed over its wallets' last samples in the bucket"
    reads = ("wallet_health_buckets", "wallet_health_keys", "cold_history_markets")
    return Query(MARKET_HEALTH_BUCKETS, None, "stg", description, body, reads)


#: The shared view of every snapshot taken, with the one before it (queries/stg_snapshot_blocks.sql).
SNAPSHOTS_VIEW = "stg_snapshot_blocks"


def _shifted(column: str, places: str) -> str:
    """SQL: the integer `column` (any integer type, or its decimal digits as text) with its point moved `places`
    digits left, as the double nearest to that decimal: its digits read with an exponent (dividing a 48-digit rad's
    double by 1e45 is off in its last bits: 7,500.000000000001 dai); NULL where the value is not a number."""
    return f"TRY_CAST({column}::VARCHAR || 'e-' || ({places}) AS DOUBLE)"


def _settings_sql(protocol: str, spec: SettingsTable, n: int) -> tuple[list[str], str]:
    """The CTEs comparing the versions of one settings table (history.<table>) one after the other, and the SELECT of
    its rows in PARAMETER_CHANGE_COLUMNS: a parameter whose value differs from the version before's, an item first
    read after its source's first snapshot or again after a gap (listed), and one a snapshot no longer read (gone).

    Two passes, as prices and indexes open most versions and governance few: a window over every version compares
    its settings whole with the version before's (`moved`) and finds each key's first and last; only the raw rows of
    the versions that moved, and of the ones they replaced, are then read again to take the settings apart and give
    each its amount (carrying those through the window, or working them out for every version before the join, took
    1.5 to 2 times as long: benchmarks/parameter_changes.py). Each settings list is spelled once per pass: every
    checkpoint writes the views' SQL into the catalog, and the database's and the published folder's size follow."""
    values = "{" + ", ".join(f"'{s.column}': \"{s.column}\"" for s in spec.settings) + "}"
    # Around a change, the settings as lists in the order of spec.settings: exact text and amounts, zipped with the
    # names and units by the unnests of changed_n.
    texts = "[" + ", ".join(f'"{s.column}"::VARCHAR' for s in spec.settings) + "]"
    amounts = (
        "["
        + ", ".join(
            s.amount if s.amount else _shifted(f'"{s.column}"', s.places) if s.unit else "NULL::DOUBLE"
            for s in spec.settings
        )
        + "]"
    )
    names = "[" + ", ".join(_literal(s.column) for s in spec.settings) + "]"
    units = "[" + ", ".join(_literal(s.unit) if s.unit else "NULL" for s in spec.settings) + "]::VARCHAR[]"
    key = "chain_id, source, item"
    raw = f"(SELECT *, market AS source, {spec.item} AS item FROM {HISTORY_SCHEMA}.{spec.table})"
    same = "e.chain_id = {0}.chain_id AND e.source = {0}.source AND e.item = {0}.item"
    on = same.format("h")
    ctes = [
        f"""steps_{n} AS (
    SELECT
        {key},
        block_number,
        valid_to_block,
        setting IS DISTINCT FROM lag(setting) OVER item_order AS moved,
        lag(valid_to_block) OVER item_order AS was_to,
        lead(block_number) OVER item_order AS next_from
    FROM (
        SELECT chain_id, market AS source, {spec.item} AS item, block_number, valid_to_block, {values} AS setting
        FROM {HISTORY_SCHEMA}.{spec.table}
    )
    WINDOW item_order AS (PARTITION BY {key} ORDER BY block_number)
)""",
        f"""events_{n} AS (
    SELECT {key}, block_number, 'changed' AS change FROM steps_{n} WHERE was_to = block_number AND moved
    UNION ALL
    SELECT {key}, block_number, 'listed' FROM steps_{n} WHERE was_to IS NULL OR was_to < block_number
    UNION ALL
    SELECT {key}, valid_to_block, 'gone' FROM steps_{n}
    WHERE valid_to_block IS NOT NULL AND (next_from IS NULL OR next_from > valid_to_block)
)""",
        # The raw rows of the versions an event names (side read: at its block; replaced: closed at it), their settings
        # taken apart (the semi joins first: a handful of rows; UNION ALL with the side named, as a distinct UNION
        # cost 10 % more of the whole read).
        f"""around_{n} AS (
    SELECT
        chain_id, source, {spec.market} AS market, item, {spec.symbol} AS symbol, block_number, valid_to_block,
        {texts} AS setting, {amounts} AS amount, side
    FROM (
        SELECT h.*, 'read' AS side FROM {raw} AS h
        SEMI JOIN events_{n} AS e ON {on} AND e.block_number = h.block_number AND e.change <> 'gone'
        UNION ALL
        SELECT h.*, 'replaced' FROM {raw} AS h
        SEMI JOIN events_{n} AS e ON {on} AND e.block_number = h.valid_to_block AND e.change <> 'listed'
    )
)""",
        # A read version right after the one it replaced moved (a listing follows a gap or nothing).
        f"""changed_{n} AS (
    SELECT
        r.chain_id, r.source, r.market, r.item, r.symbol, r.block_number,
        unnest({names}) AS parameter, unnest({units}) AS unit, unnest(o.setting) AS old_value,
        unnest(r.setting) AS new_value, unnest(o.amount) AS old_amount, unnest(r.amount) AS new_amount
    FROM around_{n} AS r
    JOIN around_{n} AS o
        ON o.chain_id = r.chain_id AND o.source = r.source AND o.item = r.item AND o.valid_to_block = r.block_number
        AND r.side = 'read' AND o.side = 'replaced'
)""",
    ]
    head = f"{_literal(protocol)} AS protocol, chain_id, source, market, {_literal(spec.item_kind)} AS item_kind, item"
    nothing = "NULL, NULL, NULL, NULL, NULL, NULL"
    amounts_out = "old_value, new_value, old_amount, new_amount"
    # A setting unread on either side (a column a newer chainrisk added, a getter that failed) is not a change.
    select = f"""SELECT {head}, symbol, 'changed' AS change, parameter, unit, {amounts_out}, block_number
FROM changed_{n}
WHERE old_value <> new_value
UNION ALL
SELECT {head}, symbol, 'listed', {nothing}, block_number
FROM around_{n} AS r
WHERE r.side = 'read' AND EXISTS (
    SELECT 1 FROM events_{n} AS e
    JOIN {SNAPSHOTS_VIEW} AS b
        ON b.protocol = {_literal(protocol)} AND b.chain_id = e.chain_id AND b.source = e.source
        AND b.block_number = e.block_number
    WHERE {same.format("r")} AND e.block_number = r.block_number AND e.change = 'listed' AND NOT b.is_first
)
UNION ALL
SELECT {head}, symbol, 'gone', {nothing}, valid_to_block
FROM around_{n} AS o
WHERE o.side = 'replaced' AND EXISTS (
    SELECT 1 FROM events_{n} AS e
    WHERE {same.format("o")} AND e.block_number = o.valid_to_block AND e.change = 'gone'
)"""
    return ctes, select


def _parameter_changes(adapter: Adapter[Any]) -> Query:
    """The adapter's parameter-changes view (`parameter_changes_view`), generated from its `settings`."""
    name = str(adapter.parameter_changes_view)
    ctes: list[str] = []
    selects: list[str] = []
    for n, spec in enumerate(adapter.settings):
        more, select = _settings_sql(adapter.name, spec, n)
        ctes += more
        selects.append(select)
    body = "WITH " + ",\n\n".join(ctes) + "\n\n" + "\nUNION ALL\n".join(selects)
    reads = (*(f"{HISTORY_SCHEMA}.{spec.table}" for spec in adapter.settings), SNAPSHOTS_VIEW)
    description = f"{adapter.label}'s governed settings each time a snapshot read them changed, listed or gone"
    return Query(name, None, "stg", description, body, reads)


def query_files(folder: Path = QUERIES_DIR) -> list[Path]:
    """The shared view files and every adapter's own, by name."""
    if not folder.is_dir():
        raise UserError(f"no queries folder at {folder}; reinstall chainrisk with its queries/ folder")
    found = [*folder.glob("*.sql")]
    for adapter in adapters().values():
        if adapter.queries_dir().is_dir():
            found += adapter.queries_dir().glob("*.sql")
    return sorted(found, key=lambda path: path.name)


def list_queries(folder: Path = QUERIES_DIR) -> list[Query]:
    """Every view (files and the generated ones), in an order that creates each after the views it reads."""
    parsed = {q.name: q for q in (_parse(p) for p in query_files(folder))}
    for adapter in adapters().values():
        if bool(adapter.settings) != bool(adapter.parameter_changes_view):
            raise UserError(f"adapter {adapter.name}: give both settings and parameter_changes_view, or neither")
        if adapter.settings:
            parsed[str(adapter.parameter_changes_view)] = _parameter_changes(adapter)
    for name, (attribute, *_) in STACKED.items():
        views = sorted(str(getattr(a, attribute)) for a in adapters().values() if getattr(a, attribute))
        missing = [view for view in views if view not in parsed]
        if missing:
            raise UserError(
                f"an adapter names the {attribute.removesuffix('_view').replace('_', ' ')} view {missing[0]}, but no "
                "such query file exists"
            )
        if views:
            parsed[name] = _stacked(name, views)
    parsed[CHAIN_NAMES_VIEW] = _chain_names()
    parsed[MARKET_HEALTH_BUCKETS] = _market_health_buckets()
    read = {r for q in parsed.values() for r in q.reads}
    for adapter in adapters().values():
        for table in adapter.tables():
            name = at_snapshot_view(table)
            if table != adapter.events_table and name in read and name not in parsed:
                parsed[name] = _at_snapshot(adapter.name, table)
    return _ordered(parsed)


def _find(name: str) -> Query:
    queries = {q.name: q for q in list_queries()}
    if name not in queries:
        raise UserError(f"unknown query {name!r}; known: {', '.join(sorted(queries))}")
    return queries[name]


def query_sql(name: str) -> str:
    """The view's SQL as one statement: the views it reads, directly or not, inlined as CTEs ahead of its body.

    It returns the view's rows on any chainrisk file, including a read-only copy without the views installed.
    """
    target = _find(name)
    queries = list_queries()
    by_name = {q.name: q for q in queries}
    needed = {target.name}
    for query in reversed(queries):  # dependents come after their dependencies, so one backwards pass suffices
        if query.name in needed:
            needed.update(r for r in query.reads if r in by_name)
    parts = [f"{q.name} AS (\n{q.sql}\n)" for q in queries if q.name in needed]
    return "WITH " + ",\n".join(parts) + f"\nSELECT * FROM {target.name}"


def install_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Creates (or replaces) every view on a writable connection, in one transaction; returns their names.

    Every adapter's raw tables are created first when missing, so views over a protocol that was never indexed
    install (and return no rows) too. Each view's comment is a digest of what the views were made from (every view's
    SQL, the adapters' tables' DDL and the main schema's columns, names and types); when every view still carries it,
    nothing is done: the score installs the views before every run's publish, and replacing 36 views that would be
    the same cost ~0.4 s a run.
    """
    queries = list_queries()
    names = [q.name for q in queries]
    ddls = [adapter.ddl for adapter in adapters().values()]
    if _carrying(con, _made_from(con, queries, ddls)) == set(names):
        return names
    con.execute("BEGIN")
    try:
        # As Store.ensure_tables leaves them (without the latest-only ones' keys, with a ledger): a run keeps one
        # instance open (chainrisk.store.db.keep_open), so no later open of this run would put that right.
        create_adapter_tables(con, ddls)
        # The raw versions a view reads (history.<raw table>) exist once a snapshot wrote one: made empty before then.
        for table in sorted(
            {r.split(".", 1)[1] for q in queries for r in q.reads if r.startswith(f"{HISTORY_SCHEMA}.")}
        ):
            ensure_history(con, table)
        for query in queries:
            try:
                con.execute(f"CREATE OR REPLACE VIEW {query.name} AS\n{query.sql}")
            except duckdb.Error as exc:
                raise UserError(f"{query.path or query.name}: {str(exc).splitlines()[0]}") from None
        digest = _made_from(con, queries, ddls)  # the adapters' tables just created count too
        for name in names:
            con.execute(f"COMMENT ON VIEW {name} IS {_literal(digest)}")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return names


def _made_from(con: duckdb.DuckDBPyConnection, queries: list[Query], ddls: list[str]) -> str:
    """The digest of what the views are made from: `queries`, `ddls` and the main schema's columns as they are now."""
    columns = con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name IN (SELECT table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'main') ORDER BY table_name, column_index"
    ).fetchall()
    made = json.dumps([[q.name, q.sql] for q in queries] + [ddls, [list(c) for c in columns]])
    return hashlib.sha256(made.encode()).hexdigest()


def _carrying(con: duckdb.DuckDBPyConnection, digest: str) -> set[str]:
    """The main schema's views whose comment is `digest`."""
    rows = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND comment = ?",
        [digest],
    ).fetchall()
    return {str(r[0]) for r in rows}
