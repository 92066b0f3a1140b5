"""The engine's `collateral-ratio` rule (Liquity V1's ICR against MCR) on tiny frames built by the Liquity
normaliser: the verdict is exact at the line, survives a float tie, and shocks and liquidation prices follow
ICR = coll x price / debt."""

from __future__ import annotations

import polars as pl
import pytest

from chainrisk.protocols.liquity_v1.maths import MINUTE_DECAY_FACTOR, Params, System, Trove, dec_pow
from chainrisk.protocols.liquity_v1.normalise import contract_frames
from chainrisk.protocols.liquity_v1.snapshot import Deployment
from chainrisk.risk.advice import with_collateral_parameters
from chainrisk.risk.optimise import with_threshold_shift
from chainrisk.scoring.health import (
    BELOW_ONE,
    apply_multipliers,
    liquidation_prices,
    position_values,
    prepare,
    stress,
    wallet_health,
)

WAD = 10**18
MCR, CCR = 11 * 10**17, 15 * 10**17
PRICE = 2000 * WAD
PARAMS = Params(MCR, CCR, 200 * WAD, 200)
LINKED = (
    "trove_manager",
    "borrower_operations",
    "price_feed",
    "stability_pool",
    "active_pool",
    "default_pool",
    "sorted_troves",
    "lusd_token",
)
DEPLOYMENT = Deployment(
    **{name: "0x" + f"{k:02x}" * 20 for k, name in enumerate(LINKED)},
    params=PARAMS,
    lusd_symbol="LUSD",
    lusd_decimals=18,
)


def _system(**changes: int) -> System:
    base = dict(
        price=PRICE,
        active_eth=10**6 * WAD,
        active_debt=10**8 * WAD,
        default_eth=0,
        default_debt=0,
        sp_lusd=0,
        sp_eth=0,
        total_stakes=10**6 * WAD,
        total_stakes_snapshot=0,
        total_collateral_snapshot=0,
        l_eth=0,
        l_lusd_debt=0,
        last_eth_error=0,
        last_lusd_debt_error=0,
        trove_owners=10,
        sorted_troves=10,
        base_rate=0,
        last_fee_operation_time=0,
    )
    return System(PARAMS, **(base | changes))


def _trove(wallet: str, debt: int, coll: int) -> Trove:
    return Trove(wallet, debt, coll, coll, 1, 0, 0, 0)


def _valued(positions: pl.DataFrame) -> pl.LazyFrame:
    return position_values(apply_multipliers(prepare(positions), None))


def _positions(troves: list[Trove]) -> pl.DataFrame:
    positions, _ = contract_frames(DEPLOYMENT, _system(), troves, 1, 100, 1_700_000_000)
    return positions


def test_the_verdict_is_exact_at_the_line() -> None:
    debt = 1000 * WAD
    at_line = MCR * debt // PRICE  # coll x price == MCR x debt: ICR is MCR exactly, not liquidatable
    assert at_line * PRICE == MCR * debt
    troves = [_trove("0x" + "01" * 20, debt, at_line), _trove("0x" + "02" * 20, debt, at_line - 1)]
    health = wallet_health(_valued(_positions(troves))).collect().sort("wallet")
    assert health["liquidatable"].to_list() == [False, True]
    # One wei of ETH under the line is 1e-18 of the ratio: the float ratio would read 1.0 for both; the integers decide,
    # and the health factor of the trove under the line is the largest double below 1.
    assert health["health_factor"].to_list() == [1.0, BELOW_ONE]


