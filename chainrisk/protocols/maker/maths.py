"""Maker's integer maths, mirrored with its rounding: Jug.drip and rpow (makerdao/dss src/jug.sol), Spotter.poke
(src/spot.sol), the Vat's safety check (src/vat.sol frob/fork), Dog.bark's liquidation amounts (src/dog.sol) and a
Clipper auction's price and reset test (src/abaci.sol's price curves, src/clip.sol `status`)."""

from __future__ import annotations

from dataclasses import dataclass

from chainrisk.protocols.maker.constants import BLN, RAY, WAD

#: EVM words: Jug's assembly and Solidity's checked maths revert past them.
UINT256 = 2**256


class MakerRevert(ArithmeticError):
    """The contract would revert here (an overflow check or a require); the message is its reason."""


def _word(value: int) -> int:
    if value >= UINT256:
        raise MakerRevert("overflow")
    return value


def rpow(x: int, n: int, b: int) -> int:
    """Jug.rpow: x^n in base b by repeated squaring, each product rounded half up (+ b/2, then / b), reverting
    where the assembly checks overflow."""
    if x == 0:
        return b if n == 0 else 0
    z = b if n % 2 == 0 else x
    half = b // 2
    n //= 2
    while n:
        xx = _word(x * x)
        x = _word(xx + half) // b
        if n % 2:
            zx = _word(z * x)
            z = _word(zx + half) // b
        n //= 2
    return z


def rmul(x: int, y: int) -> int:
    """Jug.rmul: x * y / RAY, rounded down."""
    return _word(x * y) // RAY


def drip(rate: int, duty: int, base: int, rho: int, now: int) -> int:
    """Jug.drip's new rate at `now`: rmul(rpow(base + duty, now - rho, RAY), rate)."""
    if now < rho:
        raise MakerRevert("Jug/invalid-now")
    return rmul(rpow(_word(base + duty), now - rho, RAY), rate)


