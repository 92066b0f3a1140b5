"""Odd contracts never stop a run (issue 22, item 3): on its own anvil, real Morpho Blue and a real Aave V3 pool list
tokens without decimals() or symbol(), with a bytes32 symbol, a token whose every call reverts, a self-destructed
token, oracles that revert or answer zero (and one self-destructed), markets without oracle or IRM and one whose IRM
is gone. Indexed through the real job and `chainrisk run`:

* every market is stored, and the exact figures equal the chain's own views (Morpho position() and market() at the
  block, _isHealthy from the oracle's price(); Aave getUserAccountData);
* USD is NULL exactly where a price or decimals are unknown, and a wallet whose health the protocol itself cannot tell
  is left out of wallet_health;
* data_quality names each odd contract, the run summary warns, and the dashboard's Overview lists the markets;
* the risk commands run past them: VaR and replays leave out (and name) what no price series moves, contagion and
  optimise go on past tokens without decimals() and markets without any USD price.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

import chainrisk.devnet
from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.cli import main
from chainrisk.dashboard.pages import PAGES
from chainrisk.devnet.aave import RESERVES, deploy_aave, deploy_tokens_and_feeds
from chainrisk.devnet.morpho import IRM_YEARLY, SECONDS_PER_YEAR, deploy_morpho, market_id
from chainrisk.devnet.node import DEPLOYER, BlockBuilder
from chainrisk.devnet.toolchain import aave_artifact, compiled_contracts, folder_contracts
from chainrisk.jobs.index import index_market
from chainrisk.jobs.risk import RiskSettings, latest_positions, stored_graph, with_price_series
from chainrisk.jobs.score import score
from chainrisk.risk.calibration import DEFAULT_SERIES, load_price_panel
from chainrisk.rpc import RpcClient
from chainrisk.store.views import query_sql
from chainrisk.units import WAD
from tests.chainops import bare_chain
from tests.test_app import assert_clean, open_page
from tests.webhooks import Hooks

ODD = folder_contracts(Path(chainrisk.devnet.__file__).parent / "contracts_odd")
BARE, BYTES32, BREAKABLE, ORACLE = (
    Abi(ODD[n].abi) for n in ("BareToken", "Bytes32Token", "BreakableToken", "OddOracle")
)
MINTABLE = Abi(aave_artifact("MintableERC20").abi)
MORPHO = load_abi("morpho-blue", "IMorpho")
POOL = load_abi("aave-v3", "IPool")
APP = str(Path(__file__).resolve().parent.parent / "app.py")
ZERO = "0x" + "0" * 40
LLTV = 86 * 10**16
#: USD prices, 8 decimals, of the Aave reserves (and so of the Morpho tokens the AaveOracle knows).
USD = {"WETH": 2000, "wstETH": 2300, "WBTC": 30_000, "USDC": 1, "DAI": 1, "USDT": 1, "LINK": 7}
#: Every live Morpho oracle is cut by this much in the last block: the borrowers at 99 % of their limit go under.
PRICE_CUT = 0.95
DAY = 86_400


@dataclass(frozen=True)
class OddMarket:
    """One Morpho market of the fixture and what is odd about it."""

    name: str  #: how the tests call it
    loan: str  #: loan token
    collateral: str  #: collateral token
    oracle: str  #: IOracle (or zero)
    irm: str  #: IRM (or zero)
    loan_decimals: int  #: the loan token's economic decimals (whether or not it answers them)
    price: int  #: oracle price at set-up, 1e36-scaled
    #: (subject, kind) rows data_quality must hold for it
    expected: tuple[tuple[str, str], ...]

    @property
    def params(self) -> tuple[str, str, str, str, int]:
        return (self.loan, self.collateral, self.oracle, self.irm, LLTV)

    @property
    def market_id(self) -> str:
        return market_id(self.params)


def _deploy(builder: BlockBuilder, name: str, *args: Any) -> str:
    return builder.deploy(ODD[name], *args, label=name).lower()


def _oracle_price(usd_collateral: int, usd_loan: int, collateral_decimals: int, loan_decimals: int) -> int:
    """IOracle.price(): loan units per collateral unit, times 1e36."""
    return int(usd_collateral * 10 ** (36 + loan_decimals - collateral_decimals)) // int(usd_loan)


def _build(rpc: RpcClient) -> dict[str, Any]:
    """Aave with odd reserves, Morpho with odd markets, a small population, then the breakage, in one final block."""
    builder = BlockBuilder(rpc)
    symbols = {r.symbol: r.decimals for r in RESERVES}
    tokens, feeds = deploy_tokens_and_feeds(builder, symbols, {s: p * 10**8 for s, p in USD.items()})
    tokens = {s: a.lower() for s, a in tokens.items()}
    # Aave's odd reserves: LINK answers a bytes32 symbol, USDT has no metadata at all, WBTC's feed will revert and
    # DAI's token will lose its code. The pool's configuration holds each reserve's decimals.
    tokens["LINK"] = _deploy(builder, "Bytes32Token", b"LINK".ljust(32, b"\0"), 18)
    tokens["USDT"] = _deploy(builder, "BareToken")
    feeds["WBTC"] = _deploy(builder, "OddOracle", USD["WBTC"] * 10**8)
    aave = deploy_aave(builder, tokens, feeds)

    morpho = deploy_morpho(builder)
    base, slope1, slope2, kink = IRM_YEARLY
    gone_irm = builder.deploy(
        compiled_contracts()["KinkedIrm"],
        *(round(x * WAD / SECONDS_PER_YEAR) for x in (base, slope1, slope2)),
        round(kink * WAD),
        label="KinkedIrm (to be self-destructed)",
    ).lower()
    builder.call(DEPLOYER, MORPHO, morpho.morpho, "enableIrm", ZERO)
    builder.call(DEPLOYER, MORPHO, morpho.morpho, "enableIrm", gone_irm)
    builder.mine()
    irm = morpho.irm.lower()
    odd = {
        "bare collateral": _deploy(builder, "BareToken"),
        "mkr": _deploy(builder, "Bytes32Token", b"MKR".ljust(32, b"\0"), 18),
        "bare loan": _deploy(builder, "BareToken"),
        "breakable loan": _deploy(builder, "BreakableToken", "BRK", 6),
        "gone collateral": builder.deploy(aave_artifact("MintableERC20"), "Gone", "GONE", 18, label="GONE").lower(),
        # Plain tokens Aave does not list: the USD oracle prices neither.
        "unlisted loan": builder.deploy(aave_artifact("MintableERC20"), "Unlisted", "UNL", 6, label="UNL").lower(),
        "unlisted collateral": builder.deploy(aave_artifact("MintableERC20"), "Other", "OTH", 18, label="OTH").lower(),
    }
    weth, usdc = tokens["WETH"], tokens["USDC"]
    weth_usdc = _oracle_price(USD["WETH"], 1, 18, 6)
    # (name, loan, collateral, loan decimals, price, oracle kind, irm, expected data_quality kinds by subject role)
    specs: list[tuple[str, str, str, int, int, str, str, tuple[tuple[str, str], ...]]] = [
        ("control", usdc, weth, 6, weth_usdc, "live", irm, ()),
        (
            "no decimals",
            usdc,
            odd["bare collateral"],
            6,
            _oracle_price(10, 1, 18, 6),
            "live",
            irm,
            (("collateral", "no_decimals"), ("collateral", "no_symbol")),
        ),
        (
            "bytes32 symbol",
            usdc,
            odd["mkr"],
            6,
            _oracle_price(1500, 1, 18, 6),
            "live",
            irm,
            (("collateral", "bytes32_symbol"),),
        ),
        (
            "loan without decimals",
            odd["bare loan"],
            weth,
            18,
            _oracle_price(USD["WETH"], 1, 18, 18),
            "live",
            irm,
            (("loan", "no_decimals"), ("loan", "no_symbol")),
        ),
        ("token reverts", odd["breakable loan"], weth, 6, weth_usdc, "live", irm, (("loan", "token_reverts"),)),
        (
            "token gone",
            usdc,
            odd["gone collateral"],
            6,
            _oracle_price(5, 1, 18, 6),
            "live",
            irm,
            (("collateral", "no_code"),),
        ),
        ("oracle reverts", usdc, weth, 6, weth_usdc, "reverts", irm, (("oracle", "oracle_reverts"),)),
        ("oracle zero", usdc, weth, 6, weth_usdc, "zero", irm, (("oracle", "oracle_zero"),)),
        ("oracle gone", usdc, weth, 6, weth_usdc, "gone", irm, (("oracle", "no_code"),)),
        ("no oracle", usdc, weth, 6, weth_usdc, "none", irm, ((ZERO, "no_oracle"),)),
        ("no irm", usdc, weth, 6, weth_usdc, "live", ZERO, ((ZERO, "no_irm"),)),
        (
            "no usd price",
            odd["unlisted loan"],
            odd["unlisted collateral"],
            6,
            _oracle_price(3, 1, 18, 6),
            "live",
            irm,
            (("usd oracle", "no_usd_price"),),
        ),
        ("irm gone", usdc, weth, 6, weth_usdc, "live", gone_irm, (("irm", "no_code"),)),
    ]
    markets: list[OddMarket] = []
    oracle_kinds: dict[str, str] = {}
    for name, loan, collateral, loan_decimals, price, oracle_kind, market_irm, expected in specs:
        oracle = ZERO if oracle_kind == "none" else _deploy(builder, "OddOracle", price)
        roles = {
            "loan": loan,
            "collateral": collateral,
            "oracle": oracle,
            "irm": market_irm,
            "usd oracle": aave.oracle.lower(),
        }
        rows = tuple((roles.get(role, role), kind) for role, kind in expected)
        markets.append(OddMarket(name, loan, collateral, oracle, market_irm, loan_decimals, price, rows))
        oracle_kinds[name] = oracle_kind
        builder.call(DEPLOYER, MORPHO, morpho.morpho, "createMarket", markets[-1].params)
    builder.mine()

    def mint(token: str, to: str, amount: int) -> None:
        builder.call(
            DEPLOYER,
            BARE if token in odd.values() or token in (tokens["LINK"], tokens["USDT"]) else MINTABLE,
            token,
            "mint",
            to,
            amount,
        )

    def approve(who: str, token: str, spender: str) -> None:
        builder.call(who, BARE, token, "approve", spender, 2**256 - 1)

    # Morpho: a lender, a borrower at 40 % of its limit and one at 99 % in every market (none without an oracle:
    # Morpho's borrow checks health with it), a liquidator holding every loan token.
    lender, safe, tight, liquidator = (f"0x{k:040x}" for k in (0x1E4D, 0x5AFE, 0x7164, 0x11D0))
    for m in markets:
        mint(m.loan, lender, 10**6 * 10**m.loan_decimals)
        mint(m.loan, liquidator, 10**6 * 10**m.loan_decimals)
        mint(m.collateral, safe, 10**18)
        mint(m.collateral, tight, 10**18)
    builder.mine()
    for m in markets:
        for who in (lender, safe, tight, liquidator):
            approve(who, m.loan, morpho.morpho)
            approve(who, m.collateral, morpho.morpho)
    builder.mine()
    for m in markets:
        builder.call(lender, MORPHO, morpho.morpho, "supply", m.params, 10**6 * 10**m.loan_decimals, 0, lender, b"")
        for who in (safe, tight):
            builder.call(who, MORPHO, morpho.morpho, "supplyCollateral", m.params, 10**18, who, b"")
    builder.mine(advance_s=60)
    for m in markets:
        if m.oracle == ZERO:
            continue
        limit = 10**18 * m.price // 10**36 * LLTV // WAD
        builder.call(safe, MORPHO, morpho.morpho, "borrow", m.params, limit * 40 // 100, 0, safe, safe)
        builder.call(tight, MORPHO, morpho.morpho, "borrow", m.params, limit * 99 // 100, 0, tight, tight)
    builder.mine(advance_s=60)

    # Aave: a lender of every borrowed asset; a WBTC borrower (its feed will revert), a LINK (bytes32) holder
    # borrowing USDT (no metadata), a WETH holder borrowing DAI (whose token will lose its code), a USDT supplier
    # borrowing WETH.
    pool = aave.pool.lower()
    aave_lender, wbtc_user, link_user, dai_user, usdt_user = (f"0x{k:040x}" for k in (0xA1, 0xA2, 0xA3, 0xA4, 0xA5))
    supplies = {
        aave_lender: [("USDC", 10**12), ("DAI", 10**24), ("USDT", 10**12), ("WETH", 10**21)],
        wbtc_user: [("WBTC", 10**8)],
        link_user: [("LINK", 10**22)],
        dai_user: [("WETH", 10**19)],
        usdt_user: [("USDT", 10**11)],
    }
    for who, assets in supplies.items():
        for symbol, amount in assets:
            mint(tokens[symbol], who, amount)
            approve(who, tokens[symbol], pool)
    builder.mine()
    for who, assets in supplies.items():
        for symbol, amount in assets:
            builder.call(who, POOL, pool, "supply", tokens[symbol], amount, who, 0)
    builder.mine(advance_s=60)
    # LINK is an isolated asset: a first supply of it is not always made collateral by itself (Aave 3.0.2+).
    builder.call(link_user, POOL, pool, "setUserUseReserveAsCollateral", tokens["LINK"], True)
    borrows = {
        wbtc_user: ("USDC", 5_000 * 10**6),
        link_user: ("USDT", 10_000 * 10**6),
        dai_user: ("DAI", 5_000 * 10**18),
        usdt_user: ("WETH", 10**18),
    }
    for who, (symbol, amount) in borrows.items():
        builder.call(who, POOL, pool, "borrow", tokens[symbol], amount, 2, 0, who)
    builder.mine(advance_s=DAY)

    # The breakage, then the snapshot block: every live oracle cut, interest accrued on chain where the IRM answers
    # (so market() at the block is the accrued state the adapter computes), the gone IRM's market left 30 days stale.
    for m in markets:
        kind = oracle_kinds[m.name]
        if kind in ("live", "gone"):
            builder.call(DEPLOYER, ORACLE, m.oracle, "set", int(m.price * PRICE_CUT), False)
        elif kind == "reverts":
            builder.call(DEPLOYER, ORACLE, m.oracle, "set", m.price, True)
        elif kind == "zero":
            builder.call(DEPLOYER, ORACLE, m.oracle, "set", 0, False)
    builder.call(DEPLOYER, ORACLE, feeds["WBTC"], "set", USD["WBTC"] * 10**8, True)
    builder.call(DEPLOYER, BREAKABLE, odd["breakable loan"], "breakIt")
    gone_oracle = next(m.oracle for m in markets if m.name == "oracle gone")
    # WBTC's interest rate strategy (its own: no other reserve shares its curve) self-destructed too.
    gone_strategy = POOL.decode("getReserveData", rpc.call(*eth_call(pool, POOL, "getReserveData", tokens["WBTC"])))
    for address in (odd["gone collateral"], gone_irm, tokens["DAI"], gone_oracle, gone_strategy[0][11]):
        rpc.call("anvil_setCode", [address, "0x"])
    builder.mine(advance_s=30 * DAY)
    for m in markets:
        if m.irm != gone_irm:
            builder.call(DEPLOYER, MORPHO, morpho.morpho, "accrueInterest", m.params)
    builder.mine(advance_s=12)
    block = int(rpc.call("eth_blockNumber"), 16)
    return {
        "morpho": morpho.morpho.lower(),
        "markets": markets,
        "aave": aave,
        "tokens": tokens,
        "odd": odd,
        "block": block,
        "wallets": {"lender": lender, "safe": safe, "tight": tight, "liquidator": liquidator},
        "aave_wallets": {"wbtc": wbtc_user, "link": link_user, "dai": dai_user, "usdt": usdt_user},
        "gone_irm": gone_irm,
    }


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Its own anvil with the odd markets; what `_build` made, plus the RPC URL."""
    with bare_chain(tmp_path_factory.mktemp("odd")) as bare:
        yield _build(bare.rpc) | {"rpc_url": bare.url}


