"""The SQL console refuses or fails cleanly on hostile SQL, never changes a byte, and returns exact results."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from chainrisk.errors import UserError
from chainrisk.store.console import ConsoleLimits, console_connection, run_console_query
from chainrisk.store.db import Store
from chainrisk.store.published import connect_reader, current_copy, published_dir, published_files

#: Amounts at the edges of what positions hold: the largest exact integer (38 digits) and a typical wei balance.
BIG = 10**38 - 1
WEI = 123_456_789_012_345_678_901_234
SECRET_VARIABLE, SECRET = "CHAINRISK_CONSOLE_TEST_RPC_URL", "https://rpc.example/v2/secret-api-key-42"
#: Short enough to keep the runaway-query tests quick.
FAST = ConsoleLimits(timeout_s=1.0)


def _build(db: Path, *, publish: bool = True) -> Path:
    with Store(db) as store:
        for wallet, supplied, debt in (("0xaa", BIG, WEI), ("0xbb", WEI, 0), ("0xcc", 1, BIG)):
            store.con.execute(
                "INSERT INTO positions (protocol, chain_id, market, wallet, asset, symbol, block_number, "
                "block_timestamp, decimals, supplied_amount, collateral_amount, debt_amount, used_as_collateral, "
                "is_borrowing, price, ltv_bps, liquidation_threshold_bps, liquidation_bonus_bps, emode_category) "
                "VALUES ('aave-v3', 1, '0xpool', ?, '0xweth', 'WETH', 100, 1700000000, 18, ?, ?, ?, true, ?, "
                "200000000000, 8000, 8250, 10500, 0)",
                [wallet, supplied, supplied, debt, debt > 0],
            )
        if publish:
            store.publish()
    return db


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("console") / "chainrisk.duckdb")


def _fingerprint(db: Path) -> dict[str, str]:
    """Every file beside the database (new ones show up too) with the hash of its bytes."""
    files = [p for p in db.parent.rglob("*") if p.is_file()]
    return {str(p.relative_to(db.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _refused(db: Path, sql: str, limits: ConsoleLimits = FAST) -> str:
    """Runs `sql`, asserts a one-line UserError and an unchanged database, and returns the message."""
    before = _fingerprint(db)
    with pytest.raises(UserError) as caught:
        run_console_query(db, sql, limits)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(("query refused:", "query failed:", "query stopped after")), message
    assert _fingerprint(db) == before
    return message


HOSTILE = {
    "insert": "INSERT INTO positions SELECT * FROM positions",
    "update": "UPDATE positions SET debt_amount = 0",
    "delete": "DELETE FROM positions",
    "merge": "MERGE INTO positions USING positions AS s ON true WHEN MATCHED THEN DELETE",
    "create table": "CREATE TABLE evil AS SELECT 1 AS x",
    "create temp table": "CREATE TEMP TABLE scratch AS SELECT 1 AS x",
    "create temp view": "CREATE TEMP VIEW v AS SELECT 1 AS x",
    "create temp macro": "CREATE TEMP MACRO m(x) AS x + 1",
    "create secret": "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 's')",
    "drop": "DROP TABLE positions",
    "alter": "ALTER TABLE positions ADD COLUMN evil INTEGER",
    "comment on": "COMMENT ON TABLE positions IS 'owned'",
    "attach memory": "ATTACH ':memory:' AS scratch",
    "detach": "DETACH published",
    "use": "USE system",
    "export": "EXPORT DATABASE 'console-export'",
    "import": "IMPORT DATABASE 'console-export'",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "update extensions": "UPDATE EXTENSIONS",
    "set external access": "SET enable_external_access = true",
    "unlock": "SET lock_configuration = false",
    "reset": "RESET threads",
    "pragma": "PRAGMA enable_checkpoint_on_shutdown",
    "call": "CALL force_checkpoint()",
    "begin": "BEGIN TRANSACTION",
    "commit": "COMMIT",
    "checkpoint": "CHECKPOINT",
    "vacuum": "VACUUM",
    "analyze": "ANALYZE",
    "prepare": "PREPARE p AS SELECT 1",
    "pivot statement": "PIVOT positions ON wallet USING sum(debt_amount)",
    "explain insert": "EXPLAIN INSERT INTO positions SELECT * FROM positions",
    "explain analyze delete": "EXPLAIN ANALYZE DELETE FROM positions",
    "read_csv": "SELECT * FROM read_csv('/etc/passwd')",
    "read_text": "SELECT * FROM read_text('/etc/passwd')",
    "read_blob in cte": "WITH f AS (SELECT * FROM read_blob('/etc/passwd')) SELECT count(*) FROM f",
    "read_json in lateral": "SELECT * FROM positions, LATERAL (SELECT * FROM read_json(wallet))",
    "glob in subquery": "SELECT (SELECT count(*) FROM glob('/*')) AS n",
    "qualified reader": "SELECT * FROM system.main.read_csv('/etc/passwd')",
    "quoted reader": """SELECT * FROM "READ_TEXT"('/etc/passwd')""",
    "replacement scan": "SELECT * FROM '/etc/passwd'",
    "relative replacement scan": "SELECT * FROM 'positions.csv'",
    "http parquet": "SELECT * FROM read_parquet('http://127.0.0.1:9/x.parquet')",
    "http replacement scan": "SELECT * FROM 'https://example.com/data.parquet'",
    "environ file": "SELECT * FROM read_text('/proc/self/environ')",
    "explain analyze reader": "EXPLAIN ANALYZE SELECT * FROM read_text('/etc/passwd')",
    "dynamic sql": "SELECT * FROM query('DROP TABLE positions')",
    "dynamic table": "SELECT * FROM query_table('/etc/passwd')",
    "checkpoint function": "SELECT * FROM checkpoint()",
    "logging switch": "SELECT * FROM enable_logging()",
    "write_log": "SELECT write_log('owned')",
    "getenv home": "SELECT getenv('HOME')",
    "two selects": "SELECT 1; SELECT 2",
    "select then drop": "SELECT * FROM positions; DROP TABLE positions",
    "line comment hides separator": "SELECT 1 -- harmless\n; DROP TABLE positions",
    "block comments around drop": "/* ; */ SELECT 1; /* harmless */ DROP TABLE positions /* ; */",
    "nul byte": "SELECT 1\x00; DROP TABLE positions",
    "empty": "",
    "whitespace": "  \n\t ",
    "only a comment": "-- SELECT 1",
    "only semicolons": ";;",
    "syntax error": "SELEC * FROM positions",
    "cte with dml": "WITH gone AS (DELETE FROM positions RETURNING *) SELECT * FROM gone",
    "megabyte of sql": "SELECT " + " + ".join(["1"] * 350_000),
    "deep nesting": "SELECT " + "(" * 5000 + "1" + ")" * 5000,
}


@pytest.mark.parametrize("sql", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_query_is_refused_and_changes_nothing(db: Path, sql: str) -> None:
    _refused(db, sql)


def test_only_select_statements_are_named_in_refusals(db: Path) -> None:
    assert "INSERT" in _refused(db, HOSTILE["insert"])
    assert "TRANSACTION (BEGIN)" in _refused(db, HOSTILE["begin"])
    assert "2 statements (SELECT, DROP)" in _refused(db, HOSTILE["select then drop"])
    assert "read_csv()" in _refused(db, HOSTILE["read_csv"])
    assert "no SQL statement" in _refused(db, HOSTILE["empty"])
    assert "at most" in _refused(db, HOSTILE["megabyte of sql"])


def test_own_database_file_cannot_be_read_as_a_file(db: Path) -> None:
    """DuckDB always allows reading the attached file itself; the console refuses it before DuckDB sees it."""
    copy = current_copy(db)
    assert copy is not None
    for path in (copy, db):
        _refused(db, f"SELECT * FROM read_blob('{path}')")
        _refused(db, f"SELECT * FROM read_duckdb('{path}')")
        _refused(db, f"SELECT * FROM '{path}'")


def test_nothing_is_written_outside_the_database(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "x.duckdb"
    for sql in (
        f"ATTACH '{target}' AS x",
        f"COPY positions TO '{tmp_path / 'out.csv'}'",
        f"EXPORT DATABASE '{tmp_path / 'export'}'",
        f"SELECT * FROM read_csv('{tmp_path / 'x.csv'}')",
    ):
        _refused(db, sql)
    assert list(tmp_path.iterdir()) == []


def test_environment_does_not_leak(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    for sql in (
        f"SELECT getenv('{SECRET_VARIABLE}')",
        f"SELECT current_setting('{SECRET_VARIABLE}')",
        "SELECT * FROM read_text('/proc/self/environ')",
        "SELECT * FROM read_csv('/proc/self/environ', sep = '=')",
    ):
        assert SECRET not in _refused(db, sql)
    # Behind the refusal, DuckDB's Python package has no getenv at all (the CLI's shell defines it).
    with console_connection(db, FAST) as con, pytest.raises(duckdb.CatalogException, match="getenv"):
        con.execute(f"SELECT getenv('{SECRET_VARIABLE}')").fetchall()


def test_runaway_recursion_is_stopped_by_the_timeout(db: Path) -> None:
    message = _refused(db, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r")
    assert message == "query stopped after 1 s (the console's time limit)"


def test_huge_sorted_cross_join_is_stopped_by_the_timeout(db: Path) -> None:
    sql = "SELECT a.range + b.range AS s FROM range(100000000) a, range(100000000) b ORDER BY s DESC"
    assert _refused(db, sql).startswith("query stopped after 1 s")


def test_huge_cross_join_is_truncated_or_stopped_never_out_of_memory(db: Path) -> None:
    result = run_console_query(db, "SELECT * FROM range(1000000) a, range(1000000) b", FAST)
    assert result.truncated and result.frame.height == FAST.max_rows
    # Here DuckDB first builds one side (10^8 rows, most of the memory limit): done within the second or stopped.
    try:
        bigger = run_console_query(db, "SELECT * FROM range(100000000) a, range(100000000) b", FAST)
    except UserError as exc:
        assert str(exc).startswith("query stopped after 1 s")
    else:
        assert bigger.truncated and bigger.frame.height == FAST.max_rows


def test_million_rows_are_truncated_at_max_rows(db: Path) -> None:
    result = run_console_query(db, "SELECT range AS n FROM range(1000000) ORDER BY n DESC")
    assert result.truncated
    assert result.frame.height == ConsoleLimits().max_rows == 10_000
    assert result.frame["n"].to_list() == list(range(999_999, 989_999, -1))


def test_truncation_boundary(db: Path) -> None:
    limits = ConsoleLimits(max_rows=10)
    exact = run_console_query(db, "SELECT * FROM range(10)", limits)
    assert not exact.truncated and exact.frame.height == 10
    over = run_console_query(db, "SELECT * FROM range(11)", limits)
    assert over.truncated and over.frame.height == 10


def test_memory_limit_fails_cleanly(db: Path) -> None:
    limits = ConsoleLimits(memory_limit="32MB", timeout_s=5.0)
    message = _refused(db, "SELECT list(range) FROM range(20000000)", limits)
    assert "Out of Memory" in message


def test_select_returns_exact_hugeint_amounts(db: Path) -> None:
    result = run_console_query(
        db,
        "SELECT wallet, supplied_amount, debt_amount, price FROM positions WHERE protocol = 'aave-v3' ORDER BY wallet",
    )
    assert not result.truncated and result.seconds > 0
    frame = result.frame
    assert frame.schema["supplied_amount"] == pl.Decimal(38, 0)
    assert [int(v) for v in frame["supplied_amount"]] == [BIG, WEI, 1]
    assert [int(v) for v in frame["debt_amount"]] == [WEI, 0, BIG]
    assert frame["debt_amount"].to_list()[2] == Decimal(BIG)


def test_integers_beyond_38_digits_fail_loudly_or_come_back_as_text(db: Path) -> None:
    message = _refused(db, "SELECT sum(supplied_amount) AS total FROM positions")
    assert "cast it to VARCHAR" in message
    total = run_console_query(db, "SELECT sum(supplied_amount)::VARCHAR AS total FROM positions")
    assert total.frame["total"].to_list() == [str(BIG + WEI + 1)]
    # UHUGEINT would wrap to a negative decimal through Arrow; it comes back as its exact decimal text.
    top = run_console_query(db, f"SELECT '{2**128 - 1}'::UHUGEINT AS u, INTERVAL 3 DAY AS i")
    assert top.frame.row(0) == (str(2**128 - 1), "3 days")


def test_cte_query_and_duplicate_column_names(db: Path) -> None:
    sql = """
        WITH debt AS (SELECT wallet, debt_amount FROM positions WHERE debt_amount > 0),
        final AS (SELECT wallet, debt_amount, debt_amount FROM debt)
        SELECT * FROM final ORDER BY wallet
    """
    frame = run_console_query(db, sql).frame
    assert frame.columns == ["wallet", "debt_amount", "debt_amount_1"]
    assert [int(v) for v in frame["debt_amount_1"]] == [WEI, BIG]


def test_explain_describe_and_catalog_views(db: Path) -> None:
    plan = run_console_query(db, "EXPLAIN SELECT * FROM positions").frame
    assert plan.columns == ["explain_key", "explain_value"]
    analyzed = run_console_query(db, "EXPLAIN ANALYZE SELECT count(*) FROM positions").frame
    assert "Total Time" in analyzed["explain_value"][0]
    described = run_console_query(db, "DESCRIBE positions").frame
    assert "supplied_amount" in described["column_name"].to_list()
    # The published snapshot stores no data of its own: every table is a view over the snapshot's Parquet files.
    assert run_console_query(db, "SELECT count(*) AS n FROM duckdb_tables()").frame["n"].to_list() == [0]
    views = run_console_query(db, "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").frame
    assert "positions" in views["view_name"].to_list()
    unicode = "é🦆" * 20_000
    assert run_console_query(db, f"SELECT '{unicode}' AS ü").frame["ü"].to_list() == [unicode]


def test_connection_settings_are_in_force_and_locked(db: Path) -> None:
    limits = ConsoleLimits(memory_limit="256MB", threads=1)
    expected = {
        "enable_external_access": "false",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "allow_community_extensions": "false",
        "python_enable_replacements": "false",
        "enable_progress_bar": "false",
        "lock_configuration": "true",
        "threads": "1",
        "memory_limit": "244.1 MiB",
        "temp_directory": "",
        "allowed_directories": "[]",
    }
    with console_connection(db, limits) as con:
        settings = dict(
            con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN ?", [list(expected)]).fetchall()
        )
        assert settings == expected
        for name in expected:
            with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
                con.execute(f"RESET {name}")
        databases = con.execute("SELECT database_name, path, readonly FROM duckdb_databases() WHERE NOT internal")
        assert databases.fetchall() == [("published", str(current_copy(db)), True)]


HOSTILE_TO_CONNECTION = {
    "write": "INSERT INTO positions SELECT * FROM positions",
    "create": "CREATE TABLE evil AS SELECT 1",
    "attach": "ATTACH '{tmp}/attached.duckdb' AS x",
    "copy": "COPY positions TO '{tmp}/copy.csv'",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "external access": "SET enable_external_access = true",
    "read file": "SELECT * FROM read_csv('/etc/passwd')",
    "replacement scan": "SELECT * FROM '/etc/passwd'",
    "network": "SELECT * FROM read_parquet('https://example.com/x.parquet')",
    "glob": "SELECT * FROM glob('/*')",
    "read the main file": "SELECT * FROM read_text('{db}')",
    "attach the main file": "ATTACH '{db}' AS main_file (READ_ONLY)",
    "read a manifest": "SELECT * FROM read_text('{published}/CURRENT')",
    "glob the snapshot": "SELECT * FROM read_parquet('{published}/data/*/*.parquet')",
    "copy into the snapshot's folder": "COPY positions TO '{published}/data/evil.parquet' (FORMAT parquet)",
}


@pytest.mark.parametrize("sql", HOSTILE_TO_CONNECTION.values(), ids=HOSTILE_TO_CONNECTION.keys())
def test_connection_alone_refuses_what_the_parser_check_refuses(db: Path, sql: str, tmp_path: Path) -> None:
    """Defence in depth: with the statement check bypassed, the connection itself still refuses."""
    before = _fingerprint(db)
    with console_connection(db, FAST) as con, pytest.raises(duckdb.Error):
        con.execute(sql.format(tmp=tmp_path, db=db, published=published_dir(db))).fetchall()
    assert _fingerprint(db) == before
    assert list(tmp_path.iterdir()) == []


def test_connection_reads_exactly_the_snapshots_files(db: Path) -> None:
    """The views read the published Parquet files (allowed_paths names each of them), and only those."""
    catalog = current_copy(db)
    assert catalog is not None
    files = published_files(catalog)
    assert files and all(f.suffix == ".parquet" and f.is_relative_to(published_dir(db)) for f in files)
    with console_connection(db, FAST) as con:
        allowed = con.execute("SELECT current_setting('allowed_paths')").fetchall()[0][0]
        # DuckDB adds the attached catalog itself (and its WAL names); nothing else.
        assert {str(f) for f in files} <= set(allowed)
        assert all(a.startswith(str(catalog)) for a in set(allowed) - {str(f) for f in files})
        assert con.execute("SELECT count(*) FROM positions").fetchall() == [(3,)]


def test_writing_over_a_snapshot_file_is_refused(db: Path) -> None:
    """allowed_paths lets DuckDB write as well as read the files it names, so that a COPY over one of them (the
    only write the connection alone would let through) is refused by the statement check, like every COPY."""
    catalog = current_copy(db)
    assert catalog is not None
    target = published_files(catalog)[0]
    for sql in (
        f"COPY (SELECT 1 AS a) TO '{target}' (FORMAT parquet, USE_TMP_FILE false)",
        f"ATTACH '{target}' AS x",
        f"SELECT * FROM read_parquet('{target}')",
    ):
        _refused(db, sql)


def test_console_and_dashboard_reader_share_a_process(db: Path) -> None:
    """DuckDB caches one instance per file and refuses a second configuration; the console's own instance
    must neither break nor be broken by a plain reader of the same published copy."""
    with connect_reader(db) as reader:
        assert run_console_query(db, "SELECT count(*) AS n FROM positions").frame["n"].to_list() == [3]
        with console_connection(db, FAST), connect_reader(db) as second:
            assert second.execute("SELECT current_setting('enable_external_access')").fetchall() == [(True,)]
        assert reader.execute("SELECT count(*) FROM positions").fetchall() == [(3,)]


@contextmanager
def _held_for_writing(db: Path) -> Iterator[None]:
    """`db` held open for writing by another process (as `chainrisk run` would) until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FOR_WRITING, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(db), read_only=True)
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


