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

from dataclasses import dataclass

import polars as pl

from chainrisk.scoring.health import (
    CURVE_KEY,
    axis_coefficients,
    curve_axes,
    curve_points,
    liquidation_curve,
    liquidation_prices,
    value_positions,
    wallet_health,
)

#: What names a wallet across snapshots (WALLET_KEY without the block).
HOLDER_KEY = ["protocol", "chain_id", "market", "wallet"]
#: Columns that change with every snapshot without changing a wallet's figures.
_SNAPSHOT_COLUMNS = ("block_number", "block_timestamp")
#: Past this share of changed wallets a full score is cheaper than the bookkeeping.
_FULL_SCORE_SHARE = 0.5
_CURVE_METRICS = ["liquidatable_collateral_usd", "liquidatable_debt_usd", "bad_debt_usd", "liquidatable_wallets"]
_CURVE_ROW = ["chain_id", "market", "axis_kind", "axis", "drop"]


@dataclass(frozen=True)
class ScoredBook:
    """One snapshot's positions and what the engine made of them: what the next snapshot's rescore starts from."""

    positions: pl.DataFrame  #: the positions scored (a rescore values the changed wallets' previous rows)
    digests: pl.DataFrame  #: per wallet (HOLDER_KEY): `_digest` and `_rows` of its position rows, block aside
    wallet_health: pl.DataFrame  #: wallet_health's rows
    liquidation_prices: pl.DataFrame  #: liquidation_prices' rows
    liquidation_curve: pl.DataFrame  #: liquidation_curve's rows


def score_book(positions: pl.DataFrame) -> ScoredBook:
    """Every wallet of `positions` through the engine."""
    valued = value_positions(positions).collect().lazy()
    return ScoredBook(
        positions=positions,
        digests=_digests(positions),
        wallet_health=wallet_health(valued).collect(),
        liquidation_prices=liquidation_prices(valued).collect(),
        liquidation_curve=liquidation_curve(valued),
    )


def changed_wallets(previous: ScoredBook, positions: pl.DataFrame) -> pl.DataFrame:
    """HOLDER_KEY of every wallet whose position rows differ between `previous` and `positions` (block aside),
    including wallets only one of them holds."""
    return _changed(previous.digests, _digests(positions))


def rescore_book(previous: ScoredBook, positions: pl.DataFrame, changed: pl.DataFrame | None = None) -> ScoredBook:
    """`positions` scored from `previous`: equal to score_book(positions) (see the module docstring).

    `changed` (HOLDER_KEY rows) names the wallets whose rows may differ, when the caller knows them (say, from the
    events indexed since the previous snapshot); it must name every such wallet. Without it they are found by
    comparing each wallet's rows (changed_wallets).
    """
    if changed is None:
        digests = _digests(positions)
        changed = _changed(previous.digests, digests)
    else:
        changed = changed.select(HOLDER_KEY).unique()
        digests = pl.concat([_without(previous.digests, changed), _digests(_within(positions, changed))])
    if changed.height > _FULL_SCORE_SHARE * max(digests.height, 1):
        return score_book(positions)
    blocks = _blocks(positions)
    before = _within(previous.positions, changed)
    now = _within(positions, changed)
    valued_now = value_positions(now).collect().lazy()
    health = pl.concat(
        [_restamped(_without(previous.wallet_health, changed), blocks), wallet_health(valued_now).collect()],
        how="vertical_relaxed",
    )
    prices = pl.concat(
        [_restamped(_without(previous.liquidation_prices, changed), blocks), liquidation_prices(valued_now).collect()],
        how="vertical_relaxed",
    )
    curve = _updated_curve(previous, positions, health, blocks, value_positions(before).collect().lazy(), valued_now)
    return ScoredBook(positions, digests, health, prices, curve)


def _digests(positions: pl.DataFrame) -> pl.DataFrame:
    """Per wallet: an order-free digest of its rows (the sum of their hashes) and their count."""
    columns = [c for c in positions.columns if c not in _SNAPSHOT_COLUMNS]
    return positions.group_by(HOLDER_KEY).agg(
        pl.struct(columns).hash(seed=11).sum().alias("_digest"), pl.len().alias("_rows")
    )


