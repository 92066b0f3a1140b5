"""The liquidation curve's one-pass sums equal testing every wallet at every drop, at ties and odd coefficients too."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.scoring import curve, health
from chainrisk.scoring.health import (
    CURVE_KEY,
    DEPEGS,
    DROPS,
    Axis,
    axis_coefficients,
    curve_axes,
    curve_points,
    liquidation_curve,
    value_positions,
)
from tests.test_scoring_incremental import _book

TERMS = ("a_in", "a_out", "b_in", "b_out", "c_in", "c_out", "r_in", "r_out")


def _pointwise(coefficients: pl.DataFrame, drops: list[float], by: list[str]) -> pl.DataFrame:
    """The definition: at multiplier m = 1 - drop a wallet is liquidatable when A_out + m A_in < B_out + m B_in;
    collateral and debt are summed over those wallets, the shortfall of debt over recoverable collateral over all."""
    frames = []
    for drop in drops:
        m = 1.0 - drop
        debt = pl.col("b_out") + m * pl.col("b_in")
        liquidatable = (pl.col("a_out") + m * pl.col("a_in")) < debt
        collateral = pl.col("c_out") + m * pl.col("c_in")
        shortfall = (debt - (pl.col("r_out") + m * pl.col("r_in"))).clip(lower_bound=0)
        frames.append(
            coefficients.group_by(by, maintain_order=True).agg(
                pl.lit(drop, pl.Float64).alias("drop"),
                pl.when(liquidatable).then(collateral).otherwise(0.0).sum().alias("liquidatable_collateral_usd"),
                pl.when(liquidatable).then(debt).otherwise(0.0).sum().alias("liquidatable_debt_usd"),
                shortfall.sum().alias("bad_debt_usd"),
                liquidatable.sum().cast(pl.Int64).alias("liquidatable_wallets"),
            )
        )
    return pl.concat(frames)


def _check(coefficients: pl.DataFrame, drops: list[float], by: list[str]) -> None:
    ours = curve_points(coefficients.lazy(), drops, by).collect()
    expected = _pointwise(coefficients, drops, by)
    order = [*by, "drop"]
    # Counts exactly; USD sums to float rounding (the additions come in another order).
    assert_frame_equal(
        ours.sort(order, nulls_last=True), expected.sort(order, nulls_last=True), rel_tol=1e-9, abs_tol=1e-6
    )


def _random(wallets: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    size = 10 ** rng.uniform(0, 7, wallets)
    c_in = size * rng.uniform(0, 1, wallets) * (rng.random(wallets) < 0.8)
    c_out = size - c_in
    lt_in, lt_out = rng.uniform(0.6, 0.9, wallets), rng.uniform(0.6, 0.9, wallets)
    debt = size * rng.uniform(0.1, 1.1, wallets)
    b_in = debt * rng.uniform(0, 1, wallets) * (rng.random(wallets) < 0.3)
    columns = {
        "chain_id": rng.integers(1, 3, wallets),
        "market": rng.choice(["0xa", "0xb", "0xc"], wallets),
        "a_in": c_in * lt_in,
        "a_out": c_out * lt_out,
        "b_in": b_in,
        "b_out": debt - b_in,
        "c_in": c_in,
        "c_out": c_out,
        "r_in": c_in / 1.05,
        "r_out": c_out / 1.08,
    }
    return pl.DataFrame(columns)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_books_per_market_and_in_total(seed: int) -> None:
    book = _random(20_000, seed)
    _check(book, DROPS, ["chain_id", "market"])
    _check(book, DEPEGS, ["chain_id"])
    _check(book.with_columns(pl.lit("all").alias("market")), DROPS, ["chain_id", "market"])


def _crossing_book(rows: Sequence[Mapping[str, object]]) -> pl.DataFrame:
    """Rows of A and B terms made a book on chain 1: collateral on the axis as A, half a dollar off it, recovery at
    a 5 % bonus on it and a tenth off it."""
    return pl.DataFrame(rows).with_columns(
        pl.lit(1).alias("chain_id"),
        pl.col("a_in").alias("c_in"),
        pl.lit(0.5).alias("c_out"),
        (pl.col("a_in") / 1.05).alias("r_in"),
        pl.lit(0.1).alias("r_out"),
    )


def test_wallets_crossing_exactly_at_a_drop_and_an_ulp_either_side() -> None:
    """A_in = 1 against a flat debt of m_k: at m_k the sides are equal (not liquidatable); a debt one ulp above or
    below moves the verdict at that drop and no other."""
    rows = []
    for drop in DROPS:
        m = 1.0 - drop
        for debt in (m, math.nextafter(m, 0.0), math.nextafter(m, 2.0)):
            for scale in (1.0, 3.0e6, 1e-3):
                rows.append({"a_in": scale, "a_out": 0.0, "b_in": 0.0, "b_out": debt * scale})
                # The same crossing with both sides moving with the shock.
                rows.append({"a_in": 2 * scale, "a_out": 0.0, "b_in": scale, "b_out": debt * scale})
    book = _crossing_book(rows)
    _check(book, DROPS, ["chain_id"])


def test_flat_forms_and_coefficients_that_are_not_finite() -> None:
    """No shocked exposure (the verdict is the same at every drop), sides equal to the ulp, NaN and infinities
    (polars orders NaN above every number), wallets with nothing at all."""
    nan, inf = float("nan"), float("inf")
    rows = [
        {"a_in": 0.0, "a_out": 2.0, "b_in": 0.0, "b_out": 1.0},
        {"a_in": 0.0, "a_out": 1.0, "b_in": 0.0, "b_out": 2.0},
        {"a_in": 1.0, "a_out": 1.0, "b_in": 1.0, "b_out": 1.0},
        {"a_in": 1e20, "a_out": 1.0, "b_in": 1e20, "b_out": 1.0 + 2**-52},
        {"a_in": 0.0, "a_out": 0.0, "b_in": 0.0, "b_out": 0.0},
        {"a_in": nan, "a_out": 1.0, "b_in": 0.0, "b_out": 2.0},
        {"a_in": 1.0, "a_out": 0.0, "b_in": nan, "b_out": 0.5},
        {"a_in": inf, "a_out": 0.0, "b_in": 1.0, "b_out": 1.0},
        {"a_in": 1.0, "a_out": 0.0, "b_in": 0.0, "b_out": inf},
        {"a_in": 1e300, "a_out": 1e300, "b_in": 1e300, "b_out": 1.7e308},
    ]
    book = pl.DataFrame(rows).with_columns(
        pl.lit(1).alias("chain_id"),
        pl.col("a_in").alias("c_in"),
        pl.col("a_out").alias("c_out"),
        pl.col("a_in").alias("r_in"),
        pl.lit(0.0).alias("r_out"),
    )
    ours = curve_points(book.lazy(), DROPS, ["chain_id"]).collect().sort("drop")
    expected = _pointwise(book, DROPS, ["chain_id"]).sort("drop")
    assert_frame_equal(ours, expected)


def test_drops_in_any_order_with_repeats_and_null_keys() -> None:
    book = _random(3_000, 7).with_columns(
        pl.when(pl.col("market") == "0xc").then(None).otherwise(pl.col("market")).alias("market")
    )
    _check(book, [0.5, 0.0, 0.25, 0.5, -0.1, 1.0], ["chain_id", "market"])


def test_empty_book() -> None:
    empty = _random(0, 1)
    ours = curve_points(empty.lazy(), DROPS, ["chain_id", "market"]).collect()
    assert ours.height == 0
    assert ours.columns == [
        "chain_id",
        "market",
        "drop",
        "liquidatable_collateral_usd",
        "liquidatable_debt_usd",
        "bad_debt_usd",
        "liquidatable_wallets",
    ]


def test_rows_tested_point_by_point_in_several_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows the half-lines leave (ties at a drop, flat forms) tested a few at a time, over several markets: the
    slices' sums add up to the definition's."""
    monkeypatch.setattr(curve, "_POINTWISE_ROWS", 7)
    rows = []
    for i, drop in enumerate(DROPS):
        m = 1.0 - drop
        for debt in (m, math.nextafter(m, 0.0), math.nextafter(m, 2.0)):
            rows.append({"market": f"0x{i % 3}", "a_in": 2.0, "a_out": 0.0, "b_in": 1.0, "b_out": debt})
    rows += [{"market": "0x1", "a_in": 0.0, "a_out": 1.0, "b_in": 0.0, "b_out": 1.0}] * 5
    book = _crossing_book(rows)
    grid = np.unique(np.array([1.0 - d for d in DROPS]))
    terms = {t: book.get_column(t).to_numpy() for t in curve._TERMS}
    settled, _ = curve._half_line_sums(terms, [(np.zeros(book.height, dtype=np.int64), 1)], grid)
    assert (~settled).sum() > 3 * 7  # several slices of them
    _check(book, DROPS, ["chain_id", "market"])


