"""chainrisk behind a fault-injecting proxy (tests/faultproxy.py): each fault kind absorbed and counted, a run at a
30 % fault rate identical table by table to a clean one, and faults that persist ending in one line with nothing
half-stored."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.abi import eth_call, load_abi
from chainrisk.config import devnet_config
from chainrisk.errors import UserError
from chainrisk.jobs.index import index_market
from chainrisk.jobs.score import score
from chainrisk.rpc import FAULT_KINDS, RpcClient, RpcSettings
from chainrisk.rpc import client as rpc_client
from chainrisk.rpc.logs import iter_log_ranges
from chainrisk.rpc.retryable import (
    is_batch_refusal,
    is_lagging_node,
    is_out_of_gas,
    is_range_refusal,
    named_batch_limit,
)
from tests.faultproxy import (
    ABSORBED_AS,
    BATCH_STYLES,
    FAULTS,
    LOG_REFUSALS,
    NO_BATCH_STYLES,
    FaultProxy,
    _batch_refusal,
)

POOL = load_abi("aave-v3", "IPool")
#: Short timeout and backoff so faults cost little time; a deeper retry budget than the default (5), since at a
#: 30 % fault rate six failures in a row of one of a hundred requests would be likely enough to make a flaky test.
FAST = RpcSettings(timeout_s=1.0, max_retries=8, backoff_s=0.01, max_backoff_s=0.05)
#: FAST with a timeout no answer reaches on a loaded machine, for tests that inject no hang and count every fault the
#: client absorbed (a 1 s timeout there is a fault the test did not inject: CI once read {'timeout': 1} beside the
#: log-range refusals it was counting).
PATIENT = replace(FAST, timeout_s=60.0)
#: How long a timeout fault holds the request: past FAST's timeout.
HANG_S = 1.3
#: Columns whose values legitimately differ between two runs over the same chain: when scoring happened.
VARYING_COLUMNS: dict[str, tuple[str, ...]] = {"scored_markets": ("scored_at",)}
#: Seed of the 30 % run: on the session devnet it injects all 11 kinds (41 faults in 113 requests today).
SEED = 9


def _index_devnet(devnet: dict[str, Any], rpc_url: str, db: Path, to_block: int, **kwargs: Any) -> dict[str, int]:
    """Both devnet protocols indexed into `db` at `to_block` and scored; the faults absorbed, summed by kind."""
    absorbed: dict[str, int] = {}
    for market in devnet_config(devnet, db).markets:
        report = index_market(
            market.protocol, rpc_url, market.address, db, options=market.options, to_block=to_block, **kwargs
        )
        assert report.to_block == to_block
        for kind, count in report.faults_absorbed.items():
            absorbed[kind] = absorbed.get(kind, 0) + count
    score(db)
    return absorbed


def _read(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    frame = pl.from_arrow(con.sql(sql, params=params or []).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _frame(db: Path, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return _read(con, sql, params)


def _tables(db: Path) -> dict[str, pl.DataFrame]:
    """Every table, sorted by all its columns, without VARYING_COLUMNS; and the views' SQL under `(views)`. One
    connection for them all (a connection a table cost ~4 s a database)."""
    with duckdb.connect(str(db), read_only=True) as con:
        names = _read(con, "SELECT table_name FROM duckdb_tables() ORDER BY table_name")["table_name"].to_list()
        frames = {"(views)": _read(con, "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL")}
        for name in names:
            varying = VARYING_COLUMNS.get(name)
            columns = f"* EXCLUDE ({', '.join(varying)})" if varying else "*"
            frames[name] = _read(con, f"SELECT {columns} FROM {name} ORDER BY ALL")
    return frames


def _assert_same_database(got: Path, want: Path) -> None:
    got_tables, want_tables = _tables(got), _tables(want)
    assert sorted(got_tables) == sorted(want_tables)
    for name, frame in want_tables.items():
        try:
            assert_frame_equal(got_tables[name], frame)
        except AssertionError as exc:
            raise AssertionError(f"table {name} differs: {exc}") from None
    assert want_tables["positions"].height > 100 and want_tables["wallet_risk"].height > 100


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _new_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's proxies are new nodes: what the process's clients learnt of an earlier proxy (whose port a later
    one may reuse) is forgotten."""
    monkeypatch.setattr(rpc_client, "_LEARNT_BATCH_SIZE", {})


