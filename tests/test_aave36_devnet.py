"""Aave V3.6's own bytecode on anvil (an L1 market, and an L2 market behind a PriceOracleSentinel on a chain of its
own): the adapter reads it as 3.6, and every wallet's getUserAccountData and every liquidationCall equal
chainrisk's after the 3.6 scenarios (bitmap e-modes, ltvzero, isolation, siloed, accrual, crash, deficits)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chainrisk.abi import Abi, eth_call, event_topic, load_abi
from chainrisk.devnet.aave36 import (
    KEEPER36,
    L2_DEVNET_CHAIN_ID,
    MAX_UINT,
    POOL_REVISION,
    Aave36Driver,
    ScenarioResult,
    as_aave_deployment,
    deploy_with_assets,
    run_scenarios,
)
from chainrisk.devnet.build import DevnetOptions, build_devnet
from chainrisk.devnet.node import DEPLOYER, BlockBuilder, free_port, start_anvil, stop_process
from chainrisk.devnet.prices import parse_start
from chainrisk.devnet.toolchain import aave_artifact, aave_origin_contracts
from chainrisk.jobs.index import index_aave_v3
from chainrisk.jobs.score import score
from chainrisk.protocols.aave_v3.adapter import DDL
from chainrisk.protocols.aave_v3.events import GOVERNANCE_TOPICS
from chainrisk.protocols.aave_v3.liquidation import LiquidationOutcome
from chainrisk.protocols.aave_v3.maths import a_token_transfer_scaled
from chainrisk.protocols.aave_v3.snapshot import discover
from chainrisk.protocols.aave_v3.version import PoolVersion
from chainrisk.rpc import RpcClient, RpcError
from chainrisk.store.db import Store
from chainrisk.store.schema import SCHEMA_VERSION
from chainrisk.store.views import query_sql
from chainrisk.units import WAD
from tests.chainops import (
    FEED,
    assert_rate_curves_equal_the_strategies,
    assert_reserve_totals_equal_the_chain,
    assert_supply_cap_headroom_is_exact,
    sandbox,
)

POOL_V30 = load_abi("aave-v3", "IPool")
POOL_3X = load_abi("aave-v3", "IPoolV3x")
ERC20 = load_abi("erc20", "IERC20Detailed")
#: Feed answers at the start (8 decimals), about mid-2024's.
INITIAL = {
    "WETH": 3_000 * 10**8,
    "stETH": 2_990 * 10**8,
    "WBTC": 60_000 * 10**8,
    "USDC": 10**8,
    "DAI": 10**8,
    "USDT": 10**8,
    "LINK": 15 * 10**8,
}
LIQUIDATION_CALL_TOPIC = event_topic("LiquidationCall(address,address,address,uint256,uint256,address,bool)")
DEFICIT_TOPIC = event_topic("DeficitCreated(address,address,uint256)")
TRANSFER_TOPIC = event_topic("Transfer(address,address,uint256)")
A_TOKEN = load_abi("aave-v3", "IAToken")
ORACLE = load_abi("aave-v3", "IAaveOracle")
STRATEGY_V2 = load_abi("aave-v3", "IDefaultInterestRateStrategyV2")


def _word_address(address: str) -> str:
    """An address as an indexed topic holds it."""
    return "0x" + address.lower()[2:].rjust(64, "0")


def transfers_to(receipt: dict[str, Any], token: str, sender: str, receiver: str) -> list[int]:
    """The values of `token`'s Transfer logs from `sender` to `receiver` in `receipt`."""
    return [
        int(log["data"], 16)
        for log in receipt["logs"]
        if log["address"].lower() == token.lower()
        and log["topics"][:3] == [TRANSFER_TOPIC, _word_address(sender), _word_address(receiver)]
    ]


@dataclass
class Chain:
    rpc: RpcClient
    deployed: dict[str, Any]  #: deploy_with_assets' answer
    scenarios: ScenarioResult
    db: Path  #: the market indexed

    @property
    def market(self) -> dict[str, Any]:
        return dict(self.deployed["market"])


