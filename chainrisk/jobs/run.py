"""`chainrisk run` and `chainrisk watch`: index every configured market, score, look through collateral chains, alert,
publish; once or in a loop.

Writes runs (one row per run: status, counts, summary) besides everything index, score and alerts write. A run
holds the database's writer lock throughout, so overlapping cron runs never interleave: the later one exits at
once. Each run's scores are folded into the bucketed health history (wallet_health_history).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from chainrisk.alerts.deliver import AlertReport, run_alerts
from chainrisk.alerts.rules import WatchedMarket
from chainrisk.config import Config, MarketConfig, resolve_rpc_url
from chainrisk.errors import UserError
from chainrisk.jobs.chains import ChainsReport, index_chains
from chainrisk.jobs.index import (
    ChainReady,
    IndexReport,
    ReadyReport,
    ReorgRepair,
    chain_ready,
    faults_line,
    index_market,
    quality_line,
)
from chainrisk.jobs.lock import DatabaseBusy, writer_lock
from chainrisk.jobs.score import ScoreReport, score_and_positions
from chainrisk.rpc import RpcUsage, mask_url, use_settings
from chainrisk.store.db import Store, keep_open
from chainrisk.terminal import shared_progress

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger("chainrisk.run")


@dataclass
class RunReport:
    run_id: int
    status: str  #: ok, partial (some markets failed), failed
    markets: int = 0  #: markets configured
    seconds: float = 0.0
    indexed: list[IndexReport] = field(default_factory=list)
    index_seconds: float = 0.0  #: wall time of the index phase (its markets may be read side by side)
    failures: dict[str, str] = field(default_factory=dict)  #: market name -> error line
    score: ScoreReport | None = None
    chains: list[ChainsReport] = field(default_factory=list)  #: the asset graph and look-through, per chain
    #: The chains made ready before their markets were read side by side (index_markets), per RPC URL.
    ready: list[ReadyReport] = field(default_factory=list)
    alerts: AlertReport | None = None
    published: str | None = None  #: the published snapshot readers now open

    def summary(self) -> str:
        parts = [f"run {self.run_id} {self.status} in {self.seconds:.1f} s"]
        parts.append(f"{len(self.indexed)}/{self.markets} markets indexed")
        if self.indexed:
            blocks = sorted({r.to_block for r in self.indexed})
            parts.append(f"block {blocks[-1]}" if len(blocks) == 1 else f"blocks {blocks[0]}..{blocks[-1]}")
        if self.score is not None:
            parts.append(
                f"{self.score.wallets} wallets scored ({self.score.path}), {self.score.liquidatable} liquidatable"
            )
        if self.chains:
            links, legs = sum(c.links for c in self.chains), sum(c.chained_legs for c in self.chains)
            parts.append(f"{links} wrapped assets, {legs} chained positions")
            unfollowed = [name for c in self.chains for name in c.unfollowed]
            if unfollowed:
                parts.append(f"warning: {len(unfollowed)} wrapped asset(s) not looked through: {', '.join(unfollowed)}")
        usage = self.rpc_usage()
        if usage.requests:
            parts.append(usage.line())
        faults: dict[str, int] = {}
        sources: list[IndexReport | ReadyReport] = [*self.indexed, *self.ready]
        for source in sources:
            for kind, count in source.faults_absorbed.items():
                faults[kind] = faults.get(kind, 0) + count
        if faults:
            parts.append(f"absorbed {faults_line(faults)}")
        warning = self.data_quality_warning()
        if warning:
            parts.append(warning)
        if self.alerts is not None:
            parts.append(
                f"alerts: {self.alerts.breached} breaching, {self.alerts.sent} sent, {self.alerts.failed} undelivered"
            )
        return "; ".join(parts)

    def rpc_usage(self) -> RpcUsage:
        """HTTP requests and JSON-RPC calls the run sent, retries included: its markets', the chains made ready before
        their markets were read side by side, and the look-through's."""
        reports: list[IndexReport | ChainsReport | ReadyReport] = [*self.indexed, *self.ready, *self.chains]
        return RpcUsage(sum(r.rpc_requests for r in reports), sum(r.rpc_calls for r in reports))

    def data_quality_warning(self) -> str | None:
        """'warning: data quality: ...' when a market met odd contracts (chainrisk.protocols.quality), else None."""
        kinds: dict[str, int] = {}
        unknowns = 0
        for indexed in self.indexed:
            for kind, count in indexed.data_quality.items():
                kinds[kind] = kinds.get(kind, 0) + count
            unknowns += len(indexed.markets_with_unknowns)
        return f"warning: {quality_line(kinds, unknowns)}" if kinds else None


