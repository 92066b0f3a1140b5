"""Maker logs that reveal urns: the DssCdpManager's NewCdp, and the deployed Vat's anonymous LibNote logs of
frob, fork, grab and init (makerdao/dss at tag 1.0.0, src/vat.sol's `note`: topic0 the function selector padded
right to 32 bytes, topics 1-3 the call's first three arguments, data the first 224 bytes of calldata as `bytes`);
and the Dog's Bark (dss src/dog.sol), whose `due` is the exact debt of the grab it made (dart x rate, in rad). The Bark
does not name the keeper: the auction it started does, in the Clipper's `Kick` (dss src/clip.sol; Dog.bark calls
`kick(tab, lot, urn, kpr)` before it logs the Bark, which names the clip and the auction id), read from the
transaction's receipt (`kicks`). What the auction then does is logged by the Clipper itself (dss src/clip.sol): each
`Take` (a purchase: the price, the dai paid, the tab and lot left), each `Redo` (a reset at the feed's price again,
with the keeper it pays) and a `Yank` (cancelled by its ward, Maker's End): read from every ilk's clip the Dog names.
The Vat built from dss's latest source emits no logs; on such a deployment only the CDP manager and a given urn
list find urns. Besides, governance's files of an ilk's settings (FILED), which say when a setting changed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chainrisk.abi import data_word, event_topic, function_selector, word_address
from chainrisk.protocols.maker.constants import RAY
from chainrisk.protocols.maker.snapshot import ilk_name
from chainrisk.units import hugeint_or_none

NEW_CDP = event_topic("NewCdp(address,address,uint256)")
#: Bark(bytes32 indexed ilk, address indexed urn, uint256 ink, uint256 art, uint256 due, address clip,
#: uint256 indexed id): the Dog's liquidation, logged after the Vat.grab it made.
BARK = event_topic("Bark(bytes32,address,uint256,uint256,uint256,address,uint256)")
#: Kick(uint256 indexed id, uint256 top, uint256 tab, uint256 lot, address indexed usr, address indexed kpr,
#: uint256 coin): the Clipper's auction a bark starts; `kpr` the keeper the bark credits, `coin` its incentive (rad).
KICK = event_topic("Kick(uint256,uint256,uint256,uint256,address,address,uint256)")
#: Take(uint256 indexed id, uint256 max, uint256 price, uint256 owe, uint256 tab, uint256 lot, address indexed usr):
#: a purchase from an auction, `tab` and `lot` what it leaves.
TAKE = event_topic("Take(uint256,uint256,uint256,uint256,uint256,uint256,address)")
#: Redo(uint256 indexed id, uint256 top, uint256 tab, uint256 lot, address indexed usr, address indexed kpr,
#: uint256 coin): an auction restarted at `top`.
REDO = event_topic("Redo(uint256,uint256,uint256,uint256,address,address,uint256)")
#: Yank(uint256 id): an auction cancelled (its tab and lot leave the auction; no debt is raised).
YANK = event_topic("Yank(uint256)")
#: The Clipper's events chainrisk reads, by topic.
CLIP_EVENTS = {TAKE: "take", REDO: "redo", YANK: "yank"}
#: The Vat functions whose notes name an urn (frob, fork, grab: topic2, and fork's destination in topic3) or an
#: ilk (init: topic1), by signature.
VAT_NOTES: dict[str, str] = {
    "frob": "frob(bytes32,address,address,address,int256,int256)",
    "fork": "fork(bytes32,address,address,int256,int256)",
    "grab": "grab(bytes32,address,address,address,int256,int256)",
    "init": "init(bytes32)",
}


def _note_topic(signature: str) -> str:
    """topic0 of a note of `signature`: msg.sig shifted to the top of the word (`shl(224, shr(224,
    calldataload(0)))`), in the Vat's note and LibNote's alike."""
    return "0x" + function_selector(signature).hex() + "00" * 28


#: topic0 of each Vat note chainrisk reads, by name.
NOTE_TOPICS: dict[str, str] = {_note_topic(sig): name for name, sig in VAT_NOTES.items()}
#: Events that put an urn in `urn` (and fork's destination in `dst`).
URN_EVENTS = ("frob", "fork", "grab")
#: Governance's files of an ilk's settings, as the deployed contracts log them: the Vat's and dss 1.0.0's Spotter's
#: and Jug's anonymous notes of file(ilk, what, data) (the Vat's own `note`: topics selector, ilk, what, data;
#: LibNote's, dss src/lib.sol, which the Spotter and the Jug inherit: selector, caller, ilk, what) and the named File
#: events of the Dog (File(ilk, what, data), File(ilk, what, clip): dss src/dog.sol) and of each Clipper
#: (File(what, data), File(what, address): dss src/clip.sol). Stored as vat_file, spot_file, jug_file, dog_file and
#: clip_file with the setting filed (`what`, as text: ilk_name); the values themselves are the snapshots'. Only the
#: settings chainrisk reads are kept (FILED): the Spotter's poke files every ilk's spot into the Vat, a file of no
#: setting.
FILE_NOTES = ("file(bytes32,bytes32,uint256)", "file(bytes32,bytes32,address)")
FILE_NOTE_TOPICS = frozenset(_note_topic(sig) for sig in FILE_NOTES)
DOG_FILE_TOPICS = frozenset(
    event_topic(sig) for sig in ("File(bytes32,bytes32,uint256)", "File(bytes32,bytes32,address)")
)
CLIP_FILE_TOPICS = frozenset(event_topic(sig) for sig in ("File(bytes32,uint256)", "File(bytes32,address)"))
#: The settings each contract's file sets that stg_maker_parameter_changes reads.
FILED: dict[str, frozenset[str]] = {
    "vat_file": frozenset({"line", "dust"}),
    "spot_file": frozenset({"mat", "pip"}),
    "jug_file": frozenset({"duty"}),
    "dog_file": frozenset({"chop", "hole", "clip"}),
    "clip_file": frozenset({"buf", "tail", "cusp", "chip", "tip"}),
}
#: The data of a note: 32-byte offset, 32-byte length (224), then calldata; arguments start after the selector.
_ARGS_AT = 2 + 64 + 64 + 8


@dataclass(frozen=True)
class MakerEvent:
    block_number: int  #: block
    block_hash: str  #: block hash, for reorg checks
    tx_hash: str  #: transaction hash
    log_index: int  #: position of the log in the block
    #: frob, fork, grab, init (Vat notes), NewCdp (CDP manager), bark (Dog), take, redo, yank (Clipper); vat_file,
    #: spot_file, jug_file, dog_file, clip_file (governance's files)
    event: str
    ilk: str | None  #: bytes32 hex; None for NewCdp (the ilk is read from the manager at the snapshot)
    urn: str | None  #: frob/grab/bark: u; fork: src; take/redo: the auction's usr; NewCdp, yank: None
    dst: str | None  #: fork: the destination urn
    cdp_id: int | None  #: NewCdp: the vault id
    owner: str | None  #: NewCdp: `own`, the first owner
    sender: str | None  #: NewCdp: `usr`, who opened it (often a DSProxy)
    dink: int | None  #: frob/fork/grab: collateral change [wad], None beyond 1e38 (bark: its grab's, -ink)
    dart: int | None  #: frob/fork/grab: normalised debt change [wad], None beyond 1e38 (bark: its grab's, -art)
    due_dai: int | None = None  #: bark: the debt grabbed, due // 1e27 (dai's smallest unit), None beyond 1e38
    clip: str | None = None  #: bark: the Clipper whose auction it started; take, redo, yank: the Clipper logging it
    auction_id: int | None = None  #: bark, take, redo, yank: the auction's id (None beyond 1e38)
    #: bark: the keeper it credits (the Kick's kpr, from the receipt); redo: its kpr; take: its buyer, the
    #: transaction's sender (from the receipt)
    keeper: str | None = None
    #: bark: the keeper's incentive, coin // 1e27 (tip + chip x tab), floored; redo: the same, paid for the reset
    keeper_incentive_dai: int | None = None
    #: bark: its auction's tab (due x chop / WAD: the penalty on top) // 1e27; take: the tab left; redo: the tab
    auction_tab_dai: int | None = None
    auction_price: int | None = None  #: bark: the Kick's top; take: the price paid; redo: the new top [ray]
    auction_owe_dai: int | None = None  #: take: the dai paid, owe // 1e27, floored
    auction_lot: int | None = None  #: bark: the lot kicked; take: the lot left; redo: the lot [wad, Vat units]
    #: bark: whether its clip's logs were being read when it was indexed (its takes then are too), None before stop 54
    auction_followed: bool | None = None
    what: str | None = None  #: a file: the setting filed (its bytes32 as text: line, mat, buf, ...)


def _signed(word: str) -> int | None:
    value = int(word, 16)
    return hugeint_or_none(value - 2**256 if value >= 2**255 else value)


def _argument(data: str, k: int) -> str:
    return data[_ARGS_AT + 64 * k : _ARGS_AT + 64 * (k + 1)]


def decode_log(
    log: dict[str, Any],
    vat: str,
    cdp_manager: str | None,
    dog: str | None = None,
    clips: Mapping[str, str] | None = None,
    spot: str | None = None,
    jug: str | None = None,
) -> MakerEvent | None:
    """A log as a MakerEvent, or None for logs that say nothing about urns, auctions or governance's files (a log
    from another of the queried addresses that happens to share a topic is ignored: the topic only counts from the
    contract that defines it). `clips`: each Clipper followed (lowercase address) and its ilk (bytes32 hex)."""
    topics: list[str] = log["topics"]
    if not topics:
        return None
    address = log["address"].lower()
    common: dict[str, Any] = {
        "block_number": int(log["blockNumber"], 16),
        "block_hash": log["blockHash"],
        "tx_hash": log["transactionHash"],
        "log_index": int(log["logIndex"], 16),
        "ilk": None,
        "urn": None,
        "dst": None,
        "cdp_id": None,
        "owner": None,
        "sender": None,
        "dink": None,
        "dart": None,
    }
    if topics[0] == NEW_CDP and address == cdp_manager and len(topics) == 4:
        return MakerEvent(
            **{
                **common,
                "event": "NewCdp",
                "sender": word_address(topics[1]),
                "owner": word_address(topics[2]),
                "cdp_id": int(topics[3], 16),
            }
        )
    if topics[0] == BARK and address == dog and len(topics) == 4:
        data = log["data"]
        if len(data) < 2 + 64 * 4:
            return None
        ink, art, due = (int(data_word(data, k), 16) for k in range(3))
        return MakerEvent(
            **{
                **common,
                "event": "bark",
                "ilk": topics[1],
                "urn": word_address(topics[2]),
                "dink": hugeint_or_none(-ink),
                "dart": hugeint_or_none(-art),
                # rad (1e45 per dai) to dai's smallest unit (wad), floored.
                "due_dai": hugeint_or_none(due // RAY),
                "clip": word_address(data_word(data, 3)),
                "auction_id": hugeint_or_none(int(topics[3], 16)),
                "auction_followed": clips is not None and word_address(data_word(data, 3)) in clips,
            }
        )
    if topics[0] in CLIP_EVENTS and clips is not None and address in clips:
        return _clip_event(CLIP_EVENTS[topics[0]], topics, log["data"], clips[address], address, common)
    filed = _file(topics, address, vat, spot, jug, dog, clips)
    if filed is not None:
        kind, ilk, what = filed
        if what not in FILED[kind]:
            return None
        clip = address if kind == "clip_file" else None
        return MakerEvent(**{**common, "event": kind, "ilk": ilk, "what": what, "clip": clip})
    name = NOTE_TOPICS.get(topics[0])
    if name is None or address != vat or len(topics) != 4:
        return None
    if name == "init":
        return MakerEvent(**{**common, "event": name, "ilk": topics[1]})
    data = log["data"]
    if len(data) < _ARGS_AT + 64 * 6:
        return None  # not the 224-byte calldata a Vat note carries
    # frob/grab(i, u, v, w, dink, dart): amounts are arguments 4 and 5; fork(ilk, src, dst, dink, dart): 3 and 4.
    first = 3 if name == "fork" else 4
    return MakerEvent(
        **{
            **common,
            "event": name,
            "ilk": topics[1],
            "urn": word_address(topics[2]),
            "dst": word_address(topics[3]) if name == "fork" else None,
            "dink": _signed(_argument(data, first)),
            "dart": _signed(_argument(data, first + 1)),
        }
    )


def _file(
    topics: list[str],
    address: str,
    vat: str,
    spot: str | None,
    jug: str | None,
    dog: str | None,
    clips: Mapping[str, str] | None,
) -> tuple[str, str, str] | None:
    """A file of an ilk's setting as (event, ilk, what), or None where the log is none."""
    if topics[0] in FILE_NOTE_TOPICS and len(topics) == 4:
        if address == vat:
            return "vat_file", topics[1], ilk_name(topics[2])
        if address in (spot, jug):
            return ("spot_file" if address == spot else "jug_file"), topics[2], ilk_name(topics[3])
    if topics[0] in DOG_FILE_TOPICS and address == dog and len(topics) == 3:
        return "dog_file", topics[1], ilk_name(topics[2])
    if topics[0] in CLIP_FILE_TOPICS and clips is not None and address in clips and len(topics) == 2:
        return "clip_file", clips[address], ilk_name(topics[1])
    return None