def _chain(tmp: Path, *, l2: bool) -> Iterator[Chain]:
    port = free_port()
    process = start_anvil(port, L2_DEVNET_CHAIN_ID if l2 else 31337, tmp / "anvil.log", detach=False)
    try:
        with RpcClient(f"http://127.0.0.1:{port}") as rpc:
            builder = BlockBuilder(rpc)
            deployed = deploy_with_assets(builder, INITIAL, l2=l2)
            driver = Aave36Driver(builder, deployed["market"], deployed["feeds"], deployed["lst"])
            scenarios = run_scenarios(driver)
            db = tmp / "chainrisk.duckdb"
            # The L2 chain id is no local id the indexer knows: read to the head all the same.
            index_aave_v3(rpc.url, deployed["market"]["pool_addresses_provider"], db, confirmations=0)
            yield Chain(rpc, deployed, scenarios, db)
    finally:
        stop_process(process.pid)


@pytest.fixture(scope="module")
def l1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    yield from _chain(tmp_path_factory.mktemp("aave36-l1"), l2=False)


@pytest.fixture(scope="module")
def l2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    yield from _chain(tmp_path_factory.mktemp("aave36-l2"), l2=True)


@pytest.fixture(params=["l1", "l2"])
def chain(request: pytest.FixtureRequest) -> Chain:
    found: Chain = request.getfixturevalue(request.param)
    return found


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _head(rpc: RpcClient) -> tuple[int, int]:
    block = rpc.call("eth_getBlockByNumber", ["latest", False])
    return int(block["number"], 16), int(block["timestamp"], 16)


def test_the_market_is_v3_6_and_read_as_such(chain: Chain) -> None:
    market = chain.market
    block, _ = _head(chain.rpc)
    revision = POOL_3X.decode("POOL_REVISION", chain.rpc.call(*eth_call(market["pool"], POOL_3X, "POOL_REVISION")))
    assert revision == (POOL_REVISION,)
    deployment = discover(chain.rpc, market["pool_addresses_provider"], block)
    assert (deployment.version, deployment.pool_revision) == (PoolVersion(3, 6), POOL_REVISION)
    pool_name = "L2PoolInstance" if market["l2"] else "PoolInstance"
    assert f"{pool_name} implementation" in market["contracts"]
    assert (market["price_oracle_sentinel"] is not None) == market["l2"]
    assert as_aave_deployment(market).reserves["USDT"].a_token == market["reserves"]["USDT"]["a_token"]
    rows = _rows(chain.db, "SELECT DISTINCT pool_version, pool_revision, virtual_accounting FROM raw_aave_v3_reserves")
    assert rows == [("3.6", POOL_REVISION, True)]


def test_reserve_and_emode_columns_equal_the_chain(chain: Chain) -> None:
    market, rpc = chain.market, chain.rpc
    reserves = {
        r[0]: r[1:]
        for r in _rows(
            chain.db,
            "SELECT symbol, deficit, liquidation_grace_period_until, siloed_borrowing, debt_ceiling, "
            "stable_debt_token FROM raw_aave_v3_reserves",
        )
    }
    assets = {s: r["asset"] for s, r in market["reserves"].items()}
    calls = [
        eth_call(market["pool"], POOL_3X, fn, a)
        for a in assets.values()
        for fn in ("getReserveDeficit", "getLiquidationGracePeriod")
    ]
    raw = rpc.batch(calls)
    for i, symbol in enumerate(assets):
        deficit = POOL_3X.decode("getReserveDeficit", raw[2 * i])[0]
        grace = POOL_3X.decode("getLiquidationGracePeriod", raw[2 * i + 1])[0]
        assert (int(reserves[symbol][0]), reserves[symbol][1]) == (deficit, grace), symbol
    # The liquidation that emptied the deficit wallet's collateral booked its LINK debt as deficit.
    (user, asset, amount), *_ = chain.scenarios.deficits
    assert asset == assets["LINK"] and user == chain.scenarios.wallets["deficit"] and amount > 0
    assert int(reserves["LINK"][0]) >= amount
    # The wallet with two debts: the liquidation of its LINK took all its USDC and booked both debts' rest.
    assert {(u, a) for u, a, _ in chain.scenarios.deficits[1:]} == {
        (chain.scenarios.wallets["deficit_two"], assets[s]) for s in ("LINK", "DAI")
    }
    events = _rows(chain.db, "SELECT wallet, reserve, amount FROM raw_aave_v3_events WHERE event = 'DeficitCreated'")
    assert [(w, r, int(a)) for w, r, a in events] == [(u, a.lower(), n) for u, a, n in chain.scenarios.deficits]
    assert reserves["WBTC"][1] == chain.scenarios.grace_until and reserves["WBTC"][2]
    assert reserves["LINK"][3] > 0 and reserves["USDC"][4] == "0x" + "0" * 40
    categories = _rows(
        chain.db,
        "SELECT category_id, label, collateral_bitmap, borrowable_bitmap, ltvzero_bitmap "
        "FROM raw_aave_v3_emode_categories ORDER BY category_id",
    )
    bitmap_views = (
        "getEModeCategoryCollateralBitmap",
        "getEModeCategoryBorrowableBitmap",
        "getEModeCategoryLtvzeroBitmap",
    )
    for category_id, label, *bitmaps in categories:
        chain_bitmaps = [
            POOL_3X.decode(fn, rpc.call(*eth_call(market["pool"], POOL_3X, fn, category_id)))[0] for fn in bitmap_views
        ]
        assert [int(b, 16) for b in bitmaps] == chain_bitmaps, label
    assert [c[0] for c in categories] == [1, 2]
    # Category 2's ltvzero bitmap holds USDT (offboarded after the positions opened).
    assert int(categories[1][4], 16) == 1 << market["reserves"]["USDT"]["reserve_id"]


