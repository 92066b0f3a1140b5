"""Parameter advice worth acting on: the liquidation backtest agrees with the engine where they meet, lags and delays
and depth do what they say, and proposals keep their promises (bounded steps, no raise that adds bad debt in the
backtest, LTV under LT, LT x bonus <= 100 %, reasons for each). Pure: no chain."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest

from chainrisk.chains.moves import AssetGraph
from chainrisk.jobs.risk import parameter_rules
from chainrisk.protocols.adapter import adapters
from chainrisk.protocols.compound_v3.normalise import liquidation_bonus_wad, recovery_wad
from chainrisk.risk.advice import Advice, AdviceSettings, advice_summary, advise, with_collateral_parameters
from chainrisk.risk.cascade import DepthCurve
from chainrisk.risk.liquidations import liquidate_along
from chainrisk.risk.replay import WINDOWS
from chainrisk.risk.var import build_book
from chainrisk.scoring.health import stress
from chainrisk.units import GOVERNED, IMMUTABLE, PER_MARKET

#: symbol -> (decimals, USD price)
TOKENS = {"WETH": (18, 2000.0), "LINK": (18, 7.0), "USDC": (6, 1.0), "aWETH": (18, 2000.0)}
DEEP = {s: DepthCurve(1e12) for s in TOKENS}


def position(
    wallet: str, market: str, symbol: str, collateral_usd: float, debt_usd: float, **params: int
) -> dict[str, Any]:
    decimals, price = TOKENS[symbol]
    return {
        "protocol": "aave-v3",
        "chain_id": 1,
        "market": market,
        "wallet": wallet,
        "asset": symbol,
        "symbol": symbol,
        "block_number": 10,
        "block_timestamp": 1_700_000_000,
        "decimals": decimals,
        "collateral_amount": int(collateral_usd / price * 10**decimals),
        "debt_amount": int(debt_usd / price * 10**decimals),
        "price": int(price * 1e8),
        "price_usd": price,
        "collateral_usd": collateral_usd,
        "debt_usd": debt_usd,
        "emode_category": 0,
        "liquidation_threshold_bps": params.get("lt", 8000),
        "ltv_bps": params.get("ltv", 7500),
        "liquidation_bonus_bps": params.get("bonus", 10500),
    }


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows).with_columns(pl.col("collateral_amount", "debt_amount").cast(pl.Int128))


def one_borrower(health: float = 1.0667) -> pl.DataFrame:
    """10 WETH ($20,000) at an 80 % threshold against USDC debt at the given health factor."""
    return frame(
        [position("0xa", "0xm", "WETH", 20_000.0, 0.0), position("0xa", "0xm", "USDC", 0.0, 16_000.0 / health)]
    )


def path_of(weth: list[float]) -> tuple[np.ndarray, tuple[str, ...]]:
    assets = ("USDC", "WETH")
    return np.array([[1.0, m] for m in weth]), assets


def test_a_gap_leaves_the_engines_bad_debt() -> None:
    """WETH -30 % in one hour: the liquidation takes all the collateral and leaves debt - collateral / bonus, the
    engine's bad debt at that price."""
    positions = one_borrower()
    path, assets = path_of([1.0, 0.7, 0.7])
    book = build_book(positions, {s: s for s in assets}, assets)
    outcome = liquidate_along(book, path, {}, DEEP, oracle_lag_hours=0, delay_hours=0)
    engine = stress(positions, pl.DataFrame({"symbol": ["WETH"], "multiplier": [0.7]}))
    assert outcome.liquidations == 1 and outcome.liquidated_wallets == 1
    assert engine["bad_debt_usd"][0] > 1_000
    assert outcome.bad_debt_usd == pytest.approx(engine["bad_debt_usd"][0], rel=1e-6)


