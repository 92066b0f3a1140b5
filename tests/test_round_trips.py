"""A run's round trips: what one market's index asks of the node once is never asked again in the same index, the
calls that can share a round trip share it, the process's clients share their connections, and the chains are looked
through side by side."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chainrisk.abi import load_abi
from chainrisk.config import Config, devnet_config
from chainrisk.errors import UserError
from chainrisk.jobs import run
from chainrisk.jobs.chains import ChainsReport
from chainrisk.jobs.index import deployment_block, index_market
from chainrisk.rpc import RpcClient
from chainrisk.store.db import Store
from tests.rpcproxy import CountingProxy

PROVIDER = load_abi("aave-v3", "IPoolAddressesProvider")


def test_a_steady_index_asks_each_block_once(
    devnet: dict[str, Any], tmp_path: Path, exchanges: list[list[tuple[str, Any]]]
) -> None:
    """Each devnet market indexed to the block before the head, then to the head (a steady run: a watermark, a
    previous snapshot, a range of new logs): in the second index the chain id and head come in one round trip, the
    contract's code with the pinned block's header and the watermark's in another, and no block header is asked
    twice."""
    db = tmp_path / "chainrisk.duckdb"
    with RpcClient(devnet["rpc_url"]) as rpc:
        head = rpc.head()
    for market in devnet_config(devnet, db).markets:
        index_market(market.protocol, devnet["rpc_url"], market.address, db, options=market.options, to_block=head - 1)
        exchanges.clear()
        report = index_market(
            market.protocol, devnet["rpc_url"], market.address, db, options=market.options, to_block=head
        )
        assert (report.from_block, report.to_block) == (head, head)
        methods = [[method for method, _ in calls] for calls in exchanges]
        assert methods[0] == ["eth_chainId", "eth_blockNumber"], market.protocol
        # The pinned block's header and the watermark's (read from the file first) ride with the code.
        assert methods[1] == ["eth_getCode", "eth_getBlockByNumber", "eth_getBlockByNumber"], market.protocol
        assert [exchanges[1][k][1][0] for k in (1, 2)] == [hex(head), hex(head - 1)]
        asked = [params[0] for calls in exchanges for method, params in calls if method == "eth_getBlockByNumber"]
        assert sorted(asked) == sorted(set(asked)), f"{market.protocol} asked a block twice: {asked}"
        # The watermark's block (head - 1, which is also the previous snapshot's) and the pinned one: two headers.
        assert set(asked) == {hex(head - 1), hex(head)}, market.protocol
        if market.protocol == "aave-v3":  # the provider's market name and its sentinel: one round trip
            wanted = {"0x" + PROVIDER.selector(fn).hex() for fn in ("getMarketId", "getPriceOracleSentinel")}
            together = [
                calls
                for calls in exchanges
                if wanted <= {str(p[0].get("data", ""))[:10] for m, p in calls if m == "eth_call"}
            ]
            assert len(together) == 1


def test_a_first_index_asks_each_range_s_end_with_its_logs(
    devnet: dict[str, Any], tmp_path: Path, exchanges: list[list[tuple[str, Any]]]
) -> None:
    """A market's first index over many log ranges (a small first span) asks each range's last block's header in the
    same round trip as the range's logs, header first (geth refuses the calls after the one that takes a batch's
    answer past its size limit: the logs, last, are always answered), and stores what an index in one range stores."""
    market = devnet_config(devnet, tmp_path / "unused.duckdb").markets[0]
    with RpcClient(devnet["rpc_url"]) as rpc:
        head = rpc.head()
    ranged, whole = tmp_path / "ranged.duckdb", tmp_path / "whole.duckdb"
    index_market(market.protocol, devnet["rpc_url"], market.address, ranged, to_block=head, log_span=16)
    logs = [[m for m, _ in calls] for calls in exchanges if any(m == "eth_getLogs" for m, _ in calls)]
    assert len(logs) > 3
    assert all(m == ["eth_getBlockByNumber", "eth_getLogs"] for m in logs[:-1]), logs
    assert logs[-1] == ["eth_getLogs"]  # the last range ends at the pinned block, whose header came with the code
    alone = [c for c in exchanges if [m for m, _ in c] == ["eth_getBlockByNumber"]]
    assert len(alone) <= 1, alone  # at most the previous snapshot's (none on a first index)
    index_market(market.protocol, devnet["rpc_url"], market.address, whole, to_block=head)
    for table in ("raw_aave_v3_events", "sync_state", "positions"):
        query = f"SELECT * FROM {table} ORDER BY ALL"
        with Store(ranged, read_only=True) as a, Store(whole, read_only=True) as b:
            assert a.query(query).equals(b.query(query)), table


@pytest.fixture
def counting(devnet: dict[str, Any]) -> Iterator[CountingProxy]:
    with CountingProxy(devnet["rpc_url"]) as proxy:
        yield proxy


def test_an_index_reports_the_requests_and_calls_its_node_saw(
    devnet: dict[str, Any], counting: CountingProxy, tmp_path: Path
) -> None:
    """Each market's report (and so the run's summary) counts the HTTP requests and JSON-RPC calls the node was sent
    for it, as the node counts them: what a provider bills."""
    url, db = counting.url, tmp_path / "chainrisk.duckdb"
    with RpcClient(devnet["rpc_url"]) as rpc:
        head = rpc.head()
    for market in devnet_config(devnet, db).markets:
        for block in (head - 1, head):
            requests, calls = counting.requests, counting.calls
            report = index_market(market.protocol, url, market.address, db, options=market.options, to_block=block)
            assert (report.rpc_requests, report.rpc_calls) == (counting.requests - requests, counting.calls - calls)
            assert 0 < report.rpc_requests < report.rpc_calls


@pytest.mark.parametrize("side_by_side", [False, True], ids=["one after another", "side by side"])
def test_a_run_reports_every_request_its_node_saw(
    devnet: dict[str, Any], counting: CountingProxy, tmp_path: Path, side_by_side: bool
) -> None:
    """A run's summary, and stg_runs, count every HTTP request and JSON-RPC call the node was sent for the run: its
    markets', the look-through's and, with markets read side by side, those of the chain made ready first (its block
    and the markets' watermarks: uncounted before stop 68). A first run, then a steady one."""
    db = tmp_path / "chainrisk.duckdb"
    config = replace(devnet_config(devnet, db), parallel_markets=4 if side_by_side else 1)
    seen = []
    for _ in range(2):
        requests, calls = counting.requests, counting.calls
        report = run.run_once(config, counting.url)
        assert report.status == "ok", report.summary()
        usage = report.rpc_usage()
        seen.append((counting.requests - requests, counting.calls - calls))
        assert (usage.requests, usage.calls) == seen[-1]
        assert usage.line() in report.summary()
        assert [r.chain_id for r in report.ready] == ([31337] if side_by_side else [])
        assert all(r.rpc_requests > 0 for r in report.ready)
    with Store(db, read_only=True) as store:
        stored = store.query("SELECT rpc_requests, rpc_calls FROM stg_runs ORDER BY run_id").rows()
    assert stored == seen


def test_clients_one_after_another_share_one_connection(counting: CountingProxy) -> None:
    """A run makes a client per market and job: closing one leaves the connection for the next."""
    url = counting.url
    for _ in range(5):
        with RpcClient(url) as rpc:
            assert rpc.chain_and_head()[0] == 31337
    assert counting.connections == 1


def test_clients_in_threads_share_the_pool(counting: CountingProxy) -> None:
    """Markets read side by side: clients in threads at once each get an answer, on at most one connection each,
    and the connections stay for later clients."""
    url = counting.url
    answers: list[int] = []
    barrier = threading.Barrier(4)

    def read() -> None:
        with RpcClient(url) as rpc:
            barrier.wait()
            for _ in range(20):
                answers.append(rpc.head())

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 80
    opened = counting.connections
    assert 1 <= opened <= 4
    with RpcClient(url) as rpc:
        rpc.head()
    assert counting.connections == opened


def test_chains_looked_through_side_by_side(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A run of several chains looks through up to `parallel_markets` of them at once (three chains that must all be
    running at once to pass a barrier), reads the wallet risk once for all, reports in chain id order, and a chain
    that fails is named while the others are kept; with 1, one chain after the other in chain id order."""
    db = tmp_path / "chainrisk.duckdb"
    with Store(db):
        pass
    urls = {3: "http://c3", 1: "http://c1", 2: "http://bad", 4: "http://c4"}
    barrier = threading.Barrier(3, timeout=30)
    called: list[tuple[str, str]] = []

    def fake(url: str, path: Path, *, publish: bool, positions: Any, wallet_risk: Any) -> ChainsReport:
        assert (path, publish) == (db, False) and positions is not None and wallet_risk is not None
        called.append((url, threading.current_thread().name))
        if url == "http://bad":
            raise UserError("chain 2 is odd")
        if side_by_side:
            barrier.wait()
        return ChainsReport(chain_id=int(url[-1]), block=1, links=0, chained_legs=0, wallets=0, seconds=0.0)

    monkeypatch.setattr(run, "index_chains", fake)
    for side_by_side in (True, False):
        config = Config(db, None, None, [], parallel_markets=4 if side_by_side else 1)
        failures: dict[str, str] = {}
        called.clear()
        reports = run.look_through(config, [url for _, url in sorted(urls.items())], None, failures)
        assert [r.chain_id for r in reports] == [1, 3, 4]
        assert failures == {"chains": "chain 2 is odd"}
        if not side_by_side:
            assert called == [(urls[i], threading.current_thread().name) for i in (1, 2, 3, 4)]


def test_a_pinned_block_is_asked_with_the_head(
    devnet: dict[str, Any], tmp_path: Path, exchanges: list[list[tuple[str, Any]]]
) -> None:
    """A market whose block the run pinned from a head it saw (`head_reached`: every market of a run after its first)
    has its code, the pinned header and the watermark's asked with the chain id and head: one round trip fewer than
    without, and no header asked twice; for a market new to the file, its code and header once, in the opening round
    trip."""
    db = tmp_path / "chainrisk.duckdb"
    market = next(m for m in devnet_config(devnet, db).markets if m.protocol == "morpho-blue")
    with RpcClient(devnet["rpc_url"]) as rpc:
        head = rpc.head()
    index_market(market.protocol, devnet["rpc_url"], market.address, db, options=market.options, to_block=head - 2)
    counts = []
    for block, reached in ((head - 1, False), (head, True)):
        exchanges.clear()
        report = index_market(
            market.protocol,
            devnet["rpc_url"],
            market.address,
            db,
            options=market.options,
            to_block=block,
            head_reached=reached,
        )
        assert report.to_block == block
        methods = [[method for method, _ in calls] for calls in exchanges]
        counts.append(len(exchanges))
        if reached:
            assert methods[0] == [
                "eth_chainId",
                "eth_blockNumber",
                "eth_getCode",
                "eth_getBlockByNumber",
                "eth_getBlockByNumber",
            ]
            assert [params[0] for _, params in exchanges[0][3:]] == [hex(head), hex(head - 1)]
        asked = [params[0] for calls in exchanges for method, params in calls if method == "eth_getBlockByNumber"]
        assert sorted(asked) == sorted(set(asked)), asked
    assert counts[1] == counts[0] - 1, counts
    # A market new to the file (no watermark yet): its code and pinned header too, asked once.
    other = next(m for m in devnet_config(devnet, db).markets if m.protocol == "aave-v3")
    exchanges.clear()
    index_market(other.protocol, devnet["rpc_url"], other.address, db, to_block=head, head_reached=True)
    assert [method for method, _ in exchanges[0]] == [
        "eth_chainId",
        "eth_blockNumber",
        "eth_getCode",
        "eth_getBlockByNumber",
    ]
    assert sum(method == "eth_getCode" for calls in exchanges for method, _ in calls) == 1


class _CodeFrom:
    """A node on which a contract has code from block `first` on; counts the round trips asked of it."""

    def __init__(self, first: int) -> None:
        self.first, self.round_trips = first, 0

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[str]:
        self.round_trips += 1
        return ["0x6080" if int(params[1], 16) >= self.first else "0x" for _, params in calls]


@pytest.mark.parametrize("at", [1, 2, 17, 1000, 24_000_000])
def test_a_contract_s_first_block_with_code_is_found_in_few_round_trips(at: int) -> None:
    """Every first block from 0 to `at` (sampled on the large range) is found exactly; each round trip probes 15
    blocks, so the range shrinks 16-fold a round trip (Ethereum's 24M blocks: 7 round trips at most, where bisection
    took 25)."""
    firsts = range(at + 1) if at <= 1000 else [0, 1, 2, 17, 4_191_431, 18_883_124, at - 1, at]
    for first in firsts:
        node = _CodeFrom(first)
        assert deployment_block(node, "0x" + "11" * 20, at) == first  # type: ignore[arg-type]
        assert node.round_trips <= math.ceil(math.log(at + 1, 16)) + 1, (first, node.round_trips)
