"""`chainrisk score`: runs the health engine over the latest snapshot of every market and stores the results.

Reads positions (each indexed source's latest snapshot); writes position_risk, wallet_risk, liquidation_curve (the
latest block of each market), the cross-protocol wallet_portfolio and scored_markets (which block of each market is
the latest), folds wallet_risk into the bucketed wallet_health_history, then publishes for readers.

The engine's book of each score (the positions scored and what the engine made of them) is kept beside the database
(`<db>.scorebook/`, Arrow IPC, lz4-compressed), so that the next score, when no price moved, runs only the wallets
whose positions changed through the engine (chainrisk.scoring.snapshot.score_snapshot); the report says which way it
went. A book written by another version of the engine, or half written, is ignored and the score made in full.

A book serves only when at most half the wallets changed and no price moved; on a live chain interest accrues on every
debt each block, so scores minutes apart change almost every wallet and the book (hundreds of MiB at mainnet size)
would be written and read every run for nothing. After MISSES_BEFORE_PAUSE scores in a row that had a book and could
not use it, none is kept for the next PAUSE_SCORES scores; then one is kept again, to find out whether it serves.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl

from chainrisk.errors import UserError
from chainrisk.scoring import incremental
from chainrisk.scoring.incremental import ScoredBook
from chainrisk.scoring.snapshot import score_snapshot
from chainrisk.store.db import Store
from chainrisk.store.history import HistorySettings
from chainrisk.store.views import install_views

log = logging.getLogger("chainrisk.score")


@dataclass(frozen=True)
class ScoreReport:
    markets: int  #: markets scored
    wallets: int  #: wallets scored
    liquidatable: int  #: wallets with HF < 1
    seconds: float  #: wall time
    path: str = ""  #: how: a full score and why, or the changed wallets rescored alone
    rescored: bool = False  #: only the changed wallets went through the engine


def score(db_path: Path, *, publish: bool = True, history: HistorySettings | None = None) -> ScoreReport:
    """Scores the latest snapshots, folding them into the health history (`history`: its settings, default the
    defaults of [storage]); `publish` publishes the result for readers (see chainrisk.store.published)."""
    return score_and_positions(db_path, publish=publish, history=history)[0]


def score_and_positions(
    db_path: Path, *, publish: bool = True, history: HistorySettings | None = None
) -> tuple[ScoreReport, pl.DataFrame]:
    """`score`, and the positions it scored (Store.latest_positions as it read them), for the job a run composes
    after it: at 250,000 wallets reading them again costs half a second."""
    started = time.perf_counter()
    if not db_path.is_file():
        raise UserError(f"no database at {db_path}; run `chainrisk index` first")
    with Store(db_path) as store:
        positions = store.latest_positions()
        if positions.is_empty():
            raise UserError(f"{db_path} holds no positions yet; run `chainrisk index` first")
        # The engine's health at the snapshot's prices must be each protocol's own (a mismatch stops the score).
        previous, state = _load_book(db_path)
        refresh = previous is not None and state.rescores >= RESCORES_BEFORE_FULL
        scored = score_snapshot(positions, store.latest_wallet_health(), None if refresh else previous)
        frames = scored.frames
        frames["scored_markets"] = frames["scored_markets"].with_columns(
            scored_at=pl.lit(datetime.now(UTC), dtype=pl.Datetime("us", "UTC"))
        )
        blocks = positions.select("chain_id", "market", "block_number").unique()
        # Analysts' views (queries/) live in the file, so the published snapshot and any DuckDB client see them;
        # installed first, so a broken view fails the run before any score is replaced.
        install_views(store.con)
        store.replace_scores(frames, blocks, history)
        if publish:
            store.publish()
    # Kept once the scores are stored (the store checkpointed and closed): a score whose write failed leaves no book.
    _save_book(db_path, scored.book, state.after(scored.rescored, offered=previous is not None and not refresh))
    wallet_risk = frames["wallet_risk"]
    if refresh:
        path = f"full score ({state.rescores} rescores in a row: the curve summed afresh)"
    elif state.paused:
        path = (
            f"full score (engine book paused for {state.paused} more scores: {state.misses} in a row could not use it)"
        )
    else:
        path = scored.reason
    report = ScoreReport(
        markets=blocks.height,
        wallets=wallet_risk.height,
        liquidatable=int(wallet_risk["liquidatable"].sum()),
        seconds=round(time.perf_counter() - started, 3),
        path=path,
        rescored=scored.rescored,
    )
    return report, positions


def book_dir(db: Path) -> Path:
    """Where the last score's engine book is kept."""
    return db.with_name(db.name + ".scorebook")


