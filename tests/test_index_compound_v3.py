"""Compound V3 adapter against the Comet stand-in (our own Solidity, behind a transparent proxy) on its own anvil,
after four months of interest and the May-June 2022 price path, indexed through the real job.

* every wallet's base supply and debt equal balanceOf / borrowBalanceOf and every collateral collateralBalanceOf,
  exactly, and every non-empty account is indexed (the bare market too);
* through the health engine (prepare, apply_multipliers, position_values, wallet_health), HF < 1 exactly when
  isLiquidatable, and the borrow capacity covers the debt exactly when isBorrowCollateralized; the engine's verdicts
  after shocked prices equal the chain's once the feeds are moved by as much, and again after re-indexing;
* absorbing every liquidatable account pays out what the snapshot predicted (AbsorbDebt's basePaidOut exactly) and
  moves getReserves() by the predicted protocol cost within one base unit per account; the absorb's logs, indexed,
  give each account's credit and shortfall (the liquidations view's bad debt) exactly as predicted, at the
  liquidation factor in force at each absorb's block when governance changes it by upgrading the market between
  absorbs (unknown, not guessed, where it changed between the snapshots around an absorb);
* a non-Comet address (an ERC-20, a wallet) and a wrong chain end in one line and change nothing stored.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from eth_utils.crypto import keccak

from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.cli import main
from chainrisk.devnet.compound_v3 import (
    COLLATERALS,
    KEEPER,
    Collateral,
    CometDevnetOptions,
    build_compound_v3,
    deploy_implementation,
)
from chainrisk.devnet.governance import PROXY
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.prices import parse_start
from chainrisk.devnet.toolchain import aave_artifact, compiled_contracts, standin_contracts
from chainrisk.jobs.index import index_market
from chainrisk.jobs.score import score
from chainrisk.rpc import RpcClient, RpcError
from chainrisk.scoring.health import apply_multipliers, position_values, prepare, wallet_health
from chainrisk.store.db import Store
from chainrisk.store.views import install_views, query_sql
from tests.chainops import as_json, bare_chain

COMET = load_abi("compound-v3", "IComet")
FEED = Abi(compiled_contracts()["SettableFeed"].abi)
MINTABLE = Abi(aave_artifact("MintableERC20").abi)
WAD = 10**18
OPTIONS = CometDevnetOptions(wallets=80, days=120, step_hours=24, seed=7)
#: The chain's clock when the build starts (a day before the price window): tests/vectors/record_comet.py builds the
#: same population on Compound's own Comet from the same start.
BUILD_START = int(parse_start(OPTIONS.start).timestamp()) - 86_400
#: What Compound's own Comet answered after the same build (tests/vectors/record_comet.py; its `source` says how).
REAL_COMET = Path(__file__).parent / "data" / "comet_vectors.json"
ABSORB_DEBT = "0x" + keccak(b"AbsorbDebt(address,address,uint256,uint256)").hex()
#: Price multipliers of the crash the tests set on the feeds (the base, USDC, holds).
CRASH = {"WETH": 0.55, "wstETH": 0.55, "WBTC": 0.7, "LINK": 0.45}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Its own anvil with the stand-in market and population; the manifest section plus the RPC URL."""
    with bare_chain(tmp_path_factory.mktemp("comet")) as bare:
        builder = BlockBuilder(bare.rpc, timestamp=BUILD_START)
        section = build_compound_v3(builder, OPTIONS)
        yield section | {"rpc_url": bare.url, "built_block": int(bare.rpc.call("eth_blockNumber"), 16)}


@pytest.fixture(scope="module")
def rpc(chain: dict[str, Any]) -> Iterator[RpcClient]:
    with RpcClient(chain["rpc_url"]) as client:
        yield client


