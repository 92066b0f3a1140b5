"""Rescoring a snapshot from the previous one: only the wallets whose positions changed are run through the engine.

A wallet's health and liquidation prices depend on its own position rows alone (amounts, its assets' prices and
parameters), so between two snapshots every wallet whose rows are the same (block aside) keeps its figures, restamped
with the new block; the wallets whose rows differ, appeared or went are scored again. The liquidation curve is a sum
over wallets, so it is updated by taking off the changed wallets' previous contributions and adding their new ones;
a shock axis that appears (a symbol or group new to the book) is summed over the whole book.

`rescore_book(previous, positions)` equals `score_book(positions)`: wallet and position rows exactly (in another
order), the curve's wallet counts exactly and its USD sums to float rounding (the additions come in another order).
When prices did not move few wallets change and the work is theirs; when they moved every wallet holding the asset has
changed, and past half the book a full score is run instead.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import polars as pl

from chainrisk.scoring.curve import METRICS
from chainrisk.scoring.health import (
    CURVE_KEY,
    Axis,
    axis_curves,
    curve_axes,
    liquidation_curve,
    liquidation_prices,
    value_positions,
    wallet_health,
)
from chainrisk.units import MARKET_KEY

#: What names a wallet across snapshots (WALLET_KEY without the block).
HOLDER_KEY = ["protocol", "chain_id", "market", "wallet"]
#: Columns that change with every snapshot without changing a wallet's figures.
_SNAPSHOT_COLUMNS = ("block_number", "block_timestamp")
#: Past this share of changed wallets a full score is cheaper than the bookkeeping.
FULL_SCORE_SHARE = 0.5
_CURVE_ROW = ["chain_id", "market", "axis_kind", "axis", "drop"]


@dataclass(frozen=True)
class ScoredBook:
    """One snapshot's positions and what the engine made of them: what the next snapshot's rescore starts from.
    Each frame of rows comes with its rows' wallets (`holders`, a hash of HOLDER_KEY), which the rescore matches on."""

    positions: pl.DataFrame  #: the positions scored (a rescore values the changed wallets' previous rows)
    digests: pl.DataFrame  #: per wallet: `_holder`, `_digest` and `_rows` of its position rows, block aside
    wallet_health: pl.DataFrame  #: wallet_health's rows
    liquidation_prices: pl.DataFrame  #: liquidation_prices' rows
    liquidation_curve: pl.DataFrame  #: liquidation_curve's rows
    position_holders: pl.Series  #: the wallet of each row of `positions`
    wallet_holders: pl.Series  #: ... of `wallet_health`
    price_holders: pl.Series  #: ... of `liquidation_prices`


def score_book(positions: pl.DataFrame) -> ScoredBook:
    """Every wallet of `positions` through the engine."""
    valued = value_positions(positions).collect().lazy()
    health = wallet_health(valued).collect()
    prices = liquidation_prices(valued).collect()
    holders = _holders(positions)
    return ScoredBook(
        positions,
        _digests(positions, holders),
        health,
        prices,
        liquidation_curve(valued),
        holders,
        _holders(health),
        _holders(prices),
    )


def changed_wallets(previous: ScoredBook, positions: pl.DataFrame) -> pl.DataFrame:
    """HOLDER_KEY of every wallet whose position rows differ between `previous` and `positions` (block aside),
    including wallets only one of them holds."""
    holders = _holders(positions)
    changed = _changed(previous.digests, _digests(positions, holders))
    return pl.concat(
        [
            previous.positions.filter(previous.position_holders.is_in(changed.implode())).select(HOLDER_KEY),
            positions.filter(holders.is_in(changed.implode())).select(HOLDER_KEY),
        ]
    ).unique(maintain_order=True)


