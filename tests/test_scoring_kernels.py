"""The compiled kernels (chainrisk.scoring.kernels) give what the polars path gives, bit for bit: every column of
position_values, wallet_health and liquidation_prices, on random books with extreme values (amounts of 2^64 - 1 and
beyond, 27-decimal units, price scales that are not powers of ten, wallets without debt, every health rule, shocked
prices), each run once with the kernels and once with them off. Books the kernels cannot take exactly (a negative
amount, a price of 2^64, a product of 2^122 or more, nulls) are handed back to the polars path, with the same
results. The 128-bit helpers are checked against Python's integers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.scoring import health, kernels
from chainrisk.scoring.health import (
    COLLATERAL_RATIO,
    PER_POSITION,
    WALLET_KEY,
    WEIGHTED_THRESHOLD,
    apply_multipliers,
    liquidation_prices,
    prepare,
    value_positions,
    wallet_health,
)
from chainrisk.units import WAD

#: symbol, decimals, USD price, threshold and LTV (bps), bonus (bps)
ASSETS = [
    ("WETH", 18, 2000.0, 8300, 8050, 10500),
    ("WBTC", 8, 30000.0, 7800, 7300, 10500),
    ("USDC", 6, 1.0, 8000, 7700, 10450),
    ("DAI", 18, 1.0, 8000, 7700, 10500),
    ("RAY27", 27, 3.0, 7000, 6000, 11000),
]
RULES = ["average-threshold", PER_POSITION, WEIGHTED_THRESHOLD, COLLATERAL_RATIO]
SHOCK = pl.DataFrame({"symbol": ["WETH", "WBTC", "USDC", "RAY27"], "multiplier": [0.63, 0.81, 0.999, 1.7]})


def _amount(rng: np.random.Generator, decimals: int, usd: float, price: float) -> int:
    """An amount worth about `usd`, or now and then an extreme one: none, one unit, 2^64 - 1, just past 2^64."""
    pick = rng.integers(0, 10)
    if pick == 0:
        return 0
    if pick == 1:
        return 1
    if pick == 2:
        return 2**64 - 1
    if pick == 3:
        return 2**64 + int(rng.integers(0, 2**40))
    return int(usd / price * 10**decimals)


def _book(wallets: int, seed: int, *, rules: bool, scaled: bool, given: bool) -> pl.DataFrame:
    """Random positions: one to four assets a wallet, some wallets without debt; with `rules` a health rule (and a
    WAD threshold) per market and the liquidation options; with `scaled` a price scale per position, now and then
    not a power of ten; with `given` the adapters' exact base values."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(wallets):
        rule = RULES[w % len(RULES)]
        market = f"0xm{w % len(RULES)}"
        held = rng.choice(len(ASSETS), size=int(rng.integers(1, 5)), replace=False)
        debts = set(held[: int(rng.integers(0, 3))].tolist())
        # Sizes up to 1e5 USD, so that every product of amount and price stays under 2^122 (where the polars path
        # itself turns to floats): at 27 decimals and a price of 1e8 per token that is under 50 USD a position (20
        # here, leaving room for the shocks).
        size = min(float(1_000 * (1 + rng.pareto(1.1))), 1e5)
        for a in held:
            symbol, decimals, usd_price, lt, ltv, bonus = ASSETS[a]
            debt = a in debts
            usd = size * rng.uniform(0.1, 1.0) * (0.6 if debt else 1.0)
            amount = _amount(rng, decimals, min(usd, 20.0) if decimals == 27 and not scaled else usd, usd_price)
            price = int(usd_price * 10**8)
            row = {
                "protocol": "p",
                "chain_id": 1 + w % 2,
                "market": market,
                "wallet": f"0x{w:05x}",
                "asset": "0x" + symbol.lower(),
                "symbol": symbol,
                "block_number": 7,
                "block_timestamp": 70,
                "decimals": decimals,
                "collateral_amount": 0 if debt else amount,
                "debt_amount": amount if debt else 0,
                "price": price,
                "price_usd": usd_price,
                "liquidation_threshold_bps": lt,
                "ltv_bps": ltv,
                "liquidation_bonus_bps": bonus,
            }
            unit = 10**decimals
            if scaled:
                # A price scale of 10^(decimals + 2), or now and then one that is no power of ten (prices under 2^64:
                # the kernels leave larger ones, as Morpho's 1e36-scaled oracle prices often are, to polars).
                unit = 10 ** (decimals + 2) if rng.integers(0, 4) else 3 * 10**20 + 7
                row["price_scale"] = unit
                row["price"] = int(usd_price * unit / 10**decimals) or 1
                row["base_currency_usd"] = 1.0
            if rules:
                row["health_rule"] = rule
                ratio = {COLLATERAL_RATIO: 11 * 10**17, PER_POSITION: 689_655_172_413_793_103}
                row["liquidation_threshold_wad"] = ratio.get(rule, lt * 10**14)
                row["liquidation_bonus_wad"] = bonus * 10**14
                row["liquidation_takes_all"] = rule == PER_POSITION
                row["close_factor"] = 0.5
                row["full_close_below_health"] = 0.95
            if given:
                row["collateral_base"] = row["collateral_amount"] * row["price"] // unit
                row["debt_base"] = row["debt_amount"] * row["price"] // unit
            rows.append(row)
    exact = ("collateral_amount", "debt_amount", "price", "price_scale", "collateral_base", "debt_base")
    return pl.DataFrame(
        rows,
        schema_overrides={c: pl.Int128 for c in (*exact, "liquidation_threshold_wad", "liquidation_bonus_wad")},
        infer_schema_length=None,
    )


