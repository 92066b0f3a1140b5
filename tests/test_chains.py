"""Collateralization chains on the devnet: the graph as the contracts report it, look-through equal to what was
built, nothing counted twice, and a contagion run that agrees with the devnet's own oracles and liquidations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.chains.contagion import contagion
from chainrisk.chains.graph import links_from_frame
from chainrisk.chains.lookthrough import vault_holdings
from chainrisk.config import devnet_config
from chainrisk.devnet.node import BlockBuilder
from chainrisk.devnet.toolchain import compiled_contracts
from chainrisk.jobs.chains import index_chains
from chainrisk.jobs.index import index_market
from chainrisk.jobs.risk import bad_debt_rules
from chainrisk.jobs.score import score
from chainrisk.rpc import RpcClient
from chainrisk.store.db import LATEST_POSITIONS, Store
from chainrisk.units import WAD
from tests.chainops import (
    FEED,
    MINTABLE,
    MORPHO,
    POOL,
    aave_health,
    block_timestamp,
    borrowers,
    liquidate_morpho_fully,
    morpho_params,
    morpho_unhealthy,
    sandbox,
    set_feeds,
)

ERC20 = load_abi("erc20", "IERC20Detailed")
ERC4626 = load_abi("tokens", "IERC4626")
WSTETH = load_abi("tokens", "IWstETH")


def _tables(db: Path, *names: str) -> list[pl.DataFrame]:
    with Store(db, read_only=True) as store:
        return [store.query(f"SELECT * FROM {n}") for n in names]


def _uint(rpc: RpcClient, to: str, abi: Abi, fn: str, *args: Any, block: int | None = None) -> int:
    tag = hex(block) if block is not None else "latest"
    return int(abi.decode(fn, rpc.call(*eth_call(to, abi, fn, *args, block=tag)))[0])


def _market(devnet: dict[str, Any], collateral: str, loan: str) -> dict[str, Any]:
    return next(
        m for m in devnet["morpho_blue"]["markets"] if m["collateral_symbol"] == collateral and m["loan_symbol"] == loan
    )


def test_graph_is_read_from_the_contracts(scored_db: Path, devnet: dict[str, Any], rpc: RpcClient) -> None:
    (links,) = _tables(scored_db, "asset_links")
    block = int(links["block_number"][0])
    by_asset = {r["asset"]: r for r in links.iter_rows(named=True)}
    tokens = devnet["tokens"]
    wst = by_asset[tokens["wstETH"].lower()]
    assert (wst["kind"], wst["underlying"], wst["underlying_symbol"]) == ("lst", tokens["stETH"].lower(), "stETH")
    assert wst["rate_num"] == _uint(rpc, tokens["wstETH"], WSTETH, "getStETHByWstETH", WAD, block=block)
    assert wst["rate"] > 1.09  # the rate started at 1.09 and rose with the daily reports
    a_weth = by_asset[devnet["aave_v3"]["reserves"]["WETH"]["a_token"].lower()]
    assert (a_weth["kind"], a_weth["underlying"], a_weth["rate"]) == ("atoken", tokens["WETH"].lower(), 1.0)
    assert a_weth["index_ray"] == _uint(
        rpc, devnet["aave_v3"]["pool"], POOL, "getReserveNormalizedIncome", tokens["WETH"], block=block
    )
    vault = by_asset[tokens["cvUSDC"].lower()]
    assert (vault["kind"], vault["underlying"]) == ("erc4626", tokens["USDC"].lower())
    assert vault["rate_num"] == _uint(rpc, tokens["cvUSDC"], ERC4626, "convertToAssets", 10**6, block=block)
    assert vault["total_assets"] == _uint(rpc, tokens["cvUSDC"], ERC4626, "totalAssets", block=block)
    # Plain tokens are not links: the graph found exactly the three wrappers the devnet deploys.
    assert len(links) == 3


def test_population_is_counted_once(scored_db: Path, devnet: dict[str, Any], rpc: RpcClient) -> None:
    chains, exposure, base, positions = _tables(
        scored_db, "collateral_chains", "wallet_exposure", "base_asset_exposure", "positions"
    )
    block = int(chains["block_number"][0])
    positions = positions.filter(pl.col("block_number") == block)
    morpho, vault = devnet["morpho_blue"]["morpho"].lower(), devnet["tokens"]["cvUSDC"].lower()
    # Intermediates own nothing: the Morpho singleton (holding the posted aWETH in Aave) and the vault.
    assert not set(exposure["wallet"]) & {morpho, vault}
    a_weth = devnet["aave_v3"]["reserves"]["WETH"]["a_token"].lower()
    posted = positions.filter((pl.col("asset") == a_weth) & (pl.col("collateral_amount") > 0))
    through = chains.filter(pl.col("asset") == a_weth)
    assert posted.height > 10
    # Every unit of aWETH posted on Morpho is WETH once, in the poster's look-through, and nowhere else.
    assert int(through["base_amount"].sum()) == int(posted["collateral_amount"].sum())
    singleton = positions.filter((pl.col("wallet") == morpho) & (pl.col("protocol") == "aave-v3"))
    assert int(singleton["supplied_amount"].sum()) >= int(posted["collateral_amount"].sum())
    weth = base.filter(pl.col("base_symbol") == "WETH").row(0, named=True)
    assert weth["double_counted_usd"] > 0  # a plain sum over positions would have counted the singleton's too
    # Vault shares: each holder's look-through is the vault's own convertToAssets of its shares, to the unit.
    shares = (
        chains.filter(pl.col("asset") == vault).group_by("wallet", "market", "amount").agg(pl.col("base_amount").sum())
    )
    assert shares.height > 10
    expected = rpc.batch(
        [eth_call(vault, ERC4626, "convertToAssets", int(s), block=hex(block)) for s in shares["amount"]]
    )
    assert shares["base_amount"].to_list() == [int(ERC4626.decode("convertToAssets", r)[0]) for r in expected]
    # and it sits in the WETH/USDC market the vault supplies (depth 2), bar the vault's idle cash (depth 1).
    weth_usdc = _market(devnet, "WETH", "USDC")["market_id"]
    via = chains.filter(pl.col("asset") == vault)
    assert set(via["claim_market"].drop_nulls()) == {weth_usdc} and set(via["depth"]) <= {1, 2}
    # wstETH: getStETHByWstETH of each holding, exactly.
    wst = devnet["tokens"]["wstETH"].lower()
    held = chains.filter(pl.col("asset") == wst)
    assert held.height > 10
    answers = rpc.batch([eth_call(wst, WSTETH, "getStETHByWstETH", int(a), block=hex(block)) for a in held["amount"]])
    assert held["base_amount"].to_list() == [int(WSTETH.decode("getStETHByWstETH", r)[0]) for r in answers]


def test_loopers_show_leverage_and_one_portfolio(scored_db: Path, devnet: dict[str, Any], rpc: RpcClient) -> None:
    view, exposure = _tables(scored_db, "wallet_lookthrough", "wallet_exposure")
    block = int(view["block_number"][0])
    behaviours = devnet["behaviours"]
    loopers = view.filter(pl.col("wallet").is_in([w for w, b in behaviours.items() if b == "aave_emode_looper"]))
    alive = loopers.filter(pl.col("debt_usd") > 0)
    assert alive.height > 10 and set(alive["loop_group"]) == {"ETH"}
    # wstETH posted against WETH debt, all on Aave: the leverage is Aave's own collateral over equity (for those
    # that hold nothing else: aTokens other wallets sent them are outside the loop).
    others = exposure.filter(~pl.col("base_symbol").is_in(["stETH", "WETH"]))["wallet"]
    alive = alive.filter(~pl.col("wallet").is_in(others.to_list()))
    pool = devnet["aave_v3"]["pool"]
    raw = rpc.batch([eth_call(pool, POOL, "getUserAccountData", w, block=hex(block)) for w in alive["wallet"]])
    for leverage, answer in zip(alive["loop_leverage"], raw, strict=True):
        collateral, debt = POOL.decode("getUserAccountData", answer)[:2]
        assert leverage == pytest.approx(collateral / (collateral - debt), rel=1e-6)
    assert alive["loop_leverage"].median() > 1.5  # type: ignore[operator]  # they did re-supply what they borrowed
    cross = view.filter(pl.col("wallet").is_in([w for w, b in behaviours.items() if b == "cross_looper"]))
    assert cross.filter(pl.col("debt_usd") > 0)["cross_protocol"].all()
    assert (cross["max_depth"] >= 1).all()


def _construct(rpc: RpcClient, devnet: dict[str, Any], timestamp: int) -> dict[str, dict[str, int]]:
    """Three fresh wallets build one chain each with known amounts; returns what each put in, in base units."""
    tokens, reserves = devnet["tokens"], devnet["aave_v3"]["reserves"]
    pool, morpho = devnet["aave_v3"]["pool"], devnet["morpho_blue"]["morpho"]
    contracts = compiled_contracts()
    wrapper, vault_abi = Abi(contracts["DevnetWstETH"].abi), Abi(contracts["MorphoSupplyVault"].abi)
    lst, vault, weth = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20
    steth, usdc, eth = 7 * WAD + 12345, 50_000 * 10**6 + 7, 3 * WAD + 999
    builder = BlockBuilder(rpc, timestamp=timestamp)
    funding = [(lst, "stETH", steth, tokens["wstETH"]), (vault, "USDC", usdc, tokens["cvUSDC"])]
    funding.append((weth, "WETH", eth, pool))
    for who, symbol, amount, spender in funding:
        builder.call(who, MINTABLE, tokens[symbol], "mint", amount)
        builder.call(who, ERC20, tokens[symbol], "approve", spender, 2**256 - 1)
    builder.mine(1)
    builder.call(lst, wrapper, tokens["wstETH"], "wrap", steth)
    # Interest accrued in the same block first, so the deposit is priced on up-to-date totals.
    builder.call(vault, MORPHO, morpho, "accrueInterest", morpho_params(_market(devnet, "WETH", "USDC")))
    builder.call(vault, vault_abi, tokens["cvUSDC"], "deposit", usdc, vault)
    builder.call(weth, POOL, pool, "supply", tokens["WETH"], eth, weth, 0)
    builder.mine(1)
    wst = _uint(rpc, tokens["wstETH"], ERC20, "balanceOf", lst)
    shares = _uint(rpc, tokens["cvUSDC"], ERC20, "balanceOf", vault)
    a_weth = reserves["WETH"]["a_token"]
    builder.call(lst, ERC20, tokens["wstETH"], "approve", pool, 2**256 - 1)
    builder.call(lst, POOL, pool, "supply", tokens["wstETH"], wst, lst, 0)
    cv_market, a_market = _market(devnet, "cvUSDC", "DAI"), _market(devnet, "aWETH", "USDC")
    builder.call(vault, ERC20, tokens["cvUSDC"], "approve", morpho, 2**256 - 1)
    builder.call(vault, MORPHO, morpho, "supplyCollateral", morpho_params(cv_market), shares, vault, b"")
    builder.call(weth, ERC20, a_weth, "approve", morpho, 2**256 - 1)
    builder.call(weth, MORPHO, morpho, "supplyCollateral", morpho_params(a_market), eth - 1, weth, b"")
    builder.mine(0)
    return {lst: {"stETH": steth}, vault: {"USDC": usdc}, weth: {"WETH": eth}}


def test_lookthrough_equals_what_was_built(devnet: dict[str, Any], rpc: RpcClient, tmp_path: Path) -> None:
    """Fresh wallets wrap stETH into wstETH and supply it to Aave, deposit USDC in the vault and post the shares on
    Morpho, supply WETH to Aave and post the aWETH on Morpho; indexed and looked through, each wallet's base
    exposure is what it put in, within the units the contracts' own rounding moves (wrap, unwrap, deposit and
    convertToAssets round down; an aToken balance goes through the liquidity index, rounded half up, both ways)."""
    db = tmp_path / "built.duckdb"
    with sandbox(rpc):
        head = int(rpc.call("eth_blockNumber"), 16)
        built = _construct(rpc, devnet, block_timestamp(rpc, head) + 12)
        for market in devnet_config(devnet, db).markets:
            index_market(market.protocol, devnet["rpc_url"], market.address, db, options=market.options)
        score(db, publish=False)
        index_chains(devnet["rpc_url"], db, publish=False)
    (exposure,) = _tables(db, "wallet_exposure")
    for wallet, amounts in built.items():
        mine = exposure.filter(pl.col("wallet") == wallet)
        got = dict(mine.select("base_symbol", "long_amount").iter_rows())
        assert set(got) == set(amounts), wallet
        for symbol, amount in amounts.items():
            assert abs(got[symbol] - amount) <= 3, (wallet, symbol, got[symbol], amount)
        assert (mine["max_depth"] >= 1).all()


@pytest.fixture(scope="module")
def positions(scored_db: Path) -> pl.DataFrame:
    with Store(scored_db, read_only=True) as store:
        return store.query(LATEST_POSITIONS)


SHOCK = {"WETH": 0.65, "stETH": 0.65}


def test_contagion_agrees_with_the_chain(
    scored_db: Path, positions: pl.DataFrame, devnet: dict[str, Any], rpc: RpcClient
) -> None:
    """The same base shock in chainrisk and on the devnet's base feeds (every wrapped price follows on chain):
    the liquidatable wallets of each protocol agree in round 1; after the devnet liquidates round 1's Morpho
    positions (booking their bad debt, which lowers the vault's share price), they agree again in round 2."""
    (stored,) = _tables(scored_db, "asset_links")
    links = links_from_frame(stored)
    with Store(scored_db, read_only=True) as store:
        rules = bad_debt_rules(positions, store.latest_markets())
    assert dict(rules.group_by("protocol").agg(pl.col("bad_debt_rule").first()).iter_rows()) == {
        "aave-v3": "unbacked",
        "morpho-blue": "suppliers",
    }
    result = contagion(positions, links, SHOCK, vault_holdings(positions, links), rules)
    wallets = result.wallets
    block = int(positions["block_number"].max())  # type: ignore[arg-type]
    aave_borrowers, morpho_borrowers = borrowers(positions)

    def predicted(protocol: str, through: int) -> set[Any]:
        part = wallets.filter((pl.col("protocol") == protocol) & (pl.col("round") <= through))
        return set(part["wallet"]) if protocol == "aave-v3" else set(part.select("market", "wallet").iter_rows())

    with sandbox(rpc):
        raw = rpc.batch([eth_call(devnet["feeds"][s], FEED, "latestAnswer") for s in SHOCK])
        # floor(answer x multiplier): what the engine does to an oracle price.
        bases = {s: int(FEED.decode("latestAnswer", r)[0] * SHOCK[s]) for s, r in zip(SHOCK, raw, strict=True)}
        set_feeds(rpc, devnet, bases, block_timestamp(rpc, block) + 1)
        aave = {w for w, d in aave_health(rpc, devnet, aave_borrowers).items() if d[1] > 0 and d[5] < WAD}
        morpho = morpho_unhealthy(rpc, devnet, morpho_borrowers)
        assert aave == predicted("aave-v3", 1)
        assert morpho == predicted("morpho-blue", 1)
        liquidate_morpho_fully(rpc, devnet, sorted(morpho), block_timestamp(rpc, block) + 2)
        still = [b for b in morpho_borrowers if b not in morpho]
        second = morpho_unhealthy(rpc, devnet, still)
        assert second == predicted("morpho-blue", 2) - predicted("morpho-blue", 1)
    channels = dict(wallets.group_by("channel").agg(pl.len()).iter_rows())
    print(
        f"\ncontagion {SHOCK}: {channels}; rounds {result.rounds.filter(pl.col('new_liquidatable_wallets') > 0).rows()}"
    )
    assert channels.get("chain", 0) > 0  # wallets hit only through a wrapper (wstETH, aWETH)
    assert channels.get("bad debt", 0) > 0  # and wallets hit only through an impaired market's claim
    assert second  # the devnet itself liquidates them in round 2


def test_chains_command_refuses_bad_input_and_keeps_the_file(
    scored_db: Path, devnet: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chainrisk.cli import main

    db = tmp_path / "copy.duckdb"
    db.write_bytes(scored_db.read_bytes())  # no job writes it: what readers see
    before = db.read_bytes()
    cases = [
        (["--rpc-url", "http://127.0.0.1:9"], "cannot reach RPC"),
        (["--rpc-url", "not a url"], "is not an http(s) URL"),
        (["--rpc-url", devnet["rpc_url"], "--devnet"], "not both"),
    ]
    for args, message in cases:
        assert main(["chains", "--db", str(db), *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert db.read_bytes() == before
    assert main(["chains", "--db", str(tmp_path / "none.duckdb"), "--rpc-url", devnet["rpc_url"]]) == 2
    assert "no database" in capsys.readouterr().err
    # A database of another chain: the RPC serves 31337, the file's positions say 1.
    with Store(db) as store:
        store.con.execute("UPDATE positions SET chain_id = 1")
    before = db.read_bytes()
    assert main(["chains", "--db", str(db), "--rpc-url", devnet["rpc_url"]]) == 2
    assert "holds no positions of chain 31337" in capsys.readouterr().err
    assert db.read_bytes() == before
    # And the command itself: the same tables as the run wrote, published.
    db.write_bytes(scored_db.read_bytes())  # no job writes it: what readers see
    assert main(["chains", "--db", str(db), "--rpc-url", devnet["rpc_url"]]) == 0
    assert "3 wrapped assets" in capsys.readouterr().out
    ours, theirs = _tables(db, "base_asset_exposure")[0], _tables(scored_db, "base_asset_exposure")[0]
    assert ours.sort("base_asset").equals(theirs.sort("base_asset"))
