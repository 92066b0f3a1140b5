"""Frames for the dashboard's risk page, read from the DuckDB file the jobs wrote (read-only connection)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl

#: Health-factor buckets shown on the overview, as (label, lower bound, upper bound).
HEALTH_BUCKETS = [
    ("< 1 (liquidatable)", 0.0, 1.0),
    ("1 to 1.1", 1.0, 1.1),
    ("1.1 to 1.25", 1.1, 1.25),
    ("1.25 to 1.5", 1.25, 1.5),
    ("1.5 to 2", 1.5, 2.0),
    ("≥ 2", 2.0, float("inf")),
]


def database_location() -> Path:
    """CHAINRISK_DB, else chainrisk.duckdb in the working directory."""
    return Path(os.environ.get("CHAINRISK_DB", "chainrisk.duckdb"))


def _query(path: Path, sql: str, params: list[object] | None = None) -> pl.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        frame = pl.from_arrow(con.sql(sql, params=params or []).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def has_scores(path: Path) -> bool:
    if not path.is_file():
        return False
    tables = _query(path, "SELECT table_name FROM information_schema.tables WHERE table_name = 'wallet_risk'")
    return tables.height > 0 and _query(path, "SELECT count(*) AS n FROM wallet_risk")["n"][0] > 0


def latest_wallet_risk(path: Path) -> pl.DataFrame:
    return _query(
        path,
        """
        WITH latest AS (SELECT chain_id, market, max(block_number) AS block_number FROM wallet_risk GROUP BY ALL)
        SELECT w.* FROM wallet_risk w JOIN latest USING (chain_id, market, block_number)
        """,
    )


def health_buckets(wallets: pl.DataFrame) -> pl.DataFrame:
    borrowers = wallets.filter(pl.col("health_factor").is_not_null())
    rows = []
    for label, low, high in HEALTH_BUCKETS:
        inside = borrowers.filter((pl.col("health_factor") >= low) & (pl.col("health_factor") < high))
        rows.append({"health factor": label, "wallets": inside.height, "debt (USD)": float(inside["debt_usd"].sum())})
    return pl.DataFrame(rows)


def total_curve(path: Path, axis: str) -> pl.DataFrame:
    return _query(
        path,
        """
        WITH latest AS (SELECT chain_id, max(block_number) AS block_number FROM liquidation_curve GROUP BY ALL)
        SELECT c."drop" * 100 AS "price drop (%)", c.liquidatable_collateral_usd AS "collateral at risk (USD)",
               c.liquidatable_debt_usd AS "debt at risk (USD)", c.bad_debt_usd AS "bad debt (USD)"
        FROM liquidation_curve c JOIN latest USING (chain_id, block_number)
        WHERE c.market = 'all' AND c.axis = ?
        ORDER BY c."drop"
        """,
        [axis],
    )


def curve_axes(path: Path) -> list[str]:
    frame = _query(path, "SELECT DISTINCT axis FROM liquidation_curve WHERE market = 'all' ORDER BY axis")
    return [str(a) for a in frame["axis"].to_list()]


def at_risk_positions(path: Path, limit: int) -> pl.DataFrame:
    return _query(
        path,
        """
        WITH latest AS (SELECT chain_id, market, max(block_number) AS block_number FROM position_risk GROUP BY ALL)
        SELECT r.protocol, CASE WHEN length(r.market) > 42 THEN left(r.market, 10) || '…' ELSE r.market END AS market,
               r.wallet, r.symbol AS asset, w.health_factor AS "health factor",
               r.collateral_usd AS "collateral (USD)", r.debt_usd AS "debt (USD)", r.price_usd AS "price (USD)",
               r.liquidation_price_usd AS "liquidation price (USD)",
               r.liquidation_price_change * 100 AS "move to liquidation (%)", r.liquidated_when_price AS "when price"
        FROM position_risk r JOIN latest USING (chain_id, market, block_number)
        JOIN wallet_risk w USING (protocol, chain_id, market, wallet, block_number)
        WHERE w.health_factor IS NOT NULL AND r.liquidation_price_usd IS NOT NULL
        ORDER BY w.health_factor, r.wallet, r.symbol
        LIMIT ?
        """,
        [limit],
    )


def cross_protocol_wallets(path: Path, limit: int) -> pl.DataFrame:
    """Wallets with debt across every protocol and market they use, weakest health first (wallet_portfolio)."""
    tables = _query(path, "SELECT table_name FROM information_schema.tables WHERE table_name = 'wallet_portfolio'")
    if tables.is_empty():
        return pl.DataFrame()
    return _query(
        path,
        """
        SELECT wallet, array_to_string(protocols, ', ') AS protocols, markets,
               worst_health_factor AS "worst health factor", worst_protocol AS "weakest in",
               collateral_usd AS "collateral (USD)", debt_usd AS "debt (USD)",
               liquidatable_markets AS "liquidatable markets", bad_debt_usd AS "bad debt (USD)"
        FROM wallet_portfolio WHERE debt_usd > 0
        ORDER BY worst_health_factor NULLS LAST, wallet
        LIMIT ?
        """,
        [limit],
    )
