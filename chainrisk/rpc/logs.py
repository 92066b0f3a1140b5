"""eth_getLogs over long block ranges in adaptive spans: halve on a provider's refusal, grow when answers are small."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from chainrisk.errors import UserError
from chainrisk.rpc.client import RpcClient, RpcError
from chainrisk.rpc.retryable import LOG_RANGE_REFUSALS

#: Results per answer under which the span doubles (providers cap near 10,000).
GROW_BELOW = 2_000
MAX_SPAN = 200_000


def is_range_refusal(exc: RpcError) -> bool:
    message = exc.message.lower()
    return exc.code == -32005 or any(fragment in message for fragment in LOG_RANGE_REFUSALS)


def iter_log_ranges(
    rpc: RpcClient,
    addresses: Sequence[str],
    topics: Sequence[Sequence[str]],
    from_block: int,
    to_block: int,
    *,
    initial_span: int = 10_000,
    on_refusal: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, int, list[dict[str, Any]]]]:
    """Yields (start, end, logs) for consecutive ranges covering [from_block, to_block] in order."""
    span = max(1, initial_span)
    start = from_block
    while start <= to_block:
        end = min(to_block, start + span - 1)
        query = {
            "address": list(addresses),
            "topics": [list(t) for t in topics],
            "fromBlock": hex(start),
            "toBlock": hex(end),
        }
        try:
            logs: list[dict[str, Any]] = rpc.call("eth_getLogs", [query])
        except RpcError as exc:
            if not is_range_refusal(exc):
                raise
            if span == 1:
                raise UserError(f"the RPC refuses eth_getLogs even for block {start}: {exc.message}") from None
            span = max(1, span // 2)
            if on_refusal:
                on_refusal(span)
            continue
        yield start, end, logs
        start = end + 1
        if len(logs) < GROW_BELOW:
            span = min(MAX_SPAN, span * 2)
