"""Starts and stops the local anvil node, and sends devnet transactions in mined batches."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chainrisk.abi import Abi
from chainrisk.devnet.toolchain import CompiledContract, anvil_binary
from chainrisk.errors import UserError
from chainrisk.rpc import RpcClient, RpcError, mask_url

#: Anvil's first default account (mnemonic "test test ... junk"); deploys and administers everything.
DEPLOYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
#: Gas given to every devnet transaction: no estimation, since several depend on each other within one block.
TX_GAS = 8_000_000
#: Transactions per mined block, about a busy mainnet block's count.
MAX_TXS_PER_BLOCK = 400
#: The devnet's block gas limit: room for a full block of TX_GAS transactions, and the gas an eth_call without its own
#: is given, as a production node gives its cap (geth's RPCGasCap, 50M by default). Finite, so that a contract whose
#: call never ends (a gas-burning oracle) runs out of gas in about a second instead of holding the node until the
#: client's timeout, as it did with anvil's --disable-block-gas-limit (calls then ran on unbounded gas).
BLOCK_GAS_LIMIT = MAX_TXS_PER_BLOCK * TX_GAS
#: Genesis timestamp; the price replay then moves block time forward.
GENESIS_TIMESTAMP = 1_600_000_000


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    """A loopback port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_anvil(
    port: int, chain_id: int, log_path: Path, *, detach: bool, extra_args: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """anvil on loopback with mining under our control, any sender impersonated, fees at zero; `extra_args` are
    anvil's own options (benchmarks/scale.py keeps only recent states with --prune-history)."""
    if not port_is_free(port):
        raise UserError(f"port {port} is in use; stop what holds it (`chainrisk devnet down`) or pass --port")
    args = [
        str(anvil_binary()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--no-mining",
        "--auto-impersonate",
        "--gas-limit",
        str(BLOCK_GAS_LIMIT),
        "--block-base-fee-per-gas",
        "0",
        "--gas-price",
        "0",
        "--timestamp",
        str(GENESIS_TIMESTAMP),
        "--no-request-size-limit",
        "--order",
        "fifo",
        *extra_args,
    ]
    log = log_path.open("wb")
    process = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=detach
    )
    deadline = time.monotonic() + 30
    with RpcClient(f"http://127.0.0.1:{port}", timeout_s=2, max_retries=0) as rpc:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise UserError(f"anvil exited at start (code {process.returncode}); see {log_path}")
            try:
                if int(rpc.call("eth_chainId"), 16) == chain_id:
                    return process
            except UserError:
                time.sleep(0.1)
    process.kill()
    raise UserError(f"anvil did not answer on port {port} within 30 s; see {log_path}")


def stop_process(pid: int) -> bool:
    """Stops a detached anvil by pid; False when it was not running."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(50):
        if _exited(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    _exited(pid)
    return True


def _exited(pid: int) -> bool:
    """True once `pid` is gone. A child of this process (anvil started with detach=False) stays a zombie, which
    signal 0 still reaches, until it is reaped: reap it here."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: a detached anvil, reaped by init
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return reaped == pid


class TransactionFailed(Exception):
    """A devnet set-up transaction reverted where it must not."""


@dataclass
class Tx:
    sender: str  #: from address (impersonated)
    to: str | None  #: None deploys
    data: str  #: calldata or creation code
    label: str  #: what the transaction does, for reports
    required: bool  #: a revert aborts the build (set-up) or is merely counted (simulated behaviour)
    value: int = 0  #: wei sent with the call (payable functions, e.g. Liquity's openTrove)


@dataclass
class Receipt:
    tx: Tx
    ok: bool  #: status 1
    contract_address: str | None
    logs: list[dict[str, Any]]


class LocalSender:
    """eth_sendTransaction to the devnet's anvil, one call at a time over one kept-alive http.client connection.

    A devnet's build sends its transactions one by one, in order: anvil (`--order fifo`) includes them in the order
    it received them, and a JSON-RPC batch would let anvil take them in another order, so the same seed would not
    build the same chain. Each call is then a round trip, ~9,300 for the tests' 700-wallet devnet: httpx (RpcClient)
    costs ~0.7 ms of Python per call on top of anvil's own ~0.3 ms, where http.client costs next to nothing. The
    builder's other calls (nonces, mining, receipts) stay on RpcClient."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"LocalSender takes an http:// URL, not {url}")
        self.url = url
        self._path = parts.path or "/"
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
        self._ids: Iterator[int] = itertools.count(1)

    def send(self, transaction: dict[str, Any]) -> str:
        """The transaction's hash; a JSON-RPC error raises RpcError, as RpcClient's call does."""
        body = json.dumps(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": "eth_sendTransaction", "params": [transaction]}
        )
        try:
            self._connection.request("POST", self._path, body, {"Content-Type": "application/json"})
            response = self._connection.getresponse()
            answer = json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._connection.close()
            where = mask_url(self.url)
            raise UserError(f"the devnet's anvil at {where} failed mid-build: {type(exc).__name__}") from None
        if response.status != 200 or not isinstance(answer, dict):
            raise UserError(f"the devnet's anvil at {mask_url(self.url)} answered HTTP {response.status} mid-build")
        if answer.get("error") is not None:
            raise RpcError.of("eth_sendTransaction", answer["error"])
        result: str = answer["result"]
        return result

    def close(self) -> None:
        self._connection.close()


@dataclass
class BlockBuilder:
    """Queues transactions, then mines them in one block at a chosen timestamp and checks every receipt."""

    rpc: RpcClient
    timestamp: int = GENESIS_TIMESTAMP
    queue: list[Tx] = field(default_factory=list)
    nonces: dict[str, int] = field(default_factory=dict)
    reverted: dict[str, int] = field(default_factory=dict)
    _sender: LocalSender | None = field(default=None, repr=False)

    def _send(self, payload: dict[str, Any]) -> str:
        """eth_sendTransaction through a LocalSender where the devnet is an http:// URL (always, but for a test's
        proxy of another scheme), else through the RpcClient."""
        if self._sender is None and self.rpc.url.startswith("http://"):
            self._sender = LocalSender(self.rpc.url)
        if self._sender is None:
            result: str = self.rpc.call("eth_sendTransaction", [payload])
            return result
        return self._sender.send(payload)

    def send(
        self, sender: str, to: str | None, data: str, label: str, *, required: bool = True, value: int = 0
    ) -> None:
        self.queue.append(Tx(sender, to, data, label, required, value))

    def call(self, sender: str, abi: Abi, to: str, fn: str, *args: Any, required: bool = True, value: int = 0) -> None:
        self.send(sender, to, abi.encode(fn, *args), fn, required=required, value=value)

    def deploy(self, contract: CompiledContract, *args: Any, label: str) -> str:
        """Deploys immediately (own block) and returns the new address."""
        self.send(DEPLOYER, None, Abi(contract.abi).deploy_data(contract.bytecode, *args), label)
        receipt = self.mine()[-1]
        assert receipt.contract_address is not None
        return receipt.contract_address

    def mine(self, advance_s: int = 0) -> list[Receipt]:
        """Mines the queue `advance_s` seconds after the previous block, in blocks of MAX_TXS_PER_BLOCK."""
        self.timestamp += advance_s
        txs, self.queue = self.queue, []
        receipts: list[Receipt] = []
        for start in range(0, max(len(txs), 1), MAX_TXS_PER_BLOCK):
            receipts.extend(self._mine_block(txs[start : start + MAX_TXS_PER_BLOCK]))
        return receipts

    def _mine_block(self, txs: list[Tx]) -> list[Receipt]:
        hashes = []
        for tx in txs:
            key = tx.sender.lower()
            nonce = self.nonces.get(key)
            if nonce is None:
                nonce = int(self.rpc.call("eth_getTransactionCount", [tx.sender, "pending"]), 16)
            self.nonces[key] = nonce + 1
            payload: dict[str, Any] = {
                "from": tx.sender,
                "data": tx.data,
                "gas": hex(TX_GAS),
                "gasPrice": "0x0",
                "nonce": hex(nonce),
            }
            if tx.to is not None:
                payload["to"] = tx.to
            if tx.value:
                payload["value"] = hex(tx.value)
            hashes.append(self._send(payload))
        self.rpc.call("evm_mine", [self.timestamp])
        # One call per block: anvil answers each eth_getTransactionReceipt by walking the block, which
        # made per-transaction lookups quadratic in the block's size.
        by_hash = {r["transactionHash"]: r for r in self.rpc.call("eth_getBlockReceipts", ["latest"]) or []}
        receipts = []
        for tx, tx_hash in zip(txs, hashes, strict=True):
            item = by_hash.get(tx_hash)
            if item is None:
                raise TransactionFailed(f"{tx.label}: not in the mined block (tx {tx_hash})")
            ok = int(item["status"], 16) == 1
            if not ok:
                if tx.required:
                    raise TransactionFailed(f"{tx.label} reverted (tx {tx_hash})")
                self.reverted[tx.label] = self.reverted.get(tx.label, 0) + 1
            receipts.append(Receipt(tx, ok, item.get("contractAddress"), item["logs"]))
        return receipts
