"""`aggregate_calls`: plain eth_calls of one block packed into one eth_call through chainrisk's CallAggregator,
placed by state override. Packing changes what the node is asked, never what is stored or raised: every answer equals
the call's own eth_call, a call that fails in the aggregate is asked again on its own (so a revert is refused in the
node's own words), and a node that ignores the override leaves the client asking each call alone."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chainrisk.abi import function_selector, load_abi
from chainrisk.config import aggregate_calls, devnet_config, load_config
from chainrisk.devnet.node import free_port
from chainrisk.devnet.toolchain import anvil_binary, folder_contracts
from chainrisk.errors import UserError
from chainrisk.jobs.index import index_market
from chainrisk.rpc import RpcClient, RpcError, RpcSettings, use_settings
from chainrisk.rpc import aggregate as packing
from chainrisk.rpc import client as rpc_client

ERC20 = load_abi("erc20", "IERC20Detailed")
MORPHO = load_abi("morpho-blue", "IMorpho")
#: Tables an index writes, compared whole between an index with packing and one without.
TABLES = ("positions", "wallet_health", "markets", "data_quality", "sync_state")


def _call(to: str, data: str, tag: str, **more: Any) -> tuple[str, list[Any]]:
    return ("eth_call", [{"to": to, "data": data, **more}, tag])


def test_the_selector_and_the_committed_runtime_are_the_source_s() -> None:
    """The committed runtime is exactly what solcjs builds from the committed source, and SELECTOR is its function's."""
    assert function_selector("aggregate(address[],bytes[])").hex() == packing.SELECTOR
    folder = Path(packing.__file__).parent / "contracts"
    assert folder_contracts(folder)["CallAggregator"].runtime == packing.RUNTIME


def test_only_plain_calls_at_a_block_tag_are_packed() -> None:
    to, data = "0x" + "ab" * 20, "0x313ce567"
    assert packing.packable(_call(to, data, "0x10")) == ("0x10", "ab" * 20, "313ce567")
    assert packing.packable(("eth_call", [{"to": to.upper().replace("0X", "0x"), "input": data}, "latest"])) == (
        "latest",
        "ab" * 20,
        "313ce567",
    )
    refused = [
        _call(to, data, "0x10", **{"from": "0x" + "11" * 20}),  # a caller of its own
        _call(to, data, "0x10", gas="0x5208"),
        ("eth_call", [{"to": to, "data": data}, "0x10", {to: {"code": "0x00"}}]),  # an override of its own
        ("eth_call", [{"to": to, "data": data}, {"blockHash": "0x" + "00" * 32}]),  # EIP-1898 block object
        ("eth_getBalance", [to, "0x10"]),
        _call("0x1234", data, "0x10"),
        _call(to, "0x313", "0x10"),  # half a byte
    ]
    assert [packing.packable(c) for c in refused] == [None] * len(refused)


def test_the_hand_encoding_is_the_abi_s() -> None:
    """aggregate_call's calldata is eth_abi's encoding of (address[], bytes[]), and `answers` reads eth_abi's encoding
    of the aggregator's (uint8[], bytes[]), for calldata and answers of every padding (empty, short, a word, longer)."""
    from eth_abi.abi import decode, encode

    targets = ["ab" * 20, "00" * 19 + "01", "cd" * 20, "ef" * 20]
    datas = ["", "313ce567", "11" * 32, "22" * 45]
    call = packing.aggregate_call("0x10", list(zip(targets, datas, strict=True)))
    data = call[1][0]["data"]
    assert data[:10] == "0x" + packing.SELECTOR
    assert decode(["address[]", "bytes[]"], bytes.fromhex(data[10:])) == (
        tuple("0x" + t for t in targets),
        tuple(bytes.fromhex(d) for d in datas),
    )
    assert bytes.fromhex(data[10:]) == encode(
        ["address[]", "bytes[]"], [["0x" + t for t in targets], [bytes.fromhex(d) for d in datas]]
    )
    assert call[1][1:] == ["0x10", {packing.AGGREGATOR: {"code": packing.RUNTIME}}]
    assert call[1][0]["from"] == call[1][0]["to"] == packing.AGGREGATOR
    status = [packing.RETURNED, packing.REVERTED, packing.EXHAUSTED, packing.UNRUN]
    answered = encode(["uint8[]", "bytes[]"], [status, [bytes.fromhex(d) for d in datas]])
    assert packing.answers("0x" + answered.hex(), 4) == [(s, "0x" + d) for s, d in zip(status, datas, strict=True)]
    assert packing.answers("0x" + answered.hex(), 3) is None  # another count than asked
    assert packing.answers("0x" + encode(["uint8[]", "bytes[]"], [[7], [b""]]).hex(), 1) is None  # no such outcome


