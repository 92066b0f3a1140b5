"""The score tables of one snapshot's positions (pure: frames in, frames out): wallet_risk, position_risk,
liquidation_curve, wallet_portfolio and scored_markets, as `chainrisk score` stores them."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from chainrisk.scoring.health import liquidation_prices, value_positions, wallet_health
from chainrisk.scoring.incremental import (
    FULL_SCORE_SHARE,
    HOLDER_KEY,
    ScoredBook,
    changed_wallets,
    rescore_book,
    score_book,
)
from chainrisk.scoring.portfolio import wallet_portfolio
from chainrisk.units import WAD

#: How far the engine's health factor may sit from the contract's exact one (float rounding of exact integers).
HEALTH_TOLERANCE = 1e-9
#: health_factor_wad at or above this has saturated (HEALTH_WAD_CAP): the contract's figure is "very safe".
SATURATED_WAD = 10**37


class HealthMismatch(AssertionError):
    """The engine's health at the snapshot's own prices differs from the protocol's exact figure: a bug in an adapter
    or the engine, never a user error (the run stops with the wallets named, nothing is stored)."""


def with_contract_health(wallet_risk: pl.DataFrame, contract: pl.DataFrame) -> pl.DataFrame:
    """`wallet_risk` with each wallet's exact health_factor_wad from the adapter's `wallet_health` (the contract's own
    figure) and whether the protocol lets it be liquidated now (liquidation_blocked, _until, liquidatable_now),
    checked against the engine: the liquidatable verdict must be the contract's (HF < 1e18) and the health
    factor equal to it within HEALTH_TOLERANCE, on every wallet with debt the contract rated. HealthMismatch names
    the first wallets that differ."""
    keys = ["protocol", "chain_id", "market", "wallet", "block_number"]
    blocked = [
        (pl.col(c) if c in contract.columns else pl.lit(None, dtype)).cast(dtype).alias(c)
        for c, dtype in (("liquidation_blocked", pl.Utf8), ("liquidation_blocked_until", pl.Int64))
    ]
    exact = contract.select(*keys, pl.col("health_factor_wad").cast(pl.Decimal(38, 0)), *blocked)
    joined = wallet_risk.join(exact, on=keys, how="left", maintain_order="left").with_columns(
        # The protocol's own say on a liquidatable wallet: a grace period or a stopped sequencer holds it back.
        (pl.col("liquidatable") & pl.col("liquidation_blocked").is_null()).alias("liquidatable_now")
    )
    wad = pl.col("health_factor_wad").cast(pl.Float64) / WAD
    rated = pl.col("health_factor_wad").is_not_null() & pl.col("health_factor").is_not_null()
    checked = rated & (pl.col("health_factor_wad") < SATURATED_WAD)
    wrong = joined.filter(
        (rated & (pl.col("liquidatable") != (pl.col("health_factor_wad") < WAD)))
        | (checked & ((pl.col("health_factor") - wad).abs() > HEALTH_TOLERANCE * pl.max_horizontal(wad, pl.lit(1.0))))
    )
    if wrong.height:
        shown = "; ".join(
            f"{r['protocol']} {r['market']} {r['wallet']}: engine {r['health_factor']!r}, contract "
            f"{int(r['health_factor_wad'])} (1e18 = 1.0)"
            for r in wrong.head(5).iter_rows(named=True)
        )
        raise HealthMismatch(f"{wrong.height} wallet(s) where the engine's health differs from the contract's: {shown}")
    return joined


def wallet_and_position_risk(positions: pl.DataFrame) -> tuple[pl.LazyFrame, pl.DataFrame, pl.DataFrame]:
    """The valued positions, wallet_risk and position_risk of a positions frame (pure: no I/O); what the credit
    history samples need, without the liquidation curve, which costs most of a score's time."""
    valued = value_positions(positions).collect().lazy()
    health = wallet_health(valued).collect()
    return valued, _wallet_risk(health), _position_risk(liquidation_prices(valued).collect())


def _wallet_risk(health: pl.DataFrame) -> pl.DataFrame:
    """wallet_risk's columns of wallet_health's rows."""
    return health.select(
        "protocol",
        "chain_id",
        "market",
        "wallet",
        "block_number",
        "block_timestamp",
        "collateral_usd",
        "debt_usd",
        "health_factor",
        "ltv_used",
        "borrowing_power_usd",
        "distance_to_liquidation",
        "liquidatable",
        "close_factor",
        "liquidatable_debt_usd",
        "seizable_collateral_usd",
        "bad_debt_usd",
        pl.col("liquidation_threshold_bps").cast(pl.Int32),
        pl.col("ltv_bps").cast(pl.Int32),
    )


def _position_risk(prices: pl.DataFrame) -> pl.DataFrame:
    """position_risk's columns of liquidation_prices' rows."""
    renamed = {"collateral_usd_now": "collateral_usd", "debt_usd_now": "debt_usd", "price_usd_now": "price_usd"}
    return prices.rename({"group": "price_group", **renamed})


