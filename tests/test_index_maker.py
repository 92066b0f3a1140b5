"""Maker adapter against the Maker stand-ins (chainrisk's own Solidity, not Maker's bytecode) on its own anvil.

* every urn's ink and art equal Vat.urns, its debt art * rate with Vat.ilks' rate, every vault the devnet opened is
  found, each by the methods that can see it, with its CDP owner now;
* the verdict equals Dog.bark's: an eth_call of bark from the keeper succeeds exactly on the urns we call unsafe
  (health_factor < 1, health_factor_wad < 1e18, the engine's liquidatable), including an urn unsafe by one wei of
  price; bark's amounts equal ours;
* the dripped rate equals Jug.drip's at the snapshot (an eth_call) and after a real drip months later, and the
  verdicts after that drip equal bark's; the verdicts at the OSM's next price equal bark's after the poke that
  brings it in; the engine's shocked verdicts equal bark's after the OSM moves;
* WBTC's 8 decimals: positions count token units, the Vat 18-decimal units;
* urns given by list are found where the logs are not read; bad input is one line and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from chainrisk.abi import Abi, eth_call, event_topic, load_abi
from chainrisk.config import market_config
from chainrisk.devnet.maker import HOP, MAKER_KEEPER, build_maker, overload_calldata
from chainrisk.devnet.node import DEPLOYER, BlockBuilder, Receipt, free_port, start_anvil
from chainrisk.devnet.toolchain import folder_contracts, standin_contracts
from chainrisk.errors import UserError
from chainrisk.jobs.index import index_market
from chainrisk.protocols.adapter import find_preset
from chainrisk.protocols.maker.events import KICK
from chainrisk.protocols.maker.maths import MakerRevert, drip
from chainrisk.protocols.maker.snapshot import LENS_RUNTIME, READER
from chainrisk.rpc import RpcClient, RpcError
from chainrisk.scoring.health import stress
from chainrisk.scoring.snapshot import score_positions
from chainrisk.store.views import query_sql
from tests.chainops import as_json

VAT = load_abi("maker", "Vat")
TAKE = event_topic("Take(uint256,uint256,uint256,uint256,uint256,uint256,address)")
DOG = load_abi("maker", "Dog")
JUG = load_abi("maker", "Jug")
SPOTTER = load_abi("maker", "Spotter")
OSM = load_abi("maker", "OSM")
MANAGER = load_abi("maker", "DssCdpManager")
WAD, RAY, RAD = 10**18, 10**27, 10**45
CHAIN_ID = 31337
#: Jug.drip vectors recorded from Maker's own jug.sol (dss 1.0.0, solc 0.5.12); provenance inside the file.
JUG_VECTORS = Path(__file__).resolve().parent / "data" / "maker_jug_drip_vectors.json"
#: What makerdao/dss's own Vat, Spotter, Jug, Dog, Clipper and LinearDecrease answered after the same build
#: (tests/vectors/record_maker.py; its `source` says how).
REAL_MAKER = Path(__file__).resolve().parent / "data" / "maker_vectors.json"


@pytest.fixture(scope="module")
def maker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("maker")
    port = free_port()
    process = start_anvil(port, CHAIN_ID, folder / "anvil.log", detach=False)
    try:
        url = f"http://127.0.0.1:{port}"
        with RpcClient(url) as rpc:
            manifest = build_maker(BlockBuilder(rpc))
            manifest["built_block"] = int(rpc.call("eth_blockNumber"), 16)
        manifest["rpc_url"] = url
        yield manifest
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def rpc(maker: dict[str, Any]) -> Iterator[RpcClient]:
    with RpcClient(maker["rpc_url"]) as client:
        yield client


@pytest.fixture(scope="module")
def db(maker: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = tmp_path_factory.mktemp("maker-db") / "chainrisk.duckdb"
    index_market("maker", maker["rpc_url"], maker["chainlog"], path)
    return path


def _rows(db: Path, sql: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute(sql)
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _frame(db: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _block(db: Path) -> int:
    block: int = _rows(db, "SELECT max(block_number) AS b FROM raw_maker_urns")[0]["b"]
    return block


def _timestamp(rpc: RpcClient, block: int) -> int:
    return int(rpc.call("eth_getBlockByNumber", [hex(block), False])["timestamp"], 16)


def _key(ilk: str) -> bytes:
    return ilk.encode().ljust(32, b"\x00")


def _file(builder: BlockBuilder, to: str, signature: str, *args: Any) -> None:
    """The deployer calls one of a stand-in's overloaded `file`s, named by its signature (queued on `builder`)."""
    builder.send(DEPLOYER, to, overload_calldata(signature, *args), signature)


@contextmanager
def _sandbox(rpc: RpcClient) -> Iterator[None]:
    """Whatever happens inside is rolled back (anvil snapshot)."""
    snapshot = rpc.call("evm_snapshot")
    try:
        yield
    finally:
        assert rpc.call("evm_revert", [snapshot]) is True


def _bark_refusal(rpc: RpcClient, dog: str, ilk: str, urn: str, tag: str) -> str | None:
    """None when Dog.bark from the keeper goes through (eth_call), else its revert message."""
    data = DOG.encode("bark", _key(ilk), urn, MAKER_KEEPER)
    try:
        rpc.call("eth_call", [{"from": MAKER_KEEPER, "to": dog, "data": data}, tag])
    except RpcError as exc:
        return exc.message
    return None


def _bark_verdicts(
    rpc: RpcClient, maker: dict[str, Any], urns: list[tuple[str, str]], tag: str
) -> set[tuple[str, str]]:
    """The (ilk, urn) pairs Dog.bark accepts at `tag`; every refusal must be the not-unsafe one (the devnet leaves
    room under every limit)."""
    accepted = set()
    for ilk, urn in urns:
        refusal = _bark_refusal(rpc, maker["dog"], ilk, urn, tag)
        if refusal is None:
            accepted.add((ilk, urn))
        else:
            assert "Dog/not-unsafe" in refusal, (ilk, urn, refusal)
    return accepted


def _borrowers(db: Path) -> list[tuple[str, str]]:
    return [(r["ilk"], r["urn"]) for r in _rows(db, "SELECT ilk, urn FROM raw_maker_urns WHERE art > 0 ORDER BY 1, 2")]


