"""Synchronous JSON-RPC client over httpx: batches matched by id, read methods retried through transient faults
(each absorbed fault counted by kind), secret-safe URLs."""

from __future__ import annotations

import atexit
import contextlib
import email.utils
import functools
import itertools
import logging
import os
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from chainrisk.errors import UserError
from chainrisk.rpc import aggregate
from chainrisk.rpc.retryable import (
    READ_METHODS,
    RETRYABLE_HTTP_STATUS,
    RETRYABLE_RPC_CODES,
    RETRYABLE_TRANSPORT_ERRORS,
    is_batch_refusal,
    is_lagging_node,
    is_out_of_gas,
    is_range_refusal,
    named_batch_limit,
)

log = logging.getLogger(__name__)
RpcCall = tuple[str, Sequence[Any]]
#: Attempts after a refused connection (or a node that has never answered) before the error reaches the user.
CONNECT_RETRIES = 2
#: A request silent this long before its timeout is worth a warning line as it is asked again.
SLOW_ANSWER_S = 10.0
#: RPC URLs that have answered any client of this process: a node that once answered and now times out (a `watch`
#: over a busy provider) keeps the full retry budget; one that never has is given up on after CONNECT_RETRIES.
_ANSWERED: set[str] = set()
#: How far behind a pinned block a head may be and still count as a lagging pool member's answer (asked again);
#: further behind, the pinned block is the user's mistake and the head is taken as it is.
MAX_NODE_LAG = 128
#: Calls per batch the node at each URL took after refusing longer batches, and when that was learnt (time.monotonic),
#: shared by the process's clients: every market's index, job and `watch` run after the first starts at the size the
#: node takes, instead of each client learning it again from a refused batch.
_LEARNT_BATCH_SIZE: dict[str, tuple[int, float]] = {}
#: Seconds a learnt size is kept as it is. A client made later starts at twice it (at most the settings' size): a
#: node whose cap was raised, or a refusal that was for an answer's bytes (heavier calls than the usual), is then
#: found out, at the cost of at most one refused batch per URL every RECHECK_BATCH_S while the cap stands.
RECHECK_BATCH_S = 3600.0
#: URLs whose node refused an aggregated eth_call (aggregate_refused), and when (time.monotonic), shared by the
#: process's clients: the later markets of a run and the later runs of `watch` send their calls one by one from the
#: start. A client made RECHECK_BATCH_S after the refusal packs again (a refusal may have been a busy node's timeout):
#: at most one refused aggregate an hour while the node keeps refusing.
_AGGREGATE_REFUSED: dict[str, float] = {}
#: URLs whose node was found not to run an eth_call under a state override (`RpcClient.takes_overrides`: it refused
#: the third parameter, or ran the call without the code placed), and when (time.monotonic), shared by the process's
#: clients: the later markets and runs read lenses' accounts by plain getters from the start, and pack no calls. Kept
#: RECHECK_BATCH_S, as a learnt batch size; then probed again.
_OVERRIDES_REFUSED: dict[str, float] = {}
#: What the override probe places: a runtime that returns the word 1 (PUSH1 1 PUSH1 0 MSTORE PUSH1 32 PUSH1 0
#: RETURN), at an address nobody controls.
PROBE_RUNTIME = "0x600160005260206000f3"
PROBE_ADDRESS = "0x000000000000000000000000000000000ba5e1a5"