def test_governed_sources_and_rate_curves_equal_the_chain(chain: Chain) -> None:
    """Each reserve's oracle source, interest rate strategy and the strategy's curve for it (3.6's
    DefaultReserveInterestRateStrategyV2, one contract holding every reserve's curve) as the contracts answer them."""
    market, rpc = chain.market, chain.rpc
    provider = load_abi("aave-v3", "IPoolAddressesProvider")
    oracle = provider.decode(
        "getPriceOracle", rpc.call(*eth_call(market["pool_addresses_provider"], provider, "getPriceOracle"))
    )[0]
    stored = {
        r[0]: r[1:]
        for r in _rows(
            chain.db,
            "SELECT asset, price_source, interest_rate_strategy, optimal_usage_ratio, base_variable_borrow_rate, "
            "variable_rate_slope1, variable_rate_slope2 FROM raw_aave_v3_reserves",
        )
    }
    assert len(stored) == len(market["reserves"])
    strategies = set()
    for symbol, reserve in market["reserves"].items():
        asset = reserve["asset"].lower()
        source = ORACLE.decode("getSourceOfAsset", rpc.call(*eth_call(oracle, ORACLE, "getSourceOfAsset", asset)))[0]
        strategy = POOL_V30.decode(
            "getReserveData", rpc.call(*eth_call(market["pool"], POOL_V30, "getReserveData", asset))
        )[0][11]
        curve = STRATEGY_V2.decode(
            "getInterestRateData", rpc.call(*eth_call(strategy, STRATEGY_V2, "getInterestRateData", asset))
        )[0]
        found = stored[asset]
        assert (found[0], found[1]) == (source.lower(), strategy.lower()), symbol
        assert [int(v) for v in found[2:]] == [int(v) for v in curve], symbol
        strategies.add(strategy)
    assert len(strategies) == 1, "3.6 prices every reserve with the pool's one strategy"
    assert len({stored[a][5] for a in stored}) > 1, "the reserves' curves differ"
    assert assert_rate_curves_equal_the_strategies(rpc, chain.db) == 8 * len(stored)


