"""The positions column `price_fixed`, on tiny frames by hand: a debt the protocol values at a price no market moves
(Maker/Sky's dai at the Spotter's par, Liquity's LUSD at one dollar) keeps its value under every shock of its symbol,
in the engine (stress, liquidation prices, the curve's axes) and in the models built on the engine's linear terms
(Monte-Carlo VaR's book, liquidations along a price path, distance to liquidation). A debt in the same token that an
oracle prices (Aave's DAI) moves as before. The chain-side checks are in test_index_maker.py (Dog.bark after the OSM
moves, with dai depegged) and test_index_liquity_v1.py (liquidate after the feed moves, with LUSD depegged)."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.dashboard.ui import liquidated_if
from chainrisk.dashboard.whatif import apply_scenario, health_by_market
from chainrisk.risk.cascade import DepthCurve
from chainrisk.risk.distance import liquidation_distance
from chainrisk.risk.liquidations import liquidate_along
from chainrisk.risk.var import Book, build_book, wallet_outcomes
from chainrisk.scoring.health import coefficients_by_axis, liquidation_prices, stress, value_positions
from tests.rows import per_position

WAD = 10**18
#: 1 / 1.5: a 150 % collateral ratio as a per-position threshold (Maker's 1 / mat).
THRESHOLD = WAD * 2 // 3


def _wallet(protocol: str, wallet: str, fixed: bool | None) -> list[dict[str, Any]]:
    """$1,000 of WETH (10^18 at $1,000) against 600 DAI, per-position rule at THRESHOLD, 8-decimal base units:
    HF = floor(1000e8 * 2/3) / 600e8 = 1.111."""
    common = per_position(protocol, f"0x{protocol}", wallet) | {
        "ltv_bps": 6666,
        "liquidation_bonus_bps": 11300,
        "liquidation_bonus_wad": 113 * 10**16,
    }
    collateral = common | {
        "asset": "0xweth",
        "symbol": "WETH",
        "decimals": 18,
        "collateral_amount": WAD,
        "debt_amount": 0,
        "price": 1_000 * 10**8,
        "price_scale": WAD,
        "collateral_base": 1_000 * 10**8,
        "debt_base": 0,
        "liquidation_threshold_bps": 6666,
        "liquidation_threshold_wad": THRESHOLD,
        "is_borrowing": False,
        "price_fixed": False if fixed is not None else None,
    }
    debt = common | {
        "asset": "0xdai",
        "symbol": "DAI",
        "decimals": 18,
        "collateral_amount": 0,
        "debt_amount": 600 * WAD,
        "price": 10**8,
        "price_scale": WAD,
        "collateral_base": 0,
        "debt_base": 600 * 10**8,
        "ltv_bps": 0,
        "liquidation_threshold_bps": 0,
        "liquidation_threshold_wad": 0,
        "is_borrowing": True,
        "price_fixed": fixed,
    }
    return [collateral, debt]


def _book(with_column: bool = True) -> pl.DataFrame:
    """A Maker-like vault (dai at par: price_fixed) and an Aave-like wallet (DAI priced by an oracle), alike else."""
    rows = _wallet("maker", "0xvault", True) + _wallet("aave-v3", "0xaave", False)
    frame = pl.DataFrame(rows, schema_overrides={"full_close_below_health": pl.Float64, "price_fixed": pl.Boolean})
    return frame if with_column else frame.drop("price_fixed")


def _shock(**multipliers: float) -> pl.DataFrame:
    return pl.DataFrame({"symbol": list(multipliers), "multiplier": list(multipliers.values())})


def _health(book: pl.DataFrame, shock: pl.DataFrame | None = None) -> dict[str, float]:
    health = stress(book, shock)
    return dict(zip(health["wallet"].to_list(), health["health_factor"].to_list(), strict=True))


def test_a_depeg_of_a_fixed_price_debt_moves_nothing() -> None:
    now = _health(_book())
    assert now["0xvault"] == now["0xaave"] == pytest.approx(1000 * 2 / 3 / 600, rel=1e-9)
    depegged = _health(_book(), _shock(DAI=0.8))
    assert depegged["0xvault"] == now["0xvault"]
    assert depegged["0xaave"] == pytest.approx(now["0xaave"] / 0.8, rel=1e-9)
    # The collateral's price still moves both: WETH -15 % makes both liquidatable, whatever dai does.
    crash = stress(_book(), _shock(WETH=0.85, DAI=0.8)).sort("wallet")
    assert crash["liquidatable"].to_list() == [False, True]  # 0xaave: 566.6 / 480; 0xvault: 566.6 / 600
    # Without the column (an older file's rows) every price moves, as before the column existed.
    assert _health(_book(with_column=False), _shock(DAI=0.8))["0xvault"] == pytest.approx(now["0xvault"] / 0.8)


def test_a_fixed_price_has_no_liquidation_price() -> None:
    prices = liquidation_prices(value_positions(_book())).collect().sort("wallet", "symbol")
    by = {(r["wallet"], r["symbol"]): r for r in prices.iter_rows(named=True)}
    assert by[("0xvault", "DAI")]["liquidation_price"] is None
    assert by[("0xvault", "DAI")]["liquidated_when_price"] is None
    assert by[("0xaave", "DAI")]["liquidated_when_price"] == "rises above"
    assert by[("0xaave", "DAI")]["liquidation_price_usd"] == pytest.approx(1000 * 2 / 3 / 600, rel=1e-6)
    for wallet in ("0xvault", "0xaave"):
        assert by[(wallet, "WETH")]["liquidated_when_price"] == "falls below"
        assert by[(wallet, "WETH")]["liquidation_price_usd"] == pytest.approx(900.0, rel=1e-6)


def test_a_fixed_price_is_on_no_shock_axis() -> None:
    valued = value_positions(_book())
    (dai_axis,) = coefficients_by_axis(valued, [pl.col("symbol") == "DAI"])
    terms = {r["_wid"]: r for r in dai_axis.iter_rows(named=True)}
    wids = dict(valued.select("wallet", "_wid").unique().collect().iter_rows())
    vault, aave = terms[wids["0xvault"]], terms[wids["0xaave"]]
    assert (vault["b_in"], vault["b_out"]) == (0.0, pytest.approx(600.0))
    assert (aave["b_in"], aave["b_out"]) == (pytest.approx(600.0), 0.0)


def test_models_on_the_linear_book_keep_a_fixed_price() -> None:
    book = build_book(_book(), {"WETH": "WETH", "DAI": "DAI"}, ["WETH", "DAI"])
    wallets = book.wallets["wallet"].to_list()
    assert book.debt[wallets.index("0xvault")].tolist() == [0.0, 0.0]
    assert book.fixed_debt.tolist() == [pytest.approx(600.0) if w == "0xvault" else 0.0 for w in wallets]
    # The scenario of the crash above: the same verdicts as the engine's exact stress().
    _, _, _, liquidatable = wallet_outcomes(book, np.array([[0.85, 0.8], [1.0, 0.8]]))
    assert dict(zip(wallets, liquidatable[0].tolist(), strict=True)) == {"0xvault": True, "0xaave": False}
    assert not liquidatable[1].any()
    # A fixed-price debt needs no price series of its own (LUSD, dai at par).
    vault_only = _book().filter(pl.col("protocol") == "maker")
    assert build_book(vault_only, {"WETH": "WETH"}, ["WETH"]).fixed_debt.sum() == pytest.approx(600.0)
    with pytest.raises(ValueError, match="DAI"):
        build_book(_book(), {"WETH": "WETH"}, ["WETH"])  # the oracle-priced DAI needs one
    # Along an hourly path where WETH falls 8 % and DAI rises 10 %: the oracle-priced DAI debt (660) outgrows the
    # collateral's 613, the vault's dai at par (600) does not.
    path = np.array([[0.92, 1.1]] * 4)
    curves = {"WETH": DepthCurve(1e12), "DAI": DepthCurve(1e12)}
    vault, aave = (liquidate_along(_only(book, w), path, {}, curves, 0, 0) for w in ("0xvault", "0xaave"))
    assert (vault.liquidations, aave.liquidations) == (0, 1)
    # WETH down 15 % liquidates the vault too.
    assert liquidate_along(_only(book, "0xvault"), np.array([[0.85, 1.1]] * 4), {}, curves, 0, 0).liquidations == 1


def _only(book: Book, wallet: str) -> Book:
    """`book` cut to one wallet (its market's): every per-wallet array at the wallet's row."""
    row = book.wallets["wallet"].to_list().index(wallet)
    pick = slice(row, row + 1)
    shared = ("assets", "markets", "market_start", "wallets")
    rows = {f.name: getattr(book, f.name)[pick] for f in fields(book) if f.name not in shared}
    return replace(book, markets=book.markets[[0]], market_start=np.array([0]), wallets=book.wallets[pick], **rows)


def test_distance_to_liquidation_counts_a_fixed_debt() -> None:
    rows = liquidation_distance(_book()).sort("protocol")
    by = {r["protocol"]: r for r in rows.iter_rows(named=True)}
    # WETH's fall that liquidates either: 1 - 600 / 666.67 = 10 %, the dai debt counted whichever way it is priced.
    assert by["maker"]["first_drop"] == pytest.approx(0.1, abs=1e-3)
    assert by["aave-v3"]["first_drop"] == pytest.approx(0.1, abs=1e-3)
    assert_frame_equal(rows.select("holders"), pl.DataFrame({"holders": [1, 1]}), check_dtypes=False)


def test_the_what_if_leaves_a_fixed_price() -> None:
    """The Wallet page's what-if moves a symbol's price in every market holding it, but not a debt at par."""
    book = _book().with_columns(pl.col("collateral_amount").alias("supplied_amount"))
    moved = apply_scenario(book, {"DAI": -2000})
    prices = {(r["wallet"], r["symbol"]): r["price"] for r in moved.iter_rows(named=True)}
    assert prices[("0xvault", "DAI")] == 10**8 and prices[("0xaave", "DAI")] == 8 * 10**7
    after = dict(health_by_market(moved).select("protocol", "health_factor").iter_rows())
    shocked = _health(_book(), _shock(DAI=0.8))
    assert after == pytest.approx({"maker": shocked["0xvault"], "aave-v3": shocked["0xaave"]}, rel=1e-12)
    assert after["maker"] == _health(_book())["0xvault"]


def test_the_at_risk_table_says_a_debt_at_par_is_never_liquidated_by_its_price() -> None:
    assert liquidated_if(None, None, True) == "never: valued at par"
    assert liquidated_if("rises above", 1.2, False) == "rises above $1.2"
    assert liquidated_if(None, None, None) is None


def test_the_linear_book_takes_a_wad_threshold_with_its_fraction_of_a_bps() -> None:
    """A vault at 1 / 1.5 (6,666.67 bps; its whole-bps column says 6,666) whose debt lies between the two: the engine
    says safe, and so must the VaR book (it read the whole bps, and called the vault liquidatable)."""
    vault = pl.DataFrame(_wallet("maker", "0xvault", True), schema_overrides={"full_close_below_health": pl.Float64})
    debt = 666_65 * 10**6  # $666.65: under 1000 x 2/3, over 1000 x 0.6666
    vault = vault.with_columns(
        pl.when(pl.col("debt_amount") > 0)
        .then(pl.lit(debt * 10**10))
        .otherwise(pl.col("debt_amount"))
        .alias("debt_amount"),
        pl.when(pl.col("debt_amount") > 0).then(pl.lit(debt)).otherwise(pl.col("debt_base")).alias("debt_base"),
    )
    assert not stress(vault)["liquidatable"][0]
    book = build_book(vault, {"WETH": "WETH"}, ["WETH"])
    _, _, _, liquidatable = wallet_outcomes(book, np.array([[1.0], [0.9999]]))
    assert liquidatable[:, 0].tolist() == [False, True]
    assert stress(vault, _shock(WETH=0.9999))["liquidatable"][0]
