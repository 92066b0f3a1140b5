"""Synchronous JSON-RPC client over httpx with batches and retries limited to read methods."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Sequence
from typing import Any

import httpx

from chainrisk.errors import UserError
from chainrisk.rpc.retryable import READ_METHODS, RETRYABLE_HTTP_STATUS, RETRYABLE_RPC_CODES, RETRYABLE_TRANSPORT_ERRORS

RpcCall = tuple[str, Sequence[Any]]
#: Attempts after a refused connection before the error reaches the user.
CONNECT_RETRIES = 2


class RpcError(Exception):
    """A JSON-RPC error object returned by the node for one call."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class _Retryable(Exception):
    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.wait_s = wait_s


def mask_url(url: str) -> str:
    """The URL with credentials and API keys hidden, safe to print or log."""
    masked = re.sub(r"//[^/@]+@", "//***@", url)
    masked = re.sub(r"(/v\d+/|/v\d+/[a-z-]+/)[A-Za-z0-9_-]{16,}", r"\1***", masked)
    return re.sub(r"([?&](?:key|apikey|api_key|token)=)[^&]+", r"\1***", masked, flags=re.IGNORECASE)


class RpcClient:
    """JSON-RPC over HTTP; `batch` sends many calls in one request and returns results in call order."""

    def __init__(self, url: str, *, timeout_s: float = 60.0, max_retries: int = 5, batch_size: int = 500) -> None:
        self.url = url
        self.max_retries = max_retries
        self.batch_size = batch_size
        self._ids = itertools.count(1)
        self._http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return self.batch([(method, params)])[0]

    def batch(self, calls: Sequence[RpcCall]) -> list[Any]:
        results: list[Any] = []
        for start in range(0, len(calls), self.batch_size):
            results.extend(self._send_chunk(calls[start : start + self.batch_size]))
        return results

    def _send_chunk(self, calls: Sequence[RpcCall]) -> list[Any]:
        retry_allowed = all(method in READ_METHODS for method, _ in calls)
        attempt = 0
        while True:
            try:
                return self._post(calls)
            except RpcError as exc:
                if not (retry_allowed and exc.code in RETRYABLE_RPC_CODES) or attempt >= self.max_retries:
                    raise
                attempt += 1
                time.sleep(min(0.25 * 2**attempt, 8.0))
            except _Retryable as exc:
                attempt += 1
                # A refused connection rarely heals within seconds: give up sooner than on load errors.
                limit = min(self.max_retries, CONNECT_RETRIES) if str(exc) == "ConnectError" else self.max_retries
                if not retry_allowed or attempt > limit:
                    verb = "cannot reach RPC" if str(exc) == "ConnectError" else "kept failing: RPC"
                    raise UserError(
                        f"{verb} {mask_url(self.url)} after {attempt} attempts ({exc}); check the URL or try later"
                    ) from None
                time.sleep(exc.wait_s if exc.wait_s is not None else min(0.25 * 2**attempt, 8.0))

    def _post(self, calls: Sequence[RpcCall]) -> list[Any]:
        ids = [next(self._ids) for _ in calls]
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": list(params)}
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        try:
            response = self._http.post(self.url, json=payload)
        except RETRYABLE_TRANSPORT_ERRORS as exc:
            raise _Retryable(type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise UserError(f"cannot reach RPC {mask_url(self.url)}: {type(exc).__name__}") from None
        if response.status_code in RETRYABLE_HTTP_STATUS:
            retry_after = response.headers.get("retry-after", "")
            wait = float(retry_after) if retry_after.isdigit() else None
            raise _Retryable(f"HTTP {response.status_code}", wait)
        if response.status_code != 200:
            raise UserError(f"RPC {mask_url(self.url)} answered HTTP {response.status_code}; check the URL")
        try:
            body = response.json()
        except ValueError:
            raise _Retryable("malformed JSON response") from None
        items = body if isinstance(body, list) else [body]
        by_id = {item.get("id"): item for item in items if isinstance(item, dict)}
        results: list[Any] = []
        for i, (method, _) in zip(ids, calls, strict=True):
            item = by_id.get(i)
            if item is None:
                if len(items) == 1 and isinstance(items[0], dict) and "error" in items[0]:
                    err = items[0]["error"]
                    raise RpcError(method, int(err.get("code", 0)), str(err.get("message", "")))
                raise _Retryable("batch response missing items")
            if "error" in item:
                err = item["error"]
                code = int(err.get("code", 0))
                raise RpcError(method, code, str(err.get("message", "")), err.get("data"))
            results.append(item.get("result"))
        return results
