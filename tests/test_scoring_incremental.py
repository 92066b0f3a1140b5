"""Rescoring only the wallets that changed gives what scoring the whole new snapshot gives."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.scoring import incremental
from chainrisk.scoring.health import WALLET_KEY
from chainrisk.scoring.incremental import HOLDER_KEY, ScoredBook, changed_wallets, rescore_book, score_book

#: symbol, decimals, price (USD), liquidation threshold, LTV, bonus (bps)
ASSETS = [
    ("WETH", 18, 2000.0, 8300, 8050, 10500),
    ("WBTC", 8, 30000.0, 7800, 7300, 10500),
    ("USDC", 6, 1.0, 8000, 7700, 10450),
    ("DAI", 18, 1.0, 8000, 7700, 10500),
    ("LINK", 18, 7.0, 6800, 5300, 10700),
]
#: (chain_id, market, health rule)
MARKETS = [(1, "0xaave", "average-threshold"), (1, "0xmorpho", "per-position"), (10, "0xaave35", "weighted-threshold")]


def _book(wallets: int, seed: int, block: int = 100) -> pl.DataFrame:
    """Positions as the store hands them over (ordered by market, wallet and asset): one to three collateral assets
    and one or two debts per wallet, health factors around 1."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(wallets):
        chain_id, market, rule = MARKETS[w % len(MARKETS)]
        size = float(1_000 * (1 + rng.pareto(1.2)))
        held = rng.choice(len(ASSETS), size=int(rng.integers(2, 5)), replace=False)
        debts = set(held[: int(rng.integers(1, 3))].tolist())
        health = rng.uniform(0.8, 2.5)
        for a in held:
            symbol, decimals, price, lt, ltv, bonus = ASSETS[a]
            usd = size * rng.uniform(0.2, 1.0)
            debt = a in debts
            amount = int(usd * (0.8 / health if debt else 1.0) / price * 10**decimals)
            rows.append(
                {
                    "protocol": "p-" + market,
                    "chain_id": chain_id,
                    "market": market,
                    "wallet": f"0x{w:06x}",
                    "asset": "0x" + symbol.lower(),
                    "symbol": symbol,
                    "block_number": block,
                    "block_timestamp": 10 * block,
                    "decimals": decimals,
                    "collateral_amount": 0 if debt else amount,
                    "debt_amount": amount if debt else 0,
                    "price": int(price * 10**8),
                    "price_usd": price,
                    "liquidation_threshold_bps": lt,
                    "ltv_bps": ltv,
                    "liquidation_bonus_bps": bonus,
                    "health_rule": rule,
                }
            )
    frame = pl.DataFrame(
        rows, schema_overrides={"collateral_amount": pl.Int128, "debt_amount": pl.Int128, "price": pl.Int128}
    )
    return _ordered(frame)


