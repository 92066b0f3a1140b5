"""Historical replays: price paths from the real data, and the prediction at every step against the devnet."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from chainrisk.risk.calibration import CalibrationError
from chainrisk.risk.replay import WINDOWS, price_path, replay, window, worst_points
from chainrisk.rpc import RpcClient
from chainrisk.scoring.health import stress
from chainrisk.store.db import LATEST_POSITIONS, Store
from chainrisk.units import WAD
from tests.chainops import (
    aave_health,
    block_timestamp,
    borrowers,
    feed_answers,
    liquidate_aave_fully,
    liquidate_morpho_fully,
    morpho_unhealthy,
    sandbox,
    set_feeds,
)


@pytest.fixture(scope="module")
def positions(scored_db: Path) -> pl.DataFrame:
    with Store(scored_db) as store:
        return store.query(LATEST_POSITIONS)


@pytest.fixture(scope="module")
def wrapped_series(positions: pl.DataFrame, devnet: dict[str, Any]) -> dict[str, str]:
    """Morpho collateral that wraps a base asset (Aave's aWETH, the cvUSDC vault's shares) replayed on its base's
    series: their oracles read the base's feed (times the vault's rate), so the chain moves them with it. Looking
    through the wrappers themselves is chainrisk.chains' work, not the replay's."""
    bases = {r["a_token"].lower(): s for s, r in devnet["aave_v3"]["reserves"].items()}
    bases |= {
        w["address"].lower(): w["underlying_symbol"] for w in devnet["wrappers"].values() if w["kind"] == "erc4626"
    }
    held = positions.select("asset", "symbol").unique().iter_rows()
    return {symbol: bases[asset.lower()] for asset, symbol in held if asset.lower() in bases}


def test_named_windows_start_at_one_and_reach_the_known_lows() -> None:
    symbols = ["WETH", "wstETH", "WBTC", "USDC"]
    lows: dict[str, float] = {}
    for name, win in WINDOWS.items():
        path = price_path(symbols, win)
        first = path.at(0)
        assert first["multiplier"].to_list() == pytest.approx([1.0] * len(symbols), abs=1e-12)
        assert path.steps == (win.end - win.start).total_seconds() // 3600 + 1
        lows[name] = float(path.frame.filter(pl.col("symbol") == "WETH")["multiplier"].to_numpy().min())
    # ETH's fall from each window's start to its trough in the hourly data (CoinGecko via bhemen/aave-data).
    assert 0.40 < lows["may-2021"] < 0.50 and 0.55 < lows["luna-2022"] < 0.7
    assert 0.45 < lows["steth-2022"] < 0.55 and 0.6 < lows["ftx-2022"] < 0.7
    # stETH has no usable quotes in May 2021: ETH stands in, said in the notes.
    may = price_path(symbols, WINDOWS["may-2021"])
    assert may.series["wstETH"] == "WETH" and "wstETH" in may.notes[0]
    steth = price_path(symbols, WINDOWS["steth-2022"]).frame.pivot(on="symbol", index="step", values="multiplier")
    assert float((steth["wstETH"] / steth["WETH"]).to_numpy().min()) < 0.97  # the June 2022 discount is in the path


def test_user_windows_and_overrides() -> None:
    win = window(None, "2022-01-20", "2022-01-25")
    assert win.name == "2022-01-20..2022-01-25"
    path = price_path(["ABC"], win, step_hours=6, overrides={"ABC": "LINK"})
    assert path.series == {"ABC": "LINK"} and path.steps == 21
    for args, message in (
        (("nope", None, None), "unknown window"),
        ((None, "2022-01-25", "2022-01-20"), "before it starts"),
        ((None, "2019-01-01", "2019-02-01"), "outside them"),
        ((None, "yesterday", "2022-01-01"), "not a date"),
        ((None, "2022-01-01", None), "both a start and an end"),
    ):
        with pytest.raises(CalibrationError, match=message):
            window(*args)
    with pytest.raises(CalibrationError, match="no price series"):
        price_path(["ABC"], win)


def test_replay_steps_are_the_engine_at_each_steps_prices(
    positions: pl.DataFrame, wrapped_series: dict[str, str]
) -> None:
    result = replay(positions, WINDOWS["ftx-2022"], step_hours=24, overrides=wrapped_series)
    assert result.path.steps == 11
    for step in (0, 5, 10):
        health = stress(positions, result.path.at(step)).filter(pl.col("debt_usd") > 0)
        rows = result.steps.filter((pl.col("step") == step) & (pl.col("scope") == "market"))
        expected = health.group_by("protocol", "market").agg(
            pl.col("liquidatable").sum().alias("n"), pl.col("bad_debt_usd").sum().alias("bad")
        )
        joined = rows.join(expected, on=["protocol", "market"])
        assert joined.height == rows.height == expected.height
        assert (joined["liquidatable_wallets"] == joined["n"]).all()
        assert ((joined["bad_debt_usd"] - joined["bad"]).abs() <= 1e-6 * (1 + joined["bad"].abs())).all()
    total = result.steps.filter(pl.col("scope") == "total").sort("step")
    per_market = result.steps.filter(pl.col("scope") == "market").group_by("step").agg(pl.col("debt_usd").sum())
    assert (
        total.join(per_market, on="step").select((pl.col("debt_usd") - pl.col("debt_usd_right")).abs().max()).item()
        < 1e-3
    )
    # Every wallet counted liquidatable at a step has its first step at or before it.
    first = result.wallets.filter(pl.col("first_liquidatable_step").is_not_null())
    assert first.height == result.wallets.filter(pl.col("min_health_factor") < 1).height
    worst = worst_points(result.steps).filter((pl.col("scope") == "total") & (pl.col("worst_by") == "bad_debt_usd"))
    assert worst["bad_debt_usd"][0] == total["bad_debt_usd"].max()


def test_replay_agrees_with_the_chain_at_every_step(
    positions: pl.DataFrame, wrapped_series: dict[str, str], devnet: dict[str, Any], rpc: RpcClient
) -> None:
    """LUNA/UST May 2022 every 12 h, driven on the devnet's feeds (Morpho's oracles read the same feeds): at each
    step the wallets Aave's getUserAccountData and Morpho's health check call liquidatable are exactly the ones the
    replay predicts, and at the step with the most bad debt, liquidating everything on chain leaves per wallet the
    bad debt the replay predicted."""
    result = replay(positions, WINDOWS["luna-2022"], step_hours=12, overrides=wrapped_series)
    block = int(positions["block_number"].to_numpy().max())
    timestamp = block_timestamp(rpc, block)
    assert int(rpc.call("eth_blockNumber"), 16) == block, "the session devnet moved on from the scored block"
    answers = feed_answers(rpc, devnet)
    aave_wallets, morpho_borrowers = borrowers(positions)
    counts = []
    worst = int(
        result.steps.filter(pl.col("scope") == "total").sort("bad_debt_usd", "step", descending=[True, False])["step"][
            0
        ]
    )
    for step in range(result.path.steps):
        multipliers = dict(result.path.at(step).iter_rows())
        health = stress(positions, result.path.at(step)).filter(pl.col("debt_usd") > 0)
        predicted = health.filter(pl.col("liquidatable"))
        # The feed answers the replay implies: floor(answer x multiplier) in float64, as the engine shocks prices.
        shocked = {s: math.floor(float(a) * multipliers[s]) for s, a in answers.items() if s in multipliers}
        with sandbox(rpc):
            set_feeds(rpc, devnet, shocked, timestamp)
            chain_aave = {w for w, data in aave_health(rpc, devnet, aave_wallets).items() if data[5] < WAD}
            chain_morpho = morpho_unhealthy(rpc, devnet, morpho_borrowers)
            if step == worst:
                aave_bad = liquidate_aave_fully(rpc, devnet, sorted(chain_aave), timestamp)
                morpho_bad = liquidate_morpho_fully(rpc, devnet, sorted(chain_morpho), timestamp)
        ours_aave = set(predicted.filter(pl.col("protocol") == "aave-v3")["wallet"])
        ours_morpho = set(predicted.filter(pl.col("protocol") == "morpho-blue").select("market", "wallet").iter_rows())
        assert ours_aave == chain_aave, (step, sorted(ours_aave ^ chain_aave)[:5])
        assert ours_morpho == chain_morpho, (step, sorted(ours_morpho ^ chain_morpho)[:5])
        counts.append((len(chain_aave), len(chain_morpho)))
        if step == worst:
            check_bad_debt(health, aave_bad, morpho_bad, shocked, devnet)
    assert len(set(counts)) >= 3 and max(a for a, _ in counts) >= 10 and max(m for _, m in counts) >= 3, counts
    print(f"luna-2022 every 12 h: liquidatable (aave, morpho) per step equal on chain: {counts}; worst step {worst}")


def check_bad_debt(
    health: pl.DataFrame,
    aave_bad: dict[str, int],
    morpho_bad: dict[tuple[str, str], int],
    answers: dict[str, int],
    devnet: dict[str, Any],
) -> None:
    """Per wallet, the replay's bad debt equals what liquidating everything on chain leaves (USD; Aave's base
    currency has 8 decimals, Morpho's is booked in loan token units, valued at the shocked feed)."""
    markets = {m["market_id"]: m for m in devnet["morpho_blue"]["markets"]}
    decimals = {s: r["decimals"] for s, r in devnet["aave_v3"]["reserves"].items()}
    chain: dict[tuple[str, str, str], float] = {("aave-v3", "", w): v / 1e8 for w, v in aave_bad.items()}
    for (market, wallet), units in morpho_bad.items():
        loan = markets[market]["loan_symbol"]
        chain[("morpho-blue", market, wallet)] = units / 10 ** decimals[loan] * answers.get(loan, 0) / 1e8
    ours = {
        ("aave-v3", "", w) if p == "aave-v3" else (p, m, w): bad
        for p, m, w, bad in health.filter(pl.col("bad_debt_usd") > 0)
        .select("protocol", "market", "wallet", "bad_debt_usd")
        .iter_rows()
    }
    assert len(chain) >= 3, chain
    for key in set(ours) | set(chain):
        assert ours.get(key, 0.0) == pytest.approx(chain.get(key, 0.0), rel=1e-6, abs=0.01), key
    on_chain, predicted = sum(chain.values()), sum(ours.values())
    print(f"bad debt at the worst step: {len(chain)} wallets, ${on_chain:,.2f} on chain, ${predicted:,.2f} predicted")
