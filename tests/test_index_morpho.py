"""Morpho Blue adapter against the real Morpho Blue bytecode on the devnet.

* positions read by storage slot equal `position(id, user)`, and every non-empty position of a devnet wallet
  is indexed;
* the engine-facing health verdict equals Morpho's own: `liquidate` (eth_call at the snapshot block, which
  accrues interest to that block's timestamp exactly like the snapshot) refuses exactly the healthy ones;
* market totals accrued off-chain equal the contract's after a real `accrueInterest` days later (exact ints);
* health factors, borrow/supply assets, collateral value and liquidation price equal @morpho-org/blue-sdk's.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from dataclasses import astuple
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from eth_abi.abi import encode as abi_encode

from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.toolchain import compiled_contracts, run_node_json
from chainrisk.jobs.index import index_market
from chainrisk.jobs.score import score
from chainrisk.protocols.morpho_blue import adapter as morpho_adapter
from chainrisk.protocols.morpho_blue.maths import (
    Liquidation,
    MarketState,
    accrue_interest,
    liquidate_most,
    to_assets_up,
)
from chainrisk.protocols.morpho_blue.snapshot import IRM, read_positions
from chainrisk.rpc import RpcClient, RpcError
from chainrisk.scoring.snapshot import score_positions
from chainrisk.store.published import connect_reader
from chainrisk.units import WAD
from tests.chainops import (
    LIQUIDATE_TOPIC,
    MINTABLE,
    block_timestamp,
    collateral_feed,
    feed_address,
    feed_answers,
    sandbox,
    set_feeds,
)

ROOT = Path(__file__).resolve().parent.parent
MORPHO = load_abi("morpho-blue", "IMorpho")
SDK_SCRIPT = ROOT / "tests" / "morpho_blue_sdk.mjs"
FEED = Abi(compiled_contracts()["SettableFeed"].abi)


@pytest.fixture(scope="module")
def morpho_db(devnet: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    db: Path = tmp_path_factory.mktemp("morpho") / "chainrisk.duckdb"
    index_market(
        "morpho-blue",
        devnet["rpc_url"],
        devnet["morpho_blue"]["morpho"],
        db,
        options={"usd_oracle": devnet["aave_v3"]["oracle"]},
    )
    return db


def _rows(db: Path, sql: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute(sql)
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _snapshot_block(db: Path) -> int:
    block: int = _rows(db, "SELECT max(block_number) AS b FROM raw_morpho_blue_positions")[0]["b"]
    return block


def _params(market: dict[str, Any]) -> tuple[str, str, str, str, int]:
    return (market["loan_token"], market["collateral_token"], market["oracle"], market["irm"], int(market["lltv"]))


def test_positions_match_the_contract_and_are_complete(devnet: dict[str, Any], rpc: RpcClient, morpho_db: Path) -> None:
    block = _snapshot_block(morpho_db)
    stored = {
        (r["market_id"], r["wallet"]): (int(r["supply_shares"]), int(r["borrow_shares"]), int(r["collateral"]))
        for r in _rows(morpho_db, f"SELECT * FROM raw_morpho_blue_positions WHERE block_number = {block}")
    }
    morpho = devnet["morpho_blue"]["morpho"]
    ids = [m["market_id"] for m in devnet["morpho_blue"]["markets"]]
    wallets = [*devnet["wallets"], devnet["keeper"], devnet["morpho_blue"]["fee_recipient"]]
    pairs = [(i, w.lower()) for i in ids for w in wallets]
    calls = [eth_call(morpho, MORPHO, "position", bytes.fromhex(i[2:]), w, block=hex(block)) for i, w in pairs]
    on_chain = {p: tuple(MORPHO.decode("position", r)[0]) for p, r in zip(pairs, rpc.batch(calls), strict=True)}
    non_empty = {p: v for p, v in on_chain.items() if any(v)}
    assert len(non_empty) >= 40, len(non_empty)
    assert {p: stored[p] for p in non_empty if p in stored} == non_empty
    assert set(non_empty) <= set(stored), set(non_empty) - set(stored)
    borrowers = sum(1 for v in non_empty.values() if v[1])
    assert borrowers >= 10
    print(f"{len(non_empty)} Morpho positions ({borrowers} borrowing) equal position(id, user) on chain")


def _verdicts(devnet: dict[str, Any], rpc: RpcClient, db: Path) -> tuple[set[Any], set[Any], int]:
    """(liquidatable per our wallet_health, liquidatable per Morpho's liquidate, borrowers) at db's snapshot."""
    block = _snapshot_block(db)
    markets = {
        m["market_id"]: m for m in _rows(db, f"SELECT * FROM raw_morpho_blue_markets WHERE block_number = {block}")
    }
    health = _rows(
        db,
        f"SELECT market, wallet, health_factor_wad FROM wallet_health "
        f"WHERE protocol = 'morpho-blue' AND block_number = {block} AND total_debt_base > 0",
    )
    morpho = devnet["morpho_blue"]["morpho"]
    ours, chain = set(), set()
    for row in health:
        key = (row["market"], row["wallet"])
        if row["health_factor_wad"] < WAD:
            ours.add(key)
        data = MORPHO.encode("liquidate", _params(markets[row["market"]]), row["wallet"], 1, 0, b"")
        try:
            rpc.call("eth_call", [{"from": devnet["keeper"], "to": morpho, "data": data}, hex(block)])
            chain.add(key)
        except RpcError as exc:
            # Morpho checks health right after accrual; any later failure still means "not healthy".
            if "position is healthy" not in exc.message:
                chain.add(key)
    return ours, chain, len(health)


def test_health_verdict_equals_morpho_liquidate(devnet: dict[str, Any], rpc: RpcClient, morpho_db: Path) -> None:
    ours, chain, borrowers = _verdicts(devnet, rpc, morpho_db)
    assert borrowers >= 10 and ours == chain
    print(f"verdicts equal on {borrowers} borrowers: {len(ours)} liquidatable per Morpho and per us")


@pytest.mark.parametrize(
    "shock", [{"wstETH": 0.9}, {"WETH": 0.6, "wstETH": 0.6, "WBTC": 0.6}], ids=["wstETH -10 %", "crypto -40 %"]
)
def test_health_verdict_after_a_crash(
    devnet: dict[str, Any], rpc: RpcClient, tmp_path: Path, shock: dict[str, float]
) -> None:
    """Collateral feeds cut on chain, the market re-indexed: the liquidatable set still equals Morpho's."""
    snapshot = rpc.call("evm_snapshot")
    try:
        head = rpc.call("eth_getBlockByNumber", ["latest", False])
        answers = feed_answers(rpc, devnet)
        # wstETH's feed derives from stETH's: set_feeds moves the base feed so the derived one answers this.
        shocked = {symbol: int(answers[symbol] * multiplier) for symbol, multiplier in shock.items()}
        set_feeds(rpc, devnet, shocked, int(head["timestamp"], 16) + 3600)
        db = tmp_path / "shocked.duckdb"
        index_market(
            "morpho-blue",
            devnet["rpc_url"],
            devnet["morpho_blue"]["morpho"],
            db,
            options={"usd_oracle": devnet["aave_v3"]["oracle"]},
        )
        ours, chain, borrowers = _verdicts(devnet, rpc, db)
    finally:
        assert rpc.call("evm_revert", [snapshot])
    assert ours == chain and len(ours) >= 1, (len(ours), len(chain))
    print(f"{shock}: {len(ours)} of {borrowers} borrowers liquidatable, per Morpho and per us")


def test_accrual_equals_the_chain(devnet: dict[str, Any], rpc: RpcClient, morpho_db: Path) -> None:
    """Totals accrued off-chain to a later timestamp equal Morpho's after a real accrueInterest there."""
    block = _snapshot_block(morpho_db)
    morpho = devnet["morpho_blue"]["morpho"]
    head = rpc.call("eth_getBlockByNumber", ["latest", False])
    assert int(head["number"], 16) == block, "the devnet moved after indexing"
    later = int(head["timestamp"], 16) + 9 * 24 * 3600 + 17
    markets = devnet["morpho_blue"]["markets"]
    before, rates = [], []
    for m in markets:
        raw = rpc.call(*eth_call(morpho, MORPHO, "market", bytes.fromhex(m["market_id"][2:]), block=hex(block)))
        state = MarketState(*MORPHO.decode("market", raw)[0])
        call = eth_call(m["irm"], IRM, "borrowRateView", _params(m), astuple(state), block=hex(block))
        before.append(state)
        rates.append(IRM.decode("borrowRateView", rpc.call(*call))[0])
    snapshot = rpc.call("evm_snapshot")
    try:
        for m in markets:
            data = MORPHO.encode("accrueInterest", _params(m))
            rpc.call("eth_sendTransaction", [{"from": DEPLOYER, "to": morpho, "data": data, "gas": hex(500_000)}])
        rpc.call("evm_mine", [later])
        for m, state, rate in zip(markets, before, rates, strict=True):
            raw = rpc.call(*eth_call(morpho, MORPHO, "market", bytes.fromhex(m["market_id"][2:])))
            after = MarketState(*MORPHO.decode("market", raw)[0])
            expected = accrue_interest(state, rate, later).market
            assert after == expected, (m["market_id"], after, expected)
            assert after.total_borrow_assets > state.total_borrow_assets
    finally:
        assert rpc.call("evm_revert", [snapshot])
    print(f"accrual over {later - int(head['timestamp'], 16)} s equals the chain on {len(markets)} markets")


def test_figures_match_blue_sdk(morpho_db: Path) -> None:
    assert shutil.which("node") is not None
    block = _snapshot_block(morpho_db)
    text = {"lltv", "fee", "price"}

    def as_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: str(v) if isinstance(v, int) or k in text else v for k, v in r.items()} for r in rows]

    markets = as_json(
        _rows(
            morpho_db,
            "SELECT market_id, loan_token, collateral_token, oracle, irm, lltv, fee, price, last_update, "
            "accrued_total_supply_assets AS total_supply_assets, accrued_total_supply_shares AS total_supply_shares, "
            "accrued_total_borrow_assets AS total_borrow_assets, accrued_total_borrow_shares AS total_borrow_shares "
            f"FROM raw_morpho_blue_markets WHERE block_number = {block}",
        )
    )
    positions = as_json(
        _rows(
            morpho_db,
            f"SELECT * EXCLUDE (chain_id, market, block_number) FROM raw_morpho_blue_positions "
            f"WHERE block_number = {block}",
        )
    )
    output = run_node_json(SDK_SCRIPT, {"markets": markets, "positions": positions})
    sdk = {(p["market_id"], p["wallet"]): p for p in output["positions"]}

    ours = _rows(
        morpho_db,
        f"SELECT market, wallet, health_factor, health_factor_wad, total_collateral_base, total_debt_base "
        f"FROM wallet_health WHERE protocol = 'morpho-blue' AND block_number = {block}",
    )
    supplied = {
        (r["market"], r["wallet"]): int(r["supplied_amount"])
        for r in _rows(
            morpho_db,
            f"SELECT market, wallet, supplied_amount FROM positions WHERE protocol = 'morpho-blue' "
            f"AND block_number = {block} AND NOT used_as_collateral",
        )
    }
    compared = 0
    for row in ours:
        theirs = sdk[(row["market"], row["wallet"])]
        assert theirs["marketIdCheck"]
        assert int(theirs["borrowAssets"]) == int(row["total_debt_base"])
        assert int(theirs["collateralValue"]) == int(row["total_collateral_base"])
        if row["health_factor_wad"] is None:
            assert theirs["healthFactor"] == "max"
            continue
        compared += 1
        assert int(theirs["healthFactor"]) == int(row["health_factor_wad"])
        relative = abs(Fraction(int(theirs["healthFactor"]), WAD) / Fraction(row["health_factor"]) - 1)
        assert relative < Fraction(1, 10**9), (row, theirs)
        assert theirs["isHealthy"] == (row["health_factor_wad"] >= WAD)
    for key, amount in supplied.items():
        assert int(sdk[key]["supplyAssets"]) == amount, key
    assert compared >= 10
    print(f"@morpho-org/blue-sdk agrees on {compared} borrowers and {len(supplied)} supply positions")


