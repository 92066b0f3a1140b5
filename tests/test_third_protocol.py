"""The adapter interface is the only seam: a third protocol, written as a new package dropped into
`chainrisk/protocols/` (here: a temporary folder added to that package's path), is indexed, scored, shown in the
cross-protocol wallet view, looked through, shocked in contagion and counted by the credit features, with no change
anywhere else.

The toy protocol treats an ERC-20 token as a one-asset lending market: every holder's balance is collateral
(threshold 50 %, bonus 10 %), held as the toy's own receipt token (a 1:1 claim on the token, declared to the asset
graph by the adapter's `wrapper_links`), and every holder owes USDC worth 40 % of it; its events are the token's
Transfers, which its own events view (in the package's queries folder) reads as collateral deposits.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

import chainrisk.protocols
from chainrisk.cli import main
from chainrisk.config import Config, MarketConfig
from chainrisk.credit.features import features
from chainrisk.jobs.credit import read_history
from chainrisk.jobs.credit_history import backfill
from chainrisk.protocols.adapter import adapters

TOY_ADAPTER = '''
"""Toy lender: an ERC-20's holders as accounts holding a 1:1 receipt on it, owing USDC."""

from typing import Any, ClassVar

import polars as pl

from chainrisk.abi import eth_call, load_abi
from chainrisk.assets import Link, Token
from chainrisk.protocols.adapter import Adapter, LogQuery, Preset, Snapshot

ERC20 = load_abi("erc20", "IERC20Detailed")
TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
#: The toy's receipt token: an address of its own, a 1:1 claim on the token the market lends against.
RECEIPT = "0x" + "70" * 20
USDC = "{usdc}"

DDL = """
CREATE TABLE IF NOT EXISTS raw_toy_events (
    chain_id BIGINT NOT NULL, market VARCHAR NOT NULL, block_number BIGINT NOT NULL, block_hash VARCHAR NOT NULL,
    log_index INTEGER NOT NULL, wallet VARCHAR NOT NULL, amount HUGEINT,
    PRIMARY KEY (chain_id, market, block_number, log_index)
);
"""