def test_a_slow_fall_is_liquidated_in_time() -> None:
    """Half the debt repaid at HF 0.96 (the close factor), which lifts the position to HF 1.08; a further fall
    liquidates half of what is left; no bad debt while the bonus holds."""
    assets = ("USDC", "WETH")
    book = build_book(one_borrower(), {s: s for s in assets}, assets)
    once, _ = path_of([1.0, 0.9, 0.9])
    first = liquidate_along(book, once, {}, DEEP, oracle_lag_hours=0, delay_hours=0)
    assert first.liquidations == 1 and first.liquidated_debt_usd == pytest.approx(15_000 / 2, rel=1e-4)
    slow, _ = path_of([1.0, 0.9, 0.88, 0.86, 0.84, 0.82, 0.8])
    outcome = liquidate_along(book, slow, {}, DEEP, oracle_lag_hours=0, delay_hours=0)
    assert outcome.liquidations == 2 and outcome.bad_debt_usd == 0
    assert outcome.liquidated_debt_usd == pytest.approx(15_000 * 3 / 4, rel=1e-3)


def test_delay_lag_and_depth() -> None:
    assets = ("USDC", "WETH")
    book = build_book(one_borrower(), {s: s for s in assets}, assets)
    # Back above the line before liquidators come: nothing happens.
    dip, _ = path_of([1.0, 0.9, 1.0, 1.0])
    assert liquidate_along(book, dip, {}, DEEP, 0, 0).liquidations == 1
    assert liquidate_along(book, dip, {}, DEEP, 0, 1).liquidations == 0
    # The oracle trails by an hour: the liquidation comes an hour later, at a lower market price and still profitable.
    fall, _ = path_of([1.0, 1.0, 0.9, 0.9, 0.9])
    lagged = liquidate_along(book, fall, {}, DEEP, 1, 0)
    assert lagged.liquidations == 1
    # Depth so thin that selling the seized WETH costs more than the 5 % bonus: nobody liquidates, and the position,
    # underwater at the end, is counted as bad debt.
    thin = {"WETH": DepthCurve(10.0), "USDC": DepthCurve(1e12)}
    crash, _ = path_of([1.0, 0.7, 0.7])
    stuck = liquidate_along(book, crash, {}, thin, 0, 0)
    assert stuck.liquidations == 0 and stuck.skipped == 2
    assert stuck.bad_debt_usd == pytest.approx(15_000 - 14_000, rel=1e-3)


def test_parameters_change_only_where_asked() -> None:
    in_emode = position("0xc", "0xm", "WETH", 20_000.0, 0.0) | {"emode_category": 1}
    rows = frame(
        [
            position("0xa", "0xm", "WETH", 20_000.0, 0.0),
            position("0xa", "0xm", "USDC", 0.0, 10_000.0),
            position("0xb", "0xn", "WETH", 20_000.0, 0.0),
            in_emode,  # the e-mode category's own parameters apply to it
        ]
    )
    changed = with_collateral_parameters(rows, ("aave-v3", 1, "0xm"), "WETH", 8550, 8200, 10600)
    assert changed.schema == rows.schema
    assert changed["liquidation_threshold_bps"].to_list() == [8550, 8000, 8000, 8000]
    assert changed["ltv_bps"].to_list() == [8200, 7500, 7500, 7500]
    assert changed["liquidation_bonus_bps"].to_list() == [10600, 10500, 10500, 10500]


def book_for_advice() -> pl.DataFrame:
    """Three markets: WETH and LINK collateral against USDC at health factors from 1.01 to 1.6; LINK at a threshold far
    above what its moves allow (93 %); LINK at one Aave would refuse (97 % x 1.07 > 100 %)."""
    rng = np.random.default_rng(3)
    rows = []
    for k in range(80):
        health = float(rng.uniform(1.01, 1.6))
        symbol, lt = ("WETH", 8300) if k % 2 else ("LINK", 6800)
        size = float(rng.uniform(5e3, 5e5))
        rows.append(
            position(f"0x{k:02x}", "0xm", symbol, size, 0.0, lt=lt, ltv=lt - 300, bonus=10500 + 200 * (k % 2 == 0))
        )
        rows.append(position(f"0x{k:02x}", "0xm", "USDC", 0.0, size * lt / 1e4 / health))
    for k in range(10):
        for market, lt in (("0xn", 9300), ("0xo", 9700)):
            rows.append(position(f"0xb{k}", market, "LINK", 10_000.0, 0.0, lt=lt, ltv=9000, bonus=10700))
            rows.append(position(f"0xb{k}", market, "USDC", 0.0, lt / (1.02 if k < 4 else 1.4)))
    return frame(rows)


