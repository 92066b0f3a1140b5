"""Odd answers never stop a run (issue 22, item 3, beyond tests/test_odd_contracts.py): on its own anvil, real Morpho
Blue lists markets whose oracle answers a price so large that Morpho's own health check overflows (2^256 - 1) or that
no HUGEINT holds the collateral's value (2^200), whose oracle loops until it runs out of gas, answers no data or half
a word; and collateral tokens whose decimals() is 255 or a full word past uint8, whose symbol() is not UTF-8, empty or
5,000 bytes long. A real Aave V3 pool's WBTC feed answers 2^255 - 1. The Compound V3 Comet stand-in (chainrisk's own
Solidity) prices one collateral past 2^256 in its own maths, one at 1e38 price units, and one with a feed that lost its
code. Indexed through the real jobs and scored:

* every market is stored, with its exact amounts, and data_quality names what each odd answer left unknown;
* a borrower whose health the protocol itself cannot tell (Morpho's _isHealthy, Aave's getUserAccountData and
  Comet's isLiquidatable revert on the overflow) is left out of wallet_health, every other wallet equal to the
  chain's own figures;
* the gas burner costs a bounded time: the devnet gives an eth_call the block's gas, as a node gives its cap, and an
  out-of-gas answer is the call's own refusal, never retried as a node's load error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

import chainrisk.devnet
from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.cli import main
from chainrisk.devnet.aave import RESERVES, deploy_aave, deploy_tokens_and_feeds
from chainrisk.devnet.compound_v3 import COMET, deploy_comet
from chainrisk.devnet.liquity_v1 import LiquityPopulation, deploy_liquity, plan_troves, set_price
from chainrisk.devnet.maker import MakerDevnet, VaultPlan, deploy_gems, deploy_maker
from chainrisk.devnet.maker import mint as maker_mint
from chainrisk.devnet.morpho import deploy_morpho, market_id
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.prices import FEED_DECIMALS
from chainrisk.devnet.toolchain import aave_artifact, compiled_contracts, folder_contracts
from chainrisk.errors import UserError
from chainrisk.jobs.chains import index_chains
from chainrisk.jobs.index import index_market
from chainrisk.jobs.run import RunReport
from chainrisk.jobs.score import score
from chainrisk.rpc import RpcClient
from chainrisk.rpc.client import RpcError
from chainrisk.store.db import Store
from chainrisk.units import WAD
from tests.chainops import bare_chain
from tests.databases import copy_of

ODD = folder_contracts(Path(chainrisk.devnet.__file__).parent / "contracts_odd")
BARE, ORACLE = Abi(ODD["BareToken"].abi), Abi(ODD["OddOracle"].abi)
MINTABLE = Abi(aave_artifact("MintableERC20").abi)
FEED = compiled_contracts()["SettableFeed"]
MORPHO = load_abi("morpho-blue", "IMorpho")
POOL = load_abi("aave-v3", "IPool")
TROVE_MANAGER = load_abi("liquity-v1", "ITroveManager")
VAT = load_abi("maker", "Vat")
CONFIGURATOR = load_abi("aave-v3", "IPoolConfigurator")
USD = {"WETH": 2000, "wstETH": 2300, "WBTC": 30_000, "USDC": 1, "DAI": 1, "USDT": 1, "LINK": 7}
LLTV = 86 * 10**16
MAX_UINT = 2**256 - 1
#: 10 dollars of a 18-decimal collateral in 6-decimal loan units, and WETH's 2,000: IOracle prices (1e36-scaled).
TEN_DOLLARS, WETH_PRICE = 10 * 10**24, 2000 * 10**24
#: What replaces each oracle after the borrows: a price (set), or BrokenOracle's mode put over its code.
BURNS_GAS, NO_DATA, HALF_WORD = 1, 2, 3


@dataclass(frozen=True)
class Case:
    name: str
    collateral: str  #: key of the fixture's tokens
    price: int  #: the oracle's price while the borrowers borrow
    then: int | str | None  #: after: a new price, a BrokenOracle mode ("mode:N"), or nothing
    expected: tuple[tuple[str, str], ...]  #: (subject role, kind) rows data_quality must hold
    loan: str = "USDC"  #: key of the fixture's tokens
    supply: int = 10**12  #: what the lender supplies
    irm: str = "kinked"  #: the devnet's KinkedIrm, or "odd": an OddIrm set to IRM_RATE after the borrows
    posted: int = 10**18  #: collateral the borrower posts
    twin: bool = False  #: whether a second wallet posts as much collateral too (and borrows nothing)


#: DAI an Aave whale supplies: a balance past 38 digits, inside the aToken's uint128 scaled balance.
WHALE_DAI = 2 * 10**38
#: A borrow rate a second (WAD) at which Morpho's accrual over the fixture's last minute passes uint128 (its interest
#: ~1e47 units) though every product fits 2^256: toUint128 reverts and the market is frozen.
IRM_RATE = 10**30


#: The Comet stand-in's borrowers: (collateral, units supplied, USDC borrowed, what its feed does afterwards). WETH's
#: price then has 61 digits (1e18 x 1e60 passes 2^256 in Comet's mulPrice: isLiquidatable reverts); WBTC's feed loses
#: its code (getPrice reverts); 10 wstETH at 1e37 are worth 1e38 price units, which Comet's check holds (it answers)
#: but no HUGEINT does; LINK falls so that its borrower is liquidatable, a verdict stored as the chain gives it.
COMET_BORROWERS = {
    "WETH": (10**18, 500, 10**60),
    "WBTC": (10**8, 1_000, "no code"),
    "LINK": (10**20, 300, 3 * 10**8),
    "wstETH": (10**19, 1_000, 10**37),
}


#: What each odd vault answers after the borrows: USDC units per 1e18 shares, totalAssets(), totalSupply().
VAULT_RATES = {"rate vault": (10**50, 2**200, 2**201), "claim vault": (9 * 10**37, 2**200, 10**30)}
#: The claim vault's shares the borrower posts (3e18 x 9e37 / 1e18 = 2.7e38 USDC units: past 2^127).
CLAIM_SHARES = 3 * 10**18


#: 2e32 units supplied first mint 2e38 shares (Morpho's 1e6 virtual shares a unit): past a HUGEINT, inside uint128.
GRIEF = 2 * 10**32


CASES = [
    Case("control", "WETH", WETH_PRICE, None, ()),
    Case("decimals 255", "decimals 255", TEN_DOLLARS, None, (("collateral", "odd_decimals"),)),
    Case("decimals word", "decimals word", TEN_DOLLARS, None, (("collateral", "odd_decimals"),)),
    Case("symbol not utf-8", "symbol not utf-8", TEN_DOLLARS, None, (("collateral", "no_symbol"),)),
    Case("symbol empty", "symbol empty", TEN_DOLLARS, None, (("collateral", "no_symbol"),)),
    Case("symbol long", "symbol long", TEN_DOLLARS, None, ()),
    # Morpho's checked collateral x price overflows: its own health check, so borrow and liquidate, revert.
    # (And 5.8e49 times the tokens' USD prices: oracle_deviates, stop 71.)
    Case(
        "price 2^256 - 1", "WETH", WETH_PRICE, MAX_UINT, (("oracle", "oracle_overflow"), ("oracle", "oracle_deviates"))
    ),
    # 1e18 x 2^200 overflows too; a dust position would not, but its value would pass 38 digits.
    Case("price 2^200", "WETH", WETH_PRICE, 2**200, (("oracle", "oracle_overflow"), ("oracle", "oracle_deviates"))),
    Case("oracle burns gas", "WETH", WETH_PRICE, f"mode:{BURNS_GAS}", (("oracle", "oracle_reverts"),)),
    Case("oracle answers no data", "WETH", WETH_PRICE, f"mode:{NO_DATA}", (("oracle", "oracle_reverts"),)),
    Case("oracle answers half a word", "WETH", WETH_PRICE, f"mode:{HALF_WORD}", (("oracle", "oracle_reverts"),)),
    Case("irm overflows the accrual", "WETH", WETH_PRICE, None, (("irm", "irm_overflow"),), irm="odd"),
    # ERC-4626 vaults' shares as collateral, looked through by the chains job (the market's own figures do not use
    # the vault): one then answers a share price past 38 digits (VAULT_RATES), the other one that fits, at which the
    # borrower's shares claim more than 38 digits of USDC, and totalAssets() past 38 digits.
    Case("vault rate past 38 digits", "rate vault", TEN_DOLLARS, None, ()),
    Case("vault claim past 38 digits", "claim vault", TEN_DOLLARS, None, (), posted=CLAIM_SHARES),
    # Two wallets post 9e37 units each of a token without metadata (each a HUGEINT; the market's sum past 2^127, where
    # a HUGEINT sum in SQL stops with an overflow); a price of 1 (1e-36 loan units a unit) lets the borrower borrow.
    Case(
        "collateral sum past 2^127",
        "big token",
        1,
        None,
        (("collateral", "no_decimals"), ("collateral", "no_symbol")),
        posted=9 * 10**37,
        twin=True,
    ),
    # Anyone can make this market: its shares fit Morpho's uint128 but no HUGEINT; its positions' amounts do.
    Case(
        "shares past 38 digits",
        "WETH",
        WETH_PRICE,
        None,
        (("loan", "amount_overflow"), ("loan", "no_decimals"), ("loan", "no_symbol")),
        loan="grief",
        supply=GRIEF,
    ),
]


#: A value an OSM's uint128 holds, which Spotter.poke turns into a Vat spot of 48 digits (ray).
MAKER_PRICE = 2**127


def _build(rpc: RpcClient) -> dict[str, Any]:
    builder = BlockBuilder(rpc)
    # Maker/Sky first (chainrisk's stand-ins: no registry ships Maker's code): two vaults an ilk opened on the Vat, then
    # ETH-A's OSM brought to MAKER_PRICE through two rounds and the Spotter (hours of chain time, before the rest).
    maker = MakerDevnet(builder, deploy_maker(builder, deploy_gems(builder)), maker_mint)
    maker.open_vaults(
        [
            VaultPlan(f"0x{0x3A0 + 2 * k + j:040x}", name, 20_000, Decimal("2.5"), "vat")
            for k, name in enumerate(maker.d.ilks)
            for j in range(2)
        ]
    )
    maker.set_prices({"ETH-A": MAKER_PRICE})

    def deploy(name: str, *args: Any) -> str:
        return builder.deploy(ODD[name], *args, label=name).lower()

    tokens, feeds = deploy_tokens_and_feeds(
        builder, {r.symbol: r.decimals for r in RESERVES}, {s: p * 10**8 for s, p in USD.items()}
    )
    tokens = {s: a.lower() for s, a in tokens.items()}
    feeds["WBTC"] = deploy("OddOracle", USD["WBTC"] * 10**8)
    feeds["wstETH"] = deploy("OddOracle", USD["wstETH"] * 10**8)
    aave = deploy_aave(builder, tokens, feeds)
    morpho = deploy_morpho(builder)
    odd_tokens = {
        "decimals 255": deploy("WildMetadataToken", 255, b"D255"),
        "decimals word": deploy("WildMetadataToken", 2**200, b"DWORD"),
        "symbol not utf-8": deploy("WildMetadataToken", 18, b"\xff\xfeZ"),
        "symbol empty": deploy("WildMetadataToken", 18, b""),
        "symbol long": deploy("WildMetadataToken", 18, b"X" * 5000),
        "grief": deploy("BareToken"),
        "big token": deploy("BareToken"),
        **{name: deploy("OddVault", tokens["USDC"], 10 * 10**6) for name in VAULT_RATES},
    }
    everything = tokens | odd_tokens
    # Compound V3: the Comet stand-in (chainrisk's own Solidity, from Comet's public interface; no registry ships
    # Compound's bytecode), on the same tokens and feeds of its own.
    comet_symbols = ("USDC", *COMET_BORROWERS)
    comet_feeds = {
        s: builder.deploy(FEED, FEED_DECIMALS, USD[s] * 10**8, f"{s} / USD", label=f"comet feed {s}").lower()
        for s in comet_symbols
    }
    comet = deploy_comet(builder, {s: tokens[s] for s in comet_symbols}, comet_feeds)
    # Liquity V1: the stand-ins (chainrisk's own Solidity; no registry ships Liquity's code), a few troves at $2,000.
    liquity = deploy_liquity(builder, 2000 * WAD)
    troves = LiquityPopulation(builder, liquity, seed=1)
    troves.price = 2000 * WAD
    troves.open_troves(plan_troves(4, seed=1))
    odd_irm = deploy("OddIrm")
    builder.call(DEPLOYER, MORPHO, morpho.morpho, "enableIrm", odd_irm)
    builder.mine()
    markets = []
    for case in CASES:
        oracle = deploy("OddOracle", case.price)
        irm = odd_irm if case.irm == "odd" else morpho.irm.lower()
        params = (everything[case.loan], everything[case.collateral], oracle, irm, LLTV)
        builder.call(DEPLOYER, MORPHO, morpho.morpho, "createMarket", params)
        markets.append((case, params))
    builder.mine()

    lender, borrower, liquidator, twin = (f"0x{k:040x}" for k in (0x1E4D, 0xB0B0, 0x11D0, 0x7717))
    aave_lender, wbtc_user, wsteth_user, whale = (f"0x{k:040x}" for k in (0xA1, 0xA2, 0xA3, 0xA4))
    comet_wallets = {s: f"0x{0xC1 + k:040x}" for k, s in enumerate(("USDC", *COMET_BORROWERS))}

    def mint(token: str, to: str, amount: int) -> None:
        builder.call(DEPLOYER, MINTABLE if token in tokens.values() else BARE, token, "mint", to, amount)

    for case, (loan, collateral, *_) in markets:
        mint(loan, lender, case.supply)
        mint(loan, liquidator, 10**12)
        mint(collateral, borrower, case.posted)
        if case.twin:
            mint(collateral, twin, case.posted)
    mint(tokens["WBTC"], wbtc_user, 10**8)
    mint(tokens["wstETH"], wsteth_user, 10**19)
    mint(tokens["DAI"], whale, WHALE_DAI)
    mint(tokens["USDC"], aave_lender, 10**12)
    mint(tokens["USDC"], comet_wallets["USDC"], 10**12)
    for symbol, (units, _, _) in COMET_BORROWERS.items():
        mint(tokens[symbol], comet_wallets[symbol], units)
    builder.mine()
    for symbol, who in comet_wallets.items():
        builder.call(who, BARE, tokens[symbol], "approve", comet.comet, MAX_UINT)
    for _, (loan, collateral, *_) in markets:
        for who in (lender, borrower, liquidator, twin):
            builder.call(who, BARE, loan, "approve", morpho.morpho, MAX_UINT)
            builder.call(who, BARE, collateral, "approve", morpho.morpho, MAX_UINT)
    builder.call(wbtc_user, BARE, tokens["WBTC"], "approve", aave.pool, MAX_UINT)
    builder.call(wsteth_user, BARE, tokens["wstETH"], "approve", aave.pool, MAX_UINT)
    builder.call(whale, BARE, tokens["DAI"], "approve", aave.pool, MAX_UINT)
    # No supply cap on DAI, as a fork may leave it (a cap of 68.7 billion tokens, Aave's largest, would refuse it).
    builder.call(DEPLOYER, CONFIGURATOR, aave.pool_configurator, "setSupplyCap", tokens["DAI"], 0)
    builder.call(aave_lender, BARE, tokens["USDC"], "approve", aave.pool, MAX_UINT)
    builder.mine()
    for case, params in markets:
        builder.call(lender, MORPHO, morpho.morpho, "supply", params, case.supply, 0, lender, b"")
        builder.call(borrower, MORPHO, morpho.morpho, "supplyCollateral", params, case.posted, borrower, b"")
        if case.twin:
            builder.call(twin, MORPHO, morpho.morpho, "supplyCollateral", params, case.posted, twin, b"")
    builder.call(wbtc_user, POOL, aave.pool, "supply", tokens["WBTC"], 10**8, wbtc_user, 0)
    builder.call(wsteth_user, POOL, aave.pool, "supply", tokens["wstETH"], 10**19, wsteth_user, 0)
    builder.call(whale, POOL, aave.pool, "supply", tokens["DAI"], WHALE_DAI, whale, 0)
    builder.call(aave_lender, POOL, aave.pool, "supply", tokens["USDC"], 10**12, aave_lender, 0)
    for symbol, who in comet_wallets.items():
        units = COMET_BORROWERS[symbol][0] if symbol in COMET_BORROWERS else 10**12
        builder.call(who, COMET, comet.comet, "supply", tokens[symbol], units)
    builder.mine(advance_s=60)
    for case, params in markets:
        limit = case.posted * case.price // 10**36 * LLTV // WAD
        builder.call(borrower, MORPHO, morpho.morpho, "borrow", params, limit // 2, 0, borrower, borrower)
    builder.call(wbtc_user, POOL, aave.pool, "borrow", tokens["USDC"], 5_000 * 10**6, 2, 0, wbtc_user)
    builder.call(wsteth_user, POOL, aave.pool, "borrow", tokens["USDC"], 5_000 * 10**6, 2, 0, wsteth_user)
    for symbol, (_, usdc, _) in COMET_BORROWERS.items():
        builder.call(comet_wallets[symbol], COMET, comet.comet, "withdraw", tokens["USDC"], usdc * 10**6)
    builder.mine(advance_s=60)

    # The breakage: prices past what the maths holds, oracles whose code is replaced by BrokenOracle's.
    for case, (*_, oracle, _irm, _lltv) in markets:
        if isinstance(case.then, int):
            builder.call(DEPLOYER, ORACLE, oracle, "set", case.then, False)
        elif isinstance(case.then, str):
            broken = deploy("BrokenOracle", int(case.then.split(":")[1]))
            rpc.call("anvil_setCode", [oracle, rpc.call("eth_getCode", [broken, "latest"])])
    builder.call(DEPLOYER, Abi(ODD["OddIrm"].abi), odd_irm, "set", IRM_RATE)
    builder.call(DEPLOYER, ORACLE, feeds["WBTC"], "set", 2**255 - 1, False)
    # Under 38 digits, so a price the pool and chainrisk read; but 10 wstETH are then worth 1e38 base units.
    builder.call(DEPLOYER, ORACLE, feeds["wstETH"], "set", 10**37, False)
    for name, answers in VAULT_RATES.items():
        builder.call(DEPLOYER, Abi(ODD["OddVault"].abi), odd_tokens[name], "set", *answers)
    # A fork's PriceFeed gone wrong: Liquity's own getTCR overflows at this price, and every trove operation with it.
    set_price(builder, liquity, 2**200)
    for symbol, (*_, then) in COMET_BORROWERS.items():
        if then == "no code":
            rpc.call("anvil_setCode", [comet_feeds[symbol], "0xfe"])  # every call of it reverts
        else:
            builder.call(DEPLOYER, Abi(FEED.abi), comet_feeds[symbol], "setAnswer", then)
    builder.mine(advance_s=12)
    return {
        "aave": aave,
        "morpho": morpho.morpho.lower(),
        "markets": markets,
        "tokens": everything,
        "wallets": {"lender": lender, "borrower": borrower, "liquidator": liquidator},
        "aave_wallets": {"lender": aave_lender, "wbtc": wbtc_user, "wsteth": wsteth_user, "whale": whale},
        "wbtc_feed": feeds["WBTC"],
        "comet": comet.comet.lower(),
        "liquity": liquity,
        "maker": maker.d,
        "comet_feeds": comet_feeds,
        "comet_wallets": comet_wallets,
        "block": int(rpc.call("eth_blockNumber"), 16),
        "builder": builder,
    }


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with bare_chain(tmp_path_factory.mktemp("odd_answers")) as bare:
        yield _build(bare.rpc) | {"rpc_url": bare.url, "rpc": bare.rpc}


@pytest.fixture(scope="module")
def indexed(chain: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Aave and Morpho indexed through the real job, then scored; the Morpho index's report."""
    db: Path = tmp_path_factory.mktemp("odd_answers_db") / "chainrisk.duckdb"
    aave = chain["aave"]
    index_market("aave-v3", chain["rpc_url"], aave.pool_addresses_provider, db)
    morpho = index_market("morpho-blue", chain["rpc_url"], chain["morpho"], db, options={"usd_oracle": aave.oracle})
    index_market("compound-v3", chain["rpc_url"], chain["comet"], db, options={"usd_oracle": aave.oracle})
    index_market("maker", chain["rpc_url"], chain["maker"].chainlog, db)
    score(db)
    chains = index_chains(chain["rpc_url"], db)
    return {"db": db, "morpho": morpho, "chains": chains}


