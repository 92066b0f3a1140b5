"""eth_getLogs over long block ranges in adaptive spans: halve on a provider's refusal, grow when answers are small,
never past the widest range a provider said it takes."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from chainrisk.errors import UserError
from chainrisk.rpc.client import RpcClient, RpcError, learnt_recently
from chainrisk.rpc.retryable import is_range_refusal, is_size_refusal, log_range_ceiling, suggested_log_range

#: Results per answer under which the span doubles (providers cap near 10,000).
GROW_BELOW = 2_000
MAX_SPAN = 200_000
#: The widest range each RPC URL's provider named in a refusal ("limited to a 10,000 range") and when (time.monotonic),
#: shared by the process's log readers: every market's index after the first starts within it instead of being refused
#: again. Kept RECHECK_BATCH_S, as a learnt batch size is: a provider's plan may change under a long `watch`.
_NAMED_CEILING: dict[str, tuple[int, float]] = {}


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
    # The widest span to grow to: what the provider named, else (a refusal for the width of a range that names no
    # number: "block range is too wide") half the narrowest range refused for its width, which then passed.
    named_at = _NAMED_CEILING.get(rpc.url)
    ceiling = named_at[0] if named_at is not None and learnt_recently(named_at[1]) else MAX_SPAN
    span = max(1, min(initial_span, ceiling))
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
            width = end - start + 1
            named, suggested = log_range_ceiling(exc.message), suggested_log_range(exc.message)
            if named is not None and named >= width:
                named = None  # the cap named did not refuse this range: some other one did
            if named is not None:
                ceiling = named
                _NAMED_CEILING[rpc.url] = (named, time.monotonic())
            if suggested is not None and suggested[0] == start and suggested[1] < end:
                span = min(ceiling, suggested[1] - start + 1)  # the range the provider says will pass
            elif named is not None:
                span = named
            else:
                # Halve what was asked, not the span: near the end of the range the span can be far wider.
                span = max(1, width // 2)
                if not is_size_refusal(exc.message):
                    ceiling = min(ceiling, span)
            rpc.note_absorbed("log_range_resplit")
            continue
        logs: list[dict[str, Any]] = answers[-1]
        if headers is not None and header:
            headers.keep(end, answers[0])
        yield start, end, logs
        start = end + 1
        if len(logs) < GROW_BELOW:
            span = min(ceiling, span * 2)