def spot(val: int, has: bool, par: int, mat: int) -> int:
    """Spotter.poke: rdiv(rdiv(val * 10^9, par), mat) with rdiv(x, y) = x * RAY / y rounded down; 0 without a
    value (the ilk then cannot be liquidated: Dog.bark requires spot > 0)."""
    if not has:
        return 0
    return _word(_word(_word(val * BLN) * RAY) // par * RAY) // mat


def reference_price(val: int, par: int) -> int:
    """The pip's wad price in ray per dai: rdiv(val * 10^9, par), Spotter.poke's first step (Clipper's feed price)."""
    return val * BLN * RAY // par


def is_unsafe(ink: int, art: int, rate: int, spot_: int) -> bool:
    """What Dog.bark accepts (its first require): spot > 0 and ink * spot < art * rate. Vat.frob's safety check
    (art * rate <= ink * spot) is its negation wherever the ilk has a price (spot > 0)."""
    return spot_ > 0 and ink * spot_ < art * rate


def health_factor_wad(ink: int, art: int, rate: int, spot_: int) -> int | None:
    """ink * spot / (art * rate) in WAD, rounded down: below 1e18 exactly when ink * spot < art * rate. None
    without debt."""
    if art == 0:
        return None
    return ink * spot_ * WAD // (art * rate)


def liquidation_price(ink: int, art: int, rate: int, par: int, mat: int) -> int | None:
    """The lowest pip value (wad) at which Spotter.poke gives a spot that keeps the urn safe: the smallest spot
    s = ceil(art * rate / ink), then the smallest reference price p with floor(p * RAY / mat) >= s, then the
    smallest val with floor(val * 10^9 * RAY / par) >= p. The urn is unsafe below it. None without debt or ink."""
    if art == 0 or ink == 0:
        return None
    needed_spot = -(-art * rate // ink)
    needed_reference = -(-needed_spot * mat // RAY)
    return -(-needed_reference * par // (BLN * RAY))


@dataclass(frozen=True)
class Bark:
    """What Dog.bark would do to one urn now."""

    dart: int  #: normalised debt taken [wad]
    dink: int  #: collateral taken to auction [wad]
    due: int  #: debt moved to the Vow: dart * rate [rad]
    tab: int  #: dai the auction must raise: due * chop / WAD [rad]


@dataclass(frozen=True)
class DogLimits:
    """The Dog's state for one ilk."""

    live: int  #: Dog.live
    clip: bool  #: the ilk has a Clipper to kick
    chop: int  #: liquidation penalty [wad]
    hole: int  #: per-ilk limit on dai in active auctions [rad]
    dirt: int  #: per-ilk dai in active auctions [rad]
    global_hole: int  #: Dog.Hole, the global limit [rad]
    global_dirt: int  #: Dog.Dirt, global dai in active auctions [rad]


def bark(ink: int, art: int, rate: int, spot_: int, dust: int, dog: DogLimits) -> Bark | str:
    """Dog.bark's amounts for an urn, or the reason it reverts: the whole urn unless the room left under
    min(Hole - Dirt, hole - dirt) caps dart at room * WAD / rate / chop; a dusty remainder goes too."""
    if dog.live != 1:
        return "Dog/not-live"
    if not is_unsafe(ink, art, rate, spot_):
        return "Dog/not-unsafe"
    if not (dog.global_hole > dog.global_dirt and dog.hole > dog.dirt):
        return "Dog/liquidation-limit-hit"
    if dog.chop == 0 or not dog.clip:
        return "Dog: ilk without chop or clip"  # bark divides by chop, then kicks the clip
    room = min(dog.global_hole - dog.global_dirt, dog.hole - dog.dirt)
    dart = min(art, _word(room * WAD) // rate // dog.chop)
    if art > dart:
        if (art - dart) * rate < dust:
            dart = art
        elif dart * rate < dust:
            return "Dog/dusty-auction-from-partial-liquidation"
    dink = ink * dart // art
    if dink == 0:
        return "Dog/null-auction"
    due = dart * rate
    return Bark(dart, dink, due, due * dog.chop // WAD)


def keeper_incentive(tab: int, tip: int, chip: int) -> int:
    """What Clipper.kick pays the keeper a bark names (dss src/clip.sol `kick`): coin = tip + wmul(tab, chip) [rad],
    sucked from the Vow, 0 when neither is set. `tab` [rad] is the bark's (due x chop / WAD)."""
    return tip + tab * chip // WAD if tip > 0 or chip > 0 else 0


#: The price curves of dss src/abaci.sol, as `Abacus.kind` names them.
LINEAR = "linear"  #: LinearDecrease: top x (tau - dur) / tau, 0 from tau on
STAIRSTEP = "stairstep-exponential"  #: StairstepExponentialDecrease: top x cut^(dur / step)
EXPONENTIAL = "exponential"  #: ExponentialDecrease: top x cut^dur


@dataclass(frozen=True)
class Abacus:
    """A Clipper's price curve (its `calc`) as its public getters answer: `kind` None where none of the dss curves'
    getters fits (its price is then only what the Clipper reports)."""

    kind: str | None  #: LINEAR, STAIRSTEP, EXPONENTIAL or None
    tau: int | None = None  #: LinearDecrease.tau [seconds]
    cut: int | None = None  #: the exponential curves' factor [ray]
    step: int | None = None  #: StairstepExponentialDecrease.step [seconds]


def auction_price(calc: Abacus, top: int, dur: int) -> int | None:
    """`calc.price(top, dur)` [ray] as dss src/abaci.sol computes it (rmul rounds down, rpow half up per product);
    None for an unknown curve or where the contract would revert (a step of 0)."""
    try:
        if calc.kind == LINEAR and calc.tau is not None:
            return 0 if dur >= calc.tau else rmul(top, _word((calc.tau - dur) * RAY) // calc.tau)
        if calc.kind == STAIRSTEP and calc.cut is not None and calc.step:
            return rmul(top, rpow(calc.cut, dur // calc.step, RAY))
        if calc.kind == EXPONENTIAL and calc.cut is not None:
            return rmul(top, rpow(calc.cut, dur, RAY))
    except MakerRevert:
        return None
    return None


def auction_needs_redo(price: int, top: int, dur: int, tail: int, cusp: int) -> bool:
    """Clipper.status's `done` for a running auction (getStatus' needsRedo): older than `tail` seconds, or its price
    under `cusp` of its top (rdiv(price, top) < cusp)."""
    return dur > tail or (top > 0 and _word(price * RAY) // top < cusp)
