"""The Aave V3 indexer against the devnet: exact to getUserAccountData, complete, incremental, crash-safe."""

from __future__ import annotations

import http.server
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chainrisk.abi import eth_call, load_abi
from chainrisk.devnet.build import DevnetOptions, build_devnet
from chainrisk.devnet.extras import BASE_PROTOCOLS
from chainrisk.devnet.node import DEPLOYER, BlockBuilder, free_port, stop_process
from chainrisk.devnet.prices import parse_start
from chainrisk.jobs import index as index_job
from chainrisk.jobs.index import index_aave_v3
from chainrisk.protocols.aave_v3 import adapter as aave_adapter
from chainrisk.protocols.aave_v3.snapshot import read_accounts
from chainrisk.rpc import RpcClient
from chainrisk.rpc.logs import iter_log_ranges
from tests.chainops import (
    assert_rate_curves_equal_the_strategies,
    assert_reserve_totals_equal_the_chain,
    assert_supply_cap_headroom_is_exact,
    sandbox,
)

POOL = load_abi("aave-v3", "IPool")
ERC20 = load_abi("erc20", "IERC20Detailed")
MAX_UINT = 2**256 - 1
TABLES = (
    "sync_state",
    "raw_aave_v3_events",
    "raw_aave_v3_reserves",
    "raw_aave_v3_emode_categories",
    "raw_aave_v3_accounts",
    "raw_aave_v3_balances",
    "positions",
    "wallet_health",
)


