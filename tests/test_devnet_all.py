"""The full devnet (what `chainrisk devnet up` builds by default: Aave V3.0.2 and V3.6 and Morpho Blue from their real
bytecode, and the labelled Comet, Maker and Liquity stand-ins, on one chain), indexed by `chainrisk run --devnet`,
against the chain:

* every protocol has markets and positions in the tables;
* Aave 3.6: every wallet's health factor (and account figures) equal getUserAccountData;
* Comet: health < 1 exactly when isLiquidatable, balances equal balanceOf / borrowBalanceOf / collateralBalanceOf;
* Maker: an urn is unsafe exactly when ink * spot < art * rate, read from the Vat;
* Liquity: every trove's debt and collateral equal getEntireDebtAndColl;
* every pool of stg_lending_pools (Aave reserves, Morpho markets, the Comet's base and collaterals, Maker ilks): its
  supply, debt, utilization and cap usage equal what the contracts answer at its block; the utilization and cap
  alerts watch each of them and send a breach and its recovery once;
* the demo's risk commands run on every protocol (native ETH balances read with eth_getBalance);
* contagion moves prices by address: a symbol the asset graph links at one address and not at another (the
  stand-ins' own wstETH) moves apart, the same way whatever the book's row order;
* `devnet status` is a short summary naming real bytecode and stand-ins; `--json` prints the manifest; the
  dashboard's Devnet page labels every protocol's contracts real bytecode or stand-in.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import httpx
import polars as pl
import pytest
from eth_abi.abi import decode

import chainrisk.jobs.run as run_module
from chainrisk.abi import eth_call, event_topic, keccak, load_abi
from chainrisk.alerts.deliver import run_alerts
from chainrisk.alerts.rules import parse_alerts
from chainrisk.assets import NATIVE_ETH
from chainrisk.chains.contagion import contagion
from chainrisk.chains.graph import links_from_frame
from chainrisk.chains.lookthrough import vault_holdings
from chainrisk.cli import main
from chainrisk.config import ChainConfig, devnet_config
from chainrisk.dashboard.ui import amount_short, usd_short
from chainrisk.devnet.extras import EXTRA_SECTIONS
from chainrisk.devnet.maker import MAKER_KEEPER
from chainrisk.devnet.node import free_port
from chainrisk.devnet.summary import REAL, STAND_IN
from chainrisk.errors import UserError
from chainrisk.jobs.index import chain_ready, index_market
from chainrisk.jobs.risk import bad_debt_rules, chain_balances, latest_links, latest_positions
from chainrisk.jobs.run import run_once
from chainrisk.protocols.maker.events import KICK
from chainrisk.rpc import RpcClient
from chainrisk.store.db import Store
from chainrisk.store.views import LENDING_POOLS, install_views, query_sql
from tests.databases import copy_of
from tests.test_aave36_devnet import check_account_data, transfers_to
from tests.test_alerts import HOOK, Receiver
from tests.test_app import assert_clean, open_page, table_with
from tests.test_index_compound_v3 import COMET, _check_balances, _check_health
from tests.test_index_liquity_v1 import LIQUIDATION_TOPIC, TROVE_MANAGER, _call, _troves
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


#: Each protocol's liquidation events as the contracts declare them (Aave's IPool, Morpho's EventsLib, Comet's
#: CometMainInterface, Liquity's TroveManager): decoded here from the receipts with eth-abi, apart from the indexer.
LIQUIDATION_EVENTS = {
    "aave-v3": ("LiquidationCall(address,address,address,uint256,uint256,address,bool)", 3),
    "DeficitCreated": ("DeficitCreated(address,address,uint256)", 2),
    "morpho-blue": ("Liquidate(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)", 3),
    "AbsorbDebt": ("AbsorbDebt(address,address,uint256,uint256)", 2),
    "AbsorbCollateral": ("AbsorbCollateral(address,address,address,uint256,uint256)", 3),
    "liquity-v1": ("TroveLiquidated(address,uint256,uint256,uint8)", 1),
}


ERC20 = load_abi("erc20", "IERC20Detailed")
#: The Dog's liquidation event (dss src/dog.sol), logged after the Vat.grab it makes.
MAKER_BARK = ("Bark(bytes32,address,uint256,uint256,uint256,address,uint256)",)
#: grab's arguments, as a Vat note's calldata carries them after the selector.
NOTE_ARGUMENTS = ["bytes32", "address", "address", "address", "int256", "int256"]
A_TOKEN = load_abi("aave-v3", "IAToken")


def _decoded(log: dict[str, Any], signature: str, indexed: int) -> tuple[list[Any], list[Any]]:
    """(indexed arguments as 32-byte words, the data's arguments) of `log`, checked to be the `signature` event."""
    assert log["topics"][0] == event_topic(signature), signature
    types = signature[signature.index("(") + 1 : -1].split(",")
    data = decode(types[indexed:], bytes.fromhex(log["data"][2:]))
    return [t for t in log["topics"][1:]], list(data)


def _address(word: str) -> str:
    return "0x" + word[-40:].lower()


def _deficits_before(receipt: dict[str, Any], call: dict[str, Any]) -> list[dict[str, Any]]:
    """The DeficitCreated logs a LiquidationCall booked: those of the same pool after the previous LiquidationCall of
    the transaction, before this one (the pool logs the deficits before the call's own event)."""
    deficit, liquidation = (
        event_topic(LIQUIDATION_EVENTS["DeficitCreated"][0]),
        event_topic(LIQUIDATION_EVENTS["aave-v3"][0]),
    )
    found: list[dict[str, Any]] = []
    for log in receipt["logs"]:
        if log is call:
            return found
        if log["address"] == call["address"] and log["topics"][0] == liquidation:
            found = []
        elif log["address"] == call["address"] and log["topics"][0] == deficit:
            found.append(log)
    raise AssertionError("the call is not in its receipt")


def _liquidation_call_after(receipt: dict[str, Any], deficit: dict[str, Any]) -> dict[str, Any]:
    """The LiquidationCall that booked `deficit`: the pool's next one in the transaction."""
    topic = event_topic(LIQUIDATION_EVENTS["aave-v3"][0])
    after = receipt["logs"][receipt["logs"].index(deficit) + 1 :]
    return next(x for x in after if x["address"] == deficit["address"] and x["topics"][0] == topic)


def _bark_after(receipt: dict[str, Any], grab: dict[str, Any], dog: str) -> dict[str, Any]:
    """The Dog's Bark that made `grab`: the Dog's next Bark in the transaction."""
    after = receipt["logs"][receipt["logs"].index(grab) + 1 :]
    return next(x for x in after if x["address"] == dog.lower() and x["topics"][0] == event_topic(MAKER_BARK[0]))


def _decimals(rpc: RpcClient, token: str) -> int:
    return int(ERC20.decode("decimals", rpc.call(*eth_call(_address(token), ERC20, "decimals")))[0])


def _absorbed_debt(rpc: RpcClient, comet: str, account: str, block: int) -> int:
    """The debt a Comet absorb at `block` cancelled, from the chain: the account's principal before the block times the
    borrow index the absorb accrued to (the block's own: one transaction a block on the devnet), as CometCore's
    presentValueBorrow rounds it (compound-finance/comet contracts/CometCore.sol)."""
    before = rpc.call(*eth_call(comet, COMET, "userBasic", account, block=hex(block - 1)))
    (principal, *_) = COMET.decode("userBasic", before)
    totals = COMET.decode("totalsBasic", rpc.call(*eth_call(comet, COMET, "totalsBasic", block=hex(block))))
    (totals,) = totals if len(totals) == 1 else (totals,)
    assert principal < 0, (account, block)
    return int(-principal * totals[1] // 10**15)


def test_liquidations_equal_the_logs_on_the_chain(
    full_devnet: dict[str, Any], full_rpc: RpcClient, full_db: Path
) -> None:
    """Every row of stg_lending_liquidations is the log its transaction's receipt holds at its index, decoded here: the
    account, the liquidator and the exact amounts; every protocol of the devnet has some. Where the event names no
    liquidator (Maker's grab, Liquity's TroveLiquidated) it is the keeper that sent the transaction. A Comet absorb's
    debt row is the debt it cancelled, read from the chain (AbsorbDebt's basePaidOut also counts the collateral's worth
    beyond the debt, which absorb credits back to the account)."""
    rows = _rows(full_db, f"SELECT * FROM ({query_sql('stg_lending_liquidations')}) ORDER BY block_number, log_index")
    assert {r["protocol"] for r in rows} == {"aave-v3", "morpho-blue", "compound-v3", "maker", "liquity-v1"}
    receipts = {h: full_rpc.call("eth_getTransactionReceipt", [h]) for h in {r["tx_hash"] for r in rows}}
    rates: dict[tuple[str, int], int] = {}
    credited = 0
    other_deficits: Counter[str] = Counter()
    expected: tuple[Any, ...]
    for row in rows:
        log = next(x for x in receipts[row["tx_hash"]]["logs"] if int(x["logIndex"], 16) == row["log_index"])
        protocol = row["protocol"]
        if protocol == "aave-v3" and log["topics"][0] == event_topic(LIQUIDATION_EVENTS["DeficitCreated"][0]):
            # A deficit the liquidation booked in another debt asset: its own row, the call's liquidator, nothing
            # repaid or seized.
            (user, debt), (amount,) = _decoded(log, *LIQUIDATION_EVENTS["DeficitCreated"])
            call = _liquidation_call_after(receipts[row["tx_hash"]], log)
            (_, call_debt, call_user), (*_, liquidator, _) = _decoded(call, *LIQUIDATION_EVENTS["aave-v3"])
            assert call_user == user and call_debt != debt
            other_deficits[_address(debt)] += amount
            expected = (_address(user), liquidator.lower(), _address(debt), 0, None, None)
            assert row["bad_debt_tokens"] == pytest.approx(amount / 10 ** _decimals(full_rpc, debt), rel=1e-12)
        elif protocol == "aave-v3":
            (collateral, debt, user), (covered, seized, liquidator, _) = _decoded(log, *LIQUIDATION_EVENTS[protocol])
            expected = (_address(user), liquidator.lower(), _address(debt), covered, _address(collateral), seized)
            # The deficit the call booked in its own debt asset (DeficitCreated, logged before the call's event).
            own = sum(
                _decoded(x, *LIQUIDATION_EVENTS["DeficitCreated"])[1][0]
                for x in _deficits_before(receipts[row["tx_hash"]], log)
                if x["topics"][1] == user and x["topics"][2] == debt
            )
            tokens = own / 10 ** _decimals(full_rpc, debt)
            assert (row["bad_debt_tokens"] or 0.0) == pytest.approx(tokens, rel=1e-12), row["tx_hash"]
        elif protocol == "morpho-blue":
            (market, caller, borrower), (repaid, _, seized, bad_debt, _) = _decoded(log, *LIQUIDATION_EVENTS[protocol])
            assert market == row["market"] and (bad_debt == 0) == (row["bad_debt_tokens"] == 0)
            expected = (
                _address(borrower),
                _address(caller),
                row["debt_asset"],
                repaid,
                row["collateral_asset"],
                seized,
            )
        elif protocol == "compound-v3" and row["debt_repaid"] is not None:
            (absorber, borrower), (paid, _) = _decoded(log, *LIQUIDATION_EVENTS["AbsorbDebt"])
            debt = _absorbed_debt(full_rpc, row["market"], _address(borrower), row["block_number"])
            credit = paid - debt  # what the collateral was worth beyond the debt, credited to the account as supply
            assert credit >= 0 and 0 <= int(row["debt_repaid"]) - debt <= (2 if credit else 0), row["tx_hash"]
            absorbed = debt if credit == 0 else int(row["debt_repaid"])
            credited += credit > 0
            # A credited supply means the collateral covered the debt; none, that absorb wrote off what it did not.
            assert (row["bad_debt_tokens"] == 0) == (credit > 0) and row["bad_debt_tokens"] is not None
            expected = (_address(borrower), _address(absorber), row["debt_asset"], absorbed, None, None)
        elif protocol == "compound-v3":
            (absorber, borrower, asset), (taken, _) = _decoded(log, *LIQUIDATION_EVENTS["AbsorbCollateral"])
            assert row["bad_debt_tokens"] is None  # on the absorb's debt row only
            expected = (_address(borrower), _address(absorber), None, None, _address(asset), taken)
        elif protocol == "liquity-v1":
            (borrower,), (debt, coll, _) = _decoded(log, *LIQUIDATION_EVENTS[protocol])
            # No event names the liquidator: the devnet's keeper sent the batch itself, so it is the sender.
            sender = receipts[row["tx_hash"]]["from"].lower()
            assert sender == full_devnet["liquity_v1"]["keeper"].lower()
            expected = (_address(borrower), sender, row["debt_asset"], debt, row["collateral_asset"], coll)
        else:
            # A Vat note (dss src/vat.sol `note`): topic0 the selector, the data the calldata behind a 32-byte offset
            # and a 32-byte length; grab(i, u, v, w, dink, dart).
            selector = "0x" + keccak(b"grab(bytes32,address,address,address,int256,int256)")[:4].hex()
            assert log["topics"][0].startswith(selector) and log["address"] == full_devnet["maker"]["vat"]
            calldata = bytes.fromhex(log["data"][2:])[64:]
            ilk, urn, _, _, dink, dart = decode(NOTE_ARGUMENTS, calldata[4 : 4 + 32 * len(NOTE_ARGUMENTS)])
            name = ilk.rstrip(b"\0").decode()
            gem = full_devnet["maker"]["ilks"][name]
            if (name, row["block_number"]) not in rates:
                answer = full_rpc.call(
                    *eth_call(full_devnet["maker"]["vat"], VAT, "ilks", ilk, block=hex(row["block_number"]))
                )
                rates[name, row["block_number"]] = VAT.decode("ilks", answer)[1]
            # The dai confiscated at the rate the Vat holds after the grab's block (a bark does not drip), and the
            # `due` of the Dog's Bark logged after the grab (dss src/dog.sol): the same to the wei.
            dai = abs(dart) * rates[name, row["block_number"]] // 10**27
            bark = _bark_after(receipts[row["tx_hash"]], log, full_devnet["maker"]["dog"])
            # Bark's indexed arguments are ilk, urn and the last, id: its data is ink, art, due and clip.
            ink, art, due, _ = decode(["uint256", "uint256", "uint256", "address"], bytes.fromhex(bark["data"][2:]))
            bark_urn = bark["topics"][2]
            assert (_address(bark_urn), ink, art) == (urn.lower(), abs(dink), abs(dart))
            assert row["market"] == name and due // 10**27 == dai
            assert row["debt_repaid_tokens"] == pytest.approx(dai / 10**18, rel=1e-12)
            # The liquidation penalty: the tab of the bark's Kick (due x chop) over its due, each floored to the wei.
            (kick,) = [x for x in receipts[row["tx_hash"]]["logs"] if x["topics"] and x["topics"][0] == KICK]
            tab = int(kick["data"][2 + 64 : 2 + 64 * 2], 16)
            assert tab > due and int(row["protocol_fee_debt"]) == tab // 10**27 - due // 10**27, row["tx_hash"]
            seized = abs(dink) // 10 ** (18 - gem["decimals"])  # the Vat's wad of gem in the gem's own units
            # The keeper the bark credited: the devnet's keeper barks with itself as `kpr`, so it is the sender.
            sender = receipts[row["tx_hash"]]["from"].lower()
            assert sender == full_devnet["maker"]["keeper"].lower()
            expected = (urn.lower(), sender, row["debt_asset"], dai, gem["gem"], seized)
        got = (
            row["wallet"],
            row["liquidator"],
            row["debt_asset"],
            None if row["debt_repaid"] is None else int(row["debt_repaid"]),
            row["collateral_asset"],
            None if row["collateral_seized"] is None else int(row["collateral_seized"]),
        )
        assert got == expected, (protocol, row["tx_hash"], row["log_index"])
    assert credited, "no absorb credited the account: the check of the debt net of the credit saw no case"
    # The collateral over the debt is the liquidator's gain only where it repaid the debt for the collateral (Aave,
    # Morpho Blue); elsewhere its gain is what the protocol paid it: the Kick's coin of a Maker bark (none filed on the
    # devnet: 0), a Liquity batch's gas compensation where its troves' add up to its `Liquidation` log (this devnet's
    # batches hold Recovery Mode liquidations capped at MCR: none; test_index_liquity_v1 checks a Normal Mode batch).
    assert {r["protocol"]: r["keeper_pays"] for r in rows} == {
        "aave-v3": True,
        "morpho-blue": True,
        "compound-v3": False,
        "maker": False,
        "liquity-v1": False,
    }
    # What the protocol charged on top: on an Aave row, the collateral the receipt's Transfer of its aToken moved from
    # the borrower to the aToken's RESERVE_TREASURY_ADDRESS (asked of the aToken), nothing in the debt; Maker's penalty
    # (checked above); none in Morpho Blue or Liquity; none known in tokens for a Comet absorb (NULL).
    reserves = _rows(full_db, "SELECT DISTINCT market, asset, a_token FROM raw_aave_v3_reserves")
    a_tokens = {(r["market"], r["asset"]): r["a_token"].lower() for r in reserves}
    treasuries: dict[str, str] = {}
    paid = 0
    for row in (r for r in rows if r["protocol"] == "aave-v3" and r["collateral_asset"] is not None):
        token = a_tokens[row["market"], row["collateral_asset"]]
        if token not in treasuries:
            answer = full_rpc.call(*eth_call(token, A_TOKEN, "RESERVE_TREASURY_ADDRESS"))
            treasuries[token] = A_TOKEN.decode("RESERVE_TREASURY_ADDRESS", answer)[0].lower()
        moved = transfers_to(receipts[row["tx_hash"]], token, row["wallet"], treasuries[token])
        assert int(row["protocol_fee_collateral"]) == sum(moved), row["tx_hash"]
        paid += bool(moved)
    assert paid, "no Aave liquidation paid the treasury a fee: the check saw no case"
    fees = {
        (
            r["protocol"],
            *(None if r[c] is None else int(r[c]) for c in ("protocol_fee_debt", "protocol_fee_collateral")),
        )
        for r in rows
        if r["collateral_asset"] is not None and r["protocol"] not in ("aave-v3", "maker")
    }
    assert fees == {("morpho-blue", 0, 0), ("liquity-v1", 0, 0), ("compound-v3", None, None)}
    assert {int(r["protocol_fee_debt"]) for r in rows if r["protocol"] == "aave-v3" and r["collateral_asset"]} == {0}
    kicks = [
        int(x["data"][2 + 64 * 3 : 66 + 64 * 3], 16)
        for receipt in receipts.values()
        for x in receipt["logs"]
        if x["topics"] and x["topics"][0] == KICK
    ]
    maker = [r for r in rows if r["protocol"] == "maker"]
    assert maker and all(int(r["keeper_reward_debt"]) == 0 for r in maker) and kicks and set(kicks) == {0}
    compensated: dict[str, list[int]] = {}
    for row in (r for r in rows if r["protocol"] == "liquity-v1" and r["keeper_reward_debt"] is not None):
        totals = compensated.setdefault(row["tx_hash"], [0, 0])
        totals[0] += int(row["keeper_reward_debt"])
        totals[1] += int(row["keeper_reward_collateral"])
    for tx, (lusd, eth) in compensated.items():
        (summary,) = [x for x in receipts[tx]["logs"] if x["topics"] and x["topics"][0] == LIQUIDATION_TOPIC]
        _, _, coll_paid, lusd_paid = (int(summary["data"][2 + 64 * k : 66 + 64 * k], 16) for k in range(4))
        assert (lusd, eth) == (lusd_paid, coll_paid), tx
    for g in _rows(full_db, f"SELECT * FROM ({query_sql('mart_liquidations')})"):
        if g["keeper_pays"] and g["collateral_seized_usd"] is None:  # an Aave deficit row: nothing seized
            assert g["liquidator_gain_usd"] is None
        elif g["keeper_pays"]:
            assert g["liquidator_gain_usd"] == pytest.approx(g["collateral_seized_usd"] - g["debt_repaid_usd"])
        elif g["keeper_reward_debt"] is None:
            assert g["liquidator_gain_usd"] is None and g["keeper_reward_usd"] is None, g["protocol"]
        else:
            debt_price = g["debt_repaid_usd"] / g["debt_repaid_tokens"]
            collateral_price = g["collateral_seized_usd"] / g["collateral_seized_tokens"]
            reward = g["keeper_reward_debt_tokens"] * debt_price + (g["keeper_reward_collateral_tokens"] or 0.0) * (
                collateral_price
            )
            assert g["liquidator_gain_usd"] == g["keeper_reward_usd"] == pytest.approx(reward, rel=1e-9, abs=1e-9)
    # The 3.6 scenario's wallet with two debts: its LINK liquidation booked its DAI as deficit too.
    assert other_deficits[full_devnet["aave_v3_6"]["tokens"]["DAI"].lower()] > 0, other_deficits


def test_maker_event_amounts_are_exact_integers(full_devnet: dict[str, Any], full_db: Path) -> None:
    """Each Maker event's dai is |dart| x rate // 1e27 to the wei, at the rate stg_maker_events documents (the ilk's
    snapshot at or before the event, else its first; a grab's from its Bark's due, checked against the chain in
    test_liquidations_equal_the_logs_on_the_chain), and its gem |dink| scaled to the gem's decimals: the view
    computed both in doubles before (off by up to 3e8 wei on the demo), and the shared events' action_amount is
    exact (HUGEINT) across protocols."""
    events = _rows(
        full_db,
        f"SELECT market, block_number, dink, dart, action, action_amount, due_dai "
        f"FROM ({query_sql('stg_maker_events')}) WHERE action IS NOT NULL",
    )
    grabs = [e for e in events if e["action"] == "liquidated"]
    assert grabs and all(e["due_dai"] is not None and e["action_amount"] == e["due_dai"] for e in grabs)
    events = [e for e in events if e["action"] != "liquidated"]
    snapshots = _rows(
        full_db,
        "SELECT ilk, block_number, rate FROM raw_maker_ilks UNION ALL SELECT ilk, block_number, rate "
        "FROM history.raw_maker_ilks",
    )
    checked = 0
    for event in events:
        gem = full_devnet["maker"]["ilks"][event["market"]]
        if event["action"] in ("collateral_in", "collateral_out"):
            assert int(event["action_amount"]) == abs(int(event["dink"])) // 10 ** (18 - gem["decimals"])
            continue
        rates = sorted((s["block_number"], int(s["rate"])) for s in snapshots if s["ilk"] == event["market"])
        before = [rate for block, rate in rates if block <= event["block_number"]]
        rate = before[-1] if before else rates[0][1]
        assert int(event["action_amount"]) == abs(int(event["dart"])) * rate // 10**27, event
        checked += 1
    assert checked > 0
    with duckdb.connect(str(full_db), read_only=True) as con:
        kind = con.execute(f"DESCRIBE ({query_sql('stg_lending_events')})").fetchall()
    assert dict((c[0], c[1]) for c in kind)["action_amount"] == "HUGEINT"


def test_a_file_indexed_before_barks_keeps_its_grabs_estimated(full_db: Path, tmp_path: Path) -> None:
    """A file whose Maker events were indexed before the Dog's Bark was (no bark rows, no due_dai column, an older
    schema mark) is made whole by the views' install: the column added empty, its grabs' dai the rate's estimate as
    before (debt_repaid NULL, the tokens |dart| x rate), and the same liquidations."""
    copy = copy_of(full_db, tmp_path)
    sql = f"SELECT wallet, debt_repaid, debt_repaid_tokens FROM ({query_sql('stg_maker_liquidations')}) ORDER BY ALL"
    now = _rows(copy, sql)
    with duckdb.connect(str(copy)) as con:
        con.execute("DELETE FROM raw_maker_events WHERE event = 'bark'")
        con.execute("ALTER TABLE raw_maker_events DROP COLUMN due_dai")
        con.execute("COMMENT ON TABLE schema_version IS 'chainrisk schema before barks'")
    with Store(copy) as store:
        install_views(store.con)  # as the score does before it publishes: the adapters' tables made whole first
        assert "due_dai" in {c[0] for c in store.con.execute("DESCRIBE raw_maker_events").fetchall()}
    before = _rows(copy, sql)
    assert now and [r["wallet"] for r in before] == [r["wallet"] for r in now]
    assert all(r["debt_repaid"] is None for r in before) and all(r["debt_repaid"] is not None for r in now)
    for old, new in zip(before, now, strict=True):
        # No drip between the devnet's snapshots and its barks: the estimate is the exact figure here.
        assert old["debt_repaid_tokens"] == pytest.approx(int(new["debt_repaid"]) / 10**18, rel=1e-12)


def test_auctions_indexed_before_their_clips_were_followed_stay_unknown(full_db: Path, tmp_path: Path) -> None:
    """A file whose barks were indexed before the clips' logs were read (stop 53's: no auction columns, no take rows)
    is made whole by the views' install, and its auctions keep what is known: the ended ones' dai raised and
    shortfall NULL (takes may have gone unread), so no grab's bad debt is claimed; the running ones still carry the
    snapshot's sale, and what they raised is the Kick's tab less the sale's (a take lowers it by its owe)."""
    copy = copy_of(full_db, tmp_path)
    sql = f"SELECT * FROM ({query_sql('stg_maker_auctions')}) ORDER BY clip, auction_id"
    now = _rows(copy, sql)
    with duckdb.connect(str(copy)) as con:
        con.execute("DELETE FROM raw_maker_events WHERE event IN ('take', 'redo', 'yank')")
        for column in ("auction_price", "auction_owe_dai", "auction_lot", "auction_followed"):
            con.execute(f"ALTER TABLE raw_maker_events DROP COLUMN {column}")
        con.execute("COMMENT ON TABLE schema_version IS 'chainrisk schema before auctions'")
    with Store(copy) as store:
        install_views(store.con)
    before = _rows(copy, sql)
    assert [(r["clip"], r["auction_id"]) for r in before] == [(r["clip"], r["auction_id"]) for r in now]
    assert any(r["shortfall_dai"] for r in now) and any(r["raised_dai"] for r in now)
    assert all(r["shortfall_dai"] is None for r in before)
    for old, new in zip(before, now, strict=True):
        if new["status"] in ("running", "needs redo"):
            assert (old["status"], old["tab_left_dai"], old["price_dai"], old["raised_dai"]) == (
                new["status"],
                new["tab_left_dai"],
                new["price_dai"],
                int(new["tab_dai"]) - int(new["tab_left_dai"]),
            )
            assert old["raised_dai"] == new["raised_dai"]
        else:
            assert old["status"] == "unknown" and old["raised_dai"] is None
    grabs = _rows(copy, f"SELECT bad_debt_tokens FROM ({query_sql('stg_maker_liquidations')})")
    assert all(g["bad_debt_tokens"] is None for g in grabs)


def test_liquidation_calls_name_every_liquidatable_account(full_db: Path) -> None:
    """mart_liquidation_calls holds a call for every account the scores call liquidatable, in every protocol that has
    one at its latest snapshot, and for no other; each account's call to send is one row where the keeper pays (an
    Aave wallet's pairs are alternatives), every row of the one call elsewhere; the exact amounts are those of the
    predictions each protocol's index test checks against the chain (raw_aave_v3_liquidations, raw_maker_urns' bark
    figures, raw_liquity_v1_troves)."""
    calls = _rows(full_db, f"SELECT * FROM ({query_sql('mart_liquidation_calls')})")
    risk = _rows(full_db, f"SELECT * FROM ({query_sql('stg_wallet_risk_latest')}) WHERE liquidatable")
    liquidatable = {(r["protocol"], r["market"], r["wallet"]) for r in risk}
    called = {(r["protocol"], r["market"], r["wallet"]) for r in calls}
    assert called == liquidatable and {p for p, _, _ in called} >= {"aave-v3", "maker", "liquity-v1"}
    best = Counter((r["protocol"], r["market"], r["wallet"]) for r in calls if r["best_for_account"])
    for r in calls:
        account = (r["protocol"], r["market"], r["wallet"])
        assert best[account] == 1 if r["keeper_pays"] else r["best_for_account"], account
        if r["goes_through"] and r["keeper_pays"]:
            assert int(r["debt_repaid"]) > 0 and int(r["collateral_seized"]) > 0
            assert r["keeper_gain_usd"] == pytest.approx(r["collateral_seized_usd"] - r["debt_repaid_usd"])
        elif r["goes_through"] and r["protocol"] in ("maker", "liquity-v1"):
            # Paid by the protocol: the reward in the debt asset and in the collateral, at their prices (the debt's
            # per token is what debt_repaid_usd is per debt_repaid_tokens).
            debt_price = r["debt_repaid_usd"] / r["debt_repaid_tokens"]
            collateral_price = r["collateral_seized_usd"] / r["collateral_seized_tokens"]
            reward = r["keeper_reward_debt_tokens"] * debt_price + (r["keeper_reward_collateral_tokens"] or 0.0) * (
                collateral_price
            )
            assert r["keeper_gain_usd"] == pytest.approx(reward, rel=1e-9)
            assert r["keeper_reward_usd"] == r["keeper_gain_usd"]
        elif r["protocol"] not in ("maker", "liquity-v1"):
            assert r["keeper_reward_debt"] is None and r["keeper_reward_collateral"] is None
        if r["goes_through"] and r["protocol_fee_debt"] is not None:
            # What the protocol charges on top, at the same prices as the amounts (none in USD for Comet).
            fee = r["protocol_fee_debt_tokens"] * r["debt_repaid_usd"] / r["debt_repaid_tokens"]
            if r["protocol_fee_collateral_tokens"]:
                fee += r["protocol_fee_collateral_tokens"] * r["collateral_seized_usd"] / r["collateral_seized_tokens"]
            assert r["protocol_fee_usd"] == pytest.approx(fee, rel=1e-9, abs=1e-12), r["protocol"]
        else:
            assert r["protocol_fee_usd"] is None and (r["protocol"] == "compound-v3" or not r["goes_through"])
    aave = {
        (r["wallet"], r["collateral_asset"], r["debt_asset"]): (
            r["debt_repaid"],
            r["collateral_seized"],
            r["protocol_fee"],
        )
        for r in _rows(full_db, "SELECT * FROM raw_aave_v3_liquidations")
    }
    assert aave and all(
        aave[r["wallet"], r["collateral_asset"], r["debt_asset"]]
        == (r["debt_repaid"], r["collateral_seized"], r["protocol_fee_collateral"])
        for r in calls
        if r["protocol"] == "aave-v3" and r["goes_through"]
    )
    urns = {r["urn"]: r for r in _rows(full_db, "SELECT * FROM raw_maker_urns WHERE NOT safe")}
    for r in (c for c in calls if c["protocol"] == "maker"):
        # The dai bark grabs, exact (test_index_maker checks bark_due against the Bark a real bark logs).
        assert r["debt_repaid"] is not None and int(r["debt_repaid"]) == int(urns[r["wallet"]]["bark_due"])
        # The keeper's incentive: the devnet's clips have no tip or chip filed (test_index_maker files mainnet's).
        incentive = urns[r["wallet"]]["bark_incentive"]
        assert r["blocked"] is not None or int(r["keeper_reward_debt"]) == int(incentive) == 0
        # The penalty: the tab bark would set over its due (test_index_maker checks both against a real Kick).
        urn = urns[r["wallet"]]
        assert (
            r["blocked"] is not None or int(r["protocol_fee_debt"]) == int(urn["bark_tab"]) - int(urn["bark_due"]) > 0
        )
    troves = {r["wallet"]: r for r in _rows(full_db, "SELECT * FROM raw_liquity_v1_troves WHERE liquidatable")}
    for r in (c for c in calls if c["protocol"] == "liquity-v1"):
        trove = troves[r["wallet"]]
        assert int(r["debt_repaid"]) == int(trove["entire_debt"])
        assert int(r["collateral_seized"]) == int(trove["entire_coll"]) - int(trove["coll_surplus"] or 0)
        # The gas compensation the keeper batch pays for it (test_index_liquity_v1 checks the sum against the chain).
        assert (r["keeper_reward_debt"], r["keeper_reward_collateral"]) == (
            trove["lusd_gas_compensation"],
            trove["coll_gas_compensation"],
        )


def test_liquidations_page_lists_each_liquidatable_accounts_call(
    full_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Liquidations page's "Liquidatable now" on the full devnet (Aave 3.6, Maker and Liquity accounts to
    liquidate): its accounts and sums are mart_liquidation_calls' best call per account (straight from the file), its
    table one row per call row to send, those that go through first, with wallet links."""
    monkeypatch.setenv("CHAINRISK_DB", str(full_db))
    app = open_page("liquidations")
    assert_clean(app)
    (expected,) = _rows(
        full_db,
        "SELECT count(DISTINCT (protocol, chain_id, market, wallet)) AS accounts, "
        "count(DISTINCT (protocol, chain_id, market, wallet)) FILTER (WHERE goes_through) AS open, "
        "sum(debt_repaid_usd) FILTER (WHERE goes_through) AS debt, count(*) AS calls, "
        "sum(protocol_fee_usd) FILTER (WHERE goes_through) AS fees "
        f"FROM ({query_sql('mart_liquidation_calls')}) WHERE best_for_account",
    )
    metrics = {m.label: m.value for m in app.metric}
    assert expected["accounts"] > 0 and metrics["Accounts"] == f"{expected['open']:,} of {expected['accounts']:,}"
    assert metrics["Debt to repay (USD)"] == usd_short(expected["debt"])
    assert expected["fees"] > 0 and metrics["Protocol fees due (USD)"] == usd_short(expected["fees"])
    calls = table_with(app, "keeper_gain_usd")
    assert calls.shape[0] == min(expected["calls"], 500)
    through = calls["goes_through"].tolist()
    assert through == sorted(through, reverse=True)
    assert all(link.endswith(wallet) for link, wallet in zip(calls["wallet page"], calls["wallet"], strict=True))
    # Never "1.0000" for an account Aave or Morpho liquidates (under 1 there): the health shown is floored.
    assert calls["keeper_pays"].any() and (calls[calls["keeper_pays"]]["health_factor"] < 1).all()


def test_liquidations_page_shows_the_maker_auctions(full_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Liquidations page's "Maker/Sky auctions" on the full devnet (the keeper's barks: one lot taken, the others
    past their tail): its counts and dai sums are stg_maker_auctions' (straight from the file), its table one row per
    auction, running ones first, with wallet links; the auction sold out short is the grab's bad debt."""
    monkeypatch.setenv("CHAINRISK_DB", str(full_db))
    app = open_page("liquidations")
    assert_clean(app)
    auctions = _rows(full_db, f"SELECT * FROM ({query_sql('stg_maker_auctions')})")
    running = [a for a in auctions if a["status"] in ("running", "needs redo")]
    ended = [a for a in auctions if a["status"] in ("raised", "sold out")]
    assert running and ended and len(running) + len(ended) == len(auctions)
    # The devnet's last act resets one stalled auction: it restarts at the feed's price times buf (1.2).
    (reset,) = [a for a in auctions if a["status"] == "running"]
    assert 1.1 < reset["price_to_feed"] <= 1.2 + 1e-9 and reset["redos"] == 1
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Open auctions"] == f"{len(running):,}"
    assert metrics["Need a reset"] == f"{sum(a['status'] == 'needs redo' for a in auctions):,}"
    assert metrics["Left to raise (DAI)"] == amount_short(sum(int(a["tab_left_dai"]) for a in running) / 1e18)
    assert metrics["Shortfall (DAI)"] == amount_short(sum(int(a["shortfall_dai"]) for a in ended) / 1e18)
    penalty = amount_short(sum(int(a["penalty_raised_dai"]) for a in ended) / 1e18)
    assert any(f"they raised {penalty} DAI" in c.value for c in app.caption)
    table = table_with(app, "price_to_feed_pct")
    assert table.shape[0] == len(auctions)
    statuses = table["status"].tolist()
    assert statuses[: len(running)] == [a["status"] for a in sorted(running, key=lambda a: -a["age_s"])]
    assert all(link.endswith(wallet) for link, wallet in zip(table["wallet page"], table["wallet"], strict=True))
    # The devnet's keeper bought the one lot taken: its take's sender, named in the table and the caption.
    bought = [a for a in auctions if a["takes"]]
    assert [(a["buyers"], a["top_buyer"]) for a in bought] == [(1, MAKER_KEEPER.lower())]
    assert table.loc[table["takes"] > 0, "top_buyer"].tolist() == [MAKER_KEEPER.lower()]
    assert any("One buyer bought all of the collateral sold" in c.value for c in app.caption)
    short = {a["wallet"]: int(a["shortfall_dai"]) for a in ended if int(a["shortfall_dai"]) > 0}
    grabs = _rows(
        full_db, f"SELECT wallet, bad_debt_tokens, bad_debt_known FROM ({query_sql('stg_maker_liquidations')})"
    )
    assert short and {g["wallet"]: g["bad_debt_tokens"] for g in grabs if g["wallet"] in short} == pytest.approx(
        {w: v / 1e18 for w, v in short.items()}, rel=1e-12
    )
    # The running auctions' grabs have no bad debt yet: known for the ended ones only, and the page says how many
    # liquidations its bad debt total leaves out.
    assert {g["wallet"] for g in grabs if not g["bad_debt_known"]} == {a["wallet"] for a in running}
    unknown = _rows(
        full_db,
        f"SELECT count(DISTINCT (protocol, chain_id, tx_hash, wallet)) AS n FROM ({query_sql('mart_liquidations')}) "
        "WHERE NOT bad_debt_known",
    )[0]["n"]
    assert unknown == len(running)
    assert any(f"{unknown:,} liquidations' bad debt is not known yet" in c.value for c in app.caption)


def test_liquidations_page_shows_the_comet_store_front(full_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Liquidations page's "Compound V3 store front" on the full devnet (its absorbs, the keeper's buys): the
    metrics are stg_compound_v3_store_front's sums (straight from the file), the table one row per collateral, the
    largest holding first; what the devnet's Comet holds is what its absorbs took less what its keeper bought."""
    monkeypatch.setenv("CHAINRISK_DB", str(full_db))
    app = open_page("liquidations")
    assert_clean(app)
    rows = _rows(full_db, f"SELECT * FROM ({query_sql('stg_compound_v3_store_front')})")
    assert rows and all(r["unaccounted"] == 0 for r in rows), "every absorb and sale indexed"
    assert sum(r["sales"] for r in rows) > 0 and sum(r["absorbed"] for r in rows) > 0
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Collateral held (USD)"] == usd_short(sum(r["held_usd"] or 0.0 for r in rows))
    assert metrics["Absorbed (USD)"] == usd_short(sum(r["absorbed_usd"] for r in rows))
    assert metrics["Sold for (USD)"] == usd_short(sum(r["paid_usd"] for r in rows))
    locked = sum(r["held_usd"] or 0.0 for r in rows if not r["for_sale"])
    assert metrics["Not for sale (USD)"] == usd_short(locked)
    table = table_with(app, "discount_pct")
    assert table.shape[0] == len(rows)
    assert table["held_usd"].fillna(0).tolist() == sorted(table["held_usd"].fillna(0).tolist(), reverse=True)


def test_wallet_page_lists_the_wallets_liquidation_calls(full_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A liquidatable wallet's page shows every call a keeper can send against it (mart_liquidation_calls, straight
    from the file: an Aave wallet's every pair), its call to send first."""
    monkeypatch.setenv("CHAINRISK_DB", str(full_db))
    calls = f"SELECT * FROM ({query_sql('mart_liquidation_calls')})"
    (chosen,) = _rows(
        full_db, f"SELECT wallet, count(*) AS n FROM ({calls}) GROUP BY wallet ORDER BY n DESC, wallet LIMIT 1"
    )
    app = open_page("wallet", wallet=chosen["wallet"])
    assert_clean(app)
    shown = table_with(app, "keeper_gain_usd")
    expected = _rows(full_db, f"SELECT * FROM ({calls}) WHERE wallet = '{chosen['wallet']}'")
    assert shown.shape[0] == chosen["n"] == len(expected)
    assert sorted(shown["debt_repaid_tokens"].dropna()) == pytest.approx(
        sorted(r["debt_repaid_tokens"] for r in expected if r["debt_repaid_tokens"] is not None)
    )
    assert bool(shown["best_for_account"].iloc[0]), "the call to send comes first"


def test_wallet_page_lists_the_urns_auctions(full_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A barked urn's page shows its auctions (stg_maker_auctions, straight from the file): the sold-out one with the
    shortfall it left the Vow, a running one with its tab left."""
    monkeypatch.setenv("CHAINRISK_DB", str(full_db))
    auctions = _rows(full_db, f"SELECT * FROM ({query_sql('stg_maker_auctions')}) ORDER BY status")
    for status in ("sold out", "needs redo"):
        chosen = next(a for a in auctions if a["status"] == status)
        app = open_page("wallet", wallet=chosen["wallet"])
        assert_clean(app)
        shown = table_with(app, "price_to_feed_pct")
        mine = [a for a in auctions if a["wallet"] == chosen["wallet"]]
        assert shown.shape[0] == len(mine) and status in shown["status"].tolist()
        row = shown[shown["status"] == status].iloc[0]
        if status == "sold out":
            assert row["shortfall"] == pytest.approx(int(chosen["shortfall_dai"]) / 1e18, rel=1e-12)
        else:
            assert row["tab_left"] == pytest.approx(int(chosen["tab_left_dai"]) / 1e18, rel=1e-12)


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


PROVIDER = load_abi("aave-v3", "IPoolAddressesProvider")
DATA_PROVIDER = load_abi("aave-v3", "AaveProtocolDataProvider")
ERC20 = load_abi("erc20", "IERC20Detailed")
MORPHO = load_abi("morpho-blue", "IMorpho")


def _pct(part: int, whole: int) -> float:
    return 100 * part / whole


def test_lending_pools_equal_the_contracts(full_devnet: dict[str, Any], full_rpc: RpcClient, full_db: Path) -> None:
    """Every pool the utilization and cap alerts watch, against the contracts at the pool's block: an Aave reserve's
    tokens' totalSupply() and the data provider's caps (its supply room is checked by a supply on the chain:
    tests/chainops.py::assert_supply_cap_headroom_is_exact), a Morpho market's totals as `markets` holds them
    (accrued to the block, checked against position() and market() elsewhere), the Comet's getUtilization(), totals,
    totalsCollateral() and supplyCap, a Maker ilk's Art x rate and line from the Vat."""
    pools = _rows(full_db, query_sql(LENDING_POOLS))
    assert {(p["protocol"], p["pool_kind"]) for p in pools} == {
        ("aave-v3", "reserve"),
        ("morpho-blue", "market"),
        ("compound-v3", "base"),
        ("compound-v3", "collateral"),
        ("maker", "ilk"),
    }

    def call(to: str, abi: Any, name: str, *args: Any, block: int) -> Any:
        return abi.decode(name, full_rpc.call(*eth_call(to, abi, name, *args, block=hex(block))))

    reserves = {
        (r["market"], r["asset"]): r
        for r in _rows(
            full_db,
            "SELECT market, asset, decimals, a_token, variable_debt_token, stable_debt_token FROM raw_aave_v3_reserves",
        )
    }
    markets = {
        (r["protocol"], r["market"]): r
        for r in _rows(full_db, "SELECT protocol, market, supply_amount, debt_amount FROM markets")
    }

    def approx(x: float) -> Any:
        return pytest.approx(x, rel=1e-12)  # doubles of the same integers, divided in another order

    capped = 0
    for pool in pools:
        block, kind = int(pool["block_number"]), pool["pool_kind"]
        if kind == "reserve":
            reserve = reserves[(pool["market"], pool["pool"])]
            unit = 10 ** int(reserve["decimals"])
            supplied = call(reserve["a_token"], ERC20, "totalSupply", block=block)[0]
            debt = sum(
                call(token, ERC20, "totalSupply", block=block)[0]
                for token in (reserve["variable_debt_token"], reserve["stable_debt_token"])
                if token and int(token, 16)
            )
            data = call(pool["market"], PROVIDER, "getPoolDataProvider", block=block)[0]
            borrow_cap, supply_cap = call(data, DATA_PROVIDER, "getReserveCaps", pool["pool"], block=block)
            assert (pool["supplied_tokens"], pool["debt_tokens"]) == (approx(supplied / unit), approx(debt / unit))
            assert pool["utilization_pct"] == approx(_pct(debt, supplied))
            assert pool["supply_cap_tokens"] == (supply_cap or None) and pool["debt_cap_tokens"] == (borrow_cap or None)
            if borrow_cap:
                assert pool["debt_cap_used_pct"] == approx(_pct(debt, borrow_cap * unit))
                assert pool["debt_room_tokens"] == approx((borrow_cap * unit - debt) / unit)
            capped += bool(supply_cap or borrow_cap)
        elif kind == "market":  # Morpho: one pool per market, the loan token's
            stored = markets[("morpho-blue", pool["market"])]
            supplied, debt = int(stored["supply_amount"]), int(stored["debt_amount"])
            assert pool["utilization_pct"] == (approx(_pct(debt, supplied)) if supplied else None)
            assert pool["supply_cap_used_pct"] is None and pool["debt_cap_used_pct"] is None
        elif kind == "base":
            comet = pool["market"]
            unit = 10 ** call(comet, COMET, "decimals", block=block)[0]
            assert pool["utilization_pct"] == approx(call(comet, COMET, "getUtilization", block=block)[0] / 1e16)
            assert pool["supplied_tokens"] == approx(call(comet, COMET, "totalSupply", block=block)[0] / unit)
            assert pool["debt_tokens"] == approx(call(comet, COMET, "totalBorrow", block=block)[0] / unit)
        elif kind == "collateral":
            comet, asset = pool["market"], pool["pool"]
            info = call(comet, COMET, "getAssetInfoByAddress", asset, block=block)[0]
            total = call(comet, COMET, "totalsCollateral", asset, block=block)[0]
            unit, cap = int(info[3]), int(info[-1])  # AssetInfo: offset, asset, priceFeed, scale, ..., supplyCap
            assert pool["supplied_tokens"] == approx(total / unit) and pool["supply_cap_tokens"] == approx(cap / unit)
            assert pool["supply_cap_used_pct"] == (approx(_pct(total, cap)) if cap else (100 if total else None))
            assert pool["supply_room_tokens"] == approx((cap - total) / unit)
            capped += 1
        else:  # a Maker ilk: debt Art x rate against the line, both rad
            art, rate, _, line, _ = call(full_devnet["maker"]["vat"], VAT, "ilks", _key(pool["pool"]), block=block)
            assert pool["debt_tokens"] == approx(art * rate / 10**45)
            assert pool["debt_cap_tokens"] == approx(line / 10**45)
            assert pool["debt_cap_used_pct"] == approx(_pct(art * rate, line))
            assert pool["debt_room_tokens"] == pytest.approx((line - art * rate) / 10**45, rel=1e-9)
            assert pool["supplied_tokens"] is None and pool["utilization_pct"] is None
            capped += 1
    assert capped >= 10


def test_a_cap_of_zero_is_full_while_anything_is_held_against_it(full_db: Path, tmp_path: Path) -> None:
    """A Comet collateral's supplyCap of 0 takes no supply (Comet.supplyCollateral) and a Maker ilk's line of 0 no
    debt (Vat.frob): 100 % used while some collateral or debt remains, nothing to watch once none does; Aave's cap of
    0 is no cap."""
    db = copy_of(full_db, tmp_path)
    with Store(db) as store:
        run = store.con.execute
        assets = [a for (a,) in run("SELECT asset FROM raw_compound_v3_assets ORDER BY asset LIMIT 2").fetchall()]
        ilks = [i for (i,) in run("SELECT ilk FROM raw_maker_ilks ORDER BY ilk LIMIT 2").fetchall()]
        run("UPDATE raw_compound_v3_assets SET supply_cap = 0 WHERE asset IN (?, ?)", assets)
        run("UPDATE raw_compound_v3_assets SET total_supply_asset = 0 WHERE asset = ?", [assets[1]])
        run("UPDATE raw_maker_ilks SET line_dai = 0, line_used = NULL WHERE ilk IN (?, ?)", ilks)
        run("UPDATE raw_maker_ilks SET debt_dai = 0 WHERE ilk = ?", [ilks[1]])
        run("UPDATE raw_aave_v3_reserves SET supply_cap = 0, borrow_cap = 0")
        found = run(f"SELECT protocol, pool, supply_cap_used_pct, debt_cap_used_pct FROM ({query_sql(LENDING_POOLS)})")
        used = {(protocol, pool): (supply, debt) for protocol, pool, supply, debt in found.fetchall()}
    assert used[("compound-v3", assets[0])][0] == 100 and used[("compound-v3", assets[1])][0] is None
    assert used[("maker", ilks[0])][1] == 100 and used[("maker", ilks[1])][1] is None
    uncapped = [figures for (protocol, _), figures in used.items() if protocol in ("aave-v3", "morpho-blue")]
    assert len(uncapped) > 6 and set(uncapped) == {(None, None)}


def test_utilization_and_cap_alerts_watch_every_pool(full_db: Path, tmp_path: Path) -> None:
    """One observation per pool and figure (utilization; each cap a pool has), breached exactly where the figure is
    over the limit; the breaches are sent once, and a pool that falls back sends its recovery."""
    db = copy_of(full_db, tmp_path)
    rules = [
        {"name": "locked", "kind": "utilization_above", "percent": 30},
        {"name": "caps", "kind": "cap_used_above", "percent": 0.01},
        {"name": "ceilings", "kind": "cap_used_above", "percent": 0.01, "caps": ["debt"], "protocol": "maker"},
    ]
    config = parse_alerts({"webhooks": [HOOK], "rules": rules}, {}, "test")
    assert config is not None
    receiver = Receiver()
    client = httpx.Client(transport=httpx.MockTransport(receiver.handle))
    with Store(db) as store:
        found = store.con.execute(query_sql(LENDING_POOLS))
        rows = [dict(zip([c[0] for c in found.description], row, strict=True)) for row in found.fetchall()]
        report = run_alerts(store.con, config, 1, client)
        sent = receiver.seen()

        def subject(row: dict[str, Any]) -> str:
            market, pool = row["market"], row["pool"]
            return f"{row['protocol']}:{market}" + ("" if pool == market else f":{pool}")

        utilization = {subject(r): r["utilization_pct"] for r in rows if r["utilization_pct"] is not None}
        caps = {
            f"{subject(r)} {cap} cap": r[f"{cap}_cap_used_pct"]
            for r in rows
            for cap in ("supply", "debt")
            if r[f"{cap}_cap_used_pct"] is not None
        }
        ceilings = {k: v for k, v in caps.items() if k.startswith("maker:")}
        expected = [
            ("breach", s)
            for figures, limit in ((utilization, 30), (caps, 0.01), (ceilings, 0.01))
            for s, used in figures.items()
            if used > limit
        ]
        assert sorted(sent) == sorted(expected) and report.evaluated == len(utilization) + len(caps) + len(ceilings)
        # Every protocol's pools are watched: Aave reserves and Morpho markets for utilization, a Comet collateral's
        # supply cap, an Aave borrow cap and a Maker ilk's ceiling for caps.
        assert {s.split(":")[0] for s in utilization} == {"aave-v3", "morpho-blue", "compound-v3"}
        assert {s.split(":")[0] + s.rsplit(" ", 2)[-2] for s in caps} >= {
            "aave-v3supply",
            "aave-v3debt",
            "compound-v3supply",
            "makerdebt",
        }
        assert any(e[1].startswith("maker:") for e in sent), sent
        texts = [p["text"] for p in receiver.payloads if p["rule"] == "caps"]
        assert any(" reserve of " in t and (" supply cap used " in t or " debt cap used " in t) for t in texts), texts
        assert not any("cap cap" in t for t in texts), texts
        run_alerts(store.con, config, 2, client)
        assert receiver.seen() == sent, "nothing changed: nothing sent again"
        # One ilk's debt falls under its ceiling's limit: its two breaches (both cap rules) recover.
        ilk = next(s for e, s in sent if s.startswith("maker:")).split(" ")[0].split(":")[1]
        store.con.execute("UPDATE raw_maker_ilks SET line_used = 0 WHERE ilk = ?", [ilk])
        run_alerts(store.con, config, 3, client)
        assert sorted(receiver.seen()[len(sent) :]) == [("recovery", f"maker:{ilk} debt cap")] * 2


def test_liquidation_alerts_send_each_new_liquidation_once(full_db: Path, tmp_path: Path) -> None:
    """A contract's first snapshot sends nothing (the history a first index reads is not news); with an earlier
    snapshot before the first liquidation, each account liquidated in a transaction after it, up to the latest
    snapshot, whose debt repaid exceeds the limit is sent once (a Comet absorb's rows counted as one), in every
    protocol; the next run sends nothing, and one whose window no longer holds them sends no recovery."""
    db = copy_of(full_db, tmp_path)
    receiver = Receiver()
    client = httpx.Client(transport=httpx.MockTransport(receiver.handle))
    with Store(db) as store:
        found = store.con.execute(f"SELECT * FROM ({query_sql('mart_liquidations')})")
        rows = [dict(zip([c[0] for c in found.description], row, strict=True)) for row in found.fetchall()]
        debt: dict[str, float] = {}
        for r in rows:
            key = f"{r['protocol']}:{r['market']}:{r['wallet']}:{r['tx_hash']}"
            debt[key] = debt.get(key, 0.0) + (r["debt_repaid_usd"] or 0.0)
        # Two limits: one every protocol's largest liquidation passes, one only the largest of all.
        largest: dict[str, float] = {}
        for key, usd in debt.items():
            largest[key.split(":")[0]] = max(largest.get(key.split(":")[0], 0.0), usd)
        limits = {"every protocol": min(largest.values()) * 0.999, "the largest": sorted(debt.values())[-2]}
        rules = [{"name": name, "kind": "liquidation_above", "usd": usd} for name, usd in limits.items()]
        config = parse_alerts({"webhooks": [HOOK], "rules": rules}, {}, "test")
        assert config is not None
        assert run_alerts(store.con, config, 1, client).sent == 0, "one snapshot: nothing is news"
        earlier = min(r["block_number"] for r in rows) - 1
        store.con.execute(
            "INSERT INTO snapshot_blocks SELECT protocol, chain_id, source, ?, block_hash, block_timestamp "
            "FROM snapshot_blocks",
            [earlier],
        )
        run_alerts(store.con, config, 2, client)
        for name, limit in limits.items():
            sent = {p["subject"]: p["value"] for p in receiver.payloads if p["rule"] == name}
            assert sent == pytest.approx({k: v for k, v in debt.items() if v > limit}, rel=1e-12), name
        assert set(largest) == {"aave-v3", "morpho-blue", "compound-v3", "maker", "liquity-v1"}
        assert {p["subject"].split(":")[0] for p in receiver.payloads} == set(largest)
        assert sum(p["rule"] == "the largest" for p in receiver.payloads) == 1
        assert all(p["event"] == "breach" and "debt repaid $" in p["text"] for p in receiver.payloads)
        assert run_alerts(store.con, config, 3, client).sent == 0
        store.con.execute("DELETE FROM snapshot_blocks WHERE block_number = ?", [earlier])
        assert run_alerts(store.con, config, 4, client).sent == 0, "an event does not recover"


def _sent_once_then_recovered(
    store: Store, kind: str, limit_key: str, measured: dict[str, float], text: str, recover: list[str]
) -> None:
    """A `kind` rule at the median of `measured` (subject -> figure, straight from the file): the subjects above it are
    sent once (each message holding `text`), the next run sends nothing, and once the `recover` statements change
    the file each recovers."""
    receiver = Receiver()
    client = httpx.Client(transport=httpx.MockTransport(receiver.handle))
    assert len(measured) >= 2
    limit = sorted(measured.values())[len(measured) // 2]  # about half the subjects above it
    config = parse_alerts({"webhooks": [HOOK], "rules": [{"name": kind, "kind": kind, limit_key: limit}]}, {}, "test")
    assert config is not None
    run_alerts(store.con, config, 1, client)
    sent = {p["subject"]: p["value"] for p in receiver.payloads}
    assert sent == pytest.approx({k: v for k, v in measured.items() if v > limit}, rel=1e-12) and sent
    assert all(p["event"] == "breach" and text in p["text"] for p in receiver.payloads)
    assert run_alerts(store.con, config, 2, client).sent == 0
    for statement in recover:
        store.con.execute(statement)
    run_alerts(store.con, config, 3, client)
    assert {p["subject"] for p in receiver.payloads if p["event"] == "recovery"} == set(sent)


def test_keeper_gain_alerts_send_each_opportunity_and_its_recovery(full_db: Path, tmp_path: Path) -> None:
    """Each account whose call to send now gains the keeper more than the limit is sent once (mart_liquidation_calls,
    straight from the file), the next run sends nothing, and each recovers once its call no longer goes through."""
    with Store(copy_of(full_db, tmp_path)) as store:
        found = store.con.execute(
            f"SELECT protocol, market, wallet, keeper_gain_usd FROM ({query_sql('mart_liquidation_calls')}) "
            "WHERE best_for_account AND goes_through AND keeper_pays"
        ).fetchall()
        # Their calls no longer go through (a grace period on every reserve, say): each recovers.
        recover = [
            "UPDATE raw_aave_v3_liquidations SET error = 'LiquidationGraceSentinelCheckFailed'",
            "UPDATE raw_morpho_blue_liquidations SET error = 'oracle reverts'",
        ]
        gains = {f"{p}:{m}:{w}": g for p, m, w, g in found}
        _sent_once_then_recovered(store, "keeper_gain_above", "usd", gains, "keeper's gain $", recover)


def test_stalled_auction_alerts_send_each_auction_waiting_for_a_reset(full_db: Path, tmp_path: Path) -> None:
    """Each Maker auction that needs a reset with more dai left to raise than the limit is sent once
    (stg_maker_auctions, straight from the file), the next run sends nothing, and each recovers once it no longer
    waits (reset by a keeper: here its sale restarted in the stored snapshot)."""
    with Store(copy_of(full_db, tmp_path)) as store:
        found = store.con.execute(
            f"SELECT market, clip, auction_id, tab_left_dai::DOUBLE / 1e18 FROM ({query_sql('stg_maker_auctions')}) "
            "WHERE status = 'needs redo'"
        ).fetchall()
        waiting = {f"maker:{m}:{c}:{a}": tab for m, c, a, tab in found}
        recover = ["UPDATE raw_maker_auctions SET needs_redo = false"]
        _sent_once_then_recovered(store, "auction_stalled_above", "dai", waiting, " DAI > ", recover)


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


def test_an_unforeseen_error_in_one_market_fails_that_market_not_the_run(
    full_devnet: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug met on one market's data (the Liquity adapter's snapshot raising what polars raised on a price past its
    columns) fails that market in one line, as a refused market does; every other market is indexed, scored and looked
    through, and the run ends `partial`, recorded and published (before, the exception stopped the whole run). With
    CHAINRISK_TRACEBACK set, the traceback is logged for a report."""
    from chainrisk.protocols.liquity_v1.adapter import ADAPTER as LIQUITY

    config = devnet_config(full_devnet, tmp_path / "run.duckdb")
    liquity = next(m for m in config.markets if m.protocol == "liquity-v1")

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise OverflowError("int value too large for Polars integer types: " + str(2**200))

    monkeypatch.setattr(LIQUITY, "snapshot", boom)
    monkeypatch.setenv(run_module.TRACEBACK_ENV, "1")
    report = run_once(config, full_devnet["rpc_url"])
    assert report.status == "partial", report.summary()
    assert list(report.failures) == [liquity.name]
    line = report.failures[liquity.name]
    assert line.startswith("internal error (OverflowError: int value too large") and "\n" not in line, line
    assert {r.protocol for r in report.indexed} == {m.protocol for m in config.markets} - {"liquity-v1"}
    assert report.score is not None and report.chains and report.published
    assert any(r.exc_info and r.exc_info[0] is OverflowError for r in caplog.records)
    with Store(config.db, read_only=True) as store:
        stored = set(store.query("SELECT DISTINCT protocol FROM positions")["protocol"].to_list())
        runs = store.query("SELECT status, markets_failed FROM runs").rows()
    assert stored == {m.protocol for m in config.markets} - {"liquity-v1"}
    assert runs == [("partial", 1)]


def test_markets_indexed_side_by_side_store_what_one_by_one_stores(
    full_devnet: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's markets indexed in threads (`parallel_markets`): every protocol of the full devnet read through two URLs
    of its node (two chains to chainrisk, as a config of several chains has), each URL's block pinned first, then every
    market at it side by side; the database holds exactly what the same run with one market after the other stores,
    at the same block, reported in the config's order. A URL that cannot be made ready (made up here for the second
    one) has its markets read one after the other, each making its own reorg repair; two more markets on a URL nothing
    answers fail each in its own line, one after the other, in both runs alike."""
    url = full_devnet["rpc_url"]
    other = url.rstrip("/") + "/"  # the same node under another URL: another chain to chainrisk
    assert other != url
    dead = f"http://127.0.0.1:{free_port()}"
    base = devnet_config(full_devnet, tmp_path / "unused.duckdb")
    chains = {n: ChainConfig(n, 31337, u) for n, u in (("near", url), ("far", other), ("dead", dead))}
    # Aave V3.0.2 and V3.6 on different URLs: two markets of one protocol write its events table (and that table's
    # ledger row) from two threads.
    far = {"devnet morpho-blue", "devnet aave-v3.6"} | {m.name for m in base.markets if m.protocol == "maker"}
    markets = [replace(m, chain="far" if m.name in far else "near") for m in base.markets]
    assert {m.chain for m in markets if m.protocol == "aave-v3"} == {"near", "far"}
    unreachable = [replace(m, chain="dead", name=f"{m.name} (dead RPC)") for m in base.markets[-2:]]
    calls: dict[int, list[tuple[str, str, str, int | None]]] = {}  # workers -> (thread, URL, market, to_block) each
    repaired: dict[tuple[str, str], bool] = {}  # (URL, market) -> whether the run made its reorg repair before

    def recorded(protocol: str, rpc_url: str, address: str, *args: Any, **kwargs: Any) -> Any:
        thread = threading.current_thread().name
        calls.setdefault(workers, []).append((thread, rpc_url, address, kwargs["to_block"]))
        repaired[rpc_url, address] = kwargs["repaired"] is not None
        return index_market(protocol, rpc_url, address, *args, **kwargs)

    def ready(rpc_url: str, *args: Any) -> Any:
        if rpc_url == other:  # a URL that cannot be made ready: its markets one after the other, as before
            raise UserError("cannot reach RPC (made up)")
        return chain_ready(rpc_url, *args)

    monkeypatch.setattr(run_module, "index_market", recorded)
    monkeypatch.setattr(run_module, "chain_ready", ready)
    reports = {}
    for workers in (1, 4):
        config = replace(
            base,
            db=tmp_path / f"{workers}.duckdb",
            markets=[*markets, *unreachable],
            chains=chains,
            parallel_markets=workers,
        )
        reports[workers] = run_once(config, url)
        assert reports[workers].status == "partial", reports[workers].summary()
        assert [(r.protocol, r.market) for r in reports[workers].indexed] == [(m.protocol, m.address) for m in markets]
        assert list(reports[workers].failures) == [m.name for m in unreachable]
        assert all("cannot reach RPC" in line for line in reports[workers].failures.values())
    block = reports[1].indexed[0].to_block
    assert {r.to_block for r in reports[1].indexed + reports[4].indexed} == {block}
    # One after the other: the main thread, in the config's order, each URL's first market asked for the head's block
    # (None) and its others for the block it pinned. Side by side: worker threads, every market of a live URL asked for
    # the block pinned first; the dead URL's markets one after the other, each left to find its own.
    in_order = [(m.address, None if m.name in ("devnet aave-v3", "devnet morpho-blue") else block) for m in markets]
    assert [(t, a, b) for t, u, a, b in calls[1] if u != dead] == [(threading.main_thread().name, *c) for c in in_order]
    assert threading.main_thread().name not in {t for t, _, _, _ in calls[4]}
    assert len({t for t, _, _, _ in calls[4]}) >= 2
    near = [m.address for m in markets if m.chain == "near"]
    assert sorted((a, b) for _, u, a, b in calls[4] if u == url) == sorted((a, block) for a in near)
    assert all(repaired[url, a] for a in near)
    in_far = [m.address for m in markets if m.chain == "far"]
    assert [(a, b) for _, u, a, b in calls[4] if u == other] == [(in_far[0], None), *((a, block) for a in in_far[1:])]
    assert not any(repaired[other, a] for a in in_far)
    assert [(a, b) for _, u, a, b in calls[4] if u == dead] == [(m.address, None) for m in unreachable]
    tables = ("positions", "wallet_health", "markets", "position_risk", "liquidation_curve", "snapshot_blocks")
    for table in (*tables, "data_quality", "raw_compound_v3_accounts", "raw_maker_urns", "raw_liquity_v1_troves"):
        with Store(tmp_path / "1.duckdb", read_only=True) as one, Store(tmp_path / "4.duckdb", read_only=True) as two:
            first, second = one.query(f"SELECT * FROM {table}"), two.query(f"SELECT * FROM {table}")
        assert first.height or table == "data_quality", table  # the full devnet has no odd contract
        assert first.sort(first.columns).equals(second.sort(second.columns)), table
