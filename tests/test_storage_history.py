"""History stored by change (schema 9), on the session devnet: a run on an unchanged chain adds almost nothing, a past
snapshot's positions come back exactly from the raw tables' versions (Aave V3 and Morpho Blue), and every score
lands in the bucketed health history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.config import devnet_config
from chainrisk.jobs.index import rebuild_positions
from chainrisk.jobs.run import run_once
from chainrisk.protocols.adapter import adapters
from chainrisk.rpc import RpcClient
from chainrisk.store.db import Store
from chainrisk.store.versions import key_columns
from chainrisk.store.views import query_sql

ORDER = ["protocol", "chain_id", "market", "wallet", "asset"]


def _positions(db: Path) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        frame = pl.from_arrow(con.sql("SELECT * FROM positions").to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _raw_tables() -> list[str]:
    """Every adapter's raw snapshot tables that keep versions (not events, not predictions)."""
    return [
        table
        for adapter in adapters().values()
        for table in adapter.tables()
        if table != adapter.events_table and table not in adapter.latest_only_tables
    ]


def _raw(db: Path) -> dict[str, pl.DataFrame]:
    """The latest raw tables, each row at its source's snapshot block (sync_state), as the staging views give them: a
    table no snapshot has changed since keeps the block it was written at (Store._replace_rows)."""
    with duckdb.connect(str(db), read_only=True) as con:
        frames = {
            t: pl.from_arrow(
                con.sql(
                    f"SELECT r.* REPLACE (coalesce(s.snapshot_block, r.block_number) AS block_number) FROM {t} AS r "
                    "LEFT JOIN sync_state AS s ON s.chain_id = r.chain_id AND s.market = r.market "
                    "AND r.block_number <= s.snapshot_block"
                ).to_arrow_table()
            )
            for t in _raw_tables()
        }
    return {t: f for t, f in frames.items() if isinstance(f, pl.DataFrame)}


