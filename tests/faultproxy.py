"""A fault-injecting JSON-RPC proxy for tests: loopback only, bounded in time and requests, seeded; it forwards
to a local node (the devnet's anvil) and answers a chosen share of requests the way failing providers do."""

from __future__ import annotations

import http.client
import http.server
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

#: Every fault the proxy injects, as real providers and their gateways send it.
FAULTS: dict[str, str] = {
    "timeout": "no answer until after the client gave up (the handler waits hang_s, longer than its timeout)",
    "http_429": "HTTP 429 with Retry-After and Alchemy's JSON-RPC rate-limit body",
    "http_5xx": "HTTP 500, 502, 503 or 504 with a gateway's JSON, HTML or text body",
    "reset": "the node's headers and half its body, then a TCP reset",
    "truncated": "HTTP 200 with the node's answer cut short (and a Content-Length that matches the cut)",
    "malformed": "HTTP 200 with an HTML page (Cloudflare's challenge) instead of JSON",
    "rpc_error": "JSON-RPC errors -32005 limit exceeded or -32603 internal error, for the batch or some items",
    "batch_missing": "a batch answer with some items left out",
    "batch_reorder": "a batch answer in another order",
    "logs_refusal": "eth_getLogs refused for its block range or result size, in Infura's, Alchemy's and others' words",
    "lagging": "a node behind the head: eth_blockNumber lower, a pinned block null or an older one, 'header not found'",
}

#: The kind under which chainrisk's client counts each absorbed fault (chainrisk.rpc.FAULT_KINDS).
ABSORBED_AS: dict[str, str] = {
    "timeout": "timeout",
    "http_429": "http_429",
    "http_5xx": "http_5xx",
    "reset": "connection",
    "truncated": "invalid_json",
    "malformed": "invalid_json",
    "rpc_error": "rpc_error",
    "batch_missing": "batch_missing",
    "batch_reorder": "batch_out_of_order",
    "logs_refusal": "log_range_resplit",
    "lagging": "lagging_node",
}