def test_governance_logs_are_stored_as_the_chain_holds_them(chain: Chain) -> None:
    """3.6's PoolConfigurator and AaveOracle logs (the market's set-up: each reserve initialised and configured, its
    oracle source set) are stored as governance events: every log of an event of GOVERNANCE_EVENTS the two contracts
    hold in the indexed range, with its reserve (its indexed asset, or the first data word where the asset is not
    indexed) or e-mode category, and none other; stg_aave_v3_governance_events lists every reserve as listed."""
    market, rpc = chain.market, chain.rpc
    provider = market["pool_addresses_provider"].lower()
    ((first, last),) = _rows(
        chain.db, f"SELECT from_block, events_to_block FROM sync_state WHERE market = '{provider}'"
    )
    logs = rpc.call(
        "eth_getLogs",
        [
            {
                "address": [market["pool_configurator"], market["oracle"]],
                "fromBlock": hex(first),
                "toBlock": hex(last),
                "topics": [list(GOVERNANCE_TOPICS)],
            }
        ],
    )

    def item(log: dict[str, Any]) -> str:
        name = GOVERNANCE_TOPICS[log["topics"][0]]
        if name == "EModeCategoryAdded":
            return str(int(log["topics"][1], 16))
        word = str(log["data"][2:66] if name == "BorrowableInIsolationChanged" else log["topics"][1])
        return "0x" + word[-40:]

    expected = {
        (log["transactionHash"], int(log["logIndex"], 16), GOVERNANCE_TOPICS[log["topics"][0]], item(log))
        for log in logs
    }
    stored = set(
        _rows(
            chain.db,
            "SELECT tx_hash, log_index, event, coalesce(reserve, code::VARCHAR) FROM raw_aave_v3_events "
            f"WHERE market = '{provider}' AND wallet = '0x{'0' * 40}'",
        )
    )
    assert stored == expected
    names = {e[2] for e in expected}
    assert {"ReserveInitialized", "CollateralConfigurationChanged", "AssetSourceUpdated"} <= names, names
    assets = {r["asset"].lower() for r in market["reserves"].values()}
    listed = _rows(
        chain.db,
        f"SELECT DISTINCT item FROM ({query_sql('stg_aave_v3_governance_events')}) "
        f"WHERE source = '{provider}' AND change = 'listed' AND item LIKE '0x%'",
    )
    assert {r[0] for r in listed} == assets


def test_reserve_totals_equal_the_tokens_total_supply(chain: Chain) -> None:
    """3.6 rounds a total as each token's balanceOf does (the aToken's down, the debt token's up): each reserve's
    totals equal its tokens' totalSupply() at the snapshot."""
    assert assert_reserve_totals_equal_the_chain(chain.rpc, chain.db) >= 3


def test_supply_cap_headroom_is_what_the_pool_lets_in(chain: Chain, tmp_path: Path) -> None:
    """3.5+ adds the amount's scaled value before flooring the sum over the index (maths.supply_cap solves
    the largest amount from those floors): the stored headroom is the largest supply the 3.6 pool lets in."""
    usdc = chain.market["reserves"]["USDC"]
    assert_supply_cap_headroom_is_exact(chain.rpc, chain.market, usdc["asset"], 6, tmp_path)


def check_account_data(rpc: RpcClient, db: Path, pool: str, where: str = "TRUE") -> list[tuple[Any, ...]]:
    """Asserts every wallet_health row matching `where` equals the pool's getUserAccountData at its block (the
    health factor to the wei, MAX_UINT for no debt); returns the rows (wallet, block, figures ..., e-mode)."""
    rows = _rows(
        db,
        "SELECT wallet, block_number, total_collateral_base, total_debt_base, available_borrows_base, "
        f"liquidation_threshold_bps, ltv_bps, health_factor_wad, emode_category FROM wallet_health WHERE {where}",
    )
    raw = rpc.batch([eth_call(pool, POOL_V30, "getUserAccountData", r[0], block=hex(r[1])) for r in rows])
    for row, item in zip(rows, raw, strict=True):
        ours = (*(int(v) for v in row[2:5]), row[5], row[6], MAX_UINT if row[7] is None else int(row[7]))
        assert ours == POOL_V30.decode("getUserAccountData", item), row[0]
    return rows


def test_every_wallet_equals_get_user_account_data(chain: Chain) -> None:
    rows = check_account_data(chain.rpc, chain.db, chain.market["pool"])
    stored = {r[0] for r in rows}
    wallets = chain.scenarios.wallets
    assert set(wallets.values()) - {wallets["receiver"]} <= stored  # the receiver only got aTokens
    assert wallets["receiver"] in stored  # ... which the transfer logs reveal
    emodes = {r[0]: r[8] for r in rows}
    assert {emodes[wallets[w]] for w in ("emode_eth", "emode_stable", "emode_mixed", "emode_back")} == {0, 1, 2}


