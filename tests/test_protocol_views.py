"""The protocol views of Compound V3 (reserves), Maker/Sky (ilk limits) and Liquity V1 (TCR, Stability Pool), on one
database holding the three stand-ins after a price crash, checked against the contracts' own getters at the snapshot
block; and the Markets page showing them (AppTest).

Each stand-in runs on its own anvil (chain ids 31337, 31338, 31339) as its index test builds it, smaller.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.devnet.compound_v3 import KEEPER, CometDevnetOptions, build_compound_v3
from chainrisk.devnet.liquity_v1 import LiquityDeployment, build_liquity, set_price
from chainrisk.devnet.maker import HOP, MAKER_KEEPER, build_maker
from chainrisk.devnet.node import DEPLOYER, BlockBuilder, free_port, start_anvil, stop_process
from chainrisk.devnet.prices import parse_start
from chainrisk.devnet.toolchain import compiled_contracts, standin_contracts
from chainrisk.jobs.index import index_market
from chainrisk.jobs.score import score
from chainrisk.rpc import RpcClient, RpcError

APP = str(Path(__file__).resolve().parent.parent / "app.py")
COMET = load_abi("compound-v3", "IComet")
FEED = Abi(compiled_contracts()["SettableFeed"].abi)
VAT = load_abi("maker", "Vat")
DOG = load_abi("maker", "Dog")
OSM = load_abi("maker", "OSM")
SPOTTER = load_abi("maker", "Spotter")
TROVE_MANAGER = load_abi("liquity-v1", "ITroveManager")
STABILITY_POOL = load_abi("liquity-v1", "IStabilityPool")
PRICE_FEED = load_abi("liquity-v1", "IPriceFeed")
LIQUIDATION = Abi(standin_contracts("liquity_v1")["TroveManager"].abi)
WAD, RAD = 10**18, 10**45
COMET_OPTIONS = CometDevnetOptions(wallets=40, days=60, step_hours=24, seed=7)
#: Price multipliers set on the Comet's feeds before indexing (the base, USDC, holds), as its index test does.
COMET_CRASH = {"WETH": 0.55, "wstETH": 0.55, "WBTC": 0.7, "LINK": 0.45}
#: Liquity's ETH price is cut to this fraction of the devnet's before indexing.
LIQUITY_CRASH = Fraction(7, 10)
#: The configs' names for the three markets: each says it is a stand-in, so every label must.
COMET_NAME, MAKER_NAME, LIQUITY_NAME = (
    "devnet compound-v3 (stand-in Comet)",
    "devnet maker (stand-in Vat, Dog, Spot, Jug)",
    "devnet liquity-v1 (stand-in TroveManager)",
)


def _frame(db: Path, sql: str, *params: Any) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        frame = pl.from_arrow(con.sql(sql, params=list(params)).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _call(rpc: RpcClient, to: str, abi: Abi, fn: str, *args: Any, block: int) -> tuple[Any, ...]:
    return tuple(abi.decode(fn, rpc.call(*eth_call(to, abi, fn, *args, block=hex(block)))))


def _accepts(rpc: RpcClient, sender: str, to: str, data: str, block: int) -> bool:
    """Whether the call from `sender` goes through at `block` (an eth_call that does not revert)."""
    try:
        rpc.call("eth_call", [{"from": sender, "to": to, "data": data}, hex(block)])
    except RpcError:
        return False
    return True


def _crash_comet(rpc: RpcClient, comet: dict[str, Any], db: Path) -> None:
    """The feeds cut by COMET_CRASH in one block at the snapshot's time (no interest accrues between)."""
    prices = _frame(db, "SELECT DISTINCT symbol, price FROM positions WHERE protocol = 'compound-v3'")
    price = {s: int(p) for s, p in prices.iter_rows()}
    timestamp = int(_frame(db, "SELECT max(snapshot_timestamp) AS t FROM sync_state")["t"][0])
    builder = BlockBuilder(rpc, timestamp=timestamp)
    for symbol, multiplier in COMET_CRASH.items():
        builder.call(DEPLOYER, FEED, comet["feeds"][symbol], "setAnswer", int(price[symbol] * multiplier))
    builder.call(KEEPER, COMET, comet["comet"], "accrueAccount", KEEPER)
    builder.mine(0)