HOLD_FOR_WRITING = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"


def test_reads_the_published_copy_while_a_writer_holds_the_main_file(tmp_path: Path) -> None:
    db = _build(tmp_path / "busy.duckdb")
    with _held_for_writing(db):
        result = run_console_query(db, "SELECT sum(debt_amount)::VARCHAR AS debt FROM positions")
    assert result.frame["debt"].to_list() == [str(WEI + BIG)]


def test_unpublished_file_held_by_a_writer_is_one_clear_error(tmp_path: Path) -> None:
    db = _build(tmp_path / "unpublished.duckdb", publish=False)
    with (
        _held_for_writing(db),
        pytest.raises(UserError, match=r"^nothing published from .* yet: run `chainrisk score`") as caught,
    ):
        run_console_query(db, "SELECT 1")
    assert "\n" not in str(caught.value)


def test_limits_are_validated() -> None:
    for bad in ({"max_rows": 0}, {"timeout_s": 0.0}, {"threads": 0}):
        with pytest.raises(UserError):
            ConsoleLimits(**bad)


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_every_format_writes_what_duckdb_answers(db: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Values polars cannot format or write come out as text, not a traceback or a Rust panic (stop 71): DuckDB's
    'infinity' dates and timestamps, bytes (0x-hex in CSV and JSON) and maps (JSON text in JSON); valid dates as
    before."""
    from chainrisk.cli import main

    query = (
        "SELECT 'infinity'::DATE AS d, '-infinity'::TIMESTAMP AS ts, 'abc'::BLOB AS b, map([1], [2]) AS m, "
        "DATE '2024-01-02' AS ok"
    )
    assert main(["sql", "--db", str(db), "--format", fmt, query]) == 0
    out = capsys.readouterr().out
    assert "infinity" in out and "-infinity" in out and "2024-01-02" in out
    if fmt != "table":
        assert "0x616263" in out
