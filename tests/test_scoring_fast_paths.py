"""The engine's shortcuts give exactly what its general paths give: the exact product branch taken for the whole book
when every row's amount and price have few enough bits between them, 128-bit integers turned to doubles through
Int64 when they fit there, and key columns holding one value repeated instead of gathered. Each is checked against
the general path forced, and on a book whose values are too large for the shortcuts."""

from __future__ import annotations

import numpy as np
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


@pytest.mark.parametrize("multipliers", [None, SHOCK], ids=["snapshot", "shocked"])
@pytest.mark.parametrize("columns", ["contract minimum", "adapter's"])
def test_health_summed_in_numpy_equals_the_int128_grouping(
    monkeypatch: pytest.MonkeyPatch, multipliers: pl.DataFrame | None, columns: str
) -> None:
    """wallet_health with its exact sums made by integer_sums (limbs summed by the wallet's number) against the same
    with integer_sums declining, which groups the book in polars' Int128: every column equal to the last bit, over
    every health rule of the test markets."""
    book = _book(400, seed=11)
    if columns == "adapter's":
        book = _with_adapter_columns(book)
    valued = value_positions(book, multipliers).collect().lazy()
    calls: list[bool] = []
    real = wallets.integer_sums

    def recorded(*args: object) -> object:
        found = real(*args)  # type: ignore[arg-type]
        calls.append(found is not None)
        return found

    monkeypatch.setattr(health, "integer_sums", recorded)
    fast = health.wallet_health(valued).collect().sort(WALLET_KEY)
    monkeypatch.setattr(health, "integer_sums", lambda *args: None)
    general = health.wallet_health(valued).collect().sort(WALLET_KEY)
    assert calls == [True]
    assert fast.height == book.select(WALLET_KEY).n_unique()
    assert_frame_equal(fast, general, check_exact=True)


def _grouped_sums(values: list[int | None], weights: list[int | None] | None, index: np.ndarray) -> list[int]:
    """The per-wallet sums of values times weights as polars' Int128 grouping makes them, for wallets 0..max of
    `index` (0 for a wallet without rows)."""
    frame = pl.DataFrame(
        {
            "w": index,
            "v": pl.Series(values, dtype=pl.Int128),
            "k": pl.Series(weights if weights is not None else [1] * len(values), dtype=pl.Int64),
        }
    )
    sums = frame.group_by("w").agg((pl.col("v") * pl.col("k").cast(pl.Int128)).sum())
    found = dict(sums.iter_rows())
    return [found.get(w, 0) for w in range(int(index.max()) + 1)]


def test_integer_sums_are_exact_at_the_edges_of_their_bounds() -> None:
    """Values at both ends of Int64, nulls, weights up to 2^16 - 1 and a wallet of many rows: the limb sums equal
    polars' Int128 grouping exactly; one step outside a bound and integer_sums declines."""
    rng = np.random.default_rng(3)
    rows = 5_000
    index = np.sort(rng.integers(0, 300, rows))
    index[:2_000] = 7  # one wallet of 2,000 rows: its sums leave Int64
    edges = [2**63 - 1, -(2**63), 2**32 - 1, 2**32, -(2**32), -1, 0, None]
    values: list[int | None] = [
        edges[i] if i < len(edges) else int(rng.integers(-(2**63), 2**63 - 1)) for i in range(rows)
    ]
    values[100:300] = [2**63 - 1] * 200
    weights: list[int | None] = [int(w) for w in rng.integers(0, 2**16, rows)]
    weights[5], weights[6], weights[101] = 2**16 - 1, None, 2**16 - 1
    frame = pl.DataFrame({"v": pl.Series(values, dtype=pl.Int128), "k": pl.Series(weights, dtype=pl.Int64)})
    wallet_count = int(index.max()) + 1
    found = wallets.integer_sums(
        frame, index, wallet_count, {"plain": (pl.col("v"), None), "weighted": (pl.col("v"), pl.col("k"))}
    )
    assert found is not None and found.schema == {"plain": pl.Int128, "weighted": pl.Int128}
    assert found.get_column("plain").to_list() == _grouped_sums(values, None, index)
    assert found.get_column("weighted").to_list() == _grouped_sums(values, weights, index)
    assert max(abs(s) for s in found.get_column("weighted").to_list()) > 2**80  # the sums leave Int64 far behind
    outside = [
        frame.with_columns(pl.lit(2**63, dtype=pl.Int128).alias("v").head(1).extend_constant(None, rows - 1)),
        frame.with_columns(pl.col("k").fill_null(2**16)),
        frame.with_columns(pl.col("k").fill_null(-1)),
    ]
    for bad in outside:
        assert wallets.integer_sums(bad, index, wallet_count, {"s": (pl.col("v"), pl.col("k"))}) is None
    crowded = np.zeros(2**15, dtype=np.intp)
    many = pl.DataFrame({"v": pl.Series([1] * 2**15, dtype=pl.Int128)})
    assert wallets.integer_sums(many, crowded, 1, {"s": (pl.col("v"), None)}) is None
    assert wallets.integer_sums(many.head(2**15 - 1), crowded[1:], 1, {"s": (pl.col("v"), None)}) is not None