@pytest.fixture(scope="module")
def advice() -> Advice:
    return advise(book_for_advice(), [WINDOWS["luna-2022"], WINDOWS["ftx-2022"]], AdviceSettings())


def test_proposals_keep_their_promises(advice: Advice) -> None:
    settings = AdviceSettings()
    suggestions, details, backtest = advice.suggestions, advice.advice, advice.backtest
    rows = suggestions.join(details, on=["protocol", "chain_id", "market", "symbol"])
    assert rows.height == 4
    for row in rows.iter_rows(named=True):
        assert row["lt_change_bps"] % 50 == 0
        assert abs(row["lt_change_bps"]) <= settings.max_change_bps or row["market"] == "0xo"
        assert row["suggested_ltv_bps"] <= row["suggested_lt_bps"]
        assert row["suggested_lt_bps"] * row["suggested_bonus_bps"] <= 1e8 + 5_000  # percentMul(LT, bonus) <= 100 %
        assert row["reasons"].count(";") >= 3  # bonus, LT, LTV and cap each say why
        mine = backtest.filter((pl.col("market") == row["market"]) & (pl.col("symbol") == row["symbol"]))
        now, then = (mine.filter(pl.col("variant") == v).sort("window_name") for v in ("current", "proposed"))
        assert now["window_name"].to_list() == ["ftx-2022", "luna-2022"]
        if row["lt_change_bps"] > 0:  # never a raise that adds bad debt in any window
            assert (then["bad_debt_usd"] <= now["bad_debt_usd"] + 1.0).all()
            assert "adds no bad debt" in row["reasons"]
        assert row["bad_debt_proposed_usd"] == pytest.approx(then["bad_debt_usd"].sum())
    lowered = rows.filter(pl.col("market") == "0xn").row(0, named=True)
    assert lowered["suggested_lt_bps"] == 9000 and "in steps of at most 300 bps" in lowered["reasons"]
    # The lowered threshold's positions: the engine's count of the newly liquidatable at today's prices.
    market = book_for_advice().filter(pl.col("market") == "0xn")
    variant = with_collateral_parameters(market, ("aave-v3", 1, "0xn"), "LINK", 9000, 9000, 10700)
    assert lowered["newly_liquidatable_wallets"] == int(stress(variant)["liquidatable"].sum()) > 0
    assert lowered["cap_multiple"] <= 2.0
    refused = rows.filter(pl.col("market") == "0xo").row(0, named=True)
    assert refused["suggested_lt_bps"] == 9300 and "at once" in refused["reasons"]


def test_a_raise_that_adds_bad_debt_is_refused() -> None:
    """WETH loans right at the line through May 2021's hourly crash: a higher threshold leaves less room for the
    bonus, so the backtest refuses the raise and the reason names the window."""
    rows = []
    for k in range(60):
        health = 1.005 + 0.002 * k
        rows.append(position(f"0x{k:02x}", "0xm", "WETH", 100_000.0, 0.0, lt=8300, ltv=8000, bonus=10700))
        rows.append(position(f"0x{k:02x}", "0xm", "USDC", 0.0, 83_000.0 / health))
    settings = AdviceSettings(oracle_lag_hours=0, liquidation_delay_hours=1)
    advice = advise(frame(rows), [WINDOWS["may-2021"]], settings)
    row = advice.suggestions.join(advice.advice, on=["protocol", "chain_id", "market", "symbol"]).row(0, named=True)
    assert row["lt_ceiling_bps"] > 8300 + settings.max_change_bps  # the tail move alone would allow a raise
    assert row["suggested_lt_bps"] == 8300 and "raising it to 86.00 % adds $" in row["reasons"]
    assert "of bad debt in may-2021" in row["reasons"]
    tried = advise(
        frame(rows).with_columns(pl.lit(8600).alias("liquidation_threshold_bps")), [WINDOWS["may-2021"]], settings
    )
    assert tried.advice["bad_debt_current_usd"][0] > row["bad_debt_current_usd"] + 1