def rescore_book(previous: ScoredBook, positions: pl.DataFrame, changed: pl.DataFrame | None = None) -> ScoredBook:
    """`positions` scored from `previous`: equal to score_book(positions) (see the module docstring).

    `changed` (HOLDER_KEY rows) names the wallets whose rows may differ, when the caller knows them (say, from the
    events indexed since the previous snapshot); it must name every such wallet. Without it they are found by
    comparing each wallet's rows (changed_wallets).
    """
    holders = _holders(positions)
    if changed is None:
        digests = _digests(positions, holders)
        moved = _changed(previous.digests, digests)
    else:
        moved = _holders(changed).unique()
        kept = previous.digests.filter(~pl.col("_holder").is_in(moved.implode()))
        touched = holders.is_in(moved.implode())
        digests = pl.concat([kept, _digests(positions.filter(touched), holders.filter(touched))])
    if moved.len() > FULL_SCORE_SHARE * max(digests.height, 1):
        return score_book(positions)
    blocks = _blocks(positions)
    now = positions.filter(holders.is_in(moved.implode()))
    before = previous.positions.filter(previous.position_holders.is_in(moved.implode()))
    valued_now = value_positions(now).collect().lazy()
    kept_health = ~previous.wallet_holders.is_in(moved.implode())
    kept_prices = ~previous.price_holders.is_in(moved.implode())
    new_health = wallet_health(valued_now).collect()
    new_prices = liquidation_prices(valued_now).collect()
    health = pl.concat(
        [_restamped(previous.wallet_health.filter(kept_health), blocks), new_health], how="vertical_relaxed"
    )
    prices = pl.concat(
        [_restamped(previous.liquidation_prices.filter(kept_prices), blocks), new_prices], how="vertical_relaxed"
    )
    curve = _updated_curve(previous, positions, health, blocks, value_positions(before).collect().lazy(), valued_now)
    return ScoredBook(
        positions,
        digests,
        health,
        prices,
        curve,
        holders,
        pl.concat([previous.wallet_holders.filter(kept_health), _holders(new_health)]),
        pl.concat([previous.price_holders.filter(kept_prices), _holders(new_prices)]),
    )


def _holders(frame: pl.DataFrame) -> pl.Series:
    """Each row's wallet (HOLDER_KEY) as one 64-bit hash, as `_wid` names a wallet at one block."""
    return frame.select(pl.struct(HOLDER_KEY).hash(seed=13).alias("_holder")).to_series()


def _digests(positions: pl.DataFrame, holders: pl.Series) -> pl.DataFrame:
    """Per wallet: an order-free digest of its rows (the sum of their hashes) and their count."""
    # Each column hashed with its own seed and the hashes combined: several times faster than hashing the row whole.
    hashes = [pl.col(c).hash(seed=11 + i) for i, c in enumerate(positions.columns) if c not in _SNAPSHOT_COLUMNS]
    rows = positions.select(functools.reduce(operator.xor, hashes).alias("_row")).with_columns(holders)
    return rows.group_by("_holder").agg(pl.col("_row").sum().alias("_digest"), pl.len().alias("_rows"))


def _changed(before: pl.DataFrame, now: pl.DataFrame) -> pl.Series:
    """The holders whose digests differ, or that only one side has."""
    joined = before.join(now, on="_holder", how="full", coalesce=True, suffix="_now")
    differs = (pl.col("_digest") != pl.col("_digest_now")) | (pl.col("_rows") != pl.col("_rows_now"))
    return joined.filter(differs.fill_null(True)).get_column("_holder")


def _blocks(positions: pl.DataFrame) -> pl.DataFrame:
    """Each market's snapshot block in `positions`."""
    return positions.group_by("protocol", "chain_id", "market").agg(
        pl.col("block_number").max(), pl.col("block_timestamp").max()
    )


def _restamped(frame: pl.DataFrame, blocks: pl.DataFrame) -> pl.DataFrame:
    """Rows of wallets that did not change, carried into the new snapshot: its block in place of theirs."""
    if blocks.height == 1:
        # One market (or every market at one block): no join needed.
        block, timestamp = blocks.row(0)[3:]
        return frame.with_columns(
            pl.lit(block, frame.schema["block_number"]).alias("block_number"),
            pl.lit(timestamp, frame.schema["block_timestamp"]).alias("block_timestamp"),
        )
    columns = frame.columns
    return (
        frame.drop(_SNAPSHOT_COLUMNS)
        .join(blocks, on=MARKET_KEY, how="left", nulls_equal=True, maintain_order="left")
        .select(columns)
    )