def _send(rpc: RpcClient, sender: str, to: str, data: str, timestamp: int) -> dict[str, Any]:
    tx_hash = rpc.call(
        "eth_sendTransaction", [{"from": sender, "to": to, "data": data, "gas": hex(8_000_000), "gasPrice": "0x0"}]
    )
    rpc.call("evm_mine", [timestamp])
    receipt: dict[str, Any] = rpc.call("eth_getTransactionReceipt", [tx_hash])
    return receipt


def _candidates(chain: Chain, block: int) -> list[tuple[str, int, int, LiquidationOutcome]]:
    """Every (wallet, collateral id, debt id) a liquidator could name, and what chainrisk STORED the call does
    (raw_aave_v3_liquidations, for wallets under health 1; a healthy wallet's call must revert)."""
    ids = {r["asset"].lower(): r["reserve_id"] for r in chain.market["reserves"].values()}
    pairs = _rows(
        chain.db,
        "SELECT c.wallet, c.asset, d.asset FROM positions c JOIN positions d USING (wallet, block_number) "
        f"WHERE c.collateral_amount > 0 AND d.debt_amount > 0 AND c.block_number = {block}",
    )
    stored = {
        (r[0], r[1], r[2]): LiquidationOutcome(r[3], int(r[4]), int(r[5]), int(r[6]), int(r[7]), int(r[8]))
        for r in _rows(
            chain.db,
            "SELECT wallet, collateral_asset, debt_asset, error, health_factor_wad, max_liquidatable_debt, "
            f"debt_repaid, collateral_seized, protocol_fee FROM raw_aave_v3_liquidations WHERE block_number = {block}",
        )
    }
    sql = "SELECT wallet, collateral_asset, debt_asset, deficit_created FROM raw_aave_v3_liquidations"
    deficits = {(r[0], r[1], r[2]): int(r[3]) for r in _rows(chain.db, f"{sql} WHERE block_number = {block}")}
    found = []
    for wallet, collateral, debt in pairs:
        outcome = stored.get((wallet, collateral, debt), LiquidationOutcome("HealthFactorNotBelowThreshold", 0, 0))
        if deficits.get((wallet, collateral, debt)):
            outcome = LiquidationOutcome(
                outcome.error,
                outcome.health_factor,
                outcome.max_liquidatable_debt,
                outcome.debt_repaid,
                outcome.collateral_seized,
                outcome.protocol_fee,
                {ids[debt]: deficits[wallet, collateral, debt]},
            )
        found.append((wallet, ids[collateral], ids[debt], outcome))
    return found


