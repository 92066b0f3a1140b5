"""eth_getLogs over long block ranges in adaptive spans: halve on a provider's refusal, grow when answers are small."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from chainrisk.errors import UserError
from chainrisk.rpc.client import RpcClient, RpcError
from chainrisk.rpc.retryable import is_range_refusal

#: Results per answer under which the span doubles (providers cap near 10,000).
GROW_BELOW = 2_000
MAX_SPAN = 200_000


def iter_log_ranges(
    rpc: RpcClient,
    addresses: Sequence[str],
    topics: Sequence[Sequence[str]],
    from_block: int,
    to_block: int,
    *,
    initial_span: int = 10_000,
) -> Iterator[tuple[int, int, list[dict[str, Any]]]]:
    """Yields (start, end, logs) for consecutive ranges covering [from_block, to_block] in order. A refused range
    is split in half (counted as the client's `log_range_resplit`) until a single block is refused. `addresses` is
    read afresh for each range: a caller may add contracts between ranges (those the logs so far named)."""
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
            if not is_range_refusal(exc.message):
                raise
            if end == start:
                raise UserError(f"the RPC refuses eth_getLogs even for block {start}: {exc.message}") from None
            # Halve what was asked, not the span: near the end of the range the span can be far wider.
            span = max(1, (end - start + 1) // 2)
            rpc.note_absorbed("log_range_resplit")
            continue
        yield start, end, logs
        start = end + 1
        if len(logs) < GROW_BELOW:
            span = min(MAX_SPAN, span * 2)
