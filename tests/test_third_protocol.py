"""The adapter interface is the only seam: a third protocol, written as a new package dropped into
`chainrisk/protocols/` (here: a temporary folder added to that package's path), is indexed, scored and shown
in the cross-protocol wallet view with no change anywhere else.

The toy protocol treats an ERC-20 token as a one-asset lending market in which every holder's balance is
collateral (threshold 50 %, bonus 10 %) and holders have no debt; its events are the token's Transfers.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

import chainrisk.protocols
from chainrisk.cli import main
from chainrisk.protocols.adapter import adapters

TOY_ADAPTER = '''
"""Toy lender: an ERC-20's holders as collateral-only accounts."""

from typing import Any, ClassVar

import polars as pl

from chainrisk.abi import eth_call, load_abi
from chainrisk.protocols.adapter import Adapter, LogQuery, Preset, Snapshot

ERC20 = load_abi("erc20", "IERC20Detailed")
TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

DDL = """
CREATE TABLE IF NOT EXISTS raw_toy_events (
    chain_id BIGINT NOT NULL, market VARCHAR NOT NULL, block_number BIGINT NOT NULL, block_hash VARCHAR NOT NULL,
    log_index INTEGER NOT NULL, wallet VARCHAR NOT NULL,
    PRIMARY KEY (chain_id, market, block_number, log_index)
);
"""