def _versioned(db: Path) -> list[str]:
    return [r[0] for r in _rows(db, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'history'")]


def _same(rebuilt: pl.DataFrame, stored: pl.DataFrame) -> None:
    """Equal rows; columns the adapter leaves out are NULL in the table (another protocol's columns)."""
    assert rebuilt.height == stored.height > 0
    columns = [c for c in stored.columns if c in rebuilt.columns]
    assert all(stored[c].null_count() == stored.height for c in stored.columns if c not in columns)
    assert_frame_equal(rebuilt.select(columns).sort(ORDER), stored.select(columns).sort(ORDER), check_dtypes=False)


def run_twice(devnet: dict[str, Any], rpc: RpcClient, db: Path) -> dict[str, Any]:
    """Two runs into `db` an hour of chain time apart (interest accrues, nothing else moves), the positions and raw
    tables each wrote and the versions after the first; the devnet put back afterwards."""
    config = devnet_config(devnet, db)
    snapshot = rpc.call("evm_snapshot")
    try:
        first = run_once(config, devnet["rpc_url"])
        written = {first.indexed[0].to_block: _positions(db)}
        raw = {first.indexed[0].to_block: _raw(db)}
        versions = _rows(db, "SELECT count(*) FROM history.raw_aave_v3_balances")[0][0]
        counts = {t: _rows(db, f"SELECT count(*) FROM history.{t}")[0][0] for t in _versioned(db)}
        rpc.call("evm_increaseTime", [3600])
        rpc.call("evm_mine")
        second = run_once(config, devnet["rpc_url"])
        written[second.indexed[0].to_block] = _positions(db)
        raw[second.indexed[0].to_block] = _raw(db)
    finally:
        assert rpc.call("evm_revert", [snapshot]) is True
    assert first.status == second.status == "ok"
    sources = {r.protocol: r.market for r in first.indexed}
    return {
        "db": db,
        "written": written,
        "raw": raw,
        "indexed": [(r.protocol, r.market) for r in first.indexed],
        "sources": sources,
        "balances_after_first": versions,
        "versions_after_first": counts,
    }


def versions_added(runs: dict[str, Any]) -> dict[str, int]:
    """The raw tables the second run added versions to, and how many."""
    after = {t: _rows(runs["db"], f"SELECT count(*) FROM history.{t}")[0][0] for t in runs["versions_after_first"]}
    return {t: n - runs["versions_after_first"][t] for t, n in after.items() if n != runs["versions_after_first"][t]}


def check_raw_as_of(runs: dict[str, Any]) -> int:
    """raw_as_of gives each snapshot's raw rows of every indexed source as that snapshot wrote them (the latest tables
    read right after each run); returns the (table, source, block) compared."""
    compared = 0
    with Store(runs["db"], read_only=True) as store:
        for block, tables in runs["raw"].items():
            for table, latest in tables.items():
                keys = key_columns(store.con, table)
                for protocol, source in runs["indexed"]:
                    if not table.startswith(f"raw_{protocol.replace('-', '_')}_"):
                        continue
                    expected = latest.filter(pl.col("market") == source)
                    if expected.height:
                        got = store.raw_as_of(table, 31337, source, block)
                        assert_frame_equal(got.sort(keys), expected.sort(keys), check_dtypes=False)
                        compared += 1
    return compared


@pytest.fixture(scope="module")
def two_runs(devnet: dict[str, Any], rpc: RpcClient, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_twice(devnet, rpc, tmp_path_factory.mktemp("history") / "chainrisk.duckdb")


@pytest.mark.parametrize("protocol", ["aave-v3", "morpho-blue"])
def test_a_past_snapshot_is_rebuilt_exactly(two_runs: dict[str, Any], protocol: str) -> None:
    db, source = two_runs["db"], two_runs["sources"][protocol]
    for block, positions in two_runs["written"].items():
        stored = positions.filter(pl.col("protocol") == protocol)
        _same(rebuild_positions(db, protocol, 31337, source, block), stored)
    first, second = sorted(two_runs["written"])
    assert _positions(db)["block_number"].unique().to_list() == [second], "positions keep the latest snapshot"
    if protocol == "aave-v3":  # interest moved every balance: the rebuilt past differs from the present
        old, new = (two_runs["written"][b].filter(pl.col("protocol") == protocol) for b in (first, second))
        assert old.sort(ORDER)["supplied_amount"].to_list() != new.sort(ORDER)["supplied_amount"].to_list()


def test_an_unchanged_chain_adds_no_raw_version(two_runs: dict[str, Any]) -> None:
    """An hour of interest moves Aave's normalized indexes and Morpho's accrued totals: neither opens a version (the
    full devnet's Comet and Maker: tests/test_devnet_all.py)."""
    db = two_runs["db"]
    balances = _rows(db, "SELECT count(*), count(valid_to_block) FROM history.raw_aave_v3_balances")[0]
    assert balances == (two_runs["balances_after_first"], 0), "scaled balances do not change with time"
    assert versions_added(two_runs) == {}
    first, second = sorted(two_runs["written"])
    moved = two_runs["raw"][second]["raw_aave_v3_reserves"]["normalized_variable_debt"].to_list()
    assert moved != two_runs["raw"][first]["raw_aave_v3_reserves"]["normalized_variable_debt"].to_list()


def test_every_raw_table_comes_back_exactly_as_of_each_snapshot(two_runs: dict[str, Any]) -> None:
    """The accrued columns of versions read an hour earlier come back recomputed for the later block, equal to what
    the chain answered then."""
    assert check_raw_as_of(two_runs) >= 2 * 6


def test_a_raw_table_the_snapshot_leaves_unchanged_is_not_written_again(two_runs: dict[str, Any]) -> None:
    """An hour later Morpho's positions (shares and collateral) are what they were: the table is not written again,
    its rows keep the first snapshot's block, and the staging view gives them at the second (sync_state's); the
    markets, whose accrued totals moved, are rewritten at the second."""
    db, source = two_runs["db"], two_runs["sources"]["morpho-blue"]
    first, second = sorted(two_runs["written"])
    assert _rows(db, "SELECT DISTINCT block_number FROM raw_morpho_blue_positions") == [(first,)]
    assert _rows(db, "SELECT DISTINCT block_number FROM raw_morpho_blue_markets") == [(second,)]
    assert _rows(db, f"SELECT snapshot_block FROM sync_state WHERE market = '{source}'") == [(second,)]
    with duckdb.connect(str(db), read_only=True) as con:
        staged = con.sql(
            f"SELECT DISTINCT block_number, is_latest FROM ({query_sql('stg_morpho_blue_positions')})"
        ).fetchall()
    assert staged == [(second, True)]


def test_every_score_is_a_sample_of_the_health_history(two_runs: dict[str, Any]) -> None:
    db = two_runs["db"]
    first, second = sorted(two_runs["written"])
    wallets = _rows(db, "SELECT count(*) FROM wallet_risk")[0][0]
    samples = _rows(
        db, "SELECT sum(samples), count(*) FILTER (last_block = " + str(second) + ") FROM wallet_health_history"
    )[0]
    assert samples[1] == wallets, "every scored wallet's newest bucket ends at the latest score"
    assert samples[0] == 2 * wallets, "both runs sampled every wallet"
    spans = _rows(db, "SELECT min(first_block), max(last_block) FROM wallet_health_history")[0]
    assert spans == (first, second)


def test_a_run_kept_in_one_instance_stores_what_separate_opens_store(
    devnet: dict[str, Any], rpc: RpcClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same two runs (the second after an empty block) on one chain state, with the run's jobs sharing one DuckDB
    instance (keep_open, what `chainrisk run` does) and with each job opening the file again (before): the unchanged
    run's rewrite takes fewer metadata blocks (here 6 against 9) and no more blocks in all (on this small devnet the
    free blocks make up the difference; benchmarks/storage.py measures the 300-wallet one), with the same figures."""
    import contextlib

    import chainrisk.jobs.run as run_module

    figures: dict[str, list[tuple[Any, ...]]] = {}
    for mode in ("kept", "apart"):
        db = tmp_path / f"{mode}.duckdb"
        config = devnet_config(devnet, db)
        if mode == "apart":
            monkeypatch.setattr(run_module, "keep_open", lambda _path: contextlib.nullcontext())
        snapshot = rpc.call("evm_snapshot")
        try:
            assert run_once(config, devnet["rpc_url"]).status == "ok"
            # The empty block at the same time in both modes: interest accrues by the second.
            head = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
            rpc.call("evm_mine", [head + 60])
            assert run_once(config, devnet["rpc_url"]).status == "ok"
        finally:
            assert rpc.call("evm_revert", [snapshot]) is True
        figures[mode] = _rows(
            db, "SELECT protocol, market, wallet, health_factor FROM wallet_risk ORDER BY protocol, market, wallet"
        )
    assert figures["kept"] == figures["apart"]
