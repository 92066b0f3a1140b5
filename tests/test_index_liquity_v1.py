"""Liquity V1 adapter against the Liquity V1 stand-ins (chainrisk's own Solidity, not Liquity's bytecode) on an
anvil of its own, indexed through the real job (chainrisk.jobs.index.index_market).

* every active trove is indexed, and its debt and collateral with pending redistribution rewards equal
  getEntireDebtAndColl, its ICR getCurrentICR; the system's TCR, Recovery Mode and totals equal the TroveManager's;
* the liquidatable set (the raw verdict, wallet_health's health factor and the engine's wallet_risk) equals the
  troves `liquidate` accepts (eth_call from the keeper at the snapshot block), in Normal and in Recovery Mode;
* crashes the Stability Pool cannot absorb: the predicted batchLiquidateTroves equals the chain's after sending it
  (who goes, what each surviving trove receives by redistribution, L terms, pool, stakes), to the wei, and so do
  the further rounds redistribution sets off (maths.liquidation_rounds, the contagion inside Liquity);
* bad input (a contract that is not a TroveManager, the wrong chain) ends in one line and changes nothing stored;
* the committed lens runtime is what solcjs builds from its source.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.abi import Abi, eth_call, event_topic, load_abi
from chainrisk.cli import main
from chainrisk.devnet.liquity_v1 import LiquityDeployment, build_liquity, set_price
from chainrisk.devnet.node import BlockBuilder, free_port, start_anvil
from chainrisk.devnet.toolchain import folder_contracts, standin_contracts
from chainrisk.errors import UserError
from chainrisk.jobs.index import index_market
from chainrisk.protocols.liquity_v1.maths import Trove, entire_debt_and_coll, keeper_order, liquidation_rounds
from chainrisk.protocols.liquity_v1.normalise import state_from_tables
from chainrisk.protocols.liquity_v1.snapshot import LENS_RUNTIME
from chainrisk.rpc import RpcClient, RpcError
from chainrisk.scoring.health import liquidation_prices, stress, value_positions
from chainrisk.scoring.snapshot import score_positions
from chainrisk.store.views import query_sql
from tests.chainops import sandbox

TROVE_MANAGER = load_abi("liquity-v1", "ITroveManager")
STABILITY_POOL = load_abi("liquity-v1", "IStabilityPool")
LIQUIDATION = Abi(standin_contracts("liquity_v1")["TroveManager"].abi)
WAD = 10**18
#: TroveManager's Liquidation(_liquidatedDebt, _liquidatedColl, _collGasCompensation, _LUSDGasCompensation).
LIQUIDATION_TOPIC = event_topic("Liquidation(uint256,uint256,uint256,uint256)")
CHAIN_ID = 31337


@pytest.fixture(scope="module")
def liquity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("liquity")
    port = free_port()
    process = start_anvil(port, CHAIN_ID, folder / "anvil.log", detach=False)
    try:
        with RpcClient(f"http://127.0.0.1:{port}") as rpc:
            manifest = build_liquity(BlockBuilder(rpc), troves=40, seed=7)
            manifest["built_block"] = int(rpc.call("eth_blockNumber"), 16)
        manifest["rpc_url"] = f"http://127.0.0.1:{port}"
        yield manifest
    finally:
        process.terminate()
        process.wait(timeout=10)


#: What Liquity's own contracts held after the same build (troves=40, seed=7), as the adapter reads it; the `source`
#: inside says how it was recorded (tests/test_liquity_v1_vectors.py checks chainrisk's maths against its outputs).
REAL_LIQUITY = Path(__file__).resolve().parent / "data" / "liquity_v1_vectors.json"


@pytest.fixture(scope="module")
def rpc(liquity: dict[str, Any]) -> Iterator[RpcClient]:
    with RpcClient(liquity["rpc_url"]) as client:
        yield client


def _index(liquity: dict[str, Any], db: Path) -> Path:
    index_market("liquity-v1", liquity["rpc_url"], liquity["trove_manager"], db)
    return db


@pytest.fixture(scope="module")
def indexed(liquity: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _index(liquity, tmp_path_factory.mktemp("liquity-db") / "chainrisk.duckdb")


def _frame(db: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        frame: pl.DataFrame = con.sql(sql).pl()
        return frame


def _troves(db: Path) -> pl.DataFrame:
    return _frame(
        db,
        "SELECT * FROM raw_liquity_v1_troves WHERE block_number = (SELECT max(block_number) "
        "FROM raw_liquity_v1_troves) ORDER BY wallet",
    )


def _system(db: Path) -> dict[str, Any]:
    rows = _frame(db, "SELECT * FROM raw_liquity_v1_system ORDER BY block_number DESC LIMIT 1").to_dicts()
    return rows[0]


def _call(rpc: RpcClient, to: str, abi: Abi, fn: str, *args: Any, block: int) -> tuple[Any, ...]:
    return abi.decode(fn, rpc.call(*eth_call(to, abi, fn, *args, block=hex(block))))


def _chain_liquidatable(rpc: RpcClient, liquity: dict[str, Any], wallets: list[str], block: int) -> set[str]:
    """The troves TroveManager.liquidate accepts: an eth_call from the keeper at `block` that does not revert."""
    accepted = set()
    for wallet in wallets:
        data = LIQUIDATION.encode("liquidate", wallet)
        try:
            rpc.call(
                "eth_call", [{"from": liquity["keeper"], "to": liquity["trove_manager"], "data": data}, hex(block)]
            )
            accepted.add(wallet)
        except RpcError as exc:
            assert "nothing to liquidate" in exc.message, exc.message
    return accepted


def _verdicts(db: Path) -> tuple[set[str], set[str], set[str]]:
    """(raw verdict, wallet_health HF_wad < 1e18, the engine's wallet_risk.liquidatable) at the db's snapshot."""
    troves = _troves(db)
    raw = set(troves.filter(pl.col("liquidatable"))["wallet"])
    health = _frame(db, "SELECT wallet, health_factor_wad FROM wallet_health WHERE protocol = 'liquity-v1'")
    by_health = set(health.filter(pl.col("health_factor_wad").cast(pl.Float64) < WAD)["wallet"])
    positions = _frame(db, "SELECT * FROM positions WHERE protocol = 'liquity-v1'")
    risk = score_positions(positions)["wallet_risk"]
    return raw, by_health, set(risk.filter(pl.col("liquidatable"))["wallet"])


def _move_price(rpc: RpcClient, liquity: dict[str, Any], price: int) -> None:
    head = rpc.call("eth_getBlockByNumber", ["latest", False])
    builder = BlockBuilder(rpc, timestamp=int(head["timestamp"], 16))
    deployment = LiquityDeployment(**{k: liquity[k] for k in LiquityDeployment.__dataclass_fields__})
    set_price(builder, deployment, price)
    builder.mine(600)


def test_troves_equal_get_entire_debt_and_coll(liquity: dict[str, Any], rpc: RpcClient, indexed: Path) -> None:
    troves = _troves(indexed)
    block = int(troves["block_number"][0])
    tm = liquity["trove_manager"]
    (count,) = _call(rpc, tm, TROVE_MANAGER, "getTroveOwnersCount", block=block)
    owners = {
        str(_call(rpc, tm, TROVE_MANAGER, "getTroveFromTroveOwnersArray", i, block=block)[0]).lower()
        for i in range(count)
    }
    assert set(troves["wallet"]) == owners and len(owners) >= 20
    price = int(_system(indexed)["price"])
    for row in troves.iter_rows(named=True):
        chain = _call(rpc, tm, TROVE_MANAGER, "getEntireDebtAndColl", row["wallet"], block=block)
        ours = tuple(int(row[c]) for c in ("entire_debt", "entire_coll", "pending_lusd_debt", "pending_eth"))
        assert ours == chain, row["wallet"]
        assert int(row["icr"]) == _call(rpc, tm, TROVE_MANAGER, "getCurrentICR", row["wallet"], price, block=block)[0]
    pending = troves.filter(pl.col("pending_eth") > 0).height
    assert pending >= 5, pending
    print(f"{troves.height} troves equal getEntireDebtAndColl, {pending} with redistribution rewards pending")


def test_system_equals_the_trove_manager(liquity: dict[str, Any], rpc: RpcClient, indexed: Path) -> None:
    system = _system(indexed)
    block, price, tm = int(system["block_number"]), int(system["price"]), liquity["trove_manager"]
    assert int(system["tcr"]) == _call(rpc, tm, TROVE_MANAGER, "getTCR", price, block=block)[0]
    assert system["recovery_mode"] == _call(rpc, tm, TROVE_MANAGER, "checkRecoveryMode", price, block=block)[0]
    assert int(system["entire_system_coll"]) == _call(rpc, tm, TROVE_MANAGER, "getEntireSystemColl", block=block)[0]
    assert int(system["entire_system_debt"]) == _call(rpc, tm, TROVE_MANAGER, "getEntireSystemDebt", block=block)[0]
    sp = liquity["stability_pool"]
    assert int(system["stability_pool_lusd"]) == _call(rpc, sp, STABILITY_POOL, "getTotalLUSDDeposits", block=block)[0]
    rate = _call(rpc, tm, TROVE_MANAGER, "getBorrowingRateWithDecay", block=block)[0]
    assert int(system["borrowing_rate"]) == rate
    assert int(system["l_eth"]) > 0 and int(system["stability_pool_lusd"]) > 0


def test_liquidatable_equals_liquidate_in_normal_mode(liquity: dict[str, Any], rpc: RpcClient, indexed: Path) -> None:
    troves = _troves(indexed)
    block = int(troves["block_number"][0])
    assert not _system(indexed)["recovery_mode"]
    chain = _chain_liquidatable(rpc, liquity, list(troves["wallet"]), block)
    raw, by_health, engine = _verdicts(indexed)
    assert raw == by_health == engine == chain and chain, (len(raw), len(by_health), len(engine), len(chain))
    print(f"Normal Mode: {len(chain)} of {troves.height} troves liquidatable per liquidate and per chainrisk")


def test_liquidatable_equals_liquidate_in_recovery_mode(
    liquity: dict[str, Any], rpc: RpcClient, indexed: Path, tmp_path: Path
) -> None:
    """The price moved so the TCR falls to about 135 %: liquidate then also takes troves at MCR <= ICR < TCR whose
    debt the Stability Pool covers."""
    system = _system(indexed)
    price = int(system["price"]) * 135 * 10**16 // int(system["tcr"])
    with sandbox(rpc):
        _move_price(rpc, liquity, price)
        db = _index(liquity, tmp_path / "recovery.duckdb")
        troves = _troves(db)
        assert _system(db)["recovery_mode"]
        chain = _chain_liquidatable(rpc, liquity, list(troves["wallet"]), int(troves["block_number"][0]))
    raw, by_health, engine = _verdicts(db)
    widened = set(troves.filter(pl.col("liquidatable") & (pl.col("icr") >= int(system["mcr"])))["wallet"])
    assert raw == by_health == engine == chain, (len(raw), len(by_health), len(engine), len(chain))
    assert widened and len(chain) > len(widened), (len(widened), len(chain))
    print(f"Recovery Mode: {len(chain)} liquidatable ({len(widened)} at ICR >= MCR), per liquidate and per chainrisk")


def test_a_lusd_depeg_moves_no_trove(liquity: dict[str, Any], rpc: RpcClient, indexed: Path) -> None:
    """ICR = coll * price / debt with the debt in LUSD at one dollar: the engine shocked by the price feed's move and
    a 30 % LUSD depeg finds exactly the troves `liquidate` accepts once the feed has moved; the debt rows carry
    price_fixed, so the depeg changes no verdict, no health factor and no liquidation price."""
    system = _system(indexed)
    assert not system["recovery_mode"]
    positions = _frame(indexed, "SELECT * FROM positions WHERE protocol = 'liquity-v1' ORDER BY wallet, asset")
    lusd = positions.filter(pl.col("is_borrowing"))
    assert lusd.height and lusd["price_fixed"].all()
    assert not positions.filter(~pl.col("is_borrowing"))["price_fixed"].any()
    eth = positions.filter(~pl.col("is_borrowing"))["symbol"].unique().to_list()
    price = int(system["price"]) * 93 // 100
    moved = pl.DataFrame({"symbol": eth, "multiplier": [price / int(system["price"])] * len(eth)})
    depegged = pl.concat([moved, pl.DataFrame({"symbol": lusd["symbol"].unique(), "multiplier": [0.7]})])
    alone, both = (stress(positions, m).sort("wallet") for m in (moved, depegged))
    assert_frame_equal(alone, both)
    troves = _troves(indexed)
    with sandbox(rpc):
        _move_price(rpc, liquity, price)
        block = int(rpc.call("eth_blockNumber"), 16)
        chain = _chain_liquidatable(rpc, liquity, list(troves["wallet"]), block)
    predicted = set(both.filter(pl.col("liquidatable"))["wallet"])
    now = set(troves.filter(pl.col("liquidatable"))["wallet"])
    assert predicted == chain and chain > now, (len(predicted), len(chain), len(now))
    prices = liquidation_prices(value_positions(positions)).collect()
    assert prices.filter(pl.col("symbol").is_in(lusd["symbol"].unique().to_list()))["liquidation_price"].is_null().all()
    assert prices.filter(pl.col("symbol").is_in(eth))["liquidation_price"].is_not_null().any()
    print(f"ETH -7 %, LUSD -30 %: {len(chain)} troves liquidatable per liquidate and per chainrisk ({len(now)} before)")


@pytest.mark.parametrize("tcr_after_crash", [1.55, 1.25], ids=["normal mode", "recovery mode"])
def test_predicted_batch_equals_the_chain(
    liquity: dict[str, Any], rpc: RpcClient, indexed: Path, tmp_path: Path, tcr_after_crash: float
) -> None:
    """A crash whose liquidations overflow the Stability Pool: chainrisk's predicted batchLiquidateTroves (who goes,
    what each remaining trove receives by redistribution, L terms, pool, stakes) equals the chain's after it, and the
    keepers' rewards its liquidation calls predict (gas compensation in LUSD and ETH) add up to what the batch's
    `Liquidation` log says it paid; indexed, its troves' logged rewards too (none where a trove was capped at MCR)."""
    system = _system(indexed)
    price = int(system["price"]) * int(tcr_after_crash * 100) * 10**16 // int(system["tcr"])
    tm = liquity["trove_manager"]
    with sandbox(rpc):
        _move_price(rpc, liquity, price)
        db = _index(liquity, tmp_path / "crash.duckdb")
        troves, predicted = _troves(db), _system(db)
        block = int(troves["block_number"][0])
        order = troves.filter(pl.col("batch_rank").is_not_null()).sort("batch_rank")["wallet"].to_list()
        with duckdb.connect(str(db), read_only=True) as con:
            calls = query_sql("stg_liquity_v1_liquidation_calls")
            (rewards,) = con.sql(
                f"SELECT sum(keeper_reward_debt), sum(keeper_reward_collateral) FROM ({calls})"
            ).fetchall()
        head = rpc.call("eth_getBlockByNumber", ["latest", False])
        builder = BlockBuilder(rpc, timestamp=int(head["timestamp"], 16))
        builder.call(liquity["keeper"], LIQUIDATION, tm, "batchLiquidateTroves", order)
        (receipt,) = builder.mine(12)
        after = block + 1
        chain_after = {
            w: _call(rpc, tm, TROVE_MANAGER, "getEntireDebtAndColl", w, block=after)[:2] for w in troves["wallet"]
        }
        status = {w: _call(rpc, tm, TROVE_MANAGER, "Troves", w, block=after)[3] for w in troves["wallet"]}
        state = {fn: _call(rpc, tm, TROVE_MANAGER, fn, block=after)[0] for fn in ("L_ETH", "L_LUSDDebt", "totalStakes")}
        sp_after = _call(rpc, liquity["stability_pool"], STABILITY_POOL, "getTotalLUSDDeposits", block=after)[0]
        # The batch indexed: each trove it took is a liquidation by the keeper that sent it (from the receipt).
        _index(liquity, db)
        with duckdb.connect(str(db), read_only=True) as con:
            liquidations = query_sql("stg_liquity_v1_liquidations")
            sql = f"SELECT * FROM ({liquidations}) WHERE block_number > {block}"
            logged_rows = con.sql(sql).pl()
            logged = dict(logged_rows.select("wallet", "liquidator").rows())
    assert predicted["batch_reverted"] is None and int(predicted["batch_debt_to_redistribute"]) > 0
    assert int(predicted["stability_pool_lusd_after"]) == sp_after
    # In Normal Mode the pool takes what it can and is emptied; in Recovery Mode troves under 100 % skip the pool.
    assert sp_after == 0 or tcr_after_crash < 1.5
    gone = set(troves.filter(pl.col("batch_liquidated"))["wallet"])
    assert gone == {w for w, s in status.items() if s == 3}
    assert logged == dict.fromkeys(gone, liquity["keeper"].lower())
    (summary,) = [x for x in receipt.logs if x["topics"][0] == LIQUIDATION_TOPIC]
    _, _, coll_paid, lusd_paid = (int(summary["data"][2 + 64 * k : 66 + 64 * k], 16) for k in range(4))
    assert rewards is not None and (int(rewards[0]), int(rewards[1])) == (lusd_paid, coll_paid) and coll_paid > 0
    # Logged: each trove's compensation where the troves' add up to the log (every batch without a liquidation capped
    # at MCR), else none of the batch's.
    capped_in_batch = troves.filter(pl.col("batch_liquidated") & (pl.col("coll_surplus") > 0)).height
    paid_logged = logged_rows.select("keeper_reward_debt", "keeper_reward_collateral")
    if capped_in_batch:
        assert paid_logged.null_count().row(0) == (len(gone), len(gone))
    else:
        sums = tuple(int(x) for x in paid_logged.sum().row(0))
        assert paid_logged.null_count().row(0) == (0, 0) and sums == (lusd_paid, coll_paid)
    for row in troves.filter(~pl.col("batch_liquidated")).iter_rows(named=True):
        received = (int(row["redistributed_debt"]), int(row["redistributed_coll"]))
        debt, coll = chain_after[row["wallet"]]
        assert (debt - int(row["entire_debt"]), coll - int(row["entire_coll"])) == received, row["wallet"]
        assert received[0] > 0
    assert (state["L_ETH"], state["L_LUSDDebt"], state["totalStakes"]) == (
        int(predicted["l_eth_after"]),
        int(predicted["l_lusd_debt_after"]),
        int(predicted["total_stakes_after"]),
    )
    assert bool(predicted["recovery_mode"]) == (tcr_after_crash < 1.5)
    capped = troves.filter(pl.col("coll_surplus") > 0).height
    assert capped > 0 or tcr_after_crash >= 1.5  # Recovery Mode's capped offset (_getCappedOffsetVals) is exercised
    print(
        f"TCR {tcr_after_crash}: {len(gone)} liquidated ({capped} capped at MCR), {troves.height - len(gone)} troves "
        f"receive redistribution exactly as predicted"
    )