@pytest.fixture(scope="module")
def pinned(devnet: dict[str, Any]) -> int:
    """The block every run here is pinned to (the devnet's head, asked of a client of our own)."""
    with RpcClient(devnet["rpc_url"]) as client:
        return client.head()


@pytest.fixture(scope="module")
def clean_db(devnet: dict[str, Any], pinned: int, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db: Path = tmp_path_factory.mktemp("clean") / "chainrisk.duckdb"
    assert _index_devnet(devnet, devnet["rpc_url"], db, pinned) == {}
    return db


def test_thirty_percent_faults_give_the_clean_database(
    devnet: dict[str, Any], pinned: int, clean_db: Path, tmp_path: Path
) -> None:
    db = tmp_path / "faulty.duckdb"
    # Small batches and log spans: about a hundred requests, so that every kind of fault gets its chance.
    settings = replace(FAST, batch_size=2)
    with FaultProxy(devnet["rpc_url"], rate=0.3, seed=SEED, hang_s=HANG_S, max_seconds=120) as proxy:
        absorbed = _index_devnet(devnet, proxy.url, db, pinned, rpc_settings=settings, log_span=4)
    assert not proxy.exhausted
    _assert_same_database(db, clean_db)
    # Every injected fault was noticed and absorbed, none passed as an answer; a timeout may also be the
    # machine's own (a loaded CI runner), the only kind a clean exchange can add.
    expected = proxy.expected_absorbed()
    assert absorbed.get("timeout", 0) >= expected.pop("timeout", 0)
    absorbed.pop("timeout", None)
    assert absorbed == expected
    injected = sum(proxy.injected.values())
    assert 0.2 * proxy.requests <= injected <= 0.45 * proxy.requests, (injected, proxy.requests)
    assert len(proxy.injected) >= 9, proxy.injected
    assert set(absorbed) <= set(FAULT_KINDS)


@pytest.mark.parametrize(
    ("kind", "methods", "older_block_share"),
    [
        ("timeout", None, 0.0),
        ("http_429", None, 0.0),
        ("http_5xx", None, 0.0),
        ("reset", None, 0.0),
        ("truncated", None, 0.0),
        ("malformed", None, 0.0),
        ("rpc_error", None, 0.0),
        ("batch_missing", None, 0.0),
        ("batch_reorder", None, 0.0),
        ("lagging", {"eth_blockNumber"}, 0.0),  # the head below the pinned block
        ("lagging", {"eth_getBlockByNumber"}, 0.0),  # the pinned block null, eth_call "header not found"
        ("lagging", {"eth_getBlockByNumber"}, 1.0),  # the block before the pinned one
    ],
)
def test_each_fault_is_absorbed_once(
    devnet: dict[str, Any], pinned: int, kind: str, methods: set[str] | None, older_block_share: float
) -> None:
    pool = devnet["aave_v3"]["pool"]
    calls = [
        ("eth_chainId", []),
        ("eth_getBlockByNumber", [hex(pinned), False]),
        eth_call(pool, POOL, "getReservesList", block=hex(pinned)),
        ("eth_getCode", [pool, hex(pinned)]),
    ]
    with RpcClient(devnet["rpc_url"]) as direct:
        want = direct.batch(calls)
    proxy = FaultProxy(
        devnet["rpc_url"],
        rate=1.0,
        kinds=[kind],
        max_faults=1,
        hang_s=HANG_S,
        seed=5,
        methods=methods or {"eth_chainId"},
        older_block_share=older_block_share,
        max_seconds=30,
    )
    with proxy, RpcClient(proxy.url, FAST) as client:
        assert client.head(at_least=pinned) == pinned
        got = client.batch(calls)
    assert got == want
    assert proxy.injected == {kind: 1}
    assert client.faults_absorbed == {ABSORBED_AS[kind]: 1}


def test_retry_after_is_honoured_and_a_long_one_ends_the_run(devnet: dict[str, Any]) -> None:
    proxy = FaultProxy(devnet["rpc_url"], rate=1.0, kinds=["http_429"], max_faults=1, retry_after_s=1)
    with proxy, RpcClient(proxy.url, PATIENT) as client:
        started = time.perf_counter()
        assert int(client.call("eth_chainId"), 16) == devnet["chain_id"]
        waited = time.perf_counter() - started
    assert waited >= 1.0 and client.faults_absorbed == {"http_429": 1}
    # A provider asking for an hour (a spent daily quota): no point in waiting inside a run.
    proxy = FaultProxy(devnet["rpc_url"], rate=1.0, kinds=["http_429"], retry_after_s=3600)
    with proxy, RpcClient(proxy.url, FAST) as client, pytest.raises(UserError) as caught:
        client.call("eth_chainId")
    assert proxy.requests == 1
    assert "asks to wait 3600 s" in str(caught.value) and "\n" not in str(caught.value)


def test_log_range_refusals_halve_the_span_and_lose_nothing(devnet: dict[str, Any], pinned: int) -> None:
    """A provider capping eth_getLogs at 16 blocks, in each provider's words: ranges split until they pass,
    and the logs equal one unrestricted query."""
    address = [devnet["aave_v3"]["pool"]]
    query = {"address": address, "topics": [], "fromBlock": "0x0", "toBlock": hex(pinned)}
    with RpcClient(devnet["rpc_url"]) as direct:
        want = direct.call("eth_getLogs", [query])
    proxy = FaultProxy(devnet["rpc_url"], rate=0.0, max_log_range=16)
    with proxy, RpcClient(proxy.url, PATIENT) as client:
        ranges = list(iter_log_ranges(client, address, [], 0, pinned, initial_span=1_000))
    assert [log for _, _, logs in ranges for log in logs] == want and len(want) > 100
    assert all(hi - lo < 16 for lo, hi, _ in ranges)
    assert ranges[0][0] == 0 and ranges[-1][1] == pinned
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
    assert client.faults_absorbed == {"log_range_resplit": proxy.injected["logs_refusal"]}
    assert proxy.injected["logs_refusal"] >= 6  # the whole range halved down to 16 or less (1,000 -> 15)


#: A provider's refusal of a range wider than 16 blocks, in words that name the cap (QuickNode's), that name none
#: (Ankr's), and that name it and suggest the range that will pass (Alchemy's free tier).
RANGE_CAP_WORDS = {
    "named": {"code": -32614, "message": "eth_getLogs is limited to a 16 range"},
    "unnamed": {"code": -32602, "message": "block range is too wide"},
    "suggested": {
        "code": -32602,
        "message": "Under the Free tier plan, you can make eth_getLogs requests with up to a 16 block range. Based on "
        "your parameters, this block range should work: [{first}, {last}]",
    },
    "suggested_for_size": {
        "code": -32005,
        "message": "query returned more than 10000 results. Try with this block range [{first}, {last}].",
    },
}


@pytest.mark.parametrize("words", RANGE_CAP_WORDS)
def test_a_provider_s_range_cap_is_not_asked_past_again(devnet: dict[str, Any], pinned: int, words: str) -> None:
    """A provider that takes at most 16 blocks an eth_getLogs: the logs equal one unrestricted query, and once refused
    the span never grows past the cap again (it grew past it after every few small answers and was refused each
    time). A cap the provider names is taken at once and kept for the URL's later readers: the next market's logs are
    never refused; one it does not name is found by halving, and the span then stays under it."""
    address = [devnet["aave_v3"]["pool"]]
    with RpcClient(devnet["rpc_url"]) as direct:
        want = direct.call("eth_getLogs", [{"address": address, "fromBlock": "0x0", "toBlock": hex(pinned)}])
    proxy = FaultProxy(devnet["rpc_url"], rate=0.0, max_log_range=16, log_refusals=[RANGE_CAP_WORDS[words]])
    with proxy, RpcClient(proxy.url, PATIENT) as client:
        ranges = list(iter_log_ranges(client, address, [], 0, pinned, initial_span=1_000))
        refused = proxy.injected["logs_refusal"]
        with RpcClient(proxy.url, PATIENT) as later:
            again = list(iter_log_ranges(later, address, [], 0, pinned, initial_span=1_000))
    assert [log for _, _, logs in ranges for log in logs] == want and len(want) > 100 and pinned > 200
    assert [log for _, _, logs in again for log in logs] == want
    assert all(hi - lo < 16 for lo, hi, _ in [*ranges, *again])
    assert client.faults_absorbed == {"log_range_resplit": refused}
    if words == "suggested_for_size":  # a refusal for the answer's size: the span grows again, but each refusal
        # goes straight to the range suggested (Infura's words), never halved
        assert refused == proxy.injected["logs_refusal"] / 2 and refused <= len(ranges)  # never two in a row
        assert {hi - lo + 1 for lo, hi, _ in ranges[:-1]} == {16}
        return
    if words == "unnamed":  # the first range halved until it passes (15 blocks), then never grown past that
        width, halvings = min(1_000, pinned + 1), 0
        while width > 16:
            width, halvings = width // 2, halvings + 1
        assert refused == halvings and proxy.injected["logs_refusal"] == 2 * halvings, proxy.injected
        assert {hi - lo + 1 for lo, hi, _ in ranges[:-1]} == {width}
    else:  # taken at once, and the later reader starts there
        assert refused == 1 and proxy.injected["logs_refusal"] == 1 and not later.faults_absorbed
        assert {hi - lo + 1 for lo, hi, _ in [*ranges[:-1], *again[:-1]]} == {16}


def _mixed_calls(devnet: dict[str, Any], pinned: int, blocks: int) -> tuple[list[tuple[str, list[Any]]], list[Any]]:
    """The pool's code at the last `blocks` blocks, its reserves list and the chain id, and the node's own answers."""
    pool = devnet["aave_v3"]["pool"]
    calls = [("eth_getCode", [pool, hex(block)]) for block in range(pinned - blocks + 1, pinned + 1)]
    calls += [eth_call(pool, POOL, "getReservesList", block=hex(pinned)), ("eth_chainId", [])]
    with RpcClient(devnet["rpc_url"]) as direct:
        return calls, direct.batch(calls)


@pytest.mark.parametrize("style", [s for s in BATCH_STYLES if s not in NO_BATCH_STYLES])
def test_a_node_s_batch_cap_halves_the_batch_and_loses_nothing(devnet: dict[str, Any], pinned: int, style: str) -> None:
    """A node that takes at most 7 calls a batch, refusing longer ones as geth, erigon, besu, nethermind or a gateway
    (HTTP 413) do, or answering only the first 7 (geth's cap on an answer's size): the client sends the batch again
    in halves, keeps the size that passed for its next batches, and every answer equals the node's own."""
    calls, want = _mixed_calls(devnet, pinned, 40)
    proxy = FaultProxy(devnet["rpc_url"], rate=0.0, max_batch=7, batch_style=style)
    with proxy, RpcClient(proxy.url, PATIENT) as client:
        assert client.batch(calls) == want and client.batch_size <= 7
        refused = proxy.injected["batch_too_large"]
        assert client.faults_absorbed == {"batch_too_large": refused} and refused >= 1
        # Later batches go out at the size that passed: no refusal more, nor for the process's next client of the node.
        assert client.batch_each(calls) == want and proxy.injected["batch_too_large"] == refused
        with RpcClient(proxy.url, PATIENT) as next_client:
            assert next_client.batch(calls) == want and next_client.batch_size == client.batch_size
        assert proxy.injected["batch_too_large"] == refused and not next_client.faults_absorbed
    assert max(proxy.batch_lengths[refused:]) <= 7 and proxy.batch_lengths[0] == len(calls)
    if style.startswith("erigon"):  # it names its limit: taken at once (42 -> 7), not halved (42 -> 21 -> 10 -> 5)
        assert refused == 1 and client.batch_size == 7


@pytest.mark.parametrize("style", NO_BATCH_STYLES)
def test_a_node_without_batches_gets_each_call_alone(devnet: dict[str, Any], pinned: int, style: str) -> None:
    """A node or relay that takes no JSON-RPC batch at all, answering an array with one error object without an id
    (OP's proxyd once: -32700 "parse error") or HTTP 400 (Hedera's relay): the client sends each call as a request of
    its own from then on, for its later batches and the process's next client of the node, and every answer equals
    the node's own. It refused the whole run before (-32700 is no load error, and a 400 read as a wrong URL)."""
    calls, want = _mixed_calls(devnet, pinned, 10)
    proxy = FaultProxy(devnet["rpc_url"], rate=0.0, max_batch=0, batch_style=style)
    with proxy, RpcClient(proxy.url, PATIENT) as client:
        assert client.batch(calls) == want and client.batch_size == 1
        assert client.faults_absorbed == {"batch_too_large": 1} == dict(proxy.injected)
        assert client.batch_each(calls) == want and client.usage.requests == 1 + 2 * len(calls)
        with RpcClient(proxy.url, PATIENT) as next_client:
            assert next_client.batch(calls) == want and not next_client.faults_absorbed
    assert proxy.batch_lengths == [len(calls)]  # the one array sent: every later call went as a request of its own


def test_a_learnt_batch_size_is_tried_longer_once_it_is_old(
    devnet: dict[str, Any], pinned: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A learnt size older than RECHECK_BATCH_S: the next client tries twice it, is refused once while the cap stands
    (and keeps the size), and keeps the longer size once the node takes it (its cap raised)."""
    pool = devnet["aave_v3"]["pool"]
    calls = [("eth_getCode", [pool, hex(block)]) for block in range(pinned - 41, pinned + 1)]
    with RpcClient(devnet["rpc_url"]) as direct:
        want = direct.batch(calls)
    proxy = FaultProxy(devnet["rpc_url"], rate=0.0, max_batch=7, batch_style="erigon")
    with proxy:
        with RpcClient(proxy.url, PATIENT) as first:
            assert first.batch(calls) == want and first.batch_size == 7
        with RpcClient(proxy.url, PATIENT) as fresh:  # learnt a moment ago: taken as it is
            assert fresh.batch(calls) == want and not fresh.faults_absorbed
        monkeypatch.setattr(rpc_client, "RECHECK_BATCH_S", 0.0)  # every learnt size is old from now on
        with RpcClient(proxy.url, PATIENT) as probe:
            assert probe.batch_size == 14
            assert probe.batch(calls) == want and probe.faults_absorbed == {"batch_too_large": 1}
            assert probe.batch_size == 7
        proxy.max_batch = 30  # the node's cap raised
        with RpcClient(proxy.url, PATIENT) as grown:
            assert grown.batch(calls) == want and not grown.faults_absorbed and grown.batch_size == 14
        with RpcClient(proxy.url, PATIENT) as again:  # 28 passes too
            assert again.batch(calls) == want and not again.faults_absorbed and again.batch_size == 28
        with RpcClient(proxy.url, PATIENT) as capped:  # all 42 in one batch, over 30: refused once, then halves
            assert capped.batch(calls) == want and capped.faults_absorbed == {"batch_too_large": 1}
            assert capped.batch_size == 21  # half the refused batch, under the 30 the node names
        monkeypatch.setattr(rpc_client, "RECHECK_BATCH_S", 3600.0)
        with RpcClient(proxy.url, PATIENT) as settled:
            assert settled.batch(calls) == want and not settled.faults_absorbed and settled.batch_size == 21
    assert max(proxy.batch_lengths) == len(calls)  # the first client's first batch, before anything was learnt


def test_indexing_behind_a_node_capping_batches_gives_the_clean_database(
    devnet: dict[str, Any], pinned: int, clean_db: Path, tmp_path: Path
) -> None:
    """A node taking 5 calls a batch, refusing longer ones in erigon's words (its default cap is 100, more than the
    test devnet's longest batch, 21): every market indexed, table by table equal to a run without the cap, each
    refusal counted, and no batch over the cap once refused."""
    db = tmp_path / "capped.duckdb"
    proxy = FaultProxy(devnet["rpc_url"], rate=0.0, max_batch=5, batch_style="erigon", max_requests=50_000)
    with proxy:
        absorbed = _index_devnet(devnet, proxy.url, db, pinned, rpc_settings=PATIENT)
    refused = proxy.injected["batch_too_large"]
    assert not proxy.exhausted and refused == 1  # the first market's client learns the cap, the others start at it
    assert absorbed == {"batch_too_large": refused}
    assert sum(length > 5 for length in proxy.batch_lengths) == refused
    _assert_same_database(db, clean_db)


def test_indexing_behind_a_node_without_batches_gives_the_clean_database(
    devnet: dict[str, Any], pinned: int, clean_db: Path, tmp_path: Path
) -> None:
    """Every devnet market indexed through a relay that takes no batch (OP's proxyd's answer to any array): table by
    table equal to a run through the node itself, the refusal counted once (the first market's client learns it for
    the others), no array sent after it."""
    db = tmp_path / "single.duckdb"
    proxy = FaultProxy(devnet["rpc_url"], rate=0.0, max_batch=0, batch_style="proxyd", max_requests=50_000)
    with proxy:
        absorbed = _index_devnet(devnet, proxy.url, db, pinned, rpc_settings=PATIENT)
    assert not proxy.exhausted and proxy.injected == {"batch_too_large": 1} and absorbed == {"batch_too_large": 1}
    assert len(proxy.batch_lengths) == 1 and proxy.requests > 100
    _assert_same_database(db, clean_db)


def test_provider_messages_are_recognised() -> None:
    assert all(is_range_refusal(refusal["message"]) for refusal in LOG_REFUSALS)
    lagging = (
        "header not found",
        "One of the blocks specified in filter (fromBlock, toBlock or blockHash) cannot be found.",
        "BlockOutOfRangeError: block height is 231 but requested was 240",
    )
    assert all(is_lagging_node(m) and not is_range_refusal(m) for m in lagging)
    assert not any(is_range_refusal(m) for m in ("limit exceeded", "internal error", "execution reverted"))
    refusals = [_batch_refusal(style, [{"id": 1}] * 3, 2)["error"]["message"] for style in BATCH_STYLES[:5]]
    assert all(is_batch_refusal(m) for m in [*refusals, "response too large"])
    assert [named_batch_limit(m) for m in refusals] == [None, 2, 2, None, None]
    loads = ("limit exceeded", "internal error", "execution reverted", "Log response size exceeded", "rate limited")
    assert not any(is_batch_refusal(m) for m in loads)
    # Other providers' wording: a refusal for size names the batch and a limit.
    free_tier = "Batch of more than 3 requests are not allowed on free tier"
    assert is_batch_refusal(free_tier) and named_batch_limit(free_tier) == 3
    assert is_batch_refusal("batch size exceeds the maximum of 1000") and not is_batch_refusal("batch processed")
    assert set(ABSORBED_AS) == set(FAULTS) and set(ABSORBED_AS.values()) <= set(FAULT_KINDS)
    # A call that ran out of gas failed of its own (geth, erigon, reth; anvil's -32603; nethermind): never retried.
    assert all(is_out_of_gas(m) for m in ("out of gas", "EVM error OutOfGas", "OutOfGas", "Out of gas"))
    assert not any(is_out_of_gas(m) for m in ("internal error", "limit exceeded", "execution reverted", "gas too low"))


def test_persistent_503_is_one_line_and_changes_nothing(
    devnet: dict[str, Any], scored_db: Path, tmp_path: Path
) -> None:
    db = tmp_path / "kept.duckdb"
    shutil.copyfile(scored_db, db)
    before = _digest(db)
    market = devnet_config(devnet, db).markets[0]
    proxy = FaultProxy(devnet["rpc_url"], rate=1.0, kinds=["http_5xx"], statuses=[503])
    with proxy, pytest.raises(UserError) as caught:
        index_market(market.protocol, proxy.url, market.address, db, rpc_settings=FAST)
    message = str(caught.value)
    assert "\n" not in message and "HTTP 503" in message and f"after {FAST.max_retries + 1} attempts" in message
    assert proxy.requests == FAST.max_retries + 1
    assert _digest(db) == before


def test_fault_persisting_mid_run_stores_whole_ranges_only(
    devnet: dict[str, Any], pinned: int, clean_db: Path, tmp_path: Path
) -> None:
    """The proxy's request budget runs out during the log fetch; every request after it is a 503. What was
    stored is whole (ranges up to the watermark, no snapshot), and a resumed run equals a clean one."""
    db = tmp_path / "interrupted.duckdb"
    market = devnet_config(devnet, db).markets[0]
    proxy = FaultProxy(devnet["rpc_url"], rate=0.0, max_requests=12)
    with proxy, pytest.raises(UserError, match="HTTP 503"):
        index_market(market.protocol, proxy.url, market.address, db, to_block=pinned, rpc_settings=FAST, log_span=4)
    assert proxy.exhausted
    [(watermark, snapshot_block)] = _frame(db, "SELECT events_to_block, snapshot_block FROM sync_state").rows()
    assert 0 < watermark < pinned and snapshot_block is None
    assert _frame(db, "SELECT * FROM positions").height == 0
    events = "SELECT * FROM raw_aave_v3_events WHERE block_number <= ? ORDER BY ALL"
    assert_frame_equal(_frame(db, events, [pinned]), _frame(clean_db, events, [watermark]))
    _index_devnet(devnet, devnet["rpc_url"], db, pinned)
    _assert_same_database(db, clean_db)


def test_a_node_that_never_answers_is_given_up_on_sooner_and_said_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An endpoint that takes the connection and never answers: each request waits out the timeout, so the default
    five retries of 60 s were six silent minutes before the one error line. A node that has never answered this
    client is asked CONNECT_RETRIES more times, as a refused connection is, and each silence past SLOW_ANSWER_S is a
    warning line as it is asked again (stop 71)."""
    import logging
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(server.accept()[0])  # taken, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setattr(rpc_client, "SLOW_ANSWER_S", 0.1)
    caplog.set_level(logging.WARNING)
    settings = RpcSettings(timeout_s=0.4, max_retries=5, backoff_s=0.01, max_backoff_s=0.02)
    try:
        with RpcClient(f"http://127.0.0.1:{server.getsockname()[1]}", settings) as rpc, pytest.raises(UserError) as err:
            rpc.call("eth_blockNumber")
        sent = rpc.usage.requests
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()
    assert "after 3 attempts" in str(err.value) and "timeout" in str(err.value).lower(), str(err.value)
    assert sent == 3  # three requests, each waiting out its timeout, not six (bound by work, not by the clock)
    warned = [r.getMessage() for r in caplog.records if "did not answer within" in r.getMessage()]
    assert len(warned) == 2 and warned[-1].endswith("asking again (2 of 2)"), warned