_MANIFEST = "manifest.json"
#: After this many rescores in a row the next score is made in full: a rescore updates the curve's USD sums by the
#: changed wallets' differences, whose float rounding would otherwise build up run after run.
RESCORES_BEFORE_FULL = 24
#: Scores in a row that had a book and could not use it (prices moved, or most wallets changed) before books pause.
MISSES_BEFORE_PAUSE = 2
#: Scores that keep no book once they paused (an hour of five-minute runs); the one after keeps a book again.
PAUSE_SCORES = 12
#: The book's frames are compressed: lz4 writes at several times zstd's speed for most of its saving (README).
_COMPRESSION: Literal["lz4"] = "lz4"


@dataclass(frozen=True)
class BookState:
    """What the manifest remembers across scores besides the frames."""

    rescores: int = 0  #: rescores in a row that made the kept book
    misses: int = 0  #: scores in a row that had a book and could not use it
    paused: int = 0  #: scores left that keep no book

    def after(self, rescored: bool, *, offered: bool) -> BookState:
        """The state the score that started from this one leaves: `rescored` from the book, or `offered` one that
        could not serve (else it had none to try)."""
        if rescored:
            return BookState(rescores=self.rescores + 1)
        misses = self.misses + 1 if offered else self.misses
        paused = max(self.paused - 1, 0)
        if offered and misses >= MISSES_BEFORE_PAUSE:
            paused = PAUSE_SCORES
        return BookState(rescores=0, misses=misses, paused=paused)


def _engine_version() -> str:
    """A digest of the scoring package's source: a book kept by another version of the engine is not used."""
    digest = hashlib.sha256()
    for source in sorted(Path(incremental.__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def _save_book(db: Path, book: ScoredBook, state: BookState) -> None:
    """Keeps `book` beside the database: its frames, then the manifest that makes them valid (a score stopped half
    way leaves no manifest, and the next score is made in full), and `state`. While books pause (`state.paused`) the
    manifest lists no frames and the last book's files are removed (a stale book would be read and found useless)."""
    folder = book_dir(db)
    names = [] if state.paused else [f.name for f in fields(ScoredBook)]
    try:
        folder.mkdir(exist_ok=True)
        (folder / _MANIFEST).unlink(missing_ok=True)
        for field in fields(ScoredBook):
            path = folder / f"{field.name}.arrow"
            if field.name not in names:
                path.unlink(missing_ok=True)
                continue
            frame = getattr(book, field.name)
            (frame.to_frame() if isinstance(frame, pl.Series) else frame).write_ipc(path, compression=_COMPRESSION)
        partial = folder / f"{_MANIFEST}.partial"
        manifest = {"engine": _engine_version(), "frames": names, **asdict(state)}
        partial.write_text(json.dumps(manifest))
        os.replace(partial, folder / _MANIFEST)
    except (OSError, pl.exceptions.PolarsError) as exc:
        # The scores are stored: without a book the next score is made in full, nothing is lost.
        log.warning("chainrisk: score: could not keep the engine's book in %s (%s); next score in full", folder, exc)


def _load_book(db: Path) -> tuple[ScoredBook | None, BookState]:
    """The last score's book (None when there is none this engine can use) and the state its manifest keeps."""
    folder = book_dir(db)
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None, BookState()
    if not isinstance(manifest, dict) or manifest.get("engine") != _engine_version():
        return None, BookState()
    counts = [c for c in (manifest.get(f.name) for f in fields(BookState)) if isinstance(c, int) and c >= 0]
    if len(counts) != len(fields(BookState)):
        return None, BookState()
    state = BookState(*counts)
    names = [f.name for f in fields(ScoredBook)]
    if manifest.get("frames") != names:
        return None, state if manifest.get("frames") == [] else BookState()
    try:
        # Read whole (not mapped): the next score writes over these files.
        frames = {name: pl.read_ipc(io.BytesIO((folder / f"{name}.arrow").read_bytes())) for name in names}
    except (OSError, pl.exceptions.PolarsError):
        return None, BookState()
    book = ScoredBook(
        positions=frames["positions"],
        digests=frames["digests"],
        wallet_health=frames["wallet_health"],
        liquidation_prices=frames["liquidation_prices"],
        liquidation_curve=frames["liquidation_curve"],
        position_holders=frames["position_holders"].to_series(),
        wallet_holders=frames["wallet_holders"].to_series(),
        price_holders=frames["price_holders"].to_series(),
    )
    return book, state