def maker_state(rpc: RpcClient, section: dict[str, Any], block: int) -> dict[str, Any]:
    """What the system answers at `block` after the build: each vault's urn (ink, art) and gem and dai in the Vat; each
    ilk's Vat, Jug, Spotter and Dog records and its Clipper's auctions (count, kicks, the running list, each sale and
    its status); the Vat's debt, bad debt, the vow's and the keeper's dai and sin, the Dog's Dirt and Hole, the Jug's
    base. Read through the stand-ins' ABIs, whose getters are dss's; what tests/vectors/record_maker.py records from
    dss's own contracts."""
    tag = hex(block)
    abi = {name: Abi(c.abi) for name, c in standin_contracts("maker").items()}
    calls: list[tuple[str, str, str, str, tuple[Any, ...]]] = []  # (key, contract, address, fn, args)
    for vault in section["vaults"]:
        ilk, urn = _key(vault["ilk"]), vault["urn"]
        where = f"{vault['ilk']}|{urn.lower()}"
        calls += [
            (f"urn|{where}|{fn}", "Vat", section["vat"], fn, a) for fn, a in (("urns", (ilk, urn)), ("gem", (ilk, urn)))
        ]
    for name, item in sorted(section["ilks"].items()):
        ilk = _key(name)
        for contract, address in (
            ("Vat", section["vat"]),
            ("Jug", section["jug"]),
            ("Spotter", section["spot"]),
            ("Dog", section["dog"]),
        ):
            calls.append((f"ilk|{name}|{contract}.ilks", contract, address, "ilks", (ilk,)))
        for fn in ("kicks", "count", "list", "chost", "tau"):
            contract = "LinearDecrease" if fn == "tau" else "Clipper"
            calls.append((f"ilk|{name}|{contract}.{fn}", contract, item["calc" if fn == "tau" else "clip"], fn, ()))
    for who, address in (("vow", section["vow"]), ("keeper", section["keeper"])):
        calls += [(f"system|{who}.{fn}", "Vat", section["vat"], fn, (address,)) for fn in ("dai", "sin")]
    calls += [(f"system|Vat.{fn}", "Vat", section["vat"], fn, ()) for fn in ("debt", "vice", "Line")]
    calls += [(f"system|Dog.{fn}", "Dog", section["dog"], fn, ()) for fn in ("Dirt", "Hole")]
    calls += [("system|Jug.base", "Jug", section["jug"], "base", ())]
    answers = rpc.batch([eth_call(address, abi[c], fn, *a, block=tag) for _, c, address, fn, a in calls])
    state: dict[str, Any] = {}
    for (key, contract, _, fn, _), raw in zip(calls, answers, strict=True):
        values = abi[contract].decode(fn, raw)
        state[key] = as_json(values[0] if len(values) == 1 else values)
    sales = [
        (name, item["clip"], auction)
        for name, item in sorted(section["ilks"].items())
        for auction in state[f"ilk|{name}|Clipper.list"]
    ]
    clip = abi["Clipper"]
    reads = rpc.batch([eth_call(c, clip, fn, a, block=tag) for _, c, a in sales for fn in ("sales", "getStatus")])
    for k, (name, _, auction) in enumerate(sales):
        state[f"sale|{name}|{auction}|sales"] = as_json(clip.decode("sales", reads[2 * k]))
        state[f"sale|{name}|{auction}|getStatus"] = as_json(clip.decode("getStatus", reads[2 * k + 1]))
    return state


def test_the_stand_ins_end_where_dss_does(maker: dict[str, Any], rpc: RpcClient) -> None:
    """The same build on makerdao/dss's own Vat, Spotter, Jug (1.0.0), Dog, Clipper and LinearDecrease (LIQ-2.0)
    (tests/data/maker_vectors.json) and on the stand-ins: the same barks and takes, and every urn, ilk, auction and
    system figure the build leaves is the same, to the unit."""
    real = json.loads(REAL_MAKER.read_text())
    assert maker["built_block"] == real["built_block"]
    assert maker["history"] == real["history"]
    ours = maker_state(rpc, maker, maker["built_block"])
    assert ours.keys() == real["state"].keys()
    for key, value in real["state"].items():
        assert ours[key] == value, key
    auctions = [k for k in real["state"] if k.startswith("sale|")]
    urns = [k for k in real["state"] if k.startswith("urn|") and k.endswith("|urns")]
    assert auctions and len(urns) >= 20 and real["history"]["barked"], (len(auctions), len(urns))


def test_urns_equal_the_vat_and_every_vault_is_found(maker: dict[str, Any], rpc: RpcClient, db: Path) -> None:
    block = _block(db)
    tag = hex(block)
    stored = _rows(db, f"SELECT * FROM raw_maker_urns WHERE block_number = {block}")
    rates = {
        ilk: VAT.decode("ilks", rpc.call(*eth_call(maker["vat"], VAT, "ilks", _key(ilk), block=tag)))[1]
        for ilk in maker["ilks"]
    }
    raw = rpc.batch([eth_call(maker["vat"], VAT, "urns", _key(r["ilk"]), r["urn"], block=tag) for r in stored])
    for row, answer in zip(stored, raw, strict=True):
        ink, art = VAT.decode("urns", answer)
        assert (int(row["ink"]), int(row["art"])) == (ink, art), row["urn"]
        assert int(row["debt"]) == art * rates[row["ilk"]]
    # Every vault the devnet left non-empty is indexed, found by the methods able to see it.
    found = {(r["ilk"], r["urn"]): r for r in stored}
    expected_methods = {"cdp-manager": "cdp-manager,vat-logs", "vat": "vat-logs", "fork": "vat-logs"}
    checked = 0
    for vault in maker["vaults"]:
        ink, art = VAT.decode("urns", rpc.call(*eth_call(maker["vat"], VAT, "urns", _key(vault["ilk"]), vault["urn"])))
        if not ink and not art:
            continue
        row = found[(vault["ilk"], vault["urn"])]
        assert row["found_by"] == expected_methods[vault["via"]], vault
        if vault["cdp_id"] is not None:
            owner = MANAGER.decode("owns", rpc.call(*eth_call(maker["cdp_manager"], MANAGER, "owns", vault["cdp_id"])))
            assert row["owner"] == vault["owner"] == str(owner[0]).lower()
            assert row["cdp_id"] == vault["cdp_id"]
        checked += 1
    assert checked == len(stored) >= 20
    assert {v["via"] for v in maker["vaults"]} == {"cdp-manager", "vat", "fork"}
    print(f"{len(stored)} urns equal Vat.urns; every devnet vault found by the methods that can see it")


