"""One minute of `chainrisk watch` while prices move and readers hammer the database: no reader error, no lost
snapshot (benchmarks/soak.py runs the same for ten minutes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainrisk.rpc import RpcClient
from tests.soak import soak

SOAK_SECONDS = 60


def test_watch_soak_with_readers(devnet: dict[str, Any], rpc: RpcClient, tmp_path: Path) -> None:
    snapshot = rpc.call("evm_snapshot")
    try:
        report = soak(devnet, tmp_path / "soak", SOAK_SECONDS, readers=4, seed=3)
    finally:
        assert rpc.call("evm_revert", [snapshot]) is True
    assert report.watch_exit == 0, (tmp_path / "soak" / "watch.log").read_text()[-2000:]
    assert report.reader_errors == []
    assert report.lost_snapshots == []
    assert report.runs_other == {}
    assert report.price_moves >= 20 and report.runs_ok >= 10 and report.snapshots >= 10
    assert report.reads > 100 and report.console_reads > 20
    assert report.history_blocks >= report.snapshots