def test_a_float_tie_is_decided_by_the_integers() -> None:
    """A collateral value one base unit under the line: the float ratio would round to exactly 1.0; the integers say
    liquidatable, and the health factor reads the largest double below 1."""
    positions = _positions([_trove("0x" + "03" * 20, 10**22, 10**19)])
    debt_base = int(positions.filter(pl.col("debt_amount") > 0)["debt_base"][0])
    tie = -(-(debt_base - 1) * MCR // WAD)  # floor(tie x 1e18 / MCR) == debt_base - 1
    assert tie * WAD // MCR == debt_base - 1
    positions = positions.with_columns(
        pl.when(pl.col("collateral_amount") > 0)
        .then(pl.lit(tie))
        .otherwise(pl.col("collateral_base"))
        .cast(pl.Decimal(38, 0))
        .alias("collateral_base")
    )
    health = wallet_health(_valued(positions)).collect()
    assert health["health_factor"][0] == BELOW_ONE and health["liquidatable"][0]


@pytest.mark.parametrize("multiplier", [0.9, 0.55, 0.4])
def test_shocks_and_liquidation_prices_follow_icr(multiplier: float) -> None:
    troves = [_trove("0x" + f"{k:02x}" * 20, (2000 + 700 * k) * WAD, (2 + k) * WAD) for k in range(1, 8)]
    shocked = stress(_positions(troves), pl.DataFrame({"symbol": ["ETH"], "multiplier": [multiplier]})).sort("wallet")
    price = int(PRICE * multiplier)
    expected = [t.coll * price // t.debt / MCR for t in sorted(troves, key=lambda t: t.wallet)]
    assert shocked["health_factor"].to_list() == pytest.approx(expected, rel=1e-12)
    assert shocked["liquidatable"].to_list() == [x < 1 for x in expected]
    prices = liquidation_prices(_valued(_positions(troves))).collect()
    eth = prices.filter(pl.col("symbol") == "ETH").sort("wallet")
    wanted = [MCR * t.debt / t.coll / WAD for t in sorted(troves, key=lambda t: t.wallet)]
    assert eth["liquidation_price_usd"].to_list() == pytest.approx(wanted, rel=1e-12)


def test_a_liquidated_trove_loses_all_of_its_collateral() -> None:
    """TroveManager liquidates a trove under MCR whole: all of its ETH goes to the Stability Pool or the other troves,
    not the debt x 200/199 a liquidator's bonus would take (0xd133ae53 on the demo: 2,767 against the 2,966 the
    call seizes). So `seizable_collateral_usd` is the trove's whole collateral, also at a shocked price."""
    troves = [_trove("0x" + f"{k:02x}" * 20, (2000 + 700 * k) * WAD, (2 + k) * WAD) for k in range(1, 8)]
    shocked = stress(_positions(troves), pl.DataFrame({"symbol": ["ETH"], "multiplier": [0.45]}))
    liquidated = shocked.filter(pl.col("liquidatable"))
    assert liquidated.height and liquidated.height < shocked.height
    assert liquidated["seizable_collateral_usd"].to_list() == liquidated["collateral_usd"].to_list()
    # More than a bonus on the debt would take, where the trove holds more than that.
    assert (liquidated["seizable_collateral_usd"] > liquidated["debt_usd"] * 200 / 199).sum() >= 2


def test_base_rate_half_life_is_twelve_hours() -> None:
    assert dec_pow(MINUTE_DECAY_FACTOR, 720) == pytest.approx(WAD / 2, rel=1e-9)
    assert dec_pow(MINUTE_DECAY_FACTOR, 0) == WAD


@pytest.mark.parametrize("shift", [-100, 100])
def test_a_threshold_moves_a_collateral_ratio_the_other_way(shift: int) -> None:
    """Threshold sensitivity and parameter advice move a threshold by bps; Liquity holds it as MCR, a ratio (90.9 % is
    1.1). A +100 bps threshold is an MCR of 1 / 0.919..., which spares troves; -100 bps one of 1 / 0.899..., which
    liquidates more (the shift had been added to the ratio itself and clipped at 1: both shifts spared every trove)."""
    # ICRs from 1.06 to 1.16, around MCR 1.1 and both shifted ratios (1.088 and 1.112).
    troves = [_trove("0x" + f"{k + 1:02x}" * 20, 10_000 * WAD, 5 * WAD * (106 + k) // 100) for k in range(11)]
    positions = _positions(troves)
    shifted = with_threshold_shift(positions, "ETH", shift)
    ratio = WAD * WAD // (WAD * WAD // MCR + shift * 10**14)
    held = shifted.filter(pl.col("collateral_amount") > 0)["liquidation_threshold_wad"].cast(pl.Int128).to_list()
    assert held == [ratio] * len(troves)
    verdicts = stress(shifted).sort("wallet")["liquidatable"].to_list()
    icr = [t.coll * PRICE // t.debt for t in sorted(troves, key=lambda t: t.wallet)]
    assert verdicts == [x < ratio for x in icr]
    before = sum(x < MCR for x in icr)
    assert (sum(verdicts) < before) if shift > 0 else (sum(verdicts) > before)
    key = (positions["protocol"][0], positions["chain_id"][0], positions["market"][0])
    proposed = with_collateral_parameters(positions, key, "ETH", 9000, 9000, 10050)
    collateral = proposed.filter(pl.col("collateral_amount") > 0)
    assert collateral["liquidation_threshold_wad"].cast(pl.Int128).to_list() == [WAD * WAD // (9 * 10**17)] * 11