def test_borrow_assets_round_up_like_morpho(morpho_db: Path) -> None:
    """positions.debt_amount is toAssetsUp of the stored shares at the accrued totals."""
    block = _snapshot_block(morpho_db)
    markets = {m["market_id"]: m for m in _rows(morpho_db, "SELECT * FROM raw_morpho_blue_markets")}
    debts = {
        (r["market"], r["wallet"]): int(r["debt_amount"])
        for r in _rows(morpho_db, f"SELECT * FROM positions WHERE protocol = 'morpho-blue' AND block_number = {block}")
        if not r["used_as_collateral"]
    }
    for r in _rows(morpho_db, f"SELECT * FROM raw_morpho_blue_positions WHERE block_number = {block}"):
        m = markets[r["market_id"]]
        expected = to_assets_up(
            int(r["borrow_shares"]), int(m["accrued_total_borrow_assets"]), int(m["accrued_total_borrow_shares"])
        )
        assert debts.get((r["market_id"], r["wallet"]), 0) == expected


def test_liquidation_prices_flip_morpho_verdict(devnet: dict[str, Any], rpc: RpcClient, morpho_db: Path) -> None:
    """The engine's collateral liquidation price, set on the chain's feed 1e-6 either side, flips Morpho's own
    verdict (liquidate refused as healthy just above it, accepted just below)."""
    block = _snapshot_block(morpho_db)
    with duckdb.connect(str(morpho_db), read_only=True) as con:
        positions = pl.from_arrow(con.sql("SELECT * FROM positions").to_arrow_table())
        markets = {m["market_id"]: m for m in _rows(morpho_db, "SELECT * FROM raw_morpho_blue_markets")}
    assert isinstance(positions, pl.DataFrame)
    prices = (
        score_positions(positions)["position_risk"]
        .filter(pl.col("liquidated_when_price") == "falls below")
        .sort("market", "wallet")
        .unique("market", keep="first", maintain_order=True)
    )
    assert prices.height >= 2
    morpho = devnet["morpho_blue"]["morpho"]
    specs = {m["market_id"]: m for m in devnet["morpho_blue"]["markets"]}
    stamp = int(rpc.call("eth_getBlockByNumber", [hex(block), False])["timestamp"], 16)
    for row in prices.iter_rows(named=True):
        spec, market = specs[row["market"]], markets[row["market"]]
        # The feed the market's oracle reads for the collateral (aWETH's is WETH's); derived ones move via their base.
        symbol = collateral_feed(devnet, spec)
        feed = feed_address(devnet, symbol)
        answer = int(FEED.decode("latestAnswer", rpc.call(*eth_call(feed, FEED, "latestAnswer")))[0])
        # In the position's own price units (price / price_scale), so as a ratio to today's oracle price.
        target = 1 + Fraction(row["liquidation_price_change"])
        verdicts = []
        for side in (Fraction(1) + Fraction(1, 10**6), Fraction(1) - Fraction(1, 10**6)):
            snapshot = rpc.call("evm_snapshot")
            try:
                set_feeds(rpc, devnet, {symbol: int(answer * target * side)}, stamp + 1)
                data = MORPHO.encode("liquidate", _params(market), row["wallet"], 1, 0, b"")
                try:
                    rpc.call("eth_call", [{"from": devnet["keeper"], "to": morpho, "data": data}, "latest"])
                    verdicts.append("liquidatable")
                except RpcError as exc:
                    verdicts.append("healthy" if "position is healthy" in exc.message else "liquidatable")
            finally:
                assert rpc.call("evm_revert", [snapshot])
        assert verdicts == ["healthy", "liquidatable"], (row["market"], row["wallet"], verdicts)
    print(f"{prices.height} Morpho liquidation prices flip liquidate's verdict within 1e-6")