@pytest.mark.parametrize("tcr_after_crash", [1.45, 1.1])
def test_liquidation_rounds_equal_the_chain(
    liquity: dict[str, Any], rpc: RpcClient, indexed: Path, tmp_path: Path, tcr_after_crash: float
) -> None:
    """Redistribution pushes more troves under the line: keeper batches sent round after round on the chain leave
    every trove, the L terms, the pool and the stakes exactly as maths.liquidation_rounds predicts from the tables."""
    system = _system(indexed)
    price = int(system["price"]) * int(tcr_after_crash * 100) * 10**16 // int(system["tcr"])
    tm = liquity["trove_manager"]
    with sandbox(rpc):
        _move_price(rpc, liquity, price)
        db = _index(liquity, tmp_path / "rounds.duckdb")
        state, troves = state_from_tables(_system(db), _troves(db).to_dicts())
        rounds = liquidation_rounds(state, troves, price)
        head = rpc.call("eth_getBlockByNumber", ["latest", False])
        builder = BlockBuilder(rpc, timestamp=int(head["timestamp"], 16))
        for order, outcome in rounds:
            assert outcome.system is not None
            builder.call(liquity["keeper"], LIQUIDATION, tm, "batchLiquidateTroves", order)
            block = int(builder.mine(12)[-1].logs[0]["blockNumber"], 16)
            chain = {
                fn: _call(rpc, tm, TROVE_MANAGER, fn, block=block)[0] for fn in ("L_ETH", "L_LUSDDebt", "totalStakes")
            }
            after = outcome.system
            assert (chain["L_ETH"], chain["L_LUSDDebt"], chain["totalStakes"]) == (
                after.l_eth,
                after.l_lusd_debt,
                after.total_stakes,
            )
            sp = _call(rpc, liquity["stability_pool"], STABILITY_POOL, "getTotalLUSDDeposits", block=block)[0]
            assert sp == after.sp_lusd
            for wallet in outcome.liquidated:
                assert _call(rpc, tm, TROVE_MANAGER, "Troves", wallet, block=block)[3] == 3
                troves[wallet] = Trove(wallet, 0, 0, 0, 3, 0, 0, 0)  # closed by liquidation
            for wallet in outcome.redistributed:
                expected = entire_debt_and_coll(troves[wallet], after.l_eth, after.l_lusd_debt)
                chain_entire = _call(rpc, tm, TROVE_MANAGER, "getEntireDebtAndColl", wallet, block=block)
                assert chain_entire == (expected.debt, expected.coll, expected.pending_debt, expected.pending_coll)
        # Settled: the next keeper batch has nothing to liquidate.
        last = rounds[-1][1].system
        assert last is not None
        data = LIQUIDATION.encode("batchLiquidateTroves", keeper_order(last, troves, price))
        with pytest.raises(RpcError, match="nothing to liquidate"):
            rpc.call("eth_call", [{"from": liquity["keeper"], "to": tm, "data": data}, "latest"])
    assert len(rounds) >= 2, len(rounds)
    counts = [len(o.liquidated) for _, o in rounds]
    print(f"TCR {tcr_after_crash}: {len(rounds)} rounds liquidating {counts} troves, as predicted")


