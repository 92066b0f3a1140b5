"""`chainrisk credit history`: health, holdings and look-through sampled at past blocks, for features as of a cutoff.

The chain keeps its past state (an archive node, or anvil), so each sample is the same exact snapshot a run takes,
pinned at a past block: every market's accounts known from events stored up to that block, scored by the health
engine, looked through the asset graph read at that block. Samples sit on a time grid (every `every_s` seconds of
chain time, each the last block at or before its grid time) between the first stored event and the events watermark.
A sample is written in one transaction, so an interrupted backfill resumes where it stopped; samples already stored
are skipped. The blocks events were stored from get their timestamps here too (features measure time in seconds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from chainrisk.chains.graph import fitting_links
from chainrisk.config import Config
from chainrisk.credit.samples import grid, sample_frames
from chainrisk.errors import UserError
from chainrisk.protocols.adapter import adapter_for
from chainrisk.protocols.graph import convert_exact, discover_links
from chainrisk.rpc import RpcClient, mask_url
from chainrisk.store.db import Store, keep_open
from chainrisk.terminal import terminal_progress
from chainrisk.units import DAY_S


@dataclass(frozen=True)
class HistoryReport:
    chain_id: int
    added: int  #: samples written by this command
    total: int  #: samples stored for the chain
    first_block: int | None  #: earliest sample stored
    last_block: int | None  #: latest sample stored
    seconds: float

    def line(self) -> str:
        span = f"blocks {self.first_block}..{self.last_block}" if self.total else "no blocks"
        return (
            f"credit history: {self.added} new sample(s), {self.total} stored for chain {self.chain_id} ({span}) "
            f"in {self.seconds:.1f} s"
        )


class BlockClock:
    """Block timestamps by number, read once each; finds the last block at or before a time by bisection."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc
        self.times: dict[int, int] = {}
        self.hashes: dict[int, str] = {}

    def _read(self, numbers: list[int]) -> None:
        wanted = sorted({n for n in numbers if n not in self.times})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            blocks = self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
            for n, block in zip(chunk, blocks, strict=True):
                if block is None:
                    raise UserError(f"the RPC has no block {n}")
                self.times[n] = int(block["timestamp"], 16)
                self.hashes[n] = str(block["hash"])

    def timestamps(self, numbers: list[int]) -> dict[int, int]:
        self._read(numbers)
        return {n: self.times[n] for n in numbers}

    def at_or_before(self, when: int, lo: int, hi: int) -> int:
        """The last block in [lo, hi] whose timestamp is <= `when` (lo when none is)."""
        while lo < hi:
            mid = (lo + hi + 1) // 2
            self._read([mid])
            if self.times[mid] <= when:
                lo = mid
            else:
                hi = mid - 1
        return lo


def backfill(
    config: Config,
    rpc_url: str,
    *,
    every_s: int = DAY_S,
    from_block: int | None = None,
    to_block: int | None = None,
    publish: bool = True,
) -> HistoryReport:
    """Samples every grid time between the first stored event (or `from_block`) and the events watermark (or
    `to_block`) not sampled yet; see the module docstring."""
    started = time.perf_counter()
    if every_s < 60:
        raise UserError("--every must be at least a minute")
    db = config.db
    if not db.is_file():
        raise UserError(f"no database at {db}; run `chainrisk run` (or index) first")
    # One DuckDB instance through the backfill, as a run keeps one (two opens a sample cost ~0.1 s each).
    with keep_open(db), RpcClient(rpc_url) as rpc:
        try:
            chain_id = int(rpc.call("eth_chainId"), 16)
        except (TypeError, ValueError):
            raise UserError(f"{mask_url(rpc_url)} does not answer like an Ethereum JSON-RPC node") from None
        markets = []
        with Store(db) as store:  # writable: an older file is migrated to the credit tables first
            for market in config.markets:
                adapter = adapter_for(market.protocol)
                state = store.sync_state(adapter.name, chain_id, market.address)
                if state is None or state.events_to_block is None:
                    raise UserError(
                        f"{db} holds no events of {market.name or market.address} on chain {chain_id}; "
                        "run `chainrisk run` against this RPC first"
                    )
                first = store.query(
                    f"SELECT min(block_number) AS b FROM {adapter.events_table} WHERE chain_id = ? AND market = ?",
                    [chain_id, market.address],
                )["b"][0]
                markets.append((market, adapter, state.events_to_block, first))
            done = set(
                store.query("SELECT block_number FROM credit_samples WHERE chain_id = ?", [chain_id])[
                    "block_number"
                ].to_list()
            )
        if not markets:
            raise UserError("no markets to sample")
        watermark = min(m[2] for m in markets)
        firsts = [m[3] for m in markets if m[3] is not None]
        if not firsts:
            raise UserError(f"{db} holds no events yet; nothing to sample")
        lo = from_block if from_block is not None else min(firsts)
        hi = watermark if to_block is None else to_block
        if hi > watermark:
            raise UserError(f"--to-block {hi} is after block {watermark}, where stored events end; run first")
        if lo > hi:
            raise UserError(f"--from-block {lo} is after the last block to sample ({hi})")
        clock = BlockClock(rpc)
        times = clock.timestamps([lo, hi])
        blocks = sorted({clock.at_or_before(t, lo, hi) for t in grid(times[lo], times[hi], every_s)} | {hi})
        todo = [b for b in blocks if b not in done]
        added = 0
        with terminal_progress() as bar:
            task = bar.add_task(f"credit history: {len(todo)} samples", total=max(1, len(todo)))
            for block in todo:
                _sample(rpc, config, chain_id, markets, block, clock)
                added += 1
                bar.update(task, completed=added)
        _store_event_times(rpc, db, chain_id, markets, hi, clock)
        with Store(db) as store:
            row = store.query(
                "SELECT count(*) AS n, min(block_number) AS lo, max(block_number) AS hi FROM credit_samples "
                "WHERE chain_id = ?",
                [chain_id],
            ).row(0)
            if publish:
                store.publish()
    return HistoryReport(chain_id, added, int(row[0]), row[1], row[2], round(time.perf_counter() - started, 3))