def _crash_maker(rpc: RpcClient, maker: dict[str, Any]) -> None:
    """The OSMs' queued (lower) prices made current and given to the Vat: some vaults turn unsafe."""
    head = rpc.call("eth_getBlockByNumber", ["latest", False])
    builder = BlockBuilder(rpc, timestamp=int(head["timestamp"], 16))
    for ilk in maker["ilks"].values():
        builder.call(DEPLOYER, OSM, ilk["pip"], "poke")
    builder.mine(HOP)
    for name in maker["ilks"]:
        builder.call(DEPLOYER, SPOTTER, maker["spot"], "poke", name.encode().ljust(32, b"\x00"))
    builder.mine(0)


def _crash_liquity(rpc: RpcClient, liquity: dict[str, Any]) -> None:
    price = _call(rpc, liquity["price_feed"], PRICE_FEED, "lastGoodPrice", block=int(rpc.call("eth_blockNumber"), 16))
    head = rpc.call("eth_getBlockByNumber", ["latest", False])
    builder = BlockBuilder(rpc, timestamp=int(head["timestamp"], 16))
    deployment = LiquityDeployment(**{k: liquity[k] for k in LiquityDeployment.__dataclass_fields__})
    set_price(builder, deployment, int(price[0] * LIQUITY_CRASH))
    builder.mine(600)


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The three stand-ins, each on its own anvil, crashed, indexed into one database and scored."""
    folder = tmp_path_factory.mktemp("protocol_views")
    db = folder / "chainrisk.duckdb"
    nodes = []
    try:
        manifests: dict[str, Any] = {"db": db}
        for name, chain_id in (("compound", 31337), ("maker", 31338), ("liquity", 31339)):
            port = free_port()
            nodes.append(start_anvil(port, chain_id, folder / f"{name}.log", detach=False))
            url = f"http://127.0.0.1:{port}"
            with RpcClient(url) as rpc:
                if name == "compound":
                    start = int(parse_start(COMET_OPTIONS.start).timestamp()) - 86_400
                    section = build_compound_v3(BlockBuilder(rpc, timestamp=start), COMET_OPTIONS)
                    options = {"usd_oracle": section["usd_oracle"]}
                    index_market(
                        "compound-v3", url, section["comet"], db, options=options, confirmations=0, name=COMET_NAME
                    )
                    _crash_comet(rpc, section, db)
                    index_market(
                        "compound-v3", url, section["comet"], db, options=options, confirmations=0, name=COMET_NAME
                    )
                elif name == "maker":
                    section = build_maker(BlockBuilder(rpc))
                    _crash_maker(rpc, section)
                    index_market("maker", url, section["chainlog"], db, confirmations=0, name=MAKER_NAME)
                else:
                    section = build_liquity(BlockBuilder(rpc), troves=40, seed=7)
                    _crash_liquity(rpc, section)
                    index_market("liquity-v1", url, section["trove_manager"], db, confirmations=0, name=LIQUITY_NAME)
            manifests[name] = section | {"rpc_url": url}
        score(db)
        yield manifests
    finally:
        for node in nodes:
            stop_process(node.pid)


def test_compound_v3_reserves_equal_the_comet(stand_ins: dict[str, Any]) -> None:
    db, comet = stand_ins["db"], stand_ins["compound"]
    mart = _frame(db, "SELECT * FROM mart_compound_v3_reserves")
    assert mart.height == 1
    row = mart.row(0, named=True)
    block = int(row["block_number"])
    wallets = _frame(db, "SELECT wallet FROM raw_compound_v3_accounts")["wallet"]
    with RpcClient(comet["rpc_url"]) as rpc:
        reserves = _call(rpc, comet["comet"], COMET, "getReserves", block=block)[0]
        target = _call(rpc, comet["comet"], COMET, "targetReserves", block=block)[0]
        liquidatable = [w for w in wallets if _call(rpc, comet["comet"], COMET, "isLiquidatable", w, block=block)[0]]
    assert (int(row["reserves"]), int(row["target_reserves"])) == (reserves, target)
    assert row["reserves_tokens"] == pytest.approx(reserves / 1e6, rel=1e-12)
    assert row["reserves_to_target_pct"] == pytest.approx(100 * reserves / target, rel=1e-12)
    assert row["liquidatable_accounts"] == len(liquidatable) > 0
    # What absorbing them costs is the snapshot's prediction (checked against absorb by the Compound V3 index test).
    absorbs = _frame(db, "SELECT * FROM raw_compound_v3_absorbs WHERE liquidatable")
    assert sorted(absorbs["wallet"]) == sorted(liquidatable)
    paid = sum(int(v) for v in absorbs["reserves_paid"])
    assert row["reserves_after_absorb_tokens"] == pytest.approx((reserves - paid) / 1e6, rel=1e-12)
    assert row["absorb_shortfall_tokens"] == pytest.approx(sum(int(v) for v in absorbs["shortfall"]) / 1e6)
    # The shock figures are the curve's: bad debt at its first drop of every non-stable price past 30 %, and the
    # first drop whose bad debt the reserves cannot pay.
    curve = _frame(
        db,
        "SELECT drop_pct, bad_debt_usd FROM mart_liquidation_curve WHERE market = ? AND axis_kind = 'all_crypto' "
        "ORDER BY drop_pct",
        comet["comet"],
    )
    assert curve.height > 10
    shock = curve.filter(pl.col("drop_pct") >= 30).row(0, named=True)
    assert (row["shock_drop_pct"], row["shock_bad_debt_usd"]) == (shock["drop_pct"], shock["bad_debt_usd"])
    assert row["reserves_cover_shock"] == (row["reserves_usd"] >= shock["bad_debt_usd"])
    uncovered = curve.filter(pl.col("bad_debt_usd") > row["reserves_usd"])["drop_pct"]
    assert row["first_uncovered_drop_pct"] == (uncovered.min() if uncovered.len() else None)


def test_maker_ilk_limits_equal_the_vat_and_the_dog(stand_ins: dict[str, Any]) -> None:
    db, maker = stand_ins["db"], stand_ins["maker"]
    mart = _frame(db, "SELECT * FROM mart_maker_ilks ORDER BY market")
    assert sorted(mart["market"]) == sorted(maker["ilks"])
    block = int(mart["block_number"][0])
    urns = _frame(db, "SELECT ilk, urn FROM raw_maker_urns WHERE art > 0")
    with RpcClient(maker["rpc_url"]) as rpc:
        global_hole, global_dirt = (_call(rpc, maker["dog"], DOG, name, block=block)[0] for name in ("Hole", "Dirt"))
        for row in mart.iter_rows(named=True):
            key = row["market"].encode().ljust(32, b"\x00")
            art, rate, _, line, dust = _call(rpc, maker["vat"], VAT, "ilks", key, block=block)
            _, _, hole, dirt = _call(rpc, maker["dog"], DOG, "ilks", key, block=block)
            assert row["debt_dai"] == pytest.approx(art * rate / RAD, rel=1e-12)
            assert row["line_dai"] == pytest.approx(line / RAD, rel=1e-12)
            assert row["line_used_pct"] == pytest.approx(100 * art * rate / line, rel=1e-12)
            assert row["dust_dai"] == pytest.approx(dust / RAD, rel=1e-12)
            assert row["hole_room_dai"] == pytest.approx((hole - dirt) / RAD, rel=1e-12)
            assert row["global_room_dai"] == pytest.approx((global_hole - global_dirt) / RAD, rel=1e-12)
            room = max(0, min(hole - dirt, global_hole - global_dirt))
            assert row["liquidation_room_dai"] == pytest.approx(room / RAD, rel=1e-12)
            ilk_urns = urns.filter(pl.col("ilk") == row["market"])["urn"]
            barked = [
                u
                for u in ilk_urns
                if _accepts(rpc, MAKER_KEEPER, maker["dog"], DOG.encode("bark", key, u, MAKER_KEEPER), block)
            ]
            assert (row["unsafe_urns"], row["barkable_urns"]) == (len(barked), len(barked)), row["market"]
    assert mart["unsafe_urns"].sum() >= 4
    assert mart["room_covers_unsafe"].to_list() == [
        r["liquidation_room_dai"] >= r["unsafe_tab_dai"] for r in mart.iter_rows(named=True)
    ]


def test_liquity_system_equals_the_trove_manager(stand_ins: dict[str, Any]) -> None:
    db, liquity = stand_ins["db"], stand_ins["liquity"]
    mart = _frame(db, "SELECT * FROM mart_liquity_v1_system")
    exact = _frame(db, "SELECT tcr, ccr FROM stg_liquity_v1_system WHERE is_latest")
    assert mart.height == exact.height == 1
    row = mart.row(0, named=True)
    block = int(row["block_number"])
    troves = _frame(db, "SELECT wallet FROM raw_liquity_v1_troves WHERE debt > 0")
    manager = liquity["trove_manager"]
    with RpcClient(liquity["rpc_url"]) as rpc:
        price = _call(rpc, liquity["price_feed"], PRICE_FEED, "lastGoodPrice", block=block)[0]
        tcr = _call(rpc, manager, TROVE_MANAGER, "getTCR", price, block=block)[0]
        ccr = _call(rpc, manager, TROVE_MANAGER, "CCR", block=block)[0]
        recovery = _call(rpc, manager, TROVE_MANAGER, "checkRecoveryMode", price, block=block)[0]
        deposits = _call(rpc, liquity["stability_pool"], STABILITY_POOL, "getTotalLUSDDeposits", block=block)[0]
        icr = {
            w: _call(rpc, manager, TROVE_MANAGER, "getCurrentICR", w, price, block=block)[0] for w in troves["wallet"]
        }
        debt = {w: _call(rpc, manager, TROVE_MANAGER, "getEntireDebtAndColl", w, block=block)[0] for w in icr}
        accepted = [
            w for w in icr if _accepts(rpc, liquity["keeper"], manager, LIQUIDATION.encode("liquidate", w), block)
        ]
    assert (int(exact["tcr"][0]), int(exact["ccr"][0])) == (tcr, ccr)
    assert row["tcr_pct"] == pytest.approx(tcr / 1e16, rel=1e-12)
    assert row["recovery_mode"] == recovery
    assert row["price_usd"] == pytest.approx(price / WAD, rel=1e-12)
    assert row["stability_pool_lusd"] == pytest.approx(deposits / WAD, rel=1e-12)
    assert row["liquidatable_troves"] == len(accepted) > 0
    assert row["liquidatable_debt_lusd"] == pytest.approx(sum(debt[w] for w in accepted) / WAD, rel=1e-12)
    assert row["sp_cover_pct"] == pytest.approx(100 * deposits / sum(debt[w] for w in accepted), rel=1e-9)
    below = [w for w, r in icr.items() if r < ccr]
    assert row["below_ccr_troves"] == len(below)
    assert row["below_ccr_debt_lusd"] == pytest.approx(sum(debt[w] for w in below) / WAD, rel=1e-12)
    # Recovery Mode starts where TCR meets CCR: at that price the system's ratio is CCR (to the price's last wei).
    rm_price = row["recovery_mode_price_usd"] * WAD
    assert tcr * rm_price / price == pytest.approx(ccr, rel=1e-9)


def test_markets_page_shows_the_three_protocols(stand_ins: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    db = stand_ins["db"]
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    app = AppTest.from_file(APP, default_timeout=120)
    app.query_params["page"] = "markets"
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    subheaders = [s.value for s in app.subheader]
    for heading in ("Compound V3: reserves", "Maker/Sky: ilk limits", "Liquity V1: system"):
        assert heading in subheaders, subheaders
    shown = {key: frame for d in app.dataframe for key, frame in [(tuple(d.value.columns), d.value)]}
    comet = next(f for cols, f in shown.items() if "reserves_tokens" in cols)
    mart = _frame(db, "SELECT * FROM mart_compound_v3_reserves")
    assert comet["reserves_tokens"].tolist() == mart["reserves_tokens"].to_list()
    ilks = next(f for cols, f in shown.items() if "line_used_pct" in cols)
    assert sorted(ilks["market_label"]) == sorted(
        _frame(db, "SELECT market_label FROM mart_maker_ilks")["market_label"]
    )
    assert all("LR " in label for label in ilks["market_label"]), "the liquidation ratio is named in the label"
    # Every market runs on a stand-in, and every label says so, on this page and in the shared labels view.
    every = next(f for cols, f in shown.items() if "seizable_collateral_usd" in cols)
    assert len(every) == 5 and all("(stand-in)" in label for label in every["market_label"]), list(
        every["market_label"]
    )
    assert all(
        "(stand-in)" in label for label in _frame(db, "SELECT market_label FROM stg_market_labels")["market_label"]
    )
    system = next(f for cols, f in shown.items() if "tcr_pct" in cols)
    assert system["tcr_pct"].tolist() == _frame(db, "SELECT tcr_pct FROM mart_liquity_v1_system")["tcr_pct"].to_list()


def test_the_marts_name_each_market_as_the_labels_view(stand_ins: dict[str, Any]) -> None:
    db = stand_ins["db"]
    labels = dict(_frame(db, "SELECT market, market_label FROM stg_market_labels").iter_rows())
    for mart in ("mart_compound_v3_reserves", "mart_maker_ilks", "mart_liquity_v1_system"):
        shown = _frame(db, f"SELECT market, market_label FROM {mart}")
        assert shown.height > 0, mart
        assert {m: label for m, label in shown.iter_rows()} == {m: labels[m] for m in shown["market"]}, mart
