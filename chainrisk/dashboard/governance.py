"""Governance's parameter changes (mart_parameter_changes) as the pages show them: each change in words, in its unit,
and the dashed rules the charts over time draw at the snapshots that read them (the Markets page's market over time,
the Wallet page's health history)."""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl

from chainrisk.units import setting_text

CHANGES = "mart_parameter_changes"
#: The mart's `change` as the pages word it.
CHANGE_WORDS = {"changed": "changed", "listed": "listed", "gone": "no longer read"}


def values(row: dict[str, Any]) -> tuple[str | None, str]:
    """A mart row's from and to for people, each in its unit; a listing or removal has no from, its word as the to."""
    if row["change"] != "changed":
        return None, CHANGE_WORDS[row["change"]]
    old = setting_text(row["old_amount"], row["unit"], row["old_value"])
    return old, setting_text(row["new_amount"], row["unit"], row["new_value"])


def change_words(row: dict[str, Any]) -> str:
    """One change for people: 'WBTC liquidation_threshold 78 % → 73 %', 'market wstETH/WETH listed'."""
    item = row["symbol"] if row.get("symbol") is not None else row["item"]
    old, new = values(row)
    if old is None:
        return f"{row['item_kind']} {item} {new}"
    return f"{item} {row['parameter']} {old} → {new}"


def marks(changes: pl.DataFrame, time: str = "changed_by_time") -> pl.DataFrame:
    """One row per snapshot that read changes (its time, block, how many, what in words), from mart rows."""
    words = pl.Series("what", [change_words(row) for row in changes.iter_rows(named=True)], pl.String)
    return (
        changes.with_columns(words)
        .group_by(time, "changed_by_block", maintain_order=True)
        .agg(pl.len().alias("changes"), pl.col("what").str.join("; "))
    )


def rules(frame: pl.DataFrame, time: str = "changed_by_time") -> alt.Chart:
    """Dashed vertical rules at the snapshots of `frame` (from `marks`), what changed in their tooltip."""
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_rule(strokeDash=[4, 4], color="#7f7f7f")
        .encode(
            x=f"{time}:T",
            tooltip=[
                alt.Tooltip(f"{time}:T", format="%Y-%m-%d %H:%M", title="read at (UTC)"),
                alt.Tooltip("changed_by_block:Q", format="d", title="block"),
                alt.Tooltip("what:N", title="governance changed"),
            ],
        )
    )
    return chart