def test_wrapped_collateral_is_advised_on_its_base_and_the_summary_reads(advice: Advice) -> None:
    rows = [position("0xa", "0xw", "aWETH", 50_000.0, 0.0), position("0xa", "0xw", "USDC", 0.0, 30_000.0)]
    graph = AssetGraph({"aWETH": "WETH"})
    wrapped = advise(frame(rows), [WINDOWS["ftx-2022"]], AdviceSettings(), graph)
    unwrapped = [position("0xa", "0xw", "WETH", 50_000.0, 0.0), rows[1]]
    plain = advise(frame(unwrapped), [WINDOWS["ftx-2022"]])
    assert wrapped.suggestions["tail_move"][0] == pytest.approx(plain.suggestions["tail_move"][0])
    assert wrapped.advice["venue"][0] == "WETH"
    lines = advice_summary(advice, {("aave-v3", 1, "0xm"): "Aave V3 test"})
    assert lines[0].startswith("parameter advice (LT: the 99.9% 2 h move")
    assert any(line.startswith("  Aave V3 test · LINK: LT 68.00 % -> ") for line in lines)
    assert lines[-1].startswith("  every proposal at once, whole book: bad debt $")


def _one_collateral_market(protocol: str, lt: int, bonus: int, health_low: float) -> pl.DataFrame:
    """WETH against USDC at threshold `lt` and bonus `bonus`, 30 borrowers from `health_low` up, in `protocol`."""
    rows = []
    for k in range(30):
        health = health_low + 0.02 * k
        size = 20_000.0 + 1_000.0 * k
        collateral = position(f"0x{k:02x}", "0xp", "WETH", size, 0.0, lt=lt, ltv=lt, bonus=bonus)
        debt = position(f"0x{k:02x}", "0xp", "USDC", 0.0, size * lt / 1e4 / health, lt=0, ltv=0, bonus=bonus)
        rows += [collateral | {"protocol": protocol}, debt | {"protocol": protocol}]
    return frame(rows)


#: LLTVs other markets of the same Morpho use (each one governance enabled: createMarket requires isLltvEnabled).
OTHER_LLTVS = (3850, 6250, 7700, 8600, 9150, 9650, 9800)


def _with_other_markets(rows: pl.DataFrame, lltvs: tuple[int, ...] = OTHER_LLTVS) -> pl.DataFrame:
    """`rows` and, on the same deployment, one small WETH market without debt at each of `lltvs`."""
    morpho = adapters()["morpho-blue"]
    others = [
        position("0xff", f"0xm{lltv}", "WETH", 1_000.0, 0.0, lt=lltv, ltv=lltv, bonus=morpho.bonus_of_threshold(lltv))
        | {"protocol": "morpho-blue"}
        for lltv in lltvs
    ]
    return pl.concat([rows, frame(others)], how="diagonal_relaxed")


def _advice_of(advice: Advice, market: str = "0xp") -> dict[str, Any]:
    joined = advice.suggestions.join(advice.advice, on=["protocol", "chain_id", "market", "symbol"])
    return joined.filter(pl.col("market") == market).row(0, named=True)