def _begin(db: Path) -> int:
    with Store(db) as store:
        # A run that died (kill -9, power loss) left its row 'running'; the lock proves it is not running now.
        store.con.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
        row = store.con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchall()
        run_id = int(row[0][0])
        store.con.execute(
            "INSERT INTO runs (run_id, started_at, status) VALUES (?, ?, 'running')", [run_id, datetime.now(UTC)]
        )
    return run_id


def _finish(store: Store, report: RunReport) -> None:
    details: dict[str, Any] = {
        "indexed": [asdict(r) for r in report.indexed],
        "index_seconds": report.index_seconds,
        "failures": report.failures,
        "score": asdict(report.score) if report.score else None,
        "chains": [asdict(c) for c in report.chains],
        "ready": [asdict(r) for r in report.ready],
        "alerts": asdict(report.alerts) if report.alerts else None,
    }
    store.con.execute(
        "UPDATE runs SET finished_at = ?, status = ?, markets = ?, markets_failed = ?, wallets = ?, liquidatable = ?, "
        "alerts_sent = ?, summary = ? WHERE run_id = ?",
        [
            datetime.now(UTC),
            report.status,
            report.markets,
            report.markets - len(report.indexed),
            report.score.wallets if report.score else None,
            report.score.liquidatable if report.score else None,
            report.alerts.sent if report.alerts else None,
            json.dumps({"line": report.summary(), **details}, default=str),
            report.run_id,
        ],
    )


@dataclass(frozen=True)
class IndexOptions:
    """What `chainrisk index` may override for every market of a config."""

    from_block: int | None = None  #: first block to read logs from (default: each market's)
    to_block: int | None = None  #: snapshot block of the default chain (default: head minus confirmations)
    confirmations: int | None = None  #: blocks behind the head (default: the config's, per chain)
    log_span: int = 10_000  #: first eth_getLogs span


@dataclass
class Indexed:
    reports: list[IndexReport] = field(default_factory=list)  #: one per market indexed
    failures: dict[str, str] = field(default_factory=dict)  #: market name -> its one-line error
    rpc_urls: dict[int, str] = field(default_factory=dict)  #: chain id -> the RPC URL that read it
    ready: list[ReadyReport] = field(default_factory=list)  #: the chains made ready first (markets side by side)


