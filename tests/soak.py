"""Soak harness: `chainrisk watch` on a devnet whose prices keep moving, while readers hammer the database.

Shared by tests/test_soak.py (one minute in CI) and benchmarks/soak.py (ten minutes). It counts reader errors and
lost snapshots: a run that reports `ok` at a block whose scores are not in the database afterwards.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from chainrisk.abi import Abi
from chainrisk.devnet.node import DEPLOYER
from chainrisk.devnet.toolchain import compiled_contracts
from chainrisk.errors import UserError
from chainrisk.rpc import RpcClient
from chainrisk.store.console import ConsoleLimits, run_console_query
from chainrisk.store.published import connect_reader
from tests.configs import devnet_toml

FEED = Abi(compiled_contracts()["SettableFeed"].abi)
#: What readers ask, round-robin: the dashboard's views, a history scan and a raw table.
READER_QUERIES = (
    "SELECT count(*), sum(debt_usd) FROM mart_market_summary",
    "SELECT count(*), min(health_factor) FROM mart_wallet_health_history",
    "SELECT bucket, wallets FROM mart_health_buckets",
    "SELECT count(*) FROM positions",
)


@dataclass
class SoakReport:
    seconds: float = 0.0
    readers: int = 0
    reads: int = 0  #: successful reader queries
    console_reads: int = 0  #: successful SQL-console queries
    reader_errors: list[str] = field(default_factory=list)
    waits_before_first_publish: int = 0  #: reads answered "nothing published yet" (not errors)
    price_moves: int = 0
    runs_ok: int = 0
    runs_other: dict[str, int] = field(default_factory=dict)
    snapshots: int = 0  #: distinct blocks scored by ok runs
    lost_snapshots: list[int] = field(default_factory=list)  #: blocks an ok run scored but the database lacks
    history_blocks: int = 0  #: distinct blocks in wallet_risk
    watch_exit: int | None = None

    def as_dict(self) -> dict[str, Any]:
        report = asdict(self)
        report["reader_errors"] = self.reader_errors[:20]
        return report


def _config(devnet: dict[str, Any], db: Path) -> Path:
    path = db.with_name("chainrisk.toml")
    path.write_text(devnet_toml(devnet, db))
    return path


def _move_price(rpc: RpcClient, devnet: dict[str, Any], rng: random.Random) -> None:
    """One block: a random feed moves by up to ±3 %, five minutes after the head (interest accrues a little)."""
    symbol = rng.choice(sorted(devnet["feeds"]))  # base feeds: a wrapped asset's feed follows its base's
    feed = devnet["feeds"][symbol]
    answer = int(rpc.call("eth_call", [{"to": feed, "data": FEED.encode("latestAnswer")}, "latest"]), 16)
    moved = max(1, answer * rng.randint(9_700, 10_300) // 10_000)
    head = rpc.call("eth_getBlockByNumber", ["latest", False])
    nonce = int(rpc.call("eth_getTransactionCount", [DEPLOYER, "pending"]), 16)
    tx = {"from": DEPLOYER, "to": feed, "data": FEED.encode("setAnswer", moved), "gas": hex(200_000)}
    rpc.call("eth_sendTransaction", [{**tx, "gasPrice": "0x0", "nonce": hex(nonce)}])
    rpc.call("evm_mine", [int(head["timestamp"], 16) + 300])


def soak(
    devnet: dict[str, Any],
    folder: Path,
    seconds: float | None = None,
    *,
    runs: int | None = None,
    reads: int = 0,
    cap_seconds: float = 900,
    readers: int = 4,
    seed: int = 1,
) -> SoakReport:
    """Moves prices while `chainrisk watch` runs and readers read: for `seconds` (the benchmark's fixed duration), or
    until the work asked for is done (`runs` successful runs and `reads` reads of every kind; tests bound the soak by
    work, never by what fits in a window), stopping at `cap_seconds` whatever happened. The caller restores the
    chain (evm_snapshot/evm_revert) if it must."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "soak.duckdb"
    config = _config(devnet, db)
    report = SoakReport(readers=readers)
    lock = threading.Lock()
    stop = threading.Event()
    log = (folder / "watch.log").open("wb")
    watch = subprocess.Popen(
        [sys.executable, "-m", "chainrisk.cli", "watch", "--config", str(config), "--every", "1s"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )

    def read(index: int) -> None:
        n = index
        while not stop.is_set():
            sql = READER_QUERIES[n % len(READER_QUERIES)]
            n += 1
            try:
                if index == 0:  # one reader goes through the SQL console, as an analyst would
                    run_console_query(db, sql, ConsoleLimits(timeout_s=30))
                    key = "console_reads"
                else:
                    with connect_reader(db) as con:
                        con.execute(sql).fetchall()
                    key = "reads"
                with lock:
                    setattr(report, key, getattr(report, key) + 1)
            except UserError as exc:
                with lock:
                    if "nothing published" in str(exc) or "no database at" in str(exc):
                        report.waits_before_first_publish += 1
                    else:
                        report.reader_errors.append(str(exc))
                time.sleep(0.05)
            except Exception as exc:  # every other failure is a reader error the soak must report
                with lock:
                    report.reader_errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(readers)]
    for thread in threads:
        thread.start()
    rng = random.Random(seed)
    started = time.monotonic()
    try:
        with RpcClient(devnet["rpc_url"]) as rpc:

            def working() -> bool:
                elapsed = time.monotonic() - started
                if elapsed >= cap_seconds:
                    return False
                if seconds is not None:
                    return elapsed < seconds
                with lock:
                    done_reading = report.reads + report.console_reads >= reads
                return not (done_reading and _ok_runs(db) >= (runs or 0))

            while working():
                _move_price(rpc, devnet, rng)
                report.price_moves += 1
                time.sleep(rng.uniform(0.5, 2.5))
        # Let one full run see the last move before stopping.
        settle_from = _ok_runs(db)
        deadline = time.monotonic() + 120
        while _ok_runs(db) < settle_from + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        watch.send_signal(signal.SIGTERM)
        report.watch_exit = watch.wait(timeout=180)
        for thread in threads:
            thread.join(timeout=30)
    report.seconds = round(time.monotonic() - started, 1)
    _check_snapshots(db, report)
    return report


def _ok_runs(db: Path) -> int:
    try:
        with connect_reader(db) as con:
            return int(con.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchall()[0][0])
    except UserError:
        return 0


def _check_snapshots(db: Path, report: SoakReport) -> None:
    """Every (market, block) an ok run says it indexed must be a stored snapshot (snapshot_blocks, which any block
    can be rebuilt from) that the health history has scored (at or before the last block its buckets hold)."""
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute("SELECT status, summary FROM runs ORDER BY run_id").fetchall()
        scored = {
            (str(m), int(b))
            for m, b in con.execute(
                "SELECT s.source, s.block_number FROM snapshot_blocks s WHERE s.block_number <= "
                "(SELECT max(last_block) FROM wallet_health_history h WHERE h.protocol = s.protocol "
                "AND h.chain_id = s.chain_id)"
            ).fetchall()
        }
        report.history_blocks = int(
            con.execute("SELECT count(DISTINCT block_number) FROM snapshot_blocks").fetchall()[0][0]
        )
    snapshots: set[tuple[str, int]] = set()
    for status, summary in runs:
        if status != "ok":
            report.runs_other[status] = report.runs_other.get(status, 0) + 1
            continue
        report.runs_ok += 1
        for indexed in json.loads(summary)["indexed"]:
            if indexed["wallets_with_debt"] > 0:
                snapshots.add((str(indexed["market"]), int(indexed["to_block"])))
    report.snapshots = len({block for _, block in snapshots})
    report.lost_snapshots = sorted({block for market, block in snapshots if (market, block) not in scored})
