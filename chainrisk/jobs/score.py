"""`chainrisk score`: runs the health engine over the latest snapshot of every market and stores the results.

Reads positions (each indexed source's latest snapshot); writes position_risk, wallet_risk, liquidation_curve
(kept per block, so history accumulates), the cross-protocol wallet_portfolio and scored_markets (which block of
each market is the latest), then publishes a read-only copy for readers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from chainrisk.errors import UserError
from chainrisk.queries import install_views
from chainrisk.scoring.health import (
    apply_multipliers,
    liquidation_curve,
    liquidation_prices,
    position_values,
    prepare,
    wallet_health,
)
from chainrisk.scoring.portfolio import wallet_portfolio
from chainrisk.store.db import Store

#: Each indexed source's latest snapshot (a Morpho market left with no position has no rows in it), in a fixed
#: order: float sums then come out bit-identical however the file's rows happen to be laid out.
LATEST_POSITIONS = """
SELECT p.* FROM positions p JOIN sync_state s
  ON p.protocol = s.protocol AND p.chain_id = s.chain_id AND p.source = s.market AND p.block_number = s.snapshot_block
ORDER BY p.protocol, p.chain_id, p.market, p.wallet, p.asset
"""


@dataclass(frozen=True)
class ScoreReport:
    markets: int  #: markets scored
    wallets: int  #: wallets scored
    liquidatable: int  #: wallets with HF < 1
    seconds: float  #: wall time


def wallet_and_position_risk(positions: pl.DataFrame) -> tuple[pl.LazyFrame, pl.DataFrame, pl.DataFrame]:
    """The valued positions, wallet_risk and position_risk of a positions frame (pure: no I/O); what the credit
    history samples need, without the liquidation curve, which costs most of a score's time."""
    valued = position_values(apply_multipliers(prepare(positions), None)).collect().lazy()
    health = wallet_health(valued)
    wallet_risk = health.select(
        "protocol",
        "chain_id",
        "market",
        "wallet",
        "block_number",
        "block_timestamp",
        "collateral_usd",
        "debt_usd",
        "health_factor",
        "ltv_used",
        "borrowing_power_usd",
        "distance_to_liquidation",
        "liquidatable",
        "close_factor",
        "liquidatable_debt_usd",
        "seizable_collateral_usd",
        "bad_debt_usd",
        pl.col("liquidation_threshold_bps").cast(pl.Int32),
        pl.col("ltv_bps").cast(pl.Int32),
    ).collect()
    position_risk = (
        liquidation_prices(valued)
        .rename(
            {
                "group": "price_group",
                "collateral_usd_now": "collateral_usd",
                "debt_usd_now": "debt_usd",
                "price_usd_now": "price_usd",
            }
        )
        .collect()
    )
    return valued, wallet_risk, position_risk


def score_positions(positions: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The result frames for a positions frame (pure: no I/O)."""
    valued, wallet_risk, position_risk = wallet_and_position_risk(positions)
    return {
        "wallet_risk": wallet_risk,
        "position_risk": position_risk,
        "liquidation_curve": liquidation_curve(valued),
        "wallet_portfolio": wallet_portfolio(wallet_risk),
        "scored_markets": positions.group_by("protocol", "chain_id", "market")
        .agg(
            pl.col("source").first(),
            pl.col("block_number").max(),
            pl.col("block_timestamp").max(),
            pl.col("wallet").n_unique().alias("wallets"),
        )
        .sort("protocol", "chain_id", "market"),
    }


def score(db_path: Path, *, publish: bool = True) -> ScoreReport:
    """Scores the latest snapshots; `publish` copies the result for readers (see chainrisk.store.published)."""
    started = time.perf_counter()
    if not db_path.is_file():
        raise UserError(f"no database at {db_path}; run `chainrisk index` first")
    with Store(db_path) as store:
        positions = store.query(LATEST_POSITIONS)
        if positions.is_empty():
            raise UserError(f"{db_path} holds no positions yet; run `chainrisk index` first")
        frames = score_positions(positions)
        frames["scored_markets"] = frames["scored_markets"].with_columns(
            scored_at=pl.lit(datetime.now(UTC), dtype=pl.Datetime("us", "UTC"))
        )
        blocks = positions.select("chain_id", "market", "block_number").unique()
        # Analysts' views (queries/) live in the file, so the published copy and any DuckDB client see them;
        # installed first, so a broken view fails the run before any score is replaced.
        install_views(store.con)
        store.replace_scores(frames, blocks)
        if publish:
            store.publish()
    wallet_risk = frames["wallet_risk"]
    return ScoreReport(
        markets=blocks.height,
        wallets=wallet_risk.height,
        liquidatable=int(wallet_risk["liquidatable"].sum()),
        seconds=round(time.perf_counter() - started, 3),
    )