def test_verdicts_equal_dog_bark(maker: dict[str, Any], rpc: RpcClient, db: Path) -> None:
    block = _block(db)
    rows = {(r["ilk"], r["urn"]): r for r in _rows(db, f"SELECT * FROM raw_maker_urns WHERE block_number = {block}")}
    health = {
        (r["market"], r["wallet"]): r
        for r in _rows(db, f"SELECT * FROM wallet_health WHERE protocol = 'maker' AND block_number = {block}")
    }
    engine = score_positions(_frame(db, f"SELECT * FROM positions WHERE block_number = {block}"))["wallet_risk"]
    liquidatable = set(engine.filter(pl.col("liquidatable")).select("market", "wallet").iter_rows())
    chain = _bark_verdicts(rpc, maker, _borrowers(db), hex(block))
    ours = {key for key, r in rows.items() if not r["safe"]}
    assert ours == chain == liquidatable
    assert {k for k, h in health.items() if h["health_factor"] is not None and h["health_factor"] < 1} == chain
    assert {
        k for k, h in health.items() if h["health_factor_wad"] is not None and h["health_factor_wad"] < WAD
    } == chain
    assert {k for k, r in rows.items() if r["bark_refusal"] is None} == chain
    assert 4 <= len(chain) < len(rows)
    # The urn drawn to the Vat's last wei and left unsafe by a one-wei price move: ink * spot short of art * rate
    # by under one part in 1e20, where a nearest-rounded ratio reads 1.0.
    edge = [k for k, h in health.items() if int(h["health_factor_wad"] or WAD) == WAD - 1]
    assert len(edge) == 1 and edge[0] in chain and edge[0] in liquidatable
    ink, art = int(rows[edge[0]]["ink"]), int(rows[edge[0]]["art"])
    ilk = _rows(db, f"SELECT rate, spot FROM raw_maker_ilks WHERE ilk = '{edge[0][0]}' AND block_number = {block}")[0]
    assert Fraction(ink * int(ilk["spot"]), art * int(ilk["rate"])) > 1 - Fraction(1, 10**20)
    # wallet_health.health_factor_wad is floor(ink * spot * 1e18 / (art * rate)) with the chain's ilk figures.
    for key, h in health.items():
        r = rows[key]
        i = _rows(db, f"SELECT rate, spot FROM raw_maker_ilks WHERE ilk = '{key[0]}' AND block_number = {block}")[0]
        if int(r["art"]):
            expected = int(r["ink"]) * int(i["spot"]) * WAD // (int(r["art"]) * int(i["rate"]))
            assert int(h["health_factor_wad"]) == expected
    print(f"bark accepts exactly our {len(chain)} unsafe urns of {len(rows)}, the one-wei edge urn included")