def test_a_morpho_market_is_advised_as_a_new_market_with_the_incentive_its_lltv_gives() -> None:
    """A market's LLTV never changes and Morpho derives the incentive from it: the advice proposes another market's
    LLTV, one governance has enabled (another market of the deployment uses it), at once, with that LLTV's own
    incentive (in the backtest too), never a bonus of its own."""
    rules = parameter_rules()
    morpho = adapters()["morpho-blue"]
    assert rules["morpho-blue"].changes == PER_MARKET and not rules["morpho-blue"].collateral_cap
    assert morpho.bonus_of_threshold(8600) == 10438  # Morpho.liquidate: 1 / (1 - 0.3 x (1 - 0.86)) = 1.04384...
    lltv = 9450
    rows = _with_other_markets(_one_collateral_market("morpho-blue", lltv, morpho.bonus_of_threshold(lltv), 1.05))
    settings = AdviceSettings(rules=rules)
    row = _advice_of(advise(rows, [WINDOWS["ftx-2022"]], settings))
    proposed = row["suggested_lt_bps"]
    assert proposed < lltv - settings.max_change_bps  # a new market: not a governance step
    assert proposed == row["lt_ceiling_bps"] == row["suggested_ltv_bps"]
    assert proposed in OTHER_LLTVS  # never an LLTV no market could be created at
    assert row["suggested_bonus_bps"] == morpho.bonus_of_threshold(proposed) > morpho.bonus_of_threshold(lltv)
    # The ceiling is the highest enabled LLTV whose own incentive the tail move and the slippage cover.
    covered = 1e4 * (1 + row["tail_move"]) * (1 - row["concentration_slippage"])
    assert proposed * morpho.bonus_of_threshold(proposed) <= covered * 1e4
    above = min(c for c in OTHER_LLTVS if c > proposed)
    assert above * morpho.bonus_of_threshold(above) > covered * 1e4
    assert row["suggested_bonus_bps"] >= row["bonus_floor_bps"]  # and it still pays for the oracle's lag
    assert "at an LLTV governance has enabled, one a market of this deployment uses" in row["reasons"]
    # With no other market on the deployment, nothing may be proposed: no LLTV is known to be enabled.
    alone = _advice_of(
        advise(
            _one_collateral_market("morpho-blue", lltv, morpho.bonus_of_threshold(lltv), 1.05),
            [WINDOWS["ftx-2022"]],
            settings,
        )
    )
    assert alone["suggested_lt_bps"] == lltv
    assert "no enabled LLTV in use is that low (lowest 94.50 %)" in alone["reasons"]
    # A raise keeps the step: at 77 % with 86 % allowed, the next LLTV in use is 900 bps up, and the reason says so.
    low = _with_other_markets(_one_collateral_market("morpho-blue", 7700, morpho.bonus_of_threshold(7700), 1.3))
    raised = _advice_of(advise(low, [WINDOWS["ftx-2022"]], settings))
    assert raised["lt_ceiling_bps"] >= 8600 and raised["suggested_lt_bps"] == 7700
    assert "but the next enabled LLTV in use, 86.00 %, is more than 300 bps up" in raised["reasons"]


def test_a_morpho_lltv_is_raised_only_while_its_incentive_covers_the_oracle_lag() -> None:
    """A higher LLTV pays a lower incentive: with a 3-hour oracle lag the incentive must cover a larger lag move, and
    that floor, not the tail move, stops the ceiling."""
    morpho = adapters()["morpho-blue"]
    # Every LLTV on a 50-bps grid enabled (a market uses each), so the ceiling is found to the grid's step.
    grid = tuple(range(5000, 10_000, 50))
    rows = _with_other_markets(_one_collateral_market("morpho-blue", 8600, morpho.bonus_of_threshold(8600), 1.3), grid)
    for lag in (1, 3):
        advice = advise(rows, [WINDOWS["ftx-2022"]], AdviceSettings(rules=parameter_rules(), oracle_lag_hours=lag))
        row = _advice_of(advice)
        covered = 1e4 * 1e4 * (1 + row["tail_move"]) * (1 - row["concentration_slippage"])
        ceiling, floor = row["lt_ceiling_bps"], row["bonus_floor_bps"]

        def fits(lltv: int, floor: float = floor, covered: float = covered) -> bool:
            return lltv * morpho.bonus_of_threshold(lltv) <= covered and morpho.bonus_of_threshold(lltv) >= floor

        assert fits(ceiling) and not fits(ceiling + 50)
        by_tail_alone = max(c for c in grid if c * morpho.bonus_of_threshold(c) <= covered)
        if lag == 3:
            assert ceiling < by_tail_alone  # the incentive's floor binds
        assert row["suggested_lt_bps"] <= ceiling