class ToyAdapter(Adapter[str]):
    name = "toy-lender"
    address_role = "ERC-20 token"
    events_table = "raw_toy_events"
    ddl = DDL
    presets: ClassVar[dict[str, Preset]] = {}
    account_columns = ("wallet",)

    def discover(self, rpc: Any, address: str, block: int, options: dict[str, str]) -> str:
        return address

    def log_query(self, deployment: str) -> LogQuery:
        return LogQuery([deployment], [[TRANSFER]])

    def events_frame(self, deployment: str, logs: list[dict[str, Any]]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "block_number": [int(log["blockNumber"], 16) for log in logs],
                "block_hash": [log["blockHash"] for log in logs],
                "log_index": [int(log["logIndex"], 16) for log in logs],
                "wallet": ["0x" + log["topics"][2][-40:] for log in logs],
            },
            schema={"block_number": pl.Int64, "block_hash": pl.Utf8, "log_index": pl.Int32, "wallet": pl.Utf8},
        )

    def snapshot(self, rpc: Any, deployment: str, events: pl.DataFrame, chain_id: int, block: int,
                 timestamp: int) -> Snapshot:
        wallets = sorted(set(events["wallet"].to_list()) - {"0x" + "0" * 40})
        raw = rpc.batch([eth_call(deployment, ERC20, "balanceOf", w, block=hex(block)) for w in wallets])
        balances = [ERC20.decode("balanceOf", r)[0] for r in raw]
        held = [(w, b) for w, b in zip(wallets, balances) if b]
        n = len(held)
        price = 2_000 * 10**8  # base currency: USD with 8 decimals, like Aave's
        exact = pl.Decimal(38, 0)
        positions = pl.DataFrame({
            "protocol": ["toy-lender"] * n, "chain_id": [chain_id] * n, "market": [deployment] * n,
            "source": [deployment] * n, "wallet": [w for w, _ in held], "asset": [deployment] * n,
            "symbol": ["TOY"] * n, "block_number": [block] * n, "block_timestamp": [timestamp] * n,
            "decimals": [18] * n,
            "supplied_amount": pl.Series([b for _, b in held], dtype=pl.Int128).cast(exact),
            "collateral_amount": pl.Series([b for _, b in held], dtype=pl.Int128).cast(exact),
            "debt_amount": pl.Series([0] * n, dtype=pl.Int128).cast(exact),
            "used_as_collateral": [True] * n, "is_borrowing": [False] * n,
            "price": pl.Series([price] * n, dtype=pl.Int128).cast(exact),
            "price_scale": pl.Series([10**18] * n, dtype=pl.Int128).cast(exact),
            "price_usd": [2_000.0] * n, "base_currency_usd": [1e-8] * n,
            "collateral_base": pl.Series([b * price // 10**18 for _, b in held], dtype=pl.Int128).cast(exact),
            "debt_base": pl.Series([0] * n, dtype=pl.Int128).cast(exact),
            "supplied_usd": [b / 1e18 * 2_000 for _, b in held], "collateral_usd": [b / 1e18 * 2_000 for _, b in held],
            "debt_usd": [0.0] * n, "ltv_bps": [4_000] * n, "liquidation_threshold_bps": [5_000] * n,
            "liquidation_threshold_wad": pl.Series([5 * 10**17] * n, dtype=pl.Int128).cast(exact),
            "liquidation_bonus_bps": [11_000] * n, "health_rule": ["per-position"] * n, "close_factor": [1.0] * n,
            "full_close_below_health": pl.Series([None] * n, dtype=pl.Float64), "emode_category": [0] * n,
        })
        health = positions.select(
            "protocol", "chain_id", "market", "source", "wallet", "block_number", "block_timestamp", "collateral_usd",
            "debt_usd", pl.lit(None, pl.Float64).alias("health_factor"),
            pl.lit(None, exact).alias("health_factor_wad"), pl.col("collateral_base").alias("total_collateral_base"),
            pl.col("debt_base").alias("total_debt_base"), pl.col("collateral_base").alias("available_borrows_base"),
            "liquidation_threshold_bps", "ltv_bps", "emode_category",
        )
        return Snapshot({"positions": positions, "wallet_health": health}, accounts=n, accounts_with_debt=0)


ADAPTER = ToyAdapter()
'''


@pytest.fixture()
def toy_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    package = tmp_path / "plugins" / "toy_lender"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Toy lender (test)."""\n')
    (package / "adapter.py").write_text(textwrap.dedent(TOY_ADAPTER))
    monkeypatch.setattr(chainrisk.protocols, "__path__", [*chainrisk.protocols.__path__, str(package.parent)])
    yield
    for name in [m for m in sys.modules if m.startswith("chainrisk.protocols.toy_lender")]:
        del sys.modules[name]


def test_a_third_protocol_needs_only_its_package(
    toy_protocol: None, devnet: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert {"aave-v3", "morpho-blue", "toy-lender"} <= set(adapters())
    db = tmp_path / "three.duckdb"
    token = devnet["tokens"]["WETH"]
    rpc = ["--rpc-url", devnet["rpc_url"], "--db", str(db)]
    assert main(["index", "--protocol", "toy-lender", "--address", token, *rpc]) == 0
    assert main(["index", "--protocol", "morpho-blue", "--address", devnet["morpho_blue"]["morpho"],
                 "--usd-oracle", devnet["aave_v3"]["oracle"], *rpc]) == 0  # fmt: skip
    assert main(["index", "--address", devnet["aave_v3"]["pool_addresses_provider"], *rpc]) == 0
    assert main(["score", "--db", str(db)]) == 0
    output = capsys.readouterr().out
    assert "indexed toy-lender" in output
    with duckdb.connect(str(db), read_only=True) as con:
        protocols = dict(con.execute("SELECT protocol, count(*) FROM wallet_risk GROUP BY 1").fetchall())
        assert set(protocols) == {"aave-v3", "morpho-blue", "toy-lender"}
        toy_holders = con.execute("SELECT count(*) FROM positions WHERE protocol = 'toy-lender'").fetchall()[0][0]
        assert toy_holders >= 10
        # Wallets holding WETH and borrowing on Aave appear once, with both protocols listed.
        both = con.execute(
            "SELECT count(*) FROM wallet_portfolio WHERE list_contains(protocols, 'toy-lender') "
            "AND list_contains(protocols, 'aave-v3')"
        ).fetchall()[0][0]
        assert both >= 1