#: What `RpcClient.faults_absorbed` counts, by kind: each a retry of the HTTP request, except
#: log_range_resplit (an eth_getLogs range halved after a provider refused it) and batch_out_of_order (items
#: re-matched by id, nothing re-sent). A status other than 429 and 5xx is counted as http_<status>.
FAULT_KINDS: dict[str, str] = {
    "timeout": "no answer within the settings' timeout",
    "connection": "connection refused, reset or closed mid-response",
    "http_429": "rate limited (Retry-After honoured)",
    "http_5xx": "500, 502, 503 or 504 from the provider or its gateway",
    "invalid_json": "a truncated or non-JSON body (an HTML error page)",
    "rpc_error": "a JSON-RPC error object for load (-32005, -32603, 429), for the batch or some items",
    "batch_missing": "a batch answer without some items (only those were asked again)",
    "batch_out_of_order": "a batch answer in another order than asked",
    "lagging_node": "a node answered for an older block (head behind the pinned block, block not found yet)",
    "log_range_resplit": "an eth_getLogs range or result-size refusal; the span was halved",
    "batch_too_large": "a batch refused for its length or its answer's size (HTTP 413; geth, erigon, besu, "
    "nethermind's caps), or refused as a request at all (a node or relay without batches: its calls then go one "
    "request each): sent again in halves, and the client's later batches kept at that size",
    "aggregate_refused": "an aggregated eth_call refused, or answered as the aggregator would not (a node that ignores "
    "state overrides): its calls asked one by one, and so are the later calls of every client of the URL in the "
    "process for RECHECK_BATCH_S",
    "lens_unanswered": "a lens eth_call (Aave's accounts, Liquity's troves, Maker's vaults) refused or answered empty "
    "(a node that refuses or ignores state overrides, or a getter it calls reverting): its accounts read by plain "
    "eth_calls of the same getters (chainrisk.protocols.lens)",
}


@dataclass(frozen=True)
class RpcSettings:
    """How the client talks to a node: request timeout, batch size, and retries of transient failures."""

    timeout_s: float = 60.0  #: per HTTP request (connect, send, each read)
    batch_size: int = 500  #: calls per JSON-RPC batch (providers cap batches, e.g. at 1,000)
    max_retries: int = 5  #: retries in a row without progress before the error reaches the user
    backoff_s: float = 0.25  #: wait before the first retry; doubles with each retry in a row
    max_backoff_s: float = 8.0  #: longest wait between retries (a Retry-After may ask for more)
    max_retry_after_s: float = 60.0  #: longest Retry-After honoured; a longer one ends the run at once
    #: plain eth_calls of one block packed into one eth_call, this many at most (chainrisk.rpc.aggregate); 0: none
    aggregate_calls: int = 0
    #: HTTP headers sent to some RPC hosts, as (host, name, value): a node behind an authenticating proxy, a provider
    #: that takes its key as a header. A host is an RPC URL's host, or host:port to tell ports apart.
    headers: tuple[tuple[str, str, str], ...] = ()

    def headers_for(self, url: str) -> dict[str, str]:
        """The headers of `headers` whose host is `url`'s (its host:port, or its host alone)."""
        parts = urlsplit(url)
        hosts = {parts.netloc.rsplit("@", 1)[-1].lower(), (parts.hostname or "").lower()}
        return {name: value for host, name, value in self.headers if host.lower() in hosts}

    def backoff(self, failures: int) -> float:
        return float(min(self.backoff_s * 2 ** max(0, failures - 1), self.max_backoff_s))


#: The settings of every client made without its own: the process's config (`use_settings`).
_PROCESS_SETTINGS = RpcSettings()


