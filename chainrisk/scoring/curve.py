"""Liquidation-curve sums (per shock multiplier: liquidatable collateral, debt and wallets, and bad debt) in one pass.

Along a shock axis a wallet's health is HF(m) = (A_out + m A_in) / (B_out + m B_in), so the multipliers at which it is
liquidatable form a half-line of m, and so do those at which its debt exceeds what its collateral recovers. Rather
than testing every wallet at every multiplier (41 vectorised passes over a million wallets), each wallet is placed
once at the edge of its half-line on the sorted grid of multipliers, and running sums give every point's totals.

The liquidatable count stays exact: a wallet counts at a point exactly when the float test
`A_out + m A_in < B_out + m B_in` holds there, as testing each point finds. Where rounding could make that test
differ from the sign of the linear form (a grid point within a few ulps of the wallet's crossing, or a coefficient
that is not finite), the wallet is tested point by point instead. USD totals agree with point-by-point sums to float
rounding (the order of the additions differs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

#: How far from 0, in units of the coefficients' size, the linear form must be at a grid point for the float test
#: there to follow its sign: each side of the test and the form itself carry a few roundings of that size.
_CERTAIN = 16 * float(np.finfo(np.float64).eps)
_TERMS = ("a_in", "a_out", "b_in", "b_out", "c_in", "c_out", "r_in", "r_out")
#: Wallets summed at a time.
_SLICE = 1 << 17
#: Unsettled wallets tested point by point at a time (times the grid's points: the cells of each rows-by-points array).
_POINTWISE_ROWS = 1 << 13
#: The curve's figures at each point, in the order of its totals' first axis.
METRICS = ("liquidatable_collateral_usd", "liquidatable_debt_usd", "bad_debt_usd", "liquidatable_wallets")

Floats = npt.NDArray[np.float64]
Indexes = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]


#: A grouping of a book's wallets: the distinct keys in order of first appearance, and each wallet's group among them.
Grouping = tuple[pl.DataFrame, Indexes]
#: The same for the sums: each row's group, and how many groups there are.
Groups = tuple[Indexes, int]


def curve_points(coefficients: pl.LazyFrame, drops: list[float], by: list[str]) -> pl.LazyFrame:
    """For each drop: collateral, debt and bad debt of the wallets liquidatable at multiplier 1 - drop, and how many
    they are, per group of `by` (groups in order of first appearance, then drops in the order given). A caller
    grouping one axis's wallets in several ways, or taking one book's wallets through several axes, finds the groups
    once and calls curve_sums."""
    frame = coefficients.collect()
    terms = {t: frame.get_column(t).cast(pl.Float64).to_numpy() for t in _TERMS}
    return curve_sums(terms, drops, [groups_of(frame, by)])[0].lazy()


def curve_sums(terms: Mapping[str, Floats], drops: list[float], groupings: Sequence[Grouping]) -> list[pl.DataFrame]:
    """curve_points of one axis's coefficients (`terms`: one array of the wallets' doubles per name of _TERMS) for
    each of several `groupings` of its wallets (groups_of): each wallet is placed on the grid once, then summed into
    its group of each grouping, so a curve per market and one per chain cost little more than one of them."""
    grid, point = np.unique(np.array([1.0 - d for d in drops], dtype=np.float64), return_inverse=True)
    totals = [np.zeros((len(METRICS), keys.height, len(grid))) for keys, _ in groupings]
    rows = len(terms["a_in"])
    # A slice of wallets at a time: arrays of a few MB are recycled by the allocator, where arrays of a million
    # rows are fresh pages each time (zeroed by the kernel).
    for start in range(0, rows, _SLICE):
        part = {t: terms[t][start : start + _SLICE] for t in _TERMS}
        in_part = [(group[start : start + _SLICE], keys.height) for keys, group in groupings]
        settled, sums = _half_line_sums(part, in_part, grid)
        for total, found in zip(totals, sums, strict=True):
            total += found
        if not settled.all():
            unsettled = {t: values[~settled] for t, values in part.items()}
            left = [(group[~settled], groups) for group, groups in in_part]
            for total, found in zip(totals, _pointwise_sums(unsettled, left, grid), strict=True):
                total += found
    frames = []
    for (keys, _), total in zip(groupings, totals, strict=True):
        per_drop = total[:, :, point]  # metric, group, drop
        frames.append(
            keys.select(pl.all().gather(pl.Series(np.repeat(np.arange(keys.height), len(drops)))))
            .with_columns(
                pl.Series("drop", np.tile(np.array(drops, dtype=np.float64), keys.height)),
                *(pl.Series(name, per_drop[i].reshape(-1)) for i, name in enumerate(METRICS)),
            )
            .with_columns(pl.col("liquidatable_wallets").round().cast(pl.Int64))
        )
    return frames


def groups_of(frame: pl.DataFrame, by: list[str]) -> Grouping:
    """The distinct `by` keys in order of first appearance, and each row's group among them."""
    if frame.is_empty() or frame.select(pl.col(by).eq_missing(pl.col(by).first()).all()).row(0) == (True,) * len(by):
        return frame.select(by).head(1), np.zeros(frame.height, dtype=np.int64)  # one group: the common case
    keys = frame.select(by).filter(pl.struct(by).is_first_distinct())
    numbered = keys.with_row_index("_group")
    rows = frame.select(by).join(numbered, on=by, how="left", nulls_equal=True, maintain_order="left")
    return keys, rows.get_column("_group").cast(pl.Int64).to_numpy()