def test_liquidation_calls_do_what_chainrisk_says(chain: Chain) -> None:
    """For each candidate chainrisk calls liquidatable, liquidationCall(collateral, debt, user, max, false) from a
    funded keeper repays exactly its debt, seizes exactly its collateral and moves exactly its fee to the treasury (the
    LiquidationCall event and the aToken's Transfer of a tx mined and rolled back); each it calls not liquidatable
    reverts."""
    rpc, market = chain.rpc, chain.market
    block, timestamp = _head(rpc)
    candidates = _candidates(chain, block)
    pool_abi = Abi(aave_origin_contracts()["PoolInstance"].abi)
    mint = Abi(aave_artifact("MintableERC20").abi)
    by_id = {r["reserve_id"]: r for r in market["reserves"].values()}
    outer = rpc.call("evm_snapshot")
    try:
        for reserve in by_id.values():  # wstETH is never a debt here; everything else is open-mint
            if reserve["symbol"] != "wstETH":
                _send(rpc, KEEPER36, reserve["asset"], mint.encode("mint", 10**30), timestamp)
                _send(rpc, KEEPER36, reserve["asset"], ERC20.encode("approve", market["pool"], MAX_UINT), timestamp)
        liquidated = refused = fees = 0
        for wallet, collateral, debt, outcome in candidates:
            call = pool_abi.encode(
                "liquidationCall", by_id[collateral]["asset"], by_id[debt]["asset"], wallet, MAX_UINT, False
            )
            label = (wallet, by_id[collateral]["symbol"], by_id[debt]["symbol"], outcome.error)
            if outcome.error is not None:
                with pytest.raises(RpcError):
                    rpc.call("eth_call", [{"from": KEEPER36, "to": market["pool"], "data": call}, "latest"])
                refused += 1
                continue
            inner = rpc.call("evm_snapshot")
            receipt = _send(rpc, KEEPER36, market["pool"], call, timestamp)
            assert rpc.call("evm_revert", [inner]) is True
            assert int(receipt["status"], 16) == 1, label
            (event,) = [log for log in receipt["logs"] if log["topics"][0] == LIQUIDATION_CALL_TOPIC]
            repaid, seized = int(event["data"][2:66], 16), int(event["data"][66:130], 16)
            assert (repaid, seized) == (outcome.debt_repaid, outcome.collateral_seized), label
            # The treasury's fee: what chainrisk stored moves from the borrower's collateral aTokens to the treasury.
            fee = transfers_to(receipt, by_id[collateral]["a_token"], wallet, market["treasury"])
            assert fee == ([outcome.protocol_fee] if outcome.protocol_fee else []), label
            fees += outcome.protocol_fee > 0
            deficits = {
                int(log["topics"][2][-40:], 16): int(log["data"], 16)
                for log in receipt["logs"]
                if log["topics"][0] == DEFICIT_TOPIC
            }
            expected = {int(by_id[i]["asset"], 16): amount for i, amount in outcome.deficits.items()}
            assert deficits == expected, label
            liquidated += 1
    finally:
        assert rpc.call("evm_revert", [outer]) is True
    errors = {o.error for *_, o in candidates}
    if market["l2"]:
        # The sequencer is down: only borrowers below health 0.95 can be liquidated, and the sentinel's refusal
        # comes before the grace period's (healthy borrowers revert either way).
        assert errors == {None, "PriceOracleSentinelCheckFailed", "HealthFactorNotBelowThreshold"} and liquidated >= 2
    else:
        assert {"HealthFactorNotBelowThreshold", "LiquidationGraceSentinelCheckFailed"} <= errors
        assert liquidated >= 6
    # The wallet's status says the same: blocked (and why) exactly when no keeper call of its pairs goes through.
    allowed = {
        r[0]: r[1]
        for r in _rows(
            chain.db,
            "SELECT wallet, bool_or(allowed_debt_to_cover > 0) FROM raw_aave_v3_liquidations "
            f"WHERE block_number = {block} GROUP BY wallet",
        )
    }
    blocked = "SELECT wallet, liquidation_blocked FROM wallet_health WHERE health_factor_wad < 1e18 AND block_number = "
    status = dict(_rows(chain.db, f"{blocked}{block}"))
    assert set(status) == set(allowed) and all((status[w] is None) == allowed[w] for w in status)
    reason = "sequencer_down" if market["l2"] else "grace_period"
    assert reason in set(status.values()), status
    # One liquidation books a deficit (deficit_open's collateral does not cover its debt).
    assert any(o.deficits for *_, o in candidates if o.error is None)
    assert fees == liquidated  # the market's 10 % fee: every call that goes through pays the treasury


