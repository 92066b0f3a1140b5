"""`chainrisk index`: any protocol adapter's logs and a pinned-block snapshot into DuckDB, incremental and
reorg-aware."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from chainrisk.errors import UserError
from chainrisk.protocols.adapter import Adapter, Previous, adapter_for, adapters
from chainrisk.protocols.frames import STANDIN_MARK, default_markets, standin_names
from chainrisk.protocols.quality import data_quality_frame
from chainrisk.rpc import RpcClient, RpcError, RpcSettings, mask_url
from chainrisk.rpc.logs import iter_log_ranges
from chainrisk.store.db import Store, StoredMarket, SyncState
from chainrisk.store.schema.core import CONTRACT_TABLES
from chainrisk.terminal import terminal_progress

#: Mainnet's default: blocks behind the head the indexer stays, so a reorg rarely touches stored data.
DEFAULT_MAINNET_CONFIRMATIONS = 12
#: Chains whose blocks are final at once (local devnets): no reorg buffer needed.
LOCAL_CHAIN_IDS = frozenset({31337, 1337})
#: How far back a reorg is searched for before giving up and re-reading that whole window.
MAX_REORG_DEPTH = 256


@dataclass(frozen=True)
class IndexReport:
    protocol: str  #: adapter name
    chain_id: int  #: chain indexed
    market: str  #: the indexed contract (PoolAddressesProvider, Morpho singleton)
    from_block: int  #: first block read in this run
    to_block: int  #: pinned snapshot block
    events: int  #: events stored in this run
    wallets: int  #: wallets snapshotted
    wallets_with_debt: int  #: of which with debt
    reorg_rewound_to: int | None  #: watermark after a reorg repair (of every market read with this one), if any
    seconds: float  #: wall time
    faults_absorbed: dict[str, int]  #: transient RPC faults retried or re-split, by kind (chainrisk.rpc.FAULT_KINDS)
    #: Odd contracts the snapshot met (its `data_quality` rows), by kind (chainrisk.protocols.quality.KINDS).
    data_quality: dict[str, int] = field(default_factory=dict)
    #: The markets where something was left unknown (USD, a symbol, a health factor), sorted.
    markets_with_unknowns: list[str] = field(default_factory=list)
    rpc_requests: int = 0  #: HTTP requests the index sent its RPC, retries included (RpcClient.usage)
    rpc_calls: int = 0  #: JSON-RPC calls in them (what providers bill)


@contextmanager
def _node_refusals_as_user_errors() -> Iterator[None]:
    """A JSON-RPC error the node keeps giving (not a transient one) is one line for the user, not a traceback."""
    try:
        yield
    except RpcError as exc:
        raise UserError(
            f"the RPC refused {exc.method}: {exc.message} (code {exc.code}); check that --rpc-url is a full node of "
            "this chain (an archive node for blocks older than its history)"
        ) from None


def chain_confirmations(chain_id: int, confirmations: int | None) -> int:
    """Blocks behind the head a snapshot is taken at: `confirmations`, else the chain's default (0 on a local chain)."""
    if confirmations is not None:
        return confirmations
    return 0 if chain_id in LOCAL_CHAIN_IDS else DEFAULT_MAINNET_CONFIRMATIONS


@dataclass(frozen=True)
class ReorgRepair:
    """The reorg repair a caller made for a market before indexing it (chainrisk.jobs.run.index_markets, before it
    reads a chain's markets side by side): index_market then only checks that no reorg came since."""

    rewound_to: int | None  #: the block kept last (None: nothing to repair)


@dataclass(frozen=True)
class ReadyReport:
    """A chain made ready before its markets are read side by side (chain_ready), as a run reports it: its block and
    what it asked of the node (a run counts it with its markets')."""

    chain_id: int  #: the chain the URL serves
    block: int  #: the block the chain's markets are read at
    rpc_requests: int  #: HTTP requests sent, retries included (RpcClient.usage)
    rpc_calls: int  #: JSON-RPC calls in them
    faults_absorbed: dict[str, int]  #: transient RPC faults retried, by kind


@dataclass(frozen=True)
class ChainReady:
    """What chain_ready found and made."""

    report: ReadyReport  #: the block, and what was asked of the node
    repairs: list[ReorgRepair]  #: each market's reorg repair, in the order given


