"""`chainrisk score`: runs the health engine over the latest snapshot of every market and stores the results.

Reads positions (each indexed source's latest snapshot); writes position_risk, wallet_risk, liquidation_curve (the
latest block of each market), the cross-protocol wallet_portfolio and scored_markets (which block of each market is
the latest), folds wallet_risk into the bucketed wallet_health_history, then publishes for readers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from chainrisk.errors import UserError
from chainrisk.scoring.snapshot import score_positions
from chainrisk.store.db import Store
from chainrisk.store.history import HistorySettings
from chainrisk.store.views import install_views


@dataclass(frozen=True)
class ScoreReport:
    markets: int  #: markets scored
    wallets: int  #: wallets scored
    liquidatable: int  #: wallets with HF < 1
    seconds: float  #: wall time


def score(db_path: Path, *, publish: bool = True, history: HistorySettings | None = None) -> ScoreReport:
    """Scores the latest snapshots, folding them into the health history (`history`: its settings, default the
    defaults of [storage]); `publish` publishes the result for readers (see chainrisk.store.published)."""
    started = time.perf_counter()
    if not db_path.is_file():
        raise UserError(f"no database at {db_path}; run `chainrisk index` first")
    with Store(db_path) as store:
        positions = store.latest_positions()
        if positions.is_empty():
            raise UserError(f"{db_path} holds no positions yet; run `chainrisk index` first")
        # The engine's health at the snapshot's prices must be each protocol's own (a mismatch stops the score).
        frames = score_positions(positions, store.latest_wallet_health())
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
    wallet_risk = frames["wallet_risk"]
    return ScoreReport(
        markets=blocks.height,
        wallets=wallet_risk.height,
        liquidatable=int(wallet_risk["liquidatable"].sum()),
        seconds=round(time.perf_counter() - started, 3),
    )