def _curve_axis_by_axis(valued: pl.LazyFrame, axes: list[Axis]) -> pl.DataFrame:
    """The book's curve as its definition composes it: each axis's coefficients through curve_points per market and
    again per chain (market 'all', at the chain's latest block), every point sorted by its keys."""
    frames = []
    for kind, name, member, drops in axes:
        coefficients = axis_coefficients(valued, member).collect()
        per_market = curve_points(coefficients.lazy(), drops, CURVE_KEY).collect()
        total = (
            curve_points(coefficients.lazy().with_columns(market=pl.lit("all")), drops, ["chain_id", "market"])
            .collect()
            .join(
                coefficients.group_by("chain_id").agg(pl.col("block_number").max(), pl.col("block_timestamp").max()),
                on="chain_id",
            )
        )
        for part in (per_market, total):
            frames.append(
                part.with_columns(axis_kind=pl.lit(kind), axis=pl.lit(name)).select(
                    *CURVE_KEY, "axis_kind", "axis", "drop", *curve.METRICS
                )
            )
    return pl.concat(frames).sort([*CURVE_KEY, "axis_kind", "axis", "drop"])


@pytest.fixture(scope="module")
def valued_book() -> pl.DataFrame:
    """A book of 400 wallets in three markets on two chains, every 37th of them without debt (the curve leaves
    those out)."""
    book = _book(400, seed=3)
    lenders = pl.col("wallet").is_in([f"0x{w:06x}" for w in range(0, 400, 37)])
    no_debt = pl.when(lenders).then(0).otherwise(pl.col("debt_amount")).alias("debt_amount")
    return value_positions(book.with_columns(no_debt)).collect()


