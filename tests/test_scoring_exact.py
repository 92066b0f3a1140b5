"""The health engine at the edge of 1 and with thresholds that are not whole bps (Maker's 1 / mat), on tiny frames."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from chainrisk.scoring.snapshot import score_positions

WAD, RAY = 10**18, 10**27
#: Maker's ETH-A liquidation ratio, 145 %, as the per-position threshold the adapter gives: floor(1e18 / 1.45).
THRESHOLD = WAD * RAY // (145 * RAY // 100)


def _rows(collateral: int, debt: int, threshold: int, amount: int = 10**20, price: int = 2_000 * WAD) -> pl.DataFrame:
    """One wallet: `amount` of a token priced `price` / 1e18 base units each, worth `collateral` base units at the
    snapshot, against `debt` base units of a stable debt."""
    common: dict[str, Any] = {
        "protocol": "maker",
        "chain_id": 1,
        "market": "ETH-A",
        "source": "0xlog",
        "wallet": "0xa",
        "block_number": 5,
        "block_timestamp": 100,
        "base_currency_usd": 1e-18,
        "health_rule": "per-position",
        "close_factor": 1.0,
        "full_close_below_health": None,
        "liquidation_bonus_bps": 11300,
        "liquidation_bonus_wad": 113 * WAD // 100,
    }
    bps = threshold // (WAD // 10_000)
    rows = [
        {
            **common,
            "asset": "0xweth",
            "symbol": "WETH",
            "decimals": 18,
            "collateral_amount": amount,
            "debt_amount": 0,
            "price": price,
            "price_scale": WAD,
            "price_usd": price / WAD,
            "collateral_base": collateral,
            "debt_base": 0,
            "liquidation_threshold_wad": threshold,
            "liquidation_threshold_bps": bps,
            "ltv_bps": bps,
            "used_as_collateral": True,
        },
        {
            **common,
            "asset": "0xdai",
            "symbol": "DAI",
            "decimals": 18,
            "collateral_amount": 0,
            "debt_amount": debt,
            "price": WAD,
            "price_scale": WAD,
            "price_usd": 1.0,
            "collateral_base": 0,
            "debt_base": debt,
            "liquidation_threshold_wad": 0,
            "liquidation_threshold_bps": 0,
            "ltv_bps": 0,
            "used_as_collateral": False,
        },
    ]
    exact = ("collateral_amount", "debt_amount", "price", "price_scale", "collateral_base", "debt_base")
    return pl.DataFrame(
        rows,
        schema_overrides={
            **{c: pl.Int128 for c in exact},
            "liquidation_threshold_wad": pl.Int128,
            "liquidation_bonus_wad": pl.Int128,
            "full_close_below_health": pl.Float64,
        },
    )


@pytest.mark.parametrize(("short", "liquidatable"), [(1, True), (0, False)], ids=["one unit short", "exactly 1"])
def test_health_factor_below_one_exactly_when_the_integers_are(short: int, liquidatable: bool) -> None:
    """Threshold-adjusted collateral one unit short of a 1e25-unit debt: the float ratio rounds to 1.0, yet the
    wallet is liquidatable (Maker's bark takes it); at exactly the debt it is not."""
    debt = 10**25 + 12_345
    positions = _rows(collateral=debt - short, debt=debt, threshold=WAD)
    risk = score_positions(positions)["wallet_risk"].row(0, named=True)
    assert (risk["health_factor"] < 1) is liquidatable
    assert risk["liquidatable"] is liquidatable
    assert risk["health_factor"] == pytest.approx(1.0, abs=1e-15)


def test_liquidation_price_honours_a_threshold_finer_than_a_bps() -> None:
    """At 1 / 1.45 (6,896.55... bps) the price where HF reaches 1 is debt * 1.45 / amount, not debt / 0.6896."""
    amount, debt = 10**20, 100_000 * WAD
    positions = _rows(collateral=amount * 2_000, debt=debt, threshold=THRESHOLD, amount=amount)
    prices = score_positions(positions)["position_risk"].filter(pl.col("symbol") == "WETH")
    expected = debt / amount * 1.45  # USD per whole token
    assert prices["liquidation_price_usd"][0] == pytest.approx(expected, rel=1e-12)


def _wide_wallet(rule: str | None, scale: int) -> pl.DataFrame:
    """One wallet with two collaterals of different thresholds and LTVs, worth 2 x `scale` and 3 x `scale` base
    units, against a debt of 2 x `scale`; `rule` the health_rule column (None: no such column, Aave's average)."""
    rows = []
    for asset, value, threshold, ltv, debt in (("0xa", 2 * scale, 8600, 8000, 0), ("0xb", 3 * scale, 7000, 6500, 0)):
        rows.append((asset, value, threshold, ltv, debt))
    rows.append(("0xd", 0, 0, 0, 2 * scale))
    frame = pl.DataFrame(
        [
            {
                "protocol": "morpho-blue",
                "chain_id": 1,
                "market": "m",
                "wallet": "0xw",
                "block_number": 1,
                "block_timestamp": 1,
                "asset": asset,
                "symbol": asset,
                "decimals": 18,
                "collateral_amount": value,
                "debt_amount": debt,
                "price": WAD,
                "price_scale": WAD,
                "price_usd": 1.0,
                "base_currency_usd": 1e-18,
                "collateral_base": value,
                "debt_base": debt,
                "liquidation_threshold_bps": threshold,
                "liquidation_threshold_wad": threshold * 10**14,
                "ltv_bps": ltv,
                "liquidation_bonus_bps": 10500,
                **({"health_rule": rule} if rule else {}),
            }
            for asset, value, threshold, ltv, debt in rows
        ],
        schema_overrides={
            c: pl.Int128
            for c in ("collateral_amount", "debt_amount", "price", "price_scale", "collateral_base", "debt_base")
        }
        | {"liquidation_threshold_wad": pl.Int128},
    )
    return frame


@pytest.mark.parametrize(
    "rule", [None, "weighted-threshold", "per-position"], ids=["average", "weighted", "per position"]
)
def test_weighted_figures_of_a_wallet_past_1e34_base_units_do_not_wrap_around(rule: str | None) -> None:
    """A wallet holding 5e34 base units (an odd token's Morpho market: value x bps passes Int128's 2^127, which polars
    wraps around silently, giving a negative average threshold and no borrowing power): its average threshold, LTV
    and borrowing capacity are Python's exact integers, the same bps as the same wallet 1e20 times smaller."""
    from chainrisk.scoring.health import value_positions, wallet_health

    def figures(scale: int) -> dict[str, Any]:
        row = wallet_health(value_positions(_wide_wallet(rule, scale)).collect().lazy()).collect().row(0, named=True)
        return {k: row[k] for k in ("liquidation_threshold_bps", "ltv_bps", "health_factor", "borrowing_power_usd")}

    big, small = figures(10**34), figures(10**14)
    lt, ltv = (2 * 8600 + 3 * 7000) // 5, (2 * 8000 + 3 * 6500) // 5
    assert (
        (big["liquidation_threshold_bps"], big["ltv_bps"])
        == (lt, ltv)
        == (small["liquidation_threshold_bps"], small["ltv_bps"])
    )
    assert big["health_factor"] == pytest.approx(small["health_factor"], rel=1e-12)
    capacity = {
        None: (5 * 10**34 * ltv + 5_000) // 10_000,
        "weighted-threshold": 5 * 10**34 * ltv // 10_000,
        "per-position": (2 * 10**34 * 8000 + 3 * 10**34 * 6500) // 10_000,
    }[rule]
    assert big["borrowing_power_usd"] == pytest.approx((capacity - 2 * 10**34) * 1e-18, rel=1e-12)


def _account_hf(rows: list[dict[str, Any]], prices: dict[str, int]) -> int:
    """GenericLogic.calculateUserAccountData's health factor before 3.5 (floored average threshold, percentMul)."""
    collateral = debt = weighted = 0
    for r in rows:
        price = prices.get(r["symbol"], r["price"])
        collateral += r["collateral_amount"] * price // 10 ** r["decimals"]
        debt += r["debt_amount"] * price // 10 ** r["decimals"]
        weighted += r["collateral_amount"] * price // 10 ** r["decimals"] * r["liquidation_threshold_bps"]
    threshold = weighted // collateral
    return (collateral * threshold + 5_000) // 10_000 * WAD // debt


def test_a_single_collaterals_liquidation_price_keeps_its_whole_threshold() -> None:
    """One collateral at 6,800 bps: its average threshold is 6,800 exactly, but the float ratio W / C can land a hair
    under it, and floored bare it was 6,799 (the demo's 0x03c22469 LINK: $3.691417, HF 1.000147 there; the pool's
    price $3.690874). At the price given, rounded to the oracle's unit, the pool's own integers give HF 1 within
    1e-6 for every one of 200 random wallets."""
    from random import Random

    from chainrisk.scoring.health import liquidation_prices, value_positions

    rng, worst = Random(5), 0.0
    books: list[tuple[str, list[dict[str, Any]]]] = []
    for k in range(200):
        link = rng.randrange(10**18, 10**24)
        price = rng.randrange(5 * 10**8, 30 * 10**8)
        usdc = link * price // 10**18 * 6_800 // 10_000 * rng.randrange(50, 95) // 100 // 100  # 8 -> 6 decimals
        rows: list[dict[str, Any]] = [
            {"symbol": "LINK", "decimals": 18, "price": price, "collateral_amount": link, "debt_amount": 0,
             "liquidation_threshold_bps": 6_800},
            {"symbol": "USDC", "decimals": 6, "price": 10**8, "collateral_amount": 0, "debt_amount": usdc,
             "liquidation_threshold_bps": 7_800},
        ]  # fmt: skip
        books.append((f"0x{k:040x}", rows))
    frame = pl.DataFrame(
        [
            {
                "protocol": "aave-v3", "chain_id": 1, "market": "0xpool", "wallet": wallet, "asset": "0x" + r["symbol"],
                "block_number": 1, "block_timestamp": 1, "price_usd": r["price"] / 1e8, "ltv_bps": 6_000,
                "liquidation_bonus_bps": 10_500, "health_rule": "average-threshold", **r,
            }
            for wallet, rows in books
            for r in rows
        ],
        schema_overrides={"collateral_amount": pl.Int128, "debt_amount": pl.Int128, "price": pl.Int128},
    )  # fmt: skip
    prices = liquidation_prices(value_positions(frame)).collect().filter(pl.col("symbol") == "LINK")
    found = dict(zip(prices["wallet"], prices["liquidation_price"], strict=True))
    for wallet, rows in books:
        hf = _account_hf(rows, {"LINK": round(found[wallet])})
        worst = max(worst, abs(hf / WAD - 1))
    assert worst < 1e-6, worst