@pytest.fixture(scope="module")
def comet_db(chain: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    db: Path = tmp_path_factory.mktemp("comet_db") / "chainrisk.duckdb"
    index_market("compound-v3", chain["rpc_url"], chain["comet"], db, options={"usd_oracle": chain["usd_oracle"]})
    return db


def _frame(db: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        frame: pl.DataFrame = con.sql(sql).pl()
        return frame


def _snapshot(db: Path, comet: str) -> tuple[int, int]:
    row = _frame(db, f"SELECT snapshot_block, snapshot_timestamp FROM sync_state WHERE market = '{comet}'").row(0)
    return int(row[0]), int(row[1])


def _positions(db: Path, comet: str, block: int) -> pl.DataFrame:
    return _frame(db, f"SELECT * FROM positions WHERE source = '{comet}' AND block_number = {block}")


def _reads(rpc: RpcClient, comet: str, fn: str, args: list[tuple[Any, ...]], block: int) -> list[Any]:
    raw = rpc.batch([eth_call(comet, COMET, fn, *a, block=hex(block)) for a in args])
    return [COMET.decode(fn, r)[0] for r in raw]


def _check_balances(rpc: RpcClient, db: Path, comet: str, wallets: list[str], tokens: dict[str, str]) -> int:
    """Asserts every wallet's stored base supply, debt and collateral equal the market's own answers at the snapshot
    block, and that each non-empty one is stored; returns how many wallets hold something."""
    block, _ = _snapshot(db, comet)
    rows = {(r["wallet"], r["asset"]): r for r in _positions(db, comet, block).iter_rows(named=True)}
    base = tokens["USDC"]
    supplied = _reads(rpc, comet, "balanceOf", [(w,) for w in wallets], block)
    borrowed = _reads(rpc, comet, "borrowBalanceOf", [(w,) for w in wallets], block)
    collateral_assets = [a for s, a in tokens.items() if s != "USDC"]
    pairs = [(w, a) for w in wallets for a in collateral_assets]
    held = dict(zip(pairs, _reads(rpc, comet, "collateralBalanceOf", pairs, block), strict=True))
    holders = 0
    for wallet, supply, debt in zip(wallets, supplied, borrowed, strict=True):
        stored = rows.get((wallet, base))
        got = (int(stored["supplied_amount"]), int(stored["debt_amount"])) if stored else (0, 0)
        assert got == (supply, debt), wallet
        for asset in collateral_assets:
            row = rows.get((wallet, asset))
            assert (int(row["supplied_amount"]) if row else 0) == held[(wallet, asset)], (wallet, asset)
        holders += bool(supply or debt or any(held[(wallet, a)] for a in collateral_assets))
    return holders


def test_balances_equal_the_contract_after_months_of_interest(
    chain: dict[str, Any], rpc: RpcClient, comet_db: Path
) -> None:
    comet = chain["comet"]
    wallets = [*chain["wallets"], *chain["recipients"], chain["liquidity_provider"], KEEPER]
    holders = _check_balances(rpc, comet_db, comet, wallets, chain["tokens"])
    market = _frame(comet_db, "SELECT * FROM raw_compound_v3_markets").row(0, named=True)
    block, timestamp = _snapshot(comet_db, comet)
    borrowers = _positions(comet_db, comet, block).filter(pl.col("debt_amount") > 0).height
    # Months of accrual: the borrow index grew by over half a percent, and the stored one is current at the head.
    assert int(market["accrued_borrow_index"]) > 1_005 * 10**12 and market["last_accrual_time"] == timestamp
    assert holders >= 50 and borrowers >= 15 and chain["history"]["absorbed"], (holders, borrowers)
    print(f"{holders} accounts ({borrowers} borrowing) equal balanceOf / borrowBalanceOf / collateralBalanceOf")


def test_a_later_snapshot_rereads_only_the_touched_collateral_and_equals_a_full_read(
    chain: dict[str, Any], comet_db: Path, tmp_path: Path, exchanges: list[list[tuple[str, Any]]]
) -> None:
    """The second snapshot takes the collateral of the accounts no event named since the first from its raw rows
    (userBasic is read for every account), asks userCollateral only of the others, and stores exactly what one
    snapshot reading every account stores."""
    comet, url, options = chain["comet"], chain["rpc_url"], {"usd_oracle": chain["usd_oracle"]}
    late, _ = _snapshot(comet_db, comet)
    moved = _frame(
        comet_db,
        "SELECT block_number FROM raw_compound_v3_events WHERE event IN ('SupplyCollateral', 'WithdrawCollateral', "
        "'TransferCollateral') ORDER BY block_number DESC LIMIT 1 OFFSET 5",
    )
    early = int(moved["block_number"][0]) - 1
    selector = "0x" + COMET.selector("userCollateral").hex()

    def asked() -> int:
        """userCollateral calls sent since `exchanges` was last cleared."""
        sent = [p for calls in exchanges for m, p in calls if m == "eth_call"]
        return sum(1 for params in sent if params[0]["data"].startswith(selector))

    reused, full = tmp_path / "reused.duckdb", tmp_path / "full.duckdb"
    index_market("compound-v3", url, comet, reused, options=options, to_block=early)
    exchanges.clear()
    index_market("compound-v3", url, comet, reused, options=options, to_block=late)
    later = asked()
    exchanges.clear()
    index_market("compound-v3", url, comet, full, options=options, to_block=late)
    assert 0 < later < asked(), (later, asked())
    for table in ("raw_compound_v3_accounts", "raw_compound_v3_collateral", "positions", "wallet_health"):
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        assert _frame(reused, sql).equals(_frame(full, sql)), table


def comet_state(rpc: RpcClient, section: dict[str, Any], block: int) -> dict[str, Any]:
    """What the proxied and the bare market answer at `block` for every account the build made (wallets, transfers'
    recipients, the liquidity provider and the keeper): base balance, debt, userBasic, each collateral, liquidatable
    and borrow-collateralized; and for the market its totals, reserves, utilization and rates, each asset's totals,
    store-front reserves, quote and price. What tests/vectors/record_comet.py records from Compound's own Comet."""
    tag = hex(block)
    found: dict[str, Any] = {}
    extra = [section["liquidity_provider"], KEEPER]
    for name, comet, wallets in (
        ("market", section["comet"], [*section["wallets"], *section["recipients"], *extra]),
        ("bare", section["bare_comet"], [*section["bare_wallets"], *extra]),
    ):
        assets = [a for s, a in sorted(section["tokens"].items()) if s != "USDC"]
        per_account = ["balanceOf", "borrowBalanceOf", "userBasic", "isLiquidatable", "isBorrowCollateralized"]
        calls: list[tuple[str, tuple[Any, ...]]] = [(fn, (w,)) for w in wallets for fn in per_account]
        calls += [("collateralBalanceOf", (w, a)) for w in wallets for a in assets]
        market = ["totalsBasic", "totalSupply", "totalBorrow", "getReserves", "getUtilization", "numAssets"]
        calls += [(fn, ()) for fn in market]
        calls += [(fn, (a,)) for a in assets for fn in ("totalsCollateral", "getCollateralReserves")]
        calls += [("quoteCollateral", (a, 10_000 * 10**6)) for a in assets]
        calls += [("getPrice", (f,)) for _, f in sorted(section["feeds"].items())]
        answers = rpc.batch([eth_call(comet, COMET, fn, *args, block=tag) for fn, args in calls])
        decoded = [COMET.decode(fn, raw) for (fn, _), raw in zip(calls, answers, strict=True)]
        state: dict[str, Any] = {"accounts": {}, "market": {}}
        for (fn, args), values in zip(calls, decoded, strict=True):
            value = as_json(values[0] if len(values) == 1 else values)
            key = "|".join([fn, *(str(arg).lower() for arg in args[1:])]) if args else fn
            if fn in per_account or fn == "collateralBalanceOf":
                state["accounts"].setdefault(args[0].lower(), {})[key] = value
            else:
                where = f"{fn}|{args[0].lower()}" if args else fn
                state["market"][where] = value
        utilization = state["market"]["getUtilization"]
        rates = rpc.batch(
            [eth_call(comet, COMET, fn, utilization, block=tag) for fn in ("getSupplyRate", "getBorrowRate")]
        )
        state["market"]["getSupplyRate"], state["market"]["getBorrowRate"] = (
            COMET.decode(fn, raw)[0] for fn, raw in zip(("getSupplyRate", "getBorrowRate"), rates, strict=True)
        )
        found[name] = state
    return found


def test_the_stand_in_ends_where_compounds_own_comet_does(chain: dict[str, Any], rpc: RpcClient) -> None:
    """The same build on compound-finance/comet's Comet and CometExt (tests/data/comet_vectors.json) and on the
    stand-in: the same actions go through or revert, the same accounts absorbed and collateral bought, and every
    account and market figure the build leaves is the same, to the unit, in the proxied and the bare market."""
    real = json.loads(REAL_COMET.read_text())
    assert chain["built_block"] == real["built_block"]
    assert chain["history"] == real["history"]
    ours = comet_state(rpc, chain, chain["built_block"])
    for name in ("market", "bare"):
        assert ours[name]["market"] == real["state"][name]["market"], name
        assert ours[name]["accounts"].keys() == real["state"][name]["accounts"].keys(), name
        for account, figures in real["state"][name]["accounts"].items():
            assert ours[name]["accounts"][account] == figures, (name, account)
    borrowing = [a for a in real["state"]["market"]["accounts"].values() if a["borrowBalanceOf"]]
    assert len(borrowing) >= 15 and real["history"]["absorbed"], (len(borrowing), real["history"])


def test_the_committed_abi_is_the_stand_in_interface() -> None:
    """abis/compound-v3/IComet.json is compiled from our CometStandinInterface: the two cannot drift apart."""
    compiled = standin_contracts("compound_v3")["CometStandinInterface"].abi
    committed = json.loads((Path(__file__).resolve().parent.parent / "abis/compound-v3/IComet.json").read_text())
    key = json.dumps
    assert sorted(map(key, committed)) == sorted(map(key, compiled))


def test_bare_market_indexes_the_same_way(chain: dict[str, Any], rpc: RpcClient, tmp_path: Path) -> None:
    db = tmp_path / "bare.duckdb"
    index_market("compound-v3", chain["rpc_url"], chain["bare_comet"], db, options={"usd_oracle": chain["usd_oracle"]})
    assert _check_balances(rpc, db, chain["bare_comet"], chain["bare_wallets"], chain["tokens"]) >= 5


def _describe(rpc: RpcClient, feed: str, text: str) -> None:
    """Sets a SettableFeed's description() (a short string, stored inline in its first slot)."""
    word = text.encode().ljust(31, b"\0") + bytes([2 * len(text)])
    rpc.call("anvil_setStorageAt", [feed, "0x0", "0x" + word.hex()])


def test_without_a_usd_source_the_comets_own_usd_feed_values_it_and_without_one_usd_is_named_unknown(
    chain: dict[str, Any], rpc: RpcClient, comet_db: Path, tmp_path: Path
) -> None:
    """A Comet on a chain without an Aave V3 oracle (Ronin's, Unichain's presets): its base price feed answers in USD
    ("USDC / USD"), so Comet's own prices give every USD figure the oracle gives (it reads the same feeds), and the
    market names that feed. With a base feed in another currency (the WETH Comets' quote ETH) the same exact amounts
    and health as with one, every USD figure NULL, and data_quality says why."""
    block = _frame(comet_db, "SELECT snapshot_block FROM sync_state")["snapshot_block"][0]
    db = tmp_path / "own-feed.duckdb"
    index_market("compound-v3", chain["rpc_url"], chain["comet"], db, to_block=block)
    usd = "SELECT wallet, asset, price_usd, collateral_usd, debt_usd FROM positions ORDER BY ALL"
    assert _frame(db, usd).equals(_frame(comet_db, usd)) and _frame(db, usd)["price_usd"].is_not_null().all()
    assert _frame(db, "SELECT * FROM data_quality").is_empty()
    ((symbol, route),) = _frame(db, "SELECT base_symbol, usd_route FROM raw_compound_v3_markets").rows()
    base_feed = chain["feeds"][symbol].lower()
    assert route == f"base {symbol}: comet price feed {base_feed} ({symbol} / USD)"

    snapshot = rpc.call("evm_snapshot")
    try:
        _describe(rpc, base_feed, f"{symbol} / ETH")
        db = tmp_path / "no-usd.duckdb"
        index_market("compound-v3", chain["rpc_url"], chain["comet"], db, to_block=block)
    finally:
        assert rpc.call("evm_revert", [snapshot]) is True
    exact = "SELECT wallet, asset, supplied_amount, collateral_amount, debt_amount FROM positions ORDER BY ALL"
    assert _frame(db, exact).equals(_frame(comet_db, exact)) and _frame(db, exact).height > 50
    health = "SELECT wallet, health_factor_wad, total_collateral_base, total_debt_base FROM wallet_health ORDER BY ALL"
    assert _frame(db, health).equals(_frame(comet_db, health))
    usd_rows = _frame(db, "SELECT * FROM positions")
    assert usd_rows["price_usd"].is_null().all()
    for amount, value in (("debt_amount", "debt_usd"), ("collateral_amount", "collateral_usd")):
        held = usd_rows.filter(pl.col(amount) > 0)
        assert held.height and held[value].is_null().all(), value  # what is held has no USD figure, not 0
    quality = _frame(db, "SELECT subject, kind, detail, unknown FROM data_quality")
    assert quality.select("subject", "kind").rows() == [("0x" + "0" * 40, "no_usd_price")]
    assert "no USD source is configured" in quality["detail"][0] and "health exact" in quality["unknown"][0]
    assert f"nor does its base price feed {base_feed} give a USD price" in quality["detail"][0]
    assert _frame(comet_db, "SELECT * FROM data_quality WHERE kind = 'no_usd_price'").is_empty()
    route_sql = "SELECT base_symbol, usd_route FROM raw_compound_v3_markets"
    assert _frame(db, route_sql)["usd_route"].to_list() == [None]
    ((symbol, with_oracle),) = _frame(comet_db, route_sql).rows()
    assert with_oracle == f"base {symbol}: usd oracle {chain['usd_oracle'].lower()}"
    # Scored all the same: every borrower's exact health, its USD unknown.
    score(db)
    risk = _frame(db, "SELECT health_factor_wad, debt_usd FROM wallet_risk WHERE health_factor_wad IS NOT NULL")
    assert risk.height > 10 and risk["debt_usd"].is_null().all()


def test_usd_feeds_value_the_comet_as_the_usd_oracle_does(
    chain: dict[str, Any], comet_db: Path, tmp_path: Path
) -> None:
    """Chainlink USD feeds given token by token (`usd_feeds`, no `usd_oracle`) give every position the USD figures the
    oracle gives (it reads the same feeds); with the base token's feed alone the collateral stays valued through Comet's
    own prices, and nothing is named unknown."""
    block = _frame(comet_db, "SELECT snapshot_block FROM sync_state")["snapshot_block"][0]
    feeds = {chain["tokens"][symbol].lower(): feed.lower() for symbol, feed in chain["feeds"].items()}
    usd = "SELECT wallet, asset, price_usd, collateral_usd, debt_usd FROM positions ORDER BY ALL"
    for given in (feeds, {chain["base_token"].lower(): feeds[chain["base_token"].lower()]}):
        db = tmp_path / f"feeds-{len(given)}.duckdb"
        pairs = " ".join(f"{token}={feed}" for token, feed in given.items())
        index_market("compound-v3", chain["rpc_url"], chain["comet"], db, options={"usd_feeds": pairs}, to_block=block)
        ours = _frame(db, usd)
        assert ours.equals(_frame(comet_db, usd)) and ours["price_usd"].is_not_null().all(), len(given)
        assert _frame(db, "SELECT * FROM data_quality WHERE kind = 'no_usd_price'").is_empty()
        ((symbol, route),) = _frame(db, "SELECT base_symbol, usd_route FROM raw_compound_v3_markets").rows()
        assert route == f"base {symbol}: usd feed {feeds[chain['base_token'].lower()]}"
    # A collateral's feed alone: Comet's prices are converted at that token's USD price, and the market says so.
    base = chain["base_token"].lower()
    collateral, feed = next((t, f) for t, f in feeds.items() if t != base)
    db = tmp_path / "feeds-collateral.duckdb"
    index_market("compound-v3", chain["rpc_url"], chain["comet"], db, options={"usd_feeds": f"{collateral}={feed}"})
    (route,) = _frame(db, "SELECT usd_route FROM raw_compound_v3_markets")["usd_route"]
    assert route.startswith("collateral ") and route.endswith(f": usd feed {feed}"), route
    assert _frame(db, "SELECT * FROM positions WHERE debt_amount > 0")["debt_usd"].is_not_null().all()
    # An answer older than usd_feed_max_age (here any answer not given in the snapshot's own second) is named on the
    # Comet, its subject the feed, and still used.
    db = tmp_path / "feeds-stale.duckdb"
    options = {"usd_feeds": " ".join(f"{t}={f}" for t, f in feeds.items()), "usd_feed_max_age": "1s"}
    index_market("compound-v3", chain["rpc_url"], chain["comet"], db, options=options, to_block=block)
    assert _frame(db, usd).equals(_frame(comet_db, usd))
    stale = _frame(db, "SELECT market, subject, detail FROM data_quality WHERE kind = 'stale_usd_price'")
    assert stale.height > 0 and set(stale["subject"]) <= set(feeds.values())
    assert set(stale["market"]) == {chain["comet"].lower()}
    assert all(d.split(": ", 1)[0].split()[0] in ("base", "collateral") for d in stale["detail"])


def _engine(positions: pl.DataFrame, multipliers: dict[str, float] | None = None) -> pl.DataFrame:
    table = (
        pl.DataFrame({"symbol": list(multipliers), "multiplier": list(multipliers.values())}) if multipliers else None
    )
    return wallet_health(position_values(apply_multipliers(prepare(positions), table))).collect()


def _chain_verdicts(rpc: RpcClient, comet: str, wallets: list[str], block: int) -> tuple[set[str], set[str]]:
    """(liquidatable, not borrow-collateralized) per the market's own views at `block`."""
    liquidatable = _reads(rpc, comet, "isLiquidatable", [(w,) for w in wallets], block)
    collateralized = _reads(rpc, comet, "isBorrowCollateralized", [(w,) for w in wallets], block)
    return (
        {w for w, x in zip(wallets, liquidatable, strict=True) if x},
        {w for w, x in zip(wallets, collateralized, strict=True) if not x},
    )


def _check_health(rpc: RpcClient, db: Path, comet: str) -> set[str]:
    """HF < 1 (engine and stored wad) exactly when isLiquidatable; capacity >= debt exactly when
    isBorrowCollateralized; returns the liquidatable wallets."""
    block, _ = _snapshot(db, comet)
    positions = _positions(db, comet, block)
    health = _engine(positions)
    wallets = sorted(health["wallet"])
    liquidatable, undercollateralized = _chain_verdicts(rpc, comet, wallets, block)
    assert set(health.filter(pl.col("health_factor") < 1)["wallet"]) == liquidatable
    stored = _frame(
        db, f"SELECT wallet, health_factor_wad FROM wallet_health WHERE block_number = {block} AND source = '{comet}'"
    )
    assert set(stored.filter(pl.col("health_factor_wad") < WAD)["wallet"]) == liquidatable
    # The borrowing power: floor(collateral value x borrowCollateralFactor) summed, against the debt's value.
    capacity = positions.group_by("wallet").agg(
        (pl.col("collateral_base").cast(pl.Int128) * pl.col("ltv_bps") // 10_000).sum().alias("capacity"),
        pl.col("debt_base").cast(pl.Int128).sum().alias("debt"),
    )
    assert set(capacity.filter(pl.col("capacity") < pl.col("debt"))["wallet"]) == undercollateralized
    # absorb() accrues first, then checks: an eth_call of it succeeds for exactly the liquidatable accounts.
    borrowers = sorted(health.filter(pl.col("debt_usd") > 0)["wallet"])
    absorbable = set()
    for wallet in borrowers:
        data = COMET.encode("absorb", KEEPER, [wallet])
        try:
            rpc.call("eth_call", [{"from": KEEPER, "to": comet, "data": data}, hex(block)])
            absorbable.add(wallet)
        except RpcError:  # NotLiquidatable, or any other refusal
            pass
    assert absorbable == liquidatable
    return liquidatable


def _set_feeds(rpc: RpcClient, chain: dict[str, Any], answers: dict[str, int], timestamp: int) -> None:
    """New feed answers in a block at `timestamp` (the snapshot's: no interest accrues between)."""
    builder = BlockBuilder(rpc, timestamp=timestamp)
    for symbol, answer in answers.items():
        builder.call(DEPLOYER, FEED, chain["feeds"][symbol], "setAnswer", answer)
    builder.call(KEEPER, COMET, chain["comet"], "accrueAccount", KEEPER)
    builder.mine(0)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_bad_input_is_one_line_and_changes_nothing(
    chain: dict[str, Any], comet_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "kept"
    folder.mkdir()
    db = folder / "chainrisk.duckdb"
    shutil.copyfile(comet_db, db)
    # As a user's folder after earlier runs holds it: with the empty lock file every writing command leaves.
    before = _digest(folder)
    common = ["--rpc-url", chain["rpc_url"], "--db", str(db)]
    cases = {
        "is not a Compound V3 Comet": ["--address", chain["tokens"]["USDC"]],
        "no contract at": ["--address", "0x" + keccak(b"a wallet").hex()[-40:]],
        "but the market lives on chain 1": ["--market", "compound-v3-ethereum-usdc"],
    }
    for expected, args in cases.items():
        protocol = ["--protocol", "compound-v3"] if "--address" in args else []
        assert main(["index", *protocol, *args, *common]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("chainrisk: error: ") and expected in err, err
    assert _digest(folder) == before


def test_each_absorb_is_credited_at_the_liquidation_factor_in_force_at_its_block(
    chain: dict[str, Any], rpc: RpcClient, tmp_path: Path
) -> None:
    """Four crashes, each absorbed; governance lowers every collateral's liquidationFactor by upgrading the market
    between the first two absorbs (a snapshot between them), right after the third (in the next block, no snapshot
    between) and in the fourth's own block. The logged absorbs' credit and shortfall are what each absorb computed at
    its own block's factor (the snapshot's prediction before it, and what the chain then did); the last two's factor
    is unknown (the snapshots around each read different ones), so their credit and bad debt are NULL, not a guess."""
    comet = chain["comet"]
    options = {"usd_oracle": chain["usd_oracle"]}
    before = rpc.call("evm_snapshot")
    try:
        db = tmp_path / "upgrades.duckdb"
        index_market("compound-v3", chain["rpc_url"], comet, db, options=options)
        block, _ = _snapshot(db, comet)
        start = {
            r["symbol"]: int(r["price"]) for r in _positions(db, comet, block).unique("symbol").iter_rows(named=True)
        }
        absorbs = []
        collaterals: tuple[Collateral, ...] = COLLATERALS
        # Per crash: how deep, and when governance upgrades after the absorb (None: not).
        plan = [(0.8, "after a snapshot"), (0.62, None), (0.45, "next block"), (0.35, "same block")]
        for step, (depth, upgrade) in enumerate(plan):
            block, timestamp = _snapshot(db, comet)
            _set_feeds(rpc, chain, {s: int(start[s] * depth) for s in CRASH}, timestamp)
            index_market("compound-v3", chain["rpc_url"], comet, db, options=options)
            predicted = _frame(db, f"SELECT * FROM raw_compound_v3_absorbs WHERE market = '{comet}' AND liquidatable")
            assert predicted.height > 0, f"crash {step}: nobody to absorb"
            # A few accounts a crash, so that each later one still finds some whatever the tests before left.
            predicted = predicted.filter(pl.col("wallet").is_in(sorted(predicted["wallet"])[:3]))
            builder = BlockBuilder(rpc, timestamp=_snapshot(db, comet)[1])
            if upgrade is not None:
                # Governance cuts every factor by 0.05: a new implementation with the new configuration (deployed in
                # a block of its own), the proxy upgraded to it.
                collaterals = tuple(replace(c, liquidation_factor=c.liquidation_factor - 0.05) for c in collaterals)
                implementation = deploy_implementation(
                    builder, chain["tokens"], chain["feeds"], chain["extension"], collaterals
                )
            builder.call(KEEPER, COMET, comet, "absorb", KEEPER, sorted(predicted["wallet"]))
            if upgrade == "same block":
                builder.call(chain["proxy_admin"], PROXY, comet, "upgradeTo", implementation)
            receipt = builder.mine(0)[0]
            absorbs.append((receipt, predicted))
            if upgrade in (None, "after a snapshot"):
                index_market("compound-v3", chain["rpc_url"], comet, db, options=options)
            if upgrade in ("after a snapshot", "next block"):
                builder.call(chain["proxy_admin"], PROXY, comet, "upgradeTo", implementation)
                builder.mine(0)
            index_market("compound-v3", chain["rpc_url"], comet, db, options=options)
        versions = _frame(
            db,
            "SELECT asset, count(DISTINCT liquidation_factor) AS factors FROM history.raw_compound_v3_assets "
            f"WHERE market = '{comet}' GROUP BY asset",
        )
        assert versions["factors"].to_list() == [4] * len(COLLATERALS)
        # The change log (stg_compound_v3_parameter_changes, which mart_parameter_changes reads) holds the three cuts
        # of each collateral and nothing else, each one's old and new factor what getAssetInfoByAddress answered at
        # the snapshots around it.
        changes = _frame(
            db,
            f"SELECT c.*, c.block_number AS changed_by_block, s.previous_block AS changed_after_block "
            f"FROM ({query_sql('stg_compound_v3_parameter_changes')}) AS c "
            f"JOIN ({query_sql('stg_snapshot_blocks')}) AS s USING (protocol, chain_id, source, block_number)",
        )
        assert set(changes["parameter"]) == {"liquidation_factor"} and set(changes["change"]) == {"changed"}
        assert changes.group_by("item").len()["len"].to_list() == [3] * len(COLLATERALS)
        for row in changes.iter_rows(named=True):
            for block, value in (
                (row["changed_after_block"], row["old_value"]),
                (row["changed_by_block"], row["new_value"]),
            ):
                (info,) = _reads(rpc, comet, "getAssetInfoByAddress", [(row["item"],)], block)
                assert str(info[6]) == value, (row["symbol"], block)
        head = int(rpc.call("eth_blockNumber"), 16)
        for step, (receipt, predicted) in enumerate(absorbs):
            tx = receipt.logs[0]["transactionHash"]
            rows = _frame(db, f"SELECT * FROM ({query_sql('stg_compound_v3_liquidations')}) WHERE tx_hash = '{tx}'")
            debts = {r["wallet"]: r for r in rows.filter(pl.col("debt_repaid").is_not_null()).iter_rows(named=True)}
            assert set(debts) == set(predicted["wallet"])
            paid = {
                "0x" + log["topics"][2][-40:]: int(log["data"][2:66], 16)
                for log in receipt.logs
                if log["topics"][0] == ABSORB_DEBT
            }
            assert all(r["bad_debt_known"] for r in rows.iter_rows(named=True) if r["debt_repaid"] is None)
            if step >= 2:
                assert all(r["credited_base"] is None and r["bad_debt_tokens"] is None for r in debts.values())
                assert not any(r["bad_debt_known"] for r in debts.values())
                continue
            assert all(r["bad_debt_known"] for r in debts.values())
            supplied = dict(
                zip(sorted(debts), _reads(rpc, comet, "balanceOf", [(w,) for w in sorted(debts)], head), strict=True)
            )
            for row in predicted.iter_rows(named=True):
                logged = debts[row["wallet"]]
                assert (logged["credited_base"], logged["shortfall"]) == (row["credited_base"], row["shortfall"])
                if logged["shortfall"]:
                    assert logged["credited_base"] + logged["shortfall"] == paid[row["wallet"]]
                    assert supplied[row["wallet"]] == 0
                else:
                    assert logged["credited_base"] == paid[row["wallet"]]
    finally:
        rpc.call("evm_revert", [before])


def test_a_pause_and_an_upgrade_are_pinned_to_their_own_logs(
    chain: dict[str, Any], rpc: RpcClient, tmp_path: Path
) -> None:
    """Between two snapshots the governor pauses absorb and buy (Comet.pause), then upgrades the market to an
    implementation with every liquidation factor 0.05 lower, two blocks later. The index stores the PauseAction with
    the pauseFlags it sets and the proxy's Upgraded with its implementation, as the receipts hold them; the lending
    events leave both out; mart_parameter_changes pins the pause_flags change to the pause's transaction (though the
    upgrade came later) and every factor's to the upgrade's."""
    comet = chain["comet"]
    options = {"usd_oracle": chain["usd_oracle"]}
    before = rpc.call("evm_snapshot")
    try:
        db = tmp_path / "governed.duckdb"
        index_market("compound-v3", chain["rpc_url"], comet, db, options=options)
        builder = BlockBuilder(rpc, timestamp=_snapshot(db, comet)[1])
        builder.call(chain["governor"], COMET, comet, "pause", False, False, False, True, True)
        (paused,) = builder.mine(0)
        lower = tuple(replace(c, liquidation_factor=c.liquidation_factor - 0.05) for c in COLLATERALS)
        implementation = deploy_implementation(builder, chain["tokens"], chain["feeds"], chain["extension"], lower)
        builder.call(chain["proxy_admin"], PROXY, comet, "upgradeTo", implementation)
        (upgraded,) = builder.mine(0)
        index_market("compound-v3", chain["rpc_url"], comet, db, options=options)

        pause_tx, upgrade_tx = (r.logs[0]["transactionHash"] for r in (paused, upgraded))
        pause_block, upgrade_block = (int(r.logs[0]["blockNumber"], 16) for r in (paused, upgraded))
        logged = {
            r["tx_hash"]: r
            for r in _frame(
                db, "SELECT * FROM raw_compound_v3_events WHERE event IN ('PauseAction', 'Upgraded')"
            ).iter_rows(named=True)
        }
        pause_row, upgrade_row = logged[pause_tx], logged[upgrade_tx]
        assert (pause_row["event"], pause_row["amount"], pause_row["counterparty"]) == ("PauseAction", 8 + 16, comet)
        assert (upgrade_row["event"], upgrade_row["counterparty"]) == ("Upgraded", implementation.lower())
        events = _frame(db, f"SELECT DISTINCT event FROM ({query_sql('stg_compound_v3_events')})")["event"]
        assert not {"PauseAction", "Upgraded"} & set(events)

        with Store(db) as store:  # every adapter's tables and views: the mart is across protocols
            install_views(store.con)
            changes = store.con.sql("SELECT * FROM mart_parameter_changes").pl()
        pinned = {(r["parameter"], r["changed_in_tx"], r["changed_at_block"]) for r in changes.iter_rows(named=True)}
        assert pinned == {("pause_flags", pause_tx, pause_block), ("liquidation_factor", upgrade_tx, upgrade_block)}
        assert changes.filter(pl.col("parameter") == "pause_flags")[["old_value", "new_value"]].row(0) == ("0", "24")
        assert changes.height == 1 + len(COLLATERALS)
    finally:
        rpc.call("evm_revert", [before])


def test_health_equals_is_liquidatable_before_and_after_a_crash_and_absorb_costs_what_was_predicted(
    chain: dict[str, Any], rpc: RpcClient, comet_db: Path
) -> None:
    comet = chain["comet"]
    before = _check_health(rpc, comet_db, comet)
    block, timestamp = _snapshot(comet_db, comet)
    positions = _positions(comet_db, comet, block)

    # The engine's verdicts under the crash, from the snapshot; then the chain's with the feeds moved as much.
    shocked = _engine(positions, CRASH)
    prices = {r["symbol"]: int(r["price"]) for r in positions.unique("symbol").iter_rows(named=True)}
    _set_feeds(rpc, chain, {s: int(float(prices[s]) * m) for s, m in CRASH.items()}, timestamp)
    head = int(rpc.call("eth_blockNumber"), 16)
    wallets = sorted(shocked["wallet"])
    liquidatable, _ = _chain_verdicts(rpc, comet, wallets, head)
    assert set(shocked.filter(pl.col("liquidatable"))["wallet"]) == liquidatable
    assert len(liquidatable) > len(before) + 5, (len(before), len(liquidatable))

    # Indexed again after the crash: the same agreement, and the predictions absorb is checked against.
    index_market("compound-v3", chain["rpc_url"], comet, comet_db, options={"usd_oracle": chain["usd_oracle"]})
    assert _check_health(rpc, comet_db, comet) == liquidatable
    block, timestamp = _snapshot(comet_db, comet)
    predicted = _frame(comet_db, f"SELECT * FROM raw_compound_v3_absorbs WHERE market = '{comet}'")
    predicted = predicted.filter(pl.col("liquidatable"))
    assert set(predicted["wallet"]) == liquidatable and predicted["shortfall"].cast(pl.Float64).sum() > 0
    # The engine's view of the same absorbs: every collateral seized, and the bad debt is what the reserves lose once
    # the store front has sold it, at the chain's own quoteCollateral: the debt less each balance at the discounted
    # price. That is less than absorb's shortfall (the debt less the credit at liquidationFactor) wherever the store
    # front's discount is the smaller. The engine multiplies in floats where Comet floors each product: within two
    # base units.
    positions = _positions(comet_db, comet, block)
    engine = _engine(positions).join(predicted, on="wallet")
    assert (engine["seizable_collateral_usd"] == engine["collateral_usd"]).all()
    market = _frame(comet_db, f"SELECT * FROM raw_compound_v3_markets WHERE market = '{comet}'").row(0, named=True)
    usd_per_base_unit = float(market["base_price"]) / float(market["base_scale"]) * market["base_currency_usd"]
    held = positions.filter(pl.col("used_as_collateral") & (pl.col("collateral_amount") > 0))
    assets = sorted(set(held["asset"]))
    quote = 10**15  # base units bought with: large enough that each quote's floor is under 1e-9 of it
    quoted = dict(zip(assets, _reads(rpc, comet, "quoteCollateral", [(a, quote) for a in assets], block), strict=True))
    sale = held.group_by("wallet").agg(
        pl.struct("asset", "collateral_amount")
        .map_elements(lambda r: int(r["collateral_amount"]) * quote / quoted[r["asset"]], return_dtype=pl.Float64)
        .sum()
        .alias("sale_base")
    )
    engine = engine.join(sale, on="wallet")
    debt_base = engine["debt_usd"] / usd_per_base_unit
    lost = (debt_base - engine["sale_base"]).clip(lower_bound=0)
    gap = engine["bad_debt_usd"] / usd_per_base_unit - lost
    assert (gap.abs() <= 2 + 1e-9 * debt_base).all(), gap
    shortfall = engine["shortfall"].cast(pl.Float64)
    assert (lost <= shortfall + 2).all() and (lost < shortfall - 2).any()

    reserves_before = _reads(rpc, comet, "getReserves", [()], block)[0]
    builder = BlockBuilder(rpc, timestamp=timestamp)
    builder.call(KEEPER, COMET, comet, "absorb", KEEPER, sorted(liquidatable))
    receipt = builder.mine(0)[0]
    reserves_after = _reads(rpc, comet, "getReserves", [()], int(rpc.call("eth_blockNumber"), 16))[0]
    paid = {
        "0x" + log["topics"][2][-40:]: int(log["data"][2:66], 16)
        for log in receipt.logs
        if log["topics"][0] == ABSORB_DEBT
    }
    assert paid == {r["wallet"]: int(r["base_paid_out"]) for r in predicted.iter_rows(named=True)}
    expected = int(predicted["reserves_paid"].cast(pl.Int128).sum())
    assert abs((reserves_before - reserves_after) - expected) <= predicted.height, (
        reserves_before - reserves_after,
        expected,
    )
    logged = _logged_absorbs(chain, comet_db, receipt.logs[0]["transactionHash"])
    assert set(logged) == liquidatable
    after = _reads(rpc, comet, "balanceOf", [(w,) for w in sorted(logged)], int(rpc.call("eth_blockNumber"), 16))
    supplied_after = dict(zip(sorted(logged), after, strict=True))
    for row in predicted.iter_rows(named=True):
        credited, written_off, bad_debt = logged[row["wallet"]]
        # What the logs say absorb credited and left uncovered is what it computed: the credit is the whole of
        # basePaidOut where absorb credited a supply (the account holds it now), and the debt less the shortfall
        # where it floored the new balance at zero (the account holds nothing).
        assert (credited, written_off) == (int(row["credited_base"]), int(row["shortfall"])), row["wallet"]
        if written_off:
            assert credited + written_off == paid[row["wallet"]] and supplied_after[row["wallet"]] == 0
        else:
            assert credited == paid[row["wallet"]] and supplied_after[row["wallet"]] > 0
        assert bad_debt == written_off / 10**6  # USDC
    short = sum(v[1] for v in logged.values())
    assert 0 < short < sum(paid.values()) and sum(1 for v in logged.values() if v[1] == 0) > 0
    print(
        f"{len(before)} liquidatable before the crash, {len(liquidatable)} after; absorbing them moved reserves by "
        f"{reserves_before - reserves_after} against {expected} predicted; the logs' shortfall {short} base units "
        f"over {sum(1 for v in logged.values() if v[1])} accounts, as predicted"
    )


def _logged_absorbs(chain: dict[str, Any], db: Path, tx_hash: str) -> dict[str, tuple[int, int, float]]:
    """The absorb transaction `tx_hash` as the liquidations view reads it from the logs, indexed again: per account,
    the credit, the shortfall (exact, base units) and the bad debt in whole tokens."""
    index_market("compound-v3", chain["rpc_url"], chain["comet"], db, options={"usd_oracle": chain["usd_oracle"]})
    rows = _frame(db, f"SELECT * FROM ({query_sql('stg_compound_v3_liquidations')}) WHERE tx_hash = '{tx_hash}'")
    debts = rows.filter(pl.col("debt_repaid").is_not_null())
    assert rows.filter(pl.col("debt_repaid").is_null())["bad_debt_tokens"].null_count() == rows.height - debts.height
    return {
        r["wallet"]: (int(r["credited_base"]), int(r["shortfall"]), r["bad_debt_tokens"])
        for r in debts.iter_rows(named=True)
    }


BUY_COLLATERAL = "0x" + keccak(b"BuyCollateral(address,address,uint256,uint256)").hex()
ABSORB_COLLATERAL = "0x" + keccak(b"AbsorbCollateral(address,address,address,uint256,uint256)").hex()
#: A buyer new to the market: the store front test's.
BUYER = "0x00000000000000000000000000000000000b0b01"


def _store_front(db: Path, comet: str) -> dict[str, dict[str, Any]]:
    rows = _frame(db, f"SELECT * FROM ({query_sql('stg_compound_v3_store_front')}) WHERE market = '{comet}'")
    return {r["asset"]: r for r in rows.iter_rows(named=True)}


def _logged_per_asset(rpc: RpcClient, comet: str, topic: str, block: int) -> dict[str, tuple[int, int]]:
    """Per asset, the first two words of every `topic` log (AbsorbCollateral: collateral and value; BuyCollateral: base
    paid and collateral) summed, from the chain's own logs up to `block`."""
    logs = rpc.call("eth_getLogs", [{"address": comet, "fromBlock": "0x0", "toBlock": hex(block), "topics": [topic]}])
    found: dict[str, tuple[int, int]] = {}
    for log in logs:
        asset = "0x" + log["topics"][3 if topic == ABSORB_COLLATERAL else 2][-40:]
        first, second = found.get(asset, (0, 0))
        found[asset] = (first + int(log["data"][2:66], 16), second + int(log["data"][66:130], 16))
    return found


def test_the_store_front_holds_what_absorbs_took_and_sells_it_at_the_quote(
    chain: dict[str, Any], rpc: RpcClient, comet_db: Path
) -> None:
    """After the crash's absorbs: per collateral, what the Comet holds is getCollateralReserves, what absorbs took and
    buyers bought are the chain's logs summed, and whether it is for sale is getReserves() < targetReserves(); then a
    new buyer pays for a tenth of the largest holding at quoteCollateral's price, and the view moves by exactly that."""
    comet = chain["comet"]
    index_market("compound-v3", chain["rpc_url"], comet, comet_db, options={"usd_oracle": chain["usd_oracle"]})
    block, timestamp = _snapshot(comet_db, comet)
    front = _store_front(comet_db, comet)
    assets = sorted(front)
    held = dict(zip(assets, _reads(rpc, comet, "getCollateralReserves", [(a,) for a in assets], block), strict=True))
    absorbed = _logged_per_asset(rpc, comet, ABSORB_COLLATERAL, block)
    bought = _logged_per_asset(rpc, comet, BUY_COLLATERAL, block)
    assert absorbed and bought, "the population's absorbs and the keeper's buys"
    reserves, target, store_front = (
        _reads(rpc, comet, fn, [()], block)[0] for fn in ("getReserves", "targetReserves", "storeFrontPriceFactor")
    )
    for asset, row in front.items():
        assert row["held"] == held[asset]
        assert (row["absorbed"], row["absorbed_value"]) == absorbed.get(asset, (0, 0))
        assert (row["paid"], row["sold"]) == bought.get(asset, (0, 0))
        assert row["unaccounted"] == held[asset] - (row["absorbed"] - row["sold"])
        assert row["for_sale"] == (reserves < target)
        factor = _reads(rpc, comet, "getAssetInfoByAddress", [(asset,)], block)[0][6]
        assert row["discount_pct"] == pytest.approx(100 * store_front * (WAD - factor) / WAD**2, rel=1e-12)
    asset = max(assets, key=lambda a: front[a]["held_usd"] or 0.0)
    assert held[asset] > 0 and reserves < target
    usdc = chain["tokens"]["USDC"]
    pay = int(front[asset]["held_usd"] / 10 * 10**6)  # USDC at about a dollar
    quote = _reads(rpc, comet, "quoteCollateral", [(asset, pay)], block)[0]
    assert 0 < quote < held[asset]
    builder = BlockBuilder(rpc, timestamp=timestamp)
    builder.call(BUYER, MINTABLE, usdc, "mint", pay)
    builder.call(BUYER, MINTABLE, usdc, "approve", comet, pay)
    builder.call(BUYER, COMET, comet, "buyCollateral", asset, quote, pay, BUYER)
    builder.mine(0)
    index_market("compound-v3", chain["rpc_url"], comet, comet_db, options={"usd_oracle": chain["usd_oracle"]})
    after = _store_front(comet_db, comet)[asset]
    now = _snapshot(comet_db, comet)[0]
    assert after["held"] == _reads(rpc, comet, "getCollateralReserves", [(asset,)], now)[0] == held[asset] - quote
    assert (after["sold"] - front[asset]["sold"], after["paid"] - front[asset]["paid"]) == (quote, pay)
    assert (after["sales"], after["buyers"]) == (front[asset]["sales"] + 1, front[asset]["buyers"] + 1)
    assert after["unaccounted"] == front[asset]["unaccounted"]
    # The Markets page's reserves table counts what the Comet holds beside its base reserves.
    (held_usd,) = _frame(
        comet_db, f"SELECT collateral_held_usd FROM ({query_sql('mart_compound_v3_reserves')}) WHERE market = '{comet}'"
    ).row(0)
    assert held_usd == pytest.approx(sum(r["held_usd"] or 0.0 for r in _store_front(comet_db, comet).values()))
    print(
        f"store front: {len(front)} collaterals, {sum(r['sales'] for r in front.values())} sales before ours, "
        f"{sum(r['held_usd'] or 0 for r in front.values()):,.0f} USD held; a new buyer paid {pay} for {quote} of "
        f"{front[asset]['symbol']} ({held[asset]} held)"
    )


def test_accrual_between_touches_equals_the_views(chain: dict[str, Any], rpc: RpcClient, comet_db: Path) -> None:
    """Nine days with nobody touching the market: the snapshot accrues the stored indices itself (the port of
    accruedInterestIndices, getUtilization and the kinked rates) and must still equal the views, which accrue the
    same way; health is checked against absorb(), which accrues before it checks."""
    comet = chain["comet"]
    _, timestamp = _snapshot(comet_db, comet)
    rpc.call("evm_mine", [timestamp + 9 * 86_400])
    index_market("compound-v3", chain["rpc_url"], comet, comet_db, options={"usd_oracle": chain["usd_oracle"]})
    market = _frame(comet_db, "SELECT * FROM raw_compound_v3_markets ORDER BY block_number DESC LIMIT 1").row(
        0, named=True
    )
    assert int(market["accrued_borrow_index"]) > int(market["base_borrow_index"])
    wallets = [*chain["wallets"], *chain["recipients"], chain["liquidity_provider"], KEEPER]
    assert _check_balances(rpc, comet_db, comet, wallets, chain["tokens"]) >= 50
    block, _ = _snapshot(comet_db, comet)
    health = _engine(_positions(comet_db, comet, block))
    for wallet in sorted(health.filter(pl.col("debt_usd") > 0)["wallet"]):
        data = COMET.encode("absorb", KEEPER, [wallet])
        try:
            rpc.call("eth_call", [{"from": KEEPER, "to": comet, "data": data}, hex(block)])
            absorbable = True
        except RpcError:
            absorbable = False
        assert absorbable == bool(health.filter(pl.col("wallet") == wallet)["liquidatable"][0]), wallet