def chain_ready(
    rpc_url: str, db_path: Path, markets: Sequence[tuple[str, str]], confirmations: int | None, to_block: int | None
) -> ChainReady:
    """Before a chain's markets (`markets`: protocol and address each) are indexed side by side: the block they are
    read at (`to_block`, else the head less the confirmations, as index_market would pin it), and each market's reorg
    repair made as index_market would make it first, in the given order (a repair rewinds every market stored with
    it, so the later ones of that set find nothing to do). Each repair holds the file's writer lock and checks again
    under it: two chains' URLs serving one chain repair it once. The watermarks are checked in one batch; only a moved
    one is repaired (README "Reliability: faults, reorgs, crashes, concurrency and bad input")."""
    with RpcClient(rpc_url) as rpc, _node_refusals_as_user_errors():

        def done(block: int, repairs: list[ReorgRepair]) -> ChainReady:
            usage = rpc.usage
            return ChainReady(ReadyReport(chain_id, block, usage.requests, usage.calls, rpc.faults_absorbed), repairs)

        try:
            chain_id, head = rpc.chain_and_head()
            block = to_block if to_block is not None else head - chain_confirmations(chain_id, confirmations)
        except (TypeError, ValueError):
            raise UserError(f"{mask_url(rpc_url)} does not answer like an Ethereum JSON-RPC node") from None
        if block < 0:
            raise UserError(f"the chain {mask_url(rpc_url)} serves is younger than its confirmations")
        if not db_path.is_file():
            return done(block, [ReorgRepair(None) for _ in markets])
        repairs = []
        with Store(db_path) as store:
            watermarks = [_watermark(store.sync_state(p, chain_id, a.lower())) for p, a in markets]
            marks = sorted({w[0] for w in watermarks if w is not None})
            found = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in marks])
            hashes = {n: b["hash"] if b is not None else None for n, b in zip(marks, found, strict=True)}
            for (protocol, address), watermark in zip(markets, watermarks, strict=True):
                if watermark is None or hashes[watermark[0]] == watermark[1]:
                    repairs.append(ReorgRepair(None))
                else:
                    with store.writing():
                        repairs.append(
                            ReorgRepair(_repair_reorg(_Blocks(rpc), store, protocol, chain_id, address.lower()))
                        )
        return done(block, repairs)


