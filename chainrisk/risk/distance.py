"""Distance to the first liquidation: how far each collateral's base price can fall before the first of its holders
in a market becomes liquidatable (and where a threshold's sensitivity is worth reading).

A fall of base b moves every asset resting on it alike (`chainrisk.chains.moves`: WETH and aWETH together). With the
engine's linear terms per wallet (`chainrisk.risk.var.build_book`: threshold-weighted collateral A and debt D at the
snapshot's prices), split into what rests on b (A_b, D_b) and the rest, a fall d gives A_rest + (1 - d) A_b against
D_rest + (1 - d) D_b, so the wallet is liquidatable from d* = 1 - (D_rest - A_rest) / (A_b - D_b) on: 0 if it already
is; never if A_b <= D_b (a fall of b helps or leaves it) nor if d* >= 1 (a loop on one base). Aave's floored average
threshold moves d* by under 1 bps, which the figure, in % of price, does not show.

The first liquidation and the median holder's are of the holders not liquidatable already (`liquidatable_now` counts
those): a market almost always holds some position nobody liquidates (dust a liquidation would not pay for), and
counting it made every collateral's distance 0 (schema 15; earlier runs' rows counted them, with `liquidatable_now`
NULL).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from chainrisk.chains.moves import AssetGraph
from chainrisk.risk.var import build_book
from chainrisk.units import BPS, MARKET_KEY

#: Falls beyond this are not a "distance" but a collapse: a collateral no holder of which goes before it is safe.
MAX_DROP = 0.9
#: Sensitivity is read at the first grid point past the first liquidation.
SENSITIVITY_GRID = 0.05

SCHEMA = {
    "protocol": pl.Utf8,
    "chain_id": pl.Int64,
    "market": pl.Utf8,
    "symbol": pl.Utf8,
    "base_symbol": pl.Utf8,
    "holders": pl.Int64,
    "holders_debt_usd": pl.Float64,
    "first_drop": pl.Float64,
    "first_wallet": pl.Utf8,
    "first_wallet_debt_usd": pl.Float64,
    "median_drop": pl.Float64,
    "holders_within_10pct": pl.Int64,
    "debt_within_10pct_usd": pl.Float64,
    "sensitivity_drop": pl.Float64,
    "liquidatable_now": pl.Int64,
}


def sensitivity_drop(first_drop: float | None) -> float:
    """The fall at which to read a threshold's sensitivity: the first 5 % step past the first liquidation (the
    snapshot when none comes before MAX_DROP): there a threshold move changes who is liquidatable."""
    if first_drop is None:
        return 0.0
    return round(min(math.ceil((first_drop + 1e-9) / SENSITIVITY_GRID) * SENSITIVITY_GRID, MAX_DROP), 4)


def liquidation_distance(positions: pl.DataFrame, graph: AssetGraph | None = None) -> pl.DataFrame:
    """One row per market and collateral symbol held by a borrower: holders, the fall of its base at which the first
    one becomes liquidatable (first_drop, NULL: none before MAX_DROP), who that is, the median holder's distance,
    holders and their debt within a 10 % fall, and the fall at which its threshold sensitivity is read."""
    assets = graph or AssetGraph()
    symbols = sorted(set(positions["symbol"].drop_nulls().to_list()))
    if not symbols:
        return pl.DataFrame(schema=SCHEMA)
    book = build_book(positions, {s: s for s in symbols}, symbols)
    adjusted, debt = book.weighted / BPS, book.debt
    wallets = book.wallets.with_row_index("_w")
    rows: list[dict[str, object]] = []
    for symbol in symbols:
        base = assets.base(symbol)
        moving = np.array([assets.base(s) == base for s in symbols])
        a_b, d_b = adjusted[:, moving].sum(axis=1), debt[:, moving].sum(axis=1)
        # The rest: the other bases, and positions whose price the protocol fixes (dai at par in the Vat).
        a_rest = adjusted[:, ~moving].sum(axis=1) + book.fixed_weighted / BPS
        d_rest = debt[:, ~moving].sum(axis=1) + book.fixed_debt
        gap = a_b - d_b
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = np.where(gap > 0, 1.0 - (d_rest - a_rest) / gap, np.inf)
        # A crossing at or past a total collapse (collateral and debt on the same base, a loop) never comes.
        crossing[crossing >= 1.0] = np.inf
        # Liquidatable already: distance 0.
        now = a_b + a_rest < d_b + d_rest
        distance = np.where(now, 0.0, np.clip(crossing, 0.0, np.inf))
        holds = book.collateral[:, symbols.index(symbol)] > 0
        wallet_debt = debt.sum(axis=1) + book.fixed_debt
        for key, members in wallets.filter(pl.Series(holds)).group_by(MARKET_KEY, maintain_order=True):
            index = members["_w"].to_numpy()
            near = distance[index]
            # The first to become liquidatable: of those not already.
            first = int(np.argmin(np.where(now[index], np.inf, near)))
            found = bool(~now[index[first]] and near[first] <= MAX_DROP)
            within = near <= 0.10
            ahead = near[~now[index]]  # the median too is of the holders not liquidatable already
            finite = ahead[np.isfinite(ahead)]
            rows.append(
                {
                    "protocol": key[0],
                    "chain_id": key[1],
                    "market": key[2],
                    "symbol": symbol,
                    "base_symbol": base,
                    "holders": len(index),
                    "holders_debt_usd": float(wallet_debt[index].sum()),
                    "first_drop": float(near[first]) if found else None,
                    "first_wallet": members["wallet"][first] if found else None,
                    "first_wallet_debt_usd": float(wallet_debt[index[first]]) if found else None,
                    "median_drop": float(np.median(finite)) if finite.size * 2 > ahead.size else None,
                    "holders_within_10pct": int(within.sum()),
                    "debt_within_10pct_usd": float(wallet_debt[index][within].sum()),
                    "sensitivity_drop": sensitivity_drop(float(near[first]) if found else None),
                    "liquidatable_now": int(now[index].sum()),
                }
            )
    return pl.DataFrame(rows, schema=SCHEMA).sort(*MARKET_KEY, "symbol")
