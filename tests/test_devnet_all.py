"""The full devnet (what `chainrisk devnet up` builds by default: Aave V3.0.2 and V3.6 and Morpho Blue from their real
bytecode, and the labelled Comet, Maker and Liquity stand-ins, on one chain), indexed by `chainrisk run --devnet`,
against the chain:

* every protocol has markets and positions in the tables;
* Aave 3.6: every wallet's health factor (and account figures) equal getUserAccountData;
* Comet: health < 1 exactly when isLiquidatable, balances equal balanceOf / borrowBalanceOf / collateralBalanceOf;
* Maker: an urn is unsafe exactly when ink * spot < art * rate, read from the Vat;
* Liquity: every trove's debt and collateral equal getEntireDebtAndColl;
* the demo's risk commands run on every protocol (native ETH balances read with eth_getBalance);
* contagion moves prices by address: a symbol the asset graph links at one address and not at another (the
  stand-ins' own wstETH) moves apart, the same way whatever the book's row order;
* `devnet status` is a short summary naming real bytecode and stand-ins; `--json` prints the manifest; the
  dashboard's Devnet page labels every protocol's contracts real bytecode or stand-in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from chainrisk.abi import eth_call
from chainrisk.assets import NATIVE_ETH
from chainrisk.chains.contagion import contagion
from chainrisk.chains.graph import links_from_frame
from chainrisk.chains.lookthrough import vault_holdings
from chainrisk.cli import main
from chainrisk.config import devnet_config
from chainrisk.devnet.extras import EXTRA_SECTIONS
from chainrisk.devnet.summary import REAL, STAND_IN
from chainrisk.jobs.risk import bad_debt_rules, chain_balances, latest_links, latest_positions
from chainrisk.rpc import RpcClient
from chainrisk.store.db import Store
from tests.databases import copy_of
from tests.test_aave36_devnet import check_account_data
from tests.test_app import assert_clean, open_page, table_with
from tests.test_index_compound_v3 import _check_balances, _check_health
from tests.test_index_liquity_v1 import TROVE_MANAGER, _call, _troves
from tests.test_index_maker import VAT, _key, _rows
from tests.test_storage_history import check_raw_as_of, run_twice, versions_added


@pytest.fixture(scope="module")
def full_rpc(full_devnet: dict[str, Any]) -> Any:
    with RpcClient(full_devnet["rpc_url"]) as client:
        yield client


def test_every_protocol_has_markets_and_positions(full_devnet: dict[str, Any], full_db: Path) -> None:
    assert set(EXTRA_SECTIONS.values()) <= set(full_devnet)
    for key in ("compound_v3", "maker", "liquity_v1"):
        assert full_devnet[key]["stand_in"] is True and "stand-in" in full_devnet[key]["label"], key
    assert full_devnet["aave_v3_6"]["stand_in"] is False
    config = devnet_config(full_devnet, full_db)
    assert len(config.markets) == 6
    assert all("stand-in" in m.name for m in config.markets if m.protocol in {"compound-v3", "maker", "liquity-v1"})
    markets = {(r["protocol"], r["source"]) for r in _rows(full_db, "SELECT DISTINCT protocol, source FROM markets")}
    positions = {
        (r["protocol"], r["source"]): r["n"]
        for r in _rows(full_db, "SELECT protocol, source, count(*) AS n FROM positions GROUP BY ALL")
    }
    for market in config.markets:
        found = [key for key in markets if key[0] == market.protocol and market.address in str(key[1]).lower()]
        assert found, market.name
        assert sum(positions.get(key, 0) for key in found) > 0, market.name
    assert {p for p, _ in positions} == {"aave-v3", "morpho-blue", "compound-v3", "maker", "liquity-v1"}


def test_aave_v3_6_health_equals_get_user_account_data(
    full_devnet: dict[str, Any], full_rpc: RpcClient, full_db: Path
) -> None:
    section = full_devnet["aave_v3_6"]
    provider = section["pool_addresses_provider"].lower()
    rows = check_account_data(full_rpc, full_db, section["pool"], f"source = '{provider}'")
    wallets = {r[0] for r in rows}
    assert set(section["wallets"].values()) <= wallets | {section["wallets"]["receiver"]}
    # Healthy, risky and liquidated wallets: some below health 1, most above, and the keeper's liquidations.
    health = [int(r[7]) for r in rows if r[7] is not None]
    assert any(h < 10**18 for h in health) and sum(h >= 10**18 for h in health) > len(health) // 2
    assert section["liquidations"] >= 2 and section["deficits"]


def test_comet_health_below_one_exactly_when_liquidatable(
    full_devnet: dict[str, Any], full_rpc: RpcClient, full_db: Path
) -> None:
    comet = full_devnet["compound_v3"]
    wallets = [*comet["wallets"], *comet["recipients"], comet["liquidity_provider"], comet["keeper"]]
    assert _check_balances(full_rpc, full_db, comet["comet"], wallets, comet["tokens"]) >= 20
    _check_health(full_rpc, full_db, comet["comet"])


def test_maker_unsafe_exactly_when_ink_spot_below_art_rate(
    full_devnet: dict[str, Any], full_rpc: RpcClient, full_db: Path
) -> None:
    vat = full_devnet["maker"]["vat"]
    block = _rows(full_db, "SELECT max(block_number) AS b FROM raw_maker_urns")[0]["b"]
    urns = _rows(full_db, f"SELECT ilk, urn, ink, art, safe FROM raw_maker_urns WHERE block_number = {block}")
    health = {
        (r["market"], r["wallet"]): r["health_factor_wad"]
        for r in _rows(full_db, f"SELECT * FROM wallet_health WHERE protocol = 'maker' AND block_number = {block}")
    }
    ilks = {
        ilk: VAT.decode("ilks", full_rpc.call(*eth_call(vat, VAT, "ilks", _key(ilk), block=hex(block))))
        for ilk in full_devnet["maker"]["ilks"]
    }
    raw = full_rpc.batch([eth_call(vat, VAT, "urns", _key(u["ilk"]), u["urn"], block=hex(block)) for u in urns])
    unsafe = set()
    for urn, answer in zip(urns, raw, strict=True):
        ink, art = VAT.decode("urns", answer)
        _, rate, spot, *_ = ilks[urn["ilk"]]
        assert (int(urn["ink"]), int(urn["art"])) == (ink, art)
        chain_unsafe = ink * spot < art * rate
        assert (not urn["safe"]) == chain_unsafe, urn
        wad = health.get((urn["ilk"], urn["urn"]))
        if art:
            assert (wad is not None and int(wad) < 10**18) == chain_unsafe, urn
        if chain_unsafe:
            unsafe.add(urn["urn"])
    assert unsafe and len(unsafe) < len(urns) and full_devnet["maker"]["history"]["barked"]


def test_liquity_troves_equal_get_entire_debt_and_coll(
    full_devnet: dict[str, Any], full_rpc: RpcClient, full_db: Path
) -> None:
    tm = full_devnet["liquity_v1"]["trove_manager"]
    troves = _troves(full_db)
    block = int(troves["block_number"][0])
    assert troves.height >= 15
    for row in troves.iter_rows(named=True):
        chain = _call(full_rpc, tm, TROVE_MANAGER, "getEntireDebtAndColl", row["wallet"], block=block)
        ours = tuple(int(row[c]) for c in ("entire_debt", "entire_coll", "pending_lusd_debt", "pending_eth"))
        assert ours == chain, row["wallet"]
    assert full_devnet["liquity_v1"]["liquidations"] > 0


def test_interest_opens_no_raw_version_and_every_raw_table_comes_back(
    full_devnet: dict[str, Any], full_rpc: RpcClient, tmp_path: Path
) -> None:
    """Two runs an hour apart on every protocol: accrued interest (Aave's indexes, Comet's indices, balances and
    getReserves(), Jug.drip's rate and urns' debt, Morpho's totals) opens no version; every raw table of both
    snapshots comes back exactly, the accrued columns recomputed for the later block equal to what the chain
    answered then."""
    runs = run_twice(full_devnet, full_rpc, tmp_path / "chainrisk.duckdb")
    protocols = {p for p, _ in runs["indexed"]}
    assert {"aave-v3", "compound-v3", "maker", "morpho-blue", "liquity-v1"} <= protocols
    assert versions_added(runs) == {}
    assert check_raw_as_of(runs) >= 2 * 12


def test_devnet_status_is_short_and_json_is_the_manifest(
    full_devnet: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    state = full_devnet["state_dir"]
    assert main(["devnet", "status", "--state-dir", state]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) <= 10 and "running" in lines[0] and f"{full_devnet['head_block']:,}" in lines[0]
    protocols = lines[2:]
    assert len(protocols) == 6
    assert sum(line.endswith(STAND_IN) for line in protocols) == 3
    assert sum(line.endswith(REAL) for line in protocols) == 3
    comet = next(line for line in protocols if "Comet" in line)
    assert f"{len(full_devnet['compound_v3']['history']['absorbed'])} liquidation" in comet
    assert main(["devnet", "status", "--state-dir", state, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = json.loads((Path(state) / "manifest.json").read_text())
    assert printed == {"running": True, **stored}


def test_devnet_page_labels_real_bytecode_and_stand_ins(
    full_devnet: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAINRISK_MANIFEST", str(Path(full_devnet["state_dir"]) / "manifest.json"))
    app = open_page("devnet")
    assert_clean(app)
    protocols = table_with(app, "liquidations")
    labels = dict(zip(protocols["protocol"], protocols["bytecode"], strict=True))
    real = {"Aave V3.0.2", "Morpho Blue", "Aave V3.6.0"}
    stand_ins = {"Compound V3 (Comet)", "Maker/Sky", "Liquity V1"}
    assert labels == {p: REAL for p in real} | {p: STAND_IN for p in stand_ins}
    contracts = table_with(app, "contract")
    for protocol, bytecode in labels.items():
        assert set(contracts[contracts["protocol"] == protocol]["bytecode"]) == {bytecode}, protocol
    comet = contracts[contracts["protocol"] == "Compound V3 (Comet)"]
    assert full_devnet["compound_v3"]["comet"] in set(comet["address"])
    assert full_devnet["aave_v3_6"]["pool"] in set(contracts["address"])


#: The risk commands of the Makefile's demo target, smaller where they sample.
DEMO_RISK = (
    ["stress", "--window", "luna-2022", "--step-hours", "24"],
    ["var", "--scenarios", "500", "--horizons", "24", "--backtest", "2022-05-01..2022-06-30"],
    ["optimise", "--devnet", "--swap-into", "USDC"],
    ["cascade", "--shock", "WETH=-30%", "--shock", "wstETH=-30%"],
    ["contagion", "--shock", "WETH=-35%", "--shock", "stETH=-35%"],
)


def test_demo_risk_commands_run_on_every_protocol(
    full_devnet: dict[str, Any], full_rpc: RpcClient, full_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = copy_of(full_db, tmp_path)
    monkeypatch.setenv("CHAINRISK_STATE_DIR", str(Path(full_devnet["state_dir"]).parent))
    for kind, *options in DEMO_RISK:
        assert main(["risk", kind, "--db", str(copy), *options]) == 0, kind
    # The Chains page lists what the contagion run could not carry: the stand-ins' own wstETH keeps its price.
    monkeypatch.setenv("CHAINRISK_DB", str(copy))
    app = open_page("chains")
    assert_clean(app)
    assert any("wstETH: 2 of 4 addresses move with the shock" in i.value for i in app.info), [i.value for i in app.info]
    # Liquity's collateral is native ETH: the optimiser's balances read it as the node's ether balance.
    positions = latest_positions(copy)
    troves = positions.filter(positions["asset"] == NATIVE_ETH)
    wallets = sorted(set(troves["wallet"]))[:5]
    block = hex(int(troves["block_number"].max()))  # type: ignore[arg-type]
    balances = chain_balances(full_devnet["rpc_url"], troves, wallets)
    for wallet in wallets:
        assert balances.by_wallet[wallet][NATIVE_ETH] == int(full_rpc.call("eth_getBalance", [wallet, block]), 16)


def test_contagion_moves_prices_by_address_whatever_the_row_order(full_db: Path) -> None:
    """The full devnet holds wstETH at four addresses: Aave's two (wrappers of their stETH, in the asset graph) and
    the Maker and Comet stand-ins' own tokens (not linked). A stETH shock moves the first two only, and every order of
    the book's rows gives the same rounds (a shock keyed by symbol took whichever address came last)."""
    positions = latest_positions(full_db)
    links = links_from_frame(latest_links(full_db))
    with Store(full_db, read_only=True) as store:
        rules = bad_debt_rules(positions, store.latest_markets())
    shock = {"WETH": 0.65, "stETH": 0.65}
    wsteth = set(positions.filter(pl.col("symbol") == "wstETH")["asset"])
    linked = {a for a in wsteth if a in links}
    assert len(linked) >= 1 and wsteth - linked, (wsteth, linked)
    results = [
        contagion(book, links, shock, vault_holdings(book, links), rules)
        for book in [positions, *(positions.sample(fraction=1.0, shuffle=True, seed=seed) for seed in range(3))]
    ]
    first = results[0]
    moved = dict(first.assets.filter(pl.col("round") == 1).select("asset", "multiplier").iter_rows())
    assert {a: moved.get(a, 1.0) for a in wsteth} == {a: 0.65 if a in linked else 1.0 for a in wsteth}
    assert any("wstETH" in note and "not linked" in note for note in first.notes), first.notes
    for other in results[1:]:
        assert other.wallets.equals(first.wallets)
        assert other.rounds.equals(first.rounds)
        assert other.markets.equals(first.markets)


@pytest.mark.parametrize(
    ("protocols", "says"),
    [("aave-v3,morpho-blue,comet", "unknown 'comet'; known: aave-v3,morpho-blue,aave-v3.6"), ("maker", "add aave-v3")],
)
def test_bad_protocols_are_one_line_before_anything_starts(
    protocols: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "devnet"
    assert main(["devnet", "up", "--protocols", protocols, "--state-dir", str(state), "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err
    assert not state.exists()