def _frame(db: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        frame: pl.DataFrame = con.sql(sql).pl()
        return frame


def test_every_market_is_stored_and_each_odd_answer_named(chain: dict[str, Any], indexed: dict[str, Any]) -> None:
    db = indexed["db"]
    ids = {market_id(params): case for case, params in chain["markets"]}
    stored = _frame(db, "SELECT DISTINCT market FROM positions WHERE protocol = 'morpho-blue'")["market"].to_list()
    assert set(stored) == set(ids)
    rows = _frame(db, "SELECT protocol, market, subject, kind, detail FROM data_quality")
    expected = set()
    for case, params in chain["markets"]:
        roles = {"loan": params[0], "collateral": params[1], "oracle": params[2], "irm": params[3]}
        expected |= {(market_id(params), roles[role], kind) for role, kind in case.expected}
    morpho = rows.filter(pl.col("protocol") == "morpho-blue").select("market", "subject", "kind")
    assert set(morpho.iter_rows()) == expected
    aave = rows.filter(pl.col("protocol") == "aave-v3")
    assert set(aave.select("subject", "kind").iter_rows()) == {
        (chain["wbtc_feed"], "oracle_overflow"),  # the price itself past 38 digits
        (chain["tokens"]["wstETH"], "oracle_overflow"),  # a holder's value past 38 digits
        (chain["tokens"]["DAI"], "amount_overflow"),  # a balance past 38 digits
    }
    assert all(d and "\n" not in d for d in rows["detail"].to_list())
    # The long symbol is kept whole; one not UTF-8, or empty, is no symbol (the token's address stands for it).
    symbols = dict(_frame(db, "SELECT DISTINCT asset, symbol FROM positions").iter_rows())
    assert symbols[chain["tokens"]["symbol long"]] == "X" * 5000
    assert symbols[chain["tokens"]["symbol not utf-8"]].startswith("0x")


def test_every_view_answers_over_the_odd_markets(indexed: dict[str, Any]) -> None:
    """Every analysts' view (queries/ and each protocol's staging views) reads whole over a file holding every odd
    market above: no sum, product or cast of theirs overflows on amounts a HUGEINT holds (before, the two 9e37-unit
    collaterals stopped mart_exposure_by_asset: "Overflow in HUGEINT addition"). Read before any later index moves
    the latest snapshot on."""
    with duckdb.connect(str(indexed["db"]), read_only=True) as con:
        views = [r[0] for r in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
        failed = {}
        for view in views:
            try:
                con.sql(f"SELECT * FROM {view}").fetchall()
            except duckdb.Error as exc:
                failed[view] = str(exc).splitlines()[0]
    assert len(views) > 50 and not failed, failed
    # The sum that passes 2^127 is unknown; the others exact (summed in 64-bit halves), as the positions give them.
    sums = _frame(
        indexed["db"],
        "SELECT e.asset, e.collateral_amount, sum(p.collateral_amount::DOUBLE) AS approx FROM mart_exposure_by_asset e "
        "JOIN positions p USING (chain_id, protocol, asset) WHERE e.protocol = 'morpho-blue' GROUP BY ALL",
    )
    unknown = sums.filter(pl.col("collateral_amount").is_null())
    assert unknown["approx"].to_list() == [1.8e38]
    exact = _frame(
        indexed["db"],
        "SELECT asset, sum(collateral_amount) AS total FROM positions WHERE protocol = 'morpho-blue' "
        f"AND asset NOT IN ({', '.join(repr(a) for a in unknown['asset'])}) GROUP BY asset",
    )
    assert dict(sums.drop_nulls("collateral_amount").select("asset", "collateral_amount").iter_rows()) == dict(
        exact.iter_rows()
    )


def test_every_model_runs_over_the_odd_markets(
    indexed: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The risk models read the latest snapshot as the score does: without the borrowers no protocol could rate (before,
    `risk stress` and `risk var` repriced them and stopped with a polars error: a value past Int128 at a shocked
    price). Each model ends with its run written, on a copy of the file."""
    db = str(copy_of(indexed["db"], tmp_path))
    shocks = ["--shock", "WETH=-40%", "--shock", "USDC=-10%"]
    for args in (
        ["risk", "stress", "--window", "ftx-2022", "--step-hours", "24"],
        ["risk", "var", "--scenarios", "300", "--horizons", "24"],
        ["risk", "cascade", *shocks],
        ["risk", "contagion", *shocks],
        ["risk", "optimise"],
    ):
        assert main([*args, "--db", db]) == 0, (args, capsys.readouterr().err)
    with duckdb.connect(db, read_only=True) as con:
        models = {r[0] for r in con.sql("SELECT kind FROM risk_runs").fetchall()}
    assert models == {"stress", "var", "cascade", "contagion", "optimise"}


def test_morpho_figures_equal_the_chain_where_morpho_can_tell(chain: dict[str, Any], indexed: dict[str, Any]) -> None:
    """Exact amounts everywhere; the borrower's health where Morpho's own liquidate() can tell it (it reverts where
    the price overflows its health check or the oracle gives none), equal to _isHealthy at the oracle's price."""
    rpc: RpcClient = chain["rpc"]
    tag = hex(chain["block"])
    db = indexed["db"]
    positions = _frame(db, "SELECT * FROM positions WHERE protocol = 'morpho-blue'")
    health = _frame(db, "SELECT * FROM wallet_health WHERE protocol = 'morpho-blue'")
    borrower, liquidator = chain["wallets"]["borrower"], chain["wallets"]["liquidator"]
    rated = 0
    for case, params in chain["markets"]:
        key = market_id(params)
        raw = rpc.call(*eth_call(chain["morpho"], MORPHO, "position", bytes.fromhex(key[2:]), borrower, block=tag))
        _, borrow_shares, collateral = MORPHO.decode("position", raw)[0]
        rows = positions.filter((pl.col("market") == key) & (pl.col("wallet") == borrower))
        assert int(rows["collateral_amount"].sum()) == collateral == case.posted, case.name
        assert int(rows["debt_amount"].sum()) > 0 and borrow_shares > 0, case.name
        # Morpho's own say: liquidating one unit either goes through, reverts as healthy, or reverts on the price.
        data = MORPHO.encode("liquidate", params, borrower, 1, 0, b"")
        try:
            rpc.call("eth_call", [{"from": liquidator, "to": chain["morpho"], "data": data}, tag])
            verdict = "liquidatable"
        except RpcError as refused:
            verdict = "healthy" if "position is healthy" in refused.message else "cannot tell"
        row = health.filter((pl.col("market") == key) & (pl.col("wallet") == borrower))
        if verdict == "cannot tell":
            assert row.is_empty(), case.name
            # The collateral's value is unknown where the price is; a frozen market's price still values it.
            unvalued = rows.filter(pl.col("asset") == params[1])["collateral_base"].is_null().all()
            assert unvalued == (case.irm != "odd"), case.name
            continue
        price = int(ORACLE.decode("price", rpc.call(*eth_call(params[2], ORACLE, "price", block=tag)))[0])
        value = collateral * price // 10**36
        assert int(row["total_collateral_base"][0]) == value, case.name
        assert (int(row["health_factor_wad"][0]) < WAD) == (verdict == "liquidatable"), case.name
        rated += 1
    # Not rated: the two overflowing prices, the burner, the oracle without data and the one with half a word, and
    # the market whose accrual overflows (liquidate accrues first, and reverts).
    assert rated == len(CASES) - 6


def test_a_market_is_frozen_exactly_where_morpho_s_accrual_reverts(
    chain: dict[str, Any], indexed: dict[str, Any]
) -> None:
    """Morpho's own accrueInterest at the block reverts for the market data_quality calls frozen (irm_overflow) and
    goes through for every other; the frozen market's raw state is stored as Morpho last wrote it."""
    rpc: RpcClient = chain["rpc"]
    tag = hex(chain["block"])
    frozen = set(
        _frame(indexed["db"], "SELECT market FROM data_quality WHERE kind = 'irm_overflow'")["market"].to_list()
    )
    reverted = set()
    for _, params in chain["markets"]:
        data = MORPHO.encode("accrueInterest", params)
        try:
            rpc.call("eth_call", [{"from": DEPLOYER, "to": chain["morpho"], "data": data}, tag])
        except RpcError:
            reverted.add(market_id(params))
    assert frozen == reverted and len(frozen) == 1
    key = next(iter(frozen))
    raw = _frame(indexed["db"], f"SELECT * FROM raw_morpho_blue_markets WHERE market_id = '{key}'")
    state = MORPHO.decode(
        "market", rpc.call(*eth_call(chain["morpho"], MORPHO, "market", bytes.fromhex(key[2:]), block=tag))
    )[0]
    assert (int(raw["total_borrow_assets"][0]), int(raw["last_update"][0])) == (state[2], state[4])


def test_aave_leaves_out_only_the_wallets_it_cannot_rate(chain: dict[str, Any], indexed: dict[str, Any]) -> None:
    """The WBTC borrower, whose getUserAccountData reverts on the price, and the wstETH borrower, whose collateral the
    pool values at 1e38 base units (no HUGEINT holds it), are left out of wallet_health, their amounts stored; the
    lender's figures equal the pool's."""
    rpc: RpcClient = chain["rpc"]
    pool, tag = chain["aave"].pool, hex(chain["block"])
    wallets = chain["aave_wallets"]
    answers = rpc.batch_each([eth_call(pool, POOL, "getUserAccountData", w, block=tag) for w in wallets.values()])
    by_wallet = dict(zip(wallets.values(), answers, strict=True))
    assert by_wallet[wallets["wbtc"]] is None  # the pool's own maths overflows on the price
    health = _frame(indexed["db"], "SELECT * FROM wallet_health WHERE protocol = 'aave-v3'")
    assert wallets["wbtc"] not in health["wallet"].to_list()
    row = health.filter(pl.col("wallet") == wallets["lender"]).row(0, named=True)
    data = POOL.decode("getUserAccountData", by_wallet[wallets["lender"]])
    assert (int(row["total_collateral_base"]), int(row["total_debt_base"])) == (int(data[0]), int(data[1]))
    positions = _frame(indexed["db"], "SELECT * FROM positions WHERE protocol = 'aave-v3'")
    wbtc = positions.filter(pl.col("asset") == chain["tokens"]["WBTC"])
    assert int(wbtc["collateral_amount"][0]) == 10**8 and wbtc["price_usd"].is_null().all()
    assert by_wallet[wallets["wsteth"]] is not None  # the pool can tell this one
    pool_value = int(POOL.decode("getUserAccountData", by_wallet[wallets["wsteth"]])[0])
    assert pool_value == 10**38  # 10 wstETH at 1e37: exactly one past what a HUGEINT holds
    assert wallets["wsteth"] not in health["wallet"].to_list()
    wsteth = positions.filter(pl.col("wallet") == wallets["wsteth"])
    assert wsteth.height == 2 and wsteth["collateral_base"].is_null().all() and wsteth["debt_base"].is_null().all()
    assert int(wsteth.filter(pl.col("asset") == chain["tokens"]["wstETH"])["collateral_amount"][0]) == 10**19
    # The whale's 2e38 DAI: the pool rates it; no positions row holds its balance, and its health is left out.
    assert by_wallet[wallets["whale"]] is not None
    assert wallets["whale"] not in health["wallet"].to_list()
    assert positions.filter(pl.col("wallet") == wallets["whale"]).is_empty()
    liquidations = _frame(indexed["db"], "SELECT DISTINCT wallet FROM raw_aave_v3_liquidations")
    assert wallets["wsteth"] not in liquidations["wallet"].to_list()


def test_comet_leaves_out_only_the_wallets_it_cannot_rate(chain: dict[str, Any], indexed: dict[str, Any]) -> None:
    """On the Comet stand-in: the WETH and WBTC borrowers, for whom Comet's own isLiquidatable reverts (a price past
    2^256 in mulPrice; a feed without code), and the wstETH borrower, whose collateral Comet values at 1e38 price
    units (it answers; no HUGEINT holds that), are left out of wallet_health and of the absorb predictions, their
    amounts stored and their values NULL; the LINK borrower's verdict and figures are the chain's. data_quality names
    each feed and each token."""
    rpc: RpcClient = chain["rpc"]
    comet, tag, wallets = chain["comet"], hex(chain["block"]), chain["comet_wallets"]
    feeds, tokens = chain["comet_feeds"], chain["tokens"]
    answers = rpc.batch_each([eth_call(comet, COMET, "isLiquidatable", w, block=tag) for w in wallets.values()])
    verdicts = {
        symbol: None if raw is None else bool(COMET.decode("isLiquidatable", raw)[0])
        for symbol, raw in zip(wallets, answers, strict=True)
    }
    assert verdicts == {"USDC": False, "WETH": None, "WBTC": None, "LINK": True, "wstETH": False}
    db = indexed["db"]
    issues = _frame(db, "SELECT subject, kind FROM data_quality WHERE protocol = 'compound-v3'")
    assert set(issues.iter_rows()) == {
        (feeds["WETH"], "oracle_overflow"),  # the price itself past 38 digits
        (tokens["WETH"], "oracle_overflow"),  # its holder's value past 2^256 in Comet's own maths
        (feeds["WBTC"], "oracle_reverts"),
        (tokens["wstETH"], "oracle_overflow"),  # a holder's value of exactly 1e38
    }
    health = _frame(db, "SELECT * FROM wallet_health WHERE protocol = 'compound-v3'")
    assert set(health["wallet"].to_list()) == {wallets["USDC"], wallets["LINK"]}
    link = health.filter(pl.col("wallet") == wallets["LINK"]).row(0, named=True)
    assert int(link["health_factor_wad"]) < WAD  # as isLiquidatable says
    positions = _frame(db, "SELECT * FROM positions WHERE protocol = 'compound-v3'")
    for symbol, (units, usdc, _) in COMET_BORROWERS.items():
        mine = positions.filter(pl.col("wallet") == wallets[symbol])
        collateral = mine.filter(pl.col("asset") == tokens[symbol]).row(0, named=True)
        debt = mine.filter(pl.col("asset") == tokens["USDC"]).row(0, named=True)
        assert int(collateral["collateral_amount"]) == units and int(debt["debt_amount"]) >= usdc * 10**6, symbol
        if symbol == "LINK":
            price = int(
                COMET.decode("getPrice", rpc.call(*eth_call(comet, COMET, "getPrice", feeds["LINK"], block=tag)))[0]
            )
            assert int(collateral["collateral_base"]) == units * price // 10**18 == int(link["total_collateral_base"])
        else:  # a value Comet cannot form, or past 38 digits: unknown, not 0; the debt's value is still exact
            assert collateral["collateral_base"] is None and int(debt["debt_base"]) >= usdc * 10**8, symbol
    prices = dict(_frame(db, "SELECT asset, price FROM raw_compound_v3_assets").iter_rows())
    assert prices[tokens["WETH"]] is None and prices[tokens["WBTC"]] is None and prices[tokens["LINK"]] == 3 * 10**8
    absorbs = _frame(db, "SELECT wallet, liquidatable FROM raw_compound_v3_absorbs")
    assert set(absorbs.iter_rows()) == {(wallets["LINK"], True)}


def test_the_chains_job_goes_on_past_figures_of_38_digits(chain: dict[str, Any], indexed: dict[str, Any]) -> None:
    """The chains job goes on past both odd vaults (before, an OverflowError storing the asset graph stopped it):
    the one whose share price has 50 digits is left out of the graph, the one whose price fits is in it (its
    totalAssets() of 61 digits unknown), but the borrower's claim through it, 2.7e38 USDC units, is not followed.
    Both are named in the job's report; the borrower's exposure is to the shares themselves. A sum over two wallets'
    odd collateral past 2^127 is unknown instead of wrapped around."""
    db, report = indexed["db"], indexed["chains"]
    rate, claim = chain["tokens"]["rate vault"], chain["tokens"]["claim vault"]
    assert sorted(report.unfollowed) == sorted(f"ODDV ({vault})" for vault in (rate, claim))
    assert "warning: 2 wrapped asset(s) not looked through" in report.line()
    summary = RunReport(run_id=1, status="ok", markets=1, chains=[report]).summary()
    assert "warning: 2 wrapped asset(s) not looked through: ODDV (0x" in summary
    links = {
        r[0]: r[1:] for r in _frame(db, "SELECT asset, rate_num, total_assets, total_supply FROM asset_links").rows()
    }
    assert rate not in links
    assert links[claim] == (9 * 10**37, None, 10**30)
    borrower = chain["wallets"]["borrower"]
    exposure = dict(
        _frame(db, f"SELECT base_asset, long_amount FROM wallet_exposure WHERE wallet = '{borrower}'").iter_rows()
    )
    assert exposure[rate] == 10**18 and exposure[claim] == CLAIM_SHARES
    # Two wallets' 9e37 units of one token: each exact, the chain-wide sum (past 2^127) unknown, not wrapped around.
    big = chain["tokens"]["big token"]
    held = _frame(db, f"SELECT wallet, long_amount FROM wallet_exposure WHERE base_asset = '{big}'")
    assert sorted(int(a) for a in held["long_amount"]) == [9 * 10**37] * 2
    total = _frame(
        db, f"SELECT collateral_amount, collateral_wallets FROM base_asset_exposure WHERE base_asset = '{big}'"
    )
    assert total.row(0) == (None, 2)
    # What the borrower would have claimed, from the vault itself: past what a HUGEINT holds.
    rpc: RpcClient = chain["rpc"]
    vault = Abi(ODD["OddVault"].abi)
    answer = rpc.call(*eth_call(claim, vault, "convertToAssets", CLAIM_SHARES, block=hex(chain["block"])))
    assert int(vault.decode("convertToAssets", answer)[0]) == 27 * 10**37


def test_maker_leaves_out_only_the_urns_whose_values_pass_38_digits(
    chain: dict[str, Any], indexed: dict[str, Any]
) -> None:
    """ETH-A's OSM at 2^127 (inside its uint128): the Spotter makes the Vat's spot 48 digits, at which the urns' values
    pass what a HUGEINT holds (before, an OverflowError building the frames stopped the Maker index). The spot and
    those values are stored NULL, the urns keep their amounts and their Vat verdicts but have no health row, and
    data_quality names the pip; every other ilk's urns are rated as the Vat rates them."""
    rpc: RpcClient = chain["rpc"]
    maker, db, tag = chain["maker"], indexed["db"], hex(chain["block"])
    eth = maker.ilks["ETH-A"]
    issues = _frame(db, "SELECT market, subject, kind FROM data_quality WHERE protocol = 'maker'")
    assert set(issues.iter_rows()) == {("ETH-A", eth.pip.lower(), "oracle_overflow")}
    ilks = dict(_frame(db, "SELECT ilk, spot FROM raw_maker_ilks").iter_rows())
    assert ilks["ETH-A"] is None and all(v is not None for k, v in ilks.items() if k != "ETH-A")
    urns = _frame(db, "SELECT ilk_hex, urn, ilk, ink, art, safe FROM raw_maker_urns")
    health = set(_frame(db, "SELECT wallet FROM wallet_health WHERE protocol = 'maker'")["wallet"].to_list())
    positions = _frame(db, "SELECT wallet, collateral_amount, collateral_base FROM positions WHERE protocol = 'maker'")
    for ilk_hex, urn, ilk, ink, art, safe in urns.iter_rows():
        (_, rate, spot, _, _) = VAT.decode(
            "ilks", rpc.call(*eth_call(maker.vat, VAT, "ilks", bytes.fromhex(ilk_hex[2:]), block=tag))
        )
        assert safe == (int(ink) * spot >= int(art) * rate), urn  # the Vat's own check, exactly
        held = positions.filter((pl.col("wallet") == urn) & (pl.col("collateral_amount") > 0))
        assert held.height == 1, urn
        if ilk == "ETH-A":
            assert spot >= 10**47 and urn not in health and held["collateral_base"][0] is None
        else:
            assert urn in health and held["collateral_base"][0] is not None
    assert urns.filter(pl.col("ilk") == "ETH-A").height == 2


def test_a_liquity_price_past_its_maths_fails_that_market_in_one_line(
    chain: dict[str, Any], indexed: dict[str, Any]
) -> None:
    """A Liquity PriceFeed answering 2^200 (a fork's feed gone wrong): Liquity's own getTCR reverts, and with it every
    liquidation and trove operation, so no trove can be rated. The index refuses in one line naming the feed and the
    price (before, an OverflowError building the frames), and stores nothing of that market."""
    rpc: RpcClient = chain["rpc"]
    liquity = chain["liquity"]
    with pytest.raises(RpcError, match="overflow"):
        rpc.call(*eth_call(liquity.trove_manager, TROVE_MANAGER, "getTCR", 2**200, block=hex(chain["block"])))
    db = indexed["db"]
    with pytest.raises(UserError) as refused:
        index_market("liquity-v1", chain["rpc_url"], liquity.trove_manager, db)
    line = str(refused.value)
    assert "\n" not in line and liquity.price_feed.lower() in line.lower() and str(2**200) in line
    assert "TroveManager.getTCR, which reverts" in line
    for table in ("positions", "wallet_health", "raw_liquity_v1_troves", "raw_liquity_v1_system"):
        stored = _frame(db, f"SELECT count(*) AS n FROM {table} WHERE market = '{liquity.trove_manager.lower()}'")
        assert stored["n"][0] == 0, table


def test_the_gas_burner_is_one_refusal_not_a_stall(chain: dict[str, Any], indexed: dict[str, Any]) -> None:
    """The node answers the burner out of gas (the devnet's calls run on the block's gas, as a node's on its cap);
    the client takes that as the oracle's refusal at once instead of retrying it as load: the index absorbed no
    RPC error and no timeout (before, it retried the answer as a node's load error until it gave up)."""
    rpc: RpcClient = chain["rpc"]
    burner = next(p[2] for c, p in chain["markets"] if c.name == "oracle burns gas")
    with pytest.raises(RpcError, match=r"(?i)out ?of ?gas"):
        rpc.call(*eth_call(burner, ORACLE, "price", block=hex(chain["block"])))
    faults = indexed["morpho"].faults_absorbed
    assert faults.get("rpc_error", 0) == 0 and faults.get("timeout", 0) == 0, faults


def test_a_steady_run_reads_the_oversized_market_and_account_again(
    chain: dict[str, Any], indexed: dict[str, Any]
) -> None:
    """The market with no raw rows keeps its positions on the next index (read again, not taken from raw rows it
    never stored), equal to Morpho's position() at the new block; the others' raw rows are reused as before."""
    rpc: RpcClient = chain["rpc"]
    db = indexed["db"]
    params = next(p for c, p in chain["markets"] if c.name == "shares past 38 digits")
    key = market_id(params)
    # Interest accrued on chain in the new block, so that market() there is the state the index accrues to.
    builder: BlockBuilder = chain["builder"]
    builder.call(DEPLOYER, MORPHO, chain["morpho"], "accrueInterest", params)
    builder.mine(advance_s=60)
    block = int(rpc.call("eth_blockNumber"), 16)
    index_market("morpho-blue", chain["rpc_url"], chain["morpho"], db, options={"usd_oracle": chain["aave"].oracle})
    # Aave's whale has no raw rows either: the next snapshot reads it again and names it again.
    index_market("aave-v3", chain["rpc_url"], chain["aave"].pool_addresses_provider, db)
    named = _frame(db, "SELECT subject, kind, block_number FROM data_quality WHERE protocol = 'aave-v3'")
    assert (chain["tokens"]["DAI"], "amount_overflow", block) in set(named.iter_rows())
    accounts = _frame(db, "SELECT wallet FROM raw_aave_v3_accounts")["wallet"].to_list()
    assert chain["aave_wallets"]["whale"] not in accounts and chain["aave_wallets"]["lender"] in accounts
    raw = _frame(db, f"SELECT count(*) AS n FROM raw_morpho_blue_markets WHERE market_id = '{key}'")
    assert raw["n"][0] == 0
    lender = chain["wallets"]["lender"]
    state = MORPHO.decode("market", rpc.call(*eth_call(chain["morpho"], MORPHO, "market", bytes.fromhex(key[2:]))))
    shares = MORPHO.decode(
        "position", rpc.call(*eth_call(chain["morpho"], MORPHO, "position", bytes.fromhex(key[2:]), lender))
    )[0][0]
    assert shares >= 2**127  # what no HUGEINT holds
    total_assets, total_shares = state[0][0], state[0][1]
    stored = _frame(
        db, f"SELECT supplied_amount, block_number FROM positions WHERE market = '{key}' AND wallet = '{lender}'"
    )
    assert int(stored["block_number"][0]) == block
    # The frozen market's state stays as Morpho last wrote it: its version carried, not a new one a run.
    frozen = market_id(next(p for c, p in chain["markets"] if c.irm == "odd"))
    versions = _frame(db, f"SELECT count(*) AS n FROM history.raw_morpho_blue_markets WHERE market_id = '{frozen}'")
    assert versions["n"][0] == 1
    # ... and rebuilt as of the new block, its accrued totals are still Morpho's own, not accrued past uint128.
    with Store(db, read_only=True) as store:
        rows = store.raw_as_of("raw_morpho_blue_markets", 31337, chain["morpho"], block)
    row = rows.filter(pl.col("market_id") == frozen).row(0, named=True)
    assert int(row["accrued_total_borrow_assets"]) == int(row["total_borrow_assets"])
    # MorphoBalancesLib's supply assets: the shares at the market's accrued totals, rounded down.
    assert int(stored["supplied_amount"][0]) == shares * (total_assets + 1) // (total_shares + 10**6)
