"""benchmarks/scale.py's chain-state writing on a bare anvil: the log emitter leaves exactly the logs asked for, from
the contract's own address, which chainrisk's own decoders read back as the accounts, and puts the code back; the
storage probe finds the slot a value was written to and refuses an ambiguous one."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chainrisk.protocols.aave_v3.events import decode_log as decode_aave
from chainrisk.protocols.morpho_blue.events import decode_log as decode_morpho
from chainrisk.rpc import RpcClient
from tests.chainops import bare_chain

CONTRACT = "0x" + "ab" * 20
CODE = "0x600160005260206000f3"  # returns 1: any code the emitter must put back


def _scale() -> ModuleType:
    path = Path(__file__).parent.parent / "benchmarks" / "scale.py"
    spec = importlib.util.spec_from_file_location("scale_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


scale: Any = _scale()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RpcClient, int]]:
    with bare_chain(tmp_path_factory.mktemp("scale")) as chain:
        chain.rpc.call("anvil_setCode", [CONTRACT, CODE])
        yield chain.rpc, chain.pid


def _logs(rpc: RpcClient, since: int) -> list[dict[str, Any]]:
    return list(rpc.call("eth_getLogs", [{"address": CONTRACT, "fromBlock": hex(since), "toBlock": "latest"}]))


def test_emitted_logs_are_the_records_and_the_code_comes_back(node: tuple[RpcClient, int]) -> None:
    rpc, pid = node
    head = rpc.call("eth_getBlockByNumber", ["latest", False])
    sender = scale.Sender(rpc, int(head["timestamp"], 16), pid)
    since = int(head["number"], 16) + 1
    wallets = [scale._wallet("test", i) for i in range(3)]
    transfers = [[scale.TRANSFER_TOPIC, 0, w, 10**18 + i] for i, w in enumerate(wallets)]
    assert scale.emit_logs(sender, CONTRACT, 3, 1, transfers) == 1
    market = "0x" + "cd" * 32
    borrows = [[scale.BORROW_TOPIC, market, w, w, w, 5 + i, (5 + i) * 10**6] for i, w in enumerate(wallets)]
    scale.emit_logs(sender, CONTRACT, 4, 3, borrows)
    assert rpc.call("eth_getCode", [CONTRACT, "latest"]) == CODE
    logs = _logs(rpc, since)
    assert len(logs) == 6
    kinds = {CONTRACT: ("ATokenTransfer", "0x" + "11" * 20)}
    aave = [decode_aave(log, kinds) for log in logs[:3]]
    assert [(e.event, e.wallet, e.amount) for e in aave if e] == [
        ("ATokenTransfer", w, 10**18 + i) for i, w in enumerate(wallets)
    ]
    morpho = [decode_morpho(log) for log in logs[3:]]
    assert [(e.event, e.market_id, e.wallet, e.caller, e.assets, e.shares) for e in morpho if e] == [
        ("Borrow", market, w, w, 5 + i, (5 + i) * 10**6) for i, w in enumerate(wallets)
    ]


def test_probe_finds_the_written_slot_and_refuses_an_ambiguous_one(node: tuple[RpcClient, int]) -> None:
    rpc, _ = node
    holder = scale._wallet("holder", 0)
    writer = scale.StateWriter(rpc)
    writer.set(CONTRACT, scale.mapping_slot(holder, 57), 7 << 128 | 12345)
    writer.set(CONTRACT, 31, 999)
    writer.flush()
    assert scale.probe_mapping(rpc, CONTRACT, holder, 12345, 2**128 - 1) == 57
    assert scale.probe_plain(rpc, CONTRACT, 999) == 31
    writer.set(CONTRACT, scale.mapping_slot(holder, 58), 12345)
    writer.flush()
    with pytest.raises(SystemExit, match="2 mapping slots"):
        scale.probe_mapping(rpc, CONTRACT, holder, 12345, 2**128 - 1)
