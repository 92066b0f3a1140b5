"""Moving the devnet's oracles and reading each protocol's own verdicts, for tests that check predictions on chain."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from eth_utils.crypto import keccak

from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.devnet.node import DEPLOYER, BlockBuilder, free_port, start_anvil, stop_process
from chainrisk.devnet.toolchain import aave_artifact, compiled_contracts
from chainrisk.rpc import RpcClient
from chainrisk.units import WAD

FEED = Abi(compiled_contracts()["SettableFeed"].abi)
RATE_FEED = Abi(compiled_contracts()["RateFeed"].abi)
POOL = load_abi("aave-v3", "IPool")
ERC20 = load_abi("erc20", "IERC20Detailed")
MORPHO = load_abi("morpho-blue", "IMorpho")
ORACLE = load_abi("morpho-blue", "IOracle")
#: Morpho Blue SharesMathLib's virtual shares and assets.
VIRTUAL_SHARES, VIRTUAL_ASSETS = 10**6, 1


@dataclass(frozen=True)
class BareChain:
    url: str
    rpc: RpcClient
    pid: int  #: anvil's process


@contextmanager
def bare_chain(folder: Path) -> Iterator[BareChain]:
    """An empty anvil of its own (chain 31337, a free port, its log in `folder`), stopped on leaving: for tests that
    build their own chain state instead of sharing the devnet."""
    port = free_port()
    process = start_anvil(port, 31337, folder / "anvil.log", detach=False)
    try:
        url = f"http://127.0.0.1:{port}"
        with RpcClient(url) as rpc:
            yield BareChain(url, rpc, process.pid)
    finally:
        stop_process(process.pid)


@contextmanager
def sandbox(rpc: RpcClient) -> Iterator[None]:
    """Whatever happens inside is rolled back (anvil snapshot), so the shared devnet stays as it was."""
    snapshot = rpc.call("evm_snapshot")
    try:
        yield
    finally:
        assert rpc.call("evm_revert", [snapshot]) is True


def as_json(value: Any) -> Any:
    """An ABI answer as a vectors file holds it (JSON): tuples as lists, bytes as hex, addresses lower-case."""
    if isinstance(value, (list, tuple)):
        return [as_json(v) for v in value]
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value.lower() if isinstance(value, str) else value


def block_timestamp(rpc: RpcClient, block: int) -> int:
    return int(rpc.call("eth_getBlockByNumber", [hex(block), False])["timestamp"], 16)


def feed_answers(rpc: RpcClient, devnet: dict[str, Any]) -> dict[str, int]:
    """Every reserve feed's current answer (8 decimals); a derived feed's (wstETH) as its RateFeed gives it."""
    reserves = devnet["aave_v3"]["reserves"]
    raw = rpc.batch([eth_call(r["feed"], FEED, "latestAnswer") for r in reserves.values()])
    return {s: int(FEED.decode("latestAnswer", x)[0]) for s, x in zip(reserves, raw, strict=True)}


def feed_address(devnet: dict[str, Any], symbol: str) -> str:
    """The USD feed of `symbol`: a settable base feed (WETH, stETH, ...) or a derived one (wstETH, cvUSDC)."""
    derived = devnet["derived_feeds"]
    return str(derived[symbol]["address"] if symbol in derived else devnet["feeds"][symbol])


def collateral_feed(devnet: dict[str, Any], market: dict[str, Any]) -> str:
    """Symbol of the feed a Morpho market's oracle reads for its collateral, as `set_feeds` takes it: an aToken's
    underlying's (the devnet prices aWETH 1:1 with WETH, as real oracles do), else the collateral's own."""
    a_tokens: dict[str, str] = {r["a_token"].lower(): s for s, r in devnet["aave_v3"]["reserves"].items()}
    return a_tokens.get(market["collateral_token"].lower(), str(market["collateral_symbol"]))


def base_answers(rpc: RpcClient, devnet: dict[str, Any], answers: dict[str, int]) -> dict[str, int]:
    """The base feed answers that give `answers`, which may name base feeds (WETH, stETH, ...) and derived ones
    (wstETH, cvUSDC): a derived feed answers floor(base x rate / scale) at the wrapper's rate now, so its wanted
    answer x becomes the base answer b with floor(b x rate / scale) = x where one exists; where none does (the
    rate takes b past x in one unit), the smallest b above, and the derived answer lands one unit above x."""
    derived = devnet["derived_feeds"]
    bases = {s: a for s, a in answers.items() if s not in derived}
    wanted = {s: a for s, a in answers.items() if s in derived}
    raw = rpc.batch([eth_call(derived[s]["address"], RATE_FEED, fn) for s in wanted for fn in ("rate", "scale")])
    for k, (symbol, answer) in enumerate(wanted.items()):
        rate, scale = (int(RATE_FEED.decode(fn, raw[2 * k + j])[0]) for j, fn in enumerate(("rate", "scale")))
        base = derived[symbol]["base"]
        low = answer * scale // rate
        value = low if low * rate // scale == answer else low + 1
        if base in bases and bases[base] != value:
            raise ValueError(f"{symbol} at {answer} needs {base} at {value}, but {base} is asked at {bases[base]}")
        bases[base] = value
    return bases


def set_feeds(rpc: RpcClient, devnet: dict[str, Any], answers: dict[str, int], timestamp: int) -> None:
    """New answers for the named feeds at `timestamp`, after every Morpho market's pending interest is accrued at
    that same timestamp, so `market()` then holds the totals the snapshot's own accrual gives (two blocks).

    Base feeds (devnet["feeds"]) are set as asked. A derived feed (wstETH, cvUSDC: base feed x wrapper rate) has
    no answer of its own: its base feed is set to the answer that makes it the one asked (`base_answers`), which
    can land one unit above the asked answer where the rate's rounding allows no exact hit. The rates are read
    after the accrual: the vault's share price moves with its market's stored totals."""
    builder = BlockBuilder(rpc, timestamp=timestamp)
    for market in devnet["morpho_blue"]["markets"]:
        builder.call(DEPLOYER, MORPHO, devnet["morpho_blue"]["morpho"], "accrueInterest", morpho_params(market))
    builder.mine(0)
    for symbol, answer in sorted(base_answers(rpc, devnet, answers).items()):
        builder.call(DEPLOYER, FEED, devnet["feeds"][symbol], "setAnswer", answer)
    builder.mine(0)


def morpho_params(market: dict[str, Any]) -> tuple[str, str, str, str, int]:
    return (market["loan_token"], market["collateral_token"], market["oracle"], market["irm"], int(market["lltv"]))


def aave_health(rpc: RpcClient, devnet: dict[str, Any], wallets: list[str]) -> dict[str, tuple[int, ...]]:
    """getUserAccountData of each wallet: (collateral, debt, available, threshold, ltv, health factor)."""
    pool = devnet["aave_v3"]["pool"]
    raw = rpc.batch([eth_call(pool, POOL, "getUserAccountData", w) for w in wallets])
    return {w: POOL.decode("getUserAccountData", r) for w, r in zip(wallets, raw, strict=True)}


def borrowers(positions: pl.DataFrame) -> tuple[list[str], list[tuple[str, str]]]:
    """The snapshot's Aave borrowers, and its Morpho borrowers as (market id, wallet) pairs, sorted."""
    owing = positions.filter(pl.col("debt_amount") > 0)
    aave = sorted(set(owing.filter(pl.col("protocol") == "aave-v3")["wallet"]))
    morpho = sorted(set(owing.filter(pl.col("protocol") == "morpho-blue").select("market", "wallet").iter_rows()))
    return aave, morpho