def _ordered(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("protocol", "chain_id", "market", "wallet", "asset")


def _next_block(book: pl.DataFrame, block: int = 101) -> pl.DataFrame:
    return book.with_columns(pl.lit(block).alias("block_number"), pl.lit(10 * block).alias("block_timestamp"))


def _scale(book: pl.DataFrame, wallets: list[str], factor: int, column: str = "debt_amount") -> pl.DataFrame:
    touched = pl.col("wallet").is_in(wallets)
    return book.with_columns(pl.when(touched).then(pl.col(column) * factor).otherwise(pl.col(column)).alias(column))


def _rescored(previous: ScoredBook, positions: pl.DataFrame, changed: pl.DataFrame | None = None) -> ScoredBook:
    """rescore_book, checked to have scored only the changed wallets (never the whole book)."""

    def whole_book(_: pl.DataFrame) -> ScoredBook:
        raise AssertionError("scored the whole book")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(incremental, "score_book", whole_book)
        return rescore_book(previous, positions, changed)


def _assert_same(ours: ScoredBook, expected: ScoredBook) -> None:
    """Wallet and position rows (order aside) and the curve's counts exactly, but for float sums, which polars adds in
    an order that may vary with its threads: to their last bits; the curve's USD sums to float rounding."""
    health, expected_health = ours.wallet_health.sort(WALLET_KEY), expected.wallet_health.sort(WALLET_KEY)
    assert_frame_equal(health, expected_health, check_exact=False, rel_tol=1e-12, abs_tol=0.0)
    by_position = [*WALLET_KEY, "asset"]
    prices, expected_prices = ours.liquidation_prices.sort(by_position), expected.liquidation_prices.sort(by_position)
    assert_frame_equal(prices, expected_prices, check_exact=False, rel_tol=1e-12, abs_tol=0.0)
    assert_frame_equal(
        ours.liquidation_curve, expected.liquidation_curve, check_exact=False, rel_tol=1e-9, abs_tol=1e-6
    )
    assert_frame_equal(ours.digests.sort("_holder"), expected.digests.sort("_holder"))
    # Each row's wallet kept beside it, for the next rescore.
    for frame, holders in (
        (ours.wallet_health, ours.wallet_holders),
        (ours.liquidation_prices, ours.price_holders),
        (ours.positions, ours.position_holders),
    ):
        assert holders.equals(frame.select(pl.struct(HOLDER_KEY).hash(seed=13)).to_series(), check_names=False)


@pytest.fixture(scope="module")
def book() -> pl.DataFrame:
    return _book(600, seed=5)


@pytest.fixture(scope="module")
def scored(book: pl.DataFrame) -> ScoredBook:
    return score_book(book)


def test_nothing_changed_but_the_block(book: pl.DataFrame, scored: ScoredBook) -> None:
    now = _next_block(book)
    assert changed_wallets(scored, now).height == 0
    _assert_same(_rescored(scored, now), score_book(now))


def test_some_wallets_borrow_repay_leave_and_arrive(book: pl.DataFrame, scored: ScoredBook) -> None:
    now = _scale(_next_block(book), ["0x000003", "0x000004", "0x00000a"], 3)  # pushed under 1
    now = _scale(now, ["0x000007"], 0)  # repaid in full: no longer in debt
    now = now.filter(pl.col("wallet") != "0x000010")  # gone
    newcomer = _next_block(_book(3, seed=9)).with_columns(pl.format("0xnew{}", pl.col("wallet")).alias("wallet"))
    now = _ordered(pl.concat([now, newcomer]))
    expected = score_book(now)
    assert set(changed_wallets(scored, now)["wallet"]) == {
        "0x000003",
        "0x000004",
        "0x00000a",
        "0x000007",
        "0x000010",
        *newcomer["wallet"].unique(),
    }
    _assert_same(_rescored(scored, now), expected)
    # The same when the caller names the changed wallets (and names one too many).
    named = changed_wallets(scored, now).vstack(now.filter(pl.col("wallet") == "0x000020").select(HOLDER_KEY))
    _assert_same(_rescored(scored, now, named), expected)


def test_one_price_moves(book: pl.DataFrame, scored: ScoredBook) -> None:
    """LINK falls 30 % on one market's oracle: every wallet holding it there has changed; the others keep theirs."""
    moved = (pl.col("symbol") == "LINK") & (pl.col("market") == "0xmorpho")
    now = _next_block(book).with_columns(
        pl.when(moved).then(pl.col("price") * 7 // 10).otherwise(pl.col("price")).alias("price"),
        pl.when(moved).then(pl.col("price_usd") * 0.7).otherwise(pl.col("price_usd")).alias("price_usd"),
    )
    holders = book.filter(moved).select(HOLDER_KEY).unique()
    assert changed_wallets(scored, now).sort(HOLDER_KEY).equals(holders.sort(HOLDER_KEY))
    _assert_same(_rescored(scored, now), score_book(now))


def test_a_new_asset_brings_a_new_axis_and_the_last_holder_takes_one_away(book: pl.DataFrame) -> None:
    """A wallet posts wstETH (new to the book: its own axis, summed over every wallet); the only LINK positions go
    (the LINK axis leaves the curve)."""
    without_link = book.filter(pl.col("symbol") != "LINK")
    before = score_book(without_link.filter(pl.col("wallet") != "0x000002"))
    extra = (
        without_link.filter(pl.col("collateral_amount") > 0)
        .head(1)
        .with_columns(pl.lit("0xwsteth").alias("asset"), pl.lit("wstETH").alias("symbol"))
    )
    now = _next_block(_ordered(pl.concat([without_link, extra])))
    ours = _rescored(before, now)
    assert ("asset", "wstETH") in set(ours.liquidation_curve.select("axis_kind", "axis").iter_rows())
    _assert_same(ours, score_book(now))
    # Then the wstETH position goes again: its axis with it.
    later = _next_block(_ordered(without_link), 102)
    _assert_same(_rescored(ours, later), score_book(later))


def test_a_market_whose_last_debtor_repays_leaves_the_curve(book: pl.DataFrame, scored: ScoredBook) -> None:
    debtors = book.filter((pl.col("market") == "0xmorpho") & (pl.col("debt_amount") > 0))["wallet"].unique()
    now = _scale(_next_block(book), debtors.head(debtors.len() - 1).to_list(), 0)
    step = _rescored(scored, now)
    _assert_same(step, score_book(now))
    last = _scale(now, [debtors[-1]], 0, "debt_amount")
    ours = _rescored(step, _next_block(last, 102))
    assert "0xmorpho" not in set(ours.liquidation_curve["market"])
    _assert_same(ours, score_book(_next_block(last, 102)))


def test_past_half_the_book_it_scores_in_full(book: pl.DataFrame, scored: ScoredBook) -> None:
    now = _scale(_next_block(book), book["wallet"].unique().to_list(), 2, "collateral_amount")
    _assert_same(rescore_book(scored, now), score_book(now))