def rated(positions: pl.DataFrame, contract: pl.DataFrame) -> pl.DataFrame:
    """`positions` without the borrowers the adapters left out of `wallet_health`: wallets with debt whose health the
    protocol's own figures cannot give (an oracle that reverts or is gone)."""
    keys = ["protocol", "chain_id", "market", "wallet", "block_number"]
    borrowers = positions.filter(pl.col("debt_amount").cast(pl.Float64) > 0).select(keys).unique()
    unrated = borrowers.join(contract.select(keys), on=keys, how="anti")
    if unrated.is_empty():
        return positions
    return positions.join(unrated, on=keys, how="anti", maintain_order="left")


def score_positions(positions: pl.DataFrame, contract: pl.DataFrame | None = None) -> dict[str, pl.DataFrame]:
    """The result frames for a positions frame (pure: no I/O); with the adapters' `wallet_health` rows (`contract`),
    wallet_risk carries their exact health_factor_wad, checked against the engine (with_contract_health), and a
    borrower the protocol itself could not rate (its oracle reverts: a data_quality row says so) is left out of the
    verdicts rather than scored at a price of nothing."""
    return score_snapshot(positions, contract).frames


#: Price columns of `positions`: a rescore from the previous snapshot is taken only when none of them moved.
PRICE_COLUMNS = ("price", "price_usd", "price_scale", "base_currency_usd")
#: Columns naming one asset's price in one market.
_PRICE_KEY = ["protocol", "chain_id", "market", "asset"]


@dataclass(frozen=True)
class ScoredSnapshot:
    """score_snapshot's result: the score tables, the engine's book the next snapshot can be rescored from, and how
    the score was made."""

    frames: dict[str, pl.DataFrame]  #: the score tables, as score_positions gives them
    book: ScoredBook  #: what rescore_book starts from next time
    rescored: bool  #: only the changed wallets went through the engine (else every wallet did)
    changed_wallets: int | None  #: wallets whose rows differ from the previous snapshot's (None: no previous one)
    reason: str  #: why a full score was made, or that only the changed wallets were rescored


def prices_moved(before: pl.DataFrame, now: pl.DataFrame) -> bool:
    """Whether any asset's price columns (PRICE_COLUMNS) differ between two positions frames, for the markets of
    `now` (an asset new to a market counts as a move)."""
    columns = [c for c in PRICE_COLUMNS if c in now.columns]
    if [c for c in PRICE_COLUMNS if c in before.columns] != columns:
        return True
    prices_now = now.select(*_PRICE_KEY, *columns).unique()
    prices_before = before.select(*_PRICE_KEY, *columns).unique()
    return not prices_now.join(prices_before, on=[*_PRICE_KEY, *columns], how="anti", nulls_equal=True).is_empty()


def score_snapshot(
    positions: pl.DataFrame, contract: pl.DataFrame | None = None, previous: ScoredBook | None = None
) -> ScoredSnapshot:
    """score_positions' tables, from `previous` (the last snapshot's book) when no price moved since it and at most
    half the wallets changed: then only the changed wallets go through the engine (rescore_book), and the tables
    equal a full score's (wallet and position rows exactly, the curve's USD sums to float rounding); else in full.

    A wallet counts as changed when any of its position rows differs, block aside: interest accrued on a debt or a
    deposit changes its amounts, so a snapshot some blocks later, when the rates are not zero, has every borrower
    changed and is scored in full."""
    if contract is not None:
        positions = rated(positions, contract)
    reason, changed = _rescore_plan(positions, previous)
    if previous is not None and changed is not None and reason.startswith("rescored"):
        book = rescore_book(previous, positions, changed)
    else:
        book = score_book(positions)
    rescored = reason.startswith("rescored")
    # Rows come in another order than a full score's (carried wallets, then the rescored ones): tables are sets.
    wallet_risk = _wallet_risk(book.wallet_health)
    position_risk = _position_risk(book.liquidation_prices)
    if contract is not None:
        wallet_risk = with_contract_health(wallet_risk, contract)
    frames = {
        "wallet_risk": wallet_risk,
        "position_risk": position_risk,
        "liquidation_curve": book.liquidation_curve,
        "wallet_portfolio": wallet_portfolio(wallet_risk),
        "scored_markets": positions.group_by("protocol", "chain_id", "market")
        .agg(
            pl.col("source").first(),
            pl.col("block_number").max(),
            pl.col("block_timestamp").max(),
            pl.col("wallet").n_unique().alias("wallets"),
        )
        .sort("protocol", "chain_id", "market"),
    }
    return ScoredSnapshot(frames, book, rescored, None if changed is None else changed.height, reason)


def _rescore_plan(positions: pl.DataFrame, previous: ScoredBook | None) -> tuple[str, pl.DataFrame | None]:
    """Why the snapshot is scored in full or rescored (the reason starts with "rescored"), and the changed wallets
    (HOLDER_KEY rows) when they were looked for."""
    if previous is None:
        return "full score (no previous score to start from)", None
    if previous.positions.schema != positions.schema:
        return "full score (the positions' columns changed)", None
    if prices_moved(previous.positions, positions):
        return "full score (prices moved)", None
    changed = changed_wallets(previous, positions)
    wallets = positions.select(HOLDER_KEY).n_unique()
    if changed.height > FULL_SCORE_SHARE * max(wallets, 1):
        return f"full score ({changed.height} of {wallets} wallets changed)", changed
    return f"rescored {changed.height} changed of {wallets} wallets", changed
