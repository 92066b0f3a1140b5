"""`chainrisk index`: Aave V3 logs and a pinned-block snapshot into DuckDB, incremental and reorg-aware."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from chainrisk.errors import UserError
from chainrisk.protocols.aave_v3 import normalise
from chainrisk.protocols.aave_v3.constants import DEFAULT_MAINNET_CONFIRMATIONS
from chainrisk.protocols.aave_v3.events import POOL_TOPICS, TRANSFER_TOPIC, AaveEvent, decode_log, token_kinds
from chainrisk.protocols.aave_v3.snapshot import discover, read_accounts, read_emode_categories, read_reserves
from chainrisk.rpc import RpcClient, mask_url
from chainrisk.rpc.logs import iter_log_ranges
from chainrisk.store.db import Store

PROTOCOL = "aave-v3"
EVENTS_TABLE = "raw_aave_v3_events"
#: Chains whose blocks are final at once (local devnets): no reorg buffer needed.
LOCAL_CHAIN_IDS = frozenset({31337, 1337})
#: How far back a reorg is searched for before giving up and re-reading that whole window.
MAX_REORG_DEPTH = 256


@dataclass(frozen=True)
class IndexReport:
    chain_id: int  #: chain indexed
    market: str  #: PoolAddressesProvider
    from_block: int  #: first block read in this run
    to_block: int  #: pinned snapshot block
    events: int  #: events stored in this run
    wallets: int  #: wallets snapshotted
    wallets_with_debt: int  #: of which with debt
    reorg_rewound_to: int | None  #: watermark after a reorg repair, if one happened
    seconds: float  #: wall time


def _block(rpc: RpcClient, number: int) -> dict[str, str]:
    block: dict[str, str] | None = rpc.call("eth_getBlockByNumber", [hex(number), False])
    if block is None:
        raise UserError(f"the RPC has no block {number}")
    return block


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        disable=not sys.stderr.isatty(), transient=True,
    )  # fmt: skip


def _repair_reorg(
    rpc: RpcClient, store: Store, chain_id: int, market: str, events_to: int, stored_hash: str
) -> int | None:
    """Rewinds stored events past the fork point when the watermark block's hash changed; returns it."""
    if _block(rpc, events_to)["hash"] == stored_hash:
        return None
    floor = max(0, events_to - MAX_REORG_DEPTH)
    stored = store.block_hashes_after(chain_id, market, table=EVENTS_TABLE, after=floor)
    keep = floor
    if stored:
        numbers = sorted(stored)
        chain = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        for number, block in zip(numbers, chain, strict=True):
            if block is None or block["hash"] != stored[number]:
                break
            keep = number
    store.rewind_events(PROTOCOL, chain_id, market, table=EVENTS_TABLE, keep_through=keep)
    return keep


