"""The engine groups by the wallet label `prepare` writes, and by `_wid` whenever a book was reordered, filtered or
stitched together after `prepare` so that the labels no longer name one wallet each."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.scoring.groups import STABLE_GROUP
from chainrisk.scoring.health import (
    WALLET_KEY,
    axis_coefficients,
    liquidation_prices,
    prepare,
    reprice,
    value_positions,
    wallet_health,
)
from tests.test_scoring_incremental import _book


def _results(valued: pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    health = wallet_health(valued).collect().sort(WALLET_KEY)
    prices = liquidation_prices(valued).collect().sort([*WALLET_KEY, "asset"])
    coefficients = axis_coefficients(valued, pl.col("group") != STABLE_GROUP).collect().drop("_wid")
    return health, prices, coefficients.sort(coefficients.columns)


def _assert_same(ours: pl.LazyFrame, expected: pl.LazyFrame) -> None:
    for got, want in zip(_results(ours), _results(expected), strict=True):
        assert_frame_equal(got, want)


@pytest.fixture(scope="module")
def books() -> tuple[pl.DataFrame, pl.DataFrame]:
    first = _book(300, seed=1)
    second = _book(200, seed=2).with_columns(pl.format("0xb{}", pl.col("wallet")).alias("wallet"))
    return first, second


def test_books_prepared_apart_then_stitched(books: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    """Both books label their wallets from row 0: stitched, one label names two wallets."""
    first, second = books
    stitched = pl.concat([prepare(first).collect(), prepare(second).collect()])
    _assert_same(reprice(stitched), value_positions(pl.concat([first, second])))


def test_a_wallet_split_across_two_preparations(books: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    """Each half of every wallet's rows prepared on its own: one wallet under two labels."""
    first, _ = books
    odd = pl.int_range(pl.len()) % 2 == 1
    halves = pl.concat([prepare(first.filter(~odd)).collect(), prepare(first.filter(odd)).collect()])
    _assert_same(reprice(halves), value_positions(pl.concat([first.filter(~odd), first.filter(odd)])))


def test_a_prepared_book_reordered_and_filtered(books: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    first, _ = books
    prepared = prepare(first).collect()
    _assert_same(reprice(prepared.reverse()), value_positions(first.reverse()))
    kept = pl.col("wallet").str.ends_with("3").not_()
    _assert_same(reprice(prepared.filter(kept)), value_positions(first.filter(kept)))
