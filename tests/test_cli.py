"""User errors end in one clear line and exit code 2; the same seed builds the same chain."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chainrisk.devnet.build import DevnetOptions, build_devnet
from chainrisk.devnet.node import free_port, stop_process
from chainrisk.devnet.population import plan_wallets
from chainrisk.devnet.prices import parse_start


def _chainrisk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainrisk.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_reader_that_stops_early_is_not_an_error() -> None:
    """`chainrisk ... | head`: the pipe's reader closes before the command writes; the command stops quietly with
    141 (as a shell reports SIGPIPE) instead of printing an error about a path."""
    child = subprocess.Popen(
        [sys.executable, "-m", "chainrisk.cli", "query", "--list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    assert child.wait(timeout=120) == 141
    assert child.stderr.read() == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2031-01-01"], "history does not cover"),
        (["--start", "yesterday"], "is not a date"),
        (["--wallets", "0"], "--wallets must be >= 1"),
        (["--days", "-3"], "argument --days: -3 is out of range; give days above 0"),
    ],
)
def test_devnet_up_rejects_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    done = _chainrisk("devnet", "up", "--state-dir", str(tmp_path), "--port", str(free_port()), *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrisk: error:") and message in lines[0]
    assert not (tmp_path / "manifest.json").exists()


def test_devnet_up_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _chainrisk("devnet", "up", "--state-dir", str(tmp_path), "--port", str(port), "--wallets", "5")
    assert done.returncode == 2
    assert f"port {port} is in use" in done.stderr


def test_devnet_compile_fills_the_cache_the_builder_reads(tmp_path: Path) -> None:
    done = _chainrisk("devnet", "compile", "--protocols", "nope")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "nope" in done.stderr
    done = _chainrisk("devnet", "compile", "--protocols", "aave-v3,morpho-blue,maker")
    assert done.returncode == 0, done.stderr
    assert "compiled (or read from the cache)" in done.stdout and "aave-v3, morpho-blue, maker" in done.stdout
    # What it compiled is what a build then reads: no solcjs runs a second time.
    from chainrisk.devnet import toolchain

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(toolchain, "_run_solcjs", lambda *_: pytest.fail("compiled again"))
        for cached in (toolchain.compiled_contracts, toolchain.standin_contracts):
            cached.cache_clear()
        assert "Vat" in toolchain.standin_contracts("maker") and "Morpho" in toolchain.compiled_contracts()


def test_devnet_down_without_devnet(tmp_path: Path) -> None:
    done = _chainrisk("devnet", "down", "--state-dir", str(tmp_path))
    assert done.returncode == 2
    assert "no devnet manifest" in done.stderr


def test_same_seed_same_chain(tmp_path: Path) -> None:
    def build(seed: int, name: str) -> str:
        options = DevnetOptions(
            wallets=25, days=3, seed=seed, port=free_port(), start=parse_start("2022-05-08"), step_hours=6
        )
        manifest = build_devnet(options, tmp_path / name, detach=False)
        stop_process(int(manifest["pid"]))
        return str(manifest["head_block_hash"])

    first = build(5, "a")
    assert build(5, "b") == first
    assert build(6, "c") != first


def test_plan_is_heavy_tailed_and_mixed() -> None:
    wallets = plan_wallets(2_000, seed=3, morpho_markets=[])
    sizes = sorted((w.size_usd for w in wallets), reverse=True)
    assert sum(sizes[:200]) > 0.4 * sum(sizes), "top 10 % should hold a large share"
    assert sizes[0] > 100 * sizes[len(sizes) // 2]
    kinds = {w.behaviour for w in wallets}
    assert {"aave_supplier", "aave_borrower", "aave_emode_looper", "aave_isolated"} <= kinds
    assert [w.address for w in plan_wallets(50, 3, [])] == [w.address for w in wallets[:50]]


@pytest.mark.parametrize(
    ("argv", "db", "model"),
    [
        (["credit", "--db", "a.duckdb", "history", "--devnet"], "a.duckdb", None),
        (["credit", "history", "--devnet", "--db", "b.duckdb"], "b.duckdb", None),
        (["credit", "history", "--devnet"], None, None),  # history then writes where its config says
        (["credit", "--model", "m.json", "sanity"], None, "m.json"),
        (["credit", "sanity", "--model", "n.json"], None, "n.json"),
    ],
)
def test_credit_options_hold_before_or_after_the_subcommand(argv: list[str], db: str | None, model: str | None) -> None:
    from chainrisk.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.db, args.model, args.horizon_days) == (db, model, 30)