def test_an_immutable_protocol_gets_nothing_proposed() -> None:
    """Liquity V1 has no governance: its troves' threshold (1 / MCR) stays whatever the tail moves allow, and the
    backtest's proposed side is today's."""
    rules = parameter_rules()
    assert rules["liquity-v1"].changes == IMMUTABLE
    assert rules["aave-v3"].changes == GOVERNED and rules["aave-v3"].collateral_cap
    rows = _one_collateral_market("liquity-v1", 9090, 10050, 1.01)
    settings = AdviceSettings(rules=rules)
    advice = advise(rows, [WINDOWS["ftx-2022"]], settings)
    row = advice.suggestions.join(advice.advice, on=["protocol", "chain_id", "market", "symbol"]).row(0, named=True)
    assert (row["suggested_lt_bps"], row["suggested_ltv_bps"], row["suggested_bonus_bps"]) == (9090, 9090, 10050)
    assert "cannot change (the protocol has no governance)" in row["reasons"]
    mine = advice.backtest.filter(pl.col("symbol") == "WETH").sort("window_name")
    now, then = (mine.filter(pl.col("variant") == v) for v in ("current", "proposed"))
    assert then.drop("variant").equals(now.drop("variant"))
    # The same book, governed: the 0.5 % reward is far from covering the oracle's lag, so a raise is proposed.
    governed = advise(rows.with_columns(pl.lit("aave-v3").alias("protocol")), [WINDOWS["ftx-2022"]], settings)
    assert governed.advice["suggested_bonus_bps"][0] > 10050 and row["bonus_floor_bps"] > 10050
    assert "bonus 0.50 % is the protocol's constant: it falls short of" in row["reasons"]
    line = advice_summary(advice, {}, settings)[1]
    assert "WETH: immutable, nothing to propose: LT 90.90 % · bonus 0.50 % · depth absorbs $" in line


def test_an_ltv_switched_off_stays_off() -> None:
    """An LTV of 0 is governance's way to wind an asset down (it backs existing debt, no new borrowing): a tail move
    that would allow one is no reason to switch borrowing back on."""
    rows = one_borrower(1.3).with_columns(
        pl.when(pl.col("symbol") == "WETH").then(0).otherwise(pl.col("ltv_bps")).alias("ltv_bps")
    )
    advice = advise(rows, [WINDOWS["ftx-2022"]])
    row = advice.suggestions.join(advice.advice, on=["protocol", "chain_id", "market", "symbol"]).row(0, named=True)
    assert row["current_ltv_bps"] == row["suggested_ltv_bps"] == 0 and row["ltv_ceiling_bps"] > 0
    assert "LTV 0.00 % kept: borrowing against it is switched off" in row["reasons"]


def test_a_comet_ltv_stays_below_its_threshold() -> None:
    """Comet refuses a borrow collateral factor that is not below the liquidation one (BorrowCFTooLarge): where the
    move alone would let the LTV reach the threshold, a Compound V3 LTV stops a step under it; Aave's may equal it."""
    rules = parameter_rules()
    assert rules["compound-v3"].ltv_below_threshold and not rules["aave-v3"].ltv_below_threshold
    # WETH lent against WETH: no move between them, so the move alone would let the LTV reach the threshold.
    rows = frame(
        [
            position(f"0x{k:02x}", "0xp", "WETH", 20_000.0, 20_000.0 * 0.95 / (1.2 + 0.01 * k), lt=9500, ltv=9400)
            | {"protocol": "compound-v3"}
            for k in range(10)
        ]
    )
    settings = AdviceSettings(rules=rules)
    comet = advise(rows, [WINDOWS["ftx-2022"]], settings).suggestions.row(0, named=True)
    aave = advise(rows.with_columns(pl.lit("aave-v3").alias("protocol")), [WINDOWS["ftx-2022"]], settings)
    assert comet["suggested_ltv_bps"] == comet["suggested_lt_bps"] - 50
    assert aave.suggestions["suggested_ltv_bps"][0] == aave.suggestions["suggested_lt_bps"][0]


