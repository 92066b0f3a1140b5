"""One DuckDB instance kept open through a run (chainrisk.store.db.keep_open): the jobs' Stores share it and see each
other's commits, nothing is opened before a job opens the file, and the instance is closed after the block (what it
saves in the file is tested on the devnet's runs, tests/test_storage_history.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from chainrisk.errors import UserError
from chainrisk.store.db import Store, keep_open


def test_stores_inside_share_the_instance_and_see_each_others_commits(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    with keep_open(path):
        assert not path.exists()  # nothing opened before a job opens the file itself
        with Store(path) as store:
            store.con.execute("CREATE TABLE seen (x INTEGER)")
            store.con.execute("INSERT INTO seen VALUES (1)")
        with pytest.raises(duckdb.ConnectionException):  # the instance is still open, read-write, after the Store
            duckdb.connect(str(path), read_only=True)
        with Store(path, read_only=True) as reader:  # a reader of the same process: a cursor of the kept instance
            assert reader.query("SELECT x FROM seen")["x"].to_list() == [1]
        with Store(path) as store, pytest.raises(duckdb.Error):
            store.con.execute("INSERT INTO seen VALUES ('not a number')")
        with Store(path) as store:
            assert store.query("SELECT count(*) AS n FROM seen")["n"][0] == 1
    assert not path.with_name(path.name + ".wal").exists()  # every commit checkpointed, the instance closed
    with Store(path, read_only=True) as reader:
        assert reader.query("SELECT x FROM seen").equals(pl.DataFrame({"x": [1]}, schema={"x": pl.Int32}))


def test_a_block_whose_first_open_is_refused_leaves_nothing_kept(tmp_path: Path) -> None:
    path = tmp_path / "not-a-database.duckdb"
    path.write_text("this is not a DuckDB file\n")
    with keep_open(path), pytest.raises(UserError, match=r"not a chainrisk DuckDB file|cannot open"):
        Store(path)
    assert path.read_text() == "this is not a DuckDB file\n"


def test_an_error_inside_a_transaction_is_the_error_raised_and_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    with keep_open(path):
        with Store(path) as store:
            store.con.execute("CREATE TABLE seen (x INTEGER)")
        with pytest.raises(ZeroDivisionError), Store(path) as store:
            store.con.execute("BEGIN")
            store.con.execute("INSERT INTO seen VALUES (2)")
            raise ZeroDivisionError  # left with its transaction open: closing must not raise in its place
        with Store(path) as store:
            assert store.query("SELECT count(*) AS n FROM seen")["n"][0] == 0
