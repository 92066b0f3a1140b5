"""`chainrisk chains` (and a step of every run): the asset graph read on chain at the latest snapshot block, and
every end owner's positions looked through it: asset_links, collateral_chains, wallet_exposure, wallet_lookthrough
and base_asset_exposure (README "Collateralization chains").

Reads the latest positions and wallet_risk of the chain the RPC serves; reads links and exact conversions on chain
at the snapshot block (so the tables describe one consistent block); replaces that block's rows in one transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from chainrisk.chains.graph import Link, Token, convert_exact, discover_links
from chainrisk.chains.lookthrough import (
    Converter,
    base_asset_exposure,
    collateral_chains,
    legs,
    usd_prices,
    valued,
    wallet_exposure,
    wallet_lookthrough,
)
from chainrisk.errors import UserError
from chainrisk.jobs.score import LATEST_POSITIONS
from chainrisk.rpc import RpcClient, mask_url
from chainrisk.store.db import Store

LATEST_WALLET_RISK = """
SELECT w.* FROM wallet_risk w JOIN scored_markets s
  ON w.protocol = s.protocol AND w.chain_id = s.chain_id AND w.market = s.market AND w.block_number = s.block_number
"""


@dataclass(frozen=True)
class ChainsReport:
    chain_id: int
    block: int
    links: int  #: wrapper assets found
    chained_legs: int  #: position legs that go through at least one link
    wallets: int  #: end owners looked through
    seconds: float

    def line(self) -> str:
        return (
            f"chains at block {self.block}: {self.links} wrapped assets, {self.chained_legs} chained positions "
            f"of {self.wallets} wallets ({self.seconds:.1f} s)"
        )


LINK_SCHEMA = {
    "chain_id": pl.Int64, "block_number": pl.Int64, "asset": pl.Utf8, "symbol": pl.Utf8, "decimals": pl.Int32,
    "kind": pl.Utf8, "underlying": pl.Utf8, "underlying_symbol": pl.Utf8, "underlying_decimals": pl.Int32,
    "rate_num": pl.Int128, "rate_den": pl.Int128, "rate": pl.Float64, "convert_function": pl.Utf8, "abi_name": pl.Utf8,
    "detected_by": pl.Utf8, "pool": pl.Utf8, "index_ray": pl.Int128, "total_assets": pl.Int128,
    "total_supply": pl.Int128,
}  # fmt: skip


def links_frame(links: dict[str, Link], chain_id: int, block: int) -> pl.DataFrame:
    rows = [
        {
            "chain_id": chain_id, "block_number": block, "asset": a, "symbol": k.asset.symbol,
            "decimals": k.asset.decimals, "kind": k.kind, "underlying": k.underlying.address,
            "underlying_symbol": k.underlying.symbol, "underlying_decimals": k.underlying.decimals,
            "rate_num": k.rate_num, "rate_den": k.rate_den, "rate": k.rate, "convert_function": k.convert,
            "abi_name": k.abi_name, "detected_by": k.detected_by, "pool": k.pool, "index_ray": k.index_ray,
            "total_assets": k.total_assets, "total_supply": k.total_supply,
        }
        for a, k in sorted(links.items())
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=LINK_SCHEMA)


def links_from_frame(frame: pl.DataFrame) -> dict[str, Link]:
    """The stored graph back as Links (for models that run without an RPC)."""
    out = {}
    for r in frame.iter_rows(named=True):
        out[r["asset"]] = Link(
            Token(r["asset"], r["symbol"], int(r["decimals"])), r["kind"],
            Token(r["underlying"], r["underlying_symbol"], int(r["underlying_decimals"])),
            int(r["rate_num"]), int(r["rate_den"]), r["convert_function"], r["abi_name"] or "", r["detected_by"],
            pool=r["pool"], index_ray=None if r["index_ray"] is None else int(r["index_ray"]),
            total_assets=None if r["total_assets"] is None else int(r["total_assets"]),
            total_supply=None if r["total_supply"] is None else int(r["total_supply"]),
        )  # fmt: skip
    return out


def chain_frames(
    positions: pl.DataFrame, links: dict[str, Link], convert: Converter, wallet_risk: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """The five chain tables for one chain's positions at one block (pure, given `convert`)."""
    chain_id, block = int(positions["chain_id"][0]), int(positions["block_number"].max())  # type: ignore[arg-type]
    prices = usd_prices(positions, links)
    leg_frame = valued(legs(positions, links, convert), prices).with_columns(
        pl.lit(block, pl.Int64).alias("block_number")
    )
    chains = collateral_chains(leg_frame).rename({"path": "path_symbols", "path_text": "path"})
    return {
        "asset_links": links_frame(links, chain_id, block),
        "collateral_chains": chains,
        "wallet_exposure": wallet_exposure(leg_frame),
        "wallet_lookthrough": wallet_lookthrough(leg_frame, wallet_risk.filter(pl.col("chain_id") == chain_id)),
        "base_asset_exposure": base_asset_exposure(leg_frame, positions, links, prices),
    }


def index_chains(rpc_url: str, db: Path, *, publish: bool = True) -> ChainsReport:
    """Builds the chain tables for the latest snapshot of the chain `rpc_url` serves."""
    started = time.perf_counter()
    if not db.is_file():
        raise UserError(f"no database at {db}; run `chainrisk run` (or index) first")
    with Store(db, read_only=True) as store:
        positions = store.query(LATEST_POSITIONS)
        wallet_risk = store.query(LATEST_WALLET_RISK)
    with RpcClient(rpc_url) as rpc:
        try:
            chain_id = int(rpc.call("eth_chainId"), 16)
        except (TypeError, ValueError):
            raise UserError(f"{mask_url(rpc_url)} does not answer like an Ethereum JSON-RPC node") from None
        positions = positions.filter(pl.col("chain_id") == chain_id)
        if positions.is_empty():
            raise UserError(f"{db} holds no positions of chain {chain_id} (the chain {mask_url(rpc_url)} serves)")
        # One block for the whole chain: a run indexes every market at the same block; otherwise the newest.
        block = int(positions["block_number"].max())  # type: ignore[arg-type]
        assets = sorted(set(positions["asset"].to_list()))
        links = discover_links(rpc, chain_id, assets, block)

        def convert(pieces: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
            return convert_exact(rpc, links, pieces, block)

        frames = chain_frames(positions, links, convert, wallet_risk)
    with Store(db) as store:
        store.replace_chain_tables(frames, chain_id, block)
        if publish:
            store.publish()
    return ChainsReport(
        chain_id=chain_id,
        block=block,
        links=len(links),
        chained_legs=frames["collateral_chains"].height,
        wallets=frames["wallet_lookthrough"].height,
        seconds=round(time.perf_counter() - started, 3),
    )