def faults_line(faults: dict[str, int]) -> str:
    """'41 RPC faults (http_429 6, timeout 6, ...)', most frequent first."""
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(faults.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{sum(faults.values())} RPC faults ({kinds})"


def quality_line(kinds: dict[str, int], markets_with_unknowns: int) -> str:
    """'data quality: 3 markets with unknowns (no_decimals 2, oracle_reverts 1)', most frequent kind first."""
    listed = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"data quality: {markets_with_unknowns} market(s) with unknowns ({listed})"


class _Blocks:
    """The blocks (headers: eth_getBlockByNumber without transactions) one market's index reads, each asked of the
    node once: the watermark's, each log range's last, the pinned block's and the previous snapshot's are mostly the
    same one or two blocks. Held for one index_market call, whose blocks are all at or below its pinned block: a reorg
    that replaces one while the market is read is found by the next run's watermark check, as it was when each read
    asked again."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc
        self._found: dict[int, dict[str, str]] = {}

    def wants(self, number: int) -> bool:
        """Whether block `number` is still to be asked (a caller batching it with other calls asks it then)."""
        return number not in self._found

    def keep(self, number: int, block: dict[str, str] | None) -> None:
        """A block the caller asked for in a batch of its own."""
        if block is not None:
            self._found[number] = block

    def get(self, number: int) -> dict[str, str] | None:
        """Block `number`, None when the node has none (not kept: it is asked again)."""
        if number not in self._found:
            self.keep(number, self.rpc.call("eth_getBlockByNumber", [hex(number), False]))
        return self._found.get(number)

    def required(self, number: int) -> dict[str, str]:
        block = self.get(number)
        if block is None:
            raise UserError(f"the RPC has no block {number}")
        return block


def _with_receipts(rpc: RpcClient, adapter: Adapter[Any], deployment: Any, events: pl.DataFrame) -> pl.DataFrame:
    """`events` completed from the receipts of the transactions the adapter asks for (Adapter.receipts_wanted): one
    batch of eth_getTransactionReceipt per range of logs, only where a range holds such an event (liquidations: rare).
    A receipt the node refuses or does not have, or one from another block than the event's (a reorg between the two
    reads, which the next run's reorg check repairs), leaves its events as they were."""
    wanted = adapter.receipts_wanted(deployment, events)
    if not wanted:
        return events
    answers = rpc.batch_each([("eth_getTransactionReceipt", [h]) for h in wanted])
    blocks = dict(zip(events["tx_hash"], events["block_hash"], strict=True))
    receipts = {
        h: r
        for h, r in zip(wanted, answers, strict=True)
        if isinstance(r, dict) and r.get("blockHash") == blocks.get(h) and isinstance(r.get("logs"), list)
    }
    return adapter.with_receipts(deployment, events, receipts)


def _stored_names(store: Store, adapter: Adapter[Any], table: str, chain_id: int, market: str) -> pl.DataFrame:
    """The distinct `follow_columns` of the market's stored events (none NULL): the contracts they named that the
    adapter follows (Adapter.follow)."""
    columns = adapter.follow_columns
    if not columns:
        return pl.DataFrame()
    known = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    return store.query(
        f"SELECT DISTINCT {', '.join(columns)} FROM {table} WHERE chain_id = ? AND market = ? AND {known}",
        [chain_id, market],
    )


def _follow(
    rpc: RpcClient,
    adapter: Adapter[Any],
    deployment: Any,
    addresses: list[str],
    read: tuple[int, int, list[dict[str, Any]]],
    frame: pl.DataFrame,
) -> tuple[Any, pl.DataFrame]:
    """A range's decoded events (`frame`, of the logs `read`: from, to, logs) and the deployment, once the contracts
    they name are followed (Adapter.follow): a contract new to the log filter has this range's logs read too and the
    range decoded again with it, and it joins `addresses` (in place) for the ranges after. A Bark of a Clipper the Dog
    no longer names, in a first index of old blocks, has its auction's takes in the same range read this way."""
    if not adapter.follow_columns or frame.is_empty():
        return deployment, frame
    named = frame.select(adapter.follow_columns).drop_nulls().unique()
    followed = adapter.follow(deployment, named)
    query = adapter.log_query(followed)
    more = [a for a in query.addresses if a not in addresses]
    if not more:
        return followed, frame
    lo, hi, logs = read
    extra = [
        log
        for _, _, found in iter_log_ranges(rpc, more, query.topics, lo, hi, initial_span=hi - lo + 1)
        for log in found
    ]
    addresses.extend(more)
    ordered = sorted([*logs, *extra], key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
    return followed, adapter.events_frame(followed, ordered)


def _stored_market(adapter: Adapter[Any], market: str) -> StoredMarket:
    # An adapter's snapshot writes its raw tables other than the events table, and the shared contract tables.
    snapshot_tables = (*(t for t in adapter.tables() if t != adapter.events_table), *CONTRACT_TABLES)
    return StoredMarket(adapter.name, market, adapter.events_table, snapshot_tables)


def _watermark(state: SyncState | None) -> tuple[int, str] | None:
    """The block a market's stored logs reach and its hash; None when nothing is stored."""
    if state is None or state.events_to_block is None or not state.events_to_block_hash:
        return None
    return state.events_to_block, state.events_to_block_hash


def _pin_calls(address: str, block: int, mark: int | None) -> list[tuple[str, list[Any]]]:
    """The contract's code and the header at the pinned `block`, and the header of the watermark `mark` (where there is
    one, and another block)."""
    calls: list[tuple[str, list[Any]]] = [
        ("eth_getCode", [address, hex(block)]),
        ("eth_getBlockByNumber", [hex(block), False]),
    ]
    if mark is not None and mark != block:
        calls.append(("eth_getBlockByNumber", [hex(mark), False]))
    return calls


def _stored_watermarks(db_path: Path, protocol: str, market: str) -> dict[int, int]:
    """The block the market's stored logs reach, per chain the file holds it on: read before the chain is asked for
    the pinned block, so that the watermark's header comes in the same round trip (the reorg check then asks nothing
    more). Empty when nothing is stored, or the file cannot be read as it is (the index's own open, which may migrate
    it, says why)."""
    if not db_path.is_file():
        return {}
    try:
        with Store(db_path, read_only=True) as store:
            chains = store.chains_of_market(protocol, market)
            marks = {chain: _watermark(store.sync_state(protocol, chain, market)) for chain in chains}
    except (UserError, duckdb.Error):
        return {}
    return {chain: mark[0] for chain, mark in marks.items() if mark is not None}


def _moved_watermark(
    blocks: _Blocks, store: Store, protocol: str, chain_id: int, market: str
) -> tuple[int, str] | None:
    """The market's watermark (block, hash) when the chain no longer holds it (a reorg replaced the block, or the
    chain is now shorter); None when it does, or nothing is stored."""
    watermark = _watermark(store.sync_state(protocol, chain_id, market))
    if watermark is None:
        return None
    block = blocks.get(watermark[0])
    return None if block is not None and block["hash"] == watermark[1] else watermark


def _repair_reorg(blocks: _Blocks, store: Store, protocol: str, chain_id: int, market: str) -> int | None:
    """When the chain no longer holds the watermark block this market stored (a reorg replaced it, or the chain is
    now shorter), drops everything stored from blocks after the fork point; returns the block kept last."""
    rpc = blocks.rpc
    moved = _moved_watermark(blocks, store, protocol, chain_id, market)
    if moved is None:
        return None
    events_to, stored_hash = moved
    # Markets indexed against the same chain as this one (same watermark block and hash, as a run leaves them) are
    # repaired with it: the hashes they stored together pin the fork point, so a quiet market keeps the snapshots
    # it took before the fork. A market indexed at another time may have read another chain: no evidence.
    found = adapters()
    group = [
        _stored_market(found[p], m)
        for p, m in store.markets_at_watermark(chain_id, events_to, stored_hash)
        if p in found
    ]
    floor = max(0, events_to - MAX_REORG_DEPTH)
    stored = store.stored_block_hashes(chain_id, group, after=floor, through=events_to)
    numbers = [floor, *sorted(stored)]
    found_blocks: list[dict[str, str] | None] = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
    canonical = {n: b["hash"] for n, b in zip(numbers, found_blocks, strict=True) if b is not None}
    if floor not in canonical:
        raise UserError(
            f"the RPC's chain ends before block {floor}, {MAX_REORG_DEPTH} blocks below block {events_to} this "
            "database is indexed to; check --rpc-url (a node still syncing?)"
        )
    # Hashes chain: the highest block whose stored hash the chain still has, below every one it lost, is the fork.
    keep = floor
    for number in numbers[1:]:
        if stored[number] != {canonical.get(number)}:
            break
        keep = number
    store.rewind(chain_id, group, keep_through=keep, keep_hash=canonical[keep])
    return keep


#: Blocks probed per round trip when searching for a contract's first block with code: 15 cut the range 16-fold a
#: round trip, 7 round trips at most for Ethereum's 24M blocks where bisection took 25.
DEPLOYMENT_PROBES = 15


def deployment_block(rpc: RpcClient, address: str, at: int) -> int:
    """The first block at which `address` has code (it has code at `at`), by a search over eth_getCode (each round
    trip probes DEPLOYMENT_PROBES blocks spread over the range left): no log before it can be the contract's. A node
    without old state (not an archive node) cannot tell: 0 then."""
    lo, hi = 0, at  # the first block with code lies in [lo, hi]
    try:
        while lo < hi:
            step = (hi - lo) / (DEPLOYMENT_PROBES + 1)
            probes = sorted({lo + int(step * k) for k in range(1, DEPLOYMENT_PROBES + 1)} - {hi} | {lo})
            codes = rpc.batch([("eth_getCode", [address, hex(n)]) for n in probes])
            for number, code in zip(probes, codes, strict=True):
                if code not in ("0x", "0x0", None):
                    hi = number
                    break
                lo = number + 1
    except RpcError:
        return 0
    return lo


def _check_address(address: str, flag: str = "--address") -> str:
    address = address.lower()
    if not (address.startswith("0x") and len(address) == 42 and all(c in "0123456789abcdef" for c in address[2:])):
        raise UserError(f"{flag} {address!r} is not a 20-byte hex address")
    return address


def _previous_snapshot(
    blocks: _Blocks, store: Store, adapter: Adapter[Any], chain_id: int, market: str, target: int
) -> Previous | None:
    """The market's last stored snapshot for Adapter.snapshot_since (its `previous_tables` rows and the events stored
    after it); None when the adapter takes none, there is none at or before `target`, or its block is no longer the
    chain's (the caller also passes None after repairing a reorg)."""
    if not adapter.previous_tables:
        return None
    state = store.sync_state(adapter.name, chain_id, market)
    if state is None or state.snapshot_block is None or state.snapshot_block > target:
        return None
    block = state.snapshot_block
    if not state.snapshot_block_hash or blocks.required(block)["hash"] != state.snapshot_block_hash:
        return None
    raw = {
        table: store.query(f"SELECT * FROM {table} WHERE chain_id = ? AND market = ?", [chain_id, market])
        for table in adapter.previous_tables
    }
    # Every table must hold one snapshot's rows, that one or, for a table no snapshot since changed (it is not written
    # again: Store._replace_rows), an earlier one (a file written by another version may hold something else: read
    # afresh).
    if any(
        frame.height and (frame["block_number"].n_unique() != 1 or frame["block_number"][0] > block)
        for frame in raw.values()
    ):
        return None
    events = store.query(
        f"SELECT DISTINCT {', '.join(adapter.account_columns)} FROM {adapter.events_table} "
        "WHERE chain_id = ? AND market = ? AND block_number > ?",
        [chain_id, market, block],
    )
    return Previous(block, raw, events)


def index_market(
    protocol: str,
    rpc_url: str,
    address: str,
    db_path: Path,
    *,
    options: dict[str, str] | None = None,
    from_block: int | None = None,
    to_block: int | None = None,
    confirmations: int | None = None,
    expected_chain_id: int | None = None,
    log_span: int = 10_000,
    rpc_settings: RpcSettings | None = None,
    name: str | None = None,
    repaired: ReorgRepair | None = None,
    head_reached: bool = False,
) -> IndexReport:
    """Indexes one protocol deployment: new logs since the watermark, then every account at one pinned block.
    `name` is the config's name for the market: one that says it is a stand-in (STANDIN_MARK) names its markets so.
    `repaired`: the caller made the market's reorg repair already (chain_ready); a reorg found now is refused in one
    line, and the next run repairs it (its markets may be being read side by side: a repair would rewind them).
    `head_reached`: `to_block` is a block the node's head has reached (a run pinned it from a head), so its code and
    header can be asked with the chain id and head."""
    started = time.perf_counter()
    adapter = adapter_for(protocol)
    address = _check_address(address)
    options = dict(options or {})
    unknown = sorted(set(options) - set(adapter.option_names))
    if unknown:
        raise UserError(
            f"{protocol} takes no option {unknown[0]!r}; it takes: {', '.join(adapter.option_names) or 'none'}"
        )
    for key, value in options.items():
        if key not in adapter.text_options:
            options[key] = _check_address(value, key)
    if (from_block is not None and from_block < 0) or (to_block is not None and to_block < 0):
        raise UserError("block numbers must be >= 0")
    if log_span < 1:
        raise UserError("--log-span must be >= 1")
    if from_block is not None and to_block is not None and from_block > to_block:
        raise UserError(f"--from-block {from_block} is after --to-block {to_block}")
    table = adapter.events_table
    with RpcClient(rpc_url, rpc_settings) as rpc, _node_refusals_as_user_errors():
        # Every adapter's contract must exist at the snapshot block; what kind of contract it is, each checks. The
        # block's header, which the snapshot stamps, comes in the same round trip, and so does the header of the
        # block the market's stored logs reach, which the reorg check compares (read from the file first). Where the
        # caller pinned `to_block` from a head it saw (`head_reached`: a run's markets after its first), they come
        # with the chain id and head; else in a round trip of their own once the block is known.
        marks = _stored_watermarks(db_path, protocol, address)
        # The chain the market is read from, as far as the file tells before the node does.
        guess = expected_chain_id if expected_chain_id is not None else next(iter(marks)) if len(marks) == 1 else None
        mark = marks.get(guess) if guess is not None else None
        early = head_reached and to_block is not None
        opening: list[tuple[str, list[Any]]] = [("eth_chainId", []), ("eth_blockNumber", [])]
        if early and to_block is not None:
            opening += _pin_calls(address, to_block, mark)
        try:
            answers = rpc.batch(opening)
            chain_id, answered_head = int(answers[0], 16), int(answers[1], 16)
            head = rpc.head(at_least=to_block, answered=answered_head)
        except (TypeError, ValueError):
            raise UserError(f"{mask_url(rpc_url)} does not answer like an Ethereum JSON-RPC node") from None
        if expected_chain_id is not None and chain_id != expected_chain_id:
            raise UserError(
                f"the RPC serves chain {chain_id}, but the market lives on chain {expected_chain_id}; point "
                f"--rpc-url at a chain-{expected_chain_id} node, or fix chain_id in the config"
            )
        held_back = chain_confirmations(chain_id, confirmations)
        target = head - held_back if to_block is None else to_block
        if target > head:
            raise UserError(
                f"--to-block {target} is beyond the chain head {head}; give --to-block {head} or less, or leave it out"
            )
        if target < 0:
            raise UserError(
                f"{held_back} confirmations are more than the chain's {head + 1} blocks; give --confirmations {head} "
                "or less"
            )
        if from_block is not None and from_block > target:
            end = f"--to-block {target}" if to_block is not None else f"the head {head} less {held_back} confirmations"
            raise UserError(
                f"--from-block {from_block} is after the block to index to ({end}); give --from-block {target} or less"
            )
        if guess != chain_id:  # the file's watermark was another chain's (or none was known): this chain's
            mark = marks.get(chain_id)
        if early and answered_head >= target:
            code, pinned, *marked = answers[2:]
            if guess != chain_id:
                marked = []  # another chain's header: the reorg check asks this chain's, if it has a watermark
        else:  # no pin, or a pool member behind it answered: asked now, at the block the head has reached
            code, pinned, *marked = rpc.batch(_pin_calls(address, target, mark))
        blocks = _Blocks(rpc)
        blocks.keep(target, pinned)
        if marked and mark is not None:
            blocks.keep(mark, marked[0])
        if code in ("0x", "0x0", None):
            raise UserError(f"no contract at {address} on this chain at block {target}; check --address and --rpc-url")
        deployment = adapter.discover(rpc, address, target, options)

        with Store(db_path) as store:
            store.ensure_tables(adapter.ddl)
            other_chains = [c for c in store.chains_of_market(protocol, address) if c != chain_id]
            if other_chains:
                raise UserError(
                    f"{db_path} holds market {address} from chain {other_chains[0]}, but the RPC serves chain "
                    f"{chain_id}; use another --db or the right --rpc-url"
                )
            if repaired is None:
                rewound = _repair_reorg(blocks, store, protocol, chain_id, address)
            elif (moved := _moved_watermark(blocks, store, protocol, chain_id, address)) is not None:
                raise UserError(
                    f"the chain no longer holds block {moved[0]}, which this market is stored to: it "
                    "reorganised while this run read its markets; the next run repairs it"
                )
            else:
                rewound = repaired.rewound_to
            state = store.sync_state(protocol, chain_id, address)
            if from_block is not None:
                first = from_block
            elif state is not None:
                first = state.from_block
            else:  # a new market with no known start: its first block with code (a devnet's, 0: short anyway)
                first = 0 if chain_id in LOCAL_CHAIN_IDS else deployment_block(rpc, address, target)
            start = first
            if state and state.events_to_block is not None and from_block is None:
                # A reorg deeper than the market's history leaves the watermark before its first block.
                start = max(first, state.events_to_block + 1)
            if start > target + 1:
                raise UserError(f"the database is already indexed to block {start - 1}, after --to-block {target}")

            deployment = adapter.follow(deployment, _stored_names(store, adapter, table, chain_id, address))
            query = adapter.log_query(deployment)
            # Read afresh for each range (iter_log_ranges): a range whose events name a contract to follow adds it.
            addresses = list(query.addresses)
            stored_events = 0
            with terminal_progress() as bar:
                task = bar.add_task(f"{protocol} logs {start:,}..{target:,}", total=max(1, target - start + 1))
                ranges = iter_log_ranges(
                    rpc, addresses, query.topics, start, target, initial_span=log_span, headers=blocks
                )
                for lo, hi, logs in ranges:
                    frame = adapter.events_frame(deployment, logs)
                    deployment, frame = _follow(rpc, adapter, deployment, addresses, (lo, hi, logs), frame)
                    frame = _with_receipts(rpc, adapter, deployment, frame)
                    frame = frame.with_columns(
                        pl.lit(chain_id, pl.Int64).alias("chain_id"), pl.lit(address).alias("market")
                    )
                    store.write_events(
                        protocol,
                        chain_id,
                        address,
                        lo,
                        hi,
                        blocks.required(hi)["hash"],
                        frame,
                        table=table,
                        start_block=first,
                    )
                    stored_events += frame.height
                    bar.update(task, completed=hi - start + 1)

            columns = ", ".join(adapter.account_columns)
            events = store.query(
                f"SELECT DISTINCT {columns} FROM {table} WHERE chain_id = ? AND market = ?", [chain_id, address]
            )
            block = blocks.required(target)
            timestamp = int(block["timestamp"], 16)
            previous = (
                None if rewound is not None else _previous_snapshot(blocks, store, adapter, chain_id, address, target)
            )
            snapshot = adapter.snapshot_since(rpc, deployment, events, chain_id, target, timestamp, previous)
            frames = dict(snapshot.frames)
            if "markets" not in frames:  # an adapter that describes no market still names where its bad debt lands
                frames["markets"] = default_markets(frames["positions"], adapter.bad_debt, timestamp)
            if name is not None and STANDIN_MARK in name:
                frames["markets"] = standin_names(frames["markets"])
            # Always written, even empty: a snapshot replaces its source's rows, so a problem fixed since is gone.
            quality = frames.get("data_quality")
            if quality is None:
                quality = data_quality_frame([], protocol, chain_id, address, target)
            frames["data_quality"] = quality
            store.write_snapshot(protocol, chain_id, address, target, block["hash"], timestamp, frames)
        faults_absorbed = rpc.faults_absorbed
        usage = rpc.usage
    return IndexReport(
        protocol=protocol,
        chain_id=chain_id,
        market=address,
        from_block=start,
        to_block=target,
        events=stored_events,
        wallets=snapshot.accounts,
        wallets_with_debt=snapshot.accounts_with_debt,
        reorg_rewound_to=rewound,
        seconds=round(time.perf_counter() - started, 3),
        faults_absorbed=faults_absorbed,
        data_quality=dict(sorted(quality.group_by("kind").len().iter_rows())),
        markets_with_unknowns=sorted(set(quality.filter(pl.col("unknown").is_not_null())["market"].to_list())),
        rpc_requests=usage.requests,
        rpc_calls=usage.calls,
    )


def index_aave_v3(rpc_url: str, provider: str, db_path: Path, **kwargs: Any) -> IndexReport:
    """Indexes one Aave V3 market (PoolAddressesProvider); see index_market."""
    return index_market("aave-v3", rpc_url, provider, db_path, **kwargs)


def rebuild_positions(db_path: Path, protocol: str, chain_id: int, source: str, block: int) -> pl.DataFrame:
    """The `positions` a past snapshot of `source` at `block` wrote, rebuilt from the raw tables' versions
    (chainrisk.store.versions) by the protocol's own maths; UserError when the block was never snapshotted or the
    adapter cannot rebuild."""
    adapter = adapter_for(protocol)
    raw_tables = [
        t
        for t in _stored_market(adapter, source).snapshot_tables
        if t not in CONTRACT_TABLES and t not in adapter.latest_only_tables
    ]
    with Store(db_path, read_only=True) as store:
        raw = {table: store.raw_as_of(table, chain_id, source, block) for table in raw_tables}
        found = store.query(
            "SELECT block_timestamp FROM snapshot_blocks WHERE protocol = ? AND chain_id = ? AND source = ? "
            "AND block_number = ?",
            [protocol, chain_id, source, block],
        )
    positions = adapter.rebuild_positions(raw, chain_id, source, block, int(found["block_timestamp"][0]))
    if positions is None:
        raise UserError(f"{protocol} cannot rebuild a past snapshot's positions from its raw tables")
    return positions
