"""Contagion inside one protocol (pure, no chain): in a market whose bad debt is redistributed (Liquity V1 beyond its
Stability Pool), the contagion rounds move the debt a liquidation leaves onto the other troves and liquidate those it
pushes under the line, round by round as Liquity's keeper batches do (maths.liquidation_rounds, itself checked against
the chain's batchLiquidateTroves in tests/test_index_liquity_v1.py). The book is built by the adapter's own
normaliser, so the engine reads the troves as it reads indexed ones."""

from __future__ import annotations

import polars as pl

from chainrisk.chains.contagion import contagion
from chainrisk.protocols.frames import markets_frame
from chainrisk.protocols.liquity_v1.maths import Params, System, Trove, liquidation_rounds
from chainrisk.protocols.liquity_v1.normalise import contract_frames, market_row
from chainrisk.protocols.liquity_v1.snapshot import Deployment

WAD = 10**18
PARAMS = Params(mcr=11 * 10**17, ccr=15 * 10**17, lusd_gas_compensation=200 * WAD, percent_divisor=200)
PRICE = 2_000 * WAD
DEPLOYMENT = Deployment(
    trove_manager="0x" + "01" * 20,
    borrower_operations="0x" + "02" * 20,
    price_feed="0x" + "03" * 20,
    stability_pool="0x" + "04" * 20,
    active_pool="0x" + "05" * 20,
    default_pool="0x" + "06" * 20,
    sorted_troves="0x" + "07" * 20,
    lusd_token="0x" + "08" * 20,
    params=PARAMS,
    lusd_symbol="LUSD",
    lusd_decimals=18,
)
#: Troves of 10,000 LUSD at these collateral ratios (the TCR stays above 150 % after a 5 % drop: Normal Mode).
RATIOS = [1.18, 1.26, 1.75, 1.93, 1.94, 2.23, 2.47]


def _book(collateral_ratios: list[float], last_eth: float, stability_pool: float) -> tuple[System, dict[str, Trove]]:
    """Troves of 10,000 LUSD at the given collateral ratios and one more holding `last_eth` ETH, stakes equal to
    collateral (no liquidation yet), and a Stability Pool of `stability_pool` LUSD."""
    troves = {}
    for i, ratio in enumerate([*collateral_ratios, None]):
        wallet = f"0x{i + 100:040x}"
        debt = 10_000 * WAD
        coll = int(last_eth * WAD) if ratio is None else int(debt * ratio) * WAD // PRICE
        troves[wallet] = Trove(wallet, debt, coll, coll, 1, i, 0, 0)
    eth = sum(t.coll for t in troves.values())
    debt = sum(t.debt for t in troves.values())
    system = System(
        params=PARAMS,
        price=PRICE,
        active_eth=eth,
        active_debt=debt,
        default_eth=0,
        default_debt=0,
        sp_lusd=int(stability_pool * WAD),
        sp_eth=0,
        total_stakes=eth,
        total_stakes_snapshot=0,
        total_collateral_snapshot=0,
        l_eth=0,
        l_lusd_debt=0,
        last_eth_error=0,
        last_lusd_debt_error=0,
        trove_owners=len(troves),
        sorted_troves=len(troves),
        base_rate=0,
        last_fee_operation_time=0,
    )
    return system, troves


def test_redistribution_rounds_equal_the_keepers() -> None:
    # A trove far under water (1 ETH against 10,000 LUSD) and an empty pool: its debt, far above its collateral's
    # worth, moves onto the others and takes the weakest under, whose redistribution takes the next one.
    system, troves = _book(RATIOS, last_eth=1, stability_pool=0)
    price = PRICE * 95 // 100
    expected = [sorted(o.liquidated) for _, o in liquidation_rounds(system, troves, price)]
    assert len(expected) >= 3, expected
    positions, _ = contract_frames(DEPLOYMENT, system, list(troves.values()), 1, 100, 1_700_000_000)
    markets = markets_frame([market_row(DEPLOYMENT, system)], "liquity-v1", 1, DEPLOYMENT.trove_manager, 100, 0)
    result = contagion(positions, {}, {"ETH": 0.95}, {}, markets)
    got = [sorted(result.wallets.filter(pl.col("round") == r)["wallet"].to_list()) for r in range(1, len(expected) + 1)]
    assert got == expected
    assert set(result.wallets.filter(pl.col("round") > 1)["channel"].to_list()) == {"redistribution"}


def test_the_stability_pool_absorbs_first() -> None:
    # The same crash with a pool large enough for round 1's debt: nothing is redistributed, nobody else falls.
    system, troves = _book(RATIOS, last_eth=1, stability_pool=50_000)
    price = PRICE * 95 // 100
    expected = [sorted(o.liquidated) for _, o in liquidation_rounds(system, troves, price)]
    positions, _ = contract_frames(DEPLOYMENT, system, list(troves.values()), 1, 100, 1_700_000_000)
    markets = markets_frame([market_row(DEPLOYMENT, system)], "liquity-v1", 1, DEPLOYMENT.trove_manager, 100, 0)
    result = contagion(positions, {}, {"ETH": 0.95}, {}, markets)
    assert len(expected) == 1
    assert sorted(result.wallets["wallet"].to_list()) == expected[0]
