"""Defects found reviewing the published snapshots (chainrisk.store.published), each reproduced before its fix: a
reader that reads the pointer just before a publish swaps it and prunes the snapshot it named, a catalog this
process opened itself through a symlinked folder, and a cursor of a reader outliving the reader's object."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chainrisk.store import published
from chainrisk.store.db import Store, StoredMarket
from chainrisk.store.history import HistorySettings, record_samples
from chainrisk.store.published import POINTER, connect_reader, current_copy, publish_file, published_dir
from tests.databases import feed_pool
from tests.test_ledger import DAY, NOW, _entry, _published_buckets, _samples, _stored_buckets
from tests.test_published import _console, _db, _publish_elsewhere, _publish_portfolio, _read


def test_a_reader_that_reads_the_pointer_just_before_a_publish_swaps_it_opens_the_new_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader read CURRENT (snapshot 1); before it looked for that catalog, a publish pointed CURRENT at snapshot
    2 and pruned 1. The reader must read snapshot 2, not report that nothing was published."""
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _publish_portfolio(con, db, 1.0)
    first = current_copy(db)
    assert first is not None
    _publish_portfolio(con, db, 2.0)
    assert not first.exists()
    pointer = published_dir(db) / POINTER
    stale = [first.name]  # what the pointer held when the reader read it
    read_text = Path.read_text

    def racing_read(self: Path, *args: Any, **kwargs: Any) -> str:
        if self == pointer and stale:
            return stale.pop()
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", racing_read)
    assert _read(db, "SELECT collateral_usd FROM wallet_portfolio") == [(2.0,)]
    assert not stale
    con.close()


def test_a_catalog_this_process_opened_through_a_symlinked_folder_is_kept(tmp_path: Path) -> None:
    """A catalog this process opened outside open_published is seen by its descriptor (/proc/self/fd names the
    resolved path); the database's folder reached through a symlink must not hide it, or the publish deletes the
    snapshot under the open connection (and closing its own handle drops the connection's DuckDB lock)."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    db = tmp_path / "link" / "c.duckdb"
    con = _db(db)
    _publish_portfolio(con, db, 1.0)
    catalog = current_copy(db)
    assert catalog is not None
    with duckdb.connect(str(catalog), read_only=True) as other:
        assert _publish_portfolio(con, db, 2.0) == ["snapshot-00000001.duckdb", "snapshot-00000002.duckdb"]
        assert other.execute("SELECT collateral_usd FROM wallet_portfolio").fetchall() == [(1.0,)]
    assert _publish_portfolio(con, db, 3.0) == ["snapshot-00000003.duckdb"]
    con.close()


def test_a_cursor_of_a_reader_keeps_the_snapshot_after_the_reader_object_is_gone(tmp_path: Path) -> None:
    """`connect_reader(db).cursor()`: the cursor reads the same DuckDB instance as the connection, which is dropped.
    The hold must last while the cursor reads: once another reader in the process has opened and closed the same
    catalog by its own descriptor (the console attaches it), DuckDB's read lock is gone too, and a publish in another
    process would delete the files the cursor's views read."""
    db = tmp_path / "c.duckdb"
    con = _db(db)
    _publish_portfolio(con, db, 1.0)
    con.close()
    cursor = connect_reader(db).cursor()
    gc.collect()
    assert _console(db, "SELECT collateral_usd AS usd FROM wallet_portfolio") == [1.0]
    assert _publish_elsewhere(db, 2.0) == ["snapshot-00000001.duckdb", "snapshot-00000002.duckdb"]
    assert cursor.execute("SELECT collateral_usd FROM wallet_portfolio").fetchall() == [(1.0,)]
    cursor.close()
    del cursor
    # Held no longer: the next publish prunes it (and a reader opening meanwhile releases the hold too).
    assert _read(db, "SELECT collateral_usd FROM wallet_portfolio") == [(2.0,)]
    assert _publish_elsewhere(db, 3.0) == ["snapshot-00000003.duckdb"]


def _fed(store: Store) -> None:
    """What a rewind of the pool's source needs: its events table, and a position saying it fed the pool."""
    feed_pool(store.con)


def test_two_folds_and_a_rewind_between_publishes_publish_exactly_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked sound in the review (passes on e0d9ba4 too), kept as a regression test: several deletion ranges since
    the previous publish (two days folded, then a reorg rewind whose blocks are sampled again, below the published
    watermark) become one revision file and a tombstone each; more than MAX_RANGES make the table written whole;
    readers see exactly the table each time."""
    path = tmp_path / "r.duckdb"
    settings = HistorySettings(hourly_days=1)
    with Store(path) as store:
        record_samples(store.con, _samples(100, NOW + 7), settings)
    publish_file(path)
    block, when = 100, NOW + 7
    with Store(path) as store:
        for _ in range(3):  # a day later, three times: the first two days folded
            block, when = block + 1, when + DAY
            record_samples(store.con, _samples(block, when), settings)
        _fed(store)
        store.rewind(
            1, [StoredMarket("aave-v3", "0xsource", "raw_test_events", ())], keep_through=block - 1, keep_hash="0x"
        )
        record_samples(store.con, _samples(block, when + 60), settings)  # the dropped block's number sampled again
        record_samples(store.con, _samples(block + 1, when + 120), settings)
        assert int(store.con.execute("SELECT count(*) FROM table_deletions").fetchall()[0][0]) == 3
    entry = _entry(publish_file(path))
    assert entry["how"] == "upsert" and entry["checked_by_ledger"] is True
    assert len(entry["tombstones"]) == 3  # type: ignore[arg-type]
    assert _published_buckets(path) == _stored_buckets(path)
    monkeypatch.setattr(published, "MAX_RANGES", 1)
    with Store(path) as store:
        for _ in range(2):
            block, when = block + 2, when + DAY
            record_samples(store.con, _samples(block, when), settings)
    entry = _entry(publish_file(path))
    assert entry["how"] == "rewrite" and "tombstones" not in entry
    assert _published_buckets(path) == _stored_buckets(path)
