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

from chainrisk.chains.graph import fitting_links
from chainrisk.chains.lookthrough import chain_frames
from chainrisk.errors import UserError
from chainrisk.protocols.graph import convert_exact, discover_links
from chainrisk.rpc import RpcClient, RpcUsage, mask_url
from chainrisk.store.db import Store


@dataclass(frozen=True)
class ChainsReport:
    chain_id: int
    block: int
    links: int  #: wrapper assets found
    chained_legs: int  #: position legs that go through at least one link
    wallets: int  #: end owners looked through
    seconds: float
    rpc_requests: int = 0  #: HTTP requests sent to the chain's RPC, retries included (RpcClient.usage)
    rpc_calls: int = 0  #: JSON-RPC calls in them
    #: wrappers held but not looked through: a rate or a claim past 38 digits (chains.graph.fitting_links,
    #: lookthrough.legs), or a cycle of wrappers; their holders' exposure is to the wrapper itself
    unfollowed: tuple[str, ...] = ()

    def line(self) -> str:
        text = (
            f"chains at block {self.block}: {self.links} wrapped assets, {self.chained_legs} chained positions "
            f"of {self.wallets} wallets ({self.seconds:.1f} s; {RpcUsage(self.rpc_requests, self.rpc_calls).line()})"
        )
        if self.unfollowed:
            text += (
                f"; warning: {len(self.unfollowed)} wrapped asset(s) not looked through (a rate or a claim past 38 "
                f"digits, or a cycle): {', '.join(self.unfollowed)}"
            )
        return text


def index_chains(
    rpc_url: str,
    db: Path,
    *,
    publish: bool = True,
    positions: pl.DataFrame | None = None,
    wallet_risk: pl.DataFrame | None = None,
) -> ChainsReport:
    """Builds the chain tables for the latest snapshot of the chain `rpc_url` serves; `positions` and `wallet_risk`:
    the store's latest ones when the caller has just read them (a run passes the score's positions, and reads the
    wallet risk once for all its chains), else they are read here."""
    started = time.perf_counter()
    if not db.is_file():
        raise UserError(f"no database at {db}; run `chainrisk run` (or index) first")
    if positions is None or wallet_risk is None:
        with Store(db, read_only=True) as store:
            positions = store.latest_positions() if positions is None else positions
            wallet_risk = store.latest_wallet_risk() if wallet_risk is None else wallet_risk
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
        found = discover_links(rpc, chain_id, assets, block)
        links, unfit = fitting_links(found)

        def convert(pieces: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
            return convert_exact(rpc, links, pieces, block)

        frames = chain_frames(positions, links, convert, wallet_risk)
        usage = rpc.usage
    # Exposure left in a wrapper itself: one the graph leaves out, or a claim on it no HUGEINT holds.
    held = set(frames["wallet_exposure"]["base_asset"].to_list())
    unfollowed = sorted((held & set(found)) | (set(unfit) & set(positions["asset"].to_list())))
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
        rpc_requests=usage.requests,
        rpc_calls=usage.calls,
        unfollowed=tuple(f"{found[a].asset.symbol} ({a})" for a in unfollowed),
    )