def _stored(db: Path) -> dict[str, Any]:
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone() for t in tables} | {
            "sync": con.execute("SELECT * FROM sync_state ORDER BY ALL").fetchall()
        }


def test_bad_input_is_one_line_and_changes_nothing(
    liquity: dict[str, Any], indexed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(indexed, db)
    before = _stored(db)
    # The mainnet preset against this chain-31337 node, through the CLI.
    assert main(["index", "--market", "liquity-v1-ethereum", "--rpc-url", liquity["rpc_url"], "--db", str(db)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chainrisk: error: ") and "chain 1" in err and len(err.splitlines()) == 1, err
    for address in (liquity["stability_pool"], liquity["lusd_token"]):
        with pytest.raises(UserError) as caught:
            index_market("liquity-v1", liquity["rpc_url"], address, db)
        assert "is not a Liquity V1 TroveManager" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(UserError) as caught:
        index_market("liquity-v1", liquity["rpc_url"], liquity["trove_manager"], db, expected_chain_id=1)
    assert "serves chain 31337" in str(caught.value) and "\n" not in str(caught.value)
    assert _stored(db) == before


def test_committed_lens_runtime_matches_its_source() -> None:
    folder = Path(__file__).resolve().parent.parent / "chainrisk" / "protocols" / "liquity_v1" / "contracts"
    lens = folder_contracts(folder)["LiquityTrovesLens"]
    assert lens.runtime == LENS_RUNTIME
    assert Abi(lens.abi).selector("troves") == load_abi("liquity-v1", "LiquityTrovesLens").selector("troves")


def test_the_stand_in_ends_where_liquitys_own_contracts_do(liquity: dict[str, Any], tmp_path: Path) -> None:
    """The same build on Liquity's own contracts (tests/data/liquity_v1_vectors.json's `system` and `troves`) and on
    the stand-in, indexed at the build's last block: the system's pools, stakes, L terms, error terms, base rate and
    counts, and every trove's debt, collateral, stake, status, array index and reward snapshots, to the unit."""
    real = json.loads(REAL_LIQUITY.read_text())
    db = tmp_path / "chainrisk.duckdb"
    index_market("liquity-v1", liquity["rpc_url"], liquity["trove_manager"], db, to_block=liquity["built_block"])
    system = _system(db)
    assert {k: int(system[k]) for k in real["system"]} == real["system"]
    rows = {r["wallet"]: r for r in _troves(db).to_dicts()}
    assert sorted(rows) == sorted(t["wallet"] for t in real["troves"])
    for trove in real["troves"]:
        assert {k: int(rows[trove["wallet"]][k]) for k in trove if k != "wallet"} == {
            k: v for k, v in trove.items() if k != "wallet"
        }, trove["wallet"]
    assert len(rows) >= 25 and real["system"]["l_eth"] > 0
