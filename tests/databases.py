"""Copies of the session databases that tests change, and the session database with every risk model run on it
(shared by the AppTest risk pages and the browser test through the `risk_db` session fixture)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from chainrisk.cli import main

#: The risk models run on a copy of the session database, as a user would. Cascade runs twice: the page must show
#: the latest run of a kind, not the first.
RISK_COMMANDS = (
    ["cascade", "--shock", "WETH=-10%"],
    ["stress", "--window", "ftx-2022", "--window", "luna-2022", "--step-hours", "24"],
    [
        "var",
        "--scenarios",
        "2000",
        "--horizons",
        "24",
        "--backtest",
        "2022-11-01..2022-11-30",
        "--backtest-scenarios",
        "200",
    ],
    ["optimise", "--below", "1.2"],
    ["cascade", "--shock", "WETH=-30%"],
)


def copy_of(db: Path, folder: Path) -> Path:
    """A private copy of what readers see (the session file stays untouched); `publish` it after changing it."""
    copy = folder / "copy.duckdb"
    shutil.copyfile(db, copy)  # no job is writing the session file: what readers see
    return copy


def with_risk_runs(db: Path, folder: Path) -> Path:
    """A copy of what readers of `db` see, with every risk model run on it through the command line (published)."""
    copy = copy_of(db, folder)
    for kind, *options in RISK_COMMANDS:
        assert main(["risk", kind, "--db", str(copy), *options]) == 0, [kind, *options]
    return copy


def feed_pool(con: duckdb.DuckDBPyConnection) -> None:
    """What a reorg rewind of the source `0xsource` needs to reach the market `0xpool`'s health history (chain 1,
    aave-v3): its events table `raw_test_events`, and a position saying the source fed the pool."""
    con.execute("CREATE TABLE IF NOT EXISTS raw_test_events (chain_id BIGINT, market VARCHAR, block_number BIGINT)")
    con.execute(
        "INSERT INTO positions BY NAME SELECT 'aave-v3' AS protocol, 1 AS chain_id, '0xpool' AS market, "
        "'0xsource' AS source, '0xw' AS wallet, '0xasset' AS asset, 1 AS block_number, 1 AS block_timestamp, "
        "0 AS supplied_amount, 0 AS collateral_amount, 0 AS debt_amount, false AS used_as_collateral, "
        "false AS is_borrowing, 1 AS price, 0 AS ltv_bps, 0 AS liquidation_threshold_bps, "
        "0 AS liquidation_bonus_bps, 0 AS emode_category"
    )
