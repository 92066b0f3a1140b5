"""Morpho Blue markets under an AdaptiveCurveIrm, indexed through the real job on a chain of their own: real Morpho
Blue with chainrisk's stand-in of Morpho's AdaptiveCurveIrm (chainrisk/devnet/standins/morpho_irm, written from its
documented maths; chainrisk's Python port is checked against the real contract's recorded vectors in
tests/test_morpho_adaptive_irm.py). One market under its 90 % target, one over it: the IRM's rate moves every second.

* Each snapshot stores the IRM's rateAtTarget and what borrowRateView answers at its block (read by RPC here).
* An empty block an hour later opens no version of either market (the rate is carried by the version and
  recomputed), and raw_as_of gives each snapshot back as it was written.
* A borrow (Morpho calls borrowRate, which moves rateAtTarget) opens one version, holding the new rate at target.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from streamlit.testing.v1 import AppTest

import chainrisk.devnet
from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.cli import main
from chainrisk.dashboard.markets_page import morpho_rates
from chainrisk.devnet.aave import deploy_tokens_and_feeds
from chainrisk.devnet.morpho import deploy_morpho, market_id
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.toolchain import aave_artifact, folder_contracts, standin_contracts
from chainrisk.jobs.index import index_market
from chainrisk.jobs.score import score
from chainrisk.protocols.morpho_blue.irm import YEAR, curve_rate, rate_at
from chainrisk.protocols.morpho_blue.maths import MarketState, w_div_down
from chainrisk.rpc import RpcClient
from chainrisk.store.db import Store
from chainrisk.store.views import query_sql
from tests.chainops import bare_chain

DEVNET = Path(chainrisk.devnet.__file__).parent
ROOT = Path(__file__).resolve().parent.parent
STANDIN = standin_contracts("morpho_irm")["AdaptiveCurveIrmStandin"]
ODD = folder_contracts(DEVNET / "contracts_odd")
IRM = Abi(STANDIN.abi)
MORPHO = load_abi("morpho-blue", "IMorpho")
MINTABLE = Abi(aave_artifact("MintableERC20").abi)
TABLE = "raw_morpho_blue_markets"
LLTV = 86 * 10**16
#: 1e36-scaled price of one WETH (18 decimals) in USDC (6 decimals): 2,000 USDC.
PRICE = 2_000 * 10**6 * 10**36 // 10**18
WAD = 10**18
#: The columns of a stored market that make its MarketState, in order.
MARKET_STATE = (
    "total_supply_assets",
    "total_supply_shares",
    "total_borrow_assets",
    "total_borrow_shares",
    "last_update",
    "fee",
)
#: USDC borrowed of the 1,000,000 supplied in each market: 60 % (under the target) and 95 % (over it).
BORROWED = (600_000, 950_000)


def _build(rpc: RpcClient) -> dict[str, Any]:
    builder = BlockBuilder(rpc)
    tokens, _ = deploy_tokens_and_feeds(builder, {"USDC": 6, "WETH": 18}, {"USDC": 10**8, "WETH": 2_000 * 10**8})
    usdc, weth = tokens["USDC"].lower(), tokens["WETH"].lower()
    morpho = deploy_morpho(builder).morpho.lower()
    irm = builder.deploy(STANDIN, morpho, label="AdaptiveCurveIrm (stand-in)").lower()
    oracle = builder.deploy(ODD["OddOracle"], PRICE, label="oracle").lower()
    builder.call(DEPLOYER, MORPHO, morpho, "enableIrm", irm)
    builder.mine()
    lender, borrowers = "0x" + "1e" * 20, ["0x" + "b1" * 20, "0x" + "b2" * 20]
    params = []
    for salt, borrower in enumerate(borrowers):
        # Two markets of the same tokens and IRM, told apart by their oracles.
        market_oracle = oracle if salt == 0 else builder.deploy(ODD["OddOracle"], PRICE, label="oracle 2").lower()
        params.append((usdc, weth, market_oracle, irm, LLTV))
        builder.call(DEPLOYER, MORPHO, morpho, "createMarket", params[-1])
        builder.call(DEPLOYER, MINTABLE, usdc, "mint", lender, 10**6 * 10**6)
        builder.call(DEPLOYER, MINTABLE, weth, "mint", borrower, 1_000 * 10**18)
    builder.call(DEPLOYER, MINTABLE, usdc, "mint", lender, 10**6 * 10**6)
    builder.mine()
    for who, token in [(lender, usdc), *((b, weth) for b in borrowers)]:
        builder.call(who, MINTABLE, token, "approve", morpho, 2**256 - 1)
    builder.mine()
    for p, borrower in zip(params, borrowers, strict=True):
        builder.call(lender, MORPHO, morpho, "supply", p, 10**6 * 10**6, 0, lender, b"")
        builder.call(borrower, MORPHO, morpho, "supplyCollateral", p, 1_000 * 10**18, borrower, b"")
    builder.mine(advance_s=60)
    for p, borrower, amount in zip(params, borrowers, BORROWED, strict=True):
        builder.call(borrower, MORPHO, morpho, "borrow", p, amount * 10**6, 0, borrower, borrower)
    builder.mine(advance_s=600)
    return {"builder": builder, "morpho": morpho, "params": params, "borrowers": borrowers}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with bare_chain(tmp_path_factory.mktemp("adaptive")) as bare:
        yield _build(bare.rpc) | {"rpc": bare.rpc, "url": bare.url}


def _latest(db: Path) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        frame: pl.DataFrame = con.sql(f"SELECT * FROM {TABLE} ORDER BY market_id").pl()
        return frame


def _versions(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return int(con.execute(f"SELECT count(*) FROM history.{TABLE}").fetchall()[0][0])


def _chain_rates(rpc: RpcClient, chain: dict[str, Any], block: int) -> dict[str, tuple[int, int]]:
    """Per market id: (rateAtTarget(id), borrowRateView(params, market(id))) as the chain answers at `block`."""
    found = {}
    for p in chain["params"]:
        ident = market_id(p)
        key = bytes.fromhex(ident[2:])
        state = MORPHO.decode("market", rpc.call(*eth_call(chain["morpho"], MORPHO, "market", key, block=hex(block))))
        target = IRM.decode("rateAtTarget", rpc.call(*eth_call(p[3], IRM, "rateAtTarget", key, block=hex(block))))[0]
        answer = rpc.call(*eth_call(p[3], IRM, "borrowRateView", p, state[0], block=hex(block)))
        found[ident] = (int(target), int(IRM.decode("borrowRateView", answer)[0]))
    return found


def _index(chain: dict[str, Any], db: Path) -> tuple[int, pl.DataFrame]:
    index_market("morpho-blue", chain["url"], chain["morpho"], db)
    block = int(chain["rpc"].call("eth_blockNumber"), 16)
    latest = _latest(db)
    assert set(latest["block_number"]) == {block}
    return block, latest


def test_adaptive_curve_rate_is_stored_carried_and_recomputed(
    chain: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rpc, builder, db = chain["rpc"], chain["builder"], tmp_path / "chainrisk.duckdb"
    first_block, first = _index(chain, db)
    versions = _versions(db)
    builder.mine(advance_s=3_600)  # an empty block an hour later
    second_block, second = _index(chain, db)

    for block, latest in ((first_block, first), (second_block, second)):
        stored = {r["market_id"]: (r["rate_at_target"], r["borrow_rate"]) for r in latest.iter_rows(named=True)}
        assert stored == _chain_rates(rpc, chain, block), f"what the IRM answers at block {block}"
    under, over = (first.filter(pl.col("market_id") == market_id(p)) for p in chain["params"])
    assert all(t > 0 for t in first["rate_at_target"]), "Morpho's accruals set each market's rate at target"
    moved = dict(
        zip(
            first["market_id"],
            (int(b) - int(a) for a, b in zip(first["borrow_rate"], second["borrow_rate"], strict=True)),
            strict=True,
        )
    )
    assert moved[under["market_id"][0]] < 0 < moved[over["market_id"][0]], "under target the rate falls, over it rises"
    assert _versions(db) == versions, "the rate moving with time opened no version"

    with Store(db, read_only=True) as store:
        for block, latest in ((first_block, first), (second_block, second)):
            rebuilt = store.raw_as_of(TABLE, 31337, chain["morpho"], block).sort("market_id")
            assert_frame_equal(rebuilt.select(latest.columns), latest, check_dtypes=False)

    # A borrow: Morpho accrues (the IRM's borrowRate stores a new rate at target) and the state changes.
    p, borrower = chain["params"][0], chain["borrowers"][0]
    builder.call(borrower, MORPHO, chain["morpho"], "borrow", p, 10**6, 0, borrower, borrower)
    builder.mine(advance_s=12)
    third_block, third = _index(chain, db)
    # The rate the Markets page projects from the second snapshot to the borrow's block time (irm.rate_at) is what
    # the IRM, holding the rate at target that accrual stored, charges the second snapshot's utilization from then on.
    before = {
        k: int(v)
        for k, v in second.filter(pl.col("market_id") == market_id(p))
        .select(*MARKET_STATE, "rate_at_target")
        .row(0, named=True)
        .items()
    }
    borrowed_at = int(rpc.call("eth_getBlockByNumber", [hex(third_block), False])["timestamp"], 16)
    kept = (before["total_supply_assets"], before["total_supply_shares"], before["total_borrow_assets"])
    kept_state = (*kept, before["total_borrow_shares"], borrowed_at, before["fee"])
    answer = rpc.call(*eth_call(p[3], IRM, "borrowRateView", p, kept_state, block=hex(third_block)))
    state = MarketState(*kept, before["total_borrow_shares"], before["last_update"], before["fee"])
    assert rate_at(before["rate_at_target"], state, borrowed_at) == IRM.decode("borrowRateView", answer)[0]
    assert _versions(db) == versions + 1, "one version: the market borrowed from"
    changed = third.filter(pl.col("market_id") == market_id(p))
    assert changed["rate_at_target"][0] != second.filter(pl.col("market_id") == market_id(p))["rate_at_target"][0]
    stored = {r["market_id"]: (r["rate_at_target"], r["borrow_rate"]) for r in third.iter_rows(named=True)}
    assert stored == _chain_rates(rpc, chain, third_block)
    # Analysts read it from the staging view, with its yearly percentage.
    with duckdb.connect(str(db), read_only=True) as con:
        staged = query_sql("stg_morpho_blue_markets")
        view = con.sql(f"SELECT market, rate_at_target, rate_at_target_apr_pct FROM ({staged}) WHERE is_latest").pl()
    assert dict(zip(view["market"], view["rate_at_target"], strict=True)) == {k: v[0] for k, v in stored.items()}
    assert all(0.1 <= apr <= 200 for apr in view["rate_at_target_apr_pct"]), "inside the IRM's bounds, % a year"

    # The Markets page projects both from the latest snapshot, in its table and on its chart: the market under its
    # target cheaper a day, a week and a month on, the one over it dearer (utilization held).
    score(db)
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.query_params["page"] = "markets"
    app.run()
    assert not app.exception and not app.error, [e.value for e in (*app.exception, *app.error)]
    assert any(c.value.startswith("Under Morpho's AdaptiveCurveIrm") for c in app.caption)
    shown = next(d.value for d in app.dataframe if "apr_in_30d_pct" in d.value.columns)
    assert len(shown) == 2
    for _, row in shown.iterrows():
        path = [row["borrow_apr_pct"], row["apr_in_1d_pct"], row["apr_in_7d_pct"], row["apr_in_30d_pct"]]
        under = row["utilization_pct"] < 90
        assert path == sorted(path, reverse=under) and path[0] != path[-1], row.to_dict()
    assert any("borrow APR over the next 30 days" in c.value for c in app.caption), "the chart's caption"
    # Indexed without a usd_oracle, these markets have no USD price: the score keeps every wallet's health (exact, in
    # the market's units) with its USD figures NULL, and the other pages draw without them.
    with duckdb.connect(str(db), read_only=True) as con:
        risk = con.sql("SELECT health_factor, health_factor_wad, collateral_usd, debt_usd FROM wallet_risk").pl()
    borrowers = risk.filter(pl.col("health_factor").is_not_null())
    assert borrowers.height and borrowers["health_factor_wad"].is_not_null().all()
    assert risk["collateral_usd"].is_null().all() and risk["debt_usd"].is_null().all()
    # data_quality says so for each market, and why (the run summary and the Overview read it).
    with duckdb.connect(str(db), read_only=True) as con:
        quality = con.sql("SELECT market, kind, detail, unknown FROM data_quality").pl()
    assert set(quality["market"]) == {market_id(p) for p in chain["params"]}
    assert set(quality["kind"]) == {"no_usd_price"} and quality["unknown"].str.contains("health exact").all()
    assert quality["detail"].str.contains("no USD source is configured").all()
    for page in ("overview", "positions", "wallet"):
        app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        app.query_params["page"] = page
        app.run()
        assert not app.exception and not app.error, (page, [e.value for e in (*app.exception, *app.error)])
    # Nor do a rescore from the score book (no shock axis has a USD figure to carry) and a historical replay.
    assert score(db).rescored
    assert main(["risk", "stress", "--db", str(db), "--start", "2022-05-01", "--end", "2022-05-03"]) == 0
    assert "no USD" in capsys.readouterr().out
    config = tmp_path / "chainrisk.toml"
    config.write_text(f'[[markets]]\nprotocol = "morpho-blue"\naddress = "{chain["morpho"]}"\nchain_id = 31337\n')
    history = ["credit", "history", "--config", str(config), "--db", str(db), "--rpc-url", chain["url"]]
    assert main([*history, "--every", "1h"]) == 0
    # The credit model reads USD figures: it says in one line that it has no wallet to score here.
    assert main(["credit", "--db", str(db)]) == 2
    assert "no wallet holds a position valued in USD" in capsys.readouterr().err


def test_the_rate_curve_is_the_irms(chain: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Markets page's rate curve of a market (irm.curve_rate at its rate at target) is what the IRM answers for a
    market of that utilization updated this instant (borrowRateView: no time to adapt, so its curve at the stored rate
    at target), at utilizations across it; and each market's point on it is the rate the IRM charges at its
    utilization at the snapshot (irm.rate_at)."""
    rpc, db = chain["rpc"], tmp_path / "chainrisk.duckdb"
    block, latest = _index(chain, db)
    now = int(rpc.call("eth_getBlockByNumber", [hex(block), False])["timestamp"], 16)
    supply = 10**12
    for p in chain["params"]:
        key = bytes.fromhex(market_id(p)[2:])
        target = IRM.decode("rateAtTarget", rpc.call(*eth_call(p[3], IRM, "rateAtTarget", key)))[0]
        for borrow in (0, 1, supply // 3, supply * 9 // 10 - 1, supply * 9 // 10, supply * 95 // 100, supply):
            state = (supply, 0, borrow, 0, now, 0)
            answer = IRM.decode("borrowRateView", rpc.call(*eth_call(p[3], IRM, "borrowRateView", p, state)))[0]
            assert curve_rate(int(target), borrow * WAD // supply) == answer, (p, borrow)
    score(db)
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    rates, _ = morpho_rates(db)
    points = rates.filter(pl.col("rate_at_target_now").is_not_null())
    assert points.height == len(chain["params"])
    for row in latest.iter_rows(named=True):
        market = MarketState(*(int(row[c]) for c in MARKET_STATE))
        shown = points.filter(pl.col("market") == row["market_id"]).row(0, named=True)
        assert shown["apr_on_curve_pct"] == rate_at(int(row["rate_at_target"]), market, now) * YEAR / WAD * 100
        on_curve = curve_rate(
            int(shown["rate_at_target_now"]), w_div_down(market.total_borrow_assets, market.total_supply_assets)
        )
        assert shown["apr_on_curve_pct"] == on_curve * YEAR / WAD * 100, "the point is on the curve drawn"
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.query_params["page"] = "markets"
    app.run()
    assert not app.exception and not app.error, [e.value for e in (*app.exception, *app.error)]
    assert "markets_morpho_curve" in [s.key for s in app.selectbox]
    assert any(c.value.startswith("The borrow APR the market's AdaptiveCurveIrm") for c in app.caption)
