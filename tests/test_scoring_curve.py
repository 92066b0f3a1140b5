"""The liquidation curve's one-pass sums equal testing every wallet at every drop, at ties and odd coefficients too."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.scoring import curve
from chainrisk.scoring.health import DEPEGS, DROPS, curve_points

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
    settled, _ = curve._half_line_sums(terms, np.zeros(book.height, dtype=np.int64), 1, grid)
    assert (~settled).sum() > 3 * 7  # several slices of them
    _check(book, DROPS, ["chain_id", "market"])


def test_a_memo_gives_each_call_the_groups_of_its_own_columns() -> None:
    """One memo through several axes of a book, its chain totals (market 'all') and another book of the same size:
    every call equals a call without the memo, and the groups are found once per distinct set of columns."""
    book = _random(5_000, 4)
    other = book.with_columns(pl.col("market").shuffle(seed=1))
    memo: curve.GroupMemo = []
    for frame in (book, book.with_columns(pl.lit("all").alias("market")), book, other, book):
        for drops in (DROPS, DEPEGS):
            ours = curve_points(frame.lazy(), drops, ["chain_id", "market"], memo).collect()
            assert_frame_equal(ours, curve_points(frame.lazy(), drops, ["chain_id", "market"]).collect())
    assert len(memo) == 3
