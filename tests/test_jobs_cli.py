"""`chainrisk run|sql|query|export` on the scored devnet database: the lock, exact exports, read-only SQL."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.cli import main
from chainrisk.jobs.lock import lock_path, writer_lock
from chainrisk.jobs.run import parse_interval
from chainrisk.store.published import current_copy
from chainrisk.store.views import list_queries

POOL = "0x" + "11" * 20


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_overlapping_writers_are_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scored_db: Path
) -> None:
    db = tmp_path / "busy.duckdb"
    shutil.copyfile(scored_db, db)
    config = tmp_path / "chainrisk.toml"
    config.write_text(
        f'db = "{db}"\nrpc_url = "http://127.0.0.1:9"\n[[markets]]\nprotocol = "aave-v3"\naddress = "{POOL}"\n'
    )
    before = _digest(db)
    with writer_lock(db, "run"):
        for argv in (["run", "--config", str(config)], ["score", "--db", str(db)], ["index", "--config", str(config)]):
            assert main(argv) == 75
            err = capsys.readouterr().err.strip()
            assert err.startswith("chainrisk: busy: ") and "being written by chainrisk run (pid " in err
            assert "\n" not in err
    assert _digest(db) == before
    # Released: the next run gets the lock (and fails on the unreachable RPC, recording nothing half-done).
    assert main(["run", "--config", str(config)]) == 2
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("failed",)]
        positions = con.execute("SELECT count(*) FROM positions").fetchall()
    with duckdb.connect(str(scored_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM positions").fetchall() == positions
    # Neither the refused commands nor the failed run leave a lock file behind.
    assert not lock_path(db).exists()
    assert main(["index", "--config", str(config)]) == 2
    assert not lock_path(db).exists()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("chainrisk 0.")


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("90", 90), ("0.5s", 0.5)])
def test_watch_intervals(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "-1m", "0", "m"])
def test_bad_watch_intervals_are_refused(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "--devnet", f"--every={text}", "--db", "/nonexistent/x.duckdb"]) == 2
    assert "--every" in capsys.readouterr().err


def test_export_is_exact_partitioned_and_incremental(
    tmp_path: Path, scored_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export"
    assert main(["export", "--db", str(scored_db), "--to", str(out)]) == 0
    assert "export 1: " in capsys.readouterr().out
    assert {p.name for p in (out / "positions").iterdir()} == {"chain_id=31337"}
    assert {p.name for p in (out / "positions" / "chain_id=31337").iterdir()} == {
        "protocol=aave-v3",
        "protocol=morpho-blue",
    }
    with duckdb.connect() as con:
        exported = con.execute(
            "SELECT protocol, sum(collateral_amount), sum(debt_amount), count(*), typeof(any_value(debt_amount)) "
            f"FROM read_parquet('{out}/positions/**/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY 1"
        ).fetchall()
    with duckdb.connect(str(scored_db), read_only=True) as con:
        stored = con.execute(
            "SELECT protocol, sum(collateral_amount), sum(debt_amount), count(*) FROM positions GROUP BY ALL ORDER BY 1"
        ).fetchall()
    assert [row[:4] for row in exported] == [tuple(row) for row in stored]  # exact: DECIMAL(38,0), not DOUBLE
    assert {row[4] for row in exported} == {"DECIMAL(38,0)"}
    files = sorted(out.rglob("*.parquet"))
    # Again with nothing new: nothing added, nothing rewritten (tests/test_export_spark.py exports new snapshots).
    assert main(["export", "--db", str(scored_db), "--out", str(out)]) == 0
    assert "export 2: 0 new rows in 0 tables (0 Parquet files" in capsys.readouterr().out
    assert sorted(out.rglob("*.parquet")) == files
    assert main(["export", "--db", str(scored_db), "--to", str(out), "--overwrite"]) == 0
    assert "export 1: " in capsys.readouterr().out and sorted(out.rglob("*.parquet")) == files


def test_sql_and_query_read_the_published_copy(
    tmp_path: Path, scored_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = current_copy(scored_db)
    assert copy is not None
    before = (_digest(scored_db), _digest(copy))
    assert (
        main(
            [
                "sql",
                "SELECT count(*) AS n, sum(debt_amount) AS debt FROM positions",
                "--db",
                str(scored_db),
                "--format",
                "csv",
            ]
        )
        == 0
    )
    row = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    with duckdb.connect(str(scored_db), read_only=True) as con:
        n, debt = con.execute("SELECT count(*), sum(debt_amount) FROM positions").fetchall()[0]
        summary = pl.DataFrame(con.sql("SELECT * FROM mart_market_summary ORDER BY protocol, market").arrow())
    assert (int(row["n"]), int(row["debt"])) == (n, int(debt))  # exact through CSV
    # A list column (stg_wallet_portfolio's protocols) goes into CSV as JSON text.
    assert main(["query", "stg_wallet_portfolio", "--db", str(scored_db), "--format", "csv"]) == 0
    portfolio = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    with duckdb.connect(str(scored_db), read_only=True) as con:
        protocols = con.execute("SELECT wallet, protocols FROM stg_wallet_portfolio").fetchall()
    assert {(r["wallet"], tuple(json.loads(r["protocols"]))) for r in portfolio} == {
        (w, tuple(p)) for w, p in protocols
    }

    for hostile in (
        "DROP TABLE positions",
        "INSERT INTO runs VALUES (9, now(), NULL, 'x', 0, 0, 0, 0, 0, '')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "ATTACH '/tmp/x.duckdb'",
    ):
        assert main(["sql", hostile, "--db", str(scored_db)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("chainrisk: error: ") and "\n" not in err

    assert main(["query", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(q.name in listed for q in list_queries())
    parquet = tmp_path / "summary.parquet"
    assert (
        main(["query", "mart_market_summary", "--db", str(scored_db), "--format", "parquet", "--out", str(parquet)])
        == 0
    )
    assert_frame_equal(pl.read_parquet(parquet).sort("protocol", "market"), summary)
    assert main(["query", "mart_nope", "--db", str(scored_db)]) == 2
    assert "unknown query 'mart_nope'; known: " in capsys.readouterr().err
    assert (_digest(scored_db), _digest(copy)) == before


@pytest.mark.parametrize(
    ("args", "env", "niceness"),
    [
        (["score", "--db", "/nonexistent/c.duckdb"], {}, 10),
        (["run", "--db", "/nonexistent/c.duckdb"], {"CHAINRISK_NICE": "5"}, 5),
        (["sql", "--db", "/nonexistent/c.duckdb", "SELECT 1"], {}, None),
        (["score", "--db", "/nonexistent/c.duckdb"], {"CHAINRISK_NICE": "0"}, None),
    ],
)
def test_the_command_runs_writers_below_readers(args: list[str], env: dict[str, str], niceness: int | None) -> None:
    """The `chainrisk` command (cli.console) lowers a writer's CPU priority by CHAINRISK_NICE (default 10) before it
    runs, never a reader's; os.nice is recorded instead of applied."""
    probe = (
        "import os, sys; from chainrisk import cli; os.nice = lambda n: print(f'nice {n}', flush=True) or 0; "
        f"sys.argv = ['chainrisk', *{args!r}]; cli.console()"
    )
    environment = {k: v for k, v in os.environ.items() if k != "CHAINRISK_NICE"} | env
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == 2, done.stderr  # every command fails on the missing database, after the niceness
    assert done.stdout.splitlines()[:1] == ([f"nice {niceness}"] if niceness else [])