def index_markets(config: Config, rpc_url: str, options: IndexOptions | None = None) -> Indexed:
    """Indexes every market of `config`, each through its chain's RPC (`rpc_url` is the default chain's); the
    markets of one chain at one block, so a wallet's positions in several protocols form one consistent snapshot.
    A market that fails is reported by name in one line and the others go on.

    Up to `config.parallel_markets` markets are indexed at once, in threads. Each RPC URL is made ready first
    (index.chain_ready): its block pinned (`options.to_block` on the default chain, else the chain's head less the
    confirmations of its first market in the config, as that market would pin it) and its markets' reorg repairs made
    in the config's order, as the first of them would make them; then every market is read at its URL's block, a
    reorg found since refused in its own line (a repair would rewind markets being read). A URL that cannot be made
    ready has its markets read one after the other, each making its own repair, as before (the first one says why it
    failed, or pins the block). A run's index then takes about as long as its slowest market, not the sum of every
    market's round trips (README "Performance": benchmarks/parallel_markets.py). The threads share the process's
    DuckDB instance, whose writes go one at a time (chainrisk.store.db's writer lock); with `parallel_markets = 1` the
    markets go one after the other in the config's order, as before."""
    options = options or IndexOptions()
    done = Indexed()
    waiting: dict[str, deque[int]] = {}  # RPC URL -> its markets' places in the config, not started yet
    url_of, unreachable = market_urls(config, rpc_url)
    outcomes: dict[int, IndexReport | str] = dict(unreachable)  # place in the config -> its report or its error line
    for place, url in url_of.items():
        waiting.setdefault(url, deque()).append(place)
    pinned: dict[str, int] = {}  # RPC URL -> the block its markets are read at

    repairs: dict[int, ReorgRepair] = {}  # place -> the reorg repair made before the URL's markets were read
    made_ready: set[str] = set()  # the URLs whose markets are read side by side

    def confirmations_of(market: MarketConfig) -> int | None:
        return options.confirmations if options.confirmations is not None else config.confirmations_of(market)

    def one(place: int, to_block: int | None) -> IndexReport | str:
        market, url = config.markets[place], url_of[place]
        try:
            return index_market(
                market.protocol,
                url,
                market.address,
                config.db,
                options=market.options,
                from_block=options.from_block if options.from_block is not None else market.from_block,
                to_block=to_block,
                confirmations=confirmations_of(market),
                expected_chain_id=market.chain_id,
                log_span=options.log_span,
                name=market.name,
                repaired=repairs.get(place),
                head_reached=url in pinned,
            )
        except UserError as exc:
            return str(exc)
        except Exception as exc:  # a bug met on one market's data: that market fails, the others go on
            return internal_error(exc)

    def ready(url: str, places: Sequence[int]) -> ChainReady | None:
        """The URL's block and its markets' reorg repairs, made before any is read (index.chain_ready); None when
        its RPC does not answer (its markets then go one after the other, the first one saying why)."""
        markets = [(config.markets[p].protocol, config.markets[p].address) for p in places]
        to_block = options.to_block if url == rpc_url else None
        try:
            return chain_ready(url, config.db, markets, confirmations_of(config.markets[places[0]]), to_block)
        except UserError:
            return None

    def block_for(url: str) -> int | None:
        return pinned.get(url, options.to_block if url == rpc_url else None)

    def record(place: int, outcome: IndexReport | str) -> None:
        """A market's outcome; the first market of its URL indexed pins the block the others are read at."""
        outcomes[place] = outcome
        if isinstance(outcome, IndexReport):
            pinned.setdefault(url_of[place], outcome.to_block)

    if config.parallel_markets <= 1 or len(url_of) <= 1:  # one market: nothing to pin first
        for place, url in url_of.items():  # the config's order
            record(place, one(place, block_for(url)))
    else:
        with shared_progress(), ThreadPoolExecutor(config.parallel_markets, "chainrisk-index") as pool:
            # Each URL made ready first; its markets start as soon as it is (a URL that cannot be has them go one by
            # one). A future's tag: the URL it makes ready, or the market (its place) it indexes.
            running: dict[Future[Any], str | int] = {pool.submit(ready, u, list(p)): u for u, p in waiting.items()}
            try:
                while running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        tag = running.pop(future)
                        if isinstance(tag, str):
                            found, places = future.result(), waiting[tag]
                            if found is not None:
                                made_ready.add(tag)
                                pinned[tag] = found.report.block
                                repairs.update(zip(places, found.repairs, strict=True))
                                done.ready.append(found.report)
                            starting = list(places) if found is not None else [places[0]]
                        else:
                            # `one` keeps a market's UserError as its outcome; anything else (a bug) is raised here.
                            record(tag, future.result())
                            # A URL not made ready has its markets go one after the other, each making its own reorg
                            # repair, as before.
                            later = waiting[url_of[tag]]
                            starting = [later[0]] if url_of[tag] not in made_ready and later else []
                        for place in starting:
                            waiting[url_of[place]].remove(place)
                            running[pool.submit(one, place, block_for(url_of[place]))] = place
            except BaseException:
                # Ctrl-C or a bug: no other market starts; the ones being indexed finish their transaction (the pool
                # waits for them: the writer lock and the kept DuckDB instance must outlive them).
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    for place, market in enumerate(config.markets):
        outcome = outcomes[place]
        if isinstance(outcome, str):
            done.failures[market.name] = outcome
            continue
        done.reports.append(outcome)
        done.rpc_urls.setdefault(outcome.chain_id, url_of[place])
    done.ready.sort(key=lambda r: (r.chain_id, r.block))  # in the order the URLs became ready: not a stable one
    return done