def _updated_curve(
    previous: ScoredBook,
    positions: pl.DataFrame,
    health: pl.DataFrame,
    blocks: pl.DataFrame,
    valued_before: pl.LazyFrame,
    valued_now: pl.LazyFrame,
) -> pl.DataFrame:
    """The previous curve less the changed wallets' previous contributions plus their new ones, on the axes and
    markets the new book has; an axis new to the book is summed over all of it."""
    axes_now = curve_axes(positions.select("symbol").unique())
    known = set(previous.liquidation_curve.select("axis_kind", "axis").unique().iter_rows())
    new_axes = [a for a in axes_now if (a[0], a[1]) not in known]
    kept_axes = [a for a in axes_now if (a[0], a[1]) in known]
    delta = pl.concat(
        [_contributions(valued_now, kept_axes), _negated(_contributions(valued_before, kept_axes))],
        how="vertical_relaxed",
    )
    carried = previous.liquidation_curve.select(*_CURVE_ROW, *METRICS)
    summed = (
        pl.concat([carried, delta], how="vertical_relaxed")
        .group_by(_CURVE_ROW)
        .agg(pl.col(METRICS).sum())
        .with_columns(pl.col("liquidatable_wallets").cast(pl.Int64))
    )
    # The curve has a row for every market (and chain, as market 'all') with a wallet in debt, on each axis present.
    in_debt = health.filter(pl.col("debt_usd") > 0)
    markets = in_debt.join(blocks, on=MARKET_KEY, how="semi").select(CURVE_KEY).unique()
    chains = markets.group_by("chain_id").agg(pl.col("block_number").max(), pl.col("block_timestamp").max())
    rows = pl.concat([markets, chains.with_columns(pl.lit("all").alias("market")).select(CURVE_KEY)])
    axis_names = pl.DataFrame(
        [(kind, name) for kind, name, _, _ in kept_axes],
        schema={"axis_kind": pl.String, "axis": pl.String},
        orient="row",
    )  # typed: with no axis kept (no position has a USD price) an untyped frame's Null keys would not join
    curve = (
        rows.join(axis_names, how="cross")
        .join(summed, on=["chain_id", "market", "axis_kind", "axis"], how="inner")
        .select(*CURVE_KEY, "axis_kind", "axis", "drop", *METRICS)
    )
    if new_axes:
        whole = liquidation_curve(value_positions(positions).collect().lazy(), new_axes)
        curve = pl.concat([curve, whole], how="vertical_relaxed")
    return curve.sort([*CURVE_KEY, "axis_kind", "axis", "drop"])


def _contributions(valued: pl.LazyFrame, axes: list[Axis]) -> pl.DataFrame:
    """The curve's sums over the wallets of `valued` alone, per market and per chain, on each axis."""
    frames = []
    for (kind, name, _, _), (per_market, per_chain, _) in zip(
        axes, axis_curves(valued, axes, ["chain_id", "market"]), strict=True
    ):
        for part in (per_market, per_chain):
            if part.height:
                frames.append(
                    part.with_columns(axis_kind=pl.lit(kind), axis=pl.lit(name)).select(*_CURVE_ROW, *METRICS)
                )
    if frames:
        return pl.concat(frames, how="vertical_relaxed")
    keys = {"chain_id": pl.Int64, "market": pl.Utf8, "axis_kind": pl.Utf8, "axis": pl.Utf8, "drop": pl.Float64}
    sums = {**dict.fromkeys(METRICS[:3], pl.Float64), "liquidatable_wallets": pl.Int64}
    return pl.DataFrame(schema={**keys, **sums})


def _negated(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(-pl.col(METRICS)) if frame.height else frame
