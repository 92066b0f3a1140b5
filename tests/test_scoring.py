"""The health engine: tiny frames by hand, then its predictions checked on the devnet's own contracts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.rpc import RpcClient
from chainrisk.scoring.health import (
    apply_multipliers,
    liquidation_prices,
    prepare,
    stress,
    value_positions,
    wallet_health,
)
from chainrisk.scoring.snapshot import score_positions
from chainrisk.store.db import Store
from chainrisk.units import WAD
from tests.chainops import aave_health, sandbox, set_feeds


def _position(
    wallet: str,
    symbol: str,
    decimals: int,
    price_usd: float,
    collateral: float,
    debt: float,
    lt: int = 8250,
    ltv: int = 8000,
    bonus: int = 10500,
) -> dict[str, Any]:
    unit = 10**decimals
    return {
        "protocol": "aave-v3",
        "chain_id": 1,
        "market": "0xm",
        "wallet": wallet,
        "asset": "0x" + symbol.lower(),
        "symbol": symbol,
        "block_number": 10,
        "block_timestamp": 1000,
        "decimals": decimals,
        "collateral_amount": int(collateral * unit),
        "debt_amount": int(debt * unit),
        "price": int(price_usd * 10**8),
        "price_usd": price_usd,
        "liquidation_threshold_bps": lt,
        "ltv_bps": ltv,
        "liquidation_bonus_bps": bonus,
        "used_as_collateral": collateral > 0,
    }


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema_overrides={"collateral_amount": pl.Int128, "debt_amount": pl.Int128, "price": pl.Int128}
    )


def test_single_collateral_wallet_by_hand() -> None:
    positions = _frame([_position("0xa", "WETH", 18, 2000, 1, 0), _position("0xa", "USDC", 6, 1, 0, 1000)])
    valued = value_positions(positions)
    health = wallet_health(valued).collect()
    expected = pl.DataFrame(
        {
            "collateral_usd": [2000.0],
            "debt_usd": [1000.0],
            "health_factor": [1.65],
            "ltv_used": [0.5],
            "borrowing_power_usd": [600.0],
            "liquidatable": [False],
            "bad_debt_usd": [0.0],
        }
    )
    assert_frame_equal(health.select(expected.columns), expected)
    # 1 WETH at $2000 with an 82.5 % threshold against $1000: the drop that liquidates is 1 - 1000/1650.
    assert health["distance_to_liquidation"][0] == pytest.approx(1 - 1000 / 1650)
    prices = liquidation_prices(valued).collect().sort("symbol")
    assert prices["liquidated_when_price"].to_list() == ["rises above", "falls below"]  # USDC, WETH
    assert prices["liquidation_price_usd"][1] == pytest.approx(1000 / 0.825, rel=1e-12)
    assert prices["liquidation_price_usd"][0] == pytest.approx(1.65, rel=1e-12)


def test_distance_to_liquidation_is_0_when_liquidatable_and_unknown_when_no_drop_liquidates() -> None:
    """The uniform drop of non-stable collateral that brings HF to 1: 0 for a wallet liquidatable now (one with only
    stablecoin collateral was NULL), NULL where no drop liquidates it: its stablecoin collateral alone covers the debt
    (it read 1.0, "a 100 % drop"), or it holds none that moves (as before)."""
    rows = [
        _position("0xa", "WETH", 18, 2000, 1, 0),  # 1 - 1000 / 1650
        _position("0xa", "USDC", 6, 1, 0, 1000),
        _position("0xb", "USDC", 6, 1, 1000, 0),  # liquidatable on stablecoins alone
        _position("0xb", "DAI", 18, 1, 0, 900),
        _position("0xc", "USDC", 6, 1, 5000, 0),  # its USDC covers the debt whatever WETH does
        _position("0xc", "WETH", 18, 2000, 1, 0),
        _position("0xc", "DAI", 18, 1, 0, 1000),
        _position("0xd", "USDC", 6, 1, 5000, 0),  # healthy on stablecoins alone
        _position("0xd", "DAI", 18, 1, 0, 1000),
        _position("0xe", "WETH", 18, 2000, 1, 0),  # liquidatable with non-stable collateral
        _position("0xe", "USDC", 6, 1, 0, 1900),
    ]
    health = wallet_health(value_positions(_frame(rows))).collect().sort("wallet")
    distance = dict(zip(health["wallet"], health["distance_to_liquidation"], strict=True))
    assert distance["0xa"] == pytest.approx(1 - 1000 / 1650)
    assert (distance["0xb"], distance["0xe"]) == (0.0, 0.0)
    assert (distance["0xc"], distance["0xd"]) == (None, None)


def test_liquidation_mechanics_close_factor_and_bad_debt() -> None:
    rows = [
        # HF 0.96: close factor 50 %.
        _position("0xb", "WETH", 18, 1000, 1, 0, lt=8000),
        _position("0xb", "USDC", 6, 1, 0, 800 / 0.96),
        # HF 0.5 and collateral worth less than the debt: close factor 100 %, bad debt left over.
        _position("0xc", "WETH", 18, 1000, 1, 0, lt=8000, bonus=10500),
        _position("0xc", "USDC", 6, 1, 0, 1600),
    ]
    health = stress(_frame(rows), pl.DataFrame({"symbol": ["WETH"], "multiplier": [1.0]})).sort("wallet")
    assert health["close_factor"].to_list() == [0.5, 1.0]
    assert health["liquidatable"].to_list() == [True, True]
    assert health["liquidatable_debt_usd"][0] == pytest.approx(0.5 * 800 / 0.96)
    # Wallet c: at most 1000/1.05 of debt can be repaid against the collateral; the rest is bad debt.
    assert health["liquidatable_debt_usd"][1] == pytest.approx(1000 / 1.05)
    assert health["bad_debt_usd"][1] == pytest.approx(1600 - 1000 / 1.05)
    assert health["seizable_collateral_usd"][1] == pytest.approx(1000.0)


# -- against the chain --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored(scored_db: Path) -> dict[str, Any]:
    with Store(scored_db) as store:
        positions = store.query("SELECT * FROM positions WHERE protocol = 'aave-v3'")
        health = store.query("SELECT * FROM wallet_health WHERE protocol = 'aave-v3'")
    return {"db": scored_db, "positions": positions, "health": health, "block": int(positions["block_number"][0])}


@pytest.fixture()
def chain_sandbox(rpc: RpcClient) -> Iterator[RpcClient]:
    with sandbox(rpc):
        yield rpc


def test_engine_health_equals_each_protocols_own(scored: dict[str, Any]) -> None:
    """Aave and Morpho positions scored together: every HF equals the adapter's exact one (Aave's equals
    getUserAccountData, tests/test_index_aave.py; Morpho's equals blue-sdk and liquidate, test_index_morpho.py)."""
    with Store(scored["db"]) as store:
        positions = store.query("SELECT * FROM positions")
        health = store.query("SELECT * FROM wallet_health WHERE health_factor_wad IS NOT NULL")
    ours = score_positions(positions)["wallet_risk"].join(
        health.select("protocol", "market", "wallet", "health_factor_wad"), on=["protocol", "market", "wallet"]
    )
    exact = ours["health_factor_wad"].cast(pl.Float64) / 1e18
    assert ((ours["health_factor"] / exact - 1).abs() < 1e-9).all()
    assert ours.filter(pl.col("liquidatable") != (pl.col("health_factor_wad").cast(pl.Float64) < 1e18)).is_empty()
    assert set(ours["protocol"]) == {"aave-v3", "morpho-blue"}
    morpho = ours.filter(pl.col("protocol") == "morpho-blue")
    assert morpho.height >= 10 and (morpho["close_factor"] == 1.0).all()


