"""Which wallet each position belongs to, found once per book, and the per-wallet grouping built on it.

A book is grouped by wallet several times (health, liquidation prices, each shock axis of the curve). `prepare`
labels every position with its wallet's first row (`_wallet`, one window over `_wid`, the hash of the wallet's
key), so later groupings key on a small integer and liquidation prices spread a wallet's totals back over its
positions by gathering at the label instead of with window sums. The label only stands in for `_wid`: each grouping
also takes the smallest and largest `_wid` under every label and falls back to `_wid` itself unless each label holds
one wallet and each wallet one label, so a book filtered, reordered or stitched together from several after
`prepare` is still grouped right.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

WALLET_LABEL = "_wallet"

Rows = npt.NDArray[np.int64]


def label_wallets(frame: pl.LazyFrame) -> pl.LazyFrame:
    """`frame` with `_wallet`: the row at which each position's wallet (`_wid`) first appears."""
    return (
        frame.with_row_index("_wallet_row")
        .with_columns(pl.col("_wallet_row").min().over("_wid").alias(WALLET_LABEL))
        .drop("_wallet_row")
    )


def per_wallet(frame: pl.DataFrame, *aggregations: pl.Expr) -> tuple[pl.DataFrame, str]:
    """One row per wallet in order of first appearance: `_key`, `_first` (the wallet's first row in `frame`), then
    `aggregations` over its positions; and which column `_key` holds (the `_wallet` label where it holds, else
    `_wid`)."""
    rows = pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row")
    keys = [WALLET_LABEL, "_wid"] if WALLET_LABEL in frame.columns else ["_wid"]
    for key in keys:
        checks = [pl.col("_wid").min().alias("_wid_min"), pl.col("_wid").max().alias("_wid_max")]
        grouped = (
            frame.lazy()
            .with_columns(rows)
            .group_by(pl.col(key).alias("_key"))
            .agg(pl.col("_row").min().alias("_first"), *(checks if key != "_wid" else []), *aggregations)
            .collect()
        )
        if key == "_wid" or _one_to_one(grouped):
            return grouped.drop("_wid_min", "_wid_max", strict=False).sort("_first"), key
    raise AssertionError("unreachable: grouping by _wid always holds")


def _one_to_one(grouped: pl.DataFrame) -> bool:
    """Whether every label of `grouped` holds one `_wid` and every `_wid` has one label."""
    lowest = grouped.get_column("_wid_min")
    return bool((lowest == grouped.get_column("_wid_max")).all()) and lowest.n_unique() == grouped.height


def gather_rows(series: pl.Series, rows: Rows) -> pl.Series:
    """`series` at ascending `rows`, chunk by chunk: a gather across the many chunks a streaming collect leaves is
    several times slower, and rechunking first copies the whole column."""
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
    return pl.concat(parts) if parts else series.clear()
