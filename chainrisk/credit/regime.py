"""The market's regime at a cutoff: realised volatility and drawdown of the collateral markets before it, from the
sampled on-chain prices, and the regime named from them (calm, stressed, crash).

Both measures read only prices sampled at or before the cutoff (`asset_price_history`), weighted by the USD every
wallet holds as collateral in each asset at the cutoff (pegged assets left out): the collateral markets the book is
exposed to. Volatility is
annualised from the log returns of the VOL_DAYS before the cutoff (what the next month's moves are most like:
volatility clusters); drawdown is how far each asset stands below its highest price of the DRAWDOWN_DAYS before it.
The scorecard's probability reads both (chainrisk.credit.scorecard); the names are for reporting calibration by
regime.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from chainrisk.units import DAY_S

#: Days of returns the volatility is measured over.
VOL_DAYS = 30
#: Days back to the high the drawdown is measured from.
DRAWDOWN_DAYS = 90
#: Regime names from calm to crash, each with the lowest (annualised volatility, drawdown) that reaches it (either
#: one does). Chosen on the markets, not fitted: ETH's 30-day volatility sat near 50-70 % a year through 2021-22 and
#: rose past 90 % in its crashes (May 2021, January and May-June 2022), when it stood 30 % or more below its
#: 90-day high.
REGIMES: tuple[tuple[str, float, float], ...] = (("calm", 0.0, 0.0), ("stressed", 0.75, 0.20), ("crash", 0.95, 0.35))
#: Annualised volatility under which a collateral asset counts as pegged (a stablecoin) and stays out of the market's
#: measures: the regime is that of the markets that move (stablecoins held as collateral would dilute a crash).
PEGGED_VOL = 0.10
#: The market-state columns of a cutoff's feature rows (the same for every wallet there): what each measures, and
#: its unit.
MARKET_INPUTS: dict[str, tuple[str, str]] = {
    "market_vol": (f"volatility of the collateral markets over {VOL_DAYS} days", "% a year"),
    "market_drawdown": (f"fall of the collateral markets from their {DRAWDOWN_DAYS}-day high", "%"),
}


@dataclass(frozen=True)
class MarketState:
    vol: float  #: collateral-weighted annualised volatility over VOL_DAYS (0.8 = 80 % a year)
    drawdown: float  #: collateral-weighted fall below the DRAWDOWN_DAYS high (0.3 = 30 % below)

    @property
    def regime(self) -> str:
        return regime_of(self.vol, self.drawdown)

    def text(self) -> str:
        return (
            f"{self.regime} (collateral volatility {100 * self.vol:.0f} % a year over {VOL_DAYS} days, "
            f"{100 * self.drawdown:.0f} % below the {DRAWDOWN_DAYS}-day high)"
        )


def regime_of(vol: float, drawdown: float) -> str:
    name = REGIMES[0][0]
    for regime, min_vol, min_drawdown in REGIMES[1:]:
        if vol >= min_vol or drawdown >= min_drawdown:
            name = regime
    return name


def market_state(prices: pl.DataFrame, collateral: pl.DataFrame, block: int, now: int) -> MarketState:
    """The state at sampled block `block` (timestamp `now`) from `prices` (asset, block_number, block_timestamp,
    price_usd: every sample) and `collateral` (asset, collateral_usd: what wallets hold at the block), over the
    collateral assets that moved (volatility of PEGGED_VOL or more); calm (0, 0) when none did."""
    window = prices.filter(
        (pl.col("block_number") <= block) & (pl.col("block_timestamp") > now - DRAWDOWN_DAYS * DAY_S)
    ).sort("asset", "block_number")
    returns = window.with_columns(
        (pl.col("price_usd").log() - pl.col("price_usd").log().shift(1).over("asset")).alias("r"),
        (pl.col("block_timestamp") - pl.col("block_timestamp").shift(1).over("asset")).cast(pl.Float64).alias("dt"),
    ).filter(pl.col("r").is_not_null() & (pl.col("dt") > 0) & (pl.col("block_timestamp") > now - VOL_DAYS * DAY_S))
    # Groups in a fixed order (sorted above) and sums in it: the measures come out bit-identical however rows were read.
    vol = returns.group_by("asset", maintain_order=True).agg(
        ((pl.col("r") ** 2).sum() / pl.col("dt").sum() * 365 * DAY_S).sqrt().alias("vol")
    )
    fall = window.group_by("asset", maintain_order=True).agg(
        (1 - pl.col("price_usd").last() / pl.col("price_usd").max()).clip(lower_bound=0.0).alias("drawdown")
    )
    held = (
        collateral.sort("asset", "collateral_usd")
        .group_by("asset", maintain_order=True)
        .agg(pl.col("collateral_usd").sum())
        .filter(pl.col("collateral_usd") > 0)
        .join(vol, on="asset", how="left", maintain_order="left")
        .join(fall, on="asset", how="left", maintain_order="left")
        .fill_null(0.0)
        .filter(pl.col("vol") >= PEGGED_VOL)
    )
    total = float(held["collateral_usd"].sum())
    if total <= 0:
        return MarketState(0.0, 0.0)
    weights = held["collateral_usd"] / total
    return MarketState(float((weights * held["vol"]).sum()), float((weights * held["drawdown"]).sum()))