def _sample(rpc: RpcClient, config: Config, chain_id: int, markets: list[Any], block: int, clock: BlockClock) -> None:
    db = config.db
    started = time.perf_counter()
    timestamp = clock.timestamps([block])[block]
    frames = []
    with Store(db, read_only=True) as store:
        events = {
            market.address: store.query(
                f"SELECT DISTINCT {', '.join(adapter.account_columns)} FROM {adapter.events_table} "
                "WHERE chain_id = ? AND market = ? AND block_number <= ?",
                [chain_id, market.address, block],
            )
            for market, adapter, _, _ in markets
        }
    for market, adapter, _, _ in markets:
        if rpc.call("eth_getCode", [market.address, hex(block)]) in ("0x", "0x0", None):
            continue  # not deployed yet at this block
        deployment = adapter.discover(rpc, market.address, block, market.options)
        snapshot = adapter.snapshot(rpc, deployment, events[market.address], chain_id, block, timestamp)
        positions = snapshot.frames.get("positions")
        if positions is not None and positions.height:
            frames.append(positions)
    rows: dict[str, pl.DataFrame] = {}
    wallets = 0
    if frames:
        positions = pl.concat(frames, how="diagonal_relaxed").sort("protocol", "chain_id", "market", "wallet", "asset")
        links, _ = fitting_links(discover_links(rpc, chain_id, sorted(set(positions["asset"].to_list())), block))

        def convert(pieces: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
            return convert_exact(rpc, links, pieces, block)

        rows = sample_frames(positions, links, convert, timestamp)
        wallets = rows["wallet_health_history"]["wallet"].n_unique()
    rows["credit_samples"] = pl.DataFrame(
        {
            "chain_id": [chain_id],
            "block_number": [block],
            "block_timestamp": [timestamp],
            "block_hash": [clock.hashes[block]],
            "markets": [len(frames)],
            "wallets": [wallets],
            "seconds": [round(time.perf_counter() - started, 3)],
            "sampled_at": [datetime.now(UTC)],
        }
    )
    rows["block_times"] = pl.DataFrame(
        {"chain_id": [chain_id], "block_number": [block], "block_timestamp": [timestamp]}
    )
    with Store(db) as store:
        store.replace_history(rows, chain_id, [block], config.storage)


def _store_event_times(
    rpc: RpcClient, db: Path, chain_id: int, markets: list[Any], through: int, clock: BlockClock
) -> None:
    """Timestamps of every block an event was stored from, through `through`, that block_times lacks."""
    with Store(db, read_only=True) as store:
        union = " UNION ".join(
            f"SELECT DISTINCT block_number FROM {adapter.events_table} WHERE chain_id = {chain_id:d} "
            f"AND block_number <= {through:d}"
            for _, adapter, _, _ in {m[1].name: m for m in markets}.values()
        )
        missing = store.query(
            f"SELECT block_number FROM ({union}) e WHERE block_number NOT IN "
            "(SELECT block_number FROM block_times WHERE chain_id = ?) ORDER BY 1",
            [chain_id],
        )["block_number"].to_list()
    if not missing:
        return
    times = clock.timestamps(missing)
    frame = pl.DataFrame(
        {
            "chain_id": [chain_id] * len(missing),
            "block_number": missing,
            "block_timestamp": [times[n] for n in missing],
        },
        schema={"chain_id": pl.Int64, "block_number": pl.Int64, "block_timestamp": pl.Int64},
    )
    with Store(db) as store:
        store.replace_history({"block_times": frame}, chain_id, missing)