def _half_lines(level: Floats, slope: Floats, grid: Floats) -> tuple[Flags, Indexes]:
    """Where level + m slope > 0 on the ascending grid: rising rows are inside on [edge, size), the others on
    [0, edge). A flat form is inside everywhere (edge 0, rising) or nowhere (edge size, rising)."""
    falling = slope < 0
    edge: Indexes = np.where(level > 0, 0, len(grid)).astype(np.int64)
    for rows, side in ((np.flatnonzero(slope > 0), "right"), (np.flatnonzero(falling), "left")):
        edge[rows] = np.searchsorted(grid, -level[rows] / slope[rows], side=side)  # type: ignore[call-overload]
    return ~falling, edge


def _settled(level: Floats, slope: Floats, margin: Floats, rising: Flags, edge: Indexes, grid: Floats) -> Flags:
    """Rows whose float test is certain at the grid points on both sides of their edge: the form is beyond `margin`
    of 0 there with the sign the half-line says, and so at every point further out (the form is linear)."""
    size = len(grid)
    settled = np.ones(len(level), dtype=bool)
    for point, inside in ((edge - 1, ~rising), (edge, rising)):
        at = np.flatnonzero((point >= 0) & (point < size))
        value = level[at] + grid[point[at]] * slope[at]
        certain = np.where(inside[at], value > margin[at], value < -margin[at])
        settled[at[~certain]] = False
    return settled


def _half_line_sums(
    terms: Mapping[str, Floats], groupings: Sequence[Groups], grid: Floats
) -> tuple[Flags, list[Floats]]:
    """(settled rows, per grouping totals[metric, group, grid point] over them)."""
    a_in, a_out, b_in, b_out = terms["a_in"], terms["a_out"], terms["b_in"], terms["b_out"]
    finite = np.logical_and.reduce([np.isfinite(terms[t]) for t in _TERMS])
    with np.errstate(invalid="ignore", over="ignore"):
        # Liquidatable where (B_out - A_out) + m (B_in - A_in) > 0.
        level, slope = np.where(finite, b_out - a_out, 0.0), np.where(finite, b_in - a_in, 0.0)
        reach = max(1.0, float(np.abs(grid).max(initial=0.0)))
        margin = _CERTAIN * (np.abs(a_out) + np.abs(b_out) + reach * (np.abs(a_in) + np.abs(b_in)))
    rising, edge = _half_lines(level, slope, grid)
    kept = np.flatnonzero(finite & _settled(level, slope, margin, rising, edge, grid))
    rising, edge = rising[kept], edge[kept]
    t = {name: terms[name][kept] for name in _TERMS}
    # Bad debt where (B_out - R_out) + m (B_in - R_in) > 0: a wallet near its crossing adds next to nothing either way.
    short_out, short_in = t["b_out"] - t["r_out"], t["b_in"] - t["r_in"]
    short_rising, short_edge = _half_lines(short_out, short_in, grid)
    size = len(grid)
    found = []
    for group, groups in groupings:
        placed = _slots(group[kept], rising, edge, size)
        short = _slots(group[kept], short_rising, short_edge, size)

        def linear(outer: Floats, inner: Floats, slot: Indexes, groups: int = groups) -> Floats:
            return _interval_sums(outer, slot, groups, size) + grid * _interval_sums(inner, slot, groups, size)

        found.append(
            np.stack(
                [
                    linear(t["c_out"], t["c_in"], placed),
                    linear(t["b_out"], t["b_in"], placed),
                    linear(short_out, short_in, short),
                    _interval_sums(np.ones(len(kept)), placed, groups, size),
                ]
            )
        )
    settled = np.zeros(len(a_in), dtype=bool)
    settled[kept] = True
    return settled, found


