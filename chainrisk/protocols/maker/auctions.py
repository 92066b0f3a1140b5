"""Maker's running Clipper auctions at a snapshot (raw_maker_auctions): each clip's `list()` of active auctions, each
auction's `sales(id)` and `getStatus(id)`, and the price curve its `calc` is (makerdao/dss src/clip.sol, src/abaci.sol).

A running auction's price falls with time, and whether it needs a reset (`redo`) turns with it: both are accrued
columns, worked out for any block time from the stored sale and curve by `chainrisk.protocols.maker.maths`
(`auction_price`, `auction_needs_redo`), so an auction nobody touches opens no new version run after run. A curve none
of dss's getters describes keeps the price the Clipper reports (its version then opens at each snapshot). A clip that
does not answer `list()` or `sales()` leaves its auctions unknown: a `data_quality` row says so, and the run goes on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from chainrisk.abi import eth_call, load_abi
from chainrisk.protocols.frames import keyed
from chainrisk.protocols.maker.constants import RAY
from chainrisk.protocols.maker.maths import EXPONENTIAL, LINEAR, STAIRSTEP, Abacus, auction_needs_redo, auction_price
from chainrisk.protocols.maker.snapshot import ZERO, decode_answer
from chainrisk.protocols.quality import Issue, decode_uint
from chainrisk.rpc import RpcClient
from chainrisk.units import hugeint_or_none

CLIPPER = load_abi("maker", "Clipper")
ABACUS = load_abi("maker", "Abacus")
AUCTIONS = "raw_maker_auctions"
ACCRUED = ("price", "needs_redo")

DDL = """
CREATE TABLE IF NOT EXISTS raw_maker_auctions (
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    ilk VARCHAR NOT NULL, ilk_hex VARCHAR NOT NULL, clip VARCHAR NOT NULL, auction_id HUGEINT NOT NULL,
    urn VARCHAR, tab VARCHAR, tab_dai HUGEINT, lot HUGEINT, lot_gem_units HUGEINT, tic BIGINT, top HUGEINT,
    calc VARCHAR, calc_kind VARCHAR, calc_tau HUGEINT, calc_cut HUGEINT, calc_step HUGEINT, tail HUGEINT, cusp HUGEINT,
    price HUGEINT, needs_redo BOOLEAN,
    PRIMARY KEY (chain_id, market, block_number, clip, auction_id)
);
"""

SCHEMA: dict[str, pl.DataType] = {
    "ilk": pl.Utf8(),
    "ilk_hex": pl.Utf8(),
    "clip": pl.Utf8(),
    "auction_id": pl.Int128(),
    "urn": pl.Utf8(),
    "tab": pl.Utf8(),
    "tab_dai": pl.Int128(),
    "lot": pl.Int128(),
    "lot_gem_units": pl.Int128(),
    "tic": pl.Int64(),
    "top": pl.Int128(),
    "calc": pl.Utf8(),
    "calc_kind": pl.Utf8(),
    "calc_tau": pl.Int128(),
    "calc_cut": pl.Int128(),
    "calc_step": pl.Int128(),
    "tail": pl.Int128(),
    "cusp": pl.Int128(),
    "price": pl.Int128(),
    "needs_redo": pl.Boolean(),
}


@dataclass(frozen=True)
class Auction:
    """One running auction as its Clipper answers at the block."""

    ilk: str  #: bytes32 hex
    clip: str  #: the Clipper, lowercase hex
    auction_id: int  #: its id
    urn: str  #: the urn it sells for (usr)
    tab: int  #: dai left to raise [rad]
    lot: int  #: collateral left to sell [wad, the Vat's units]
    tic: int  #: when it started or was last reset [unix seconds]
    top: int  #: its starting price [ray]
    calc: str | None  #: the price curve contract
    abacus: Abacus  #: the curve, as its getters describe it
    tail: int | None  #: Clipper.tail [seconds]
    cusp: int | None  #: Clipper.cusp [ray]
    price: int | None  #: getStatus' price now [ray]
    needs_redo: bool | None  #: getStatus' needsRedo


def _abacus(answers: Sequence[Any]) -> Abacus:
    """The curve its getters describe: tau (LinearDecrease), cut and step (StairstepExponentialDecrease), cut alone
    (ExponentialDecrease)."""
    tau, cut, step = (decode_uint(ABACUS, fn, raw) for fn, raw in zip(("tau", "cut", "step"), answers, strict=True))
    if tau is not None and cut is None:
        return Abacus(LINEAR, tau=tau)
    if cut is not None and step is not None:
        return Abacus(STAIRSTEP, cut=cut, step=step)
    if cut is not None and tau is None:
        return Abacus(EXPONENTIAL, cut=cut)
    return Abacus(None)


def read_auctions(
    rpc: RpcClient, clips: Sequence[tuple[str, str]], names: Mapping[str, str], block: int
) -> tuple[list[Auction], list[Issue]]:
    """Every running auction of `clips` ((clip, ilk hex), as the Dog names them) at `block`, and a data_quality issue
    per clip that does not answer (`names`: each ilk's name, the market its rows belong to)."""
    tag = hex(block)
    # One ilk per clip (a Clipper sells for one ilk; two Dog entries naming one clip would read its sales twice).
    followed = sorted(dict(sorted(set(clips), reverse=True)).items())
    fns = ("list", "calc", "tail", "cusp")
    raw = rpc.batch_each([eth_call(c, CLIPPER, fn, block=tag) for c, _ in followed for fn in fns])
    issues: list[Issue] = []
    active: list[tuple[str, str, int]] = []
    settings: dict[str, tuple[str | None, int | None, int | None]] = {}
    for k, (clip, ilk) in enumerate(followed):
        answers = dict(zip(fns, raw[len(fns) * k : len(fns) * (k + 1)], strict=True))
        listed = decode_answer(CLIPPER, "list", answers["list"])
        if listed is None:
            issues.append(_unread(names.get(ilk, ilk), clip, "list()"))
            continue
        curve = decode_answer(CLIPPER, "calc", answers["calc"])
        tail, cusp = (decode_uint(CLIPPER, fn, answers[fn]) for fn in ("tail", "cusp"))
        settings[clip] = (str(curve[0]).lower() if curve is not None else None, tail, cusp)
        active += [(clip, ilk, int(i)) for i in listed[0]]
    calcs = sorted({s[0] for s in settings.values() if s[0] is not None and s[0] != ZERO})
    # The price curves and the running sales in one round trip.
    curve_calls = [eth_call(c, ABACUS, fn, block=tag) for c in calcs for fn in ("tau", "cut", "step")]
    sale_calls = [eth_call(c, CLIPPER, fn, i, block=tag) for c, _, i in active for fn in ("sales", "getStatus")]
    both = rpc.batch_each([*curve_calls, *sale_calls])
    curve_raw, sale_raw = both[: len(curve_calls)], both[len(curve_calls) :]
    curves = {c: _abacus(curve_raw[3 * k : 3 * k + 3]) for k, c in enumerate(calcs)}
    auctions = []
    unread: set[str] = set()
    for k, (clip, ilk, auction_id) in enumerate(active):
        sale = decode_answer(CLIPPER, "sales", sale_raw[2 * k])
        if sale is None:
            unread.add(clip)
            continue
        _pos, tab, lot, usr, tic, top = sale
        needs_redo, price = decode_answer(CLIPPER, "getStatus", sale_raw[2 * k + 1]) or (None, None)
        calc, tail, cusp = settings[clip]
        auctions.append(
            Auction(
                ilk=ilk,
                clip=clip,
                auction_id=auction_id,
                urn=str(usr).lower(),
                tab=int(tab),
                lot=int(lot),
                tic=int(tic),
                top=int(top),
                calc=calc,
                abacus=curves.get(calc, Abacus(None)) if calc is not None else Abacus(None),
                tail=tail,
                cusp=cusp,
                price=int(price) if price is not None else None,
                needs_redo=bool(needs_redo) if needs_redo is not None else None,
            )
        )
    issues += [_unread(names.get(ilk, ilk), clip, "sales()") for clip, ilk in followed if clip in unread]
    return auctions, issues


def _unread(market: str, clip: str, call: str) -> Issue:
    return Issue(
        market=market,
        subject=clip,
        kind="auctions_unread",
        detail=f"the ilk's Clipper does not answer {call} at the block read",
        unknown="its running auctions (raw_maker_auctions, stg_maker_auctions)",
    )


def auctions_frame(
    auctions: Sequence[Auction],
    names: Mapping[str, str],
    vat_units: Mapping[str, int],
    chain_id: int,
    source: str,
    block: int,
) -> pl.DataFrame:
    """raw_maker_auctions' rows: one per running auction, its sale exactly and getStatus' price and verdict."""
    rows = [
        {
            "ilk": names.get(a.ilk, a.ilk),
            "ilk_hex": a.ilk,
            "clip": a.clip,
            "auction_id": hugeint_or_none(a.auction_id),
            "urn": a.urn,
            "tab": str(a.tab),
            "tab_dai": hugeint_or_none(a.tab // RAY),
            "lot": hugeint_or_none(a.lot),
            "lot_gem_units": hugeint_or_none(a.lot // vat_units.get(a.ilk, 1)),
            "tic": a.tic,
            "top": hugeint_or_none(a.top),
            "calc": a.calc,
            "calc_kind": a.abacus.kind,
            "calc_tau": hugeint_or_none(a.abacus.tau),
            "calc_cut": hugeint_or_none(a.abacus.cut),
            "calc_step": hugeint_or_none(a.abacus.step),
            "tail": hugeint_or_none(a.tail),
            "cusp": hugeint_or_none(a.cusp),
            "price": hugeint_or_none(a.price),
            "needs_redo": a.needs_redo,
        }
        for a in auctions
        if hugeint_or_none(a.auction_id) is not None
    ]
    return keyed(pl.DataFrame(rows, schema=SCHEMA), chain_id, source, block)


def _int(value: Any) -> int | None:
    """A stored integer (HUGEINT arrives as a Decimal) as an int."""
    return int(value) if value is not None else None


def accrue(rows: pl.DataFrame, timestamp: int) -> list[dict[str, Any]]:
    """Each auction's price and needsRedo at `timestamp`, from its stored sale and curve, as getStatus answers them;
    None where the curve is unknown (the row then keeps what was read, and a version opens)."""
    out = []
    for row in rows.iter_rows(named=True):
        abacus = Abacus(
            row["calc_kind"], tau=_int(row["calc_tau"]), cut=_int(row["calc_cut"]), step=_int(row["calc_step"])
        )
        top, tic, tail, cusp = _int(row["top"]), row["tic"], _int(row["tail"]), _int(row["cusp"])
        price = auction_price(abacus, top, timestamp - tic) if top is not None and tic is not None else None
        done = (
            auction_needs_redo(price, top, timestamp - tic, tail, cusp)
            if price is not None and top is not None and tic is not None and tail is not None and cusp is not None
            else None
        )
        out.append({"price": price, "needs_redo": done})
    return out