def _clip_event(
    name: str, topics: list[str], data: str, ilk: str, clip: str, common: dict[str, Any]
) -> MakerEvent | None:
    """A Clipper's Take, Redo or Yank (dss src/clip.sol), or None where its topics or data are not that event's."""
    fields: dict[str, Any] = {**common, "event": name, "ilk": ilk, "clip": clip}
    if name == "yank":
        if len(topics) != 1 or len(data) < 2 + 64:
            return None
        return MakerEvent(**fields, auction_id=hugeint_or_none(int(data_word(data, 0), 16)))
    if len(topics) != (3 if name == "take" else 4) or len(data) < 2 + 64 * (5 if name == "take" else 4):
        return None
    words = [int(data_word(data, k), 16) for k in range(5 if name == "take" else 4)]
    fields.update(urn=word_address(topics[2]), auction_id=hugeint_or_none(int(topics[1], 16)))
    if name == "take":
        _max, price, owe, tab, lot = words
        return MakerEvent(
            **fields,
            auction_price=hugeint_or_none(price),
            auction_owe_dai=hugeint_or_none(owe // RAY),
            auction_tab_dai=hugeint_or_none(tab // RAY),
            auction_lot=hugeint_or_none(lot),
        )
    top, tab, lot, coin = words
    return MakerEvent(
        **fields,
        keeper=word_address(topics[3]),
        keeper_incentive_dai=hugeint_or_none(coin // RAY),
        auction_price=hugeint_or_none(top),
        auction_tab_dai=hugeint_or_none(tab // RAY),
        auction_lot=hugeint_or_none(lot),
    )


@dataclass(frozen=True)
class Kick:
    """A Clipper's Kick as a bark's receipt logs it, in dai's smallest unit (floored) and the Vat's units; None
    beyond 1e38."""

    keeper: str  #: kpr, the keeper the bark credits
    incentive_dai: int | None  #: coin // 1e27
    tab_dai: int | None  #: tab // 1e27: the debt plus the penalty the auction must raise
    top: int | None  #: the auction's starting price [ray]
    lot: int | None  #: the collateral it sells [wad]


def kicks(receipt: dict[str, Any]) -> dict[tuple[str, int], Kick]:
    """Every Clipper `Kick` of a transaction's receipt by (clip, auction id). A log of that topic from any address:
    the caller keeps those of the clip a Bark names."""
    found: dict[tuple[str, int], Kick] = {}
    for log in receipt["logs"]:
        topics, data = log["topics"], log["data"]
        if len(topics) == 4 and topics[0] == KICK and len(data) >= 2 + 64 * 4:
            top, tab, lot, coin = (int(data_word(data, k), 16) for k in range(4))
            found[str(log["address"]).lower(), int(topics[1], 16)] = Kick(
                word_address(topics[3]),
                hugeint_or_none(coin // RAY),
                hugeint_or_none(tab // RAY),
                hugeint_or_none(top),
                hugeint_or_none(lot),
            )
    return found