def index_aave_v3(
    rpc_url: str,
    provider: str,
    db_path: Path,
    *,
    from_block: int | None = None,
    to_block: int | None = None,
    confirmations: int | None = None,
    expected_chain_id: int | None = None,
    log_span: int = 10_000,
) -> IndexReport:
    """Indexes one Aave V3 market: new logs since the watermark, then every account at one pinned block."""
    started = time.perf_counter()
    provider = provider.lower()
    if not (provider.startswith("0x") and len(provider) == 42 and all(c in "0123456789abcdef" for c in provider[2:])):
        raise UserError(f"--address {provider!r} is not a 20-byte hex address")
    if (from_block is not None and from_block < 0) or (to_block is not None and to_block < 0):
        raise UserError("block numbers must be >= 0")
    if log_span < 1:
        raise UserError("--log-span must be >= 1")
    if from_block is not None and to_block is not None and from_block > to_block:
        raise UserError(f"--from-block {from_block} is after --to-block {to_block}")
    with RpcClient(rpc_url) as rpc:
        try:
            chain_id = int(rpc.call("eth_chainId"), 16)
            head = int(rpc.call("eth_blockNumber"), 16)
        except (TypeError, ValueError):
            raise UserError(f"{mask_url(rpc_url)} does not answer like an Ethereum JSON-RPC node") from None
        if expected_chain_id is not None and chain_id != expected_chain_id:
            raise UserError(f"the RPC serves chain {chain_id}, but the market lives on chain {expected_chain_id}")
        if confirmations is None:
            confirmations = 0 if chain_id in LOCAL_CHAIN_IDS else DEFAULT_MAINNET_CONFIRMATIONS
        safe_head = head - confirmations
        target = safe_head if to_block is None else to_block
        if target > head:
            raise UserError(f"--to-block {target} is beyond the chain head {head}")
        deployment = discover(rpc, provider, target)

        with Store(db_path) as store:
            other_chains = [c for c in store.chains_of_market(PROTOCOL, provider) if c != chain_id]
            if other_chains:
                raise UserError(
                    f"{db_path} holds market {provider} from chain {other_chains[0]}, but the RPC serves chain "
                    f"{chain_id}; use another --db or the right --rpc-url"
                )
            state = store.sync_state(PROTOCOL, chain_id, provider)
            rewound = None
            if state and state.events_to_block is not None and state.events_to_block_hash:
                rewound = _repair_reorg(
                    rpc, store, chain_id, provider, state.events_to_block, state.events_to_block_hash
                )
                state = store.sync_state(PROTOCOL, chain_id, provider)
            first = from_block if from_block is not None else (state.from_block if state else 0)
            start = first
            if state and state.events_to_block is not None and from_block is None:
                start = state.events_to_block + 1
            if start > target + 1:
                raise UserError(f"the database is already indexed to block {start - 1}, after --to-block {target}")

            reserves = read_reserves(rpc, deployment, target)
            kinds = token_kinds(reserves)
            addresses = [deployment.pool, *kinds]
            topics = [[*POOL_TOPICS, TRANSFER_TOPIC]]
            stored_events = 0
            with _progress() as bar:
                task = bar.add_task(f"logs {start:,}..{target:,}", total=max(1, target - start + 1))
                for lo, hi, logs in iter_log_ranges(rpc, addresses, topics, start, target, initial_span=log_span):
                    events: list[AaveEvent] = [e for e in (decode_log(log, kinds) for log in logs) if e]
                    frame = normalise.events_frame(events, chain_id, provider)
                    store.write_events(
                        PROTOCOL, chain_id, provider, lo, hi, _block(rpc, hi)["hash"], frame,
                        table=EVENTS_TABLE, start_block=first,
                    )  # fmt: skip
                    stored_events += len(events)
                    bar.update(task, completed=hi - start + 1)

            wallets_frame = store.query(
                f"""
                SELECT wallet FROM {EVENTS_TABLE} WHERE chain_id = ? AND market = ?
                UNION
                SELECT counterparty FROM {EVENTS_TABLE}
                WHERE chain_id = ? AND market = ? AND event IN ({", ".join("?" * len(normalise.CALLER_EVENTS))})
                  AND counterparty IS NOT NULL
                ORDER BY 1
                """,
                [chain_id, provider, chain_id, provider, *normalise.CALLER_EVENTS],
            )
            wallets = [w for w in wallets_frame["wallet"].to_list() if w != "0x" + "0" * 40]
            held = store.query(
                f"SELECT DISTINCT wallet, reserve FROM {EVENTS_TABLE} "
                "WHERE chain_id = ? AND market = ? AND event = 'ATokenTransfer'",
                [chain_id, provider],
            )
            reserve_ids = {r.asset: r.reserve_id for r in reserves}
            masks: dict[str, int] = {}
            for wallet, reserve in held.iter_rows():
                if reserve in reserve_ids:
                    masks[wallet] = masks.get(wallet, 0) | (1 << reserve_ids[reserve])

            block = _block(rpc, target)
            timestamp = int(block["timestamp"], 16)
            categories = read_emode_categories(rpc, deployment, {r.config.emode_category for r in reserves}, target)
            accounts = read_accounts(rpc, deployment, reserves, wallets, masks, target)
            computed = normalise.compute_accounts(accounts, reserves, categories)
            positions, health = normalise.contract_frames(
                accounts, computed, chain_id, provider, target, timestamp, deployment.base_currency_unit
            )
            frames = {
                "raw_aave_v3_reserves": normalise.reserves_frame(
                    reserves, chain_id, provider, target, deployment.base_currency_unit
                ),
                "raw_aave_v3_emode_categories": normalise.emode_frame(categories, chain_id, provider, target),
                "raw_aave_v3_accounts": normalise.accounts_frame(accounts, chain_id, provider, target),
                "raw_aave_v3_balances": normalise.balances_frame(accounts, reserves, chain_id, provider, target),
                "positions": positions,
                "wallet_health": health,
            }
            store.write_snapshot(PROTOCOL, chain_id, provider, target, block["hash"], timestamp, frames)
    return IndexReport(
        chain_id=chain_id,
        market=provider,
        from_block=start,
        to_block=target,
        events=stored_events,
        wallets=len(accounts),
        wallets_with_debt=sum(1 for c in computed if c.total_debt_base),
        reorg_rewound_to=rewound,
        seconds=round(time.perf_counter() - started, 3),
    )
