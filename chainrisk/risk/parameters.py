"""Tail-move ceilings of the liquidation threshold and LTV per market and collateral asset: the bounds a price move
alone sets, which the parameter advice (`chainrisk.risk.advice`) combines with slippage, concentration, its step
limits and a backtest before it proposes anything.

For a collateral asset c in a market whose debt is a mix of assets j (weights w_j: the debt's USD shares of the
`positions` given), price scenarios (simulated, or real moves) give the collateral's value against the debt:
R = m_c / sum_j w_j m_j. With q its (1 - confidence) quantile (the tail move) and b the liquidation bonus:

- liquidation threshold: a position exactly at HF 1 (debt = LT x C) must still cover its debt with the bonus after
  a tail move before liquidators act: C q / b >= LT C, so LT <= q / b;
- LTV: a position opened at the maximum LTV must not become liquidatable after a tail move: LTV x C <= LT x C q,
  so LTV <= LT q.

Both are floored to whole bps. The horizon is how long a move must be survived (the advice uses the oracle's lag plus
the liquidators' delay). The current figures are the most common value over the market's collateral rows (outside
e-mode where the column says so).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from chainrisk.risk.calibration import Calibration
from chainrisk.scoring.health import price_fixed
from chainrisk.units import BPS, MARKET_KEY


def _mode(column: str) -> pl.Expr:
    return pl.col(column).mode().sort().last().alias(column)


#: One row per (market, collateral) suggestion of `suggest_parameters`, before the change columns.
SUGGESTION_SCHEMA = {
    "protocol": pl.Utf8,
    "chain_id": pl.Int64,
    "market": pl.Utf8,
    "symbol": pl.Utf8,
    "series": pl.Utf8,
    "collateral_usd": pl.Float64,
    "liquidation_bonus_bps": pl.Int64,
    "current_lt_bps": pl.Int64,
    "current_ltv_bps": pl.Int64,
    "tail_move": pl.Float64,
    "suggested_lt_bps": pl.Int64,
    "suggested_ltv_bps": pl.Int64,
    "horizon_hours": pl.Int64,
    "confidence": pl.Float64,
}


def suggest_parameters(
    positions: pl.DataFrame, calibration: Calibration, multipliers: np.ndarray, confidence: float = 0.99
) -> pl.DataFrame:
    """One row per market and collateral symbol: current LT / LTV and the ceilings the tail move allows (bps, in the
    `suggested_*` columns), with the tail move behind them."""
    names = positions.columns
    rows = positions
    if "emode_category" in names:
        rows = rows.filter(pl.col("emode_category").fill_null(0) == 0)
    index = {a: i for i, a in enumerate(calibration.assets)}
    collateral = (
        rows.filter(pl.col("collateral_amount").cast(pl.Float64) > 0)
        .group_by(*MARKET_KEY, "symbol")
        .agg(
            _mode("liquidation_threshold_bps"),
            _mode("ltv_bps"),
            _mode("liquidation_bonus_bps"),
            pl.col("collateral_usd").sum().alias("collateral_usd"),
        )
        .sort(*MARKET_KEY, "symbol")
    )
    # A debt the protocol values at par (`price_fixed`: dai in the Vat, LUSD in Liquity) moves with no series.
    debt = (
        positions.filter(pl.col("debt_amount").cast(pl.Float64) > 0)
        .group_by(*MARKET_KEY, "symbol", price_fixed(names).alias("fixed"))
        .agg(pl.col("debt_usd").sum())
        .filter(pl.col("debt_usd") > 0)
    )
    out: list[dict[str, object]] = []
    tail = 1.0 - confidence
    for protocol, chain_id, market, symbol, lt, ltv, bonus, collateral_usd in collateral.iter_rows():
        owed = debt.filter((pl.col("protocol") == protocol) & (pl.col("market") == market))
        if owed.is_empty() or symbol not in calibration.symbols:
            continue
        weights = np.zeros(len(calibration.assets))
        at_par = 0.0
        for debt_symbol, is_fixed, usd in owed.select("symbol", "fixed", "debt_usd").iter_rows():
            if is_fixed:
                at_par += usd
            else:
                weights[index[calibration.symbols[debt_symbol]]] += usd
        total = weights.sum() + at_par
        ratio = multipliers[:, index[calibration.symbols[symbol]]] / ((multipliers @ weights + at_par) / total)
        q = float(np.quantile(ratio, tail))
        suggested_lt = int(np.floor(BPS * q / (bonus / BPS)))
        out.append(
            {
                "protocol": protocol,
                "chain_id": chain_id,
                "market": market,
                "symbol": symbol,
                "series": calibration.symbols[symbol],
                "collateral_usd": collateral_usd,
                "liquidation_bonus_bps": bonus,
                "current_lt_bps": lt,
                "current_ltv_bps": ltv,
                "tail_move": q - 1.0,
                "suggested_lt_bps": suggested_lt,
                "suggested_ltv_bps": int(np.floor(suggested_lt * q)),
                "horizon_hours": calibration.horizon_hours,
                "confidence": confidence,
            }
        )
    return pl.DataFrame(out, schema=SUGGESTION_SCHEMA).with_columns(
        (pl.col("suggested_lt_bps") - pl.col("current_lt_bps")).alias("lt_change_bps"),
        (pl.col("suggested_ltv_bps") - pl.col("current_ltv_bps")).alias("ltv_change_bps"),
    )
