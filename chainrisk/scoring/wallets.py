"""Which wallet each position belongs to, found once per book, and the per-wallet grouping built on it.

A book is grouped by wallet several times (health, liquidation prices, each shock axis of the curve). `prepare`
labels every position with its wallet's first row (`_wallet`, one window over `_wid`, the hash of the wallet's
key), so later groupings key on a small integer that is also where the wallet's keys are read, and liquidation
prices spread a wallet's totals back over its positions by gathering at the label instead of with window sums.
The labels are used only while the book still has the rows `prepare` labelled, in their order (`_wallet_row` counts
them): a book filtered, reordered or stitched together from several afterwards is grouped by `_wid` instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import polars as pl

WALLET_LABEL = "_wallet"
#: Each position's row in the book as `prepare` labelled it: the labels hold while the rows are still in that order.
LABEL_ROW = "_wallet_row"

Rows = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def label_wallets(frame: pl.LazyFrame) -> pl.LazyFrame:
    """`frame` with `_wallet` (the row at which each position's wallet, `_wid`, first appears) and `_wallet_row`."""
    labelled = frame.with_row_index(LABEL_ROW).with_columns(pl.col(LABEL_ROW).min().over("_wid").alias(WALLET_LABEL))
    return labelled.select(pl.all().exclude(LABEL_ROW), LABEL_ROW)


def labels_hold(frame: pl.DataFrame) -> bool:
    """Whether `frame` still has the rows `prepare` labelled, in their order (a prefix of them will do): then each
    wallet's label is its first row here."""
    if WALLET_LABEL not in frame.columns or LABEL_ROW not in frame.columns:
        return False
    in_order = (pl.col(LABEL_ROW) == pl.int_range(pl.len(), dtype=pl.UInt32)).all()
    return bool(frame.select(in_order).item())


def per_wallet(frame: pl.DataFrame, *aggregations: pl.Expr) -> tuple[pl.DataFrame, bool]:
    """One row per wallet (in no particular order): `_first` (its first row in `frame`), then `aggregations` over its
    positions; and whether the grouping was by label (else by `_wid`)."""
    if labels_hold(frame):
        return frame.lazy().group_by(pl.col(WALLET_LABEL).alias("_first")).agg(*aggregations).collect(), True
    rows = pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row")
    grouped = (
        frame.lazy()
        .with_columns(rows)
        .group_by("_wid")
        .agg(pl.col("_row").min().alias("_first"), *aggregations)
        .drop("_wid")
        .collect()
    )
    return grouped, False


def wallet_index(frame: pl.DataFrame) -> tuple[npt.NDArray[np.intp], Rows] | None:
    """Each row's wallet as a number 0..wallets-1 (wallets in order of first appearance) and each wallet's first row,
    from the labels; None when they do not hold (labels_hold)."""
    if not labels_hold(frame):
        return None
    labels = frame.get_column(WALLET_LABEL).to_numpy()
    first = np.zeros(frame.height + 1, dtype=bool)
    first[labels] = True
    number = np.cumsum(first) - 1
    return number[labels], np.flatnonzero(first).astype(np.int64)


def float_sums(
    frame: pl.DataFrame, index: npt.NDArray[np.intp], wallets: int, sums: dict[str, pl.Expr]
) -> pl.DataFrame:
    """`sums` (float expressions over the rows, nulls counting 0) summed per wallet of `index` (wallet_index): one row
    per wallet. A bincount, row by row in the book's order, costs a fraction of a grouping of the book."""
    rows = frame.select(e.cast(pl.Float64).fill_null(0.0).alias(name) for name, e in sums.items())
    return pl.DataFrame(
        {name: np.bincount(index, weights=rows.get_column(name).to_numpy(), minlength=wallets) for name in sums}
    )


def split_float_sums(
    frame: pl.DataFrame,
    index: npt.NDArray[np.intp],
    wallets: int,
    sums: Mapping[str, pl.Expr | Floats],
    members: list[pl.Expr],
) -> pl.DataFrame:
    """float_sums of `sums` split, for each of `members` (boolean expressions, null counting false), into the rows
    it holds and the rest: columns `{i}:{name}_in` and `{i}:{name}_out`. One bincount per member and sum, on the
    wallet's number times two plus membership, gives both halves: the same additions in the same order as summing
    each half with zeros in place of the other's rows (adding 0.0 to a sum begun at 0.0 changes nothing), without
    writing those columns of zeros. A sum may come as its column already made (float_column), for a caller splitting
    it by several sets of members."""
    # with_columns, not select: a literal member or sum is spread over every row.
    memberships = {f"_member:{i}": m.fill_null(False) for i, m in enumerate(members)}
    held = frame.lazy().with_columns(**memberships).select(*memberships).collect()
    slots = []
    for name in memberships:
        slot = index * 2
        np.add(slot, held.get_column(name).to_numpy(), out=slot)  # in place: no second array of the book's length
        slots.append(slot)
    columns: dict[str, npt.NDArray[np.float64]] = {}
    # One sum made at a time (unless the caller made them), so only one column of the book's doubles is held, and by
    # polars (float_column): numpy's own arrays of the book's length are fresh pages each time, raising the peak.
    for name, e in sums.items():
        weight = e if isinstance(e, np.ndarray) else float_column(frame, e)
        for i, slot in enumerate(slots):
            summed = np.bincount(slot, weights=weight, minlength=2 * wallets).astype(np.float64, copy=False)
            both = summed.reshape(wallets, 2)
            columns[f"{i}:{name}_in"], columns[f"{i}:{name}_out"] = both[:, 1].copy(), both[:, 0].copy()
    order = [f"{i}:{name}_{half}" for i in range(len(members)) for name in sums for half in ("in", "out")]
    return pl.DataFrame({name: columns[name] for name in order})


def float_column(frame: pl.DataFrame, e: pl.Expr) -> Floats:
    """`e` over `frame`'s rows as doubles, nulls counting 0: made whole by polars (whose allocator reuses the memory it
    freed), then read by numpy without a copy."""
    made = frame.lazy().with_columns(e.cast(pl.Float64).fill_null(0.0).alias("_weight")).select("_weight")
    column: Floats = made.collect().to_series().rechunk().to_numpy()
    return column


def gather_rows(columns: list[pl.Series], rows: pl.Series) -> list[pl.Series]:
    """`columns` at `rows`: gathered in ascending order chunk by chunk (a gather across the many chunks a streaming
    collect leaves is several times slower, and rechunking first copies the whole column), then put in their order."""
    if not columns:
        return []
    # A column with one value throughout (the book's protocol, chain, market and block, most often) is that value
    # repeated: checking costs a fraction of gathering it.
    constant = constant_columns(columns)
    varying = [c for c, same in zip(columns, constant, strict=True) if not same]
    gathered: list[pl.Series] = []
    if varying:
        order = rows.arg_sort()
        ascending = rows.gather(order).cast(pl.Int64).to_numpy()
        back = pl.Series(np.empty(len(ascending), dtype=np.int64))
        back.scatter(order, pl.Series(np.arange(len(ascending), dtype=np.int64)))
        gathered = [_gather_ascending(c, ascending).rechunk().gather(back) for c in varying]
    found = iter(gathered)
    return [c.new_from_index(0, len(rows)) if same else next(found) for c, same in zip(columns, constant, strict=True)]


def constant_columns(columns: list[pl.Series]) -> tuple[bool, ...]:
    """Whether each of `columns` (of one length) holds one value throughout, nulls counting as a value."""
    book = pl.DataFrame([c.alias(str(i)) for i, c in enumerate(columns)])
    if book.is_empty():
        return (False,) * len(columns)
    return tuple(book.select(pl.all().eq_missing(pl.all().first()).all()).row(0))


def _gather_ascending(series: pl.Series, rows: Rows) -> pl.Series:
    """`series` at ascending `rows`, one chunk at a time."""
    lengths = series.chunk_lengths()
    if len(lengths) <= 1:
        return series.gather(rows)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    cuts = np.searchsorted(rows, starts)
    parts = [
        series.slice(int(starts[i]), int(lengths[i])).gather(rows[cuts[i] : cuts[i + 1]] - starts[i])
        for i in range(len(lengths))
        if cuts[i] < cuts[i + 1]
    ]
    return pl.concat(parts, rechunk=False) if parts else series.clear()