def _views(valued: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    wallets = wallet_health(valued.lazy()).collect().sort(WALLET_KEY)
    prices = liquidation_prices(valued.lazy()).collect().sort([*WALLET_KEY, "asset"])
    return wallets, prices


def _kernels_taken(positions: pl.DataFrame, multipliers: pl.DataFrame | None) -> tuple[bool, bool, bool]:
    """Whether each kernel took the book (values, wallet health, liquidation prices)."""
    prepared = apply_multipliers(prepare(positions), multipliers).collect()
    names = prepared.columns
    values_taken = health._kernel_position_values(prepared, names) is not None
    valued = value_positions(positions, multipliers).collect()
    names = valued.columns
    keys = [*WALLET_KEY, "_base_unit", *(["_rule"] if "_rule" in names else [])]
    keys += ["_close_factor", "_full_close_below"] if "_close_factor" in names else []
    figures = health._kernel_wallet_figures(valued, names, keys)
    prices = health._kernel_liquidation_prices(valued, names, 4)
    return values_taken, figures is not None, prices is not None


def _assert_as_polars(monkeypatch: pytest.MonkeyPatch, positions: pl.DataFrame, shock: pl.DataFrame | None) -> None:
    """The book valued with the kernels and without them, then its wallet health and liquidation prices: each from
    the same valued frame (polars' own grouped float sums may add in another order on a frame chunked otherwise)."""
    valued = value_positions(positions, shock).collect()
    ours = _views(valued)
    monkeypatch.setattr(health, "USE_KERNELS", False)
    assert_frame_equal(valued, value_positions(positions, shock).collect(), check_exact=True)
    reference = _views(valued)
    monkeypatch.setattr(health, "USE_KERNELS", True)
    for got, want in zip(ours, reference, strict=True):
        assert_frame_equal(got, want, check_exact=True)


@pytest.mark.parametrize("rules", [False, True], ids=["aave", "rules"])
@pytest.mark.parametrize("scaled", [False, True], ids=["decimals", "price-scale"])
@pytest.mark.parametrize("given", [False, True], ids=["computed", "given"])
@pytest.mark.parametrize("shock", [None, SHOCK], ids=["snapshot", "shocked"])
def test_kernels_equal_the_polars_path(
    monkeypatch: pytest.MonkeyPatch, rules: bool, scaled: bool, given: bool, shock: pl.DataFrame | None
) -> None:
    seed = 8 * rules + 4 * scaled + 2 * given + (shock is None)
    positions = _book(160, seed=seed, rules=rules, scaled=scaled, given=given)
    assert _kernels_taken(positions, shock) == (True, True, True)
    _assert_as_polars(monkeypatch, positions, shock)


def _with_row(book: pl.DataFrame, **values: object) -> pl.DataFrame:
    """`book` with its first row's `values` changed."""
    first = pl.int_range(pl.len()) == 0
    return book.with_columns(
        pl.when(first).then(pl.lit(v, dtype=book.schema[c])).otherwise(pl.col(c)).alias(c) for c, v in values.items()
    )


@pytest.mark.parametrize(
    "change",
    [
        {"collateral_amount": -5},
        {"price": 2**64},
        {"collateral_amount": 2**100},
        {"debt_amount": 2**126},
        {"liquidation_threshold_bps": None},
        {"ltv_bps": -1},
    ],
    ids=[
        "negative-amount",
        "price-of-2^64",
        "product-past-2^122",
        "product-past-int128",
        "null-threshold",
        "negative-ltv",
    ],
)
def test_books_the_kernels_cannot_take_go_to_polars(monkeypatch: pytest.MonkeyPatch, change: dict[str, object]) -> None:
    """A row the kernels cannot take exactly leaves the book to the polars path: the results are the polars path's."""
    positions = _with_row(_book(60, seed=3, rules=True, scaled=False, given=False), **change)
    assert _kernels_taken(positions, None) != (True, True, True)
    _assert_as_polars(monkeypatch, positions, None)


def test_sums_past_64_bits_and_a_wallet_without_collateral(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wallets whose threshold-weighted sums leave 64 bits (the 128-bit quotient's paths) and a wallet of debt alone."""
    book = _book(40, seed=5, rules=True, scaled=False, given=False)
    big = book.with_columns(
        pl.when(pl.col("collateral_amount") > 0)
        .then(pl.lit(3 * 10**22, dtype=pl.Int128) + pl.int_range(pl.len()).cast(pl.Int128))
        .otherwise(pl.col("collateral_amount"))
        .alias("collateral_amount")
    )
    debt_only = _with_row(book.head(1), collateral_amount=0, debt_amount=10**20).with_columns(
        pl.lit("0xdebtonly").alias("wallet")
    )
    positions = pl.concat([big, debt_only])
    assert _kernels_taken(positions, None) == (True, True, True)
    _assert_as_polars(monkeypatch, positions, None)


def test_the_128_bit_helpers_match_python_integers() -> None:
    rng = np.random.default_rng(11)
    values = [0, 1, 2**53 + 1, 2**64 - 1, 2**64, 2**64 + 2**11, 2**64 + 2**11 + 1, 2**117 + 2**64 + 1, 2**127 - 1]
    values += [
        int(rng.integers(0, 2**62)) * int(rng.integers(1, 2**62)) + int(rng.integers(0, 2**62)) for _ in range(300)
    ]
    for value in values:
        high, low = np.uint64(value >> 64), np.uint64(value % 2**64)
        assert kernels._to_float(high, low) == float(value)
        for divisor in (1, 7, 10**9, 2**32 + 1, 10**18, 3 * 10**20 + 7, 2**70 + 3, value // 3 + 1):
            qh, ql, rh, rl = kernels._divmod128(high, low, np.uint64(divisor >> 64), np.uint64(divisor % 2**64))
            assert ((int(qh) << 64) + int(ql), (int(rh) << 64) + int(rl)) == divmod(value, divisor)
        for d in range(37):
            qh, ql = kernels._divide_by_power_of_ten(high, low, d)
            assert (int(qh) << 64) + int(ql) == value // 10**d
        multiplier = int(rng.integers(0, 2**63))
        ph, pl_, fits = kernels._mul128_64(high, low, np.uint64(multiplier))
        product = value * multiplier
        assert fits == (product < 2**127)
        if fits:
            assert (int(ph) << 64) + int(pl_) == product
        floored = kernels._floor_wad_product(high, low, np.uint64(multiplier))
        if floored[2]:
            assert (int(floored[0]) << 64) + int(
                floored[1]
            ) == value // WAD * multiplier + value % WAD * multiplier // WAD
    assert kernels._signed_float(np.uint64(2**64 - 1), np.uint64(2**64 - 5)) == -5.0
