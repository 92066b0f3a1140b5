"""Liquidators whose own events do not name them, read from their transactions' receipts (Adapter.with_receipts).

* Liquity V1: TroveManager pays each batchLiquidateTroves' caller its gas compensation right after logging
  `Liquidation` (the GasPool's LUSD, then the ActivePool's ETH): each TroveLiquidated goes to the caller of the batch
  it belongs to, also with two batches in one transaction, a batch that paid no LUSD, and a contract calling
  (msg.sender, not the transaction's sender), with its gas compensation where the troves' add up to the batch's log;
  other events and transactions without a receipt are left as they were.
* Maker: a Bark's keeper and incentive are those of the Kick of the clip and auction id it names; a Kick of another
  clip, or of another auction, is not taken.

The same, on the chain: tests/test_devnet_all.py (every logged liquidation's liquidator is the keeper that sent it)
and tests/test_index_liquity_v1.py (a real batch's troves).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from chainrisk.protocols.liquity_v1.adapter import ADAPTER as LIQUITY
from chainrisk.protocols.liquity_v1.events import ETHER_SENT, LIQUIDATION, TRANSFER
from chainrisk.protocols.liquity_v1.events import TOPICS as TROVE_TOPICS
from chainrisk.protocols.liquity_v1.events import decode_log as decode_trove_log
from chainrisk.protocols.liquity_v1.normalise import events_frame as trove_events
from chainrisk.protocols.maker.adapter import ADAPTER as MAKER
from chainrisk.protocols.maker.events import BARK, KICK, REDO, TAKE, YANK
from chainrisk.protocols.maker.events import decode_log as decode_maker_log
from chainrisk.protocols.maker.normalise import events_frame as maker_events

TM, LUSD, ACTIVE_POOL, GAS_POOL = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20, "0x" + "d4" * 20
BOT, EOA, OTHER = "0x" + "e5" * 20, "0x" + "f6" * 20, "0x" + "07" * 20
VAT, DOG, CLIP, OTHER_CLIP = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, "0x" + "44" * 20
BLOCK_HASH = "0x" + "ab" * 32


def _word(value: int | str) -> str:
    return (value[2:] if isinstance(value, str) else f"{value:x}").rjust(64, "0")


def _log(address: str, topics: list[str], words: list[int | str], index: int, tx: str) -> dict[str, Any]:
    return {
        "address": address,
        "topics": topics,
        "data": "0x" + "".join(_word(w) for w in words),
        "logIndex": hex(index),
        "blockNumber": hex(100),
        "blockHash": BLOCK_HASH,
        "transactionHash": tx,
    }


TROVE_LIQUIDATED = next(t for t, name in TROVE_TOPICS.items() if name == "TroveLiquidated")
TROVE_UPDATED = next(t for t, name in TROVE_TOPICS.items() if name == "TroveUpdated")


def _liquidated(borrower: str, index: int, tx: str) -> dict[str, Any]:
    return _log(TM, [TROVE_LIQUIDATED, "0x" + _word(borrower)], [5 * 10**21, 3 * 10**18, 1], index, tx)


def test_liquity_troves_go_to_the_caller_paid_after_their_batch() -> None:
    tx, other_tx, unread = "0x" + "01" * 32, "0x" + "02" * 32, "0x" + "03" * 32
    a, b, c, d, e = ("0x" + f"{i:02x}" * 20 for i in range(0x61, 0x66))
    first_batch = [
        _liquidated(a, 3, tx),
        _liquidated(b, 6, tx),
        # Two troves of 3 ETH each: 2 x 1.5e16 wei and 2 x 200 LUSD, as the log says.
        _log(TM, [LIQUIDATION], [1, 2, 3 * 10**16, 400 * 10**18], 9, tx),
        # The GasPool's LUSD to the caller (a bot contract: msg.sender), then the ActivePool's ETH.
        _log(LUSD, [TRANSFER, "0x" + _word(GAS_POOL), "0x" + _word(BOT)], [400 * 10**18], 10, tx),
        _log(ACTIVE_POOL, [ETHER_SENT], [BOT, 10**16], 12, tx),
    ]
    # A second batch in the same transaction that paid no LUSD (a partial Recovery Mode offset): the ETH names it.
    second_batch = [
        _liquidated(c, 14, tx),
        # A log whose sums the troves do not make (a capped Recovery Mode liquidation's): no compensation is taken.
        _log(TM, [LIQUIDATION], [1, 2, 3, 0], 16, tx),
        _log(ACTIVE_POOL, [ETHER_SENT], [OTHER, 10**16], 18, tx),
        # Later LUSD moves of the caller's own are not a liquidation's payment.
        _log(LUSD, [TRANSFER, "0x" + _word(OTHER), "0x" + _word(EOA)], [1], 19, tx),
    ]
    elsewhere = [
        _liquidated(d, 1, other_tx),
        _log(TM, [LIQUIDATION], [1, 2, 15 * 10**15, 200 * 10**18], 2, other_tx),
        _log(LUSD, [TRANSFER, "0x" + _word(GAS_POOL), "0x" + _word(EOA)], [200 * 10**18], 3, other_tx),
    ]
    updated = _log(TM, [TROVE_UPDATED, "0x" + _word(e)], [1, 2, 3, 0], 20, tx)
    no_receipt = _liquidated(e, 1, unread)
    logs = [*first_batch, *second_batch, updated, *elsewhere, no_receipt]
    events = trove_events([x for x in (decode_trove_log(log, TM) for log in logs) if x])
    params = SimpleNamespace(lusd_gas_compensation=200 * 10**18, percent_divisor=200)
    deployment = cast(Any, SimpleNamespace(trove_manager=TM, lusd_token=LUSD, active_pool=ACTIVE_POOL, params=params))
    assert LIQUITY.receipts_wanted(deployment, events) == [tx, other_tx, unread]
    receipts = {tx: {"logs": [*first_batch, *second_batch, updated]}, other_tx: {"logs": elsewhere}}
    done = LIQUITY.with_receipts(deployment, events, receipts)
    found = ["liquidator", "gas_compensation_lusd", "gas_compensation_eth"]
    assert done.schema == events.schema and done.drop(found).equals(events.drop(found))
    got = dict(zip(done["wallet"] + ":" + done["event"], done["liquidator"], strict=True))
    assert got == {
        f"{a}:TroveLiquidated": BOT,
        f"{b}:TroveLiquidated": BOT,
        f"{c}:TroveLiquidated": OTHER,
        f"{e}:TroveUpdated": None,
        f"{d}:TroveLiquidated": EOA,
        f"{e}:TroveLiquidated": None,  # its receipt was not given
    }
    paid = dict(
        zip(
            done["wallet"] + ":" + done["event"],
            done.select("gas_compensation_lusd", "gas_compensation_eth").rows(),
            strict=True,
        )
    )
    assert paid == {
        f"{a}:TroveLiquidated": (200 * 10**18, 15 * 10**15),
        f"{b}:TroveLiquidated": (200 * 10**18, 15 * 10**15),
        f"{c}:TroveLiquidated": (None, None),
        f"{e}:TroveUpdated": (None, None),
        f"{d}:TroveLiquidated": (200 * 10**18, 15 * 10**15),
        f"{e}:TroveLiquidated": (None, None),
    }
    assert LIQUITY.with_receipts(deployment, events, {}).equals(events)


def _bark(urn: str, auction: int, clip: str, index: int, tx: str) -> dict[str, Any]:
    ilk = "0x" + b"ETH-A".hex().ljust(64, "0")
    return _log(DOG, [BARK, ilk, "0x" + _word(urn), "0x" + _word(auction)], [10**18, 10**21, 10**48, clip], index, tx)


def _kick(clip: str, auction: int, keeper: str, coin: int, index: int, tx: str) -> dict[str, Any]:
    topics = [KICK, "0x" + _word(auction), "0x" + _word("0x" + "99" * 20), "0x" + _word(keeper)]
    return _log(clip, topics, [1, 2, 3, coin], index, tx)


def test_maker_barks_take_the_keeper_of_their_kick() -> None:
    tx, other_tx = "0x" + "04" * 32, "0x" + "05" * 32
    u1, u2, u3 = ("0x" + f"{i:02x}" * 20 for i in range(0x71, 0x74))
    # tip 100 dai + chip x tab, in rad: 1e27 per dai wei, plus a remainder below a wei.
    coin = (100 * 10**18 + 12_345) * 10**27 + 999
    logs = [
        _kick(CLIP, 7, BOT, coin, 1, tx),
        _bark(u1, 7, CLIP, 2, tx),
        # The same id at another clip, and another id at this clip: neither is u2's auction.
        _kick(OTHER_CLIP, 8, EOA, 1, 3, tx),
        _kick(CLIP, 9, EOA, 1, 4, tx),
        _bark(u2, 8, CLIP, 5, tx),
        _kick(CLIP, 10, OTHER, 10**27, 1, other_tx),
        _bark(u3, 10, CLIP, 2, other_tx),
    ]
    events = maker_events([x for x in (decode_maker_log(log, VAT, None, DOG) for log in logs) if x])
    assert events["clip"].to_list() == [CLIP] * 3 and events["auction_id"].to_list() == [7, 8, 10]
    assert MAKER.receipts_wanted(cast(Any, None), events) == [tx, other_tx]
    done = MAKER.with_receipts(cast(Any, None), events, {tx: {"logs": logs[:5]}, other_tx: {"logs": logs[5:]}})
    assert done.columns == events.columns
    assert done.select("urn", "keeper", "keeper_incentive_dai").rows() == [
        (u1, BOT, 100 * 10**18 + 12_345),
        (u2, None, None),
        (u3, OTHER, 1),
    ]
    assert done.schema == events.schema


def test_maker_clip_events_are_read_from_the_clips_followed_only() -> None:
    """A followed clip's Take, Redo and Yank carry their auction, its ilk and figures (owe, tab and coin floored from
    rad to dai's wei); the same logs from a clip not followed, or a Take missing a topic, are not auction events."""
    tx = "0x" + "06" * 32
    ilk = "0x" + b"ETH-A".hex().ljust(64, "0")
    urn = "0x" + "75" * 20
    rad = 10**45
    take = [TAKE, "0x" + _word(3), "0x" + _word(urn)]
    redo = [REDO, "0x" + _word(4), "0x" + _word(urn), "0x" + _word(BOT)]
    logs = [
        _log(CLIP, take, [10**40, 1_100 * 10**27, 5 * rad + 7, 2 * rad + 10**27 - 1, 10**18], 1, tx),
        _log(CLIP, redo, [1_300 * 10**27, 9 * rad, 4 * 10**18, 250 * rad + 1], 2, tx),
        _log(CLIP, [YANK], [5], 3, tx),
        _log(OTHER_CLIP, take, [1, 2, 3, 4, 5], 4, tx),
        _log(CLIP, take[:2], [1, 2, 3, 4, 5], 5, tx),
    ]
    decoded = [decode_maker_log(log, VAT, None, DOG, {CLIP: ilk}) for log in logs]
    events = maker_events([x for x in decoded if x])
    assert events.select("event", "ilk", "urn", "clip", "auction_id").rows() == [
        ("take", ilk, urn, CLIP, 3),
        ("redo", ilk, urn, CLIP, 4),
        ("yank", ilk, None, CLIP, 5),
    ]
    assert events.select("auction_price", "auction_owe_dai", "auction_tab_dai", "auction_lot").rows() == [
        (1_100 * 10**27, 5 * 10**18, 2 * 10**18, 10**18),
        (1_300 * 10**27, None, 9 * 10**18, 4 * 10**18),
        (None, None, None, None),
    ]
    assert events.select("keeper", "keeper_incentive_dai").rows() == [(None, None), (BOT, 250 * 10**18), (None, None)]
    assert [decode_maker_log(log, VAT, None, DOG) for log in logs] == [None] * 5  # no clip followed
