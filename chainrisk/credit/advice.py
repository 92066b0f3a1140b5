"""Enhancement advice and credit-aware borrowing limits: what would raise a wallet's score, and what it may borrow.

Advice moves only the wallet's state now (its history stays what it was): repay debt in its weakest market, add
collateral there (at that market's liquidation threshold), or unwind a loop (sell collateral to repay debt, which
also lowers the loop's leverage). For each, the smallest USD amount that reaches the next band, found by bisection
(the score never falls as any of these amounts grows: every feature they move is binned monotone). A wallet whose
history alone keeps it below the next band is told so (`reachable` false, with the best score the action reaches).

The credit-aware LTV (an ARCx-style personalised limit): the most the wallet could borrow against its collateral
now, up to what the protocols allow, while the model's 30-day liquidation probability stays at or under a target.
It treats the wallet's collateral as one pool (exact for a wallet in one market).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from chainrisk.credit.features import HF_CAP, with_now
from chainrisk.credit.scorecard import BANDS, Scorecard, band_of, next_band

#: Default ceiling on the model's 30-day liquidation probability for the personalised limit.
TARGET_PD = 0.02
#: Bisection rounds (amounts to 2^-40 of their range).
ROUNDS = 40
ADVICE_SCHEMA = {
    "wallet": pl.Utf8,
    "action": pl.Utf8,
    "amount_usd": pl.Float64,
    "target_band": pl.Utf8,
    "new_score": pl.Int32,
    "reachable": pl.Boolean,
}
#: Loop leverage above which unwinding counts as an action.
LOOPED = 1.05


def _lt(frame: pl.DataFrame) -> pl.Series:
    """The weakest market's liquidation threshold (collateral-weighted)."""
    return pl.Series(
        np.where(
            frame["worst_collateral"].to_numpy() > 0,
            (frame["worst_adjusted_collateral"] / frame["worst_collateral"].clip(1e-9)).to_numpy(),
            0.8,
        )
    )


def _move(frame: pl.DataFrame, added: np.ndarray, repaid: np.ndarray) -> pl.DataFrame:
    """The wallet after adding `added` USD of collateral (negative: selling it) to its weakest market, at that
    market's liquidation threshold and the wallet's LTV, and repaying `repaid` USD of that market's debt."""
    x, r = pl.Series(added), pl.Series(repaid)
    ltv = (frame["capacity_usd"] / frame["collateral_usd"].clip(1e-9)).fill_nan(0.0)
    adjusted = (frame["worst_adjusted_collateral"] + x * _lt(frame)).clip(lower_bound=0.0)
    debt = frame["worst_debt"] - r
    hf = pl.Series(np.where(debt.to_numpy() > 1e-9, (adjusted / debt.clip(1e-9)).to_numpy(), HF_CAP))
    return frame.with_columns(
        adjusted.alias("worst_adjusted_collateral"),
        debt.alias("worst_debt"),
        hf.alias("worst_hf"),
        (frame["debt_usd"] - r).clip(lower_bound=0.0).alias("debt_usd"),
        (frame["collateral_usd"] + x).clip(lower_bound=0.0).alias("collateral_usd"),
        (frame["worst_collateral"] + x).clip(lower_bound=0.0).alias("worst_collateral"),
        (frame["capacity_usd"] + x * ltv).clip(lower_bound=0.0).alias("capacity_usd"),
    )


def _repay(frame: pl.DataFrame, usd: np.ndarray) -> pl.DataFrame:
    return _move(frame, np.zeros(len(usd)), usd)


def _add_collateral(frame: pl.DataFrame, usd: np.ndarray) -> pl.DataFrame:
    return _move(frame, usd, np.zeros(len(usd)))


def _unwind(frame: pl.DataFrame, usd: np.ndarray) -> pl.DataFrame:
    """Sells `usd` of collateral in the weakest market and repays that market's debt with the proceeds."""
    moved = _move(frame, -usd, usd)
    # A loop's leverage is collateral / equity; selling collateral to repay keeps the equity.
    return moved.with_columns(
        (frame["loop_leverage"] * moved["collateral_usd"] / frame["collateral_usd"].clip(1e-9))
        .clip(lower_bound=1.0)
        .alias("loop_leverage")
    )