def test_bark_amounts_equal_ours(maker: dict[str, Any], rpc: RpcClient, db: Path, tmp_path: Path) -> None:
    """The keeper barks the largest unsafe urn: the Bark event's ink, art and due equal bark_dink, bark_dart and
    bark_due. With mainnet ETH-A's keeper incentive filed on the clip (tip 250 dai, chip 0.1 %), the reward the
    liquidation call predicts is the coin the Clipper's Kick pays, to the wei, and the penalty it predicts is the Kick's
    tab over the Bark's due. Indexed, the bark's keeper is the `kpr` it named (here not its sender: the Kick says it,
    the Bark does not), with the Kick's incentive and penalty, and so is the liquidator of the grab it made."""
    block = _block(db)
    row = _rows(
        db,
        f"SELECT * FROM raw_maker_urns WHERE block_number = {block} AND bark_refusal IS NULL "
        "ORDER BY bark_due_dai DESC LIMIT 1",
    )[0]
    bark_topic = event_topic("Bark(bytes32,address,uint256,uint256,uint256,address,uint256)")
    credited = "0x00000000000000000000000000000000000b0a75"
    copy = tmp_path / "barked.duckdb"
    shutil.copy(db, copy)
    clip = maker["ilks"][row["ilk"]]["clip"]
    calls = f"SELECT * FROM ({query_sql('stg_maker_liquidation_calls')}) WHERE wallet = '{row['urn']}'"
    with _sandbox(rpc):
        builder = BlockBuilder(rpc, timestamp=_timestamp(rpc, block))
        _file(builder, clip, "file(bytes32,uint256)", _key("tip"), 250 * RAY * WAD)
        _file(builder, clip, "file(bytes32,uint256)", _key("chip"), WAD // 1000)
        builder.mine(0)
        index_market("maker", maker["rpc_url"], maker["chainlog"], copy)
        (predicted,) = _rows(copy, calls)
        builder.call(MAKER_KEEPER, DOG, maker["dog"], "bark", _key(row["ilk"]), row["urn"], credited)
        receipt = builder.mine(0)[-1]
        index_market("maker", maker["rpc_url"], maker["chainlog"], copy)
    (kick,) = [log for log in receipt.logs if log["topics"][0] == KICK and log["address"] == clip]
    coin = int(kick["data"][2 + 64 * 3 : 2 + 64 * 4], 16)
    assert coin > 250 * RAY * WAD and int(predicted["keeper_reward_debt"]) == coin // RAY
    tab = int(kick["data"][2 + 64 : 2 + 64 * 2], 16)
    barks = _rows(
        copy, f"SELECT * FROM ({query_sql('stg_maker_events')}) WHERE event = 'bark' AND block_number > {block}"
    )
    keepers = [(b["wallet"], b["keeper"], int(b["keeper_incentive_dai"])) for b in barks]
    assert keepers == [(row["urn"], credited, coin // RAY)]
    grabs = _rows(copy, f"SELECT * FROM ({query_sql('stg_maker_liquidations')}) WHERE block_number > {block}")
    assert [(g["wallet"], g["liquidator"], int(g["keeper_reward_debt"])) for g in grabs] == [
        (row["urn"], credited, coin // RAY)
    ]
    logs = [log for log in receipt.logs if log["topics"][0] == bark_topic]
    assert len(logs) == 1
    words = [int(logs[0]["data"][2 + 64 * k : 2 + 64 * (k + 1)], 16) for k in range(4)]
    ink, art, due = words[0], words[1], words[2]
    assert (ink, art) == (int(row["bark_dink"]), int(row["bark_dart"]))
    assert due / 10**45 == pytest.approx(row["bark_due_dai"], rel=1e-15)
    assert due // 10**27 == int(row["bark_due"]), "the due to the wei, as the Bark logs it"
    # The liquidation penalty: the tab (due x chop) the auction must raise over the due, each floored to the wei.
    penalty = tab // RAY - due // RAY
    assert penalty > 0 and int(predicted["protocol_fee_debt"]) == penalty
    assert [(int(g["protocol_fee_debt"]), g["protocol_fee_collateral"]) for g in grabs] == [(penalty, 0)]


def test_bad_debt_is_what_the_clipper_leaves_the_vow_short(maker: dict[str, Any], rpc: RpcClient, db: Path) -> None:
    """Each unsafe urn barked whole and its lot taken at once at the feed's price (buf 1 for the test, so the auction
    starts there): the Vow's shortfall, the debt bark queued (Vat.sin) less the dai the sale raised (Vat.dai), equals
    the engine's bad debt. chop is the Vow's penalty: an urn worth more than its debt and less than its tab raises the
    debt and part of the penalty, and leaves no bad debt."""
    block = _block(db)
    urns = _rows(db, f"SELECT * FROM raw_maker_urns WHERE block_number = {block} AND bark_refusal IS NULL")
    whole = [r for r in urns if int(r["bark_dart"]) == int(r["art"])]
    engine = stress(_frame(db, f"SELECT * FROM positions WHERE block_number = {block}"))
    predicted = {(r["market"], r["wallet"]): r for r in engine.iter_rows(named=True)}
    vat, clipper = (Abi(standin_contracts("maker")[name].abi) for name in ("Vat", "Clipper"))

    def vow_balances() -> tuple[int, int]:
        sin, dai = (
            int(vat.decode(f, rpc.call(*eth_call(maker["vat"], vat, f, maker["vow"])))[0]) for f in ("sin", "dai")
        )
        return sin, dai

    in_the_penalty = 0
    for r in whole:
        clip = maker["ilks"][r["ilk"]]["clip"]
        with _sandbox(rpc):
            builder = BlockBuilder(rpc, timestamp=_timestamp(rpc, block))
            _file(builder, clip, "file(bytes32,uint256)", _key("buf"), RAY)
            builder.mine(0)
            sin, dai = vow_balances()
            builder.call(MAKER_KEEPER, DOG, maker["dog"], "bark", _key(r["ilk"]), r["urn"], MAKER_KEEPER)
            builder.mine(0)
            sale = int(clipper.decode("kicks", rpc.call(*eth_call(clip, clipper, "kicks")))[0])
            _, tab, lot, *_ = clipper.decode("sales", rpc.call(*eth_call(clip, clipper, "sales", sale)))
            # The same block's timestamp as the kick: the auction's price is its top, the feed's price.
            builder.call(MAKER_KEEPER, clipper, clip, "take", sale, lot, 10**40, MAKER_KEEPER, b"")
            assert all(receipt.ok for receipt in builder.mine(0))
            queued, raised = (after - before for after, before in zip(vow_balances(), (sin, dai), strict=True))
        debt = predicted[(r["ilk"], r["urn"])]
        usd_per_dai = debt["debt_usd"] / (queued / 10**45)
        short = max(0, queued - raised) / 10**45
        assert debt["bad_debt_usd"] / usd_per_dai == pytest.approx(short, rel=1e-9, abs=1e-9)
        assert float(r["bad_debt_dai"]) == pytest.approx(short, rel=1e-9, abs=1e-9)
        in_the_penalty += queued < raised < tab
    assert len(whole) >= 4 and in_the_penalty >= 1
    print(f"{len(whole)} urns barked and sold: the engine's bad debt is the Vow's shortfall on each")


def test_drip_equals_jug(maker: dict[str, Any], rpc: RpcClient, db: Path) -> None:
    """rate_dripped equals Jug.drip's answer at the snapshot (eth_call); months later, a real drip moves the Vat's
    rate to drip() of the stored duty, rho and rate; verdicts after a drip at the snapshot's time equal bark's."""
    block = _block(db)
    tag = hex(block)
    ilks = _rows(db, f"SELECT * FROM raw_maker_ilks WHERE block_number = {block}")
    for i in ilks:
        answer = rpc.call(
            "eth_call", [{"from": DEPLOYER, "to": maker["jug"], "data": JUG.encode("drip", _key(i["ilk"]))}, tag]
        )
        assert JUG.decode("drip", answer)[0] == int(i["rate_dripped"]) > int(i["rate"])
    urns = _rows(db, f"SELECT * FROM raw_maker_urns WHERE block_number = {block}")
    rate_dripped = {i["ilk"]: int(i["rate_dripped"]) for i in ilks}
    for u in urns:
        assert int(u["debt_dripped"]) == int(u["art"]) * rate_dripped[u["ilk"]]
    now = _timestamp(rpc, block)
    with _sandbox(rpc):
        # The same timestamp as the snapshot: the drip lands exactly where rate_dripped was computed.
        builder = BlockBuilder(rpc, timestamp=now)
        for i in ilks:
            builder.call(DEPLOYER, JUG, maker["jug"], "drip", _key(i["ilk"]))
        builder.mine(0)
        after = _bark_verdicts(rpc, maker, _borrowers(db), "latest")
    assert after == {(u["ilk"], u["urn"]) for u in urns if not u["safe_after_drip"]}
    assert after > {(u["ilk"], u["urn"]) for u in urns if not u["safe"]}  # the urn drawn to the limit
    later = now + 120 * 24 * 3600 + 7
    with _sandbox(rpc):
        builder = BlockBuilder(rpc, timestamp=later)
        for i in ilks:
            builder.call(DEPLOYER, JUG, maker["jug"], "drip", _key(i["ilk"]))
        builder.mine(0)
        for i in ilks:
            rate = VAT.decode("ilks", rpc.call(*eth_call(maker["vat"], VAT, "ilks", _key(i["ilk"]))))[1]
            predicted = drip(int(i["rate"]), int(i["duty"]), int(i["base"]), int(i["rho"]), later)
            assert rate == predicted
            for u in (u for u in urns if u["ilk"] == i["ilk"]):
                _, art = VAT.decode("urns", rpc.call(*eth_call(maker["vat"], VAT, "urns", _key(i["ilk"]), u["urn"])))
                assert art * rate == int(u["art"]) * predicted
    print(f"Jug.drip equals ours at the snapshot and 120 days later on {len(ilks)} ilks")


def test_next_price_verdicts_equal_bark_after_the_poke(maker: dict[str, Any], rpc: RpcClient, db: Path) -> None:
    block = _block(db)
    urns = _rows(db, f"SELECT * FROM raw_maker_urns WHERE block_number = {block}")
    ilks = _rows(db, f"SELECT * FROM raw_maker_ilks WHERE block_number = {block}")
    assert all(i["price_method"] == "peek" for i in ilks)
    # The OSMs answer only their whitelist: the values above came through the bud override.
    with pytest.raises(RpcError, match="OSM/contract-not-whitelisted"):
        rpc.call("eth_call", [{"from": READER, "to": ilks[0]["pip"], "data": OSM.encode("peep")}, hex(block)])
    assert any(int(i["price_next"]) < int(i["price"]) for i in ilks)
    with _sandbox(rpc):
        builder = BlockBuilder(rpc, timestamp=_timestamp(rpc, block))
        for i in ilks:
            builder.call(DEPLOYER, OSM, i["pip"], "poke")
        builder.mine(HOP)
        for i in ilks:
            builder.call(DEPLOYER, SPOTTER, maker["spot"], "poke", _key(i["ilk"]))
        builder.mine(0)
        for i in ilks:
            spot = VAT.decode("ilks", rpc.call(*eth_call(maker["vat"], VAT, "ilks", _key(i["ilk"]))))[2]
            assert spot == int(i["spot_next"])
        chain = _bark_verdicts(rpc, maker, _borrowers(db), "latest")
    ours = {(u["ilk"], u["urn"]) for u in urns if not u["safe_at_next_price"]}
    now = {(u["ilk"], u["urn"]) for u in urns if not u["safe"]}
    assert chain == ours and ours > now
    print(f"at the OSM's next price bark accepts exactly our {len(ours)} urns (now {len(now)})")


@pytest.mark.parametrize("factor", [Fraction(80, 100), Fraction(55, 100)], ids=["-20 %", "-45 %"])
def test_engine_shocks_equal_bark_after_the_osm_moves(
    maker: dict[str, Any], rpc: RpcClient, db: Path, factor: Fraction
) -> None:
    """Every source cut to `factor` of the OSM's current value and brought in by two OSM rounds: Dog.bark's
    verdicts equal the engine's stress() with each gem's multiplier new / current value. The shock also depegs dai
    by 20 %: the Vat values debt at the Spotter's par, so no dai price moves a verdict (the debt rows' price_fixed)."""
    block = _block(db)
    ilks = _rows(db, f"SELECT * FROM raw_maker_ilks WHERE block_number = {block}")
    positions = _frame(db, f"SELECT * FROM positions WHERE block_number = {block}")
    dai = positions.filter(pl.col("is_borrowing"))
    assert dai["price_fixed"].all() and not positions.filter(~pl.col("is_borrowing"))["price_fixed"].any()
    source = Abi(standin_contracts("maker")["PriceSource"].abi)
    new = {i["ilk"]: int(int(i["price"]) * factor) for i in ilks}
    multipliers = pl.DataFrame(
        {
            "symbol": [i["symbol"] for i in ilks] + dai["symbol"].unique().to_list(),
            "multiplier": [new[i["ilk"]] / int(i["price"]) for i in ilks] + [0.8] * dai["symbol"].n_unique(),
        }
    )
    predicted = stress(positions, multipliers).filter(pl.col("liquidatable")).select("market", "wallet")
    with _sandbox(rpc):
        builder = BlockBuilder(rpc, timestamp=_timestamp(rpc, block))
        for i in ilks:
            builder.call(DEPLOYER, source, maker["ilks"][i["ilk"]]["source"], "poke", new[i["ilk"]].to_bytes(32, "big"))
        builder.mine(0)
        for _ in range(2):  # the first round queues the new value, the second makes it current
            for i in ilks:
                builder.call(DEPLOYER, OSM, i["pip"], "poke")
            builder.mine(HOP)
        for i in ilks:
            builder.call(DEPLOYER, SPOTTER, maker["spot"], "poke", _key(i["ilk"]))
        builder.mine(0)
        chain = _bark_verdicts(rpc, maker, _borrowers(db), "latest")
    assert set(predicted.iter_rows()) == chain
    assert len(chain) > sum(
        1 for r in _rows(db, f"SELECT safe FROM raw_maker_urns WHERE block_number = {block}") if not r["safe"]
    )
    print(f"x{float(factor)}: the engine and bark agree on {len(chain)} liquidatable urns")


def test_wbtc_units(db: Path) -> None:
    """WBTC (8 decimals) enters the Vat through GemJoin5 as 18-decimal units: positions count satoshis
    (ink / 1e10), its USD value follows the OSM price per whole WBTC."""
    block = _block(db)
    rows = _rows(
        db,
        "SELECT u.ink, p.collateral_amount, p.decimals, p.collateral_usd, i.price_usd FROM raw_maker_urns u "
        "JOIN positions p ON p.market = u.ilk AND p.wallet = u.urn AND p.used_as_collateral "
        "AND p.block_number = u.block_number "
        "JOIN raw_maker_ilks i ON i.ilk = u.ilk AND i.block_number = u.block_number "
        f"WHERE u.ilk = 'WBTC-A' AND u.block_number = {block}",
    )
    assert len(rows) >= 3
    for r in rows:
        assert r["decimals"] == 8 and int(r["collateral_amount"]) == int(r["ink"]) // 10**10
        whole = int(r["collateral_amount"]) / 1e8
        assert r["collateral_usd"] == pytest.approx(whole * r["price_usd"], rel=1e-9)


def test_listed_urns_are_found_without_logs(maker: dict[str, Any], rpc: RpcClient, db: Path, tmp_path: Path) -> None:
    """Indexed from the head only (no NewCdp, no Vat notes): exactly the listed urns are found, by the list."""
    block = _block(db)
    direct = [v for v in maker["vaults"] if v["via"] == "vat"]
    listed = {(direct[0]["ilk"], direct[0]["urn"]), (direct[1]["ilk"], direct[1]["urn"])}
    urn_file = tmp_path / "vaults.txt"
    # One urn in every ilk, one in its own (and in capitals); a comment.
    urn_file.write_text(f"# vaults we watch\n{direct[0]['urn']}\n{direct[1]['ilk']}:0x{direct[1]['urn'][2:].upper()}\n")
    fresh = tmp_path / "listed.duckdb"
    with _sandbox(rpc):
        rpc.call("evm_mine", [_timestamp(rpc, block) + 12])  # an empty block: its logs are the only ones read
        index_market(
            "maker", maker["rpc_url"], maker["chainlog"], fresh, options={"urns": str(urn_file)}, from_block=block + 1
        )
    rows = _rows(fresh, "SELECT ilk, urn, found_by, ink, art FROM raw_maker_urns")
    assert {(r["ilk"], r["urn"]) for r in rows} == listed
    assert {r["found_by"] for r in rows} == {"list"}
    reference = {
        (r["ilk"], r["urn"]): (r["ink"], r["art"])
        for r in _rows(db, f"SELECT * FROM raw_maker_urns WHERE block_number = {block}")
    }
    assert all(reference[(r["ilk"], r["urn"])] == (r["ink"], r["art"]) for r in rows)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_input_is_one_line_and_changes_nothing(maker: dict[str, Any], db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copy(db, copy)
    before = _digest(copy)
    binary = tmp_path / "urns.bin"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    cases: list[tuple[str, dict[str, Any], str]] = [
        (maker["vat"], {}, "is not a Maker ChainLog"),
        (maker["chainlog"], {"expected_chain_id": 1}, "serves chain 31337"),
        ("0x" + "11" * 20, {}, "no contract at"),
        (maker["chainlog"], {"options": {"urns": "0x1234,not-an-urn"}}, "is not an urn address"),
        # Stop 71: a binary file was an internal error (UnicodeDecodeError), a missing one "is not an urn address".
        (maker["chainlog"], {"options": {"urns": str(binary)}}, "is not a text file"),
        (maker["chainlog"], {"options": {"urns": str(tmp_path / "missing" / "urns.txt")}}, "no file at"),
    ]
    for address, kwargs, message in cases:
        with pytest.raises(UserError) as caught:
            index_market("maker", maker["rpc_url"], address, copy, **kwargs)
        assert message in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
        with pytest.raises(UserError):
            index_market("maker", maker["rpc_url"], address, tmp_path / "new.duckdb", **kwargs)
    assert _digest(copy) == before
    assert not (tmp_path / "new.duckdb").exists()


def test_committed_lens_runtime_matches_its_source() -> None:
    folder = Path(__file__).resolve().parent.parent / "chainrisk" / "protocols" / "maker" / "contracts"
    assert folder_contracts(folder)["MakerVaultsLens"].runtime == LENS_RUNTIME


def test_drip_equals_dss_jug_vectors() -> None:
    """maths.drip (Jug.drip with rpow's rounding) equals Maker's own jug.sol on 48 recorded cases, 1 s to 7 years
    at 0 % to 100 % a year with and without `base`, and reverts where it reverts (rpow overflow)."""
    vectors = json.loads(JUG_VECTORS.read_text())["vectors"]
    for v in vectors:
        args = (int(v["prev"]), int(v["duty"]), int(v["base"]), v["rho"], v["now"])
        if v["reverts"]:
            with pytest.raises(MakerRevert):
                drip(*args)
        else:
            assert drip(*args) == int(v["rate"]), v
    assert sum(not v["reverts"] for v in vectors) == 48


def test_cli_takes_the_urn_list_as_an_option(maker: dict[str, Any], tmp_path: Path) -> None:
    """`chainrisk index --protocol maker --option urns=FILE` indexes; a malformed option is one line, exit 2; in a
    config the option passes unchecked as an address (the adapter checks it) while Morpho's stays an address."""
    urn_file = tmp_path / "urns.txt"
    urn_file.write_text(maker["vaults"][1]["urn"] + "\n")
    base = ["index", "--protocol", "maker", "--address", maker["chainlog"], "--rpc-url", maker["rpc_url"]]
    done = _chainrisk(*base, "--option", f"urns={urn_file}", "--db", str(tmp_path / "cli.duckdb"))
    assert done.returncode == 0, done.stderr
    bad = _chainrisk(*base, "--option", "urns", "--db", str(tmp_path / "bad.duckdb"))
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "give KEY=VALUE" in lines[0]
    assert not (tmp_path / "bad.duckdb").exists()
    market = market_config({"preset": "maker-ethereum", "urns": "vaults.txt"}, "test")
    assert market.options == {"urns": "vaults.txt"} and market.address == find_preset("maker-ethereum").address
    with pytest.raises(UserError, match="usd_oracle"):
        market_config({"preset": "morpho-blue-ethereum", "usd_oracle": "vaults.txt"}, "test")


def _chainrisk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainrisk.cli", *args], capture_output=True, text=True, timeout=180, check=False
    )


def _words(data: str, count: int) -> list[int]:
    return [int(data[2 + 64 * k : 2 + 64 * (k + 1)], 16) for k in range(count)]


def test_auctions_equal_the_clippers(maker: dict[str, Any], rpc: RpcClient, db: Path, tmp_path: Path) -> None:
    """Four urns barked at once, their auctions then run four ways on the Clipper: A's whole lot taken at its start
    (its tab raised, the rest of the collateral back to the urn), B's third of a lot taken (running, then past the
    clip's tail: needs redo), D's whole lot taken late at a low price (sold out: the Vow short), C left past its tail
    and reset by a keeper paid for it, on a clip whose curve is a StairstepExponentialDecrease (stand-in). Indexed:
    each auction's due, tab, raised dai, collateral sold and returned, shortfall and status equal the Bark, Kick, Take
    and Redo logs and the Clipper's sales and getStatus, the grab's bad debt is its auction's shortfall; and ten
    minutes later the running auctions' prices equal getStatus again with no new version stored for them (the price
    curves' maths, linear and stairstep, run on the stored sale)."""
    block = _block(db)
    urns = _rows(
        db,
        f"SELECT * FROM raw_maker_urns WHERE block_number = {block} AND bark_refusal IS NULL AND bark_dart = art "
        "ORDER BY collateral_dai / bark_tab_dai DESC",
    )
    assert len(urns) >= 4
    a, b, c, d = urns[0], urns[1], urns[2], urns[-1]
    contracts = standin_contracts("maker")
    vat, clipper = (Abi(contracts[name].abi) for name in ("Vat", "Clipper"))
    dog = Abi(contracts["Dog"].abi)
    clip_of = {r["urn"]: maker["ilks"][r["ilk"]]["clip"] for r in (a, b, c, d)}
    credited = "0x00000000000000000000000000000000000c0de5"
    copy = tmp_path / "auctions.duckdb"
    shutil.copy(db, copy)
    auctions_sql = f"SELECT * FROM ({query_sql('stg_maker_auctions')}) WHERE kicked_block > {block}"

    def sale(urn: str) -> tuple[int, ...]:
        return tuple(clipper.decode("sales", rpc.call(*eth_call(clip_of[urn], clipper, "sales", ids[urn]))))

    def status(urn: str) -> tuple[int, ...]:
        answer = clipper.decode("getStatus", rpc.call(*eth_call(clip_of[urn], clipper, "getStatus", ids[urn])))
        return tuple(answer[:2])  # needsRedo, price (the stand-in answers lot and tab too, as dss's latest does)

    def gem(r: dict[str, Any]) -> int:
        return int(vat.decode("gem", rpc.call(*eth_call(maker["vat"], vat, "gem", _key(r["ilk"]), r["urn"])))[0])

    with _sandbox(rpc):
        builder = BlockBuilder(rpc, timestamp=_timestamp(rpc, block))
        # Room for every bark and dai for every take; C's clip on a stairstep curve (mainnet's clips use one) with
        # ETH-A's keeper incentive, so its reset pays.
        builder.call(DEPLOYER, vat, maker["vat"], "suck", maker["vow"], MAKER_KEEPER, 10**9 * RAD)
        _file(builder, maker["dog"], "file(bytes32,uint256)", _key("Hole"), 10**12 * RAD)
        for r in (a, b, c, d):
            _file(builder, maker["dog"], "file(bytes32,bytes32,uint256)", _key(r["ilk"]), _key("hole"), 10**12 * RAD)
        stairstep = builder.deploy(
            contracts["StairstepExponentialDecrease"], label="StairstepExponentialDecrease (stand-in)"
        )
        _file(builder, stairstep, "file(bytes32,uint256)", _key("cut"), RAY * 99 // 100)
        _file(builder, stairstep, "file(bytes32,uint256)", _key("step"), 90)
        _file(builder, clip_of[c["urn"]], "file(bytes32,address)", _key("calc"), stairstep)
        _file(builder, clip_of[c["urn"]], "file(bytes32,uint256)", _key("tip"), 250 * RAD)
        _file(builder, clip_of[c["urn"]], "file(bytes32,uint256)", _key("chip"), WAD // 1000)
        builder.mine(0)
        gems_before = {r["urn"]: gem(r) for r in (a, d)}
        for r in (a, b, c, d):
            builder.call(MAKER_KEEPER, dog, maker["dog"], "bark", _key(r["ilk"]), r["urn"], MAKER_KEEPER)
        receipts = builder.mine(0)
        assert all(receipt.ok for receipt in receipts)
        kicks = [log for receipt in receipts for log in receipt.logs if log["topics"][0] == KICK]
        ids = {"0x" + log["topics"][2][-40:]: int(log["topics"][1], 16) for log in kicks}
        kicked = {"0x" + log["topics"][2][-40:]: _words(log["data"], 4) for log in kicks}  # top, tab, lot, coin
        takes = []

        def take(urn: str, share: int) -> None:
            """The keeper bids for 1 / share of the lot at any price."""
            lot = sale(urn)[2] // share
            builder.call(MAKER_KEEPER, clipper, clip_of[urn], "take", ids[urn], lot, 10**40, MAKER_KEEPER, b"")

        take(a["urn"], 1)
        take(b["urn"], 3)
        takes += builder.mine(0)
        take(d["urn"], 1)
        takes += builder.mine(5940)  # 55 % into the linear curve's three hours: 45 % of the start, above the cusp
        builder.mine(8400 - 5940 + 1)  # past the tail (140 minutes) of every auction kicked
        builder.call(MAKER_KEEPER, clipper, clip_of[c["urn"]], "redo", ids[c["urn"]], credited)
        redo = builder.mine(60)[-1]
        assert all(receipt.ok for receipt in [*takes, redo])
        index_market("maker", maker["rpc_url"], maker["chainlog"], copy)
        found = {r["wallet"]: r for r in _rows(copy, auctions_sql)}
        live = {u: (sale(u), status(u)) for u in (b["urn"], c["urn"])}
        raw = {r["urn"]: r for r in _rows(copy, "SELECT * FROM raw_maker_auctions")}
        gems_after = {r["urn"]: gem(r) for r in (a, d)}
        grabs = {
            r["wallet"]: r
            for r in _rows(copy, f"SELECT * FROM ({query_sql('stg_maker_liquidations')}) WHERE block_number > {block}")
        }
        # Ten minutes on: the prices move along each curve, the stored versions do not.
        builder.mine(600)
        versions = _rows(copy, "SELECT count(*) AS n FROM history.raw_maker_auctions")[0]["n"]
        index_market("maker", maker["rpc_url"], maker["chainlog"], copy)
        later = {r["urn"]: r for r in _rows(copy, "SELECT * FROM raw_maker_auctions")}
        later_status = {u: status(u) for u in (b["urn"], c["urn"])}
        assert _rows(copy, "SELECT count(*) AS n FROM history.raw_maker_auctions")[0]["n"] == versions

    taken = {}
    for receipt in takes:
        for log in receipt.logs:
            if log["topics"][0] == TAKE:
                taken["0x" + log["topics"][2][-40:]] = _words(log["data"], 5)  # max, price, owe, tab, lot
    assert set(found) == {a["urn"], b["urn"], c["urn"], d["urn"]}
    # Who bought: each take's sender, as its transaction names it (the Take event does not).
    senders = {u: receipt.tx.sender.lower() for receipt in takes for u in _take_urns(receipt)}
    assert set(senders) == {a["urn"], b["urn"], d["urn"]}
    for urn, row in found.items():
        expected = (1, senders[urn], taken[urn][2] // RAY) if urn in senders else (0, None, None)
        paid = row["top_buyer_paid_dai"]
        assert (row["buyers"], row["top_buyer"], None if paid is None else int(paid)) == expected
    for r in (a, b, c, d):
        row = found[r["urn"]]
        _top, tab, lot, _coin = kicked[r["urn"]]
        assert int(row["due_dai"]) == int(r["bark_due"]) and int(row["tab_dai"]) == tab // RAY
        units = 10 ** (18 - int(maker["ilks"][r["ilk"]]["decimals"]))
        if r["urn"] in taken:
            _max, _price, owe, _tab_left, lot_left = taken[r["urn"]]
            assert int(row["raised_dai"]) == owe // RAY
            assert int(row["collateral_sold"]) == (lot - lot_left) // units or row["status"] == "needs redo"
    # A: the tab raised at once, the rest of the lot back to the urn's gem balance in the Vat.
    assert found[a["urn"]]["status"] == "raised" and int(found[a["urn"]]["shortfall_dai"]) == 0
    returned = gems_after[a["urn"]] - gems_before[a["urn"]]
    units = 10 ** (18 - int(maker["ilks"][a["ilk"]]["decimals"]))
    assert returned == taken[a["urn"]][4] > 0 and int(found[a["urn"]]["collateral_returned"]) == returned // units
    assert (
        int(found[a["urn"]]["penalty_raised_dai"])
        == int(found[a["urn"]]["raised_dai"]) - int(found[a["urn"]]["due_dai"])
        > 0
    )
    assert grabs[a["urn"]]["bad_debt_tokens"] == 0
    # D: every unit sold late for less than the due: the Vow's shortfall is the due less what the take paid.
    assert found[d["urn"]]["status"] == "sold out" and gems_after[d["urn"]] == gems_before[d["urn"]]
    shortfall = int(found[d["urn"]]["due_dai"]) - taken[d["urn"]][2] // RAY
    assert shortfall > 0 and int(found[d["urn"]]["shortfall_dai"]) == shortfall
    assert grabs[d["urn"]]["bad_debt_tokens"] == pytest.approx(shortfall / 1e18, rel=1e-12)
    # B and C run: their tab, lot, price and verdict are the Clipper's, C reset once and its keeper paid.
    assert found[b["urn"]]["status"] == "needs redo" and found[c["urn"]]["status"] == "running"
    for urn, ((_pos, tab, lot, _usr, _tic, _top), (needs_redo, price)) in live.items():
        assert int(raw[urn]["tab_dai"]) == tab // RAY and int(raw[urn]["lot"]) == lot
        assert int(raw[urn]["price"]) == price and raw[urn]["needs_redo"] is needs_redo
        assert int(later[urn]["price"]) == later_status[urn][1] and later[urn]["needs_redo"] is later_status[urn][0]
        assert int(later[urn]["price"]) < price or price == 0
    assert raw[c["urn"]]["calc_kind"] == "stairstep-exponential" and raw[b["urn"]]["calc_kind"] in (
        "linear",
        "stairstep-exponential",
    )
    (redo_log,) = [
        log
        for log in redo.logs
        if log["topics"][0] == event_topic("Redo(uint256,uint256,uint256,uint256,address,address,uint256)")
    ]
    coin = _words(redo_log["data"], 4)[3]
    assert coin > 0 and found[c["urn"]]["redos"] == 1 and int(found[c["urn"]]["redo_incentives_dai"]) == coin // RAY
    assert grabs[b["urn"]]["bad_debt_tokens"] is None and grabs[c["urn"]]["bad_debt_tokens"] is None


def test_an_auction_outlives_its_replaced_clipper(
    maker: dict[str, Any], rpc: RpcClient, db: Path, tmp_path: Path
) -> None:
    """Two urns of one ilk barked, then governance gives the ilk a new Clipper (Dog.file(ilk, "clip", new)) while
    both auctions run on the old one, which keeps selling them: one is then taken whole there. The Dog no longer names
    the old clip, but its barks do: indexed on from before (a file that followed the old clip) and from scratch (a
    first index that meets the bark and the take in one range of logs), the taken auction ends with what its take
    raised and the running one carries the old Clipper's sale, neither "not followed"."""
    block = _block(db)
    barkable = _rows(
        db,
        f"SELECT ilk, urn FROM raw_maker_urns WHERE block_number = {block} AND bark_refusal IS NULL "
        "AND bark_dart = art ORDER BY ilk, urn",
    )
    by_ilk: dict[str, list[str]] = {}
    for r in barkable:
        by_ilk.setdefault(r["ilk"], []).append(r["urn"])
    ilk, (sold, running) = next((i, u[:2]) for i, u in sorted(by_ilk.items()) if len(u) >= 2)
    contracts = standin_contracts("maker")
    vat, clipper, dog = (Abi(contracts[name].abi) for name in ("Vat", "Clipper", "Dog"))
    old_clip = maker["ilks"][ilk]["clip"]
    copy = tmp_path / "replaced.duckdb"
    shutil.copy(db, copy)
    auctions_sql = f"SELECT * FROM ({query_sql('stg_maker_auctions')}) WHERE kicked_block > {block}"
    with _sandbox(rpc):
        builder = BlockBuilder(rpc, timestamp=_timestamp(rpc, block))
        builder.call(DEPLOYER, vat, maker["vat"], "suck", maker["vow"], MAKER_KEEPER, 10**9 * RAD)
        _file(builder, maker["dog"], "file(bytes32,uint256)", _key("Hole"), 10**12 * RAD)
        _file(builder, maker["dog"], "file(bytes32,bytes32,uint256)", _key(ilk), _key("hole"), 10**12 * RAD)
        builder.mine(0)
        for urn in (sold, running):
            builder.call(MAKER_KEEPER, dog, maker["dog"], "bark", _key(ilk), urn, MAKER_KEEPER)
        kicks = [log for r in builder.mine(0) for log in r.logs if log["topics"][0] == KICK]
        ids = {"0x" + log["topics"][2][-40:]: int(log["topics"][1], 16) for log in kicks}
        index_market("maker", maker["rpc_url"], maker["chainlog"], copy)
        new_clip = builder.deploy(
            contracts["Clipper"], maker["vat"], maker["spot"], maker["dog"], _key(ilk), label="Clipper (stand-in)"
        )
        _file(builder, maker["dog"], "file(bytes32,bytes32,address)", _key(ilk), _key("clip"), new_clip)
        builder.mine(60)
        lot = clipper.decode("sales", rpc.call(*eth_call(old_clip, clipper, "sales", ids[sold])))[2]
        builder.call(MAKER_KEEPER, clipper, old_clip, "take", ids[sold], lot, 10**40, MAKER_KEEPER, b"")
        (take,) = builder.mine(60)
        assert take.ok
        dog_clip = dog.decode("ilks", rpc.call(*eth_call(maker["dog"], dog, "ilks", _key(ilk))))[0]
        assert dog_clip.lower() == new_clip.lower() != old_clip
        index_market("maker", maker["rpc_url"], maker["chainlog"], copy)
        fresh = tmp_path / "fresh.duckdb"
        index_market("maker", maker["rpc_url"], maker["chainlog"], fresh)
        tab_left = clipper.decode("sales", rpc.call(*eth_call(old_clip, clipper, "sales", ids[running])))[1]
    (owe,) = [_words(log["data"], 3)[2] for log in take.logs if log["topics"][0] == TAKE]
    for path in (copy, fresh):
        found = {r["wallet"]: r for r in _rows(path, auctions_sql)}
        assert {found[u]["clip"] for u in (sold, running)} == {old_clip}
        assert found[sold]["status"] in ("raised", "sold out") and found[sold]["takes"] == 1
        assert abs(int(found[sold]["raised_dai"]) - owe // RAY) <= 1  # the tab's fall, each tab floored to the wei
        assert found[running]["status"] in ("running", "needs redo")
        assert int(found[running]["tab_left_dai"]) == tab_left // RAY and int(found[running]["raised_dai"]) == 0


def _take_urns(receipt: Receipt) -> list[str]:
    """The urns whose auctions the receipt's Take logs sold for."""
    return ["0x" + log["topics"][2][-40:] for log in receipt.logs if log["topics"][0] == TAKE]


def test_a_clip_that_does_not_answer_leaves_its_auctions_unknown(
    maker: dict[str, Any], rpc: RpcClient, db: Path, tmp_path: Path
) -> None:
    """One ilk's Clipper self-destructed (its code gone) and another's answering as something else (the Vat's code,
    which has no `list()`): the run goes on, every other ilk's auctions are read, and a data_quality row per odd clip
    says its auctions are unknown."""
    block = _block(db)
    copy = tmp_path / "odd-clips.duckdb"
    shutil.copy(db, copy)
    ilks = sorted(maker["ilks"])
    gone, other = (maker["ilks"][i]["clip"] for i in ilks[:2])
    before = {r["clip"] for r in _rows(db, "SELECT DISTINCT clip FROM raw_maker_auctions")}
    assert {gone, other} <= before
    with _sandbox(rpc):
        rpc.call("anvil_setCode", [gone, "0x"])
        rpc.call("anvil_setCode", [other, rpc.call("eth_getCode", [maker["vat"], "latest"])])
        BlockBuilder(rpc, timestamp=_timestamp(rpc, block)).mine(60)
        report = index_market("maker", maker["rpc_url"], maker["chainlog"], copy)
    assert report.data_quality == {"auctions_unread": 2}
    quality = _rows(copy, "SELECT market, subject FROM data_quality WHERE protocol = 'maker' ORDER BY market")
    assert sorted((q["market"], q["subject"]) for q in quality) == sorted(zip(ilks[:2], (gone, other), strict=True))
    clips = {r["clip"] for r in _rows(copy, "SELECT DISTINCT clip FROM raw_maker_auctions")}
    assert clips == before - {gone, other} and clips