def _slots(group: Indexes, rising: Flags, edge: Indexes, size: int) -> Indexes:
    """Each row's slot among its group's placements: group, then side (rising first), then edge (0..size)."""
    slot: Indexes = (group * 2 + ~rising) * (size + 1) + edge
    return slot


def _interval_sums(weight: Floats, slot: Indexes, groups: int, size: int) -> Floats:
    """sums[g, j] of `weight` over the rows of group g inside at grid point j (rows placed at `slot` by _slots: rising
    rows inside on [edge, size), the others on [0, edge)). Running sums of non-negative placements, so no total is a
    difference of larger ones."""
    width = size + 1
    placed = np.bincount(slot, weights=weight, minlength=groups * 2 * width).astype(np.float64)
    placed = placed.reshape(groups, 2, width)
    from_below = np.cumsum(placed[:, 0, :size], axis=1)
    from_above = np.cumsum(placed[:, 1, ::-1], axis=1)[:, ::-1][:, 1:]
    result: Floats = from_below + from_above
    return result


def _pointwise_sums(terms: Mapping[str, Floats], groupings: Sequence[Groups], grid: Floats) -> list[Floats]:
    """Per grouping: totals[metric, group, grid point] by testing every row at every point (the rows the half-lines
    can't settle).

    Each row's four figures at every point are worked out once (numpy, rows by points) and added into its group of
    each grouping. The same operations on the same doubles as the definition (A_out + m A_in < B_out + m B_in, each
    product rounded, then the sum: numpy fuses nothing; NaN ordered as polars orders it), so each test finds what it
    does. (It was a polars query of the rows crossed with the grid: ~5 ms to plan, paid by every slice of every axis
    with a row to test.)"""
    totals = [np.zeros((len(METRICS), groups, len(grid))) for _, groups in groupings]
    m = grid[np.newaxis, :]
    # Rows at a time so that the rows-by-points arrays stay a few MB (a book may hold many unsettled rows).
    for start in range(0, len(terms["a_in"]), _POINTWISE_ROWS):
        t = {name: terms[name][start : start + _POINTWISE_ROWS, np.newaxis] for name in _TERMS}
        with np.errstate(invalid="ignore", over="ignore"):
            debt = t["b_out"] + m * t["b_in"]
            adjusted = t["a_out"] + m * t["a_in"]
            # polars' order, which the definition is written in: NaN above every number.
            liquidatable = np.where(np.isnan(debt), ~np.isnan(adjusted), adjusted < debt)
            figures = (
                np.where(liquidatable, t["c_out"] + m * t["c_in"], 0.0),
                np.where(liquidatable, debt, 0.0),
                # polars' clip(lower_bound=0) as the definition has it: NaN stays NaN.
                np.maximum(debt - (t["r_out"] + m * t["r_in"]), 0.0),
                liquidatable.astype(np.float64),
            )
        for total, (group, _) in zip(totals, groupings, strict=True):
            rows = group[start : start + _POINTWISE_ROWS]
            for i, figure in enumerate(figures):
                np.add.at(total[i], rows, figure)
    return totals