def test_logged_liquidations_carry_the_fee_the_treasury_received(chain: Chain) -> None:
    """The scenarios' three liquidations (two leaving deficits, one paying the liquidator in aTokens) each carry the
    treasury's fee: the collateral aToken's Transfer from the borrower to the market's treasury in its receipt, decoded
    here (not the liquidator's own aTokens); and the treasury, which receives nothing else on this chain, holds exactly
    the scaled aTokens those fees moved at each block's liquidity index (Pool.getReserveNormalizedIncome, read at the
    block; TokenMath's rounding up of a transfer's scaled amount)."""
    rpc, market = chain.rpc, chain.market
    sql = query_sql("stg_aave_v3_liquidations")  # the file holds this market alone
    rows = _rows(
        chain.db,
        "SELECT tx_hash, block_number, wallet, liquidator, collateral_asset, protocol_fee_collateral, "
        f"protocol_fee_collateral_tokens FROM ({sql}) WHERE collateral_asset IS NOT NULL "
        "ORDER BY block_number, log_index",
    )
    assert len(rows) == 3
    a_tokens = {r["asset"].lower(): r for r in market["reserves"].values()}
    treasury = market["treasury"]
    scaled: dict[str, int] = {}
    paid_in_a_tokens = 0
    for tx, block, wallet, liquidator, collateral, fee, fee_tokens in rows:
        receipt = rpc.call("eth_getTransactionReceipt", [tx])
        reserve = a_tokens[collateral]
        assert [int(fee)] == transfers_to(receipt, reserve["a_token"], wallet, treasury) and fee > 0, tx
        assert fee_tokens == pytest.approx(int(fee) / 10 ** reserve["decimals"], rel=1e-12)
        paid_in_a_tokens += bool(transfers_to(receipt, reserve["a_token"], wallet, liquidator))
        call = eth_call(market["pool"], POOL_V30, "getReserveNormalizedIncome", collateral, block=hex(block))
        income = POOL_V30.decode("getReserveNormalizedIncome", rpc.call(*call))[0]
        scaled[reserve["a_token"]] = scaled.get(reserve["a_token"], 0) + a_token_transfer_scaled(
            PoolVersion(3, 6), int(fee), income
        )
    assert paid_in_a_tokens == 1  # the crash_partial liquidation, with receiveAToken
    for token, expected in scaled.items():
        held = A_TOKEN.decode("scaledBalanceOf", rpc.call(*eth_call(token, A_TOKEN, "scaledBalanceOf", treasury)))
        assert held[0] == expected, token