@pytest.mark.parametrize("stitched", [False, True], ids=["labelled", "grouped-by-wid"])
def test_the_book_curve_places_each_wallet_once_for_markets_and_chains(
    valued_book: pl.DataFrame, stitched: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """liquidation_curve places each wallet on an axis once for both its market's curve and its chain's total, finds
    the groups once for every axis, and sorts block by block: the same doubles, bit for bit, as each axis through
    curve_points twice and the points sorted. On the labelled book and on one reordered after `prepare` (grouped by
    `_wid`: each pass holds its wallets in an order of its own, so there the sums agree to rounding and the counts
    exactly), two axes to a pass (the labelled book's sums then made once for every pass)."""
    monkeypatch.setattr(health, "_AXIS_CELLS", 8 * valued_book.height * 2)
    valued = (valued_book.reverse() if stitched else valued_book).lazy()
    axes = curve_axes(valued_book.select("symbol").unique())
    assert len(axes) > 4 and valued_book.filter(pl.col("debt_amount") == 0).height
    ours = liquidation_curve(valued, axes)
    expected = _curve_axis_by_axis(valued, axes)
    if stitched:
        # Grouped by `_wid`, a wallet's place in a pass is polars' to choose: the sums come in another order.
        assert_frame_equal(ours, expected, rel_tol=1e-12, abs_tol=1e-9)
        assert ours.get_column("liquidatable_wallets").equals(expected.get_column("liquidatable_wallets"))
    else:
        assert_frame_equal(ours, expected, check_exact=True)
    assert ours.filter(pl.col("market") == "all").height and ours.get_column("liquidatable_wallets").sum() > 0


def test_axes_whose_drops_are_not_ascending_or_that_repeat_are_sorted_point_by_point(valued_book: pl.DataFrame) -> None:
    """Blocks are sorted whole only where each block's drops ascend and no two blocks share a key: drops given in
    another order, or an axis named twice, sort every point instead, as the definition does."""
    valued = valued_book.lazy()
    weth = ("asset", "WETH", pl.col("symbol") == "WETH", DROPS)
    shuffled = ("asset", "WBTC", pl.col("symbol") == "WBTC", [DROPS[i] for i in (3, 0, 40, 7, 1)])
    for axes in ([weth, shuffled], [weth, weth]):
        ours = liquidation_curve(valued, axes)
        expected = _curve_axis_by_axis(valued, axes)
        assert_frame_equal(ours, expected, check_exact=True)


def test_passes_holding_their_wallets_in_other_orders_get_their_own_groups(
    valued_book: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grouped by `_wid`, each pass over the book may hold its wallets in another order (polars' to choose): the
    groups found for one pass's wallets are not taken for another's. Here every pass after the first holds them in
    reverse, one axis to a pass."""
    passes = health._axis_sums

    def reordered(valued: pl.LazyFrame, members: list[pl.Expr]) -> list[tuple[pl.DataFrame, list[pl.DataFrame]]]:
        found = passes(valued, members)
        return found[:1] + [(keys.reverse(), [sums.reverse() for sums in axes]) for keys, axes in found[1:]]

    monkeypatch.setattr(health, "_AXIS_CELLS", 8 * valued_book.height)
    monkeypatch.setattr(health, "_axis_sums", reordered)
    valued = valued_book.reverse().lazy()
    axes = curve_axes(valued_book.select("symbol").unique())
    ours = liquidation_curve(valued, axes)
    expected = _curve_axis_by_axis(valued, axes)
    assert_frame_equal(ours, expected, rel_tol=1e-12, abs_tol=1e-9)
    assert ours.get_column("liquidatable_wallets").equals(expected.get_column("liquidatable_wallets"))


def _liquidatable_at_no_drop(valued: pl.LazyFrame) -> list[tuple[str, int]]:
    """(axis, liquidatable wallets) at a drop of 0 on every axis of the book's curve, market 'all' aside."""
    curve = liquidation_curve(valued).filter((pl.col("drop") == 0) & (pl.col("market") != "all"))
    return sorted(zip(curve["axis"].to_list(), curve["liquidatable_wallets"].to_list(), strict=True))


def _aave_wallet(wallet: str, weth: int, wbtc: int, usdc_debt: int) -> list[dict[str, object]]:
    """One wallet of an average-threshold (Aave up to 3.4) market: WETH and WBTC collateral, USDC debt."""
    rows = []
    for symbol, decimals, price, lt, amount, debt in (
        ("WETH", 18, 2000, 8300, weth, False),
        ("WBTC", 8, 30000, 7800, wbtc, False),
        ("USDC", 6, 1, 8000, usdc_debt, True),
    ):
        rows.append(
            {
                "protocol": "aave-v3",
                "chain_id": 1,
                "market": "0xaave",
                "wallet": wallet,
                "asset": "0x" + symbol.lower(),
                "symbol": symbol,
                "block_number": 100,
                "block_timestamp": 1000,
                "decimals": decimals,
                "collateral_amount": 0 if debt else amount,
                "debt_amount": amount if debt else 0,
                "price": price * 10**8,
                "price_usd": float(price),
                "liquidation_threshold_bps": lt,
                "ltv_bps": lt - 300,
                "liquidation_bonus_bps": 10500,
                "health_rule": "average-threshold",
            }
        )
    return rows


def test_the_curve_at_no_drop_counts_the_wallets_the_integers_call_liquidatable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At a drop of 0 every axis's curve counts exactly the wallets wallet_health calls liquidatable, also on the line,
    where the float terms can tip either way: Liquity troves at MCR exactly or a wei of ETH under it (the demo showed
    the same for a Maker urn whose ink x spot equals art x rate: safe to the Vat, counted by the curve), and an Aave
    wallet whose average threshold floored to whole bps (7,831.25 -> 7,831) leaves its debt uncovered where the
    float weighted sum covers it. Without the integers' verdict (`_agree_now`) the curve miscounts both books."""
    from tests.test_scoring_collateral_ratio import MCR, PRICE, WAD, _positions, _trove, _valued

    troves = []
    for k in range(40):
        debt = (1000 + 37 * k) * WAD + k * 12345
        troves.append(_trove("0x" + f"{k:040x}", debt, MCR * debt // PRICE))
    liquity = _valued(_positions(troves)).collect().lazy()
    # 1 WETH ($2,000 at 8,300 bps) and 1 WBTC ($30,000 at 7,800): 25,059.20 USD of adjusted collateral to the pool,
    # 25,060 to the float sum. Debts of 25,059.50 (liquidatable to the pool) and 25,059.10 USDC (not).
    aave_rows = _aave_wallet("0x01", 10**18, 10**8, 25_059_500_000) + _aave_wallet(
        "0x02", 10**18, 10**8, 25_059_100_000
    )
    aave = (
        value_positions(
            pl.DataFrame(
                aave_rows, schema_overrides=dict.fromkeys(("collateral_amount", "debt_amount", "price"), pl.Int128)
            )
        )
        .collect()
        .lazy()
    )
    for book in (liquity, aave):
        verdicts = health.wallet_health(book).collect()
        liquidatable = int(verdicts["liquidatable"].sum())
        assert 0 < liquidatable < verdicts.height
        counted = _liquidatable_at_no_drop(book)
        assert counted and {n for _, n in counted} == {liquidatable}, counted
    monkeypatch.setattr(health, "_agree_now", lambda *_: None)
    for book in (liquity, aave):
        liquidatable = int(health.wallet_health(book).collect()["liquidatable"].sum())
        assert {n for _, n in _liquidatable_at_no_drop(book)} != {liquidatable}