class ToyAdapter(Adapter[str]):
    name = "toy-lender"
    label = "Toy Lender"
    bad_debt = "suppliers"
    address_role = "ERC-20 token"
    events_table = "raw_toy_events"
    events_view = "stg_toy_lender_events"
    ddl = DDL
    presets: ClassVar[dict[str, Preset]] = {{}}
    account_columns = ("wallet",)

    def discover(self, rpc: Any, address: str, block: int, options: dict[str, str]) -> str:
        return address

    def log_query(self, deployment: str) -> LogQuery:
        return LogQuery([deployment], [[TRANSFER]])

    def events_frame(self, deployment: str, logs: list[dict[str, Any]]) -> pl.DataFrame:
        return pl.DataFrame(
            {{
                "block_number": [int(log["blockNumber"], 16) for log in logs],
                "block_hash": [log["blockHash"] for log in logs],
                "log_index": [int(log["logIndex"], 16) for log in logs],
                "wallet": ["0x" + log["topics"][2][-40:] for log in logs],
                "amount": [int(log["data"], 16) for log in logs],
            }},
            schema={{"block_number": pl.Int64, "block_hash": pl.Utf8, "log_index": pl.Int32, "wallet": pl.Utf8,
                    "amount": pl.Int128}},
        ).with_columns(pl.col("amount").cast(pl.Decimal(38, 0)))

    def wrapper_links(self, rpc: Any, chain_id: int, assets: list[str], block: int) -> dict[str, Link]:
        if RECEIPT not in assets:
            return {{}}
        return {{RECEIPT: Link(Token(RECEIPT, "tWETH", 18), "toy-receipt", Token(self.lent, "WETH", 18), 1, 1, None,
                              "", "toy-lender")}}

    def snapshot(self, rpc: Any, deployment: str, events: pl.DataFrame, chain_id: int, block: int,
                 timestamp: int) -> Snapshot:
        self.lent = deployment
        wallets = sorted(set(events["wallet"].to_list()) - {{"0x" + "0" * 40}})
        raw = rpc.batch([eth_call(deployment, ERC20, "balanceOf", w, block=hex(block)) for w in wallets])
        held = [(w, b) for w, b in zip(wallets, [ERC20.decode("balanceOf", r)[0] for r in raw]) if b]
        exact = pl.Decimal(38, 0)
        price = 2_000 * 10**8  # base currency: USD with 8 decimals, like Aave's
        rows = []
        for wallet, balance in held:
            value = balance * price // 10**18
            owed = value * 4 // 10 // 10**2  # 40 % of the value, in USDC units (6 decimals) at $1 (1e8 base)
            common = {{"wallet": wallet, "ltv_bps": 4_000, "liquidation_threshold_bps": 5_000,
                      "liquidation_threshold_wad": 5 * 10**17, "liquidation_bonus_bps": 11_000}}
            rows.append({{**common, "asset": RECEIPT, "symbol": "tWETH", "decimals": 18, "supplied_amount": balance,
                         "collateral_amount": balance, "debt_amount": 0, "price": price, "price_scale": 10**18,
                         "price_usd": 2_000.0, "collateral_base": value, "debt_base": 0,
                         "collateral_usd": value / 1e8, "debt_usd": 0.0}})
            rows.append({{**common, "asset": USDC, "symbol": "USDC", "decimals": 6, "supplied_amount": 0,
                         "collateral_amount": 0, "debt_amount": owed, "price": 10**8, "price_scale": 10**6,
                         "price_usd": 1.0, "collateral_base": 0, "debt_base": owed * 10**2,
                         "collateral_usd": 0.0, "debt_usd": owed / 1e6}})
        n = len(rows)
        positions = pl.DataFrame(rows, schema_overrides={{k: pl.Int128 for k in (
            "supplied_amount", "collateral_amount", "debt_amount", "price", "price_scale", "collateral_base",
            "debt_base", "liquidation_threshold_wad")}}).with_columns(
            pl.col(pl.Int128).cast(exact),
            pl.lit("toy-lender").alias("protocol"), pl.lit(chain_id).alias("chain_id"),
            pl.lit(deployment).alias("market"), pl.lit(deployment).alias("source"),
            pl.lit(block).alias("block_number"), pl.lit(timestamp).alias("block_timestamp"),
            pl.col("collateral_amount").gt(0).alias("used_as_collateral"),
            pl.col("debt_amount").gt(0).alias("is_borrowing"),
            pl.col("collateral_usd").alias("supplied_usd"), pl.lit(1e-8).alias("base_currency_usd"),
            pl.lit("per-position").alias("health_rule"), pl.lit(1.0).alias("close_factor"),
            pl.lit(None, pl.Float64).alias("full_close_below_health"), pl.lit(0).alias("emode_category"),
        ) if n else pl.DataFrame()
        health = pl.DataFrame()
        if n:
            per_wallet = positions.group_by("wallet", maintain_order=True).agg(
                pl.col("collateral_base").cast(pl.Int128).sum().alias("c"),
                pl.col("debt_base").cast(pl.Int128).sum().alias("d"),
            )
            health = per_wallet.select(
                pl.lit("toy-lender").alias("protocol"), pl.lit(chain_id).alias("chain_id"),
                pl.lit(deployment).alias("market"), pl.lit(deployment).alias("source"), "wallet",
                pl.lit(block).alias("block_number"), pl.lit(timestamp).alias("block_timestamp"),
                (pl.col("c").cast(pl.Float64) / 1e8).alias("collateral_usd"),
                (pl.col("d").cast(pl.Float64) / 1e8).alias("debt_usd"),
                ((pl.col("c") // 2) * 10**18 // pl.col("d")).cast(exact).alias("health_factor_wad"),
                pl.col("c").cast(exact).alias("total_collateral_base"),
                pl.col("d").cast(exact).alias("total_debt_base"),
                (pl.col("c") * 4 // 10 - pl.col("d")).clip(0).cast(exact).alias("available_borrows_base"),
                pl.lit(5_000).alias("liquidation_threshold_bps"), pl.lit(4_000).alias("ltv_bps"),
                pl.lit(0).alias("emode_category"),
            ).with_columns((pl.col("health_factor_wad").cast(pl.Float64) / 1e18).alias("health_factor"))
        return Snapshot({{"positions": positions, "wallet_health": health}}, accounts=len(held),
                        accounts_with_debt=len(held))


ADAPTER = ToyAdapter()
'''

TOY_EVENTS = """-- Toy lender events: the token's Transfers, the receiver's as collateral deposits.
--
-- Grain: one row per (chain_id, market, block_number, log_index).
-- Reads: raw_toy_events.
SELECT
    'toy-lender' AS protocol, chain_id, market AS source, market, wallet, block_number, log_index,
    'collateral_in' AS action, market AS position_key, market AS action_asset, amount AS action_amount
FROM raw_toy_events
"""


@pytest.fixture()
def toy_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, devnet: dict[str, Any]) -> Iterator[None]:
    package = tmp_path / "plugins" / "toy_lender"
    (package / "queries").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Toy lender (test)."""\n')
    (package / "adapter.py").write_text(textwrap.dedent(TOY_ADAPTER.format(usdc=devnet["tokens"]["USDC"].lower())))
    (package / "queries" / "stg_toy_lender_events.sql").write_text(TOY_EVENTS)
    monkeypatch.setattr(chainrisk.protocols, "__path__", [*chainrisk.protocols.__path__, str(package.parent)])
    yield
    for name in [m for m in sys.modules if m.startswith("chainrisk.protocols.toy_lender")]:
        del sys.modules[name]


def test_a_third_protocol_needs_only_its_package(
    toy_protocol: None, devnet: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert {"aave-v3", "morpho-blue", "toy-lender"} <= set(adapters())  # other protocols may be installed too
    db = tmp_path / "three.duckdb"
    weth = devnet["tokens"]["WETH"].lower()
    rpc = ["--rpc-url", devnet["rpc_url"], "--db", str(db)]
    assert main(["index", "--protocol", "toy-lender", "--address", weth, *rpc]) == 0
    assert (
        main(
            [
                "index",
                "--protocol",
                "morpho-blue",
                "--address",
                devnet["morpho_blue"]["morpho"],
                "--usd-oracle",
                devnet["aave_v3"]["oracle"],
                *rpc,
            ]
        )
        == 0
    )
    assert main(["index", "--address", devnet["aave_v3"]["pool_addresses_provider"], *rpc]) == 0
    assert main(["score", "--db", str(db)]) == 0
    assert main(["chains", "--db", str(db), "--rpc-url", devnet["rpc_url"]]) == 0
    output = capsys.readouterr().out
    assert "indexed toy-lender" in output
    with duckdb.connect(str(db), read_only=True) as con:
        protocols = dict(con.execute("SELECT protocol, count(*) FROM wallet_risk GROUP BY 1").fetchall())
        assert set(protocols) == {"aave-v3", "morpho-blue", "toy-lender"}
        toy_holders = con.execute(
            "SELECT count(DISTINCT wallet) FROM positions WHERE protocol = 'toy-lender'"
        ).fetchall()
        assert toy_holders[0][0] >= 10
        # Wallets holding WETH and borrowing on Aave appear once, with both protocols listed.
        both = con.execute(
            "SELECT count(*) FROM wallet_portfolio WHERE list_contains(protocols, 'toy-lender') "
            "AND list_contains(protocols, 'aave-v3')"
        ).fetchall()[0][0]
        assert both >= 1
        # Its markets row, with the bad-debt rule the adapter declared, though the adapter describes no market.
        assert con.execute("SELECT bad_debt_rule FROM markets WHERE protocol = 'toy-lender'").fetchall() == [
            ("suppliers",)
        ]
        # Look-through: its receipt is a wrapper the asset graph learned from the adapter, looked through to WETH.
        link = con.execute("SELECT kind, underlying FROM asset_links WHERE asset = ?", ["0x" + "70" * 20]).fetchall()
        assert link == [("toy-receipt", weth)]
        # Every end owner's receipt, that is: not the protocols' own contracts holding WETH (aWETH, Morpho).
        owners = con.execute(
            "SELECT count(DISTINCT wallet) FROM positions WHERE protocol = 'toy-lender' AND wallet NOT IN "
            "(SELECT asset FROM asset_links UNION SELECT source FROM positions)"
        ).fetchall()[0][0]
        chained = con.execute(
            "SELECT count(*), min(base_asset), max(base_asset) FROM collateral_chains WHERE protocol = 'toy-lender'"
        ).fetchall()[0]
        assert chained == (owners, weth, weth) and owners >= 10
        # Credit features read its events view through stg_lending_events.
        actions = con.execute("SELECT count(*) FROM stg_lending_events WHERE protocol = 'toy-lender'").fetchall()
        assert actions[0][0] > 0

    # Contagion: a WETH shock reaches the toy's receipt through the toy's own link, and its borrowers (health 1.25)
    # are liquidated in round 1 by that chain, not directly.
    assert main(["risk", "contagion", "--db", str(db), "--shock", "WETH=-50%"]) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        toy = con.execute(
            "SELECT channel, count(*) FROM contagion_wallets WHERE protocol = 'toy-lender' GROUP BY 1"
        ).fetchall()
        rounds = con.execute("SELECT DISTINCT protocol FROM contagion_rounds").fetchall()
    assert dict(toy) == {"chain": toy_holders[0][0]}, "every toy borrower, through its receipt only"
    assert ("toy-lender",) in rounds


def test_credit_features_count_a_third_protocol(toy_protocol: None, devnet: dict[str, Any], tmp_path: Path) -> None:
    """The credit history samples the toy market at past blocks and the features count it among a wallet's
    protocols and markets, from its own events view."""
    db = tmp_path / "credit.duckdb"
    toy = MarketConfig("toy-lender", devnet["tokens"]["WETH"].lower(), name="toy")
    aave = MarketConfig("aave-v3", devnet["aave_v3"]["pool_addresses_provider"], name="aave")
    config = Config(db, devnet["rpc_url"], None, [toy, aave])
    assert (
        main(
            [
                "index",
                "--protocol",
                "toy-lender",
                "--address",
                toy.address,
                "--rpc-url",
                devnet["rpc_url"],
                "--db",
                str(db),
            ]
        )
        == 0
    )
    assert main(["index", "--address", aave.address, "--rpc-url", devnet["rpc_url"], "--db", str(db)]) == 0
    backfill(config, devnet["rpc_url"], every_s=4 * 86_400)
    history = read_history(db)
    cutoff = int(history.samples["block_number"][-1])
    table = features(history, cutoff)
    with duckdb.connect(str(db), read_only=True) as con:
        holders = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT wallet FROM positions WHERE protocol = 'toy-lender' AND block_number = ?", [cutoff]
            ).fetchall()
        }
    toy_rows = table.filter(pl.col("wallet").is_in(list(holders)))
    assert toy_rows.height == len(holders) > 0
    assert (toy_rows["protocols"] >= 1).all() and (toy_rows["markets"] >= 1).all()
    assert history.events.filter(pl.col("protocol") == "toy-lender").height > 0
