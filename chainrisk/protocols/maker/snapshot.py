"""Reads a Maker deployment at one pinned block: the contracts its ChainLog names, every ilk's parameters and
prices, and every urn (through a read-only lens placed by eth_call state override, thousands of urns per call).

Prices: an ilk's pip is usually an OSM, whose `peek` (current value), `peep` (the value it will make current
after the next `poke`, an hour ahead) and `read` answer only whitelisted callers (`bud`). chainrisk calls them
itself with a state override that sets `bud[reader] = 1` in the pip's storage for that one call: `bud` is the
mapping at slot 5 in the published OSM layout (makerdao/osm src/osm.sol: wards 0, stopped 1, src|hop|zzz 2,
cur 3, nxt 4, bud 5), so the slot is keccak256(reader . 5). The answer is the OSM's own code reading its own
`cur`/`nxt`; nothing is written on chain. A pip that is not an OSM (a DSValue answers `peek` to anyone) answers
the same call; one that answers nothing leaves the price to the Vat's spot (spot * mat / RAY, Spotter.poke
inverted) and the next price unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chainrisk.abi import address_mapping_slot, eth_call, load_abi
from chainrisk.errors import UserError
from chainrisk.protocols.lens import getters_of, lens_answers, unanswered_read
from chainrisk.protocols.maker.constants import (
    BLN,
    CDP_MANAGER_KEY,
    DAI_KEY,
    DOG_KEY,
    ILK_REGISTRY_KEY,
    JOIN_KEY_PREFIX,
    JUG_KEY,
    RAY,
    SELF_KEY,
    SPOT_KEY,
    VAT_KEY,
)
from chainrisk.protocols.maker.maths import DogLimits, MakerRevert, drip, spot
from chainrisk.protocols.quality import decode_uint
from chainrisk.rpc import RpcClient, RpcError

CHAINLOG = load_abi("maker", "ChainLog")
VAT = load_abi("maker", "Vat")
SPOTTER = load_abi("maker", "Spotter")
JUG = load_abi("maker", "Jug")
DOG = load_abi("maker", "Dog")
CDP_MANAGER = load_abi("maker", "DssCdpManager")
ILK_REGISTRY = load_abi("maker", "IlkRegistry")
OSM = load_abi("maker", "OSM")
GEM_JOIN = load_abi("maker", "GemJoin")
CLIPPER = load_abi("maker", "Clipper")
#: What a snapshot reads of each ilk's clip: the keeper's incentive (tip, chip), then the auction settings.
CLIP_SETTINGS = ("tip", "chip", "buf", "tail", "cusp")
#: The auction settings of an ilk without a clip: none read.
NO_CLIP: tuple[int | None, int | None, int | None] = (None, None, None)
LENS = load_abi("maker", "MakerVaultsLens")
ERC20 = load_abi("erc20", "IERC20Detailed")
ZERO = "0x" + "0" * 40
#: Where the lens's code is placed by state override, and who calls the OSMs: addresses nobody controls.
LENS_ADDRESS = "0x00000000000000000000000000000000006d6b72"
READER = "0x00000000000000000000000000000000006d6b73"
LENS_RUNTIME = (Path(__file__).parent / "contracts" / "MakerVaultsLens.bin-runtime").read_text().strip()
#: The OSM's `bud` mapping's slot (makerdao/osm src/osm.sol storage order).
OSM_BUD_SLOT = 5
#: Urns (or cdp ids) per lens call: two Vat.urns storage reads each, well under nodes' 50M gas cap.
LENS_CHUNK = 1_000

#: How each discovery method is named in raw_maker_urns.found_by.
BY_MANAGER, BY_VAT_LOGS, BY_LIST = "cdp-manager", "vat-logs", "list"


@dataclass(frozen=True)
class Deployment:
    chainlog: str  #: the indexed ChainLog, lowercase hex
    vat: str  #: MCD_VAT
    spot: str  #: MCD_SPOT
    jug: str  #: MCD_JUG
    dog: str  #: MCD_DOG
    cdp_manager: str | None  #: CDP_MANAGER, when the log names one
    ilk_registry: str | None  #: ILK_REGISTRY, when the log names one
    dai: str  #: MCD_DAI, the debt token
    listed: tuple[tuple[str | None, str], ...]  #: urns given by the `urns` option: (ilk hex or None for all, urn)
    #: (clip, ilk hex) of every ilk the IlkRegistry lists or the `urns` option names whose Dog entry has a Clipper:
    #: the auctions followed (their Take, Redo and Yank logs, their running sales).
    clips: tuple[tuple[str, str], ...] = ()
    #: The ilks the IlkRegistry lists at the block discover read (_registry_list), kept for the snapshot at that block.
    registry: tuple[str, ...] = ()
    #: The debt token's symbol() at that block ("DAI" where it answers none: a bytes32 or reverting symbol)
    dai_symbol: str = "DAI"


@dataclass(frozen=True)
class Gem:
    address: str | None  #: the collateral token (None when neither the registry nor the ChainLog's join names it)
    symbol: str | None  #: ERC-20 symbol, else the registry's
    decimals: int | None  #: the token's decimals(), else the join's dec
    join: str | None  #: the GemJoin
    join_dec: int | None  #: the join's dec: the Vat counts dec-decimal tokens as amt * 10^(18 - dec)

    @property
    def vat_units(self) -> int:
        """Vat units (wad) per token unit: 10^(18 - dec) for GemJoin5-style joins, 1 otherwise."""
        dec = self.join_dec if self.join_dec is not None else self.decimals
        return 10 ** (18 - dec) if dec is not None and dec <= 18 else 1


@dataclass(frozen=True)
class Price:
    method: str  #: how `value` was read: peek (the pip's own peek/peep, whitelisted by override), vat-spot, none
    value: int | None  #: current pip value [wad, reference units per gem]
    has: bool  #: the pip reports a valid current value
    next_value: int | None  #: OSM.peep: the value the next poke makes current [wad]
    next_has: bool  #: peep's validity flag
    next_at: int | None  #: earliest time of that poke: zzz + hop


@dataclass(frozen=True)
class Ilk:
    ilk: str  #: bytes32 hex
    name: str  #: the ilk as text (ETH-A)
    art_total: int  #: Vat Art [wad]
    rate: int  #: Vat rate [ray]
    spot: int  #: Vat spot [ray]
    line: int  #: Vat line [rad]
    dust: int  #: Vat dust [rad]
    pip: str  #: Spotter pip
    mat: int  #: Spotter mat [ray]
    duty: int  #: Jug duty [ray]
    rho: int  #: Jug rho [s]
    rate_dripped: int | None  #: Jug.drip's rate at the snapshot's timestamp (None where drip would revert)
    dog: DogLimits  #: Dog limits and penalty
    clip: str  #: Dog clip
    gem: Gem  #: collateral token and join
    #: The clip's keeper incentive (Clipper.tip [rad], Clipper.chip [wad]); None where the clip does not answer them
    #: (a Clipper without incentives, or none).
    incentive: tuple[int, int] | None
    price: Price  #: pip values
    spot_at_price: int | None  #: Spotter.poke's spot from the current value (equals `spot` once poked)
    spot_next: int | None  #: Spotter.poke's spot from the next value
    #: The clip's auction settings (Clipper.buf [ray]: the starting price over the feed's; tail [s] and cusp [ray]:
    #: the age and the drop from the start past which an auction needs a reset); None each where not answered.
    clip_buf: int | None = None
    clip_tail: int | None = None
    clip_cusp: int | None = None


@dataclass(frozen=True)
class System:
    par: int  #: Spotter par [ray]
    base: int  #: Jug base [ray]


@dataclass(frozen=True)
class Urn:
    ilk: str  #: bytes32 hex
    urn: str  #: lowercase hex
    ink: int  #: Vat ink [wad]
    art: int  #: Vat art [wad]
    owner: str | None  #: DssCdpManager.owns(cdp) for manager vaults
    cdp_id: int | None  #: the manager's vault id
    found_by: tuple[str, ...]  #: discovery methods that saw it


def ilk_name(ilk: str) -> str:
    """A bytes32 name (an ilk, ETH-A; a file's `what`, mat) as its text, or its hex when it is not printable
    ASCII."""
    raw = bytes.fromhex(ilk[2:]).rstrip(b"\x00")
    text = raw.decode("ascii", errors="replace")
    return text if raw and text.isprintable() and "\ufffd" not in text else ilk


def ilk_hex(name: str) -> str:
    """ETH-A as its bytes32 hex."""
    raw = name.encode()
    if len(raw) > 32:
        raise UserError(f"ilk {name!r} is longer than 32 bytes")
    return "0x" + raw.ljust(32, b"\x00").hex()


def _key(name: str) -> bytes:
    return name.encode().ljust(32, b"\x00")


def _address_or_none(raw: Any) -> str | None:
    if raw in (None, "0x"):
        return None
    try:
        address = str(CHAINLOG.decode("getAddress", raw)[0]).lower()
    except (ValueError, TypeError, OverflowError):
        return None
    return None if address == ZERO else address


def parse_urn_list(value: str) -> tuple[tuple[str | None, str], ...]:
    """The `urns` option: a file (one entry a line, # comments) or a comma/space-separated list; each entry an urn
    address, or ILK:address (ETH-A:0x...) for one ilk only."""
    path = Path(value).expanduser()
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UserError(f"urns: {value} is not a text file; give a file of urn addresses, one a line") from None
        except OSError as exc:
            raise UserError(f"urns: cannot read {value} ({exc.strerror or exc})") from None
    elif path.parent != Path(".") and ("/" in value or value.startswith("~")) and not path.exists():
        # A path-like value that names no file: say so, rather than that a path is not an urn address.
        raise UserError(f"urns: no file at {value}; give a file of urn addresses, or a comma-separated list")
    else:
        text = value
    entries: list[tuple[str | None, str]] = []
    for line in text.splitlines():
        for token in line.split("#", 1)[0].replace(",", " ").split():
            ilk, _, address = token.rpartition(":")
            address = address.lower()
            if not (
                len(address) == 42 and address.startswith("0x") and all(c in "0123456789abcdef" for c in address[2:])
            ):
                raise UserError(
                    f"urns: {token!r} is not an urn address (0x and 40 hex digits) or ILK:address; give a file of "
                    "them, one a line, or a comma-separated list"
                )
            entries.append((ilk_hex(ilk) if ilk else None, address))
    if not entries:
        raise UserError(f"urns: {value!r} names no urn; give a file of urn addresses or a comma-separated list")
    return tuple(dict.fromkeys(entries))


def discover(rpc: RpcClient, address: str, block: int, urns_option: str | None) -> Deployment:
    """The contracts a ChainLog names, after checking it is one (it names itself under CHANGELOG and names a
    Vat, Spotter, Jug and Dog that agree on the Vat)."""
    tag = hex(block)
    keys = (SELF_KEY, VAT_KEY, SPOT_KEY, JUG_KEY, DOG_KEY, CDP_MANAGER_KEY, ILK_REGISTRY_KEY, DAI_KEY)
    raw = rpc.batch_each([eth_call(address, CHAINLOG, "getAddress", _key(k), block=tag) for k in keys])
    found = {k: _address_or_none(r) for k, r in zip(keys, raw, strict=True)}
    required = (VAT_KEY, SPOT_KEY, JUG_KEY, DOG_KEY, DAI_KEY)
    if found[SELF_KEY] != address.lower() or any(found[k] is None for k in required):
        missing = [k for k in (SELF_KEY, *required) if found[k] is None]
        why = f"no {', '.join(missing)}" if missing else "it does not name itself under CHANGELOG"
        raise UserError(
            f"{address} is not a Maker ChainLog ({why}); check --address (mainnet's is "
            "0xdA0Ab1e0017DEbCd72Be8599041a2aa3bA7e740F), or give --protocol for the contract it is"
        )
    vat, spotter, jug, dog = (str(found[k]) for k in (VAT_KEY, SPOT_KEY, JUG_KEY, DOG_KEY))
    # The debt token's symbol and the IlkRegistry's list ride with the checks (read only if they pass).
    registry_address = found[ILK_REGISTRY_KEY]
    list_calls = [] if registry_address is None else [eth_call(registry_address, ILK_REGISTRY, "list", block=tag)]
    answers = rpc.batch_each(
        [eth_call(vat, VAT, "live", block=tag)]
        + [eth_call(c, abi, "vat", block=tag) for c, abi in ((spotter, SPOTTER), (jug, JUG), (dog, DOG))]
        + [eth_call(str(found[DAI_KEY]), ERC20, "symbol", block=tag)]
        + list_calls
    )
    checks, dai_raw, listed = answers[:4], answers[4], answers[5] if list_calls else None
    try:
        VAT.decode("live", checks[0])
        agree = all(_address_or_none(r) == vat for r in checks[1:])
    except (ValueError, TypeError, OverflowError):
        agree = False
    if not agree:
        raise UserError(
            f"the ChainLog at {address} names a {VAT_KEY} ({vat}) that its Spotter, Jug and Dog do not all use; "
            "it is not a Maker deployment chainrisk can read"
        )
    deployment = Deployment(
        chainlog=address.lower(),
        vat=vat,
        spot=spotter,
        jug=jug,
        dog=dog,
        cdp_manager=found[CDP_MANAGER_KEY],
        ilk_registry=found[ILK_REGISTRY_KEY],
        dai=str(found[DAI_KEY]),
        listed=parse_urn_list(urns_option) if urns_option else (),
    )
    registry = tuple(_registry_list(listed))
    dai_symbol = decode_answer(ERC20, "symbol", dai_raw)
    return replace(
        deployment,
        clips=_clips(rpc, deployment, registry, block),
        registry=registry,
        dai_symbol=str(dai_symbol[0]) if dai_symbol else "DAI",
    )


def _clips(
    rpc: RpcClient, deployment: Deployment, registry: tuple[str, ...], block: int
) -> tuple[tuple[str, str], ...]:
    """(clip, ilk) for every ilk the registry lists (`registry`) or the urn list names, from the Dog's
    `ilks(ilk).clip` (an ilk without one, or whose entry does not decode, has no auctions to follow)."""
    ilks = sorted(set(registry) | {i for i, _ in deployment.listed if i is not None})
    raw = rpc.batch_each([eth_call(deployment.dog, DOG, "ilks", bytes.fromhex(i[2:]), block=hex(block)) for i in ilks])
    found = []
    for ilk, answer in zip(ilks, raw, strict=True):
        entry = decode_answer(DOG, "ilks", answer)
        if entry is not None and str(entry[0]).lower() != ZERO:
            found.append((str(entry[0]).lower(), ilk))
    return tuple(found)


def _registry_list(raw: Any) -> list[str]:
    """Every ilk the IlkRegistry lists, from its answer to `list()` (none without a registry, or where it reverted)."""
    if raw in (None, "0x"):
        return []
    return ["0x" + bytes(i).hex() for i in ILK_REGISTRY.decode("list", raw)[0]]


def decode_answer(abi: Any, fn: str, raw: Any) -> tuple[Any, ...] | None:
    """A result decoded, or None for a call that reverted or answered something else (a non-conforming contract
    must not sink the snapshot)."""
    if raw in (None, "0x"):
        return None
    try:
        decoded: tuple[Any, ...] = abi.decode(fn, raw)
    except (ValueError, TypeError, OverflowError):
        return None
    return decoded


def _with_bud(pip: str) -> dict[str, Any]:
    """State override making READER whitelisted (bud[READER] = 1) in an OSM at `pip`."""
    slot = address_mapping_slot(READER, OSM_BUD_SLOT)
    return {pip: {"stateDiff": {"0x" + slot.hex(): "0x" + "0" * 63 + "1"}}}


def _osm_calls(pip: str, tag: str) -> list[tuple[str, list[Any]]]:
    override = _with_bud(pip)
    return [
        ("eth_call", [{"from": READER, "to": pip, "data": OSM.encode(fn)}, tag, override])
        for fn in ("peek", "peep", "zzz", "hop")
    ]


def _symbol(raw: Any) -> str | None:
    decoded = decode_answer(ERC20, "symbol", raw)
    if decoded is not None:
        return str(decoded[0])
    if raw not in (None, "0x") and len(raw) == 66:  # bytes32 symbols (MKR-style)
        text = bytes.fromhex(raw[2:]).rstrip(b"\x00").decode("ascii", errors="replace")
        return text if text.isprintable() and "\ufffd" not in text else None
    return None


#: What the IlkRegistry answers of each ilk's gem (`_registry_gem_calls`).
GEM_FIELDS = ("gem", "join", "dec")


def _registry_gem_calls(deployment: Deployment, ilks: list[str], tag: str) -> list[tuple[str, list[Any]]]:
    """The IlkRegistry's `gem`, `join` and `dec` of each ilk (none without a registry), for `_gem_records`."""
    if deployment.ilk_registry is None:
        return []
    registry = deployment.ilk_registry
    return [eth_call(registry, ILK_REGISTRY, fn, bytes.fromhex(i[2:]), block=tag) for i in ilks for fn in GEM_FIELDS]


def _gem_records(
    rpc: RpcClient, deployment: Deployment, ilks: list[str], registry_raw: list[Any], tag: str
) -> dict[str, tuple[str | None, str | None, int | None]]:
    """Each ilk's (gem, join, dec): the IlkRegistry's (`registry_raw`: the answers to `_registry_gem_calls`), else
    the ChainLog's MCD_JOIN_<ILK> and the join's own `gem` and `dec` (two round trips, only for ilks the registry
    does not hold)."""
    records: dict[str, tuple[str | None, str | None, int | None]] = {}
    if registry_raw:
        width = len(GEM_FIELDS)
        for k, i in enumerate(ilks):
            gem_raw, join_raw, dec_raw = (
                decode_answer(ILK_REGISTRY, fn, registry_raw[width * k + j]) for j, fn in enumerate(GEM_FIELDS)
            )
            # An ilk the registry does not hold answers zeros.
            if gem_raw and join_raw and str(join_raw[0]).lower() != ZERO:
                records[i] = (str(gem_raw[0]).lower(), str(join_raw[0]).lower(), int(dec_raw[0]) if dec_raw else None)
    unknown = [i for i in ilks if i not in records]
    join_keys = {i: JOIN_KEY_PREFIX + ilk_name(i).replace("-", "_") for i in unknown}
    join_keys = {i: k for i, k in join_keys.items() if len(k) <= 32}
    joins_raw = rpc.batch_each(
        [eth_call(deployment.chainlog, CHAINLOG, "getAddress", _key(k), block=tag) for k in join_keys.values()]
    )
    found_joins = {i: a for i, a in zip(join_keys, map(_address_or_none, joins_raw), strict=True) if a is not None}
    join_fields = rpc.batch_each(
        [eth_call(j, GEM_JOIN, fn, block=tag) for j in found_joins.values() for fn in ("gem", "dec")]
    )
    for k, (i, join_address) in enumerate(found_joins.items()):
        join_gem = decode_answer(GEM_JOIN, "gem", join_fields[2 * k])
        join_dec = decode_answer(GEM_JOIN, "dec", join_fields[2 * k + 1])
        records[i] = (
            str(join_gem[0]).lower() if join_gem else None,
            join_address,
            int(join_dec[0]) if join_dec else None,
        )
    return records


def _gems_of(
    ilks: list[str],
    records: dict[str, tuple[str | None, str | None, int | None]],
    tokens: list[str],
    token_raw: list[Any],
) -> dict[str, Gem]:
    """Each ilk's gem from its record (`_gem_records`) and its token's symbol and decimals (`token_raw`: each of
    `tokens`' symbol and decimals answers; a symbol-less token keeps its address)."""
    symbols = {t: _symbol(token_raw[2 * k]) for k, t in enumerate(tokens)}
    decimals = {t: decode_answer(ERC20, "decimals", token_raw[2 * k + 1]) for k, t in enumerate(tokens)}
    gems = {}
    for i in ilks:
        token, ilk_join, dec = records.get(i, (None, None, None))
        token_decimals = decimals.get(token) if token else None
        gems[i] = Gem(
            address=token,
            symbol=symbols.get(token) if token else None,
            decimals=int(token_decimals[0]) if token_decimals else dec,
            join=ilk_join,
            join_dec=dec,
        )
    return gems


def read_ilks(
    rpc: RpcClient, deployment: Deployment, ilks: list[str], block: int, timestamp: int
) -> tuple[System, list[Ilk]]:
    """Every ilk's Vat, Spotter, Jug and Dog state, its gem, and its pip's current and next values at `block`."""
    tag = hex(block)
    system_calls = [
        eth_call(deployment.spot, SPOTTER, "par", block=tag),
        eth_call(deployment.jug, JUG, "base", block=tag),
    ]
    system_calls += [eth_call(deployment.dog, DOG, fn, block=tag) for fn in ("live", "Hole", "Dirt")]
    calls = []
    for i in ilks:
        key = bytes.fromhex(i[2:])
        calls += [
            eth_call(deployment.vat, VAT, "ilks", key, block=tag),
            eth_call(deployment.spot, SPOTTER, "ilks", key, block=tag),
            eth_call(deployment.jug, JUG, "ilks", key, block=tag),
            eth_call(deployment.dog, DOG, "ilks", key, block=tag),
        ]
    # One round trip for the system's and the ilks' state and the registry's gems; the core contracts must answer
    # (one that refused is asked again with the others, for the node's own words), the registry may not.
    core, registry_raw = rpc.batch_with([*system_calls, *calls], _registry_gem_calls(deployment, ilks, tag))
    system_raw, raw = core[: len(system_calls)], core[len(system_calls) :]
    par, base, dog_live, global_hole, global_dirt = (
        SPOTTER.decode("par", system_raw[0])[0],
        JUG.decode("base", system_raw[1])[0],
        *(DOG.decode(fn, r)[0] for fn, r in zip(("live", "Hole", "Dirt"), system_raw[2:], strict=True)),
    )
    states = []
    for k, i in enumerate(ilks):
        vat_ilk = VAT.decode("ilks", raw[4 * k])
        pip, mat = SPOTTER.decode("ilks", raw[4 * k + 1])
        duty, rho = JUG.decode("ilks", raw[4 * k + 2])
        clip, chop, hole, dirt = DOG.decode("ilks", raw[4 * k + 3])
        states.append((i, vat_ilk, str(pip).lower(), mat, duty, rho, str(clip).lower(), chop, hole, dirt))
    records = _gem_records(rpc, deployment, ilks, registry_raw, tag)
    tokens = sorted({r[0] for r in records.values() if r[0]})
    pips = sorted({s[2] for s in states if s[2] != ZERO})
    clips = sorted({s[6] for s in states if s[6] != ZERO})
    # One round trip for the pips' values, the clips' settings and the gems' symbols and decimals. A node known to run
    # no state override (RpcClient.takes_overrides) is not asked the peeks: it would refuse them.
    osm_calls = [] if rpc.overrides_refused() else [c for p in pips for c in _osm_calls(p, tag)]
    clip_calls = [eth_call(c, CLIPPER, fn, block=tag) for c in clips for fn in CLIP_SETTINGS]
    token_calls = [eth_call(t, ERC20, fn, block=tag) for t in tokens for fn in ("symbol", "decimals")]
    found = rpc.batch_each([*osm_calls, *clip_calls, *token_calls])
    osm_raw = found[: len(osm_calls)] if osm_calls else [None] * (4 * len(pips))
    clip_raw = found[len(osm_calls) : len(osm_calls) + len(clip_calls)]
    gems = _gems_of(ilks, records, tokens, found[len(osm_calls) + len(clip_calls) :])
    osm = {p: osm_raw[4 * k : 4 * k + 4] for k, p in enumerate(pips)}
    width = len(CLIP_SETTINGS)
    incentives = {c: _incentive(clip_raw[width * k : width * k + 2]) for k, c in enumerate(clips)}
    auction_settings = {c: _auction_settings(clip_raw[width * k + 2 : width * (k + 1)]) for k, c in enumerate(clips)}
    result = []
    for i, vat_ilk, pip, mat, duty, rho, clip, chop, hole, dirt in states:
        art_total, rate, vat_spot, line, dust = vat_ilk
        price = _price(osm.get(pip), vat_spot, mat, par)
        try:
            dripped: int | None = drip(rate, duty, base, rho, timestamp)
        except MakerRevert:
            dripped = None
        limits = DogLimits(dog_live, clip != ZERO, chop, hole, dirt, global_hole, global_dirt)
        buf, tail, cusp = auction_settings.get(clip, NO_CLIP)
        result.append(
            Ilk(
                ilk=i,
                name=ilk_name(i),
                art_total=art_total,
                rate=rate,
                spot=vat_spot,
                line=line,
                dust=dust,
                pip=pip,
                mat=mat,
                duty=duty,
                rho=rho,
                rate_dripped=dripped,
                dog=limits,
                clip=clip,
                gem=gems[i],
                incentive=incentives.get(clip),
                price=price,
                spot_at_price=_spot_or_none(price.value, price.has, par, mat) if price.method == "peek" else None,
                spot_next=_spot_or_none(price.next_value, price.next_has, par, mat),
                clip_buf=buf,
                clip_tail=tail,
                clip_cusp=cusp,
            )
        )
    return System(par, base), result


def _auction_settings(answers: list[Any]) -> tuple[int | None, int | None, int | None]:
    """A clip's buf, tail and cusp from its answers, None each where it did not answer."""
    buf, tail, cusp = (decode_uint(CLIPPER, fn, raw) for fn, raw in zip(CLIP_SETTINGS[2:], answers, strict=True))
    return buf, tail, cusp


def _incentive(answers: list[Any]) -> tuple[int, int] | None:
    """(tip, chip) from a clip's answers, or None where either call reverted or answered no word."""
    if any(raw is None for raw in answers):
        return None
    try:
        tip, chip = (int(CLIPPER.decode(fn, raw)[0]) for fn, raw in zip(("tip", "chip"), answers, strict=True))
    except (TypeError, ValueError, OverflowError):
        return None
    return tip, chip


def _spot_or_none(value: int | None, has: bool, par: int, mat: int) -> int | None:
    if value is None or mat == 0 or par == 0:
        return None
    try:
        return spot(value, has, par, mat)
    except MakerRevert:
        return None


def _price(answers: Sequence[Any] | None, vat_spot: int, mat: int, par: int) -> Price:
    """The pip's current and next values (see the module docstring), or the price the Vat's spot implies."""
    peek = decode_answer(OSM, "peek", answers[0]) if answers else None
    if peek is not None:
        peep = decode_answer(OSM, "peep", answers[1]) if answers else None
        zzz = decode_answer(OSM, "zzz", answers[2]) if answers else None
        hop = decode_answer(OSM, "hop", answers[3]) if answers else None
        return Price(
            method="peek",
            value=int.from_bytes(peek[0], "big"),
            has=bool(peek[1]),
            next_value=int.from_bytes(peep[0], "big") if peep else None,
            next_has=bool(peep[1]) if peep else False,
            next_at=int(zzz[0]) + int(hop[0]) if zzz and hop else None,
        )
    if vat_spot and mat and par:
        # spot = floor(val * 1e9 * RAY / par) * RAY / mat floored: inverting gives val to within its rounding.
        return Price("vat-spot", vat_spot * mat * par // (RAY * RAY * BLN), True, None, False, None)
    return Price("none", None, False, None, False, None)


def _lens_call(data: str, tag: str) -> tuple[str, list[Any]]:
    return ("eth_call", [{"to": LENS_ADDRESS, "data": data}, tag, {LENS_ADDRESS: {"code": LENS_RUNTIME}}])


def read_cdps(rpc: RpcClient, manager: str, ids: list[int], block: int) -> list[tuple[int, str, str, str]]:
    """(cdp id, urn, owner now, ilk hex) of each vault id, through the lens; the ids of a lens call the node leaves
    unanswered (chainrisk.protocols.lens) by plain eth_calls of the manager's urns, owns and ilks."""
    tag = hex(block)
    chunks = [ids[k : k + LENS_CHUNK] for k in range(0, len(ids), LENS_CHUNK)]
    answers = lens_answers(rpc, [_lens_call(LENS.encode("cdps", manager, chunk), tag) for chunk in chunks])
    plain = unanswered_read(
        chunks,
        answers,
        lambda ids: getters_of(rpc, manager, CDP_MANAGER, ("urns", "owns", "ilks"), [(c,) for c in ids], tag),
    )
    out = []
    for chunk, answer, read in zip(chunks, answers, plain, strict=True):
        if answer is not None:
            urns, owners, ilks = LENS.decode("cdps", answer)
        else:
            urns, owners, ilks = (list(column) for column in zip(*read, strict=True))
        out += [
            (cdp, str(u).lower(), str(o).lower(), "0x" + bytes(i).hex())
            for cdp, u, o, i in zip(chunk, urns, owners, ilks, strict=True)
        ]
    return out


def read_urns(rpc: RpcClient, vat: str, pairs: list[tuple[str, str]], block: int) -> list[tuple[int, int]]:
    """Vat.urns(ilk, urn) -> (ink, art) of each pair, through the lens; the pairs of a lens call the node leaves
    unanswered (chainrisk.protocols.lens) by plain eth_calls of Vat.urns."""
    tag = hex(block)
    chunks = [pairs[k : k + LENS_CHUNK] for k in range(0, len(pairs), LENS_CHUNK)]
    calls = [
        _lens_call(LENS.encode("vaults", vat, [bytes.fromhex(i[2:]) for i, _ in c], [u for _, u in c]), tag)
        for c in chunks
    ]
    answers = lens_answers(rpc, calls)
    plain = unanswered_read(
        chunks,
        answers,
        lambda ps: getters_of(rpc, vat, VAT, ("urns",), [(bytes.fromhex(i[2:]), u) for i, u in ps], tag),
    )
    out: list[tuple[int, int]] = []
    for answer, read in zip(answers, plain, strict=True):
        if answer is None:
            out += [(int(ink), int(art)) for ((ink, art),) in read]
            continue
        words = LENS.decode("vaults", answer)[0]
        out += [(words[2 * k], words[2 * k + 1]) for k in range(len(words) // 2)]
    return out


def discover_urns(
    rpc: RpcClient,
    deployment: Deployment,
    logged: Iterable[tuple[str, str]],
    cdp_ids: list[int],
    ilks: list[str],
    block: int,
) -> tuple[list[Urn], list[str]]:
    """Every non-empty urn the three methods find: the Vat's notes (`logged` (ilk, urn) pairs), the CDP manager's
    vaults (`cdp_ids` from NewCdp, resolved to urn, owner and ilk now) and the listed urns (an urn listed without an
    ilk is looked up in every ilk). Returns the urns and the ilks the manager's vaults add."""
    by_pair: dict[tuple[str, str], set[str]] = {}
    for pair in logged:
        by_pair.setdefault(pair, set()).add(BY_VAT_LOGS)
    owners: dict[tuple[str, str], tuple[str | None, int | None]] = {}
    if deployment.cdp_manager is not None and cdp_ids:
        try:
            cdps = read_cdps(rpc, deployment.cdp_manager, sorted(set(cdp_ids)), block)
        except RpcError as exc:
            raise UserError(f"the CDP manager {deployment.cdp_manager} does not answer urns/owns/ilks: {exc}") from None
        for cdp_id, cdp_urn, cdp_owner, cdp_ilk in cdps:
            by_pair.setdefault((cdp_ilk, cdp_urn), set()).add(BY_MANAGER)
            owners[(cdp_ilk, cdp_urn)] = (cdp_owner, cdp_id)
    extra_ilks = sorted({i for i, _ in by_pair} - set(ilks))
    every_ilk = [*ilks, *extra_ilks]
    for listed_ilk, listed_urn in deployment.listed:
        for i in [listed_ilk] if listed_ilk is not None else every_ilk:
            by_pair.setdefault((i, listed_urn), set()).add(BY_LIST)
    pairs = sorted(by_pair)
    amounts = read_urns(rpc, deployment.vat, pairs, block)
    urns = []
    for (ilk, urn), (ink, art) in zip(pairs, amounts, strict=True):
        if ink == 0 and art == 0:
            continue
        owner, cdp = owners.get((ilk, urn), (None, None))
        urns.append(Urn(ilk, urn, ink, art, owner, cdp, tuple(sorted(by_pair[(ilk, urn)]))))
    return urns, extra_ilks
