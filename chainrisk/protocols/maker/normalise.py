"""Turns Maker records into its raw frames (raw_maker_events, raw_maker_ilks, raw_maker_urns) and the shared
`positions` / `wallet_health` contract.

Each ilk is its own risk unit (`market` = the ilk's name, ETH-A), each urn a `wallet` (its CDP owner beside it in
raw_maker_urns), the gem and DAI its two assets. The base currency is the ilk's normalised debt unit, one `art`
(worth rate / 1e27 * 1e-18 DAI): debt_base is the urn's art exactly, and the Vat's verdict
ink * spot >= art * rate becomes floor(ink * spot / rate) >= art, integers that fit 128 bits where the rad
products (1e45 scale, past 128 bits) do not. The liquidation ratio enters as the per-position threshold
liquidation_threshold_wad = floor(1e18 * RAY / mat), and collateral_base is the smallest value whose
floor(value * threshold / 1e18) is floor(ink * spot / rate), the Vat's own figure: so the engine's per-position
rule gives health_factor < 1 exactly on the urns Dog.bark accepts. That value is the collateral's worth at the
price behind the Vat's spot to within 2 parts in 1e18. Amounts are in the gem's own decimals (ink / 10^(18 - dec):
the Vat counts WBTC in 18-decimal units through GemJoin5), prices in reference units per dai at par (USD).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import polars as pl

from chainrisk.protocols.frames import EXACT, HEALTH_SCHEMA, HEALTH_WAD_CAP, POSITION_SCHEMA, exact, keyed
from chainrisk.protocols.maker.constants import RAD, RAY, WAD
from chainrisk.protocols.maker.events import MakerEvent
from chainrisk.protocols.maker.maths import (
    Bark,
    bark,
    health_factor_wad,
    is_unsafe,
    keeper_incentive,
    liquidation_price,
    reference_price,
)
from chainrisk.protocols.maker.snapshot import Deployment, Ilk, System, Urn, ilk_name
from chainrisk.protocols.quality import Issue
from chainrisk.units import HUGEINT_LIMIT, hugeint_or_none

PROTOCOL = "maker"
SECONDS_PER_YEAR = 365 * 24 * 3600
#: WAD per basis point, for the bps columns of the shared contract.
WAD_PER_BPS = WAD // 10_000

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "block_number": pl.Int64(),
    "block_hash": pl.Utf8(),
    "tx_hash": pl.Utf8(),
    "log_index": pl.Int32(),
    "event": pl.Utf8(),
    "ilk": pl.Utf8(),
    "ilk_name": pl.Utf8(),
    "urn": pl.Utf8(),
    "dst": pl.Utf8(),
    "cdp_id": pl.Int64(),
    "owner": pl.Utf8(),
    "sender": pl.Utf8(),
    "dink": EXACT(),
    "dart": EXACT(),
    "due_dai": EXACT(),
    "clip": pl.Utf8(),
    "auction_id": EXACT(),
    "keeper": pl.Utf8(),
    "keeper_incentive_dai": EXACT(),
    "auction_tab_dai": EXACT(),
    "auction_price": EXACT(),
    "auction_owe_dai": EXACT(),
    "auction_lot": EXACT(),
    "auction_followed": pl.Boolean(),
    "what": pl.Utf8(),
}


def events_frame(events: list[MakerEvent]) -> pl.DataFrame:
    columns = {
        name: [ilk_name(e.ilk) if e.ilk else None for e in events]
        if name == "ilk_name"
        else [getattr(e, name) for e in events]
        for name in EVENT_SCHEMA
    }
    return exact(pl.DataFrame(columns, schema=EVENT_SCHEMA))


def market_rows(ilks: list[Ilk], dai: str) -> list[dict[str, object]]:
    """Each ilk's `markets` row: named by the ilk, its liquidation ratio as the parameter, dai as the one asset
    lent, bad debt to the system surplus (the Vow), the ilk's debt Art x rate in dai (wad, rounded down)."""
    rows: list[dict[str, object]] = []
    for ilk in sorted(ilks, key=lambda i: i.name):
        ratio = (ilk.mat * 1000 + RAY // 2) // RAY  # tenths of a percent, half up
        rows.append(
            {
                "market": ilk.name,
                "name": ilk.name,
                "parameters": f"LR {ratio // 10}.{ratio % 10}%",
                "loan_asset": dai,
                "bad_debt_rule": "surplus",
                "debt_amount": ilk.art_total * ilk.rate // RAY,
            }
        )
    return rows


def _dai(rad: int) -> float:
    return rad / RAD


def threshold_wad(mat: int) -> int:
    """1 / mat as a WAD threshold, rounded down (0 for an ilk without a liquidation ratio)."""
    return WAD * RAY // mat if mat else 0


def adjusted_base(urn: Urn, ilk: Ilk) -> int:
    """floor(ink * spot / rate): the urn's collateral at the liquidation ratio, in art units (Vat.frob's check
    divided by rate; art is an integer, so the floor keeps the verdict exact)."""
    return urn.ink * ilk.spot // ilk.rate


def collateral_base(adjusted: int, threshold: int) -> int:
    """The smallest c with floor(c * threshold / 1e18) == adjusted: c = ceil(adjusted * 1e18 / threshold). Exact
    for threshold <= 1e18 (mat >= 100 %, every Maker ilk): c * t / W >= a and (c - 1) * t / W < a, so
    c * t / W < a + t / W <= a + 1."""
    return -(-adjusted * WAD // threshold) if threshold else 0


def health_factor(ink_spot: int, debt_rad: int) -> float | None:
    """ink * spot / (art * rate) as the largest double not above it, so `< 1` holds exactly when the Vat's
    integers say unsafe (a nearest-rounded ratio of two 1e45-scale numbers can round an unsafe urn up to 1.0)."""
    if debt_rad == 0:
        return None
    ratio = Fraction(ink_spot, debt_rad)
    value = float(ratio)
    return math.nextafter(value, 0.0) if Fraction(value) > ratio else value


def base_currency_usd(ilk: Ilk, system: System) -> float:
    """USD per art unit: rate / 1e27 dai of 1e-18 each, dai at par (reference units per dai)."""
    return ilk.rate / RAY / WAD * system.par / RAY


def _reference_price(ilk: Ilk, system: System) -> int | None:
    """The pip's current value as Spotter.poke's reference price [ray per gem wad], None without one."""
    if ilk.price.value is None or not ilk.price.has or not system.par:
        return None
    return reference_price(ilk.price.value, system.par)


def fit_price(price: int, scale: int) -> tuple[int, int]:
    """(price, scale) both divided by the same power of ten when price has more than 38 digits (HUGEINT's reach:
    WBTC's reference price per satoshi is ~1e42); the scale's truncation is below 1e-20 relative."""
    shift = max(0, len(str(price)) - 38)
    return price // 10**shift, max(1, scale // 10**shift)


def ilks_frame(
    ilks: list[Ilk], system: System, urn_counts: dict[str, int], chain_id: int, source: str, block: int
) -> pl.DataFrame:
    rows = []
    for i in ilks:
        debt = i.art_total * i.rate
        per_second = (system.base + i.duty) / RAY
        rows.append(
            {
                "ilk": i.name,
                "ilk_hex": i.ilk,
                "gem": i.gem.address,
                "symbol": i.gem.symbol,
                "gem_decimals": i.gem.decimals,
                "join": i.gem.join,
                "join_dec": i.gem.join_dec,
                "pip": i.pip,
                "clip": i.clip,
                "art_total": i.art_total,
                "rate": i.rate,
                "rate_dripped": i.rate_dripped,
                "spot": hugeint_or_none(i.spot),
                "line": str(i.line),
                "line_dai": _dai(i.line),
                "dust": str(i.dust),
                "dust_dai": _dai(i.dust),
                "debt": str(debt),
                "debt_dai": _dai(debt),
                "line_used": debt / i.line if i.line else None,
                "mat": i.mat,
                "liquidation_ratio": i.mat / RAY,
                "duty": i.duty,
                "rho": i.rho,
                "base": system.base,
                "fee_per_year": per_second**SECONDS_PER_YEAR - 1,
                "chop": i.dog.chop,
                "penalty": i.dog.chop / WAD - 1,
                # The clip's keeper incentive: tip [rad] exact as text (past HUGEINT), chip [wad].
                "clip_tip": str(i.incentive[0]) if i.incentive is not None else None,
                "clip_tip_dai": _dai(i.incentive[0]) if i.incentive is not None else None,
                "clip_chip": i.incentive[1] if i.incentive is not None else None,
                # Its auction settings: buf and cusp [ray], tail [s].
                "clip_buf": i.clip_buf,
                "clip_tail": i.clip_tail,
                "clip_cusp": i.clip_cusp,
                "hole": str(i.dog.hole),
                "dirt": str(i.dog.dirt),
                "hole_room_dai": _dai(i.dog.hole - i.dog.dirt),
                "global_hole": str(i.dog.global_hole),
                "global_dirt": str(i.dog.global_dirt),
                "global_room_dai": _dai(i.dog.global_hole - i.dog.global_dirt),
                "liquidation_room_dai": _dai(
                    max(0, min(i.dog.global_hole - i.dog.global_dirt, i.dog.hole - i.dog.dirt))
                ),
                "par": system.par,
                "price_method": i.price.method,
                "price": hugeint_or_none(i.price.value),
                "price_has": i.price.has,
                "price_next": hugeint_or_none(i.price.next_value),
                "price_next_has": i.price.next_has,
                "next_price_at": i.price.next_at,
                "spot_at_price": hugeint_or_none(i.spot_at_price),
                "spot_next": hugeint_or_none(i.spot_next),
                "price_usd": i.price.value / WAD * system.par / RAY if i.price.value is not None else None,
                "price_next_usd": (
                    i.price.next_value / WAD * system.par / RAY if i.price.next_value is not None else None
                ),
                "urns": urn_counts.get(i.ilk, 0),
            }
        )
    exact_columns = (
        "art_total",
        "rate",
        "rate_dripped",
        "spot",
        "mat",
        "duty",
        "base",
        "chop",
        "clip_chip",
        "clip_buf",
        "clip_cusp",
        "par",
        "price",
        "price_next",
        "spot_at_price",
        "spot_next",
    )
    frame = pl.DataFrame(
        rows,
        schema_overrides={
            **{c: EXACT for c in exact_columns},
            "gem": pl.Utf8,
            "clip_tip": pl.Utf8,
            "clip_tip_dai": pl.Float64,
            "clip_tail": pl.Int64,
            "symbol": pl.Utf8,
            "gem_decimals": pl.Int32,
            "join": pl.Utf8,
            "join_dec": pl.Int32,
            "rho": pl.Int64,
            "next_price_at": pl.Int64,
            "urns": pl.Int32,
            "line_used": pl.Float64,
            "price_usd": pl.Float64,
            "price_next_usd": pl.Float64,
        },
        infer_schema_length=None,
    )
    return keyed(frame, chain_id, source, block)


URN_SCHEMA: dict[str, pl.DataType] = {
    "ilk": pl.Utf8(),
    "ilk_hex": pl.Utf8(),
    "urn": pl.Utf8(),
    "owner": pl.Utf8(),
    "cdp_id": pl.Int64(),
    "found_by": pl.Utf8(),
    "ink": EXACT(),
    "art": EXACT(),
    "ink_gem_units": EXACT(),
    "debt": pl.Utf8(),
    "debt_dai": pl.Float64(),
    "debt_dripped": pl.Utf8(),
    "debt_dripped_dai": pl.Float64(),
    "collateral_dai": pl.Float64(),
    "health_factor_wad": EXACT(),
    "safe": pl.Boolean(),
    "safe_after_drip": pl.Boolean(),
    "safe_at_next_price": pl.Boolean(),
    "liquidation_price": EXACT(),
    "liquidation_price_usd": pl.Float64(),
    "bark_refusal": pl.Utf8(),
    "bark_dart": EXACT(),
    "bark_dink": EXACT(),
    "bark_due_dai": pl.Float64(),
    "bark_due": EXACT(),
    "bark_tab_dai": pl.Float64(),
    "bark_incentive": EXACT(),
    "bark_tab": EXACT(),
    "penalty_dai": pl.Float64(),
    "bad_debt_dai": pl.Float64(),
}


def urns_frame(
    urns: Sequence[Urn], ilks: dict[str, Ilk], system: System, chain_id: int, source: str, block: int
) -> pl.DataFrame:
    """One row per non-empty urn: the Vat's figures exactly, the verdicts now, after a drip to the snapshot's
    time and at the OSM's next price, the liquidation price, and what Dog.bark would do now."""
    rows = []
    for u in urns:
        i = ilks[u.ilk]
        debt = u.art * i.rate
        dripped = u.art * i.rate_dripped if i.rate_dripped is not None else None
        reference = _reference_price(i, system)
        value = u.ink * reference if reference is not None else None  # rad
        outcome = bark(u.ink, u.art, i.rate, i.spot, i.dust, i.dog)
        barked = outcome if isinstance(outcome, Bark) else None
        threshold = liquidation_price(u.ink, u.art, i.rate, system.par, i.mat) if i.mat else None
        hf = health_factor_wad(u.ink, u.art, i.rate, i.spot)
        rows.append(
            {
                "ilk": i.name,
                "ilk_hex": u.ilk,
                "urn": u.urn,
                "owner": u.owner,
                "cdp_id": u.cdp_id,
                "found_by": ",".join(u.found_by),
                "ink": u.ink,
                "art": u.art,
                "ink_gem_units": u.ink // i.gem.vat_units,
                "debt": str(debt),
                "debt_dai": _dai(debt),
                "debt_dripped": str(dripped) if dripped is not None else None,
                "debt_dripped_dai": _dai(dripped) if dripped is not None else None,
                "collateral_dai": _dai(value) if value is not None else None,
                "health_factor_wad": min(hf, HEALTH_WAD_CAP) if hf is not None else None,
                "safe": not is_unsafe(u.ink, u.art, i.rate, i.spot),
                "safe_after_drip": (
                    not is_unsafe(u.ink, u.art, i.rate_dripped, i.spot) if i.rate_dripped is not None else None
                ),
                "safe_at_next_price": (
                    not is_unsafe(u.ink, u.art, i.rate, i.spot_next) if i.spot_next is not None else None
                ),
                "liquidation_price": hugeint_or_none(threshold),
                "liquidation_price_usd": threshold / WAD * system.par / RAY if threshold is not None else None,
                "bark_refusal": None if barked else str(outcome),
                "bark_dart": barked.dart if barked else None,
                "bark_dink": barked.dink if barked else None,
                "bark_due_dai": _dai(barked.due) if barked else None,
                # The due in dai's smallest unit, floored to the wei: what the Bark will log (due // RAY).
                "bark_due": barked.due // RAY if barked else None,
                "bark_tab_dai": _dai(barked.tab) if barked else None,
                # The keeper's incentive the bark's kick pays (coin), in dai's smallest unit, floored; None where the
                # clip's tip and chip are unknown.
                "bark_incentive": (
                    keeper_incentive(barked.tab, *i.incentive) // RAY if barked and i.incentive is not None else None
                ),
                # The tab its auction would raise (due x chop / WAD), floored to the wei as the Kick's tab // RAY.
                "bark_tab": barked.tab // RAY if barked else None,
                "penalty_dai": _dai(barked.tab - barked.due) if barked else None,
                "bad_debt_dai": _dai(max(0, debt - value)) if value is not None else None,
            }
        )
    return keyed(pl.DataFrame(rows, schema=URN_SCHEMA), chain_id, source, block)


def oversized_issues(urns: Sequence[Urn], ilks: dict[str, Ilk]) -> list[Issue]:
    """One `oracle_overflow` row per ilk whose Vat spot (from its pip's value through Spotter.poke) has 38 digits or
    more, or at whose spot some urn's collateral value does: that spot and those values are not stored (NULL), and
    those urns have no health row. The Vat itself still judges them where ink x spot fits 2^256 (an OSM's uint128
    value gives a spot under 3.5e47 ray, so any ink under 3.3e29 wad), and raw_maker_urns keeps their verdicts."""
    counts: dict[str, int] = {}
    for u in urns:
        i = ilks[u.ilk]
        if i.gem.address is None or not u.ink:
            continue
        adjusted = adjusted_base(u, i)
        if adjusted >= HUGEINT_LIMIT or collateral_base(adjusted, threshold_wad(i.mat)) >= HUGEINT_LIMIT:
            counts[u.ilk] = counts.get(u.ilk, 0) + 1
    found = []
    for ilk in sorted(set(counts) | {k for k, i in ilks.items() if i.spot >= HUGEINT_LIMIT}):
        i = ilks[ilk]
        detail = (
            f"ilk {i.name}: the Vat's spot {i.spot} (pip {i.pip}'s value through Spotter.poke) values "
            f"{counts.get(ilk, 0)} urn(s) at 38 digits or more of debt units; spot and values unstored"
        )
        found.append(Issue(i.name, i.pip, "oracle_overflow", detail, "those urns' values (base and USD) and health"))
    return found


def contract_frames(
    urns: Sequence[Urn],
    ilks: dict[str, Ilk],
    system: System,
    deployment: Deployment,
    dai_symbol: str,
    chain_id: int,
    block: int,
    timestamp: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(positions, wallet_health) at the Vat's own rate and spot: what Dog.bark judges at this block."""
    rows: list[dict[str, object]] = []
    health: list[dict[str, object]] = []
    for u in urns:
        i = ilks[u.ilk]
        gem = i.gem
        if gem.address is None:
            continue  # no token to value the collateral by (raw_maker_urns still holds the urn)
        usd_per_unit = base_currency_usd(i, system)
        threshold = threshold_wad(i.mat)
        threshold_bps = threshold // WAD_PER_BPS
        adjusted = adjusted_base(u, i)
        value = collateral_base(adjusted, threshold)
        debt_amount = -(-u.art * i.rate // RAY)  # dai (wad) it takes to wipe the urn
        common = {
            "market": i.name,
            "wallet": u.urn,
            "base_currency_usd": usd_per_unit,
            "ltv_bps": threshold_bps,
            "liquidation_threshold_bps": threshold_bps,
            "liquidation_threshold_wad": threshold,
            "liquidation_bonus_bps": i.dog.chop // WAD_PER_BPS,
            "liquidation_bonus_wad": i.dog.chop,
            # chop is the Vow's penalty, not a keeper's cut: the Clipper sells the collateral for tab = due * chop and
            # the Vow is short only of what the sale leaves under the debt itself (raw_maker_urns.bad_debt_dai).
            "liquidation_recovery_wad": WAD,
        }
        # Token units (what GemJoin.exit could pay out); 19 - digits(units) are their decimals (18 for a gem the
        # Vat counts one to one, or whose join we cannot read).
        units = gem.vat_units
        amount = u.ink // units
        reference = _reference_price(i, system)
        price, scale = fit_price(units * reference, i.rate) if reference else (0, 1)
        if u.ink:
            rows.append(
                {
                    **common,
                    "asset": gem.address,
                    "symbol": gem.symbol or gem.address[:10],
                    "decimals": 19 - len(str(units)),
                    "supplied_amount": amount,
                    "collateral_amount": amount,
                    "debt_amount": 0,
                    "used_as_collateral": True,
                    "is_borrowing": False,
                    "price": price,
                    "price_scale": scale,
                    "price_usd": reference / RAY * system.par / RAY if reference else None,
                    "collateral_base": hugeint_or_none(value),
                    "debt_base": 0,
                    "supplied_usd": value * usd_per_unit,
                    "collateral_usd": value * usd_per_unit,
                    "debt_usd": 0.0,
                }
            )
        if u.art:
            price, scale = fit_price(RAY, i.rate)
            rows.append(
                {
                    **common,
                    "asset": deployment.dai,
                    "symbol": dai_symbol,
                    "decimals": 18,
                    "supplied_amount": 0,
                    "collateral_amount": 0,
                    "debt_amount": debt_amount,
                    "used_as_collateral": False,
                    "is_borrowing": True,
                    "price": price,
                    "price_scale": scale,
                    "price_usd": system.par / RAY,
                    "collateral_base": 0,
                    "debt_base": u.art,
                    "supplied_usd": 0.0,
                    "collateral_usd": 0.0,
                    "debt_usd": u.art * usd_per_unit,
                    "ltv_bps": 0,
                    "liquidation_threshold_bps": 0,
                    "liquidation_threshold_wad": 0,
                }
            )
        if i.spot == 0 and u.art:
            continue  # no price in the Vat: Dog.bark refuses every urn of the ilk, Maker itself cannot judge it
        if value >= HUGEINT_LIMIT or adjusted >= HUGEINT_LIMIT:
            continue  # figures no HUGEINT holds: amounts stored, values NULL, no health (oversized_issues names it)
        hf = health_factor_wad(u.ink, u.art, i.rate, i.spot)
        health.append(
            {
                "market": i.name,
                "wallet": u.urn,
                "collateral_usd": value * usd_per_unit,
                "debt_usd": u.art * usd_per_unit,
                "health_factor": health_factor(u.ink * i.spot, u.art * i.rate),
                "health_factor_wad": min(hf, HEALTH_WAD_CAP) if hf is not None else None,
                "total_collateral_base": value,
                "total_debt_base": u.art,
                "available_borrows_base": max(0, adjusted - u.art),
                "liquidation_threshold_bps": threshold_bps,
                "ltv_bps": threshold_bps,
            }
        )
    labels = [
        pl.lit(PROTOCOL).alias("protocol"),
        pl.lit(chain_id, pl.Int64).alias("chain_id"),
        pl.lit(deployment.chainlog).alias("source"),
        pl.lit(block, pl.Int64).alias("block_number"),
        pl.lit(timestamp, pl.Int64).alias("block_timestamp"),
        pl.lit(0, pl.Int32).alias("emode_category"),
    ]
    # Dog.bark takes the whole urn (close factor 1) unless the Hole/hole room caps it, which is per ilk and
    # shown in raw_maker_urns.bark_dart.
    position_frame = exact(pl.DataFrame(rows, schema=POSITION_SCHEMA)).with_columns(
        *labels,
        pl.lit("per-position").alias("health_rule"),
        pl.lit(1.0).alias("close_factor"),
        pl.lit(None, pl.Float64).alias("full_close_below_health"),
        # The debt is dai at the Spotter's par (spot = val / par / mat): no market price of dai moves an urn's safety.
        pl.col("is_borrowing").alias("price_fixed"),
    )
    health_frame = exact(pl.DataFrame(health, schema=HEALTH_SCHEMA)).with_columns(*labels)
    return position_frame, health_frame