@pytest.fixture(scope="module")
def indexed(devnet: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    db = tmp_path_factory.mktemp("index") / "chainrisk.duckdb"
    report = index_aave_v3(devnet["rpc_url"], devnet["aave_v3"]["pool_addresses_provider"], db)
    assert report.to_block == devnet["head_block"]
    return db, devnet


def _rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_health_equals_get_user_account_data_for_every_wallet(
    indexed: tuple[Path, dict[str, Any]], rpc: RpcClient
) -> None:
    db, devnet = indexed
    rows = _rows(
        db,
        "SELECT wallet, block_number, total_collateral_base, total_debt_base, available_borrows_base, "
        "liquidation_threshold_bps, ltv_bps, health_factor_wad, health_factor, emode_category FROM wallet_health",
    )
    pool = devnet["aave_v3"]["pool"]
    raw = rpc.batch([eth_call(pool, POOL, "getUserAccountData", r[0], block=hex(r[1])) for r in rows])
    with_debt = emode = 0
    for row, item in zip(rows, raw, strict=True):
        chain = POOL.decode("getUserAccountData", item)
        ours_wad = MAX_UINT if row[7] is None else int(row[7])
        assert (int(row[2]), int(row[3]), int(row[4]), row[5], row[6], ours_wad) == chain, row[0]
        if chain[1]:
            with_debt += 1
            emode += row[9] != 0
            assert row[8] == pytest.approx(chain[5] / 1e18, rel=1e-12)
        else:
            assert row[8] is None and row[7] is None
    assert with_debt >= 40 and emode >= 3
    # Isolation-mode and liquidated wallets are among those checked.
    isolated = _rows(
        db,
        "SELECT DISTINCT p.wallet FROM positions p JOIN wallet_health h USING (wallet, block_number) "
        "WHERE p.symbol = 'LINK' AND p.used_as_collateral AND h.debt_usd > 0",
    )
    liquidated = _rows(db, "SELECT DISTINCT wallet FROM raw_aave_v3_events WHERE event = 'LiquidationCall'")
    assert isolated and liquidated


def test_every_wallet_that_touched_the_pool_is_indexed(indexed: tuple[Path, dict[str, Any]], rpc: RpcClient) -> None:
    db, devnet = indexed
    stored = {r[0] for r in _rows(db, "SELECT wallet FROM wallet_health")}
    pool = devnet["aave_v3"]["pool"]
    configs = rpc.batch([eth_call(pool, POOL, "getUserConfiguration", w) for w in devnet["wallets"]])
    touched = {
        w for w, c in zip(devnet["wallets"], configs, strict=True) if POOL.decode("getUserConfiguration", c)[0][0]
    }
    for reserve in devnet["aave_v3"]["reserves"].values():
        balances = rpc.batch([eth_call(reserve["a_token"], ERC20, "balanceOf", w) for w in devnet["wallets"]])
        touched |= {w for w, b in zip(devnet["wallets"], balances, strict=True) if ERC20.decode("balanceOf", b)[0]}
    assert touched and touched <= stored
    assert devnet["keeper"] in stored  # the liquidator called the pool


def test_position_amounts_equal_token_balances(indexed: tuple[Path, dict[str, Any]], rpc: RpcClient) -> None:
    db, devnet = indexed
    rows = _rows(db, "SELECT wallet, asset, block_number, supplied_amount, debt_amount FROM positions")
    by_asset = {r["asset"]: r for r in devnet["aave_v3"]["reserves"].values()}
    calls = []
    for wallet, asset, block, _, _ in rows:
        for token in ("a_token", "variable_debt_token", "stable_debt_token"):
            calls.append(eth_call(by_asset[asset][token], ERC20, "balanceOf", wallet, block=hex(block)))
    balances = [ERC20.decode("balanceOf", r)[0] for r in rpc.batch(calls)]
    for i, (wallet, asset, _, supplied, debt) in enumerate(rows):
        a_balance, variable, stable = balances[3 * i : 3 * i + 3]
        assert (int(supplied), int(debt)) == (a_balance, variable + stable), (wallet, asset)
    assert len(rows) > 100


def test_reserve_totals_equal_the_tokens_total_supply(indexed: tuple[Path, dict[str, Any]], rpc: RpcClient) -> None:
    """Each reserve's total supplied and borrowed, worked out from its tokens' scaled supplies and the indexes at the
    block, equal what the aToken and the debt tokens answer for totalSupply() there."""
    db, _ = indexed
    assert assert_reserve_totals_equal_the_chain(rpc, db) >= 3


def test_rate_curves_give_the_strategies_rates(indexed: tuple[Path, dict[str, Any]], rpc: RpcClient) -> None:
    """Each reserve's stored curve (3.0.2's immutable strategy getters) gives the strategy's own variable rate."""
    db, devnet = indexed
    assert assert_rate_curves_equal_the_strategies(rpc, db) == 8 * len(devnet["aave_v3"]["reserves"])


def test_stable_debt_totals_compound_as_the_token_does(
    indexed: tuple[Path, dict[str, Any]], rpc: RpcClient, tmp_path: Path
) -> None:
    """Before 3.2 a reserve's debt includes stable debt: with stable borrowing turned on for USDC and a borrower
    taking some at a stable rate (in a sandbox), the stored stable total equals StableDebtToken.totalSupply() at the
    snapshot, and a snapshot a day later, which opens no version of the reserve's stored supplies, compounds it to
    the token's answer then too (the accrued total carried by the version)."""
    db, devnet = indexed
    aave = devnet["aave_v3"]
    usdc = aave["reserves"]["USDC"]["asset"]
    borrower = _rows(
        db,
        "SELECT h.wallet FROM wallet_health h WHERE h.total_collateral_base > 10 * h.total_debt_base + 10^11 "
        "AND NOT EXISTS (SELECT 1 FROM positions p WHERE p.wallet = h.wallet AND p.protocol = 'aave-v3' "
        "AND p.asset = ? AND p.collateral_amount > 0) ORDER BY h.total_collateral_base DESC LIMIT 1",
        [usdc.lower()],
    )[0][0]
    configurator = load_abi("aave-v3", "IPoolConfigurator")
    with sandbox(rpc):
        head = rpc.call("eth_getBlockByNumber", ["latest", False])
        builder = BlockBuilder(rpc, timestamp=int(head["timestamp"], 16))
        builder.call(DEPLOYER, configurator, aave["pool_configurator"], "setReserveStableRateBorrowing", usdc, True)
        builder.mine(12)
        builder.call(borrower, POOL, aave["pool"], "borrow", usdc, 250 * 10**6, 1, 0, borrower)
        builder.mine(12)
        now = tmp_path / "stable.duckdb"
        index_aave_v3(devnet["rpc_url"], aave["pool_addresses_provider"], now, confirmations=0)
        (stable,) = _rows(now, "SELECT total_stable_debt FROM raw_aave_v3_reserves WHERE asset = ?", [usdc.lower()])[0]
        assert int(stable) >= 250 * 10**6
        assert assert_reserve_totals_equal_the_chain(rpc, now) >= 3
        builder.mine(86_400)
        index_aave_v3(devnet["rpc_url"], aave["pool_addresses_provider"], now, confirmations=0)
        (later,) = _rows(now, "SELECT total_stable_debt FROM raw_aave_v3_reserves WHERE asset = ?", [usdc.lower()])[0]
        assert int(later) > int(stable)
        assert assert_reserve_totals_equal_the_chain(rpc, now) >= 3
        versions = _rows(now, "SELECT count(*) FROM history.raw_aave_v3_reserves WHERE asset = ?", [usdc.lower()])[0][0]
        assert versions == 1, "a day of interest alone opens no version"


def test_supply_cap_headroom_is_what_the_pool_lets_in(
    indexed: tuple[Path, dict[str, Any]], rpc: RpcClient, tmp_path: Path
) -> None:
    """3.0.2: validateSupply adds the amount to the cap figure (chainrisk.protocols.aave_v3.maths.supply_cap);
    the stored headroom is the largest supply the pool lets in (tests/chainops.py)."""
    aave = indexed[1]["aave_v3"]
    usdc = aave["reserves"]["USDC"]
    assert_supply_cap_headroom_is_exact(rpc, aave, usdc["asset"], 6, tmp_path)


def test_reserves_decoded_from_the_bitmap(indexed: tuple[Path, dict[str, Any]]) -> None:
    db, _ = indexed
    query = (
        "SELECT symbol, decimals, ltv, liquidation_threshold, emode_category, debt_ceiling, borrowable_in_isolation, "
        "price_usd FROM raw_aave_v3_reserves"
    )
    rows = {r[0]: r[1:] for r in _rows(db, query)}
    assert rows["USDC"][:6] == (6, 7700, 8000, 0, 0, True)
    assert rows["wstETH"][3] == 1 and rows["LINK"][4] == 500_000_00
    assert 0.9 < rows["USDC"][6] < 1.1
    (category,) = _rows(db, "SELECT category_id, ltv, liquidation_threshold, label FROM raw_aave_v3_emode_categories")
    assert category == (1, 9000, 9300, "ETH correlated")


# -- incremental, crash-safe, bad input: on a devnet of their own, since they add blocks -------------------------


@pytest.fixture(scope="module")
def small_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    options = DevnetOptions(40, 6, 21, free_port(), parse_start("2022-05-06"), 4, BASE_PROTOCOLS)
    manifest = build_devnet(options, tmp_path_factory.mktemp("small"), detach=False)
    yield manifest
    stop_process(int(manifest["pid"]))


def _tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


def test_second_run_reads_only_the_new_range(
    small_devnet: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = small_devnet["aave_v3"]["pool_addresses_provider"]
    head = small_devnet["head_block"]
    ranges: list[tuple[int, int]] = []
    real = iter_log_ranges

    def spy(*args: Any, **kwargs: Any) -> Any:
        for lo, hi, logs in real(*args, **kwargs):
            ranges.append((lo, hi))
            yield lo, hi, logs

    monkeypatch.setattr(index_job, "iter_log_ranges", spy)
    db = tmp_path / "incremental.duckdb"
    first = index_aave_v3(small_devnet["rpc_url"], provider, db, to_block=head - 30)
    ranges.clear()
    second = index_aave_v3(small_devnet["rpc_url"], provider, db)
    assert second.from_block == first.to_block + 1 == head - 29
    assert ranges and min(lo for lo, _ in ranges) == head - 29 and max(hi for _, hi in ranges) == head
    clean = tmp_path / "clean.duckdb"
    index_aave_v3(small_devnet["rpc_url"], provider, clean, to_block=head - 30)
    index_aave_v3(small_devnet["rpc_url"], provider, clean)
    assert _tables(db) == _tables(clean)
    # Events equal a single run over the whole range.
    single = tmp_path / "single.duckdb"
    index_aave_v3(small_devnet["rpc_url"], provider, single)
    events = "SELECT * EXCLUDE (market) FROM raw_aave_v3_events ORDER BY block_number, log_index"
    assert _rows(db, events) == _rows(single, events)


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_error(404)

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture(scope="module", name="not_an_rpc")
def not_an_rpc_server() -> Iterator[str]:
    """A web server on loopback that is not a JSON-RPC node (answers 404 to everything)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/rpc"
    server.shutdown()


def _index_cmd(rpc_url: str, provider: str | None, db: Path, *extra: str) -> list[str]:
    address = ["--address", provider] if provider else []
    return [sys.executable, "-m", "chainrisk.cli", "index", "--rpc-url", rpc_url, *address, "--db", str(db), *extra]


def test_kill_nine_then_resume_equals_a_clean_run(small_devnet: dict[str, Any], tmp_path: Path) -> None:
    provider = small_devnet["aave_v3"]["pool_addresses_provider"]
    rpc_url = small_devnet["rpc_url"]
    clean = tmp_path / "clean.duckdb"
    subprocess.run(
        _index_cmd(rpc_url, provider, clean, "--log-span", "1"), check=True, capture_output=True, timeout=120
    )
    reference = _tables(clean)
    started = time.perf_counter()
    subprocess.run(
        _index_cmd(rpc_url, provider, tmp_path / "timing.duckdb", "--log-span", "1"),
        check=True,
        capture_output=True,
        timeout=120,
    )
    duration = time.perf_counter() - started
    rng = random.Random(7)
    killed_mid_run = 0
    for attempt in range(6):
        db = tmp_path / f"killed{attempt}.duckdb"
        process = subprocess.Popen(
            _index_cmd(rpc_url, provider, db, "--log-span", "1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.3, 1.0) * duration)
        if process.poll() is None:
            killed_mid_run += 1
        process.kill()
        process.wait()
        done = subprocess.run(_index_cmd(rpc_url, provider, db), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert _tables(db) == reference
    assert killed_mid_run >= 3


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("non_contract", "no contract at"),
        ("not_a_provider", "is not an Aave V3 PoolAddressesProvider"),
        ("wrong_chain", "but the market lives on chain 1"),
        ("unreachable", "cannot reach RPC"),
        ("not_an_rpc", "answered HTTP 404"),
        ("reversed_range", "is after --to-block"),
        ("beyond_head", "beyond the chain head"),
        ("bad_address", "is not a 20-byte hex address"),
        ("unknown_market", "unknown market"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    small_devnet: dict[str, Any], tmp_path: Path, case: str, message: str, not_an_rpc: str
) -> None:
    provider = small_devnet["aave_v3"]["pool_addresses_provider"]
    rpc_url = small_devnet["rpc_url"]
    db = tmp_path / "kept.duckdb"
    subprocess.run(_index_cmd(rpc_url, provider, db, "--to-block", "40"), check=True, capture_output=True, timeout=120)
    before = _tables(db)
    head = small_devnet["head_block"]
    args = {
        "non_contract": _index_cmd(rpc_url, "0x" + "12" * 20, db),
        "not_a_provider": _index_cmd(rpc_url, small_devnet["tokens"]["USDC"], db),
        "wrong_chain": _index_cmd(rpc_url, None, db, "--market", "aave-v3-ethereum"),
        "unreachable": _index_cmd(f"http://127.0.0.1:{free_port()}", provider, db),
        "not_an_rpc": _index_cmd(not_an_rpc, provider, db),
        "reversed_range": _index_cmd(rpc_url, provider, db, "--from-block", "30", "--to-block", "20"),
        "beyond_head": _index_cmd(rpc_url, provider, db, "--to-block", str(head + 1000)),
        "bad_address": _index_cmd(rpc_url, "0xnothex", db),
        "unknown_market": _index_cmd(rpc_url, None, db, "--market", "nowhere"),
    }[case]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrisk: error:") and message in lines[0], done.stderr
    assert _tables(db) == before


def test_a_later_snapshot_rereads_only_the_touched_accounts_and_equals_a_full_read(
    small_devnet: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second snapshot reuses the raw state of the accounts no event touched since the first (interest accrues
    in the indexes, read again), and stores exactly what one snapshot reading every account stores."""
    provider, head, url = (
        small_devnet["aave_v3"]["pool_addresses_provider"],
        small_devnet["head_block"],
        small_devnet["rpc_url"],
    )
    read: list[int] = []
    real = read_accounts

    def spy(rpc: RpcClient, deployment: Any, reserves: Any, wallets: list[str], *args: Any) -> Any:
        read.append(len(wallets))
        return real(rpc, deployment, reserves, wallets, *args)

    monkeypatch.setattr(aave_adapter, "read_accounts", spy)
    db = tmp_path / "reused.duckdb"
    index_aave_v3(url, provider, db, to_block=head - 30)
    second = index_aave_v3(url, provider, db)
    full = tmp_path / "full.duckdb"
    whole = index_aave_v3(url, provider, full)
    assert whole.wallets == second.wallets == read[2]
    assert 0 < read[1] < second.wallets, read
    for table in (*TABLES[2:], "raw_aave_v3_liquidations"):
        # The same rows; a table the second snapshot did not change keeps the first one's block (not written again).
        sql = f"SELECT * EXCLUDE (market, block_number) FROM {table} ORDER BY ALL"
        assert _rows(db, sql) == _rows(full, sql), table
        stamps = _rows(db, f"SELECT DISTINCT block_number FROM {table}")
        assert len(stamps) <= 1 and all(head - 30 <= s[0] <= head for s in stamps), (table, stamps)
