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

import numpy as np
import numpy.typing as npt
import polars as pl

#: How far from 0, in units of the coefficients' size, the linear form must be at a grid point for the float test
#: there to follow its sign: each side of the test and the form itself carry a few roundings of that size.
_CERTAIN = 16 * float(np.finfo(np.float64).eps)
_TERMS = ("a_in", "a_out", "b_in", "b_out", "c_in", "c_out", "r_in", "r_out")
#: Wallets summed at a time.
_SLICE = 1 << 17
#: Unsettled wallets tested point by point at a time (times the grid's points: rows of the crossed frame).
_POINTWISE_ROWS = 1 << 13
_METRICS = ("liquidatable_collateral_usd", "liquidatable_debt_usd", "bad_debt_usd", "liquidatable_wallets")

Floats = npt.NDArray[np.float64]
Indexes = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]


#: Groups found for earlier axes of one book (GroupMemo): each axis's coefficients hold the same wallets in the same
#: order, so their `by` columns are equal and so are their groups.
GroupMemo = list[tuple[pl.DataFrame, tuple[pl.DataFrame, Indexes]]]


def curve_points(
    coefficients: pl.LazyFrame, drops: list[float], by: list[str], memo: GroupMemo | None = None
) -> pl.LazyFrame:
    """For each drop: collateral, debt and bad debt of the wallets liquidatable at multiplier 1 - drop, and how many
    they are, per group of `by` (groups in order of first appearance, then drops in the order given). A caller
    taking a book through several axes passes one `memo` (an empty list) to each call: the groups of `by` columns
    equal to an earlier call's are taken from it instead of found again (25 ms an axis at 251,188 wallets in 1,000
    markets, against a comparison of the columns)."""
    frame = coefficients.collect()
    keys, group = _memo_groups(frame, by, memo)
    grid, point = np.unique(np.array([1.0 - d for d in drops], dtype=np.float64), return_inverse=True)
    totals = np.zeros((len(_METRICS), keys.height, len(grid)))
    # A slice of wallets at a time: arrays of a few MB are recycled by the allocator, where arrays of a million
    # rows are fresh pages each time (zeroed by the kernel).
    for start in range(0, frame.height, _SLICE):
        part = frame.slice(start, _SLICE)
        in_part = group[start : start + _SLICE]
        terms = {t: part.get_column(t).cast(pl.Float64).to_numpy() for t in _TERMS}
        settled, sums = _half_line_sums(terms, in_part, keys.height, grid)
        totals += sums
        if not settled.all():
            totals += _pointwise_sums(part.filter(pl.Series(~settled)), in_part[~settled], keys.height, grid)
    per_drop = totals[:, :, point]  # metric, group, drop
    return (
        keys.select(pl.all().gather(pl.Series(np.repeat(np.arange(keys.height), len(drops)))))
        .with_columns(
            pl.Series("drop", np.tile(np.array(drops, dtype=np.float64), keys.height)),
            *(pl.Series(name, per_drop[i].reshape(-1)) for i, name in enumerate(_METRICS)),
        )
        .with_columns(pl.col("liquidatable_wallets").round().cast(pl.Int64))
        .lazy()
    )


def _memo_groups(frame: pl.DataFrame, by: list[str], memo: GroupMemo | None) -> tuple[pl.DataFrame, Indexes]:
    """_groups, or an earlier call's from `memo` when its `by` columns were these, row for row."""
    if memo is None:
        return _groups(frame, by)
    columns = frame.select(by)
    for seen, groups in memo:
        if seen.equals(columns):  # names, types and every value (NULLs equal)
            return groups
    groups = _groups(frame, by)
    memo.append((columns, groups))
    return groups


def _groups(frame: pl.DataFrame, by: list[str]) -> tuple[pl.DataFrame, Indexes]:
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