def _changed(before: pl.DataFrame, now: pl.DataFrame) -> pl.DataFrame:
    joined = before.join(now, on=HOLDER_KEY, how="full", coalesce=True, nulls_equal=True, suffix="_now")
    differs = (pl.col("_digest") != pl.col("_digest_now")) | (pl.col("_rows") != pl.col("_rows_now"))
    return joined.filter(differs.fill_null(True)).select(HOLDER_KEY)


def _within(frame: pl.DataFrame, changed: pl.DataFrame) -> pl.DataFrame:
    return frame.join(changed, on=HOLDER_KEY, how="semi", nulls_equal=True, maintain_order="left")


def _without(frame: pl.DataFrame, changed: pl.DataFrame) -> pl.DataFrame:
    return frame.join(changed, on=HOLDER_KEY, how="anti", nulls_equal=True, maintain_order="left")


def _blocks(positions: pl.DataFrame) -> pl.DataFrame:
    """Each market's snapshot block in `positions`."""
    return positions.group_by("protocol", "chain_id", "market").agg(
        pl.col("block_number").max(), pl.col("block_timestamp").max()
    )


def _restamped(frame: pl.DataFrame, blocks: pl.DataFrame) -> pl.DataFrame:
    """Rows of wallets that did not change, carried into the new snapshot: its block in place of theirs."""
    columns = frame.columns
    return (
        frame.drop(_SNAPSHOT_COLUMNS)
        .join(blocks, on=["protocol", "chain_id", "market"], how="left", nulls_equal=True, maintain_order="left")
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
    carried = previous.liquidation_curve.select(*_CURVE_ROW, *_CURVE_METRICS)
    summed = (
        pl.concat([carried, delta], how="vertical_relaxed")
        .group_by(_CURVE_ROW)
        .agg(pl.col(_CURVE_METRICS).sum())
        .with_columns(pl.col("liquidatable_wallets").cast(pl.Int64))
    )
    # The curve has a row for every market (and chain, as market 'all') with a wallet in debt, on each axis present.
    in_debt = health.filter(pl.col("debt_usd") > 0)
    markets = in_debt.join(blocks, on=["protocol", "chain_id", "market"], how="semi").select(CURVE_KEY).unique()
    chains = markets.group_by("chain_id").agg(pl.col("block_number").max(), pl.col("block_timestamp").max())
    rows = pl.concat([markets, chains.with_columns(pl.lit("all").alias("market")).select(CURVE_KEY)])
    axis_names = pl.DataFrame(
        [(kind, name) for kind, name, _, _ in kept_axes], schema=["axis_kind", "axis"], orient="row"
    )
    curve = (
        rows.join(axis_names, how="cross")
        .join(summed, on=["chain_id", "market", "axis_kind", "axis"], how="inner")
        .select(*CURVE_KEY, "axis_kind", "axis", "drop", *_CURVE_METRICS)
    )
    if new_axes:
        whole = liquidation_curve(value_positions(positions).collect().lazy(), new_axes)
        curve = pl.concat([curve, whole], how="vertical_relaxed")
    return curve.sort([*CURVE_KEY, "axis_kind", "axis", "drop"])


def _contributions(valued: pl.LazyFrame, axes: list[tuple[str, str, pl.Expr, list[float]]]) -> pl.DataFrame:
    """The curve's sums over the wallets of `valued` alone, per market and per chain, on each axis."""
    frames = []
    for kind, name, member, drops in axes:
        coefficients = axis_coefficients(valued, member).collect()
        if coefficients.is_empty():
            continue
        per_market = curve_points(coefficients.lazy(), drops, ["chain_id", "market"]).collect()
        total = curve_points(coefficients.lazy().with_columns(market=pl.lit("all")), drops, ["chain_id", "market"])
        for part in (per_market, total.collect()):
            frames.append(
                part.with_columns(axis_kind=pl.lit(kind), axis=pl.lit(name)).select(*_CURVE_ROW, *_CURVE_METRICS)
            )
    schema = {"chain_id": pl.Int64, "market": pl.Utf8, "axis_kind": pl.Utf8, "axis": pl.Utf8, "drop": pl.Float64}
    empty = pl.DataFrame(
        schema={**schema, **dict.fromkeys(_CURVE_METRICS[:3], pl.Float64), _CURVE_METRICS[3]: pl.Int64}
    )
    return pl.concat(frames, how="vertical_relaxed") if frames else empty


def _negated(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(-pl.col(_CURVE_METRICS)) if frame.height else frame