def test_a_penalty_is_not_a_keepers_bonus_in_the_advice() -> None:
    """Maker's chop is the Vow's penalty (the Clipper's falling price pays keepers): the advice never moves it for
    lag or slippage, and the threshold's ceiling is the move and the slippage alone, not over the penalty."""
    rules = parameter_rules()
    assert rules["maker"].bonus_is_penalty and not rules["aave-v3"].bonus_is_penalty
    rows = _one_collateral_market("maker", 6896, 11300, 1.05)
    settings = AdviceSettings(rules=rules)
    advice = advise(rows, [WINDOWS["ftx-2022"]], settings)
    row = _advice_of(advice)
    assert row["suggested_bonus_bps"] == 11300
    covered = 1e4 * (1 + row["tail_move"]) * (1 - row["concentration_slippage"])
    assert row["lt_ceiling_bps"] == math.floor(covered / 50 + 1e-9) * 50 > covered / 1.13
    assert "penalty 13.00 % kept: it is the protocol's penalty on the debt, not a keeper's cut" in row["reasons"]
    assert "penalty 13.00 % kept" in advice_summary(advice, {}, settings)[1]
    # The same book read as Aave's: the bonus is a liquidator's, the ceiling lies under the move by the bonus.
    aave = _advice_of(advise(rows.with_columns(pl.lit("aave-v3").alias("protocol")), [WINDOWS["ftx-2022"]], settings))
    assert aave["lt_ceiling_bps"] < row["lt_ceiling_bps"]


@pytest.mark.parametrize(("factor", "store_front"), [(93 * 10**16, 5 * 10**17), (80 * 10**16, 2 * 10**17)])
def test_comets_buyers_get_the_store_fronts_share_of_the_bonus(factor: int, store_front: int) -> None:
    """Comet credits the borrower liquidationFactor of the collateral and sells it at the store front for
    1 - storeFrontPriceFactor x (1 - liquidationFactor): buyers, who must cover the lag and the slippage, get half of
    a 7.53 % bonus at a factor of 0.5, and the sale recovers 96.5 % towards the debt, which sets the threshold's
    ceiling. Aave's percentMul(LT, bonus) <= 100 % is no rule of Comet's Configurator: at a liquidationFactor of 0.8
    and a storeFrontPriceFactor of 0.2 the sale recovers 96 % and the ceiling passes 80 %."""
    share = store_front / 1e18
    bonus_wad, recovery = liquidation_bonus_wad(factor), recovery_wad(store_front, factor)
    bonus = round(bonus_wad / 10**14)
    rows = _one_collateral_market("compound-v3", 8500 if factor > 85 * 10**16 else 7500, bonus, 1.05).with_columns(
        pl.lit(bonus_wad, pl.Int128).alias("liquidation_bonus_wad"),
        pl.when(pl.col("liquidation_threshold_bps") > 0)
        .then(pl.lit(recovery, pl.Int128))
        .otherwise(None)
        .alias("liquidation_recovery_wad"),
    )
    for lag in (1, 6):
        settings = AdviceSettings(rules=parameter_rules(), oracle_lag_hours=lag)
        row = _advice_of(advise(rows, [WINDOWS["ftx-2022"]], settings))
        new_bonus = row["suggested_bonus_bps"]
        buyers = 1e4 / (1 - share * (1 - 1e4 / new_bonus)) - 1e4
        passed_on = f"buyers get {buyers / 100:.2f} % at the store front, {share * 100:.2f} % of its discount"
        assert passed_on in row["reasons"]
        kept = 1 - share * (1 - factor / 1e18)  # what the sale recovers at the kept bonus: 96.5 % at 0.93 and 0.5
        # The bonus is raised exactly when the buyers' 1 / 0.965 falls short of the floor, to one whose buyers' share
        # covers it (within the 25-bps grid and the step cap).
        assert (new_bonus > bonus) == (row["bonus_floor_bps"] > 1e4 / kept)
        if new_bonus > bonus:
            buyers = 1e4 / (1 - share * (1 - 1e4 / new_bonus))
            assert buyers >= row["bonus_floor_bps"] or new_bonus == bonus + settings.max_change_bps
        covered = 1e4 * (1 + row["tail_move"]) * (1 - row["concentration_slippage"])
        at_new_bonus = 1 - share * (1 - 1e4 / new_bonus)
        assert row["lt_ceiling_bps"] == min(math.floor(covered * at_new_bonus / 50 + 1e-9) * 50, 10_000)
        if factor == 80 * 10**16 and lag == 1:
            assert row["lt_ceiling_bps"] > 10_000 * 10_000 // new_bonus