def test_answers_refuse_what_is_not_the_aggregator_s() -> None:
    assert packing.answers("0x", 2) is None  # a node that ignored the override: the empty code's answer
    assert packing.answers(None, 2) is None
    assert packing.answers("0x" + "00" * 31, 1) is None


def test_packed_answers_equal_each_call_s_own(devnet: dict[str, Any], exchanges: list[list[Any]]) -> None:
    """A mixed batch (tokens' getters at two blocks, a call to an address without code, a revert, a call with a caller
    of its own, a block header) answers the same packed as unpacked, and the packed one is sent as fewer calls. A revert
    refuses the batch in the node's own words (asked again alone), or answers None with batch_each at once (it
    reverted with gas to spare: the callee's own refusal)."""
    rpc_url = devnet["rpc_url"]
    tokens = [str(t) for t in devnet["tokens"].values()]
    assert len(tokens) >= 3
    with RpcClient(rpc_url) as plain:
        head = plain.head()
    tags = [hex(head), hex(head - 1)]
    calls = [_call(t, ERC20.encode(fn), tag) for tag in tags for t in tokens for fn in ("decimals", "symbol")]
    calls += [_call(tokens[0], ERC20.encode("balanceOf", "0x" + "22" * 20), tags[0])]
    calls += [_call("0x" + "33" * 20, ERC20.encode("decimals"), tags[0])]  # no code: "0x", as its own eth_call
    calls += [_call(tokens[1], ERC20.encode("decimals"), tags[0], **{"from": "0x" + "44" * 20})]
    calls += [("eth_getBlockByNumber", [tags[1], False])]
    # No such function: reverts. First, so that it is packed with the three calls after it.
    reverting = _call(devnet["morpho_blue"]["morpho"], ERC20.encode("decimals"), tags[0])
    with RpcClient(rpc_url) as plain:
        expected = plain.batch(calls)
        expected_each = plain.batch_each([reverting, *calls])
        with pytest.raises(RpcError) as unpacked_refusal:
            plain.batch([reverting, *calls])
    exchanges.clear()
    with RpcClient(rpc_url, RpcSettings(aggregate_calls=4)) as packed:
        assert packed.batch(calls) == expected
        sent = sum(len(e) for e in exchanges)
        assert sent < len(calls) - 5, sent  # 4 calls to an aggregate
        exchanges.clear()
        assert packed.batch_each([reverting, *calls]) == expected_each
        assert expected_each[0] is None
        assert len(exchanges) == 1  # the revert not asked again
        exchanges.clear()
        with pytest.raises(RpcError) as packed_refusal:
            packed.batch([reverting, *calls])
        assert str(packed_refusal.value) == str(unpacked_refusal.value)
        assert [len(e) for e in exchanges][-1] == 1  # the revert asked again alone, for the node's words
        assert packed.faults_absorbed == {}


def test_of_two_refusals_the_first_in_order_is_raised_as_unpacked(devnet: dict[str, Any]) -> None:
    """A packed call that reverts before a call sent alone (a caller of its own) that reverts with other words: the
    batch raises the first one's refusal, as unpacked, not the one whose answer came first."""
    morpho = devnet["morpho_blue"]["morpho"]
    tokens = [str(t) for t in devnet["tokens"].values()]
    unknown = (tokens[0], tokens[1], "0x" + "66" * 20, "0x" + "77" * 20, 10**18)  # no market: "market not created"
    calls = [_call(morpho, ERC20.encode("decimals"), "latest")]  # no such function: an empty revert
    calls += [_call(t, ERC20.encode("decimals"), "latest") for t in tokens[:3]]
    calls += [_call(morpho, MORPHO.encode("accrueInterest", unknown), "latest", **{"from": "0x" + "44" * 20})]
    with RpcClient(devnet["rpc_url"]) as plain, pytest.raises(RpcError) as unpacked:
        plain.batch(calls)
    with RpcClient(devnet["rpc_url"]) as plain, pytest.raises(RpcError) as last:
        plain.batch(calls[-1:])
    assert str(unpacked.value) != str(last.value)  # two refusals in other words
    with RpcClient(devnet["rpc_url"], RpcSettings(aggregate_calls=100)) as packed, pytest.raises(RpcError) as raised:
        packed.batch(calls)
    assert str(raised.value) == str(unpacked.value)