LOG_REFUSALS: tuple[dict[str, Any], ...] = (
    {"code": -32005, "message": "query returned more than 10000 results"},  # Infura
    {
        "code": -32602,
        "message": "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no "
        "limit on the response size, or you can request any block range with a cap of 10K logs in the response.",
    },  # Alchemy
    {"code": -32602, "message": "block range is too wide"},  # Ankr
    {"code": -32614, "message": "eth_getLogs is limited to a 10000 range"},  # QuickNode
)
LOAD_ERRORS: tuple[dict[str, Any], ...] = (
    {"code": -32005, "message": "limit exceeded"},
    {"code": -32603, "message": "internal error"},
)
GATEWAY_PAGES: dict[int, tuple[str, bytes]] = {
    500: ("application/json", b'{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Internal server error"}}'),
    502: (
        "text/html",
        b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
        b"<hr><center>cloudflare</center></body></html>",
    ),
    503: ("text/plain", b"upstream connect error or disconnect/reset before headers. reset reason: overflow"),
    504: (
        "text/html",
        b"<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1>"
        b"</center><hr><center>nginx</center></body></html>",
    ),
}
CHALLENGE_PAGE = (
    b'<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head><body>'
    b"<noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)
RATE_LIMITED = (
    b'{"jsonrpc":"2.0","id":null,"error":{"code":429,"message":"Your app has exceeded its compute units per '
    b'second capacity. If you have retries enabled, you can safely ignore this message."}}'
)
#: How each node refuses a batch longer than it takes (`max_batch`), in its own words (see
#: chainrisk.rpc.retryable.BATCH_REFUSALS for where each comes from); "geth_response" is geth's answer to a batch whose
#: answer outgrows --rpc.batch-response-max-size: the first calls answered, each after them -32003. "proxyd" and
#: "http_400" take no batch at all (`max_batch=0`), as OP's proxyd once answered any array (-32700 "parse error", no
#: id: ethereum-optimism/optimism#2021) and Hedera's JSON-RPC relay does (HTTP 400).
BATCH_STYLES = (
    "geth",
    "erigon",
    "erigon_id_null",
    "besu",
    "nethermind",
    "http_413",
    "geth_response",
    "erigon_invalid_request",
    "proxyd",
    "http_400",
)
#: Styles of a node without batches.
NO_BATCH_STYLES = ("proxyd", "http_400")
REQUEST_TOO_LARGE = (
    b"<html><head><title>413 Request Entity Too Large</title></head><body><center><h1>413 Request Entity Too Large"
    b"</h1></center><hr><center>nginx</center></body></html>"
)


def _batch_refusal(style: str, calls: list[dict[str, Any]], cap: int) -> dict[str, Any]:
    """The error item a node of `style` answers a batch of `calls` over its cap of `cap` with."""
    erigon = f"batch limit {cap} exceeded (can increase by --rpc.batch.limit). Requested batch of size: {len(calls)}"
    first = calls[0].get("id")
    item: dict[str, Any] = {
        "geth": {"id": first, "error": {"code": -32600, "message": "batch too large"}},
        "erigon": {"id": first, "error": {"code": -32600, "message": erigon}},
        "erigon_id_null": {"id": None, "error": {"code": -32000, "message": erigon}},
        "besu": {"id": None, "error": {"code": -32005, "message": "Number of requests exceeds max batch size"}},
        "nethermind": {"id": None, "error": {"code": -32005, "message": "Batch size limit exceeded"}},
        # A cap in the code a node without batches answers with (-32600, no id): still a cap, not "no batches".
        "erigon_invalid_request": {"id": None, "error": {"code": -32600, "message": erigon}},
        "proxyd": {"id": None, "error": {"code": -32700, "message": "parse error"}},
    }[style]
    return {"jsonrpc": "2.0", **item}


#: Methods whose last parameter names the block they read at.
AT_BLOCK = frozenset({"eth_call", "eth_getCode", "eth_getBalance", "eth_getStorageAt", "eth_getTransactionCount"})


def _numeric(tag: Any) -> bool:
    return isinstance(tag, str) and tag.startswith("0x")


def _log_width(call: dict[str, Any]) -> int:
    """Blocks an eth_getLogs call spans (0 when not given as numbers)."""
    query: dict[str, Any] = call["params"][0] if call.get("params") else {}
    lo, hi = str(query.get("fromBlock")), str(query.get("toBlock"))
    return int(hi, 16) - int(lo, 16) + 1 if _numeric(lo) and _numeric(hi) else 0


def _lags(call: dict[str, Any]) -> bool:
    """A lagging node answers this call differently from a synced one."""
    method, params = call.get("method"), call.get("params") or []
    if method == "eth_blockNumber":
        return True
    if method == "eth_getBlockByNumber":
        return bool(params) and _numeric(params[0])
    if method in AT_BLOCK:
        return len(params) >= 2 and _numeric(params[1] if method == "eth_call" else params[-1])
    return method == "eth_getLogs" and _log_width(call) > 0


class FaultProxy:
    """HTTP JSON-RPC proxy on 127.0.0.1 in front of a loopback node. Each request is faulted with probability
    `rate`, the fault drawn uniformly from `kinds` that apply to it; `max_log_range` also refuses every wider
    eth_getLogs, as a provider's range cap does, and `max_batch` every longer batch, as the node `batch_style`
    names does (counted as `batch_too_large`; `batch_lengths` lists every batch's length). `max_faults` stops
    injecting after that many, `methods` limits faults to requests that call one of them. Past `max_requests`
    requests or `max_seconds`, every answer is a 503 and `exhausted` is set: a test never hangs on it. `injected`
    counts faults by kind."""

    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.3,
        kinds: Iterable[str] = FAULTS,
        seed: int = 0,
        hang_s: float = 1.5,
        retry_after_s: int = 1,
        statuses: Iterable[int] = (500, 502, 503, 504),
        older_block_share: float = 0.5,
        max_log_range: int | None = None,
        log_refusals: Iterable[dict[str, Any]] = LOG_REFUSALS,
        max_batch: int | None = None,
        batch_style: str = "geth",
        max_faults: int | None = None,
        methods: Iterable[str] | None = None,
        max_requests: int = 5_000,
        max_seconds: float = 300.0,
    ) -> None:
        target = urlsplit(upstream)
        if target.hostname not in ("127.0.0.1", "localhost", "::1") or target.port is None:
            raise ValueError(f"the fault proxy only fronts a loopback node, not {upstream}")
        self.kinds = sorted(set(kinds))
        unknown = set(self.kinds) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        self.upstream = (target.hostname, target.port, target.path or "/")
        self.rate = rate
        self.hang_s = hang_s
        self.retry_after_s = retry_after_s
        self.statuses = tuple(statuses)
        self.older_block_share = older_block_share
        self.max_log_range = max_log_range
        #: The refusals a wider eth_getLogs gets, one drawn each time; "{first}" and "{last}" in a message are the
        #: first and last block of the range `max_log_range` would take from the refused range's start (Alchemy's
        #: suggestion).
        self.log_refusals = tuple(log_refusals)
        if batch_style not in BATCH_STYLES:
            raise ValueError(f"unknown batch style {batch_style!r}")
        self.max_batch = max_batch
        self.batch_style = batch_style
        #: Length of every batch the proxy was sent, in order.
        self.batch_lengths: list[int] = []
        self.max_faults = max_faults
        self.methods = frozenset(methods) if methods is not None else None
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.exhausted = False
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._deadline = 0.0
        self._serving: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def expected_absorbed(self) -> Counter[str]:
        """What a client that absorbed every injected fault counts, by its own kinds."""
        expected: Counter[str] = Counter()
        for kind, count in self.injected.items():
            expected[ABSORBED_AS.get(kind, kind)] += count
        return expected

    def start(self) -> FaultProxy:
        self._deadline = time.monotonic() + self.max_seconds
        self._serving = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._serving.daemon = True
        self._serving.start()
        return self

    def stop(self) -> None:
        """Stops serving; handlers waiting out a timeout fault wake up and close their connections."""
        self._stopped.set()
        if self._serving is not None:
            self._server.shutdown()
            self._serving.join()
            self._serving = None
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- deciding ------------------------------------------------------------------------------------------------
    def _decide(self, calls: list[dict[str, Any]], batch: bool) -> tuple[str | None, random.Random]:
        """The fault for one request (None: forward it untouched) and a generator for its details, drawn in
        request order under the lock so that a seed replays the same faults."""
        with self._lock:
            detail = random.Random(self._rng.getrandbits(64))
            roll = self._rng.random()
            if self.max_faults is not None and sum(self.injected.values()) >= self.max_faults:
                return None, detail
            if self.methods is not None and not any(c.get("method") in self.methods for c in calls):
                return None, detail
            if self.max_batch is not None and batch and len(calls) > self.max_batch:
                self.injected["batch_too_large"] += 1
                return "batch_too_large", detail
            getlogs = [c for c in calls if c.get("method") == "eth_getLogs"]
            if self.max_log_range is not None and any(_log_width(c) > self.max_log_range for c in getlogs):
                self.injected["logs_refusal"] += 1
                return "logs_refusal", detail
            if roll >= self.rate:
                return None, detail
            applicable = [k for k in self.kinds if self._applies(k, calls, getlogs)]
            if not applicable:
                return None, detail
            kind = self._rng.choice(applicable)
            self.injected[kind] += 1
            return kind, detail

    @staticmethod
    def _applies(kind: str, calls: list[dict[str, Any]], getlogs: list[dict[str, Any]]) -> bool:
        if kind == "batch_reorder":
            return len(calls) >= 2
        if kind == "logs_refusal":
            return any(_log_width(c) >= 2 for c in getlogs)
        if kind == "lagging":
            return any(_lags(c) for c in calls)
        return True

    # -- answering -----------------------------------------------------------------------------------------------
    def _forward(self, body: bytes) -> tuple[int, bytes]:
        host, port, path = self.upstream
        connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _answer(
        self, kind: str | None, calls: list[dict[str, Any]], batch: bool, body: bytes, rng: random.Random
    ) -> tuple[int, str, bytes, dict[str, str]]:
        """Status, content type, body and extra headers for one request under `kind` (timeouts and resets are
        the handler's, since they are about the connection)."""
        if kind == "http_429":
            return 429, "application/json", RATE_LIMITED, {"Retry-After": str(self.retry_after_s)}
        if kind == "http_5xx":
            status = rng.choice(self.statuses)
            content_type, page = GATEWAY_PAGES[status]
            return status, content_type, page, {}
        if kind == "malformed":
            return 200, "text/html; charset=UTF-8", CHALLENGE_PAGE, {}
        if kind == "batch_too_large" and self.batch_style == "http_413":
            return 413, "text/html", REQUEST_TOO_LARGE, {}
        if kind == "batch_too_large" and self.batch_style == "http_400":
            return 400, "text/plain", b"Bad Request", {}
        if kind == "batch_too_large" and self.batch_style != "geth_response":
            refusal = _batch_refusal(self.batch_style, calls, self.max_batch or 0)
            # geth and newer erigon answer a one-item batch; the others one object, as for the whole request.
            return 200, "application/json", json.dumps([refusal] if refusal["id"] is not None else refusal).encode(), {}
        older: set[Any] = set()  # ids of eth_getBlockByNumber calls a lagging node answers with an older block
        if kind == "lagging":
            older = {c.get("id") for c in calls if self._answers_older(c, rng)}
            calls = [
                {**c, "params": [hex(int(c["params"][0], 16) - 1), *c["params"][1:]]} if c.get("id") in older else c
                for c in calls
            ]
            body = json.dumps(calls if batch else calls[0]).encode()
        status, answer = self._forward(body)
        if status != 200 or kind is None or kind == "truncated":
            return status, "application/json", answer, {}
        items = json.loads(answer)
        items = items if isinstance(items, list) else [items]
        by_id = {item.get("id"): item for item in items}
        if kind == "batch_too_large":  # geth_response: answered as far as the cap, then "response too large"
            for item in items[self.max_batch or 0 :]:
                item.pop("result", None)
                item["error"] = {"code": -32003, "message": "response too large"}
        elif kind == "rpc_error":
            error = rng.choice(LOAD_ERRORS)
            if rng.random() < 0.5:  # one error object for the whole request, as gateways answer when overloaded
                return 200, "application/json", json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode(), {}
            for item in rng.sample(items, rng.randint(1, len(items))):
                item.pop("result", None)
                item["error"] = error
        elif kind == "batch_missing":
            dropped = {id(item) for item in rng.sample(items, rng.randint(1, len(items)))}
            items = [item for item in items if id(item) not in dropped]
        elif kind == "batch_reorder":
            original = list(items)
            while items == original:
                rng.shuffle(items)
        elif kind == "logs_refusal":
            chosen = rng.choice(self.log_refusals)
            for call in calls:
                if call.get("method") == "eth_getLogs" and _log_width(call) >= 2:
                    first = int(call["params"][0]["fromBlock"], 16)
                    last = first + (self.max_log_range or 1) - 1
                    message = str(chosen["message"]).replace("{first}", hex(first)).replace("{last}", hex(last))
                    by_id[call.get("id")].pop("result", None)
                    by_id[call.get("id")]["error"] = {**chosen, "message": message}
        elif kind == "lagging" and not (self._lag_answers(calls, by_id, older, rng) or older):
            # Every call it could lag on reverted anyway (probes of views a pool lacks): the client sees no fault,
            # so none was injected.
            with self._lock:
                self.injected["lagging"] -= 1
        return 200, "application/json", json.dumps(items if batch else items[0] if items else []).encode(), {}

    def _answers_older(self, call: dict[str, Any], rng: random.Random) -> bool:
        """Whether a lagging node answers this eth_getBlockByNumber with the block before (else with null)."""
        if not (call.get("method") == "eth_getBlockByNumber" and _lags(call) and int(call["params"][0], 16) > 0):
            return False
        return rng.random() < self.older_block_share

    @staticmethod
    def _lag_answers(
        calls: list[dict[str, Any]], by_id: dict[Any, dict[str, Any]], older: set[Any], rng: random.Random
    ) -> bool:
        """Answers as a node behind the head would; whether any answer changed."""
        changed = False
        for call in calls:
            item = by_id.get(call.get("id"))
            if item is None or not _lags(call) or "error" in item:
                continue
            changed = True
            method = call.get("method")
            if method == "eth_blockNumber":
                item["result"] = hex(max(0, int(item["result"], 16) - rng.randint(1, 3)))
            elif method == "eth_getBlockByNumber":
                if call.get("id") not in older:
                    item["result"] = None  # "not found yet"
            else:
                item.pop("result", None)
                item["error"] = (
                    {
                        "code": -32000,
                        "message": "One of the blocks specified in filter (fromBlock, toBlock or "
                        "blockHash) cannot be found.",
                    }
                    if method == "eth_getLogs"
                    else {"code": -32000, "message": "header not found"}
                )
        return changed

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                return

            def _send(self, status: int, content_type: str, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with proxy._lock:
                    proxy.requests += 1
                    if proxy.requests > proxy.max_requests or time.monotonic() > proxy._deadline:
                        proxy.exhausted = True
                    exhausted = proxy.exhausted
                if exhausted:
                    self._send(503, "text/plain", b"fault proxy: request or time budget exhausted", {})
                    return
                parsed = json.loads(body)
                batch = isinstance(parsed, list)
                calls: list[dict[str, Any]] = parsed if batch else [parsed]
                if batch:
                    with proxy._lock:
                        proxy.batch_lengths.append(len(calls))
                kind, rng = proxy._decide(calls, batch)
                if kind == "timeout":
                    proxy._stopped.wait(proxy.hang_s)
                    self.close_connection = True
                    return
                status, content_type, answer, headers = proxy._answer(kind, calls, batch, body, rng)
                if kind == "reset":
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer[: len(answer) // 2])
                    # Linger 0: close sends RST, as a load balancer dropping the connection does.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if kind == "truncated":
                    answer = answer[: max(1, int(len(answer) * rng.uniform(0.05, 0.95)))]
                self._send(status, content_type, answer, headers)

        return Handler
