"""Governance's parameter changes against the chain, on the full devnet: `chainrisk devnet govern`'s proposal moves
settings on every governed protocol (Aave V3.0.2's configurator, Morpho Blue's owner, the Comet stand-in's upgrade,
the Maker stand-ins' files: chainrisk.devnet.governance), then a run reads them. mart_parameter_changes must hold
exactly what the contracts' own getters answer differently at the two snapshots, for every reserve, e-mode category,
collateral, Comet configuration, ilk and Morpho market read both times (so a change the views miss or make up fails);
the `parameter_changed` alert sends each once; the Markets page lists them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import httpx
import polars as pl
import pytest
from eth_utils.crypto import keccak

from chainrisk.abi import Abi, eth_call, event_topic, load_abi
from chainrisk.alerts.deliver import run_alerts
from chainrisk.alerts.rules import parse_alerts
from chainrisk.cli import main
from chainrisk.dashboard.governance import change_words
from chainrisk.dashboard.markets_page import aave_reserves, comet_models, market_changes
from chainrisk.dashboard.rate_curves import aave_curves, comet_curves
from chainrisk.devnet.compound_v3 import COLLATERALS
from chainrisk.devnet.governance import govern
from chainrisk.devnet.node import BlockBuilder
from chainrisk.protocols.adapter import GOVERNANCE_EVENT_COLUMNS, PARAMETER_CHANGE_COLUMNS
from chainrisk.protocols.morpho_blue.irm import YEAR
from chainrisk.rpc import RpcClient
from chainrisk.store.db import Store
from chainrisk.store.views import QUERIES_DIR, query_sql
from chainrisk.units import setting_text
from tests.chainops import sandbox
from tests.databases import copy_of
from tests.test_alerts import HOOK, Receiver
from tests.test_app import assert_clean, open_page, table_with
from tests.test_index_compound_v3 import COMET
from tests.test_index_maker import VAT, _key, _rows

CONFIGURATOR = load_abi("aave-v3", "IPoolConfigurator")
DATA_PROVIDER = load_abi("aave-v3", "AaveProtocolDataProvider")
POOL = load_abi("aave-v3", "IPool")
ORACLE = load_abi("aave-v3", "IAaveOracle")
STRATEGY = load_abi("aave-v3", "IDefaultInterestRateStrategy")
#: The interest rate curve's settings and the 3.0.2 strategy's getters of them.
CURVE = {
    "optimal_usage_ratio": "OPTIMAL_USAGE_RATIO",
    "base_variable_borrow_rate": "getBaseVariableBorrowRate",
    "variable_rate_slope1": "getVariableRateSlope1",
    "variable_rate_slope2": "getVariableRateSlope2",
}
MORPHO = load_abi("morpho-blue", "IMorpho")
#: Morpho Blue's EventsLib events that say its owner changed a fee or someone created a market.
SET_FEE = "SetFee(bytes32,uint256)"
#: OpenZeppelin's ERC1967 proxy event, which the Comet's proxy logs at an upgrade.
UPGRADED = "Upgraded(address)"
#: The logs the devnet proposal's Aave calls emit (IPoolConfigurator and IAaveOracle of @aave/core-v3 1.19)...
AAVE_CALLS_LOG = {
    "ReserveFactorChanged": "ReserveFactorChanged(address,uint256,uint256)",
    "CollateralConfigurationChanged": "CollateralConfigurationChanged(address,uint256,uint256,uint256)",
    "SupplyCapChanged": "SupplyCapChanged(address,uint256,uint256)",
    "ReserveFrozen": "ReserveFrozen(address,bool)",
    "EModeCategoryAdded": "EModeCategoryAdded(uint8,uint256,uint256,uint256,address,string)",
    "ReserveInterestRateStrategyChanged": "ReserveInterestRateStrategyChanged(address,address,address)",
    "AssetSourceUpdated": "AssetSourceUpdated(address,address)",
}
#: Where the Maker stand-ins log each file the proposal makes, as the deployed contracts do: the contract, topic0, and
#: the topics holding the ilk (None: the Clipper's, of one ilk) and the setting's name (dss 1.0.0's Vat `note` and
#: src/lib.sol's LibNote, which the Spotter inherits; src/dog.sol's and src/clip.sol's File events).
_VAT_FILE = "0x" + keccak(b"file(bytes32,bytes32,uint256)")[:4].hex() + "00" * 28
MAKER_FILES = {
    "line": ("vat", _VAT_FILE, 1, 2),
    "dust": ("vat", _VAT_FILE, 1, 2),
    "mat": ("spot", _VAT_FILE, 2, 3),
    "chop": ("dog", "0x" + keccak(b"File(bytes32,bytes32,uint256)").hex(), 1, 2),
    "clip_buf": ("clip", "0x" + keccak(b"File(bytes32,uint256)").hex(), None, 1),
    "clip_tail": ("clip", "0x" + keccak(b"File(bytes32,uint256)").hex(), None, 1),
}
#: ... and which each setting the proposal moves is logged by (setReserveFactor, configureReserveAsCollateral,
#: setSupplyCap, setReserveFreeze, setEModeCategory, setReserveInterestRateStrategyAddress, setAssetSources).
AAVE_CALL_EMITS = {
    ("reserve", "reserve_factor"): "ReserveFactorChanged",
    ("reserve", "ltv"): "CollateralConfigurationChanged",
    ("reserve", "liquidation_threshold"): "CollateralConfigurationChanged",
    ("reserve", "liquidation_bonus"): "CollateralConfigurationChanged",
    ("reserve", "supply_cap"): "SupplyCapChanged",
    ("reserve", "frozen"): "ReserveFrozen",
    ("e-mode category", "ltv"): "EModeCategoryAdded",
    ("e-mode category", "liquidation_threshold"): "EModeCategoryAdded",
    ("reserve", "interest_rate_strategy"): "ReserveInterestRateStrategyChanged",
    ("reserve", "variable_rate_slope2"): "ReserveInterestRateStrategyChanged",
    ("reserve", "price_source"): "AssetSourceUpdated",
}
CREATE_MARKET = "CreateMarket(bytes32,(address,address,address,address,uint256))"
DOG = load_abi("maker", "Dog")
SPOTTER = load_abi("maker", "Spotter")
CLIPPER = load_abi("maker", "Clipper")
#: A change as the mart keys it, and its exact old and new values.
Key = tuple[str, str, str, str]  # protocol, item_kind, item, parameter
Readings = dict[Key, str]


def _text(value: Any) -> str:
    """A value as the views give it exactly: integers in decimal, booleans as true/false, addresses lowercase."""
    if isinstance(value, bool):
        return "true" if value else "false"
    address = isinstance(value, str) and value.startswith("0x") and len(value) == 42
    return str(value).lower() if address else str(value)


def _reader(rpc: RpcClient, tag: str) -> Callable[..., Any]:
    def read(to: str, abi: Abi, fn: str, args: tuple[Any, ...] = ()) -> Any:
        return abi.decode(fn, rpc.call(*eth_call(to, abi, fn, *args, block=tag)))

    return read


def _aave(rpc: RpcClient, section: dict[str, Any], tag: str) -> Readings:
    """Every reserve's settings from AaveProtocolDataProvider, its oracle source from the AaveOracle, its interest rate
    strategy from the pool and the strategy's curve from the strategy, and e-mode category 1's from the pool."""
    read = _reader(rpc, tag)
    provider, found = section["data_provider"], Readings()
    for reserve in section["reserves"].values():
        asset = reserve["asset"].lower()
        config = read(provider, DATA_PROVIDER, "getReserveConfigurationData", (asset,))
        _, ltv, threshold, bonus, factor, _, borrowing, stable, active, frozen = config
        borrow_cap, supply_cap = read(provider, DATA_PROVIDER, "getReserveCaps", (asset,))
        settings = {
            "ltv": ltv,
            "liquidation_threshold": threshold,
            "liquidation_bonus": bonus,
            "reserve_factor": factor,
            "borrowing_enabled": borrowing,
            "stable_borrowing_enabled": stable,
            "active": active,
            "frozen": frozen,
            "borrow_cap": borrow_cap,
            "supply_cap": supply_cap,
            "paused": read(provider, DATA_PROVIDER, "getPaused", (asset,))[0],
            "liquidation_protocol_fee": read(provider, DATA_PROVIDER, "getLiquidationProtocolFee", (asset,))[0],
            "debt_ceiling": read(provider, DATA_PROVIDER, "getDebtCeiling", (asset,))[0],
            "siloed_borrowing": read(provider, DATA_PROVIDER, "getSiloedBorrowing", (asset,))[0],
            "flashloan_enabled": read(provider, DATA_PROVIDER, "getFlashLoanEnabled", (asset,))[0],
            "emode_category": read(provider, DATA_PROVIDER, "getReserveEModeCategory", (asset,))[0],
            "price_source": read(section["oracle"], ORACLE, "getSourceOfAsset", (asset,))[0],
        }
        strategy = read(section["pool"], POOL, "getReserveData", (asset,))[0][11]
        settings["interest_rate_strategy"] = strategy
        settings |= {setting: read(strategy, STRATEGY, getter)[0] for setting, getter in CURVE.items()}
        found |= {("aave-v3", "reserve", asset, k): _text(v) for k, v in settings.items()}
    ltv, threshold, bonus, source, label = read(section["pool"], POOL, "getEModeCategoryData", (1,))[0]
    category = {"ltv": ltv, "liquidation_threshold": threshold, "liquidation_bonus": bonus}
    category |= {"price_source": source, "label": label}
    return found | {("aave-v3", "e-mode category", "1", k): _text(v) for k, v in category.items()}


def _comet(rpc: RpcClient, section: dict[str, Any], tag: str) -> Readings:
    """Every collateral's AssetInfo and the Comet's configuration getters."""
    read, comet, found = _reader(rpc, tag), section["comet"], Readings()
    for symbol, token in section["tokens"].items():
        if symbol == "USDC":
            continue
        info = read(comet, COMET, "getAssetInfoByAddress", (token,))[0]
        _, asset, feed, _, borrow_cf, liquidate_cf, factor, cap = info
        settings = {
            "price_feed": feed,
            "borrow_collateral_factor": borrow_cf,
            "liquidate_collateral_factor": liquidate_cf,
            "liquidation_factor": factor,
            "supply_cap": cap,
        }
        found |= {("compound-v3", "collateral", asset.lower(), k): _text(v) for k, v in settings.items()}
    getters = {
        "supply_kink": "supplyKink",
        "borrow_kink": "borrowKink",
        "supply_base": "supplyPerSecondInterestRateBase",
        "supply_slope_low": "supplyPerSecondInterestRateSlopeLow",
        "supply_slope_high": "supplyPerSecondInterestRateSlopeHigh",
        "borrow_base": "borrowPerSecondInterestRateBase",
        "borrow_slope_low": "borrowPerSecondInterestRateSlopeLow",
        "borrow_slope_high": "borrowPerSecondInterestRateSlopeHigh",
        "store_front_price_factor": "storeFrontPriceFactor",
        "target_reserves": "targetReserves",
        "base_borrow_min": "baseBorrowMin",
        "base_price_feed": "baseTokenPriceFeed",
    }
    return found | {
        ("compound-v3", "comet", comet.lower(), k): _text(read(comet, COMET, fn)[0]) for k, fn in getters.items()
    }


def _maker(rpc: RpcClient, section: dict[str, Any], tag: str) -> Readings:
    """Every ilk's line and dust (Vat), chop, hole and clip (Dog), mat and pip (Spotter), and its clip's buf, tail and
    cusp."""
    read, found = _reader(rpc, tag), Readings()
    for ilk in section["ilks"]:
        _, _, _, line, dust = read(section["vat"], VAT, "ilks", (_key(ilk),))
        clip, chop, hole, _ = read(section["dog"], DOG, "ilks", (_key(ilk),))
        pip, mat = read(section["spot"], SPOTTER, "ilks", (_key(ilk),))
        settings = {"line": line, "dust": dust, "chop": chop, "hole": hole, "clip": clip, "mat": mat, "pip": pip}
        settings |= {f"clip_{fn}": read(clip, CLIPPER, fn)[0] for fn in ("buf", "tail", "cusp")}
        found |= {("maker", "ilk", ilk, k): _text(v) for k, v in settings.items()}
    return found


def _morpho(rpc: RpcClient, section: dict[str, Any], tag: str, ids: list[str]) -> Readings:
    """Each market's fee (Morpho.market)."""
    read = _reader(rpc, tag)
    return {
        ("morpho-blue", "market", i, "fee"): _text(read(section["morpho"], MORPHO, "market", (i,))[0][5]) for i in ids
    }


