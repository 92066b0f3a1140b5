"""The published snapshots (chainrisk.store.published): what each publish writes (only new rows of an append-only
table, only changed tables, revised buckets as new versions), what readers see (one snapshot, whatever publishes
follow), exact wide integers, compaction, pruning and the upgrade from full copies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chainrisk.store import published
from chainrisk.store.console import run_console_query
from chainrisk.store.published import (
    DATA,
    MAX_FILES,
    POINTER,
    connect_reader,
    current_copy,
    publish,
    published_dir,
    read_manifest,
)

BIG = 2**126 + 12345  # 39 digits: beyond DECIMAL(38,0)


def _db(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE raw_toy_events (chain_id BIGINT, market VARCHAR, block_number BIGINT, amount HUGEINT)")
    con.execute("CREATE TABLE wallet_portfolio (wallet VARCHAR, collateral_usd DOUBLE)")
    # The health history as schema 11 stores it: buckets under an integer key, the readers' view over both.
    con.execute(
        "CREATE TABLE wallet_health_keys (key_id INTEGER, protocol VARCHAR, chain_id BIGINT, market VARCHAR, "
        "wallet VARCHAR)"
    )
    con.execute(
        "CREATE TABLE wallet_health_buckets (key_id INTEGER, bucket_start BIGINT, samples BIGINT, last_block BIGINT, "
        "health_factor DOUBLE)"
    )
    con.execute(
        "CREATE VIEW wallet_health_history AS SELECT k.protocol, k.chain_id, k.market, k.wallet, b.bucket_start, "
        "b.samples, b.last_block, b.health_factor FROM wallet_health_buckets b JOIN wallet_health_keys k USING (key_id)"
    )
    con.execute("CREATE SCHEMA history")
    con.execute(
        "CREATE TABLE history.raw_toy_balances (chain_id BIGINT, market VARCHAR, wallet VARCHAR, "
        "block_number BIGINT, balance HUGEINT, valid_to_block BIGINT)"
    )
    con.execute("CREATE VIEW mart_toy AS SELECT wallet, sum(collateral_usd) AS usd FROM wallet_portfolio GROUP BY 1")
    con.execute("CREATE VIEW mart_toy_events AS SELECT count(*) AS n, sum(amount) AS total FROM raw_toy_events")
    return con


def _buckets(con: duckdb.DuckDBPyConnection, wallets: int) -> None:
    """Bucket 0 of wallets w0... (key_id = the wallet's number): one sample, at block 10, health 1.5."""
    con.execute(f"INSERT INTO wallet_health_keys SELECT i, 'aave', 1, 'm', 'w' || i FROM range({wallets}) r(i)")
    con.execute(f"INSERT INTO wallet_health_buckets SELECT i, 0, 1, 10, 1.5 FROM range({wallets}) r(i)")


def _events(con: duckdb.DuckDBPyConnection, first: int, last: int) -> None:
    con.execute(
        "INSERT INTO raw_toy_events SELECT 1, 'm', b, b::HUGEINT * 1000000000000000000 FROM range(?, ?) r(b)",
        [first, last + 1],
    )


def _entry(db: Path, table: str) -> dict[str, Any]:
    catalog = current_copy(db)
    assert catalog is not None
    manifest = read_manifest(catalog)
    assert manifest is not None
    entry: dict[str, Any] = manifest["tables"][table]
    return entry


def _rows(paths: list[Path]) -> int:
    listed = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    with duckdb.connect() as con:
        return int(con.execute(f"SELECT count(*) FROM read_parquet({listed})").fetchall()[0][0])


def _read(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with connect_reader(db) as con:
        return con.execute(sql).fetchall()


def _console(db: Path, sql: str) -> list[Any]:
    return run_console_query(db, sql).frame.to_series().to_list()


def test_append_only_table_gets_a_file_of_the_new_rows_only(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _events(con, 1, 100)
    con.execute("INSERT INTO wallet_portfolio VALUES ('0xa', 1.5), ('0xb', 2.5)")
    first = publish(con, db)
    assert first.tables_written["main.raw_toy_events"] == "rewrite"
    first_manifest = read_manifest(first.catalog)
    assert first_manifest is not None
    _events(con, 101, 103)
    second = publish(con, db)
    folder = published_dir(db)
    events = _entry(db, "main.raw_toy_events")
    assert len(events["files"]) == 2 and events["watermark"] == 103
    assert [_rows([folder / f]) for f in events["files"]] == [100, 3]
    # Only the events were written: the unchanged tables keep their files.
    assert second.tables_written == {"main.raw_toy_events": "append"}
    assert second.files == 1 and second.rows == 3
    assert _entry(db, "main.wallet_portfolio")["files"] == first_manifest["tables"]["main.wallet_portfolio"]["files"]
    # Readers see the whole table, exact, and the writer's views over it.
    total = sum(b * 10**18 for b in range(1, 104))
    assert _read(db, "SELECT n, total FROM mart_toy_events") == [(103, total)]
    assert _read(db, "SELECT typeof(amount) FROM raw_toy_events LIMIT 1") == [("HUGEINT",)]
    # Nothing new: nothing written.
    third = publish(con, db)
    assert third.files == 0 and third.tables_written == {}
    con.close()


def test_rows_deleted_below_the_watermark_rewrite_the_table(tmp_path: Path) -> None:
    """A reorg rewinds events and writes others of the same count: the hashes do not add up, the table is rewritten."""
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _events(con, 1, 10)
    publish(con, db)
    con.execute("DELETE FROM raw_toy_events WHERE block_number > 8")
    con.execute("INSERT INTO raw_toy_events VALUES (1, 'm', 9, 7), (1, 'm', 10, 7), (1, 'm', 11, 7)")
    report = publish(con, db)
    assert report.tables_written["main.raw_toy_events"] == "rewrite"
    assert len(_entry(db, "main.raw_toy_events")["files"]) == 1
    assert _read(db, "SELECT count(*), sum(amount) FROM raw_toy_events") == [
        (11, sum(b * 10**18 for b in range(1, 9)) + 21)
    ]
    con.close()


def test_revised_buckets_are_published_as_new_versions(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _buckets(con, 50)
    con.execute("INSERT INTO history.raw_toy_balances SELECT 1, 'm', 'w' || i, 10, ?, NULL FROM range(50) r(i)", [BIG])
    publish(con, db)
    # A later run extends one bucket, opens another, and replaces one balance (closing its version).
    con.execute("UPDATE wallet_health_buckets SET samples = 2, last_block = 11, health_factor = 0.9 WHERE key_id = 3")
    con.execute("INSERT INTO wallet_health_buckets VALUES (3, 3600, 1, 12, 1.1)")
    con.execute("UPDATE history.raw_toy_balances SET valid_to_block = 12 WHERE wallet = 'w7'")
    con.execute("INSERT INTO history.raw_toy_balances VALUES (1, 'm', 'w7', 12, 5, NULL)")
    report = publish(con, db)
    assert report.tables_written == {"main.wallet_health_buckets": "upsert", "history.raw_toy_balances": "upsert"}
    assert report.rows == 4  # two buckets and two versions: only what the run changed
    folder = published_dir(db)
    assert [_rows([folder / f]) for f in _entry(db, "main.wallet_health_buckets")["files"]] == [50, 2]
    assert _read(db, "SELECT count(*), sum(samples) FROM wallet_health_history") == [(51, 52)]
    assert _read(db, "SELECT samples, health_factor FROM wallet_health_history WHERE wallet = 'w3' ORDER BY 1") == [
        (1, 1.1),
        (2, 0.9),
    ]
    assert _read(
        db, "SELECT block_number, balance, valid_to_block FROM history.raw_toy_balances WHERE wallet = 'w7' ORDER BY 1"
    ) == [(10, BIG, 12), (12, 5, None)]
    # Downsampling deletes buckets: the newest versions would keep them, so the table is rewritten whole.
    con.execute("DELETE FROM wallet_health_buckets WHERE key_id = 3 AND bucket_start = 0")
    con.execute("UPDATE wallet_health_buckets SET last_block = 13 WHERE key_id = 4")
    assert publish(con, db).tables_written == {"main.wallet_health_buckets": "rewrite"}
    assert _read(db, "SELECT count(*) FROM wallet_health_history") == [(50,)]
    con.close()


def test_a_bucket_revised_in_several_publishes_reads_as_its_newest_version(tmp_path: Path) -> None:
    """The whole file, then revision files that revise one bucket twice and add one: readers see exactly the table."""
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _buckets(con, 20)
    publish(con, db)
    for block, health in ((11, 1.2), (12, 0.8)):
        con.execute(
            "UPDATE wallet_health_buckets SET samples = samples + 1, last_block = ?, health_factor = ? "
            "WHERE key_id = 5",
            [block, health],
        )
        if block == 12:
            con.execute("INSERT INTO wallet_health_buckets VALUES (5, 3600, 1, 12, 2.0)")
        assert publish(con, db).tables_written == {"main.wallet_health_buckets": "upsert"}
    assert len(_entry(db, "main.wallet_health_buckets")["files"]) == 3
    every = "SELECT * FROM wallet_health_history ORDER BY ALL"
    assert _read(db, every) == con.execute(every).fetchall()
    assert _read(
        db,
        "SELECT samples, last_block, health_factor FROM wallet_health_history WHERE wallet = 'w5' "
        "ORDER BY bucket_start",
    ) == [(3, 12, 0.8), (1, 12, 2.0)]
    con.close()


def test_reader_keeps_its_snapshot_while_the_next_publish_happens(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _events(con, 1, 10)
    con.execute("INSERT INTO wallet_portfolio VALUES ('0xa', 1.0)")
    publish(con, db)
    reader = connect_reader(db)
    assert reader.execute("SELECT count(*) FROM raw_toy_events").fetchall() == [(10,)]
    _events(con, 11, 20)
    con.execute("DELETE FROM wallet_portfolio")
    con.execute("INSERT INTO wallet_portfolio VALUES ('0xa', 2.0), ('0xb', 3.0)")
    publish(con, db)
    # The open reader still sees one consistent snapshot: the old events and the old portfolio together.
    for _ in range(2):
        assert reader.execute("SELECT count(*) FROM raw_toy_events").fetchall() == [(10,)]
        assert reader.execute("SELECT wallet, usd FROM mart_toy").fetchall() == [("0xa", 1.0)]
    reader.close()
    assert _read(db, "SELECT count(*) FROM raw_toy_events") == [(20,)]
    assert _read(db, "SELECT sum(usd) FROM mart_toy") == [(5.0,)]
    con.close()


def _publish_portfolio(con: duckdb.DuckDBPyConnection, db: Path, value: float) -> list[str]:
    """Replaces the portfolio, publishes, and lists the catalogs kept."""
    con.execute("DELETE FROM wallet_portfolio")
    con.execute("INSERT INTO wallet_portfolio VALUES ('0xa', ?)", [value])
    publish(con, db)
    return sorted(p.name for p in published_dir(db).glob("snapshot-*.duckdb"))


def test_pruning_keeps_only_the_current_snapshot_when_nobody_reads(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    con = _db(db)
    for run in range(4):
        catalogs = _publish_portfolio(con, db, float(run))
    folder = published_dir(db)
    assert catalogs == [(folder / POINTER).read_text()] == ["snapshot-00000004.duckdb"]
    assert sorted(p.name for p in folder.glob("snapshot-*")) == ["snapshot-00000004.duckdb", "snapshot-00000004.json"]
    portfolio = list((folder / DATA / "main.wallet_portfolio").iterdir())
    assert len(portfolio) == 1  # the older snapshots' files are gone
    assert _read(db, "SELECT collateral_usd FROM wallet_portfolio") == [(3.0,)]
    con.close()


def _publish_elsewhere(db: Path, value: float) -> list[str]:
    """_publish_portfolio from another process, as `chainrisk watch` publishes while the dashboard reads."""
    code = (
        "import sys, duckdb; from pathlib import Path; from chainrisk.store.published import publish; "
        "db = Path(sys.argv[1]); con = duckdb.connect(str(db)); con.execute('DELETE FROM wallet_portfolio'); "
        "con.execute(\"INSERT INTO wallet_portfolio VALUES ('0xa', ?)\", [float(sys.argv[2])]); publish(con, db)"
    )
    subprocess.run([sys.executable, "-c", code, str(db), str(value)], check=True, timeout=120)
    return sorted(p.name for p in published_dir(db).glob("snapshot-*.duckdb"))


def test_a_snapshot_is_kept_while_a_reader_holds_it_even_if_another_reader_in_its_process_closes(
    tmp_path: Path,
) -> None:
    """The dashboard's threads open and close the same snapshot while another process publishes: one reader closing
    must not release the others' hold. DuckDB's own read lock (fcntl) would be released: closing any descriptor of
    a file drops the process's fcntl locks on it (the soak test's race when the publish relied on it)."""
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _publish_portfolio(con, db, 1.0)
    con.close()
    reader = connect_reader(db)
    assert _console(db, "SELECT collateral_usd AS usd FROM wallet_portfolio") == [1.0]  # opens and closes it
    assert _read(db, "SELECT collateral_usd FROM wallet_portfolio") == [(1.0,)]  # and again
    assert _publish_elsewhere(db, 2.0) == ["snapshot-00000001.duckdb", "snapshot-00000002.duckdb"]
    assert _publish_elsewhere(db, 3.0) == ["snapshot-00000001.duckdb", "snapshot-00000003.duckdb"]
    assert reader.execute("SELECT collateral_usd FROM wallet_portfolio").fetchall() == [(1.0,)]
    reader.close()
    del reader  # the hold ends with the connection object
    assert _publish_elsewhere(db, 4.0) == ["snapshot-00000004.duckdb"]
    assert _read(db, "SELECT collateral_usd FROM wallet_portfolio") == [(4.0,)]


def test_a_snapshot_another_process_opened_itself_is_kept(tmp_path: Path) -> None:
    """An analyst's duckdb shell on the catalog holds DuckDB's own read lock on it: the publish sees it."""
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _publish_portfolio(con, db, 1.0)
    catalog = current_copy(db)
    shell = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print(c.execute('SELECT collateral_usd FROM wallet_portfolio').fetchall(), flush=True); sys.stdin.read()",
            str(catalog),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert shell.stdout is not None and shell.stdout.readline().strip() == "[(1.0,)]"
        assert _publish_portfolio(con, db, 2.0) == ["snapshot-00000001.duckdb", "snapshot-00000002.duckdb"]
    finally:
        shell.communicate("", timeout=30)
    assert _publish_portfolio(con, db, 3.0) == ["snapshot-00000003.duckdb"]
    con.close()


def test_a_reader_that_finds_its_snapshot_pruned_opens_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _publish_portfolio(con, db, 1.0)
    first = current_copy(db)
    _publish_portfolio(con, db, 2.0)
    assert first is not None and not first.exists()
    paths = iter([first])  # the pointer read just before the publish that pruned it
    real = published.reader_path
    monkeypatch.setattr(published, "reader_path", lambda d: next(paths, None) or real(d))
    assert _read(db, "SELECT collateral_usd FROM wallet_portfolio") == [(2.0,)]
    con.close()


def test_many_appends_are_compacted(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _events(con, 1, 1)
    publish(con, db)
    for block in range(2, MAX_FILES + 2):
        _events(con, block, block)
        publish(con, db)
    assert len(_entry(db, "main.raw_toy_events")["files"]) == 1  # the 12 files became one
    assert _read(db, "SELECT count(*), max(block_number) FROM raw_toy_events") == [(MAX_FILES + 1, MAX_FILES + 1)]
    con.close()


def test_many_small_publishes_merge_the_recent_files_not_the_whole_table(tmp_path: Path) -> None:
    """A large first file and small appends and revisions: past MAX_FILES the recent files become one, the first file
    stays as it is (not written again), and readers see exactly the tables."""
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _events(con, 1, 1000)
    _buckets(con, 1000)
    publish(con, db)
    whole = {t: _entry(db, t)["files"][0] for t in ("main.raw_toy_events", "main.wallet_health_buckets")}
    kinds = []
    for block in range(1001, 1001 + MAX_FILES):  # the last of these makes a 13th file
        _events(con, block, block)
        con.execute(
            "UPDATE wallet_health_buckets SET samples = samples + 1, last_block = ? WHERE key_id IN (1, 2)", [block]
        )
        kinds.append(publish(con, db).tables_written)
    assert kinds[-1] == {"main.raw_toy_events": "append+merge", "main.wallet_health_buckets": "upsert+merge"}
    assert all("rewrite" not in k.values() for k in kinds)
    for table, first in whole.items():
        files = _entry(db, table)["files"]
        assert len(files) == 2 and files[0] == first, files
        assert (published_dir(db) / first).is_file()
    for table in ("raw_toy_events", "wallet_health_buckets", "wallet_health_history"):
        every = f"SELECT * FROM {table} ORDER BY ALL"
        assert _read(db, every) == con.execute(every).fetchall(), table
    con.close()


def test_first_publish_after_the_upgrade_replaces_the_old_copies(tmp_path: Path) -> None:
    """A folder an older chainrisk published: full copies and a pointer to one. Readers read the copy until the first
    publish, which writes the new layout and deletes the copies."""
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _events(con, 1, 5)
    con.execute("CHECKPOINT")
    folder = published_dir(db)
    folder.mkdir()
    old = [folder / "1700000000000000000-11.duckdb", folder / "1700000000000000001-12.duckdb"]
    con.close()
    for copy in old:
        copy.write_bytes(db.read_bytes())
    (folder / POINTER).write_text(old[-1].name)
    assert _read(db, "SELECT count(*) FROM raw_toy_events") == [(5,)]
    assert published.published_files(old[-1]) == []
    assert _console(db, "SELECT count(*) AS n FROM raw_toy_events") == [5]  # the console reads the old copy too
    con = duckdb.connect(str(db))
    _events(con, 6, 6)
    publish(con, db)
    assert not any(copy.exists() for copy in old)
    assert (folder / POINTER).read_text() == "snapshot-00000001.duckdb"
    assert _read(db, "SELECT count(*) FROM raw_toy_events") == [(6,)]
    assert _console(db, "SELECT count(*) AS n FROM raw_toy_events") == [6]
    con.close()


def test_integers_beyond_38_digits_stay_exact(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    con = _db(db)
    con.execute("INSERT INTO raw_toy_events VALUES (1, 'm', 1, ?), (1, 'm', 2, ?)", [BIG, -BIG])
    publish(con, db)
    assert _read(db, "SELECT amount FROM raw_toy_events ORDER BY block_number") == [(BIG,), (-BIG,)]
    con.close()


def test_publish_of_a_broken_view_leaves_readers_on_the_previous_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    con = _db(db)
    publish(con, db)
    pointer = (published_dir(db) / POINTER).read_text()
    con.execute("CREATE VIEW mart_broken AS SELECT * FROM raw_toy_events")
    con.execute("DROP TABLE raw_toy_events")  # DuckDB keeps the view; it no longer binds
    with pytest.raises(Exception, match="cannot publish the database's views"):
        publish(con, db)
    assert (published_dir(db) / POINTER).read_text() == pointer
    assert _read(db, "SELECT count(*) FROM raw_toy_events") == [(0,)]
    con.close()


def test_a_latest_table_re_stamped_by_a_new_block_is_not_written_again(tmp_path: Path) -> None:
    """An unchanged chain's next block changes only the stamp of a latest-only table: the snapshot keeps its files
    and the view puts the new stamp on; a real change afterwards rewrites it."""
    db = tmp_path / "c.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE positions (wallet VARCHAR, amount HUGEINT, block_number BIGINT, block_timestamp BIGINT)")
    con.execute("INSERT INTO positions SELECT 'w' || i, i * ?, 10, 1000 FROM range(20) r(i)", [BIG // 100])
    publish(con, db)
    files = _entry(db, "main.positions")["files"]
    con.execute("UPDATE positions SET block_number = 11, block_timestamp = 1012")
    report = publish(con, db)
    assert report.tables_written == {"main.positions": "restamp"} and report.files == 0
    assert _entry(db, "main.positions")["files"] == files
    expected = con.execute("SELECT * FROM positions ORDER BY wallet").fetchall()
    assert _read(db, "SELECT * FROM positions ORDER BY wallet") == expected
    assert expected[0][2:] == (11, 1012)
    con.execute("UPDATE positions SET amount = amount + 1, block_number = 12 WHERE wallet = 'w3'")
    con.execute("UPDATE positions SET block_number = 12")
    assert publish(con, db).tables_written == {"main.positions": "rewrite"}
    assert (
        _read(db, "SELECT * FROM positions ORDER BY wallet")
        == con.execute("SELECT * FROM positions ORDER BY wallet").fetchall()
    )
    con.close()


def test_a_publish_runs_under_its_memory_cap_and_resets_the_writers_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole rewrite streams under PUBLISH_MEMORY_LIMIT (here 64MB, below the table's 2M rows uncompressed), every
    table checked and written under it; the writer's connection gets DuckDB's default limit back."""
    monkeypatch.setattr(published, "PUBLISH_MEMORY_LIMIT", "64MB")
    db = tmp_path / "c.duckdb"
    con = _db(db)
    default = con.execute("SELECT current_setting('memory_limit')").fetchall()
    with duckdb.connect() as other:
        other.execute("SET memory_limit = '64MB'")
        capped = other.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute("INSERT INTO wallet_health_keys SELECT i, 'p', 1, 'm', 'w' || i FROM range(2000) r(i)")
    con.execute(
        "INSERT INTO wallet_health_buckets SELECT i % 2000, i // 2000 * 3600, 1, i, random() FROM range(2000000) r(i)"
    )
    limits: list[str] = []
    publish_table = published._publish_table

    def spy(con: duckdb.DuckDBPyConnection, *args: Any) -> Any:
        limits.append(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        return publish_table(con, *args)

    monkeypatch.setattr(published, "_publish_table", spy)
    report = publish(con, db)
    assert report.tables_written["main.wallet_health_buckets"] == "rewrite"
    assert set(limits) == {capped} and len(limits) == 5
    assert con.execute("SELECT current_setting('memory_limit')").fetchall() == default
    assert _read(db, "SELECT count(*), count(DISTINCT wallet) FROM wallet_health_history") == [(2_000_000, 2000)]
    con.close()


def test_without_flock_snapshots_are_kept_by_count_and_readers_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that refuses flock (some network ones): readers read without a hold, and a publish keeps the
    current and KEEP_PREVIOUS previous snapshots whatever reads them."""
    import errno
    import fcntl

    def refuse(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "no locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    db = tmp_path / "c.duckdb"
    con = _db(db)
    for run in range(published.KEEP_PREVIOUS + 3):
        catalogs = _publish_portfolio(con, db, float(run))
        assert _read(db, "SELECT collateral_usd FROM wallet_portfolio") == [(float(run),)]
    assert len(catalogs) == published.KEEP_PREVIOUS + 1
    con.close()


def _catalog_views(catalog: Path) -> dict[str, str]:
    with duckdb.connect(str(catalog), read_only=True) as con:
        rows = con.execute("SELECT schema_name || '.' || view_name, sql FROM duckdb_views() WHERE NOT internal")
        return {str(name): str(sql) for name, sql in rows.fetchall()}


def _catalog_rows(catalog: Path, views: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(catalog), read_only=True) as con:
        return {v: con.execute(f"SELECT * FROM {v} ORDER BY ALL").fetchall() for v in views}


def test_a_revised_catalog_reads_as_one_made_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish copies the previous catalog's views into a new file and replaces only the views of changed tables
    (dropping those of tables gone); what readers see is what a catalog made whole from the same manifest holds: the
    same views, the same SQL, the same rows, in a file no larger. A change of the writer's own views, or a catalog
    that cannot be copied, makes it whole."""
    revised: list[bool] = []
    revise = published._revise_catalog

    def spy(*args: Any) -> bool:
        revised.append(revise(*args))
        return revised[-1]

    monkeypatch.setattr(published, "_revise_catalog", spy)
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _events(con, 1, 50)
    _buckets(con, 5)
    con.execute("INSERT INTO wallet_portfolio VALUES ('0xa', 1.5), ('0xb', 2.5)")
    con.execute("CREATE TABLE scratch (x INTEGER)")
    con.execute("INSERT INTO history.raw_toy_balances VALUES (1, 'm', '0xa', 10, 5, NULL)")
    publish(con, db)

    def check() -> None:
        catalog = current_copy(db)
        manifest = read_manifest(catalog) if catalog else None
        assert catalog is not None and manifest is not None
        whole = tmp_path / f"whole-{manifest['snapshot']}.duckdb"
        views = published._writer_views(con)
        published._write_catalog(whole, published_dir(db).absolute(), published._tables(con), dict(manifest), views)
        ours, made = _catalog_views(catalog), _catalog_views(whole)
        assert ours.keys() == made.keys()
        # (An EXCLUDE list's order is DuckDB's rendering, which varies: those views are compared by their rows.)
        assert {n: q for n, q in ours.items() if "EXCLUDE" not in q} == {
            n: q for n, q in made.items() if "EXCLUDE" not in q
        }
        names = sorted(_catalog_views(whole))
        assert _catalog_rows(catalog, names) == _catalog_rows(whole, names)
        # One catalog's blocks, not the two a file revised in place keeps (DuckDB writes the catalog anew at each
        # checkpoint before it frees the old one).
        assert catalog.stat().st_size <= whole.stat().st_size
        assert (
            _read(db, "SELECT * FROM mart_toy ORDER BY ALL")
            == con.execute("SELECT * FROM mart_toy ORDER BY ALL").fetchall()
        )

    # Appended events, a rewritten table, revised buckets and raw versions, a new table, a table gone.
    _events(con, 51, 60)
    con.execute("UPDATE wallet_portfolio SET collateral_usd = 9.5 WHERE wallet = '0xa'")
    con.execute("UPDATE wallet_health_buckets SET samples = 2, last_block = 11 WHERE key_id = 3")
    con.execute("UPDATE history.raw_toy_balances SET valid_to_block = 12")
    con.execute("INSERT INTO history.raw_toy_balances VALUES (1, 'm', '0xa', 12, 7, NULL)")
    con.execute("CREATE TABLE positions (wallet VARCHAR, amount HUGEINT)")
    con.execute("INSERT INTO positions VALUES ('0xa', ?)", [BIG])
    con.execute("DROP TABLE scratch")
    publish(con, db)
    assert revised == [True]
    check()
    assert "main.scratch" not in _catalog_views(published_dir(db) / (published_dir(db) / POINTER).read_text())
    # Nothing changed, the writer's file opened anew: the copy, no view replaced. (DuckDB renders an EXCLUDE list in
    # another order from one load of a file to the next: a view chainrisk installed is told by its comment.)
    con.execute("CREATE VIEW mart_toy_wide AS SELECT * EXCLUDE (market, chain_id, block_number) FROM raw_toy_events")
    con.execute("COMMENT ON VIEW mart_toy_wide IS 'digest of what it was made from'")
    publish(con, db)
    con.close()
    con = duckdb.connect(str(db))
    publish(con, db)
    assert revised == [True, False, True]
    check()
    # The writer's views changed: made whole.
    con.execute(
        "CREATE OR REPLACE VIEW mart_toy AS SELECT wallet, max(collateral_usd) AS usd FROM wallet_portfolio GROUP BY 1"
    )
    publish(con, db)
    assert revised == [True, False, True, False]
    check()
    # The current catalog unreadable: made whole, and readers still read.
    current = current_copy(db)
    assert current is not None
    current.write_bytes(b"not a DuckDB file")
    con.execute("INSERT INTO wallet_portfolio VALUES ('0xc', 4.0)")
    publish(con, db)
    assert revised == [True, False, True, False, False]
    check()
    con.close()