def morpho_unhealthy(rpc: RpcClient, devnet: dict[str, Any], borrowers: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """(market id, wallet) pairs Morpho's `_isHealthy` rejects, from the contract's state and oracle: borrowed
    (toAssetsUp of the shares) > collateral x price / 1e36 x lltv (mulDivDown, wMulDown)."""
    morpho = devnet["morpho_blue"]["morpho"]
    markets = {m["market_id"]: m for m in devnet["morpho_blue"]["markets"]}
    ids = sorted({market for market, _ in borrowers})
    raw = rpc.batch(
        [eth_call(morpho, MORPHO, "market", i) for i in ids]
        + [eth_call(markets[i]["oracle"], ORACLE, "price") for i in ids]
    )
    state = {i: MORPHO.decode("market", raw[k])[0] for k, i in enumerate(ids)}
    price = {i: ORACLE.decode("price", raw[len(ids) + k])[0] for k, i in enumerate(ids)}
    raw_positions = rpc.batch([eth_call(morpho, MORPHO, "position", m, w) for m, w in borrowers])
    unhealthy = set()
    for (market, wallet), item in zip(borrowers, raw_positions, strict=True):
        _, shares, collateral = MORPHO.decode("position", item)[0]
        total_assets, total_shares = state[market][2], state[market][3]
        borrowed = -(-shares * (total_assets + VIRTUAL_ASSETS) // (total_shares + VIRTUAL_SHARES))
        allowed = collateral * price[market] // 10**36 * int(markets[market]["lltv"]) // WAD
        if borrowed > allowed:
            unhealthy.add((market, wallet))
    return unhealthy


DATA_PROVIDER = load_abi("aave-v3", "AaveProtocolDataProvider")
MINTABLE = Abi(aave_artifact("MintableERC20").abi)
MAX_UINT = 2**256 - 1
LIQUIDATE_TOPIC = "0x" + keccak(text="Liquidate(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)").hex()


def liquidate_aave_fully(rpc: RpcClient, devnet: dict[str, Any], wallets: list[str], timestamp: int) -> dict[str, int]:
    """Liquidates each wallet with the keeper (largest collateral against largest debt, repeated) until the pool
    sees it healthy or no collateral is left; returns the debt left (base currency, 8 decimals) of every wallet
    whose collateral is gone: the bad debt the chain holds."""
    aave, keeper = devnet["aave_v3"], devnet["keeper"]
    reserves = aave["reserves"]
    symbols = list(reserves)
    prices = feed_answers(rpc, devnet)
    builder = BlockBuilder(rpc, timestamp=timestamp)
    for _ in range(8):
        data = aave_health(rpc, devnet, wallets)
        open_ = [w for w in wallets if data[w][0] > 0 and data[w][1] > 0 and data[w][5] < WAD]
        if not open_:
            break
        calls = [
            eth_call(aave["data_provider"], DATA_PROVIDER, "getUserReserveData", reserves[s]["asset"], w)
            for w in open_
            for s in symbols
        ]
        raw = iter(rpc.batch(calls))
        for wallet in open_:
            collateral: dict[str, float] = {}
            debt: dict[str, float] = {}
            for symbol in symbols:
                row = DATA_PROVIDER.decode("getUserReserveData", next(raw))
                usd_per_unit = prices[symbol] / 10 ** reserves[symbol]["decimals"]
                if row[8] and row[0] > 0:
                    collateral[symbol] = row[0] * usd_per_unit
                if row[1] + row[2] > 0:
                    debt[symbol] = (row[1] + row[2]) * usd_per_unit
            if not collateral or not debt:
                continue
            seize, repay = max(collateral, key=collateral.__getitem__), max(debt, key=debt.__getitem__)
            units = int(debt[repay] / prices[repay] * 10 ** reserves[repay]["decimals"])
            builder.call(keeper, MINTABLE, reserves[repay]["asset"], "mint", 2 * units + 10)
            builder.call(
                keeper,
                POOL,
                aave["pool"],
                "liquidationCall",
                reserves[seize]["asset"],
                reserves[repay]["asset"],
                wallet,
                MAX_UINT,
                False,
                required=False,
            )
        builder.mine(0)
    data = aave_health(rpc, devnet, wallets)
    return {w: data[w][1] for w in wallets if data[w][0] == 0 and data[w][1] > 0}


def liquidate_morpho_fully(
    rpc: RpcClient, devnet: dict[str, Any], borrowers: list[tuple[str, str]], timestamp: int
) -> dict[tuple[str, str], int]:
    """Tries to seize all the collateral of every borrower: Morpho refuses a healthy position and one whose
    collateral over the incentive exceeds its debt, and otherwise books the debt left as bad debt. Returns the
    bad debt its Liquidate events report, in loan token units, per (market id, wallet)."""
    morpho, keeper = devnet["morpho_blue"]["morpho"], devnet["keeper"]
    markets = {m["market_id"]: m for m in devnet["morpho_blue"]["markets"]}
    builder = BlockBuilder(rpc, timestamp=timestamp)
    raw = rpc.batch([eth_call(morpho, MORPHO, "position", m, w) for m, w in borrowers])
    for (market, wallet), item in zip(borrowers, raw, strict=True):
        _, shares, collateral = MORPHO.decode("position", item)[0]
        if shares and collateral:
            params = morpho_params(markets[market])
            builder.call(keeper, MINTABLE, params[0], "mint", 10**30)
            builder.call(keeper, MORPHO, morpho, "liquidate", params, wallet, collateral, 0, b"", required=False)
    bad: dict[tuple[str, str], int] = {}
    for receipt in builder.mine(0):
        for log in receipt.logs:
            if log["topics"][0] == LIQUIDATE_TOPIC:
                # Data words: repaidAssets, repaidShares, seizedAssets, badDebtAssets, badDebtShares.
                bad_assets = int(log["data"][2 + 64 * 3 : 2 + 64 * 4], 16)
                if bad_assets:
                    bad[(log["topics"][1], "0x" + log["topics"][3][-40:])] = bad_assets
    return bad


def assert_reserve_totals_equal_the_chain(rpc: RpcClient, db: Path) -> int:
    """Every stored reserve's totals (raw_aave_v3_reserves: total_supplied, total_variable_debt, total_stable_debt)
    equal what its aToken's and debt tokens' totalSupply() answer at the row's block; returns how many reserves
    hold some debt (a check that the comparison is not of zeros)."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT symbol, block_number, a_token, variable_debt_token, stable_debt_token, total_supplied, "
            "total_variable_debt, total_stable_debt FROM raw_aave_v3_reserves ORDER BY reserve_id"
        ).fetchall()
    assert rows
    calls = [
        eth_call(token, ERC20, "totalSupply", block=hex(block))
        for _, block, *tokens, _, _, _ in rows
        for token in tokens
    ]
    answers = iter(rpc.batch_each(calls))
    with_debt = 0
    for symbol, _, _, _, stable_token, supplied, variable, stable in rows:
        chain = [ERC20.decode("totalSupply", next(answers))[0] for _ in range(2)]
        stable_answer = next(answers)
        stable_chain = ERC20.decode("totalSupply", stable_answer)[0] if stable_answer not in (None, "0x") else 0
        assert (int(supplied), int(variable)) == (chain[0], chain[1]), symbol
        assert int(stable) == (stable_chain if stable_token != "0x" + "0" * 40 else 0), symbol
        with_debt += int(variable) > 0
    return with_debt


STRATEGY_V1 = load_abi("aave-v3", "IDefaultInterestRateStrategy")
STRATEGY_V2 = load_abi("aave-v3", "IDefaultInterestRateStrategyV2")
#: The aToken 3.0.2's strategy is told of: it reads that address's balance of the underlying as the available
#: liquidity (plus `liquidityAdded`), so the helper reads it too (a devnet token may hold some there).
EMPTY = "0x00000000000000000000000000000000c0ffee01"


def assert_rate_curves_equal_the_strategies(rpc: RpcClient, db: Path) -> int:
    """Every stored reserve's interest rate curve, through chainrisk's variable_borrow_rate, gives exactly the variable
    borrow rate its strategy's own calculateInterestRates answers at borrow usage ratios across the curve (0, under,
    at and over the optimum, 100 %): 3.1+'s V2 from the virtual balance it is given, 3.0's from a liquidity added to an
    empty aToken. Returns how many (reserve, point) pairs were compared."""
    import duckdb

    from chainrisk.protocols.aave_v3.maths import borrow_usage_ratio, variable_borrow_rate

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT asset, interest_rate_strategy, optimal_usage_ratio, base_variable_borrow_rate, "
            "variable_rate_slope1, variable_rate_slope2, block_number FROM raw_aave_v3_reserves"
        ).fetchall()
    assert rows
    total = 10**24 + 12_345
    compared = 0
    for asset, strategy, *curve_values, block in rows:
        assert None not in curve_values, asset
        optimal, base, slope1, slope2 = (int(v) for v in curve_values)
        at_optimum = optimal * total // 10**27
        debts = [0, 1, total // 3, at_optimum - 1, at_optimum, at_optimum + 1, total * 97 // 100, total]
        v2 = rpc.batch_each([eth_call(strategy, STRATEGY_V2, "getInterestRateData", asset, block=hex(block))])[0]
        calls = []
        for debt in debts:
            liquidity = total - debt
            if v2 not in (None, "0x"):
                given: tuple[Any, ...] = (0, 0, 0, debt, 0, asset, True, liquidity)
                calls.append(eth_call(strategy, STRATEGY_V2, "calculateInterestRates", given, block=hex(block)))
            else:
                given = (0, liquidity, 0, 0, debt, 0, 0, asset, EMPTY)
                calls.append(eth_call(strategy, STRATEGY_V1, "calculateInterestRates", given, block=hex(block)))
        abi = STRATEGY_V2 if v2 not in (None, "0x") else STRATEGY_V1
        held = (
            0
            if abi is STRATEGY_V2
            else ERC20.decode("balanceOf", rpc.call(*eth_call(asset, ERC20, "balanceOf", EMPTY)))[0]
        )
        for debt, raw in zip(debts, rpc.batch(calls), strict=True):
            chain = abi.decode("calculateInterestRates", raw)[-1]
            ours = variable_borrow_rate((optimal, base, slope1, slope2), borrow_usage_ratio(debt, total - debt + held))
            assert ours == chain, (asset, debt)
            compared += 1
    return compared


def assert_supply_cap_headroom_is_exact(
    rpc: RpcClient, market: dict[str, Any], asset: str, decimals: int, folder: Path
) -> None:
    """With `asset`'s supply cap set just above what the pool will hold against it a day on (in a sandbox), the
    stored figures worked out for that block's time (the accrued columns, chainrisk.protocols.aave_v3.accrual) give
    its headroom exactly: a supply of it in that block passes ValidationLogic.validateSupply, one unit more reverts
    (SUPPLY_CAP_EXCEEDED). The reserve's state is then a day old, so the treasury's share accrued since counts."""
    import duckdb

    from chainrisk.jobs.index import index_aave_v3
    from chainrisk.protocols.aave_v3 import accrual

    mintable = Abi(aave_artifact("MintableERC20").abi)
    configurator = load_abi("aave-v3", "IPoolConfigurator")
    supplier, unit, asset = "0x" + "5e" * 20, 10**decimals, asset.lower()

    def accrued(db: Path, at: int) -> dict[str, Any]:
        with duckdb.connect(str(db), read_only=True) as con:
            rows = con.sql("SELECT * FROM raw_aave_v3_reserves").pl()
        found: dict[str, Any] = dict(zip(rows["asset"], accrual.accrue(accrual.RESERVES, rows, at), strict=True))[asset]
        return found

    for extra in (0, 1):
        with sandbox(rpc):
            head = rpc.call("eth_getBlockByNumber", ["latest", False])
            builder = BlockBuilder(rpc, timestamp=int(head["timestamp"], 16))
            at = builder.timestamp + 12 + 86_400  # the supply's block: a day after the cap's
            before = folder / f"before-{extra}.duckdb"
            index_aave_v3(rpc.url, market["pool_addresses_provider"], before, confirmations=0)
            cap = accrued(before, at)["supply_cap_used"] // unit + 2  # two whole tokens above what it will hold
            builder.call(DEPLOYER, configurator, market["pool_configurator"], "setSupplyCap", asset, cap)
            builder.call(supplier, mintable, asset, "mint", 10**6 * unit)
            builder.call(supplier, ERC20, asset, "approve", market["pool"], 10**6 * unit)
            builder.mine(12)
            capped = folder / f"capped-{extra}.duckdb"
            index_aave_v3(rpc.url, market["pool_addresses_provider"], capped, confirmations=0)
            headroom = accrued(capped, at)["supply_cap_headroom"]
            assert unit < headroom <= 2 * unit, headroom
            builder.call(supplier, POOL, market["pool"], "supply", asset, headroom + extra, supplier, 0, required=False)
            receipts = builder.mine(86_400)
            assert builder.timestamp == at and receipts[-1].ok is (not extra), (extra, headroom)
