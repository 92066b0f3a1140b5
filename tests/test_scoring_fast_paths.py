"""The engine's shortcuts give exactly what its general paths give: the exact product branch taken for the whole book
when every row's amount and price have few enough bits between them, 128-bit integers turned to doubles through
Int64 when they fit there, and key columns holding one value repeated instead of gathered. Each is checked against
the general path forced, and on a book whose values are too large for the shortcuts."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.scoring import health, wallets
from chainrisk.scoring.health import WALLET_KEY, apply_multipliers, prepare, value_positions
from tests.test_scoring_incremental import _book
from tests.test_scoring_wallets import _results

SHOCK = pl.DataFrame({"symbol": ["WETH", "WBTC", "USDC"], "multiplier": [0.63, 0.81, 0.999]})


def _general_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shortcut off: products tested row by row, doubles cast from Int128, every key column gathered."""
    monkeypatch.setattr(health, "_shortcut", lambda prepared, names: health._Shortcut(False, False, frozenset()))
    monkeypatch.setattr(wallets, "constant_columns", lambda columns: (False,) * len(columns))


def _narrow(frame: pl.DataFrame, columns: list[str]) -> set[str]:
    """The integer `columns` of `frame` whose values all fit in Int64 (nulls aside), found on the values themselves."""
    fits = frame.select(
        ((pl.col(c).min() >= -(2**63)) & (pl.col(c).max() < 2**63)).fill_null(True).alias(c) for c in columns
    ).row(0, named=True)
    return {c for c, ok in fits.items() if ok}


def _taken(book: pl.DataFrame) -> tuple[bool, set[str], bool]:
    """Whether the book takes the exact-product shortcut, which columns go to doubles through Int64 (as bounded from
    the amounts' and prices' bits before valuing, and as found on the valued book), and whether its key columns other
    than the wallet are found constant."""
    prepared = apply_multipliers(prepare(book), None)
    shortcut = health._shortcut(prepared, prepared.collect_schema().names())
    valued = value_positions(book).collect()
    narrow = _narrow(valued, ["collateral_base", "debt_base", "_price", "collateral_amount", "debt_amount"])
    assert shortcut.narrow <= narrow  # the bound never calls a column narrow that is not
    keys = [valued.get_column(c) for c in WALLET_KEY if c != "wallet"]
    return shortcut.products_fit, set(shortcut.narrow) | narrow, all(wallets.constant_columns(keys))


def _with_adapter_columns(book: pl.DataFrame) -> pl.DataFrame:
    """The book as an adapter hands it over: the price's scale and the exact base values at the snapshot's prices."""
    scale = pl.lit(10, dtype=pl.Int128).pow(pl.col("decimals"))
    return book.with_columns(scale.alias("price_scale")).with_columns(
        ((pl.col(a) * pl.col("price")) // pl.col("price_scale")).alias(b)
        for a, b in (("collateral_amount", "collateral_base"), ("debt_amount", "debt_base"))
    )


@pytest.mark.parametrize("multipliers", [None, SHOCK], ids=["snapshot", "shocked"])
@pytest.mark.parametrize("markets", ["one", "several"])
@pytest.mark.parametrize("columns", ["contract minimum", "adapter's"])
def test_shortcuts_give_the_general_paths_results(
    monkeypatch: pytest.MonkeyPatch, multipliers: pl.DataFrame | None, markets: str, columns: str
) -> None:
    book = _book(240, seed=5)
    if markets == "one":
        book = book.filter(pl.col("market") == book.get_column("market")[0])
    if columns == "adapter's":
        book = _with_adapter_columns(book)
    fits, narrow, constant = _taken(book)
    assert fits and {"collateral_base", "debt_base", "_price"} <= narrow and constant == (markets == "one")
    prepared = apply_multipliers(prepare(book), multipliers)
    assert health._shortcut(prepared, prepared.collect_schema().names()).narrow == {
        "collateral_base",
        "debt_base",
        "_price",
    }
    fast = _results(value_positions(book, multipliers))
    _general_paths(monkeypatch)
    general = _results(value_positions(book, multipliers))
    for got, want in zip(fast, general, strict=True):
        assert_frame_equal(got, want, check_exact=True)


def test_a_book_too_large_for_the_shortcuts_scores_every_other_wallet_as_without_it() -> None:
    """A whale whose amount times price leaves 128 bits and whose base value leaves 64: the book takes the general
    paths, and every other wallet's figures are exactly those of the book without it (which takes the shortcuts)."""
    book = _book(120, seed=6)
    row = book.filter(pl.col("symbol") == "WETH").head(1)
    whale = row.with_columns(
        pl.lit("0xwhale").alias("wallet"),
        pl.lit(10**33, dtype=pl.Int128).alias("collateral_amount"),
        pl.lit(0, dtype=pl.Int128).alias("debt_amount"),
    )
    debt = row.with_columns(
        pl.lit("0xwhale").alias("wallet"),
        pl.lit(0, dtype=pl.Int128).alias("collateral_amount"),
        pl.lit(10**32, dtype=pl.Int128).alias("debt_amount"),
    )
    large = pl.concat([book, whale, debt])
    fits, narrow, _ = _taken(large)
    assert not fits and "collateral_base" not in narrow and "collateral_amount" not in narrow
    assert _taken(book)[0]
    others = pl.col("wallet") != "0xwhale"
    health_large, prices_large, _ = _results(value_positions(large))
    health_small, prices_small, _ = _results(value_positions(book))
    assert_frame_equal(health_large.filter(others), health_small, check_exact=True)
    assert_frame_equal(prices_large.filter(others), prices_small, check_exact=True)
    whale_health = health_large.filter(~others).row(0, named=True)
    assert whale_health["health_factor"] == pytest.approx(10.0 * row.get_column("liquidation_threshold_bps")[0] / 10**4)


def test_split_sums_equal_the_sums_of_each_half_with_zeros_exactly() -> None:
    """split_float_sums (one bincount per member and sum on wallet x membership) against float_sums of the halves
    written out with zeros, as the curve's terms once were: the same doubles, to the last bit."""
    valued = value_positions(_book(300, seed=7)).collect()
    labelled = wallets.wallet_index(valued)
    assert labelled is not None
    index, first = labelled
    terms = {"c": pl.col("collateral_usd_now"), "b": pl.col("debt_usd_now") * -1.0, "n": pl.lit(None, pl.Float64)}
    members = [pl.col("group") == "ETH", pl.col("symbol").is_in(["USDC", "DAI"]), pl.lit(None, pl.Boolean)]
    written = {
        f"{i}:{name}_{half}": pl.when(member).then(e if half == "in" else 0.0).otherwise(0.0 if half == "in" else e)
        for i, member in enumerate(members)
        for name, e in terms.items()
        for half in ("in", "out")
    }
    split = wallets.split_float_sums(valued, index, len(first), terms, members)
    assert split.columns == list(written)
    assert_frame_equal(split, wallets.float_sums(valued, index, len(first), written), check_exact=True)