def test_engine_health_equals_the_chain(scored: dict[str, Any]) -> None:
    frames = score_positions(scored["positions"])
    ours = frames["wallet_risk"].join(scored["health"].select("wallet", "health_factor_wad"), on="wallet")
    with_debt = ours.filter(pl.col("health_factor_wad").is_not_null())
    chain_hf = with_debt["health_factor_wad"].cast(pl.Float64) / 1e18
    assert ((with_debt["health_factor"] / chain_hf - 1).abs() < 1e-9).all()
    assert set(with_debt.filter(pl.col("liquidatable"))["wallet"]) == set(
        with_debt.filter(pl.col("health_factor_wad").cast(pl.Float64) < 1e18)["wallet"]
    )


SHOCKS: dict[str, dict[str, float | None]] = {
    "WETH -10 %": {"WETH": 0.9},
    "WETH -30 %": {"WETH": 0.7},
    "WBTC -50 %": {"WBTC": 0.5},
    "all crypto -25 %": {"WETH": 0.75, "wstETH": 0.75, "WBTC": 0.75, "LINK": 0.75},
    "USDC to 0.95": {"USDC": None},  # multiplier computed from the current price
    "wstETH -50 %": {"wstETH": 0.5},
}


@pytest.mark.parametrize("shock", list(SHOCKS))
def test_shock_predictions_match_the_chain(
    shock: str, scored: dict[str, Any], devnet: dict[str, Any], chain_sandbox: RpcClient
) -> None:
    positions: pl.DataFrame = scored["positions"]
    current = dict(positions.select("symbol", pl.col("price").cast(pl.Int64)).unique().iter_rows())
    multipliers = {s: (m if m is not None else 0.95e8 / current[s]) for s, m in SHOCKS[shock].items()}
    predicted = stress(positions, pl.DataFrame({"symbol": list(multipliers), "multiplier": list(multipliers.values())}))
    shocked = (
        apply_multipliers(
            prepare(positions), pl.DataFrame({"symbol": list(multipliers), "multiplier": list(multipliers.values())})
        )
        .select("symbol", pl.col("_price").cast(pl.Int64))
        .unique()
        .collect()
    )
    new_prices = {s: p for s, p in shocked.iter_rows() if s in multipliers}
    block = chain_sandbox.call("eth_getBlockByNumber", [hex(scored["block"]), False])
    set_feeds(chain_sandbox, devnet, new_prices, int(block["timestamp"], 16))
    wallets = predicted["wallet"].to_list()
    chain = aave_health(chain_sandbox, devnet, wallets)
    with_debt = predicted.filter(pl.col("health_factor").is_not_null())
    assert with_debt.height > 40
    for wallet, hf in with_debt.select("wallet", "health_factor").iter_rows():
        assert hf == pytest.approx(chain[wallet][5] / WAD, rel=1e-9), wallet
    assert set(with_debt.filter(pl.col("liquidatable"))["wallet"]) == {w for w in wallets if chain[w][5] < WAD}