def _bisect(
    card: Scorecard,
    frame: pl.DataFrame,
    move: Callable[[pl.DataFrame, np.ndarray], pl.DataFrame],
    hi: np.ndarray,
    target: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest amount in [0, hi] per row whose moved score reaches `target` (nan where even `hi` does not), and
    the score at that amount (or at `hi`)."""
    at_hi = card.score(with_now(move(frame, hi)))
    lo_amount, hi_amount = np.zeros(len(hi)), hi.copy()
    for _ in range(ROUNDS):
        mid = (lo_amount + hi_amount) / 2
        ok = card.score(with_now(move(frame, mid))) >= target
        hi_amount = np.where(ok, mid, hi_amount)
        lo_amount = np.where(ok, lo_amount, mid)
    reached = at_hi >= target
    amount = np.where(reached, hi_amount, np.nan)
    return amount, np.where(reached, card.score(with_now(move(frame, hi_amount))), at_hi)


def advice(card: Scorecard, frame: pl.DataFrame) -> pl.DataFrame:
    """Per borrower below the top band: each action's smallest USD amount to reach the next band (long format:
    wallet, action, amount_usd, target_band, new_score, reachable)."""
    scores = card.score(frame)
    targets = [next_band(int(s)) for s in scores]
    keep = np.array([t is not None for t in targets]) & (frame["debt_usd"].to_numpy() > 0)
    rows = frame.filter(pl.Series(keep))
    if rows.is_empty():
        return pl.DataFrame(schema=ADVICE_SCHEMA)
    wanted = [t for t, k in zip(targets, keep, strict=True) if k and t is not None]
    target = np.array([low for _, low in wanted])
    names = [name for name, _ in wanted]
    out = []
    debt = rows["worst_debt"].to_numpy()
    actions: list[tuple[str, Callable[[pl.DataFrame, np.ndarray], pl.DataFrame], np.ndarray]] = [
        ("repay debt", _repay, debt),
        ("add collateral", _add_collateral, 10 * rows["collateral_usd"].to_numpy() + 10 * debt + 1.0),
    ]
    looped = rows["loop_leverage"].to_numpy() > LOOPED
    if looped.any():
        actions.append(("unwind loop", _unwind, debt))
    for action, move, hi in actions:
        amount, new = _bisect(card, rows, move, hi, target)
        frame_out = pl.DataFrame(
            {
                "wallet": rows["wallet"],
                "action": action,
                "amount_usd": amount,
                "target_band": names,
                "new_score": new.astype(np.int32),
                "reachable": ~np.isnan(amount),
            }
        ).with_columns(pl.col("amount_usd").fill_nan(None))
        if action == "unwind loop":
            frame_out = frame_out.filter(pl.Series(looped))
        out.append(frame_out)
    return pl.concat(out).sort("wallet", "action")


def band_shares(bands: list[str], shares: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Each band's share of the protocols' limit: the `weights`-weighted (positive) mean of its wallets' `shares`,
    made nondecreasing from the worst band to the best by pooling adjacent bands that break the order (pool adjacent
    violators: the closest nondecreasing fit in weighted least squares). Bands without wallets are left out."""
    labels = np.asarray(bands, dtype=object)
    blocks: list[tuple[float, float, list[str]]] = []  # (weighted sum, weight, bands pooled), worst band first
    for name, _ in BANDS:
        mask = labels == name
        if not mask.any():
            continue
        block = (float((shares[mask] * weights[mask]).sum()), float(weights[mask].sum()), [name])
        while blocks and blocks[-1][0] / blocks[-1][1] > block[0] / block[1]:
            total, weight, names = blocks.pop()
            block = (total + block[0], weight + block[1], names + block[2])
        blocks.append(block)
    return {name: min(max(total / weight, 0.0), 1.0) for total, weight, names in blocks for name in names}


def credit_limit(card: Scorecard, frame: pl.DataFrame, target_pd: float = TARGET_PD) -> pl.DataFrame:
    """Per wallet with collateral: protocol_ltv (what the protocols allow: borrowing capacity / collateral),
    suggested_ltv and suggested_max_debt_usd (the wallet's band's share of the protocols' limit).

    A wallet's own limit is the most debt keeping the model's PD <= `target_pd` (at most the protocols' limit; 0 when
    even a token borrow would pass it). A band's share is its wallets' own limits as a share of what the protocols
    allow, weighted by collateral, made nondecreasing from poor to excellent (`band_shares`): so a better band never
    gets a lower share than a worse one, whoever is in it, and the limit never exceeds the protocols'."""
    rows = frame.filter(pl.col("collateral_usd") > 0)
    power = rows["capacity_usd"].to_numpy()

    def borrow(f: pl.DataFrame, debt: np.ndarray) -> pl.DataFrame:
        d = pl.Series(np.maximum(debt, 1e-6))
        hf = (f["adjusted_collateral_usd"] / d).clip(upper_bound=HF_CAP)
        return f.with_columns(
            d.alias("debt_usd"),
            d.alias("worst_debt"),
            hf.alias("worst_hf"),
            pl.lit(HF_CAP).alias("second_hf"),
            f["adjusted_collateral_usd"].alias("worst_adjusted_collateral"),
            f["collateral_usd"].alias("worst_collateral"),
        )

    lo, hi = np.zeros(rows.height), power.copy()
    for _ in range(ROUNDS):
        mid = (lo + hi) / 2
        ok = card.pd(with_now(borrow(rows, mid))) <= target_pd
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    # lo: the largest debt known to pass (0 when none does); the full borrowing power when it passes itself.
    full = card.pd(with_now(borrow(rows, power))) <= target_pd
    own = np.where(full, power, lo)
    collateral = rows["collateral_usd"].to_numpy()
    bands = [band_of(int(s)) for s in card.score(rows)]
    share_of_power = np.where(power > 0, own / np.maximum(power, 1e-12), 0.0)
    shares = band_shares(bands, share_of_power, collateral)
    best = power * np.array([shares[b] for b in bands])
    return pl.DataFrame(
        {
            "wallet": rows["wallet"],
            "protocol_ltv": power / collateral,
            "suggested_ltv": best / collateral,
            "suggested_max_debt_usd": best,
        }
    )
