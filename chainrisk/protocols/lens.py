"""Lens calls and what stands in for them where a node will not run them.

A lens is a read-only contract of chainrisk's (Aave's accounts, Liquity's troves, Maker's urns and vaults) whose
runtime an eth_call places at an address nobody controls by a state override, so that one call answers the getters of
hundreds of accounts. Not every node takes the override: some clients and public endpoints refuse the third parameter
(geth before it had one: -32602 "too many arguments, want at most 2"), others drop it and run the call against an
address without code, which answers "0x". A lens only calls view getters, so each caller reads the accounts of a
lens call left unanswered with plain eth_calls of those getters instead: the same values, more calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from chainrisk.abi import Abi, eth_call
from chainrisk.protocols.quality import DECODE_ERRORS
from chainrisk.rpc import RpcClient, RpcError
from chainrisk.rpc.client import RpcCall

T = TypeVar("T")
V = TypeVar("V")
#: The fault kind a lens call left unanswered is counted under (RpcClient.faults_absorbed, the run's line).
LENS_UNANSWERED = "lens_unanswered"


def lens_answers(rpc: RpcClient, calls: Sequence[RpcCall]) -> list[str | None]:
    """Each lens call's return data, or None where the node refused it (a refused override, or a getter the lens
    calls reverting) or answered nothing (an override dropped): the caller then reads that call's accounts getter by
    getter, where a revert reaches the user in the node's own words. Each None is counted as LENS_UNANSWERED.

    Where the batch had none answered, the node is asked whether it runs overrides at all (RpcClient.takes_overrides,
    one call); one that does not is remembered for the URL, and its later lens calls (every market and run of the
    process for the next hour) are not sent: all None at once."""
    if not calls:
        return []
    answers = [None] * len(calls) if rpc.overrides_refused() else rpc.batch_each(calls)
    found: list[str | None] = []
    for answer in answers:
        if isinstance(answer, str) and len(answer) > 2:
            found.append(answer)
        else:
            rpc.note_absorbed(LENS_UNANSWERED)
            found.append(None)
    if not any(found):
        rpc.takes_overrides(_tag_of(calls[0]))  # learnt for the URL: no call where it is known already
    return found


def _tag_of(call: RpcCall) -> str:
    """The block tag of an eth_call (its second parameter)."""
    params = call[1]
    return str(params[1]) if len(params) > 1 else "latest"


def unanswered_read(
    chunks: Sequence[Sequence[T]], answers: Sequence[str | None], read: Callable[[list[T]], Sequence[V]]
) -> list[list[V]]:
    """For each chunk of items a lens call asked: [] where it was answered, else `read`'s values for its items. `read`
    is called once, for every unanswered chunk's items together (one set of batches)."""
    missing = [item for chunk, answer in zip(chunks, answers, strict=True) if answer is None for item in chunk]
    values = iter(read(missing) if missing else ())
    return [
        [] if answer is not None else [next(values) for _ in chunk]
        for chunk, answer in zip(chunks, answers, strict=True)
    ]


def decoded(abi: Abi, fn: str, to: str, answer: Any) -> tuple[Any, ...]:
    """A plain getter's answer decoded; one that does not decode (no contract there: "0x", or another contract) is
    refused as the lens's call to it was, so the caller's handling of a refusal (one line naming the contract) holds."""
    try:
        return tuple(abi.decode(fn, answer))
    except DECODE_ERRORS:
        raise RpcError("eth_call", 0, f"{to} does not answer {fn}: {answer!r:.80}") from None


def getters_of(
    rpc: RpcClient, to: str, abi: Abi, getters: Sequence[str], arguments: Sequence[tuple[Any, ...]], tag: str
) -> list[tuple[Any, ...]]:
    """For each of `arguments`: the answers of `getters` of `to` called with them at `tag`, as plain eth_calls in
    batches (what a lens calls for one account), each decoded: one value, or the tuple of a getter that answers
    several."""
    if not arguments:
        return []
    raw = rpc.batch([eth_call(to, abi, fn, *args, block=tag) for args in arguments for fn in getters])
    size = len(getters)
    found = []
    for k in range(len(arguments)):
        answers = zip(getters, raw[size * k : size * (k + 1)], strict=True)
        values = [decoded(abi, fn, to, answer) for fn, answer in answers]
        found.append(tuple(v[0] if len(v) == 1 else v for v in values))
    return found