def _half_line_sums(terms: dict[str, Floats], group: Indexes, groups: int, grid: Floats) -> tuple[Flags, Floats]:
    """(settled rows, totals[metric, group, grid point] over them)."""
    a_in, a_out, b_in, b_out = terms["a_in"], terms["a_out"], terms["b_in"], terms["b_out"]
    finite = np.logical_and.reduce([np.isfinite(v) for v in terms.values()])
    with np.errstate(invalid="ignore", over="ignore"):
        # Liquidatable where (B_out - A_out) + m (B_in - A_in) > 0.
        level, slope = np.where(finite, b_out - a_out, 0.0), np.where(finite, b_in - a_in, 0.0)
        reach = max(1.0, float(np.abs(grid).max(initial=0.0)))
        margin = _CERTAIN * (np.abs(a_out) + np.abs(b_out) + reach * (np.abs(a_in) + np.abs(b_in)))
    rising, edge = _half_lines(level, slope, grid)
    kept = np.flatnonzero(finite & _settled(level, slope, margin, rising, edge, grid))
    group, rising, edge = group[kept], rising[kept], edge[kept]
    t = {name: values[kept] for name, values in terms.items()}
    # Bad debt where (B_out - R_out) + m (B_in - R_in) > 0: a wallet near its crossing adds next to nothing either way.
    short_out, short_in = t["b_out"] - t["r_out"], t["b_in"] - t["r_in"]
    short_rising, short_edge = _half_lines(short_out, short_in, grid)
    size = len(grid)

    def linear(outer: Floats, inner: Floats, up: Flags, at: Indexes) -> Floats:
        return _interval_sums(outer, group, up, at, groups, size) + grid * _interval_sums(
            inner, group, up, at, groups, size
        )

    totals = np.stack(
        [
            linear(t["c_out"], t["c_in"], rising, edge),
            linear(t["b_out"], t["b_in"], rising, edge),
            linear(short_out, short_in, short_rising, short_edge),
            _interval_sums(np.ones(len(kept)), group, rising, edge, groups, size),
        ]
    )
    settled = np.zeros(len(a_in), dtype=bool)
    settled[kept] = True
    return settled, totals


def _interval_sums(weight: Floats, group: Indexes, rising: Flags, edge: Indexes, groups: int, size: int) -> Floats:
    """sums[g, j] of `weight` over the rows of group g inside at grid point j: rising rows on [edge, size), the others
    on [0, edge). Running sums of non-negative placements, so no total is a difference of larger ones."""
    width = size + 1
    slot = (group * 2 + ~rising) * width + edge
    placed = np.bincount(slot, weights=weight, minlength=groups * 2 * width).astype(np.float64)
    placed = placed.reshape(groups, 2, width)
    from_below = np.cumsum(placed[:, 0, :size], axis=1)
    from_above = np.cumsum(placed[:, 1, ::-1], axis=1)[:, ::-1][:, 1:]
    result: Floats = from_below + from_above
    return result


def _pointwise_sums(frame: pl.DataFrame, group: Indexes, groups: int, grid: Floats) -> Floats:
    """totals[metric, group, grid point] by testing every row at every point (the rows the half-lines can't settle).

    The rows are crossed with the grid and tested in one query of four sums, the multiplier a column: a query of the
    four sums at each of the 41 points spelled out (164 expressions) cost ~11 ms to plan, which every axis of every
    run paid for the two or three such rows a book holds (0.4 s of a devnet run's score). The same operations on the
    same doubles, so each test finds what it did."""
    totals = np.zeros((len(_METRICS), groups, len(grid)))
    points = pl.DataFrame({"_point": np.arange(len(grid), dtype=np.int64), "_m": grid})
    m = pl.col("_m")
    debt = pl.col("b_out") + m * pl.col("b_in")
    liquidatable = (pl.col("a_out") + m * pl.col("a_in")) < debt
    sums = [
        pl.when(liquidatable).then(pl.col("c_out") + m * pl.col("c_in")).otherwise(0.0).sum().alias("c"),
        pl.when(liquidatable).then(debt).otherwise(0.0).sum().alias("d"),
        (debt - (pl.col("r_out") + m * pl.col("r_in"))).clip(lower_bound=0).sum().alias("x"),
        liquidatable.sum().cast(pl.Float64).alias("n"),
    ]
    # Rows at a time so that the crossed frame stays a few MB (a book may hold many unsettled rows).
    for start in range(0, frame.height, _POINTWISE_ROWS):
        part = (
            frame.slice(start, _POINTWISE_ROWS)
            .select(*_TERMS)
            .with_columns(_group=pl.Series(group[start : start + _POINTWISE_ROWS]))
        )
        found = part.lazy().join(points.lazy(), how="cross").group_by("_group", "_point").agg(sums).collect()
        at = (found.get_column("_group").to_numpy(), found.get_column("_point").to_numpy())
        for i, metric in enumerate("cdxn"):
            np.add.at(totals[i], at, found.get_column(metric).to_numpy())
    return totals