def test_governance_on_every_protocol_is_read_as_the_chain_holds_it(
    full_devnet: dict[str, Any], full_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    devnet = full_devnet
    with RpcClient(devnet["rpc_url"]) as rpc, sandbox(rpc):
        ids = [m["market_id"] for m in devnet["morpho_blue"]["markets"]]

        def readings(tag: str) -> Readings:
            return (
                _aave(rpc, devnet["aave_v3"], tag)
                | _comet(rpc, devnet["compound_v3"], tag)
                | _maker(rpc, devnet["maker"], tag)
                | _morpho(rpc, devnet["morpho_blue"], tag, ids)
            )

        db = copy_of(full_db, tmp_path)
        (before_block,) = {r["block_number"] for r in _rows(db, "SELECT block_number FROM snapshot_blocks")}
        before = readings(hex(before_block))
        moves = govern(rpc, devnet)
        meant = {p for move in moves for p in move.parameters}
        monkeypatch.setenv("CHAINRISK_STATE_DIR", str(Path(devnet["state_dir"]).parent))
        assert main(["run", "--devnet", "--db", str(db)]) == 0
        after_block = int(rpc.call("eth_blockNumber"), 16)
        after = readings(hex(after_block))
        expected = {k: (before[k], v) for k, v in after.items() if k in before and before[k] != v}
        assert {k[3] for k in expected} == meant, "every move landed on the chain"
        rows = _rows(db, f"SELECT * FROM ({query_sql('mart_parameter_changes')})")
        changed = {
            (r["protocol"], r["item_kind"], r["item"], r["parameter"]): (r["old_value"], r["new_value"])
            for r in rows
            if r["change"] == "changed"
        }
        assert len(changed) == sum(r["change"] == "changed" for r in rows), "one row per change"
        assert changed == expected
        # Only the Aave V3.0.2 market was governed: its 3.6 neighbour (read the same way) shows nothing.
        assert {r["market"] for r in rows if r["protocol"] == "aave-v3"} == {
            devnet["aave_v3"]["pool_addresses_provider"].lower()
        }
        listed = [(r["protocol"], r["item_kind"]) for r in rows if r["change"] == "listed"]
        assert listed == [("morpho-blue", "market")] and not [r for r in rows if r["change"] == "gone"]
        new_id = next(r["item"] for r in rows if r["change"] == "listed")
        assert new_id not in ids
        assert {(r["changed_after_block"], r["changed_by_block"]) for r in rows} == {(before_block, after_block)}
        # Morpho's fee change and listing carry the log the chain holds of them (SetFee, CreateMarket: read here with
        # eth_getLogs), Maker's none (its files log nothing chainrisk indexes).
        morpho = devnet["morpho_blue"]["morpho"]
        logs = rpc.call(
            "eth_getLogs", [{"address": morpho, "fromBlock": hex(before_block + 1), "toBlock": hex(after_block)}]
        )
        wanted = {event_topic(SET_FEE): ("changed", "fee"), event_topic(CREATE_MARKET): ("listed", None)}
        on_chain = {
            (wanted[log["topics"][0]], log["topics"][1]): (int(log["blockNumber"], 16), log["transactionHash"])
            for log in logs
            if log["topics"][0] in wanted
        }
        pinned = {
            ((r["change"], r["parameter"]), r["item"]): (r["changed_at_block"], r["changed_in_tx"])
            for r in rows
            if r["changed_at_block"] is not None
        }
        # The Comet's changes all carry its proxy's Upgraded log (the upgrade at which they took effect).
        comet = devnet["compound_v3"]["comet"]
        upgrades = rpc.call(
            "eth_getLogs",
            [
                {
                    "address": comet,
                    "fromBlock": hex(before_block + 1),
                    "toBlock": hex(after_block),
                    "topics": [event_topic(UPGRADED)],
                }
            ],
        )
        assert len(upgrades) == 1
        upgrade = (int(upgrades[0]["blockNumber"], 16), upgrades[0]["transactionHash"])
        comet_rows = [r for r in rows if r["protocol"] == "compound-v3"]
        assert len(comet_rows) == len(COLLATERALS) + 1  # every liquidation factor, LINK's cap
        assert {(r["changed_at_block"], r["changed_in_tx"]) for r in comet_rows} == {upgrade}
        assert {k: v for k, v in pinned.items() if k in on_chain} == on_chain and len(on_chain) == 2
        # Aave's carry the PoolConfigurator's or the AaveOracle's log of them: for each, the last log between the
        # snapshots of the event the proposal's call emits (IPoolConfigurator, IAaveOracle) naming its reserve (topic
        # 1) or e-mode category.
        aave = devnet["aave_v3"]
        governance_logs = rpc.call(
            "eth_getLogs",
            [
                {
                    "address": [aave["pool_configurator"], aave["oracle"]],
                    "fromBlock": hex(before_block + 1),
                    "toBlock": hex(after_block),
                }
            ],
        )
        named = {event_topic(signature): name for name, signature in AAVE_CALLS_LOG.items()}
        aave_rows = [r for r in rows if r["protocol"] == "aave-v3"]
        for r in aave_rows:
            emits = AAVE_CALL_EMITS[(r["item_kind"], r["parameter"])]
            logged = [
                log
                for log in governance_logs
                if named.get(log["topics"][0]) == emits
                and (int(log["topics"][1], 16) == int(r["item"], 16 if r["item"].startswith("0x") else 10))
            ]
            assert logged, r
            last = max(logged, key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
            assert (r["changed_at_block"], r["changed_in_tx"], r["changed_log_index"]) == (
                int(last["blockNumber"], 16),
                last["transactionHash"],
                int(last["logIndex"], 16),
            ), r
        # Maker's carry its contracts' logs of the file: the Vat's and the Spotter's anonymous notes (the Vat's own:
        # ilk and what in topics 1 and 2; LibNote's: the caller first, then ilk and what), the Dog's and the
        # Clipper's named File events.
        maker = devnet["maker"]
        clip = _maker(rpc, maker, hex(after_block))[("maker", "ilk", "ETH-A", "clip")]
        every_log = rpc.call("eth_getLogs", [{"fromBlock": hex(before_block + 1), "toBlock": hex(after_block)}])
        ilk_topic = "0x" + b"ETH-A".ljust(32, b"\0").hex()
        maker_rows = [r for r in rows if r["protocol"] == "maker"]
        assert maker_rows
        for r in maker_rows:
            contract, topic, ilk_at, what_at = MAKER_FILES[r["parameter"]]
            what = r["parameter"].removeprefix("clip_")
            address = {"vat": maker["vat"], "dog": maker["dog"], "spot": maker["spot"], "clip": clip}[contract]
            logged = [
                log
                for log in every_log
                if log["address"].lower() == address.lower()
                and log["topics"][0] == topic
                and (ilk_at is None or log["topics"][ilk_at] == ilk_topic)
                and bytes.fromhex(log["topics"][what_at][2:]).rstrip(b"\0") == what.encode()
            ]
            assert len(logged) == 1, r
            assert (r["changed_at_block"], r["changed_in_tx"], r["changed_log_index"]) == (
                int(logged[0]["blockNumber"], 16),
                logged[0]["transactionHash"],
                int(logged[0]["logIndex"], 16),
            ), r
        assert all(r["changed_at_block"] is not None for r in rows), "every governed protocol logs its changes"
        # The amounts are the exact values in their units, the nearest doubles to them (a rad's 48 digits too).
        places = {"ltv": 2, "liquidation_threshold": 2, "reserve_factor": 2, "liquidation_factor": 16, "fee": 16}
        places |= {"line": 45, "dust": 45, "chop": 16, "mat": 25, "variable_rate_slope2": 25, "clip_buf": 25}
        checked = 0
        for r in rows:
            if r["parameter"] in places:
                scale = 10 ** places[r["parameter"]]
                assert r["old_amount"] == float(Fraction(int(r["old_value"]), scale)), r
                assert r["new_amount"] == float(Fraction(int(r["new_value"]), scale)), r
                checked += 1
        assert checked >= 10

        receiver = Receiver()
        client = httpx.Client(transport=httpx.MockTransport(receiver.handle))
        rules = [
            {"name": "governance", "kind": "parameter_changed"},
            {"name": "factors", "kind": "parameter_changed", "parameters": ["liquidation_factor"]},
        ]
        config = parse_alerts({"webhooks": [HOOK], "rules": rules}, {}, "test")
        assert config is not None
        with Store(db) as store:
            run_alerts(store.con, config, 1, client)
            sent = [p for p in receiver.payloads if p["rule"] == "governance"]
            assert len(sent) == len(rows) and all(p["event"] == "breach" for p in sent)
            assert {p["subject"].rsplit("@", 1)[1] for p in sent} == {str(after_block)}
            # A change the chain logged names its block and transaction; the others the snapshots around them.
            for (_, item), (block, tx) in on_chain.items():
                assert sum(f"at block {block} (tx {tx})" in p["text"] and item in p["subject"] for p in sent) == 1
            upgraded = f"at block {upgrade[0]} (tx {upgrade[1]})"
            assert sum(upgraded in p["text"] for p in sent) == len(comet_rows)
            unpinned = sum(r["changed_at_block"] is None for r in rows)
            assert sum(" at block " in p["text"] for p in sent) == len(rows) - unpinned
            assert sum(f"between blocks {before_block} and {after_block}" in p["text"] for p in sent) == unpinned
            factors = [p for p in receiver.payloads if p["rule"] == "factors"]
            assert len(factors) == sum(k[3] == "liquidation_factor" for k in expected) == len(COLLATERALS)
            assert all(" -> " in p["text"] and "% " in p["text"] for p in factors)
            assert run_alerts(store.con, config, 2, client).sent == 0

        # The Markets page lists each one, in its unit.
        monkeypatch.setenv("CHAINRISK_DB", str(db))
        app = open_page("markets")
        assert_clean(app)
        shown = table_with(app, "was")
        assert len(shown) == len(rows)
        metrics = {m.label: m.value for m in app.metric}
        assert (metrics["Settings changed"], metrics["Items listed"]) == (str(len(changed)), "1")
        line = next(r for r in rows if r["parameter"] == "line")
        assert setting_text(line["new_amount"], "dai", None) in set(shown["now"])
        # USDC's rate curve: now the new strategy's, dashed the one before (its slope 2 as the old strategy answered).
        assert "markets_aave_curve" in [s.key for s in app.selectbox]
        provider = devnet["aave_v3"]["pool_addresses_provider"].lower()
        usdc = devnet["aave_v3"]["reserves"]["USDC"]["asset"].lower()
        reserve = (
            aave_reserves(db).filter((pl.col("market") == provider) & (pl.col("asset") == usdc)).row(0, named=True)
        )
        curves = aave_curves(db, reserve)
        at_full = {
            r["curve"].split(" ")[0]: r["borrow_apr_pct"]
            for r in curves.iter_rows(named=True)
            if r["utilization_pct"] == 100
        }
        curve = {k[3]: int(v) for k, v in after.items() if k[:3] == ("aave-v3", "reserve", usdc) and k[3] in CURVE}
        old_slope = int(before[("aave-v3", "reserve", usdc, "variable_rate_slope2")])
        top = curve["base_variable_borrow_rate"] + curve["variable_rate_slope1"]
        assert at_full == {
            "now": (top + curve["variable_rate_slope2"]) / 1e27 * 100,
            "before": (top + old_slope) / 1e27 * 100,
        }
        # The Comet's borrow rate curve: at each utilization drawn, what its getBorrowRate answers, a year of it.
        comet_row = comet_models(db).row(0, named=True)
        drawn = comet_curves(db, comet_row)
        comet = devnet["compound_v3"]["comet"]
        calls = [eth_call(comet, COMET, "getBorrowRate", round(u / 100 * 10**18)) for u in drawn["utilization_pct"]]
        answers = [COMET.decode("getBorrowRate", raw)[0] for raw in rpc.batch(calls)]
        assert drawn["borrow_apr_pct"].to_list() == [a * YEAR / 10**18 * 100 for a in answers]
        assert set(drawn["curve"]) == {"now"}, "the proposal left the Comet's rate model as it was"
        # The market-over-time charts mark the snapshot that read them, what changed in the tooltip.
        marks = market_changes(db, "maker", devnet["chain_id"], "ETH-A")
        ilk = [r for r in rows if r["protocol"] == "maker"]
        assert marks["changed_by_block"].to_list() == [after_block] and marks["changes"].to_list() == [len(ilk)]
        assert all(f"ETH-A {r['parameter']} " in marks["what"][0] for r in ilk), marks["what"][0]
        # A WBTC holder's Wallet page lists the changes to its Aave market: WBTC's and the market's own items (the
        # e-mode category), not those of reserves it does not hold; its health chart marks them.
        provider = devnet["aave_v3"]["pool_addresses_provider"].lower()
        held = _rows(
            db,
            "SELECT wallet, list(DISTINCT asset) AS assets FROM positions WHERE market = ? GROUP BY wallet "
            "HAVING list_contains(list(symbol), 'WBTC') ORDER BY wallet LIMIT 1".replace("?", f"'{provider}'"),
        )[0]
        app = open_page("wallet", wallet=held["wallet"])
        assert_clean(app)
        listed = table_with(app, "changed_by_block")
        market_rows = [
            r for r in rows if r["market"] == provider and (r["item_kind"] != "reserve" or r["item"] in held["assets"])
        ]
        assert sorted(listed["change"]) == sorted(change_words(r) for r in market_rows)
        assert any(r["symbol"] == "WBTC" for r in market_rows) and len(market_rows) < sum(
            r["market"] == provider for r in rows
        )

        # An empty block later, the next run finds nothing new: the history keeps the changes, no alert repeats.
        BlockBuilder(
            rpc, timestamp=int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16) + 60
        ).mine(0)
        assert main(["run", "--devnet", "--db", str(db)]) == 0
        again = _rows(db, f"SELECT * FROM ({query_sql('mart_parameter_changes')})")
        assert sorted(map(str, again)) == sorted(map(str, rows))
        with Store(db) as store:
            assert run_alerts(store.con, config, 3, client).sent == 0


def test_devnet_govern_passes_the_proposal_and_moves_the_manifests_head(
    full_devnet: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`chainrisk devnet govern` on the full devnet (in an anvil snapshot, the manifest put back after): one line per
    protocol moved, and the manifest's head is the chain's head after it."""
    manifest = Path(full_devnet["state_dir"]) / "manifest.json"
    kept = manifest.read_text()
    monkeypatch.setenv("CHAINRISK_STATE_DIR", str(Path(full_devnet["state_dir"]).parent))
    with RpcClient(full_devnet["rpc_url"]) as rpc, sandbox(rpc):
        try:
            assert main(["devnet", "govern"]) == 0
            head = rpc.call("eth_getBlockByNumber", ["latest", False])
            written = json.loads(manifest.read_text())
        finally:
            manifest.write_text(kept)
    printed = capsys.readouterr().out
    for protocol in ("Aave V3:", "Morpho Blue:", "Compound V3 (stand-in):", "Maker/Sky (stand-in) ETH-A:"):
        assert protocol in printed, printed
    assert f"passed by block {int(head['number'], 16)}" in printed
    assert (written["head_block"], written["head_block_hash"]) == (int(head["number"], 16), head["hash"])
    assert written["head_block"] > full_devnet["head_block"]


def _stand_in_inputs(con: duckdb.DuckDBPyConnection) -> None:
    """The four inputs of mart_parameter_changes as empty tables of their columns (numbers BIGINT, the rest text)."""
    numbers = {"chain_id", "block_number", "previous_block", "log_index", "old_amount", "new_amount"}

    def create(name: str, columns: Sequence[str]) -> None:
        typed = ", ".join(f"{c} {'BIGINT' if c in numbers else 'VARCHAR'}" for c in columns)
        con.execute(f"CREATE TABLE {name} ({typed})")

    create("stg_lending_parameter_changes", PARAMETER_CHANGE_COLUMNS)
    create("stg_lending_governance_events", GOVERNANCE_EVENT_COLUMNS)
    create("stg_snapshot_blocks", SNAPSHOT_COLUMNS)
    create("stg_market_labels", ("protocol", "chain_id", "market", "market_label"))


#: What mart_parameter_changes reads of stg_snapshot_blocks.
SNAPSHOT_COLUMNS = ("protocol", "chain_id", "source", "block_number", "block_time", "previous_block", "previous_time")


def test_a_log_naming_a_change_comes_before_an_upgrade_that_says_any_changed() -> None:
    """mart_parameter_changes' pinning on stand-in inputs: a log without item or change (a Comet's Upgraded) pins
    every change of its source between the two snapshots, a listing too; a log naming the change (PauseAction's
    pause_flags) pins that one even where the upgrade came later; logs after the snapshot that read the changes, or
    of another item, pin nothing."""
    con = duckdb.connect()
    _stand_in_inputs(con)
    con.execute(
        "INSERT INTO stg_snapshot_blocks BY NAME SELECT 'compound-v3' AS protocol, 1 AS chain_id, "
        "'0xc' AS source, 10 AS block_number, 5 AS previous_block"
    )
    for item, kind, parameter in (
        ("0xc", "changed", "pause_flags"),
        ("0xw", "changed", "liquidation_factor"),
        ("0xl", "listed", None),
    ):
        con.execute(
            "INSERT INTO stg_lending_parameter_changes BY NAME SELECT 'compound-v3' AS protocol, 1 AS chain_id, "
            "'0xc' AS source, '0xc' AS market, ? AS item, ? AS change, ? AS parameter, 10 AS block_number",
            [item, kind, parameter],
        )
    logs: list[tuple[str | None, str | None, str | None, int, str]] = [
        (None, "changed", "pause_flags", 6, "0xpause"),  # the pause, before the upgrade
        (None, None, None, 7, "0xupgrade"),  # the upgrade
        (None, None, None, 12, "0xlater"),  # after the snapshot that read the changes
        ("0xother", "changed", "liquidation_factor", 8, "0xother"),  # another item's
    ]
    for log in logs:
        con.execute("INSERT INTO stg_lending_governance_events VALUES ('compound-v3', 1, '0xc', ?, ?, ?, ?, ?, 0)", log)
    sql = (QUERIES_DIR / "mart_parameter_changes.sql").read_text()
    rows = con.execute(f"SELECT item, changed_at_block, changed_in_tx FROM ({sql}) ORDER BY item").fetchall()
    assert rows == [("0xc", 6, "0xpause"), ("0xl", 7, "0xupgrade"), ("0xw", 7, "0xupgrade")]