def test_liquidation_prices_applied_on_chain_give_health_one(
    scored: dict[str, Any], devnet: dict[str, Any], rpc: RpcClient
) -> None:
    with duckdb.connect(str(scored["db"]), read_only=True) as con:
        rows = con.execute(
            "SELECT r.wallet, r.symbol, r.liquidation_price, r.liquidated_when_price, "
            "count(*) OVER (PARTITION BY r.wallet) AS n FROM position_risk r "
            "WHERE r.protocol = 'aave-v3' AND r.liquidation_price IS NOT NULL AND r.liquidation_price < 1e15 "
            "ORDER BY n DESC, r.wallet, r.symbol LIMIT 30"
        ).fetchall()
    assert len(rows) >= 20 and rows[0][4] >= 3  # multi-collateral wallets come first
    block = rpc.call("eth_getBlockByNumber", [hex(scored["block"]), False])

    def chain_hf(wallet: str, symbol: str, price: float) -> float:
        with sandbox(rpc):
            set_feeds(rpc, devnet, {symbol: round(price)}, int(block["timestamp"], 16))
            hf: float = aave_health(rpc, devnet, [wallet])[wallet][5] / WAD
        return hf

    steps = 0
    for wallet, symbol, price, when, _ in rows:
        hf = chain_hf(wallet, symbol, price)
        if abs(hf - 1) < 1e-6:
            continue
        # Aave floors the weighted average threshold to whole bps, so HF(price) is a staircase: where a step
        # jumps over 1 no price gives HF = 1, and the liquidation price is the step itself. Then the verdict
        # must flip within 1e-6 of it.
        steps += 1
        up, down = chain_hf(wallet, symbol, price * (1 + 1e-6)), chain_hf(wallet, symbol, price * (1 - 1e-6))
        safe, unsafe = (up, down) if when == "falls below" else (down, up)
        assert safe >= 1 > unsafe and abs(hf - 1) < 2e-4, (wallet, symbol, price, hf, up, down)
    assert steps <= len(rows) // 5, steps


def test_score_tables_are_written(scored: dict[str, Any]) -> None:
    with duckdb.connect(str(scored["db"]), read_only=True) as con:
        counts = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("wallet_risk", "position_risk", "liquidation_curve")
        }
        totals = con.execute(
            "SELECT drop, liquidatable_collateral_usd, liquidatable_wallets FROM liquidation_curve "
            "WHERE market = 'all' AND axis = 'all non-stable' ORDER BY drop"
        ).fetchall()
        positions = con.execute("SELECT count(*), count(DISTINCT (protocol, market, wallet)) FROM positions").fetchall()
    # Every wallet holding a position is scored per market (wallets that only called the pool hold none).
    assert counts["wallet_risk"] == positions[0][1]
    assert counts["position_risk"] == positions[0][0]
    assert len(totals) == 41 and totals[0][0] == 0 and totals[-1][0] == pytest.approx(0.9)
    wallets_at_risk = [t[2] for t in totals]
    assert wallets_at_risk == sorted(wallets_at_risk) and wallets_at_risk[-1] > wallets_at_risk[0]


def test_score_without_database_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chainrisk.cli", "score", "--db", str(tmp_path / "none.duckdb")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stderr.strip().startswith("chainrisk: error: no database")
