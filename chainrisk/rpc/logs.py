"""eth_getLogs over long block ranges in adaptive spans: halve on a provider's refusal, grow when answers are small."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from chainrisk.errors import UserError
from chainrisk.rpc.client import RpcClient, RpcError
from chainrisk.rpc.retryable import is_range_refusal

#: Results per answer under which the span doubles (providers cap near 10,000).
GROW_BELOW = 2_000
MAX_SPAN = 200_000


class BlockSink(Protocol):
    """Where a caller keeps block headers (chainrisk.jobs.index._Blocks): each range's last block's header is asked
    in the same round trip as its logs when the sink wants it."""

    def wants(self, number: int) -> bool: ...

    def keep(self, number: int, block: dict[str, str] | None) -> None: ...


def iter_log_ranges(
    rpc: RpcClient,
    addresses: Sequence[str],
    topics: Sequence[Sequence[str]],
    from_block: int,
    to_block: int,
    *,
    initial_span: int = 10_000,
    headers: BlockSink | None = None,
) -> Iterator[tuple[int, int, list[dict[str, Any]]]]:
    """Yields (start, end, logs) for consecutive ranges covering [from_block, to_block] in order. A refused range
    is split in half (counted as the client's `log_range_resplit`) until a single block is refused. `addresses` is
    read afresh for each range: a caller may add contracts between ranges (those the logs so far named).
    `headers`: each range's last block's header, when the sink wants it, is asked with the range's logs (one round
    trip a range where a caller asking it apart took two) and kept there before the range is yielded."""
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
        header = headers is not None and headers.wants(end)
        # The header first: geth answers the calls after the one that takes a batch's answer past its size limit
        # (--rpc.batch-response-max-size) with a refusal, which would read as a batch too long; the logs, last, are
        # always answered.
        calls: list[tuple[str, list[Any]]] = [("eth_getBlockByNumber", [hex(end), False])] if header else []
        calls.append(("eth_getLogs", [query]))
        try:
            answers = rpc.batch(calls)
        except RpcError as exc:
            if not is_range_refusal(exc.message):
                raise
            if end == start:
                raise UserError(f"the RPC refuses eth_getLogs even for block {start}: {exc.message}") from None
            # Halve what was asked, not the span: near the end of the range the span can be far wider.
            span = max(1, (end - start + 1) // 2)
            rpc.note_absorbed("log_range_resplit")
            continue
        logs: list[dict[str, Any]] = answers[-1]
        if headers is not None and header:
            headers.keep(end, answers[0])
        yield start, end, logs
        start = end + 1
        if len(logs) < GROW_BELOW:
            span = min(MAX_SPAN, span * 2)
