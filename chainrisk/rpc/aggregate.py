"""Many plain eth_calls of one block as one eth_call (`aggregate_calls` in chainrisk.toml, default 100): what a
provider that bills and rate-limits by the call counts as one.

The calls go to chainrisk's own CallAggregator (contracts/CallAggregator.sol, never deployed: its runtime is placed
at an address nobody controls by the eth_call's state override, as the protocols' lenses are), which makes each one a
STATICCALL and answers, for each, how it ended and its return data. Only calls that are `{to, data}` at a block tag
are packed: one that names `from`, gas, a value or a state override of its own keeps its meaning only on its own. A
packed call's answer is the callee's return data, as its own eth_call would have answered. A call that failed inside
the aggregate is asked again on its own (so what the node refuses is refused in its own words), except where the
caller takes a refusal as an answer (`batch_each`: probing for a getter the contract may not have) and the call
reverted with gas to spare: that revert is the callee's own, and answers None at once. A call that may have failed
for gas, or was left unrun, is always asked again. The callee sees the aggregator as msg.sender where its own eth_call
has the zero address; the aggregate is sent from the aggregator's address, so msg.sender is tx.origin for every callee,
as for a plain eth_call: a getter that answers only externally owned callers by that test (Chainlink's
access-controlled aggregators) answers packed too. The calls chainrisk makes with a caller of their own (Maker's OSMs,
read as a whitelisted address) are never packed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Where the aggregator's code is placed by state override; an address nobody controls.
AGGREGATOR = "0x00000000000000000000000000000000a66e6a7e"
RUNTIME = (Path(__file__).parent / "contracts" / "CallAggregator.bin-runtime").read_text().strip()
#: aggregate(address[],bytes[]): keccak256 of the signature, first four bytes (tests check it).
SELECTOR = "269d64ae"
_KEYS = frozenset({"to", "data", "input"})
_WORD = 32


def packable(call: tuple[str, Sequence[Any]]) -> tuple[str, str, str] | None:
    """(block tag, target, calldata hex without 0x) of a plain eth_call that may be packed; None for any other."""
    method, params = call
    if method != "eth_call" or len(params) != 2:
        return None
    request, tag = params
    if not isinstance(request, dict) or not isinstance(tag, str) or not request.keys() <= _KEYS:
        return None
    target, data = request.get("to"), request.get("data", request.get("input", "0x"))
    if not (isinstance(target, str) and len(target) == 42 and target[:2] in ("0x", "0X")):
        return None
    if not (isinstance(data, str) and data[:2] in ("0x", "0X") and len(data) % 2 == 0):
        return None
    return tag, target[2:].lower(), data[2:].lower()


def aggregate_call(tag: str, calls: Sequence[tuple[str, str]]) -> tuple[str, list[Any]]:
    """The eth_call of aggregate(targets, data) for `calls` ((target hex, calldata hex), both without 0x) at `tag`."""
    count = len(calls)
    head = [_word(2 * _WORD), _word((3 + count) * _WORD), _word(count)]
    targets = [target.rjust(64, "0") for target, _ in calls]
    offsets, bodies, at = [], [], count * _WORD
    for _, data in calls:
        size = len(data) // 2
        padded = data.ljust(-(-size // _WORD) * 64, "0")
        offsets.append(_word(at))
        bodies.append(_word(size) + padded)
        at += _WORD + len(padded) // 2
    encoded = "".join((*head, *targets, _word(count), *offsets, *bodies))
    # Sent from the aggregator itself: tx.origin is then each callee's msg.sender, as for a plain eth_call (whose
    # caller is its origin), so a getter that answers only externally owned callers (msg.sender == tx.origin, as
    # Chainlink's access-controlled aggregators check) answers packed as alone.
    request = {"from": AGGREGATOR, "to": AGGREGATOR, "data": "0x" + SELECTOR + encoded}
    return ("eth_call", [request, tag, {AGGREGATOR: {"code": RUNTIME}}])


#: A packed call's outcome, as the aggregator reports it.
UNRUN, RETURNED, REVERTED, EXHAUSTED = range(4)


def answers(result: Any, count: int) -> list[tuple[int, str]] | None:
    """Each packed call's outcome (UNRUN, RETURNED, REVERTED: it failed having used under half the gas it was given, so
    of its own accord; EXHAUSTED: it failed having used more, so perhaps for gas) and its return or revert data
    ("0x..."); None for the whole when `result` is not the aggregator's answer for `count` calls (a node that ignored
    the override answers "0x", the empty code's)."""
    if not isinstance(result, str) or not result.startswith("0x"):
        return None
    try:
        raw = bytes.fromhex(result[2:])
        status_at, answers_at = _int(raw, 0), _int(raw, _WORD)
        if _int(raw, status_at) != count or _int(raw, answers_at) != count:
            return None
        found: list[tuple[int, str]] = []
        base = answers_at + _WORD
        for k in range(count):
            status = _int(raw, status_at + _WORD * (1 + k))
            at = base + _int(raw, base + _WORD * k)
            size = _int(raw, at)
            if status > EXHAUSTED or at + _WORD + size > len(raw):
                return None
            found.append((status, "0x" + raw[at + _WORD : at + _WORD + size].hex()))
    except (ValueError, IndexError):
        return None
    return found


def _word(value: int) -> str:
    return format(value, "064x")


def _int(raw: bytes, at: int) -> int:
    if at + _WORD > len(raw):
        raise IndexError("answer too short")
    return int.from_bytes(raw[at : at + _WORD], "big")
