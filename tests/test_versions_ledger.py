"""The raw versions' and snapshot_blocks' ledgers (chainrisk.store.ledger): every writer of history.<raw table>
(record_versions: new, closed, unchanged and re-snapshotted values; rewind_versions) and of snapshot_blocks
(write_snapshot, the reorg rewind) keeps the running count and hash equal to the table's own, and a publish checks a
run's versions by the ledger, reading the previous snapshot's open versions only, falling back to hashing everything
when the ledger or the shortcut cannot be trusted."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl

from chainrisk.store import ledger
from chainrisk.store.db import Store, StoredMarket
from chainrisk.store.published import connect_reader, publish_file, read_manifest

RAW = "raw_test_reserves"
VERSIONS = f"history.{RAW}"
BLOCKS = "main.snapshot_blocks"
DDL = f"""CREATE TABLE IF NOT EXISTS {RAW} (chain_id BIGINT NOT NULL, market VARCHAR NOT NULL, asset VARCHAR NOT NULL,
    block_number BIGINT NOT NULL, block_timestamp BIGINT NOT NULL, liquidity_index HUGEINT NOT NULL,
    rate HUGEINT NOT NULL, note VARCHAR, PRIMARY KEY (chain_id, market, asset, block_number))"""
EVENTS = "CREATE TABLE IF NOT EXISTS raw_test_events (chain_id BIGINT, market VARCHAR, block_number BIGINT)"


def _frame(source: str, block: int, values: dict[str, int]) -> pl.DataFrame:
    """One row per asset of `values` (asset -> a figure the row's amounts derive from), as an adapter's snapshot."""
    assets = sorted(values)
    return pl.DataFrame(
        {
            "chain_id": [1] * len(assets),
            "market": [source] * len(assets),
            "asset": assets,
            "block_number": [block] * len(assets),
            "block_timestamp": [1_700_000_000 + block * 12] * len(assets),
            "liquidity_index": pl.Series([10**27 + values[a] for a in assets], dtype=pl.Int128),
            "rate": pl.Series([values[a] * 10**20 for a in assets], dtype=pl.Int128),
            "note": [None if values[a] % 3 else f"n{values[a]}" for a in assets],
        },
        schema_overrides={"note": pl.String},
    )


def _snapshot(store: Store, source: str, block: int, values: dict[str, int]) -> None:
    store.write_snapshot(
        "aave-v3", 1, source, block, f"0x{block:x}", 1_700_000_000 + block * 12, {RAW: _frame(source, block, values)}
    )


def _truth(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    row = con.execute(ledger.stats_sql(ledger.columns(con, table), table)).fetchall()[0]
    return int(row[0]), int(row[1])


def _kept(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    rows = con.execute("SELECT row_count, content_hash FROM table_ledger WHERE table_name = ?", [table]).fetchall()
    assert len(rows) == 1, table
    return int(rows[0][0]), int(rows[0][1])


def _agree(con: duckdb.DuckDBPyConnection) -> None:
    for table in (VERSIONS, BLOCKS):
        assert _kept(con, table) == _truth(con, table), table


def _market(source: str) -> StoredMarket:
    return StoredMarket("aave-v3", source, "raw_test_events", (RAW,))


def _values(block: int, assets: range, changed: set[int] = frozenset()) -> dict[str, int]:  # type: ignore[assignment]
    return {f"a{i}": i * 1000 + (block if i in changed else 0) for i in assets}


def test_every_versions_writer_keeps_the_ledger_equal_to_the_table(tmp_path: Path) -> None:
    with Store(tmp_path / "v.duckdb") as store:
        store.ensure_tables(DDL)
        store.ensure_tables(EVENTS)
        con = store.con
        _snapshot(store, "0xsource", 100, _values(100, range(10)))
        assert _kept(con, VERSIONS) == _truth(con, VERSIONS) and _truth(con, VERSIONS)[0] == 10
        _snapshot(store, "0xother", 100, _values(100, range(4)))  # another source: its versions apart
        _agree(con)
        # New values close their versions and open new ones; a gone asset is closed; a new one opened.
        _snapshot(store, "0xsource", 101, {**_values(101, range(1, 10), {2, 5}), "a10": 7})
        _agree(con)
        versions = con.execute(f"SELECT count(*), count(valid_to_block) FROM {VERSIONS}").fetchall()[0]
        assert versions == (17, 3)
        # The same block snapshotted again, read differently: its versions dropped, the closed ones reopened, then
        # what this reading changes recorded.
        _snapshot(store, "0xsource", 101, {**_values(101, range(10), {7}), "a11": 9})
        _agree(con)
        assert con.execute(f"SELECT count(*) FROM {VERSIONS} WHERE block_number = 101").fetchall()[0][0] == 2
        # An unchanged snapshot adds nothing, closes nothing.
        before = _kept(con, VERSIONS)
        _snapshot(store, "0xsource", 102, {**_values(101, range(10), {7}), "a11": 9})
        assert _kept(con, VERSIONS) == before == _truth(con, VERSIONS)
        assert _kept(con, BLOCKS) == _truth(con, BLOCKS) and _truth(con, BLOCKS)[0] == 4
        _snapshot(store, "0xsource", 103, _values(103, range(3, 12), {3, 4}))
        _agree(con)
        # A reorg rewind: versions read after block 101 forgotten, those closed after it reopened.
        store.rewind(1, [_market("0xsource")], keep_through=101, keep_hash="0x65")
        _agree(con)
        assert con.execute(f"SELECT count(*) FROM {VERSIONS} WHERE valid_to_block > 101").fetchall()[0][0] == 0
        assert _truth(con, BLOCKS)[0] == 3
        _snapshot(store, "0xsource", 104, _values(104, range(6), {1}))
        _agree(con)


def test_a_store_sets_a_missing_versions_ledger_from_the_table(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    with Store(path) as store:
        store.ensure_tables(DDL)
        _snapshot(store, "0xsource", 100, _values(100, range(10)))
        _snapshot(store, "0xsource", 101, _values(101, range(8), {1}))
        # A file written before these ledgers: no row for either table.
        store.con.execute("DELETE FROM table_ledger WHERE table_name IN (?, ?)", [VERSIONS, BLOCKS])
    with Store(path) as store:
        _agree(store.con)


def _entry(catalog: Path, table: str) -> dict[str, object]:
    manifest = read_manifest(catalog)
    assert manifest is not None
    entry: dict[str, object] = manifest["tables"][table]
    return {**entry, "how": manifest["written"]["tables"].get(table)}


def _same_rows(path: Path) -> None:
    """The published snapshot holds exactly the stored versions and snapshot blocks."""
    with connect_reader(path) as published, duckdb.connect(str(path), read_only=True) as stored:
        for table in (VERSIONS, BLOCKS):
            query = f"SELECT * FROM {table} ORDER BY ALL"
            assert published.execute(query).fetchall() == stored.execute(query).fetchall(), table


def test_a_publish_checks_a_runs_versions_by_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "p.duckdb"
    with Store(path) as store:
        store.ensure_tables(DDL)
        store.ensure_tables(EVENTS)
        _snapshot(store, "0xsource", 100, _values(100, range(20)))
    publish_file(path)
    _same_rows(path)
    for block in range(101, 105):  # runs closing some versions, opening others, dropping and adding assets
        with Store(path) as store:
            _snapshot(store, "0xsource", block, _values(block, range(block - 100, 20 + block - 100), {block % 7, 3}))
        catalog = publish_file(path)
        _same_rows(path)
        versions = _entry(catalog, VERSIONS)
        assert versions["how"] == "upsert" and versions["checked_by_ledger"] is True, versions
        assert _entry(catalog, BLOCKS)["how"] == "append"
    # A version closed by the published watermark, reopened by a rewind, then closed again by a later run: the
    # revision replaces a published row that was closed, not the open one the shortcut takes out. Its figures then
    # disagree with the table's, and the publish checks the view whole (and publishes the table as it is).
    with Store(path) as store:
        store.rewind(1, [_market("0xsource")], keep_through=102, keep_hash="0x66")
        _snapshot(store, "0xsource", 105, _values(105, range(2, 22), {3}))  # a2 (gone at 103) reopened, kept
        _snapshot(store, "0xsource", 106, _values(106, range(3, 22), {3}))  # ... and gone again at 106
    catalog = publish_file(path)
    _same_rows(path)
    assert "checked_by_ledger" not in _entry(catalog, VERSIONS)
    # The next run is checked by the ledger again.
    with Store(path) as store:
        _snapshot(store, "0xsource", 107, _values(107, range(4, 22), {5}))
    catalog = publish_file(path)
    _same_rows(path)
    assert _entry(catalog, VERSIONS)["checked_by_ledger"] is True
    # The same with nothing else changed: a4 only closed at 108 (published), reopened by a rewind that deletes no
    # version, closed again at 109: the table's figures are the published ones with a4's closing block moved, the
    # shortcut's with a4 open taken out instead.
    with Store(path) as store:
        _snapshot(store, "0xsource", 108, _values(107, range(5, 22), {5}))
    publish_file(path)
    with Store(path) as store:
        store.rewind(1, [_market("0xsource")], keep_through=107, keep_hash="0x6b")
        assert store.con.execute(f"SELECT count(*) FROM {VERSIONS} WHERE block_number > 107").fetchall()[0][0] == 0
        _snapshot(store, "0xsource", 109, _values(107, range(5, 22), {5}))
    catalog = publish_file(path)
    _same_rows(path)
    versions = _entry(catalog, VERSIONS)
    assert versions["how"] == "upsert" and "checked_by_ledger" not in versions
    # Two runs between publishes: a6 opened at 110 and closed at 111 replaces no published row.
    with Store(path) as store:
        _snapshot(store, "0xsource", 110, _values(110, range(5, 22), {5, 6}))
        _snapshot(store, "0xsource", 111, _values(111, range(5, 22), {5}))
    catalog = publish_file(path)
    _same_rows(path)
    assert _entry(catalog, VERSIONS)["checked_by_ledger"] is True


def test_a_wrong_versions_ledger_falls_back_to_hashing_the_table(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Store(path) as store:
        store.ensure_tables(DDL)
        _snapshot(store, "0xsource", 100, _values(100, range(20)))
    publish_file(path)
    # A writer that bypassed the ledger: it agrees on the count, not on the hash.
    with Store(path) as store:
        _snapshot(store, "0xsource", 101, _values(101, range(20), {4, 9}))
        store.con.execute(f"UPDATE {VERSIONS} SET note = 'edited' WHERE asset = 'a1'")
        store.con.execute("UPDATE table_ledger SET content_hash = content_hash + 1 WHERE table_name = ?", [VERSIONS])
    catalog = publish_file(path)
    _same_rows(path)
    assert "checked_by_ledger" not in _entry(catalog, VERSIONS)
    manifest = json.loads(catalog.with_suffix(".json").read_text())
    with duckdb.connect(str(path), read_only=True) as con:
        assert int(manifest["tables"][VERSIONS]["hash"]) == _truth(con, VERSIONS)[1]
    # Rows written behind the ledger's back (its count then disagrees): not trusted at all.
    with duckdb.connect(str(path)) as con:
        con.execute(f"DELETE FROM {VERSIONS} WHERE asset = 'a2'")
        assert ledger.read(con, VERSIONS) is None
    catalog = publish_file(path)
    _same_rows(path)
    assert "checked_by_ledger" not in _entry(catalog, VERSIONS)
