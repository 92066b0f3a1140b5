"""`chainrisk watch` while prices move and readers hammer the database, bounded by work done (runs and reads, under a
generous cap): no reader error, no lost snapshot (benchmarks/soak.py runs the same for ten minutes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainrisk.rpc import RpcClient
from tests.soak import soak

#: The work the soak must see done (a time cap only stops a stuck soak).
RUNS, READS, CAP_SECONDS = 4, 200, 900


def test_watch_soak_with_readers(devnet: dict[str, Any], rpc: RpcClient, tmp_path: Path) -> None:
    snapshot = rpc.call("evm_snapshot")
    try:
        report = soak(devnet, tmp_path / "soak", runs=RUNS, reads=READS, cap_seconds=CAP_SECONDS, readers=4, seed=3)
    finally:
        assert rpc.call("evm_revert", [snapshot]) is True
    assert report.watch_exit == 0, (tmp_path / "soak" / "watch.log").read_text()[-2000:]
    assert report.reader_errors == []
    assert report.lost_snapshots == []
    assert report.runs_other == {}
    assert report.seconds < CAP_SECONDS, f"the soak hit its cap before doing its work: {report}"
    assert report.runs_ok >= RUNS and report.price_moves >= 1 and report.snapshots >= 2
    assert report.reads + report.console_reads >= READS and report.console_reads > 0
    assert report.history_blocks >= report.snapshots