def watched_markets(config: Config) -> list[WatchedMarket]:
    """The config's markets as `stale_above` watches them: each by its name (made unique with its chain, or its place
    in the config, where two entries share one), with its chain where the config names it."""
    markets = []
    for market in config.markets:
        chain = config.chain_of(market)
        chain_id = market.chain_id if market.chain_id is not None else (chain.chain_id if chain else None)
        markets.append(WatchedMarket(market.name, market.protocol, market.address.lower(), chain_id))
    names = [m.name for m in markets]
    unique = []
    for i, m in enumerate(markets):
        if names.count(m.name) > 1:
            m = replace(m, name=f"{m.name} (chain {m.chain_id})" if m.chain_id is not None else f"{m.name} (#{i + 1})")
        unique.append(m)
    return unique


def market_urls(config: Config, rpc_url: str) -> tuple[dict[int, str], dict[int, str]]:
    """The RPC URL of each market by its place in the config (the default chain's: `rpc_url`, already resolved), and
    the error line of each market whose chain has none."""
    url_of: dict[int, str] = {}
    unreachable: dict[int, str] = {}
    for place, market in enumerate(config.markets):
        try:
            url = config.rpc_url_of(market)
            url_of[place] = rpc_url if url is None or url == config.rpc_url else resolve_rpc_url(url)
        except UserError as exc:
            unreachable[place] = str(exc)
    return url_of, unreachable


#: Set (to anything but 0) to have an internal error's traceback logged, for a report.
TRACEBACK_ENV = "CHAINRISK_TRACEBACK"


def internal_error(exc: Exception) -> str:
    """One line for an error chainrisk did not foresee, met on one market's (or chain's) data: a bug, never the
    user's input. Its market fails alone (its transaction rolled back, as for any refused market), the run goes on with
    the others and ends `partial`; with CHAINRISK_TRACEBACK set the traceback is logged too, for a report."""
    if os.environ.get(TRACEBACK_ENV, "0") not in ("", "0"):
        log.error("chainrisk: internal error", exc_info=exc)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return (
        f"internal error ({type(exc).__name__}{': ' + first[:300] if first else ''}); its figures were not stored "
        f"this run, the others' were; please report it ({TRACEBACK_ENV}=1 logs the traceback)"
    )


def look_through(
    config: Config, urls: list[str], positions: pl.DataFrame | None, failures: dict[str, str]
) -> list[ChainsReport]:
    """The collateral chains' tables of the chain each of `urls` serves, up to `parallel_markets` chains at once (each
    waits mostly on its chain's round trips; each writes its own chain's rows in a transaction of its own); reports
    in the order of `urls`. A chain that fails is named in `failures` under "chains" (several: their lines joined), and
    the others go on. `positions`: the ones the score read (nothing writes them in between), else the
    store's latest, read once for every chain, as the wallet risk is."""
    if not urls:
        return []
    with Store(config.db, read_only=True) as store:
        wallet_risk = store.latest_wallet_risk()
        positions = store.latest_positions() if positions is None else positions

    def one(url: str) -> ChainsReport | UserError:
        try:
            return index_chains(url, config.db, publish=False, positions=positions, wallet_risk=wallet_risk)
        except UserError as exc:
            return exc
        except Exception as exc:  # a bug met on one chain's data: that chain fails, the others go on
            return UserError(internal_error(exc))

    workers = min(config.parallel_markets, len(urls))
    if workers > 1:
        with ThreadPoolExecutor(workers, "chainrisk-chains") as pool:
            outcomes = list(pool.map(one, urls))
    else:
        outcomes = [one(url) for url in urls]
    reports = []
    for outcome in outcomes:
        if isinstance(outcome, UserError):
            failures["chains"] = "; ".join(filter(None, (failures.get("chains"), str(outcome))))
        else:
            reports.append(outcome)
    return reports