@contextlib.contextmanager
def use_settings(settings: RpcSettings) -> Iterator[None]:
    """Within the block, clients made without settings of their own take `settings` (a run's config: aggregation
    reaches the index, the look-through and every other job's client); the previous ones after it."""
    global _PROCESS_SETTINGS
    previous, _PROCESS_SETTINGS = _PROCESS_SETTINGS, settings
    try:
        yield
    finally:
        _PROCESS_SETTINGS = previous


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's own default TLS context (certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR), made once per process and
    shared by every client: making one loads the whole CA bundle, 25-60 ms a client here, and a run makes a client
    per market and job (the suite's profile found 2 % of its Python time there). A context is configuration, safe to
    share between connections and threads."""
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class RpcUsage:
    """HTTP requests sent to a node and the JSON-RPC calls in them, retries included."""

    requests: int = 0
    calls: int = 0

    def line(self) -> str:
        """'RPC 85 requests, 1,130 calls', as run, index and chains lines say it."""
        return f"RPC {self.requests:,} requests, {self.calls:,} calls"


class _SharedPool(httpx.BaseTransport):
    """The process's one pool of HTTP connections, lent to every client (each client's own settings, its timeout
    above all, travel with each request). A run makes a client per market and job, and each used to open its own
    connection: against a remote provider a new one costs a TCP and a TLS handshake, a round trip each, before
    the first call. A client's close leaves the pool open; the pool closes when the process exits. httpx's pool
    is safe to share between threads (its Client's docstring, encode/httpx#2380)."""

    _lock = threading.Lock()
    _pool: httpx.HTTPTransport | None = None
    _pid = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.pool().handle_request(request)

    def close(self) -> None:
        """Lent, not owned: the pool stays open for the process's other clients."""

    @classmethod
    def pool(cls) -> httpx.HTTPTransport:
        """The pool, made on first use and again in a forked child (whose parent's connections are not its own)."""
        with cls._lock:
            if cls._pool is None or cls._pid != os.getpid():
                cls._pool, cls._pid = httpx.HTTPTransport(verify=_tls_context()), os.getpid()
                atexit.register(cls._pool.close)
            return cls._pool


class RpcError(Exception):
    """A JSON-RPC error object returned by the node for one call, and not a transient one."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message
        self.data = data

    @classmethod
    def of(cls, method: str, error: Any) -> RpcError:
        """The error a JSON-RPC answer's `error` member stands for: an object's code (0 when it is not an integer),
        message and data, or any other value as the message."""
        fields = error if isinstance(error, dict) else {"message": str(error)}
        code = fields.get("code")
        return cls(method, code if isinstance(code, int) else 0, str(fields.get("message", "")), fields.get("data"))


class _BatchTooLarge(Exception):
    """The node refused a batch of read calls for its length or its answer's size."""

    def __init__(self, reason: str, limit: int | None = None) -> None:
        super().__init__(reason)
        self.limit = limit  #: the largest batch the node says it takes, when it says


class _Transient(Exception):
    """The whole HTTP exchange failed in a way worth retrying."""

    def __init__(self, kind: str, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.wait_s = wait_s


#: JSON-RPC codes a node or proxy without batches answers an array with, as one object: it read no request in it.
_NOT_A_REQUEST = (-32700, -32600)  # parse error (OP's proxyd before it took batches), invalid request


def _raise_if_batch_refused(answers: list[dict[str, Any] | None]) -> None:
    """_BatchTooLarge when any of a batch's answers is the node's refusal of the batch for its size (a revert's
    reason is the contract's words, never the node's), or, as one error object without an id saying it read no request
    (_NOT_A_REQUEST), of batches at all: then each call goes alone (limit 1)."""
    for item in answers:
        error = item.get("error") if item is not None else None
        message = str(error.get("message", "")) if isinstance(error, dict) else str(error or "")
        reverted = (isinstance(error, dict) and error.get("code") == 3) or message.startswith("execution reverted")
        if error is None or reverted:
            continue
        if is_batch_refusal(message):  # a cap on the batch's length: halved, or to the size it names
            raise _BatchTooLarge(message, named_batch_limit(message))
        if (
            item is not None
            and item.get("id") is None
            and isinstance(error, dict)
            and error.get("code") in _NOT_A_REQUEST
        ):
            raise _BatchTooLarge(f"a batch refused as a request: {message}", limit=1)


def learnt_recently(when: float) -> bool:
    """Whether something learnt of a node at `when` (time.monotonic) is younger than RECHECK_BATCH_S: a learnt batch
    size, a refused aggregate, a log range cap. Older, it is tried again: a node's limits change."""
    return time.monotonic() - when < RECHECK_BATCH_S


def _learnt_for(table: dict[str, float], url: str) -> bool:
    """Whether `table` (URL -> when a refusal was learnt) holds one for `url` within RECHECK_BATCH_S."""
    when = table.get(url)
    return when is not None and learnt_recently(when)


def mask_url(url: str) -> str:
    """The URL with credentials and API keys hidden, safe to print or log."""
    masked = re.sub(r"//[^/@]+@", "//***@", url)
    masked = re.sub(r"(/v\d+/|/v\d+/[a-z-]+/)[A-Za-z0-9_-]{16,}", r"\1***", masked)
    return re.sub(r"([?&](?:key|apikey|api_key|token)=)[^&]+", r"\1***", masked, flags=re.IGNORECASE)


def _http_kind(status: int) -> str:
    return "http_429" if status == 429 else ("http_5xx" if status >= 500 else f"http_{status}")


class RpcClient:
    """JSON-RPC over HTTP; `batch` sends many calls in one request and returns results in call order.

    Read methods survive transient faults: failed exchanges are retried with backoff (Retry-After honoured),
    batch answers are matched by id and only missing or failed items asked again, and answers from a node that
    lags behind the head the client was told (`head`) are retried. `faults_absorbed` counts them by kind.
    `timeout_s` and `max_retries` are shorthands that override those of `settings`.
    """

    def __init__(
        self,
        url: str,
        settings: RpcSettings | None = None,
        *,
        timeout_s: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        settings = settings or _PROCESS_SETTINGS
        if timeout_s is not None:
            settings = replace(settings, timeout_s=timeout_s)
        if max_retries is not None:
            settings = replace(settings, max_retries=max_retries)
        if (
            settings.batch_size < 1
            or settings.max_retries < 0
            or settings.timeout_s <= 0
            or settings.aggregate_calls < 0
        ):
            raise ValueError(f"invalid RPC settings {settings}")
        self.url = url
        self.settings = settings
        self._ids = itertools.count(1)
        self._http = httpx.Client(
            timeout=settings.timeout_s,
            verify=_tls_context(),
            transport=_SharedPool(),
            headers=settings.headers_for(url),
        )
        self._absorbed: Counter[str] = Counter()
        #: HTTP requests sent and JSON-RPC calls in them, retries included (`usage`).
        self._requests = self._calls = 0
        #: The head `head` last returned: a null block at or below it is a lagging node's answer.
        self._head: int | None = None
        #: Whether this client's override probe found the node running overrides (takes_overrides asks once).
        self._overrides_taken = False
        #: Calls per batch: the settings' until the node refuses a batch that long (this client or an earlier one of
        #: this process), then what it took; twice that once the size is RECHECK_BATCH_S old.
        self._batch_size = settings.batch_size
        #: Calls packed per aggregated eth_call; 0 once the node refused an aggregate (aggregate_refused).
        self._aggregate = 0 if _learnt_for(_AGGREGATE_REFUSED, url) else settings.aggregate_calls
        learnt = _LEARNT_BATCH_SIZE.get(url)
        if learnt is not None:
            size, when = learnt
            self._batch_size = min(settings.batch_size, size if learnt_recently(when) else 2 * size)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def faults_absorbed(self) -> dict[str, int]:
        """Transient faults this client got past, by kind (FAULT_KINDS)."""
        return dict(sorted(self._absorbed.items()))

    @property
    def usage(self) -> RpcUsage:
        """What this client asked of the node: HTTP requests and the JSON-RPC calls in them, retries included (what
        providers bill and rate-limit)."""
        return RpcUsage(self._requests, self._calls)

    def note_absorbed(self, kind: str) -> None:
        """Counts a fault a caller absorbed with this client (the log fetcher's range resplits)."""
        self._absorbed[kind] += 1

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return self.batch([(method, params)])[0]

    def overrides_refused(self) -> bool:
        """Whether this URL's node was found, within RECHECK_BATCH_S, not to run eth_calls under a state override."""
        return _learnt_for(_OVERRIDES_REFUSED, self.url)

    def takes_overrides(self, tag: str = "latest") -> bool:
        """Whether the node runs an eth_call under a state override: the answer learnt for the URL within
        RECHECK_BATCH_S, else one eth_call of a 10-byte runtime placed by override, which must answer the word 1. What
        a caller asks when every lens call of a batch went unanswered: a node that runs the override ran the lens,
        so its calls failed for gas, time or a revert of their own; one that does not will refuse every lens (and
        every aggregate: packing is turned off for the URL too, for as long)."""
        if self.overrides_refused():
            return False
        if self._overrides_taken:
            return True
        probe = {"to": PROBE_ADDRESS, "data": "0x"}
        try:
            answer = self.call("eth_call", [probe, tag, {PROBE_ADDRESS: {"code": PROBE_RUNTIME}}])
        except RpcError:  # the third parameter refused, or the call reverting without the code
            answer = None
        if isinstance(answer, str) and answer.startswith("0x") and answer[2:].lstrip("0") == "1":
            self._overrides_taken = True
            return True
        _OVERRIDES_REFUSED[self.url] = _AGGREGATE_REFUSED[self.url] = time.monotonic()
        self._aggregate = 0
        return False

    def head(self, at_least: int | None = None, *, answered: int | None = None) -> int:
        """The chain head (eth_blockNumber). A head a little below `at_least` (a block the caller pins) is a
        lagging pool member's answer and is asked again, within the retry budget. `answered`: the head an
        eth_blockNumber already sent answered (chain_and_head), taken as the first."""
        failures = 0
        while True:
            head = answered if answered is not None else int(self.call("eth_blockNumber"), 16)
            answered = None
            behind = 0 if at_least is None else at_least - head
            if not 0 < behind <= MAX_NODE_LAG or failures >= self.settings.max_retries:
                self._head = head
                return head
            failures += 1
            self._absorbed["lagging_node"] += 1
            time.sleep(self.settings.backoff(failures))

    def chain_and_head(self, at_least: int | None = None) -> tuple[int, int]:
        """The chain id (eth_chainId) and the head (as `head`), asked in one round trip."""
        chain_id, head = self.batch([("eth_chainId", []), ("eth_blockNumber", [])])
        return int(chain_id, 16), self.head(at_least, answered=int(head, 16))

    @property
    def batch_size(self) -> int:
        """Calls per batch now: `settings.batch_size`, or less once the node refused batches that long."""
        return self._batch_size

    def batch(self, calls: Sequence[RpcCall]) -> list[Any]:
        return self._batched(calls, refusals_as_none=False)

    def batch_with(self, required: Sequence[RpcCall], optional: Sequence[RpcCall]) -> tuple[list[Any], list[Any]]:
        """`required` as `batch` answers them and `optional` as `batch_each` does, in one round trip: a required call
        refused there is asked again with the other required ones (`batch`), so that its refusal is raised in the
        node's own words."""
        answers = self.batch_each([*required, *optional])
        found, more = answers[: len(required)], answers[len(required) :]
        if any(a is None for a in found):
            found = self.batch(required)
        return found, more

    def batch_each(self, calls: Sequence[RpcCall]) -> list[Any]:
        """Like `batch`, but a call the node refuses for good (a revert: probing a contract for an interface it
        may not have) answers None instead of failing the batch; transient faults are retried as in `batch`."""
        return self._batched(calls, refusals_as_none=True)

    def _batched(self, calls: Sequence[RpcCall], refusals_as_none: bool) -> list[Any]:
        """`calls`, the plain eth_calls of each block packed `aggregate_calls` to an eth_call when the settings say so
        (chainrisk.rpc.aggregate): a packed call's answer is its return data; one that failed in the aggregate, or all
        of an aggregate the node refused, is asked again on its own, as if never packed, but for a revert with gas to
        spare where refusals answer None."""
        if self._aggregate < 2:
            return self._chunked(calls, refusals_as_none)
        by_tag: dict[str, list[tuple[int, str, str]]] = {}
        alone: list[int] = []
        for i, call in enumerate(calls):
            packed = aggregate.packable(call)
            if packed is None:
                alone.append(i)
            else:
                by_tag.setdefault(packed[0], []).append((i, packed[1], packed[2]))
        packs: list[tuple[str, list[tuple[int, str, str]]]] = []
        for tag, members in by_tag.items():
            for start in range(0, len(members), self._aggregate):
                pack = members[start : start + self._aggregate]
                if len(pack) > 1:
                    packs.append((tag, pack))
                else:
                    alone += [i for i, _, _ in pack]
        if not packs:
            return self._chunked(calls, refusals_as_none)
        sent = [calls[i] for i in alone]
        sent += [aggregate.aggregate_call(tag, [(t, d) for _, t, d in pack]) for tag, pack in packs]
        # Every refusal kept as its RpcError, so that the one raised is the first in the calls' order, as unpacked.
        answered = self._chunked(sent, refusals_as_none, tolerant=0)
        results: list[Any] = [None] * len(calls)
        for i, answer in zip(alone, answered[: len(alone)], strict=True):
            results[i] = answer
        again: list[int] = []
        for (_, pack), answer in zip(packs, answered[len(alone) :], strict=True):
            found = None if isinstance(answer, RpcError) else aggregate.answers(answer, len(pack))
            if found is None:
                self._absorbed["aggregate_refused"] += 1
                self._aggregate = 0
                _AGGREGATE_REFUSED[self.url] = time.monotonic()
                found = [(aggregate.UNRUN, "0x")] * len(pack)
            for (i, _, _), (status, value) in zip(pack, found, strict=True):
                if status == aggregate.RETURNED:
                    results[i] = value
                elif status == aggregate.REVERTED and refusals_as_none:
                    results[i] = None  # the callee's own refusal, as batch_each answers it unpacked
                else:
                    again.append(i)
        if again:
            asked = self._chunked([calls[i] for i in again], refusals_as_none, tolerant=0)
            for i, answer in zip(again, asked, strict=True):
                results[i] = answer
        for i, answer in enumerate(results):
            if isinstance(answer, RpcError):
                if not refusals_as_none:
                    raise answer
                results[i] = None
        return results

    def _chunked(self, calls: Sequence[RpcCall], refusals_as_none: bool, tolerant: int | None = None) -> list[Any]:
        """`calls` in batches of `batch_size`; a batch the node refuses for its size (nodes cap both a batch's length
        and its answer's bytes: erigon at 100 calls, geth at 1,000 calls and 25 MB) is sent again in halves, or at
        the limit the refusal names, and the smaller size is kept for the later batches of every client of the URL
        in this process (a longer batch that passes after RECHECK_BATCH_S raises it again). The calls from index
        `tolerant` on answer the RpcError itself where the node refuses them for good (for _batched to sort out)."""
        results: list[Any] = []
        start = 0
        while start < len(calls):
            chunk = calls[start : start + self._batch_size]
            try:
                first = None if tolerant is None else max(0, tolerant - start)
                results.extend(self._send_chunk(chunk, refusals_as_none, first))
            except _BatchTooLarge as refused:
                self._absorbed["batch_too_large"] += 1
                self._batch_size = max(1, min(len(chunk) // 2, refused.limit or len(chunk)))
                self._learn(self._batch_size, lowered=True)
                continue
            self._learn(len(chunk), lowered=False)
            start += len(chunk)
        return results

    def _learn(self, size: int, lowered: bool) -> None:
        """Keeps what a batch of `size` calls taught of the node: a refusal's lower size (unless a recent one is lower
        still), or a passed batch longer than the size learnt (a raised cap; nothing is kept for a node never
        known to refuse)."""
        now = time.monotonic()
        learnt = _LEARNT_BATCH_SIZE.get(self.url)
        if lowered:
            if learnt is None or size < learnt[0] or not learnt_recently(learnt[1]):
                _LEARNT_BATCH_SIZE[self.url] = (size, now)
        elif learnt is not None and size > learnt[0]:
            _LEARNT_BATCH_SIZE[self.url] = (size, now)

    def _send_chunk(
        self, calls: Sequence[RpcCall], refusals_as_none: bool = False, tolerant: int | None = None
    ) -> list[Any]:
        retry_allowed = all(method in READ_METHODS for method, _ in calls)
        results: dict[int, Any] = {}
        pending = list(range(len(calls)))
        failures = 0  # exchanges in a row that answered nothing new
        while True:
            wait: float | None = None
            faults: dict[str, str] = {}  # kind -> reason, for this exchange
            sent = time.monotonic()
            try:
                answers = self._exchange(calls, pending)
            except _Transient as exc:
                faults[exc.kind] = str(exc)
                wait = exc.wait_s
            else:
                if retry_allowed and len(pending) > 1:
                    _raise_if_batch_refused([answers.get(i) for i in pending])
                still = []
                for i in pending:
                    try:
                        fault = self._check(calls[i], answers.get(i), retry_allowed)
                    except RpcError as refusal:
                        if tolerant is not None and i >= tolerant:
                            results[i] = refusal
                            continue
                        if not refusals_as_none:
                            raise
                        results[i] = None
                        continue
                    if fault is None:
                        results[i] = answers[i].get("result")
                    else:
                        faults.setdefault(*fault)
                        still.append(i)
                if not still:
                    return [results[i] for i in range(len(calls))]
                if len(still) < len(pending):
                    failures = 0
                pending = still
            failures += 1
            refused = faults.get("connection") == "ConnectError"
            # A refused connection rarely heals within seconds, nor does a node that has never answered this process
            # (it takes the connection and says nothing): give up sooner than on load errors.
            silent = "timeout" in faults and self.url not in _ANSWERED
            short = refused or silent
            limit = min(self.settings.max_retries, CONNECT_RETRIES) if short else self.settings.max_retries
            waited = time.monotonic() - sent
            if "timeout" in faults and waited >= SLOW_ANSWER_S and retry_allowed and failures <= limit:
                # A timeout is a long silence: say what is going on rather than wait minutes without a word.
                log.warning(
                    "chainrisk: warning: RPC %s did not answer within %.0f s; asking again (%d of %d)",
                    mask_url(self.url),
                    waited,
                    failures,
                    limit,
                )
            if not retry_allowed or failures > limit:
                verb = "cannot reach RPC" if refused else "kept failing: RPC"
                raise UserError(
                    f"{verb} {mask_url(self.url)} after {failures} attempts ({'; '.join(faults.values())}); "
                    "check the URL or try later"
                )
            self._absorbed.update(faults.keys())
            time.sleep(wait if wait is not None else self.settings.backoff(failures))

    def _exchange(self, calls: Sequence[RpcCall], pending: list[int]) -> dict[int, dict[str, Any]]:
        """One HTTP round trip for the calls at the `pending` indices: their answers by index, matched by id
        (an item missing from the answer is missing from the dict)."""
        index_of = {next(self._ids): i for i in pending}
        payload = [
            {"jsonrpc": "2.0", "id": request_id, "method": calls[i][0], "params": list(calls[i][1])}
            for request_id, i in index_of.items()
        ]
        self._requests += 1
        self._calls += len(payload)
        # One call goes as a request object, not a batch of one: a node or proxy without batches takes it.
        batched = len(payload) > 1
        reads = batched and all(calls[i][0] in READ_METHODS for i in pending)
        try:
            response = self._http.post(self.url, json=payload if batched else payload[0])
        except RETRYABLE_TRANSPORT_ERRORS as exc:
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection"
            raise _Transient(kind, type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise UserError(f"cannot reach RPC {mask_url(self.url)}: {type(exc).__name__}") from None
        _ANSWERED.add(self.url)
        if response.status_code in RETRYABLE_HTTP_STATUS:
            kind = _http_kind(response.status_code)
            raise _Transient(kind, f"HTTP {response.status_code}", self._retry_after(response))
        if response.status_code == 413 and reads:
            raise _BatchTooLarge("HTTP 413")  # a gateway's cap on the request's bytes
        if response.status_code == 400 and reads:
            # A relay without batches refusing the array itself (Hedera's JSON-RPC relay): each call goes alone.
            raise _BatchTooLarge("HTTP 400 to a batch", limit=1)
        if response.status_code in (401, 403):
            raise UserError(
                f"RPC {mask_url(self.url)} refused the credentials (HTTP {response.status_code}); check the URL's key, "
                "or the headers the config's [rpc_headers] sends its host"
            )
        if response.status_code != 200:
            raise UserError(f"RPC {mask_url(self.url)} answered HTTP {response.status_code}; check the URL")
        try:
            body = response.json()
        except ValueError:  # truncated JSON, an HTML error page, bytes that are not UTF-8
            raise _Transient("invalid_json", "malformed JSON response") from None
        items = body if isinstance(body, list) else [body]
        if not all(isinstance(item, dict) for item in items):
            raise _Transient("invalid_json", "malformed JSON response")
        answers: dict[int, dict[str, Any]] = {}
        order: list[int] = []
        for item in items:
            request_id = item.get("id")
            if isinstance(request_id, int) and request_id in index_of:
                answers[index_of[request_id]] = item
                order.append(request_id)
        if not answers and items and items[0].get("error") is not None:
            # One error object for the whole batch (id null), as providers send for rate limits.
            return {i: items[0] for i in pending}
        if order != sorted(order):
            self._absorbed["batch_out_of_order"] += 1
        return answers

    def _retry_after(self, response: httpx.Response) -> float | None:
        """Seconds the provider asks to wait (Retry-After as seconds or an HTTP date), None when it says nothing."""
        value = response.headers.get("retry-after", "").strip()
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                return None
        if seconds > self.settings.max_retry_after_s:
            raise UserError(
                f"RPC {mask_url(self.url)} rate-limits this client and asks to wait {seconds:.0f} s; "
                "try later or use another RPC"
            )
        return max(0.0, seconds)

    def _check(self, call: RpcCall, item: dict[str, Any] | None, retry_allowed: bool) -> tuple[str, str] | None:
        """The transient fault in one call's answer as (kind, reason), None for a usable answer; raises RpcError
        when the node refused the call for good (a revert, bad params, a log range to split)."""
        method, params = call
        if item is None:
            return ("batch_missing", "batch response missing items")
        error = item.get("error")
        if error is not None:
            refused = RpcError.of(method, error)
            if retry_allowed and is_lagging_node(refused.message):
                return ("lagging_node", f"node lags: {refused.message}")
            refusal = method == "eth_getLogs" and is_range_refusal(refused.message)
            if (
                retry_allowed
                and refused.code in RETRYABLE_RPC_CODES
                and not refusal
                and not is_out_of_gas(refused.message)
            ):
                return ("rpc_error", f"RPC error {refused.code}: {refused.message}")
            raise refused
        if retry_allowed and method == "eth_getBlockByNumber":
            return self._check_block(params, item.get("result"))
        return None

    def _check_block(self, params: Sequence[Any], block: Any) -> tuple[str, str] | None:
        """A block asked by number must be that block, and exist when it is at or below the known head."""
        tag = params[0] if params else None
        if not (isinstance(tag, str) and tag.startswith("0x")):
            return None
        number = int(tag, 16)
        if block is None:
            if self._head is not None and number <= self._head:
                return ("lagging_node", f"node lags: no block {number} yet below head {self._head}")
            return None
        answered = block.get("number") if isinstance(block, dict) else None
        try:
            same = int(str(answered), 16) == number
        except ValueError:
            same = False
        return None if same else ("lagging_node", f"node answered block {answered} for block {number}")