def test_a_later_snapshot_rereads_only_the_touched_positions_and_equals_a_full_read(
    devnet: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second snapshot reuses the positions no event named since the first (fee recipients aside: accrual mints
    them shares), and stores exactly what one snapshot reading every position stores."""
    read: list[list[tuple[str, str]]] = []

    def spy(rpc: RpcClient, deployment: Any, pairs: list[tuple[str, str]], block: int) -> Any:
        read.append(pairs)
        return read_positions(rpc, deployment, pairs, block)

    monkeypatch.setattr(morpho_adapter, "read_positions", spy)
    url, morpho, head = devnet["rpc_url"], devnet["morpho_blue"]["morpho"], devnet["head_block"]
    options = {"usd_oracle": devnet["aave_v3"]["oracle"]}
    db, full = tmp_path / "reused.duckdb", tmp_path / "full.duckdb"
    index_market("morpho-blue", url, morpho, db, options=options, to_block=head - 30)
    index_market("morpho-blue", url, morpho, db, options=options, to_block=head)
    index_market("morpho-blue", url, morpho, full, options=options, to_block=head)
    with duckdb.connect(str(db), read_only=True) as con:
        touched = con.execute(
            "SELECT count(DISTINCT (market_id, wallet)) FROM raw_morpho_blue_events WHERE block_number > ? "
            "AND event IN ('Supply', 'Withdraw', 'Borrow', 'Repay', 'SupplyCollateral', 'WithdrawCollateral', "
            "'Liquidate')",
            [head - 30],
        ).fetchall()[0][0]
    assert touched > 0 and touched < len(read[1]) < len(read[2]), (touched, len(read[1]), len(read[2]))
    for table in ("raw_morpho_blue_positions", "raw_morpho_blue_markets", "positions", "wallet_health"):
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        assert _rows(db, sql) == _rows(full, sql), table


def _usd_feeds(devnet: dict[str, Any]) -> dict[str, str]:
    """Each Aave reserve's token and the price feed the devnet's AaveOracle reads for it (Chainlink-style, USD)."""
    return {r["asset"].lower(): r["feed"].lower() for r in devnet["aave_v3"]["reserves"].values()}


def test_usd_feeds_value_the_markets_as_the_aave_oracle_does(
    devnet: dict[str, Any], morpho_db: Path, tmp_path: Path
) -> None:
    """Chainlink USD feeds given token by token (`usd_feeds`, no `usd_oracle`: a chain without an Aave V3 market) give
    every market, position and wallet the USD figures the AaveOracle gives, since it reads those same feeds; and a
    token's own feed wins over the oracle."""
    url, morpho = devnet["rpc_url"], devnet["morpho_blue"]["morpho"]
    block = _rows(morpho_db, "SELECT snapshot_block FROM sync_state")[0]["snapshot_block"]
    feeds = _usd_feeds(devnet)
    db = tmp_path / "feeds.duckdb"
    index_market(
        "morpho-blue",
        url,
        morpho,
        db,
        options={"usd_feeds": ",".join(f"{t}={f}" for t, f in feeds.items())},
        to_block=block,
    )
    usd = {
        "raw_morpho_blue_markets": "market_id, loan_price_usd, collateral_price_usd, base_currency_usd",
        "positions": "market, wallet, asset, price_usd, collateral_usd, debt_usd",
    }
    for table, columns in usd.items():
        sql = f"SELECT {columns} FROM {table} ORDER BY ALL"
        ours, oracle = _rows(db, sql), _rows(morpho_db, sql)
        assert ours == oracle and any(r["price_usd" if table == "positions" else "loan_price_usd"] for r in ours), table
    assert not _rows(db, "SELECT * FROM data_quality WHERE kind = 'no_usd_price'")
    # The loan tokens' feeds alone value every position: the collateral through the market's own oracle.
    loans = {r["loan_token"] for r in _rows(morpho_db, "SELECT loan_token FROM raw_morpho_blue_markets")}
    only = tmp_path / "loan-feeds.duckdb"
    pairs = " ".join(f"{t}={f}" for t, f in feeds.items() if t in loans)
    index_market("morpho-blue", url, morpho, only, options={"usd_feeds": pairs}, to_block=block)
    value = "SELECT market, wallet, collateral_usd, debt_usd FROM positions ORDER BY ALL"
    for got, want in zip(_rows(only, value), _rows(morpho_db, value), strict=True):
        assert got["debt_usd"] == want["debt_usd"] and got["collateral_usd"] == pytest.approx(
            want["collateral_usd"], rel=1e-9
        )

    # One market's loan token given another token's feed, beside the oracle: the feed wins for that token alone.
    markets = _rows(morpho_db, "SELECT market_id, loan_token, loan_price_usd FROM raw_morpho_blue_markets ORDER BY ALL")
    loan = markets[0]["loan_token"]
    priced = "SELECT loan_token AS t, loan_price_usd AS p FROM raw_morpho_blue_markets UNION ALL "
    priced += "SELECT collateral_token, collateral_price_usd FROM raw_morpho_blue_markets"
    other, other_price = next((r["t"], r["p"]) for r in _rows(db, priced) if r["t"] != loan and r["p"])
    mixed = tmp_path / "mixed.duckdb"
    options = {"usd_oracle": devnet["aave_v3"]["oracle"], "usd_feeds": f"{loan}={feeds[other]}"}
    index_market("morpho-blue", url, morpho, mixed, options=options, to_block=block)
    for row in _rows(mixed, "SELECT market_id, loan_token, loan_price_usd FROM raw_morpho_blue_markets ORDER BY ALL"):
        expected = (
            other_price
            if row["loan_token"] == loan
            else {m["market_id"]: m for m in markets}[row["market_id"]]["loan_price_usd"]
        )
        assert row["loan_price_usd"] == expected, row
    # Each market names where its tokens' prices were read: the token's own feed, else the oracle.
    via_oracle = f"usd oracle {devnet['aave_v3']['oracle'].lower()}"
    sources = "SELECT loan_token, loan_usd_source, collateral_token, collateral_usd_source, collateral_price_usd "
    sources += "FROM raw_morpho_blue_markets"
    for row in _rows(mixed, sources):
        assert row["loan_usd_source"] == (f"usd feed {feeds[other]}" if row["loan_token"] == loan else via_oracle), row
        own = f"usd feed {feeds[other]}" if row["collateral_token"] == loan else via_oracle
        # A token neither prices (the devnet's vault shares) has no source.
        assert row["collateral_usd_source"] == (own if row["collateral_price_usd"] is not None else None), row
    assert {r["loan_usd_source"] for r in _rows(db, sources)} == {f"usd feed {feeds[t]}" for t in loans}


def test_without_a_usd_source_each_loan_token_is_priced_by_its_market_oracles_quote_feed(
    devnet: dict[str, Any], morpho_db: Path, tmp_path: Path
) -> None:
    """No usd_oracle nor usd_feeds (a chain without an Aave V3 market): each market's loan token takes its USD price
    from its own oracle's quote feed (the devnet's oracles have MorphoChainlinkOracleV2's getters, their quote feed the
    loan token's "SYMBOL / USD" feed, which the AaveOracle reads too), so every figure equals the AaveOracle run's (the
    collateral through the market's oracle, to float rounding), and each market names that feed as the source."""
    url, morpho = devnet["rpc_url"], devnet["morpho_blue"]["morpho"]
    block = _rows(morpho_db, "SELECT snapshot_block FROM sync_state")[0]["snapshot_block"]
    db = tmp_path / "oracle-feeds.duckdb"
    index_market("morpho-blue", url, morpho, db, to_block=block)
    markets = "SELECT market_id, oracle, loan_token, loan_price_usd, base_currency_usd, loan_usd_source "
    markets += "FROM raw_morpho_blue_markets ORDER BY market_id"
    ours, aave = _rows(db, markets), _rows(morpho_db, markets)
    feeds = _usd_feeds(devnet)
    symbols = {r["asset"].lower(): s for s, r in devnet["aave_v3"]["reserves"].items()}
    assert len(ours) == len(aave) > 1
    for got, want in zip(ours, aave, strict=True):
        assert (got["loan_price_usd"], got["base_currency_usd"]) == (want["loan_price_usd"], want["base_currency_usd"])
        feed, symbol = feeds[got["loan_token"]], symbols[got["loan_token"]]
        assert got["loan_usd_source"] == f"oracle quote feed {feed} of {got['oracle']} ({symbol.upper()} / USD)"
    value = "SELECT market, wallet, collateral_usd, debt_usd FROM positions ORDER BY ALL"
    for got, want in zip(_rows(db, value), _rows(morpho_db, value), strict=True):
        assert got["debt_usd"] == want["debt_usd"] and got["collateral_usd"] == pytest.approx(
            want["collateral_usd"], rel=1e-9
        )
    assert not _rows(db, "SELECT * FROM data_quality WHERE kind = 'no_usd_price'")
    score(db)  # publishes the snapshot whose staging view names each market's route to USD
    with connect_reader(db) as con:
        routes = [r[0] for r in con.execute("SELECT usd_route FROM stg_morpho_blue_markets").fetchall()]
        # A collateral no USD source prices is priced as its positions are: the market oracle times the loan's USD
        # (stop 71: NULL before, beside positions valued in USD).
        priced = con.execute(
            "SELECT m.market, m.collateral_price_usd, m.collateral_usd_source, p.price_usd "
            "FROM stg_morpho_blue_markets m JOIN (SELECT DISTINCT market, asset, price_usd FROM positions) p "
            "ON p.market = m.market AND p.asset = m.collateral_token WHERE m.is_latest"
        ).fetchall()
    assert routes and all(r.startswith("loan ") and "oracle quote feed" in r for r in routes), routes
    assert priced and all(row[1] == pytest.approx(row[3], rel=1e-9) for row in priced), priced
    assert any(row[2] == "market oracle x loan USD" for row in priced), priced


def test_quote_feeds_price_the_loan_token_only_when_they_chain_to_usd() -> None:
    """A quote side of one or two feeds prices the loan token in USD when their descriptions chain to USD ("WBTC / BTC"
    then "BTC / USD"); one ending in another currency, feeds that do not chain, or an answer of zero is no price."""
    from chainrisk.protocols.morpho_blue.oracle_usd import _price

    read = {
        "0xa": (("WBTC", "BTC"), 8, (99_900_000, 1_000)),
        "0xb": (("BTC", "USD"), 8, (3_000_000_000_000, 1_000)),
        "0xc": (("STETH", "ETH"), 18, (999 * 10**15, 1_000)),
        "0xd": (("ETH", "USD"), 8, (200_000_000_000, 1_000)),
        "0xz": (("USDC", "USD"), 8, (0, 1_000)),
    }
    two = _price("0xo", "0xt", ["0xa", "0xb"], read, 1_000, 3_600)
    assert two is not None and two.usd == pytest.approx(0.999 * 30_000) and two.stale is None
    assert two.source == "oracle quote feed 0xa x 0xb of 0xo (WBTC / BTC x BTC / USD)"
    assert _price("0xo", "0xt", ["0xc"], read, 1_000, 3_600) is None  # in ETH, not USD
    assert _price("0xo", "0xt", ["0xa", "0xd"], read, 1_000, 3_600) is None  # BTC then ETH: no chain
    assert _price("0xo", "0xt", ["0xz"], read, 1_000, 3_600) is None  # zero answer
    old = _price("0xo", "0xt", ["0xd"], read, 1_000 + 7_200, 3_600)
    assert old is not None and old.usd == 2_000.0 and old.stale is not None and old.stale.kind == "stale_usd_price"


class _Oracles:
    """An RPC whose eth_calls answer from a table of (contract, calldata) -> return data; anything else reverts."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], str] = {}

    def answer(self, contract: str, abi: Abi, fn: str, types: list[str], values: list[Any]) -> None:
        self.answers[(contract, abi.encode(fn))] = "0x" + abi_encode(types, values).hex()

    def batch_each(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        return [self.answers.get((params[0]["to"], params[0]["data"])) for _, params in calls]


def test_the_quote_side_of_each_morpho_oracle_kind() -> None:
    """MorphoChainlinkOracleV2 without a quote vault, Morpho's first ChainlinkOracle (a base VAULT getter and no
    QUOTE_VAULT: its quote side is its feeds) and one with a quote vault (left unpriced), or an oracle of another kind
    (no getters): only the first two price their loan token, from their quote feeds."""
    from chainrisk.protocols.morpho_blue.oracle_usd import ORACLE_V2, loan_usd_from_oracles
    from chainrisk.protocols.usd import FEED, UsdSource

    zero, feed, vault = "0x" + "0" * 40, "0x" + "fe" * 20, "0x" + "7a" * 20
    rpc = _Oracles()
    rpc.answer(feed, FEED, "description", ["string"], ["USDC / USD"])
    rpc.answer(feed, FEED, "decimals", ["uint8"], [8])
    rpc.answer(
        feed, FEED, "latestRoundData", ["uint80", "int256", "uint256", "uint256", "uint80"], [1, 99_980_000, 0, 990, 1]
    )
    v2, v1, vaulted, other = ("0x" + c * 40 for c in "1234")
    for oracle, quote_vault in ((v2, zero), (v1, None), (vaulted, vault)):
        if quote_vault is not None:
            rpc.answer(oracle, ORACLE_V2, "QUOTE_VAULT", ["address"], [quote_vault])
        else:
            rpc.answer(oracle, ORACLE_V2, "VAULT", ["address"], [zero])
        rpc.answer(oracle, ORACLE_V2, "QUOTE_FEED_1", ["address"], [feed])
        rpc.answer(oracle, ORACLE_V2, "QUOTE_FEED_2", ["address"], [zero])
    token = "0x" + "ab" * 20
    found = loan_usd_from_oracles(rpc, [(o, token) for o in (v2, v1, vaulted, other)], "0x1", 1_000, UsdSource())  # type: ignore[arg-type]
    assert sorted(found) == [v2, v1]
    assert found[v1].usd == 0.9998 and found[v1].source == f"oracle quote feed {feed} of {v1} (USDC / USD)"
    assert found[v2].stale is None


def test_a_usd_feed_older_than_the_max_age_is_named_on_each_market_it_prices(
    devnet: dict[str, Any], morpho_db: Path, tmp_path: Path
) -> None:
    """`stale_usd_price` names, on each market, the feeds of its loan and collateral tokens whose answer at the block
    is older than usd_feed_max_age, by the feed's own updatedAt against the block's time; the prices are used all the
    same (the USD figures equal the default run's)."""
    from chainrisk.config import market_config
    from chainrisk.errors import UserError

    url, morpho = devnet["rpc_url"], devnet["morpho_blue"]["morpho"]
    block = _rows(morpho_db, "SELECT snapshot_block FROM sync_state")[0]["snapshot_block"]
    feeds = _usd_feeds(devnet)
    pairs = ",".join(f"{t}={f}" for t, f in feeds.items())
    feed_abi = load_abi("chainlink", "AggregatorV3Interface")
    with RpcClient(url) as rpc:
        now = int(rpc.call("eth_getBlockByNumber", [hex(block), False])["timestamp"], 16)
        answers = rpc.batch([eth_call(f, feed_abi, "latestRoundData", block=hex(block)) for f in feeds.values()])
    updated = {f: int(feed_abi.decode("latestRoundData", r)[3]) for f, r in zip(feeds.values(), answers, strict=True)}
    markets = _rows(morpho_db, "SELECT market_id, loan_token, collateral_token FROM raw_morpho_blue_markets")
    runs = {}
    for max_age, text in ((90_000, None), (1, "1"), (now - min(updated.values()), f"{now - min(updated.values())}s")):
        db = tmp_path / f"age-{max_age}.duckdb"
        options = {"usd_feeds": pairs} | ({"usd_feed_max_age": text} if text else {})
        index_market("morpho-blue", url, morpho, db, options=options, to_block=block)
        expected = {
            (m["market_id"], feeds[t])
            for m in markets
            for t in (m["loan_token"], m["collateral_token"])
            if t in feeds and now - updated[feeds[t]] > max_age
        }
        stale = _rows(db, "SELECT market, subject, detail FROM data_quality WHERE kind = 'stale_usd_price'")
        assert {(r["market"], r["subject"]) for r in stale} == expected, max_age
        assert all("its answer is used as the chain serves it" in r["detail"] for r in stale)
        runs[max_age] = db
    assert _rows(runs[1], "SELECT market, subject FROM data_quality WHERE kind = 'stale_usd_price'"), "none named"
    value = "SELECT market, wallet, asset, price_usd, collateral_usd, debt_usd FROM positions ORDER BY ALL"
    assert _rows(runs[1], value) == _rows(runs[90_000], value)
    with pytest.raises(UserError, match=r"markets\[1\]: usd_feed_max_age: '5x' is not a positive age"):
        market_config({"protocol": "morpho-blue", "address": morpho, "usd_feed_max_age": "5x"}, "markets[1]")


def test_a_usd_feed_that_is_no_feed_is_refused_in_one_line(devnet: dict[str, Any], tmp_path: Path) -> None:
    """A mistyped feed (here the Morpho singleton itself) stops that market before anything is stored, naming the
    feed and its token; a malformed pair is refused when the config is read."""
    from chainrisk.config import market_config
    from chainrisk.errors import UserError

    url, morpho = devnet["rpc_url"], devnet["morpho_blue"]["morpho"]
    token = next(iter(_usd_feeds(devnet)))
    db = tmp_path / "bad.duckdb"
    with pytest.raises(
        UserError, match=f"usd_feeds: {morpho.lower()} \\(the feed given for token {token}\\) does not answer"
    ):
        index_market("morpho-blue", url, morpho, db, options={"usd_feeds": f"{token}={morpho}"})
    assert not db.exists() or not _rows(db, "SELECT * FROM raw_morpho_blue_markets")
    entry = {"protocol": "morpho-blue", "address": morpho}
    with pytest.raises(UserError, match="is not TOKEN=FEED"):
        market_config({**entry, "usd_feeds": token}, "markets[1]")
    with pytest.raises(UserError, match=r"markets\[1\]: usd_feeds: token .* is given two feeds"):
        market_config(
            {**entry, "usd_feeds": f"{token}={morpho} {token.upper().replace('0X', '0x')}={morpho}"}, "markets[1]"
        )
    # A TOML table is read as the same pairs.
    table = market_config({**entry, "usd_feeds": {token: morpho}}, "markets[1]")
    assert table.options["usd_feeds"] == f"{token}={morpho}"


def test_liquidation_calls_equal_morpho_liquidate(devnet: dict[str, Any], rpc: RpcClient, tmp_path: Path) -> None:
    """After a crash, each unhealthy borrower's predicted liquidation (raw_morpho_blue_liquidations: the largest
    liquidate call, maths.liquidate_most) sent on chain at the snapshot's own timestamp, one at a time (each rolled
    back): the Liquidate event's repaid assets and shares, seized collateral and bad debt equal the prediction."""
    morpho, keeper = devnet["morpho_blue"]["morpho"], devnet["keeper"]
    markets = {m["market_id"]: m for m in devnet["morpho_blue"]["markets"]}
    erc20 = load_abi("erc20", "IERC20Detailed")
    checked = bad = 0
    with sandbox(rpc):
        head = rpc.call("eth_getBlockByNumber", ["latest", False])
        answers = feed_answers(rpc, devnet)
        crash = {"WETH": 0.55, "wstETH": 0.55, "WBTC": 0.55}
        set_feeds(rpc, devnet, {s: int(answers[s] * m) for s, m in crash.items()}, int(head["timestamp"], 16) + 3600)
        builder = BlockBuilder(rpc, timestamp=int(head["timestamp"], 16) + 3601)
        for token in {m["loan_token"] for m in markets.values()}:
            builder.call(keeper, MINTABLE, token, "mint", 10**34)
            builder.call(keeper, erc20, token, "approve", morpho, 2**256 - 1)
        builder.mine(0)
        db = tmp_path / "crashed.duckdb"
        index_market("morpho-blue", devnet["rpc_url"], morpho, db, options={"usd_oracle": devnet["aave_v3"]["oracle"]})
        block = _snapshot_block(db)
        predicted = _rows(db, f"SELECT * FROM raw_morpho_blue_liquidations WHERE block_number = {block}")
        positions = {
            (r["market_id"], r["wallet"]): r
            for r in _rows(db, f"SELECT * FROM raw_morpho_blue_positions WHERE block_number = {block}")
        }
        assert predicted and all(r["error"] is None for r in predicted), predicted
        for row in predicted:
            position = positions[row["market_id"], row["wallet"]]
            whole = int(row["repaid_shares"]) == int(position["borrow_shares"])
            seized, shares = (0, int(row["repaid_shares"])) if whole else (int(row["seized_assets"]), 0)
            with sandbox(rpc):
                call = BlockBuilder(rpc, timestamp=block_timestamp(rpc, block))
                params = _params(markets[row["market_id"]])
                call.call(keeper, MORPHO, morpho, "liquidate", params, row["wallet"], seized, shares, b"")
                (receipt,) = call.mine(0)
            (log,) = [x for x in receipt.logs if x["topics"][0] == LIQUIDATE_TOPIC]
            words = [int(log["data"][2 + 64 * k : 2 + 64 * (k + 1)], 16) for k in range(5)]
            ours = [int(row[c]) for c in ("repaid_assets", "repaid_shares", "seized_assets", "bad_debt_assets")]
            assert words[:4] == ours and words[4] == int(row["bad_debt_shares"]), (row["wallet"], words, ours)
            checked += 1
            bad += words[3] > 0
    assert checked >= 3 and bad >= 1, (checked, bad)
    print(f"{checked} Morpho liquidations predicted exactly ({bad} with bad debt)")


def test_liquidate_most_edges() -> None:
    """No price: the oracle's revert; a healthy position: Morpho's refusal; a zero price: every unit of collateral
    for nothing, the whole debt bad debt (what Morpho.liquidate does with seizedAssets there); and over 20,000 random
    positions around the liquidation line (sizes from 1 to 1e28 shares, prices over 30 orders of magnitude, some
    without collateral) a call within the position: every share repaid, or the collateral gone with the rest of the
    debt bad debt, never neither (a position without collateral: the most shares that buy none)."""
    market = MarketState(10**24, 10**30, 5 * 10**23, 5 * 10**29, 0, 0)
    lltv = 86 * 10**16
    assert liquidate_most(10**18, 10**24, market, None, lltv) == "oracle reverts"
    assert liquidate_most(10**24, 10**20, market, 10**36, lltv) == "HEALTHY_POSITION"
    free = liquidate_most(10**18, 10**24, market, 0, lltv)
    assert isinstance(free, Liquidation)
    assert (free.seized_assets, free.repaid_shares, free.bad_debt_shares) == (10**18, 0, 10**24)
    rng = random.Random(7)
    kinds: Counter[str] = Counter()
    for _ in range(20_000):
        shares = 10 ** rng.randrange(0, 28) * rng.randrange(1, 10)
        borrowed = to_assets_up(shares, market.total_borrow_assets, market.total_borrow_shares)
        price = 10 ** rng.randrange(20, 50) * rng.randrange(1, 10)
        collateral = int(borrowed * 10**36 // price * rng.uniform(0.3, 1.3)) if rng.random() > 0.05 else 0
        outcome = liquidate_most(collateral, shares, market, price, lltv)
        if isinstance(outcome, str):
            kinds[outcome] += 1
            continue
        assert outcome.seized_assets <= collateral and outcome.repaid_shares <= shares
        if outcome.seized_assets == collateral:
            kinds["collateral gone"] += 1
            assert outcome.bad_debt_shares == shares - outcome.repaid_shares
        else:
            kinds["every share repaid"] += 1
            assert outcome.repaid_shares == shares and outcome.bad_debt_shares == 0
    assert set(kinds) == {"HEALTHY_POSITION", "collateral gone", "every share repaid"}, kinds
