"""Look-through on a hand-built book whose answer is known: wrappers resolve to bases exactly, vault claims split
across the markets the vault supplies, intermediates (protocol and wrapper contracts) are never counted."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from chainrisk.assets import Link, Token
from chainrisk.chains.lookthrough import (
    base_asset_exposure,
    legs,
    rate_converter,
    usd_prices,
    valued,
    wallet_exposure,
    wallet_lookthrough,
)

E18, E6 = 10**18, 10**6
WETH, STETH, WSTETH, AWETH = (
    Token("0xweth", "WETH", 18),
    Token("0xst", "stETH", 18),
    Token("0xwst", "wstETH", 18),
    Token("0xaweth", "aWETH", 18),
)
USDC, CVUSDC, DAI = Token("0xusdc", "USDC", 6), Token("0xcv", "cvUSDC", 6), Token("0xdai", "DAI", 18)
MORPHO, PROVIDER = "0xmorpho", "0xprovider"
LINKS = {
    WSTETH.address: Link(WSTETH, "lst", STETH, 11 * E18 // 10, E18, "getStETHByWstETH", "IWstETH", "probe"),
    AWETH.address: Link(AWETH, "atoken", WETH, 1, 1, None, "", "probe", pool="0xpool", index_ray=10**27),
    CVUSDC.address: Link(
        CVUSDC,
        "erc4626",
        USDC,
        1_050_000,
        E6,
        "convertToAssets",
        "IERC4626",
        "probe",
        total_assets=1000 * E6,
        total_supply=952_380_952,
    ),
}
PRICES = {"0xweth": 2000.0, "0xwst": 2200.0, "0xaweth": 2000.0, "0xusdc": 1.0, "0xcv": 1.05, "0xdai": 1.0}


def _row(
    protocol: str, market: str, wallet: str, token: Token, supplied: int = 0, collateral: int = 0, debt: int = 0
) -> dict[str, Any]:
    return {
        "protocol": protocol,
        "chain_id": 1,
        "market": market,
        "wallet": wallet,
        "asset": token.address,
        "symbol": token.symbol,
        "decimals": token.decimals,
        "block_number": 100,
        "supplied_amount": supplied,
        "collateral_amount": collateral,
        "debt_amount": debt,
        "price_usd": PRICES.get(token.address),
        "source": PROVIDER if protocol == "aave-v3" else MORPHO,
    }


POSITIONS = pl.DataFrame(
    [
        # A loops wstETH against WETH on Aave.
        _row("aave-v3", PROVIDER, "0xa", WSTETH, supplied=10 * E18, collateral=10 * E18),
        _row("aave-v3", PROVIDER, "0xa", WETH, debt=8 * E18),
        # B posts aWETH on Morpho; the aWETH sits in Aave as the Morpho singleton's supply (an intermediate).
        _row("morpho-blue", "m2", "0xb", AWETH, collateral=5 * E18),
        _row("morpho-blue", "m2", "0xb", USDC, debt=8000 * E6),
        _row("aave-v3", PROVIDER, MORPHO, WETH, supplied=5 * E18, collateral=5 * E18),
        # The vault supplies 900 USDC to m1; C posts vault shares on m3.
        _row("morpho-blue", "m1", CVUSDC.address, USDC, supplied=900 * E6),
        _row("morpho-blue", "m3", "0xc", CVUSDC, collateral=100 * E6),
        _row("morpho-blue", "m3", "0xc", DAI, debt=90 * E18),
        # D borrows plainly on m1.
        _row("morpho-blue", "m1", "0xd", WETH, collateral=1 * E18),
        _row("morpho-blue", "m1", "0xd", USDC, debt=1500 * E6),
    ],
    schema_overrides={c: pl.Int128 for c in ("supplied_amount", "collateral_amount", "debt_amount")},
)


@pytest.fixture(scope="module")
def leg_frame() -> pl.DataFrame:
    return valued(legs(POSITIONS, LINKS, rate_converter(LINKS)), usd_prices(POSITIONS, LINKS))


def test_wrappers_resolve_to_bases_exactly(leg_frame: pl.DataFrame) -> None:
    a = leg_frame.filter((pl.col("wallet") == "0xa") & (pl.col("role") == "collateral")).row(0, named=True)
    assert (a["base_symbol"], a["base_amount"], a["depth"], a["path"]) == ("stETH", 11 * E18, 1, ["wstETH", "stETH"])
    b = leg_frame.filter((pl.col("wallet") == "0xb") & (pl.col("role") == "collateral")).row(0, named=True)
    assert (b["base_symbol"], b["base_amount"], b["depth"], b["hops"]) == ("WETH", 5 * E18, 1, ["atoken"])


def test_vault_claim_splits_into_its_market_and_idle_cash(leg_frame: pl.DataFrame) -> None:
    c = leg_frame.filter((pl.col("wallet") == "0xc") & (pl.col("role") == "collateral")).sort("depth")
    # 100 shares at 1.05 = 105 USDC; the vault has 900 of its 1000 USDC in m1: 94.5 there (depth 2), 10.5 idle.
    assert c["base_amount"].to_list() == [10_500_000, 94_500_000]
    assert c["depth"].to_list() == [1, 2]
    assert c["claim_market"].to_list() == [None, "m1"]
    assert int(c["base_amount"].sum()) == 105 * E6  # the split loses no unit


def test_intermediates_are_not_owners_and_nothing_is_counted_twice(leg_frame: pl.DataFrame) -> None:
    assert set(leg_frame["wallet"].unique()) == {"0xa", "0xb", "0xc", "0xd"}
    exposure = (
        base_asset_exposure(leg_frame, POSITIONS, LINKS, usd_prices(POSITIONS, LINKS))
        .filter(pl.col("base_symbol") == "WETH")
        .row(0, named=True)
    )
    # WETH collateral: B's 5 through aWETH and D's 1; the Morpho singleton's 5 in Aave are B's, counted once.
    assert exposure["collateral_amount"] == 6 * E18
    assert exposure["chained_collateral_usd"] == pytest.approx(10_000.0)
    assert exposure["double_counted_usd"] == pytest.approx(10_000.0)  # what a plain sum over positions adds


def test_prices_derive_through_the_graph_and_debt_is_backed_by_collateral(leg_frame: pl.DataFrame) -> None:
    prices = usd_prices(POSITIONS, LINKS)
    assert prices["0xst"] == pytest.approx(2000.0)  # no position holds stETH: wstETH's price over its rate
    exposure = base_asset_exposure(leg_frame, POSITIONS, LINKS, prices)
    backed = dict(exposure.select("base_symbol", "backed_debt_usd").iter_rows())
    # A's 16,000 of WETH debt is backed by stETH; B's 8,000 and D's 1,500 USDC by WETH; C's 90 DAI by USDC.
    assert backed["stETH"] == pytest.approx(16_000.0)
    assert backed["WETH"] == pytest.approx(9_500.0)
    assert backed["USDC"] == pytest.approx(90.0)


def test_wallet_view_loops_and_combined_health(leg_frame: pl.DataFrame) -> None:
    risk = pl.DataFrame(
        {
            "chain_id": [1, 1],
            "wallet": ["0xa", "0xa"],
            "collateral_usd": [22_000.0, 1000.0],
            "liquidation_threshold_bps": [9300, 8000],
            "debt_usd": [16_000.0, 0.0],
            "health_factor": [1.27875, None],
        }
    )
    view = wallet_lookthrough(leg_frame, risk).filter(pl.col("wallet") == "0xa").row(0, named=True)
    assert view["loop_group"] == "ETH"
    assert view["loop_leverage"] == pytest.approx(22_000 / (22_000 - 16_000))
    assert view["combined_health_factor"] == pytest.approx((22_000 * 0.93 + 1000 * 0.8) / 16_000)
    by_base = wallet_exposure(leg_frame).filter(pl.col("wallet") == "0xa")
    assert dict(by_base.select("base_symbol", "net_amount").iter_rows()) == {"stETH": 11 * E18, "WETH": -8 * E18}


def test_an_exact_sum_that_could_pass_38_digits_is_unknown_not_wrapped_around() -> None:
    """Two wallets each posting 9e37 units of an odd token (each a HUGEINT, the pair past 2^127, where polars'
    Int128 sum wraps around to a negative figure): the chain-wide collateral amount is unknown (NULL), its USD still
    summed; a wallet's own sums that fit stay exact."""
    odd = Token("0xodd", "ODD", 0)
    big = 9 * 10**37
    rows = [_row("morpho-blue", "m9", wallet, odd, supplied=big, collateral=big) for wallet in ("0xe", "0xf")]
    book = pl.DataFrame(
        [*rows, _row("morpho-blue", "m9", "0xe", USDC, debt=E6)],
        schema_overrides={c: pl.Int128 for c in ("supplied_amount", "collateral_amount", "debt_amount")},
    ).with_columns(
        pl.when(pl.col("asset") == odd.address).then(1e-30).otherwise(pl.col("price_usd")).alias("price_usd")
    )
    frame = valued(legs(book, {}, rate_converter({})), usd_prices(book, {}))
    assert int(pl.Series([big, big], dtype=pl.Int128).sum()) < 0  # what a plain sum would have stored
    exposure = base_asset_exposure(frame, book, {}, usd_prices(book, {}))
    row = exposure.filter(pl.col("base_asset") == odd.address).row(0, named=True)
    assert row["collateral_amount"] is None and row["collateral_usd"] == pytest.approx(2 * big * 1e-30)
    wallets = wallet_exposure(frame).filter(pl.col("base_asset") == odd.address)
    assert wallets["long_amount"].to_list() == [big, big] and wallets["net_amount"].to_list() == [big, big]