@pytest.fixture(scope="module")
def rpc(chain: dict[str, Any]) -> Iterator[RpcClient]:
    with RpcClient(chain["rpc_url"]) as client:
        yield client


@pytest.fixture(scope="module")
def indexed(chain: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both deployments indexed through the real job, Morpho priced in USD by the Aave oracle."""
    db: Path = tmp_path_factory.mktemp("odd_db") / "chainrisk.duckdb"
    aave = chain["aave"]
    index_market("aave-v3", chain["rpc_url"], aave.pool_addresses_provider, db)
    index_market("morpho-blue", chain["rpc_url"], chain["morpho"], db, options={"usd_oracle": aave.oracle})
    return db


def _frame(db: Path, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        frame: pl.DataFrame = con.sql(sql, params=params or []).pl()
        return frame


def test_index_stores_every_morpho_market(chain: dict[str, Any], indexed: Path) -> None:
    ids = {m.market_id for m in chain["markets"]}
    stored = _frame(indexed, "SELECT market FROM markets WHERE protocol = 'morpho-blue'")["market"].to_list()
    assert set(stored) == ids
    raw = _frame(indexed, "SELECT market_id FROM raw_morpho_blue_markets")["market_id"].to_list()
    assert set(raw) == ids
    with_positions = set(
        _frame(indexed, "SELECT DISTINCT market FROM positions WHERE protocol = 'morpho-blue'")["market"].to_list()
    )
    assert with_positions == ids


#: Per market: (collateral price_usd NULL, collateral_usd NULL, loan price_usd NULL), as what is known allows.
USD_UNKNOWN = {
    "control": (False, False, False),
    "no decimals": (True, False, False),
    "bytes32 symbol": (False, False, False),
    "loan without decimals": (False, False, True),
    "token reverts": (False, False, True),
    "token gone": (True, False, False),
    "oracle reverts": (True, True, False),
    "oracle zero": (True, True, False),
    "oracle gone": (True, True, False),
    "no oracle": (True, True, False),
    "no irm": (False, False, False),
    "irm gone": (False, False, False),
    "no usd price": (True, True, True),
}
#: Markets whose tokens lack decimals: (collateral's unknown, loan's unknown).
NO_DECIMALS = {
    "no decimals": (True, False),
    "loan without decimals": (False, True),
    "token reverts": (False, True),
    "token gone": (True, False),
}


def _mul_div_up(x: int, y: int, d: int) -> int:
    return (x * y + d - 1) // d


def _chain_views(rpc: RpcClient, chain: dict[str, Any], m: OddMarket) -> tuple[tuple[int, ...], int | None]:
    """Morpho's market(id) and the oracle's price() at the snapshot block (None when it gives none)."""
    tag = hex(chain["block"])
    market_key = bytes.fromhex(m.market_id[2:])
    state = MORPHO.decode("market", rpc.call(*eth_call(chain["morpho"], MORPHO, "market", market_key, block=tag)))[0]
    if m.oracle == ZERO:
        return tuple(state), None
    raw = rpc.batch_each([eth_call(m.oracle, ORACLE, "price", block=tag)])[0]
    return tuple(state), int(ORACLE.decode("price", raw)[0]) if raw not in (None, "0x") else None


def test_morpho_figures_equal_the_chain(chain: dict[str, Any], indexed: Path, rpc: RpcClient) -> None:
    """Amounts from position() and market(), health from _isHealthy with the oracle's own price, at the block;
    a borrower whose health Morpho itself cannot tell (no price, or a gone IRM with interest pending) is left out."""
    tag = hex(chain["block"])
    positions = _frame(indexed, "SELECT * FROM positions WHERE protocol = 'morpho-blue'")
    health = _frame(indexed, "SELECT * FROM wallet_health WHERE protocol = 'morpho-blue'")
    checked = 0
    for m in chain["markets"]:
        state, price = _chain_views(rpc, chain, m)
        supply_assets, supply_shares, borrow_assets, borrow_shares = state[:4]
        for wallet in chain["wallets"].values():
            raw = rpc.call(
                *eth_call(chain["morpho"], MORPHO, "position", bytes.fromhex(m.market_id[2:]), wallet, block=tag)
            )
            own_supply, own_borrow, collateral = MORPHO.decode("position", raw)[0]
            borrowed = _mul_div_up(own_borrow, borrow_assets + 1, borrow_shares + 10**6)
            supplied = own_supply * (supply_assets + 1) // (supply_shares + 10**6)
            rows = positions.filter((pl.col("market") == m.market_id) & (pl.col("wallet") == wallet))
            loan_row = rows.filter(pl.col("asset") == m.loan)
            collateral_row = rows.filter(pl.col("asset") == m.collateral)
            assert int(loan_row["debt_amount"].sum()) == borrowed, (m.name, wallet)
            assert int(loan_row["supplied_amount"].sum()) == supplied, (m.name, wallet)
            assert int(collateral_row["collateral_amount"].sum()) == collateral, (m.name, wallet)
            rated = health.filter((pl.col("market") == m.market_id) & (pl.col("wallet") == wallet))
            if not borrowed:
                continue
            knowable = price is not None and m.irm != chain["gone_irm"]
            assert rated.height == (1 if knowable else 0), (m.name, wallet)
            if not knowable:
                continue
            assert price is not None
            value = collateral * price // 10**36
            healthy = value * LLTV // WAD >= borrowed
            row = rated.row(0, named=True)
            assert (int(row["total_collateral_base"]), int(row["total_debt_base"])) == (value, borrowed)
            assert (int(row["health_factor_wad"]) >= WAD) == healthy, (m.name, wallet)
            checked += 1
    assert checked >= 16  # two borrowers in each market whose health Morpho can tell


def test_liquidations_go_through_exactly_for_the_unhealthy(
    chain: dict[str, Any], indexed: Path, rpc: RpcClient
) -> None:
    """Morpho's liquidate() as a keeper would call it (seizing one unit) goes through exactly for the wallets the index
    rated under 1, in the markets where the tokens and the oracle work (a token without decimals among them)."""
    health = _frame(
        indexed, "SELECT market, wallet, health_factor_wad FROM wallet_health WHERE protocol = 'morpho-blue'"
    )
    liquidator, tag = chain["wallets"]["liquidator"], hex(chain["block"])
    outcomes = []
    for m in chain["markets"]:
        if m.name not in ("control", "no decimals", "bytes32 symbol", "no irm"):
            continue
        for wallet in (chain["wallets"]["safe"], chain["wallets"]["tight"]):
            data = MORPHO.encode("liquidate", m.params, wallet, 1, 0, b"")
            answer = rpc.batch_each([("eth_call", [{"from": liquidator, "to": chain["morpho"], "data": data}, tag])])[0]
            row = health.filter((pl.col("market") == m.market_id) & (pl.col("wallet") == wallet))
            outcomes.append((m.name, wallet, answer is not None, int(row["health_factor_wad"][0]) < WAD))
    assert all(went == under for _, _, went, under in outcomes), outcomes
    assert {under for *_, under in outcomes} == {True, False}


def test_usd_is_null_exactly_where_unknown(chain: dict[str, Any], indexed: Path) -> None:
    positions = _frame(indexed, "SELECT * FROM positions WHERE protocol = 'morpho-blue'")
    for m in chain["markets"]:
        rows = positions.filter(pl.col("market") == m.market_id)
        loan, collateral = rows.filter(pl.col("asset") == m.loan), rows.filter(pl.col("asset") == m.collateral)
        price_null, value_null, loan_null = USD_UNKNOWN[m.name]
        assert collateral.height and loan.height, m.name
        assert collateral["price_usd"].is_null().all() == price_null, m.name
        assert collateral["collateral_usd"].is_null().all() == value_null, m.name
        assert collateral["collateral_base"].is_null().all() == (
            m.name in ("oracle reverts", "oracle gone", "no oracle")
        ), m.name
        assert loan["price_usd"].is_null().all() == loan_null, m.name
        # The loan token's USD per unit is known in every market (its own price, or the collateral's through the
        # market's oracle), so every debt and supply has a USD figure; but where the USD oracle prices neither.
        usd_known = m.name != "no usd price"
        assert loan["debt_usd"].is_not_null().all() == usd_known, m.name
        assert loan["supplied_usd"].is_not_null().all() == usd_known, m.name
        # Amounts and the collateral's value in loan units stay exact whatever USD knows.
        assert loan["debt_amount"].is_not_null().all() and loan["supplied_amount"].is_not_null().all(), m.name
        collateral_unknown, loan_unknown = NO_DECIMALS.get(m.name, (False, False))
        assert collateral["decimals"].is_null().all() == collateral_unknown, m.name
        assert loan["decimals"].is_null().all() == loan_unknown, m.name
    # Each market says where its USD came from: the loan token's own price from the USD oracle (the Aave oracle the
    # fixture configured), else the collateral's through the market's oracle; nothing where USD is unknown. Its
    # supply and borrow in USD are there exactly when the market has a USD price.
    oracle = f"usd oracle {chain['aave'].oracle.lower()}"
    markets = _frame(indexed, f"SELECT * FROM ({query_sql('stg_morpho_blue_markets')}) WHERE is_latest")
    routes = {}
    for m in chain["markets"]:
        row = markets.filter(pl.col("market") == m.market_id).row(0, named=True)
        routes[m.name] = row["usd_route"]
        known = row["base_currency_usd"] is not None
        assert (row["usd_route"] is not None) == known == (m.name != "no usd price"), m.name
        assert (row["supply_usd"] is not None) == known, m.name
        assert row["loan_usd_source"] == (oracle if row["loan_price_usd"] is not None else None), m.name
        if row["collateral_usd_source"] == "market oracle x loan USD":
            # No USD source prices the collateral: priced as its positions are (the oracle times the loan's USD).
            held = positions.filter((pl.col("market") == m.market_id) & (pl.col("asset") == m.collateral))
            assert row["collateral_price_usd"] == pytest.approx(held["price_usd"][0], rel=1e-9), m.name
        else:
            assert row["collateral_usd_source"] == (oracle if row["collateral_price_usd"] is not None else None), m.name
        if not known:
            continue
        own = row["loan_price_usd"] is not None and row["loan_decimals"] is not None
        expected = (
            f"loan {row['loan_symbol']}: {oracle}"
            if own
            else f"collateral {row['collateral_symbol']}: {oracle}, through the market oracle"
        )
        assert row["usd_route"] == expected, m.name
    assert any(r and r.startswith("collateral") for r in routes.values()), routes


def test_data_quality_names_each_odd_contract(chain: dict[str, Any], indexed: Path) -> None:
    rows = _frame(indexed, "SELECT protocol, market, subject, kind, detail, unknown FROM data_quality")
    morpho = rows.filter(pl.col("protocol") == "morpho-blue")
    expected = {(m.market_id, subject, kind) for m in chain["markets"] for subject, kind in m.expected}
    assert set(morpho.select("market", "subject", "kind").iter_rows()) == expected
    aave, tokens = chain["aave"], chain["tokens"]
    wbtc_feed = aave.reserves["WBTC"].feed.lower()
    provider = aave.pool_addresses_provider.lower()
    assert set(rows.filter(pl.col("protocol") == "aave-v3").select("market", "subject", "kind").iter_rows()) == {
        (provider, tokens["LINK"], "bytes32_symbol"),
        (provider, tokens["USDT"], "no_symbol"),
        (provider, tokens["DAI"], "no_code"),
        (provider, wbtc_feed, "oracle_reverts"),
    }
    assert all(d and "\n" not in d for d in rows["detail"].to_list())
    # Only what leaves something unknown says what: a bytes32 symbol is read as text, a market without IRM is whole.
    whole = rows.filter(pl.col("unknown").is_null())["kind"].to_list()
    assert sorted(set(whole)) == ["bytes32_symbol", "no_irm"]
    symbols = _frame(indexed, "SELECT DISTINCT asset, symbol FROM positions")
    assert dict(symbols.iter_rows())[tokens["LINK"]] == "LINK"


def test_a_strategy_without_code_leaves_only_its_curve_unknown(chain: dict[str, Any], indexed: Path) -> None:
    """WBTC's rate strategy has no code: its reserve is stored with the strategy's address and no curve (NULL, so no
    parameter change either), every other reserve's curve read, and the run goes on."""
    reserves = _frame(indexed, "SELECT * FROM raw_aave_v3_reserves")
    curve = ("optimal_usage_ratio", "base_variable_borrow_rate", "variable_rate_slope1", "variable_rate_slope2")
    unknown = reserves.filter(pl.any_horizontal(pl.col(c).is_null() for c in curve))
    assert unknown["asset"].to_list() == [chain["tokens"]["WBTC"].lower()]
    assert unknown.select(pl.col(c).is_null().all() for c in curve).row(0) == (True,) * 4
    assert unknown["interest_rate_strategy"].is_not_null().all() and reserves.height == len(RESERVES)


def test_aave_health_equals_the_pool(chain: dict[str, Any], indexed: Path, rpc: RpcClient) -> None:
    """Every rated wallet's figures equal getUserAccountData at the block, odd reserves and all; the WBTC borrower,
    whose price the pool itself cannot read, is left out (its getUserAccountData reverts) with its USD NULL."""
    health = _frame(indexed, "SELECT * FROM wallet_health WHERE protocol = 'aave-v3'")
    wallets = chain["aave_wallets"]
    pool, tag = chain["aave"].pool, hex(chain["block"])
    answers = rpc.batch_each([eth_call(pool, POOL, "getUserAccountData", w, block=tag) for w in wallets.values()])
    by_wallet = dict(zip(wallets.values(), answers, strict=True))
    assert by_wallet[wallets["wbtc"]] is None
    assert wallets["wbtc"] not in health["wallet"].to_list()
    for row in health.filter(pl.col("wallet").is_in(list(wallets.values()))).iter_rows(named=True):
        data = POOL.decode("getUserAccountData", by_wallet[row["wallet"]])
        mine = (
            int(row["total_collateral_base"]),
            int(row["total_debt_base"]),
            int(row["available_borrows_base"]),
            row["liquidation_threshold_bps"],
            row["ltv_bps"],
            int(row["health_factor_wad"]),
        )
        assert mine == tuple(int(x) for x in data), row["wallet"]
    assert set(health["wallet"].to_list()) >= {wallets["link"], wallets["dai"], wallets["usdt"]}
    wbtc = _frame(
        indexed, "SELECT * FROM positions WHERE protocol = 'aave-v3' AND asset = ?", [chain["tokens"]["WBTC"]]
    )
    assert wbtc.height == 1 and wbtc["price_usd"].is_null().all() and wbtc["collateral_usd"].is_null().all()
    assert int(wbtc["collateral_amount"][0]) == 10**8


def test_run_warns_and_the_overview_lists_the_markets(
    chain: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hooks: Hooks,
) -> None:
    """`chainrisk run` scores the odd book (the engine's health agrees with every rated wallet), evaluates and sends
    every kind of alert over it, warns in its summary and its `runs` row, and the Overview says which markets have
    unknowns, without an error; credit history and scores follow on the odd markets."""
    db = tmp_path / "run.duckdb"
    aave = chain["aave"]
    config = tmp_path / "chainrisk.toml"
    config.write_text(
        f'db = "{db}"\nrpc_url = "{chain["rpc_url"]}"\n'
        f'[[markets]]\nprotocol = "aave-v3"\naddress = "{aave.pool_addresses_provider}"\n'
        f'[[markets]]\nprotocol = "morpho-blue"\naddress = "{chain["morpho"]}"\nusd_oracle = "{aave.oracle}"\n'
        # Every alert kind over the odd book, where some wallets' health and some markets' USD are unknown.
        f'[alerts]\nwebhooks = ["{hooks.url}"]\n'
        '[[alerts.rules]]\nname = "weak"\nkind = "health_below"\nthreshold = 1.5\n'
        '[[alerts.rules]]\nname = "liquidatable"\nkind = "liquidatable_collateral_above"\nusd = 1\n'
        '[[alerts.rules]]\nname = "bad debt"\nkind = "bad_debt_above"\nusd = 0\nscope = "total"\n'
        '[[alerts.rules]]\nname = "oracles"\nkind = "data_quality"\nkinds = ["oracle_reverts", "oracle_zero"]\n'
        '[[alerts.rules]]\nname = "utilization"\nkind = "utilization_above"\npercent = 0\n'
    )
    assert main(["run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "alerts: " in out and " 0 undelivered" in out, out
    kinds = {(p["rule"], p["event"]) for p in hooks.received}
    assert {("weak", "breach"), ("liquidatable", "breach"), ("bad debt", "breach")} <= kinds, kinds
    # Every Morpho market lent from (a frozen one's debt as stored) and every Aave reserve borrowed from is over 0 %
    # utilized, its tokens odd or not.
    borrowed = _frame(db, "SELECT market FROM markets WHERE protocol = 'morpho-blue' AND debt_amount > 0")["market"]
    reserves = _frame(
        db,
        "SELECT market, asset FROM raw_aave_v3_reserves "
        "WHERE total_supplied > 0 AND total_variable_debt + coalesce(total_stable_debt, 0) > 0",
    )
    utilized = sorted(p["subject"] for p in hooks.received if p["rule"] == "utilization")
    lent = [f"morpho-blue:{m}" for m in borrowed] + [f"aave-v3:{m}:{a}" for m, a in reserves.iter_rows()]
    assert utilized == sorted(lent) and borrowed.len() and reserves.height, utilized
    # One alert per oracle that reverts (Aave's WBTC feed, a Morpho market's) or answers zero, none for the other
    # problems of the book.
    oracles = sorted(
        (p["subject"].split(":")[0], p["subject"].split()[1]) for p in hooks.received if p["rule"] == "oracles"
    )
    expected = [("aave-v3", "oracle_reverts"), ("morpho-blue", "oracle_reverts"), ("morpho-blue", "oracle_zero")]
    assert oracles == expected, oracles
    assert "warning: data quality: " in out and "no_code" in out, out
    summary = _frame(db, "SELECT status, summary FROM runs").row(0, named=True)
    assert summary["status"] == "ok" and "warning: data quality" in summary["summary"]
    # A borrower the protocol itself cannot rate (no price) is left out of the verdicts, not called liquidatable at
    # a price of nothing: every wallet_risk row with debt is one the protocol rated.
    unrated = _frame(
        db,
        "SELECT r.wallet FROM wallet_risk r ANTI JOIN wallet_health h USING (protocol, chain_id, market, wallet, "
        "block_number) WHERE r.debt_usd > 0 OR r.liquidatable",
    )
    assert unrated.is_empty(), unrated
    borrowers = _frame(db, "SELECT count(DISTINCT wallet) AS n FROM positions WHERE debt_amount > 0")["n"][0]
    scored = _frame(db, "SELECT count(DISTINCT wallet) AS n FROM wallet_risk WHERE health_factor IS NOT NULL")["n"][0]
    assert 0 < scored < borrowers, "the unrated borrowers are the difference"

    # Credit: history sampled at past blocks of the odd markets (--db given before the subcommand is kept), then
    # scores from it.
    assert main(["credit", "--db", str(db), "history", "--config", str(config), "--every", "5d"]) == 0
    assert "2 new sample(s)" in capsys.readouterr().out
    assert main(["credit", "--db", str(db)]) == 0, capsys.readouterr().err
    scores = _frame(db, "SELECT * FROM credit_scores")
    assert scores.height and scores["score"].is_between(300, 850).all()
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    app = AppTest.from_file(APP, default_timeout=120)
    app.query_params["page"] = "overview"
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    shown = " ".join(str(w.value) for w in app.warning) + " ".join(str(md.value) for md in app.markdown)
    assert "data quality" in shown.lower()
    assert "oracle_reverts" in shown and "Traceback" not in shown


def test_risk_commands_go_on_past_odd_markets(
    chain: dict[str, Any],
    indexed: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The risk commands on the odd book: VaR and the replays leave out the wallet-markets holding a token no price
    series moves (tokens without symbol() are named by address) and say so, instead of refusing the whole book;
    contagion and optimise run past a loan token without decimals() or a market without any USD price, and optimise
    reading the wallets' balances from the chain past tokens without code."""
    db = tmp_path / "risk.duckdb"
    db.write_bytes(indexed.read_bytes())
    score(db)
    for kind, *options in (
        ["var", "--scenarios", "200", "--horizons", "24"],
        ["stress", "--window", "luna-2022"],
        ["contagion", "--shock", "WETH=-35%"],
        ["optimise", "--below", "1.1"],
        ["optimise", "--below", "1.1", "--rpc-url", chain["rpc_url"]],
    ):
        assert main(["risk", kind, "--db", str(db), *options]) == 0, (kind, capsys.readouterr().err)
    out = capsys.readouterr().out
    # DAI and the gone collateral have no code left (balanceOf answers "0x"): the plans read on, counting them as
    # held by no one.
    assert "on-chain balances of chain 31337; 2 token(s) answered no balance: counted as none held" in out, out
    positions = latest_positions(db)
    kept, notes = with_price_series(positions, RiskSettings(), stored_graph(db))
    series = set(load_price_panel().columns) | set(DEFAULT_SERIES)
    missing = {s for s in positions["symbol"] if s not in series}
    # The tokens without symbol(), named by address, and the fixture's own long-tail symbols.
    assert {s for s in positions["symbol"] if s.startswith("0x")} <= missing
    assert kept.filter(pl.col("symbol").is_in(missing)).is_empty()
    keys = ["protocol", "chain_id", "market", "wallet"]
    gone = positions.join(kept.select(keys).unique(), on=keys, how="anti")
    holds = (pl.col("collateral_amount") > 0) | (pl.col("debt_amount") > 0)
    assert set(gone.filter(holds & pl.col("symbol").is_in(missing)).select(keys).iter_rows()) == set(
        gone.filter(holds).select(keys).iter_rows()
    )
    assert len(notes) == 1 and notes[0] in out
    runs = _frame(db, "SELECT kind, notes FROM risk_runs ORDER BY run_id")
    assert notes[0] in dict(runs.iter_rows())["var"]
    # The Risk page's VaR tab says what its figures leave out.
    monkeypatch.setenv("CHAINRISK_DB", str(db))
    app = open_page("risk")
    assert_clean(app)
    assert f"Not in these figures: {notes[0]}." in [w.value for w in app.warning]
    # And every other page opens on the odd book without an error; the Wallet page also for each wallet holding
    # collateral or debt in a token without decimals() (its what-if names the holding in raw units).
    assert main(["chains", "--db", str(db), "--rpc-url", chain["rpc_url"]]) == 0
    undecimalled = positions.filter(pl.col("decimals").is_null() & holds)
    assert undecimalled.height
    for page in PAGES:
        assert_clean(open_page(page.slug))
    for wallet in sorted(set(undecimalled["wallet"])):
        app = open_page("wallet", wallet=wallet)
        assert_clean(app)
    assert any("raw units, decimals unknown" in str(o) for o in app.selectbox(key="whatif_add_on").options) or any(
        "raw units, decimals unknown" in str(o) for o in app.selectbox(key="whatif_repay_on").options
    )
    assert not _frame(db, "SELECT * FROM var_results").is_empty()
    plans = _frame(db, "SELECT * FROM optimise_plans")
    assert plans.height > 0
    # A market none of whose tokens has a USD price (loan and collateral unknown to the USD oracle) gets no plan,
    # and says why; the others are planned.
    reasons = dict(plans.select("reason", "feasible").iter_rows())
    assert any(r.startswith("no USD price") and not f for r, f in reasons.items()), reasons
    assert any(reasons.values())
    actions = _frame(
        db,
        "SELECT a.amount_tokens, p.decimals FROM optimise_actions a JOIN (SELECT DISTINCT protocol, market, symbol, "
        "decimals FROM positions) p USING (protocol, market, symbol)",
    )
    assert (
        actions.height and actions.filter(pl.col("amount_tokens").is_null() != pl.col("decimals").is_null()).is_empty()
    )