def test_a_file_made_before_the_version_columns_gains_them(tmp_path: Path) -> None:
    """The adapter's DDL runs whole on every index: its ALTERs add the 3.1-3.7 columns to an older file's tables,
    and running it again changes nothing."""
    before_alters = DDL[: DDL.index("-- Columns added with Aave 3.1-3.7")]
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(before_alters)
        # A chainrisk file always has its schema version (a DuckDB file without it is refused as another program's).
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        con.execute(f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION})")
        con.execute(
            "INSERT INTO raw_aave_v3_reserves (chain_id, market, block_number, asset, reserve_id, configuration) "
            "VALUES (1, 'm', 10, 'a', 0, '0x0')"
        )
    with Store(db) as store:
        store.ensure_tables(DDL)
        store.ensure_tables(DDL)
        columns = store.query(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE column_name IN ('pool_version', 'deficit', 'liquidation_grace_period_until', 'ltvzero_bitmap', "
            "'isolated')"
        )
        kept = store.query("SELECT asset, pool_version FROM raw_aave_v3_reserves")
    assert sorted(columns.rows()) == [
        ("raw_aave_v3_emode_categories", "isolated"),
        ("raw_aave_v3_emode_categories", "ltvzero_bitmap"),
        ("raw_aave_v3_reserves", "deficit"),
        ("raw_aave_v3_reserves", "liquidation_grace_period_until"),
        ("raw_aave_v3_reserves", "pool_version"),
    ]
    assert kept.rows() == [("a", None)]


def test_liquidation_prices_applied_on_chain_give_health_one(chain: Chain, tmp_path: Path) -> None:
    """From 3.5 the health factor sums value x threshold without the floored average threshold, so it is continuous in
    each price: the engine's liquidation price of a position, set on its asset's feed (rolled back after), brings the
    pool's getUserAccountData health factor to 1 within 1e-6, for a collateral falling and a debt rising alike."""
    db = tmp_path / "scored.duckdb"
    shutil.copyfile(chain.db, db)
    score(db)
    feeds = chain.deployed["feeds"]
    rows = [
        row
        for row in _rows(
            db,
            "SELECT wallet, symbol, liquidation_price, liquidated_when_price FROM position_risk "
            "WHERE protocol = 'aave-v3' AND liquidation_price IS NOT NULL AND liquidation_price < 1e15 "
            "ORDER BY wallet, symbol",
        )
        if row[1] in feeds
    ]
    assert len(rows) >= 5 and {r[3] for r in rows} >= {"falls below"}
    _, timestamp = _head(chain.rpc)
    pool = chain.market["pool"]
    for wallet, symbol, price, _ in rows[:40]:
        with sandbox(chain.rpc):
            _send(chain.rpc, DEPLOYER, feeds[symbol], FEED.encode("setAnswer", round(price)), timestamp)
            account = POOL_V30.decode(
                "getUserAccountData", chain.rpc.call(*eth_call(pool, POOL_V30, "getUserAccountData", wallet))
            )
        assert account[5] / WAD == pytest.approx(1, abs=1e-6), (wallet, symbol, price)


def test_the_close_factor_is_the_one_the_pool_applies(chain: Chain, tmp_path: Path) -> None:
    """From 3.3 a wallet whose debt or collateral is worth under $2,000 may be liquidated whole at any health factor
    under 1 (MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD), not half of it. For every liquidatable wallet with one collateral
    and one debt reserve, wallet_risk's close factor is what the pool's max liquidationCall repays
    (raw_aave_v3_liquidations' max_liquidatable_debt, itself checked against real calls above) over the debt: whole
    or half (before, 0.5 for every wallet above HF 0.95)."""
    db = tmp_path / "scored.duckdb"
    shutil.copyfile(chain.db, db)
    score(db)
    block, _ = _head(chain.rpc)
    rows = _rows(
        db,
        "WITH pairs AS (SELECT wallet, count(*) FILTER (WHERE collateral_amount > 0) AS c, "
        "count(*) FILTER (WHERE debt_amount > 0) AS d, sum(debt_amount) AS debt, sum(debt_base) AS debt_base "
        f"FROM positions WHERE protocol = 'aave-v3' AND block_number = {block} GROUP BY wallet) "
        "SELECT w.wallet, w.close_factor, w.health_factor, p.debt, p.debt_base, l.max_liquidatable_debt "
        "FROM wallet_risk w JOIN pairs p USING (wallet) JOIN raw_aave_v3_liquidations l USING (wallet) "
        f"WHERE w.liquidatable AND p.c = 1 AND p.d = 1 AND l.block_number = {block}",
    )
    assert rows
    for wallet, close_factor, health, debt, _debt_base, allowed in rows:
        whole = int(allowed) == int(debt)
        assert close_factor == (1.0 if whole else 0.5), (wallet, close_factor, health, debt, allowed)
    # The fixture holds both kinds: a small debt liquidatable whole above HF 0.95, and a large one only half of it.
    small = [r for r in rows if r[2] > 0.95 and int(r[4]) < 2_000 * 10**8]
    large = [r for r in rows if r[2] > 0.95 and int(r[4]) >= 2_000 * 10**8]
    assert small and large, (len(small), len(large), rows)


def test_the_devnet_population_on_a_3_6_market_equals_get_user_account_data(tmp_path: Path) -> None:
    """`DevnetOptions(aave_version="3.6")` (benchmarks/index_aave.py --version 3.6): the devnet's own population
    (loopers, isolated and e-mode wallets, the crash's liquidations) drives the 3.6 bytecode with no action
    reverting that runs on 3.0.2, and every wallet it leaves equals getUserAccountData."""
    options = DevnetOptions(40, 4, 21, free_port(), parse_start("2022-05-08"), 4, aave_version="3.6")
    manifest = build_devnet(options, tmp_path / "devnet", detach=False)
    try:
        assert manifest["history"]["reverted"] == {}
        db = tmp_path / "population36.duckdb"
        index_aave_v3(manifest["rpc_url"], manifest["aave_v3"]["pool_addresses_provider"], db)
        assert _rows(db, "SELECT DISTINCT pool_version FROM raw_aave_v3_reserves") == [("3.6",)]
        rows = _rows(
            db,
            "SELECT wallet, block_number, total_collateral_base, total_debt_base, available_borrows_base, "
            "liquidation_threshold_bps, ltv_bps, health_factor_wad FROM wallet_health",
        )
        assert sum(1 for r in rows if r[7] is not None) >= 10  # borrowers, not only suppliers
        with RpcClient(manifest["rpc_url"]) as rpc:
            pool = manifest["aave_v3"]["pool"]
            raw = rpc.batch([eth_call(pool, POOL_V30, "getUserAccountData", r[0], block=hex(r[1])) for r in rows])
        for row, item in zip(rows, raw, strict=True):
            ours = (*(int(v) for v in row[2:5]), row[5], row[6], MAX_UINT if row[7] is None else int(row[7]))
            assert ours == POOL_V30.decode("getUserAccountData", item), row[0]
    finally:
        stop_process(int(manifest["pid"]))