#: Runtime code that counts 700,000 down, then returns 42 (about 18.2M gas: within a 30M cap alone, not twice).
BURNER = "0x620aae605b6001900380600457602a60005260206000f3"
#: Runtime code that returns 42 at once.
ANSWER = "0x602a60005260206000f3"


@pytest.fixture
def capped_node(tmp_path: Path) -> Iterator[str]:
    """A bare anvil with its default gas cap (30M a call, as a provider caps eth_call; the devnet lifts it)."""
    port = free_port()
    with (tmp_path / "anvil.log").open("wb") as log:
        process = subprocess.Popen([str(anvil_binary()), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with RpcClient(url, timeout_s=2, max_retries=20) as rpc:
            rpc.call("eth_chainId")
        yield url
    finally:
        process.kill()
        process.wait()


#: Runtime code that returns 42 to a caller that is the transaction's origin and reverts for any other (msg.sender ==
#: tx.origin: how Chainlink's access-controlled aggregators let externally owned callers read).
ORIGIN_GATED = "0x333214600a57600080fd5b602a60005260206000f3"


def test_a_getter_for_externally_owned_callers_answers_packed_as_alone(capped_node: str) -> None:
    """A getter that answers only when msg.sender is tx.origin answers a plain eth_call (the zero address is both);
    packed, the aggregator is its caller, and the aggregate is sent from the aggregator so that it is the origin too:
    the same answer, where before the getter refused and batch_each took the revert as the callee's own (None)."""
    gated, other = "0x" + "9a" * 20, "0x" + "9b" * 20
    with RpcClient(capped_node) as rpc:
        rpc.call("anvil_setCode", [gated, ORIGIN_GATED])
        rpc.call("anvil_setCode", [other, ANSWER])
        calls = [_call(gated, "0x", "latest"), _call(other, "0x", "latest"), _call(gated, "0x", "latest")]
        alone = rpc.batch_each(calls)
    assert alone == ["0x" + "00" * 31 + "2a"] * 3
    with RpcClient(capped_node, RpcSettings(aggregate_calls=100)) as packed:
        assert packed.batch_each(calls) == alone
        assert packed.faults_absorbed == {}


def test_calls_past_the_gas_cap_are_left_unrun_and_asked_alone(capped_node: str, exchanges: list[list[Any]]) -> None:
    """Two calls of 18M gas each, packed with three light ones under a 30M cap: the second runs out of the gas left,
    and the aggregator keeps back what it needs to answer, so the aggregate still answers; the calls from the second
    on are asked alone (with batch_each too: a call that used most of its gas is not taken as refusing), every answer
    is each call's own, no fault is counted and packing stays on."""
    burner, light = "0x" + "b0" * 20, "0x" + "c0" * 20
    with RpcClient(capped_node) as rpc:
        rpc.call("anvil_setCode", [burner, BURNER])
        rpc.call("anvil_setCode", [light, ANSWER])
    calls = [_call(t, "0x", "latest") for t in (light, burner, burner, light, light)]
    with RpcClient(capped_node) as plain:
        expected = plain.batch(calls)
    assert expected == ["0x" + "0" * 62 + "2a"] * 5
    exchanges.clear()
    with RpcClient(capped_node, RpcSettings(aggregate_calls=100)) as packed:
        assert packed.batch(calls) == expected
        assert packed.faults_absorbed == {}
        assert [len(e) for e in exchanges] == [1, 3]  # the aggregate, then the second burner and the two after it
        exchanges.clear()
        assert packed.batch_each(calls) == expected
        assert [len(e) for e in exchanges] == [1, 3]
        exchanges.clear()
        assert packed.batch(calls[:2]) == expected[:2]
        assert [len(e) for e in exchanges] == [1]  # still packed


def test_a_node_that_ignores_the_override_gets_each_call_alone(
    devnet: dict[str, Any], monkeypatch: pytest.MonkeyPatch, exchanges: list[list[Any]]
) -> None:
    """The aggregator's code left out of the override (as a node that ignores overrides would run it: an address
    without code answers "0x"): the client counts aggregate_refused, answers every call as unpacked, and asks its later
    calls unpacked, as does a later client of the same URL in the process, without a refusal of its own."""
    tokens = [str(t) for t in devnet["tokens"].values()]
    calls = [_call(t, ERC20.encode("decimals"), "latest") for t in tokens]
    with RpcClient(devnet["rpc_url"]) as plain:
        expected = plain.batch(calls)
    runtime = packing.RUNTIME
    monkeypatch.setattr(packing, "RUNTIME", "0x")
    monkeypatch.setattr(rpc_client, "_AGGREGATE_REFUSED", {})  # what this test teaches the process stays here
    with RpcClient(devnet["rpc_url"], RpcSettings(aggregate_calls=100)) as packed:
        assert packed.batch(calls) == expected
        assert packed.faults_absorbed == {"aggregate_refused": 1}
        exchanges.clear()
        assert packed.batch(calls) == expected
        assert sum(len(e) for e in exchanges) == len(calls)  # no aggregate tried again
    exchanges.clear()
    with RpcClient(devnet["rpc_url"], RpcSettings(aggregate_calls=100)) as later:  # the next market's client
        assert later.batch(calls) == expected
        assert later.faults_absorbed == {}
        assert sum(len(e) for e in exchanges) == len(calls)
    # An hour on (a `watch` run later), a client packs again: refused once more while the node still refuses...
    monkeypatch.setattr(rpc_client, "RECHECK_BATCH_S", 0.0)
    with RpcClient(devnet["rpc_url"], RpcSettings(aggregate_calls=100)) as hour_later:
        assert hour_later.batch(calls) == expected and hour_later.faults_absorbed == {"aggregate_refused": 1}
    # ...and packs for good once the node takes the override (a refusal that was a busy node's timeout).
    monkeypatch.setattr(packing, "RUNTIME", runtime)
    exchanges.clear()
    with RpcClient(devnet["rpc_url"], RpcSettings(aggregate_calls=100)) as healed:
        assert healed.batch(calls) == expected and healed.faults_absorbed == {}
        assert sum(len(e) for e in exchanges) == 1  # one aggregate


def test_an_index_with_packed_calls_stores_what_one_without_stores(
    devnet: dict[str, Any], tmp_path: Path, exchanges: list[list[Any]]
) -> None:
    """Every devnet market indexed at one block with and without aggregation: the same rows in every table the index
    writes, and the packed index sends fewer calls."""
    with RpcClient(devnet["rpc_url"]) as rpc:
        head = rpc.head()
    counts = {}
    for packed in (False, True):
        db = tmp_path / f"packed-{packed}.duckdb"
        exchanges.clear()
        with use_settings(RpcSettings(aggregate_calls=100 if packed else 0)):
            for market in devnet_config(devnet, db).markets:
                report = index_market(
                    market.protocol, devnet["rpc_url"], market.address, db, options=market.options, to_block=head
                )
                assert "aggregate_refused" not in report.faults_absorbed
        counts[packed] = sum(len(e) for e in exchanges)
    assert counts[True] < counts[False] / 2, counts
    with duckdb.connect(str(tmp_path / "packed-False.duckdb"), read_only=True) as con:
        con.execute(f"ATTACH '{tmp_path / 'packed-True.duckdb'}' AS packed (READ_ONLY)")
        raw = [
            t
            for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'packed-False' "
                "AND schema_name = 'main' AND table_name LIKE 'raw_%'"
            ).fetchall()
        ]
        assert raw
        for table in (*TABLES, *raw):
            columns = [c for (c,) in con.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchall()]
            kept = ", ".join(f'"{c}"' for c in columns if c not in ("indexed_at", "updated_at"))
            differ = con.execute(
                f"SELECT count(*) FROM ((SELECT {kept} FROM main.{table} EXCEPT ALL SELECT {kept} FROM packed.{table}) "
                f"UNION ALL (SELECT {kept} FROM packed.{table} EXCEPT ALL SELECT {kept} FROM main.{table}))"
            ).fetchone()
            assert differ == (0,), table


def test_aggregate_calls_is_checked(tmp_path: Path) -> None:
    assert aggregate_calls("x", 0) == 0 and aggregate_calls("x", 100) == 100
    for bad in (1, -1, 1001, "100", True, 2.5):
        with pytest.raises(UserError, match="aggregate_calls must be 0"):
            aggregate_calls("x", bad)
    config = tmp_path / "chainrisk.toml"
    config.write_text('aggregate_calls = 50\n[[markets]]\npreset = "aave-v3-ethereum"\n')
    assert load_config(config).rpc_settings() == RpcSettings(aggregate_calls=50)
    config.write_text('[[markets]]\npreset = "aave-v3-ethereum"\n')
    assert load_config(config).aggregate_calls == 100  # on unless the config says otherwise