def run_once(config: Config, rpc_url: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> RunReport:
    """One scheduled run under the writer lock; raises DatabaseBusy when another run holds it. `clock` is the time
    `stale_above` rules measure the snapshots' age against."""
    started = time.perf_counter()
    with writer_lock(config.db, "run"), keep_open(config.db), use_settings(config.rpc_settings()):
        report = RunReport(run_id=_begin(config.db), status="running", markets=len(config.markets))
        indexing = time.perf_counter()
        indexed = index_markets(config, rpc_url)
        report.index_seconds = round(time.perf_counter() - indexing, 3)
        report.indexed = indexed.reports
        report.ready = indexed.ready
        for name, line in indexed.failures.items():
            report.failures[name] = line
            log.error("chainrisk: error: %s: %s", name, line)
        positions = None
        if report.indexed:
            try:
                report.score, positions = score_and_positions(config.db, publish=False, history=config.storage)
            except UserError as exc:
                report.failures["score"] = str(exc)
                log.error("chainrisk: error: score: %s", exc)
            except Exception as exc:  # a bug: the run still ends, says so, and publishes the markets it indexed
                report.failures["score"] = internal_error(exc)
                log.error("chainrisk: error: score: %s", report.failures["score"])
        if report.score is not None:
            urls = [url for _, url in sorted(indexed.rpc_urls.items())]  # chain id order
            report.chains = look_through(config, urls, positions, report.failures)
            if "chains" in report.failures:
                log.error("chainrisk: error: chains: %s", report.failures["chains"])
        with Store(config.db) as store:
            # Evaluated when the score or every market failed too: a run that lost its data must still say so
            # (stale_above); the other rules then read the latest scores stored, which have not moved.
            if config.alerts is not None:
                watched = watched_markets(config)
                report.alerts = run_alerts(store.con, config.alerts, report.run_id, markets=watched, now=clock())
                for line in report.alerts.errors:
                    log.error("chainrisk: alert not delivered: %s", line)
            report.status = "failed" if report.score is None else ("partial" if report.failures else "ok")
            report.seconds = round(time.perf_counter() - started, 3)
            _finish(store, report)
            report.published = store.publish().name
    return report


class Watch:
    """`chainrisk watch`: a run every `every_s` seconds until stopped (SIGINT/SIGTERM end it between runs)."""

    def __init__(self, config: Config, rpc_url: str, every_s: float, max_runs: int | None = None) -> None:
        self.config, self.rpc_url, self.every_s, self.max_runs = config, rpc_url, every_s, max_runs
        self.stop = threading.Event()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("chainrisk watch: %s received, stopping after the current run", signal.Signals(signum).name)
        self.stop.set()

    def loop(self) -> int:
        """Runs until stopped; returns how many runs failed outright."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        log.info(
            "chainrisk watch: every %g s, %d market(s), RPC %s, database %s",
            self.every_s,
            len(self.config.markets),
            mask_url(self.rpc_url),
            self.config.db,
        )
        runs = failed = 0
        next_start = time.monotonic()
        while not self.stop.is_set():
            try:
                report = run_once(self.config, self.rpc_url)
                log.info("%s", report.summary())
                failed += report.status == "failed"
            except DatabaseBusy as exc:
                log.warning("chainrisk watch: skipped: %s", exc)
            except UserError as exc:
                failed += 1
                log.error("chainrisk watch: run failed: %s", exc)
            runs += 1
            if self.max_runs is not None and runs >= self.max_runs:
                break
            # Fixed-rate ticks; a run longer than the interval starts the next one at once, never two at a time.
            next_start = max(next_start + self.every_s, time.monotonic())
            self.stop.wait(max(0.0, next_start - time.monotonic()))
        return failed


#: The longest interval `--every` takes: a year.
MAX_INTERVAL_S = 365 * 86_400


def parse_interval(text: str) -> float:
    """'90s', '5m', '1h', '1d', '300' (seconds) -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    value = text.strip().lower()
    scale = units.get(value[-1:])
    number = value[:-1] if scale else value
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise UserError(f"--every {text!r}: give a duration like 30s, 5m or 1h") from None
    if not seconds > 0:
        raise UserError(f"--every {text!r}: the interval must be positive")
    if not seconds <= MAX_INTERVAL_S:  # inf, 1e20: a sleep no clock can take (an OverflowError after the first run)
        raise UserError(f"--every {text!r}: give an interval of at most 365 days")
    return seconds
